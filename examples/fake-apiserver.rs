//! Runs the fake Kubernetes API server on 127.0.0.1, writes a kubeconfig
//! pointing at it and prints the kubeconfig's path:
//!
//! ```sh
//! cargo run --example fake-apiserver -- --port 8080
//! kubectl --kubeconfig <printed path> get namespaces
//! ```
//!
//! `--port 0` (the default) picks a free port. The simulated controller
//! runs Deployments out at `--speed` times real time (default 1). Ctrl-C stops it.

use cockpit::devtools::fake_apiserver::{Config, ControllerConfig, FakeApiServer};
use std::net::SocketAddr;
use std::path::PathBuf;

fn usage() -> color_eyre::eyre::Report {
    color_eyre::eyre::eyre!("usage: fake-apiserver [--port PORT] [--kubeconfig-dir DIR] [--speed FACTOR]")
}

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let mut port: u16 = 0;
    let mut dir: Option<PathBuf> = None;
    let mut speed = 1.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().ok_or_else(usage)?.parse()?,
            "--kubeconfig-dir" => dir = Some(args.next().ok_or_else(usage)?.into()),
            "--speed" => speed = args.next().ok_or_else(usage)?.parse()?,
            _ => return Err(usage()),
        }
    }
    let controller = ControllerConfig { speed, ..ControllerConfig::default() };
    let config =
        Config { addr: SocketAddr::from(([127, 0, 0, 1], port)), controller: Some(controller), ..Config::default() };
    let server = FakeApiServer::start(config).await?;
    let dir = match dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("fake-apiserver-{}", server.addr().port())),
    };
    std::fs::create_dir_all(&dir)?;
    let path = server.write_kubeconfig(&dir)?;
    println!("fake API server on {}", server.url());
    println!("kubeconfig: {}", path.display());
    println!("try: kubectl --kubeconfig {} get namespaces", path.display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
