//! Runs the fake Kubernetes API server on 127.0.0.1, writes a kubeconfig
//! pointing at it and prints the kubeconfig's path:
//!
//! ```sh
//! cargo run --example fake-apiserver -- --port 8080
//! kubectl --kubeconfig <printed path> get namespaces
//! ```
//!
//! `--port 0` (the default) picks a free port. The simulated controller
//! runs Deployments out at `--speed` times real time (default 1).
//! `--deployments N --pods M` seeds the cockpit-labelled `shop` team plus N
//! filler Deployments and M filler Pods in namespace `fill`. Ctrl-C or
//! SIGTERM stops it and prints the request counts by verb.

use cockpit::devtools::fake_apiserver::{Config, ControllerConfig, FakeApiServer};
use std::net::SocketAddr;
use std::path::PathBuf;

fn usage() -> color_eyre::eyre::Report {
    color_eyre::eyre::eyre!(
        "usage: fake-apiserver [--port PORT] [--kubeconfig-dir DIR] [--speed FACTOR] [--deployments N --pods M]"
    )
}

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let mut port: u16 = 0;
    let mut dir: Option<PathBuf> = None;
    let mut speed = 1.0;
    let mut seed: Option<(usize, usize)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or_else(usage)?.parse()?,
            "--kubeconfig-dir" => dir = Some(args.next().ok_or_else(usage)?.into()),
            "--speed" => speed = args.next().ok_or_else(usage)?.parse()?,
            "--deployments" => seed.get_or_insert((0, 0)).0 = args.next().ok_or_else(usage)?.parse()?,
            "--pods" => seed.get_or_insert((0, 0)).1 = args.next().ok_or_else(usage)?.parse()?,
            _ => return Err(usage()),
        }
    }
    let controller = ControllerConfig { speed, ..ControllerConfig::default() };
    let config =
        Config { addr: SocketAddr::from(([127, 0, 0, 1], port)), controller: Some(controller), ..Config::default() };
    let server = FakeApiServer::start(config).await?;
    if let Some((deployments, pods)) = seed {
        server.seed(deployments, pods).map_err(|e| color_eyre::eyre::eyre!("seeding: {}", e.message))?;
        println!("seeded namespace shop and {deployments} deployments, {pods} pods in namespace fill");
    }
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("fake-apiserver-{}", server.addr().port())),
    };
    std::fs::create_dir_all(&dir)?;
    let path = server.write_kubeconfig(&dir)?;
    println!("fake API server on {}", server.url());
    println!("kubeconfig: {}", path.display());
    println!("try: kubectl --kubeconfig {} get namespaces", path.display());
    stopped().await?;
    println!("requests by verb:");
    for (verb, count) in server.request_counts() {
        println!("  {:<7} {count}", verb.as_str());
    }
    Ok(())
}

/// Waits for Ctrl-C or (on Unix) SIGTERM.
async fn stopped() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
