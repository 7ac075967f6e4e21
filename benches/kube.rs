//! The Kubernetes backend at scale: a cockpit watching a fake API server
//! with 1,000 Deployments (each a service) and 5,000 Pods, plus the `shop`
//! team. The server runs in a child process (this same binary, in its
//! server role), so this process's memory and CPU are the cockpit's.
//!
//! Prints: time from launch to the first frame, to all data on screen, RSS
//! after a minute, CPU while idle, and list requests per minute in steady
//! state (target: 0; watches only).
//!
//! ```sh
//! cargo bench --bench kube              # a one-minute steady state
//! COCKPIT_BENCH_WINDOW=10 cargo bench --bench kube
//! ```

use cockpit::compose::{Runtime, Settings};
use cockpit::devtools::fake_apiserver::{Config as ServerConfig, FakeApiServer};
use cockpit::event::ConnectionState;
use cockpit::state::{AppState, update};
use cockpit::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const ROLE: &str = "COCKPIT_BENCH_SERVER";
const DEPLOYMENTS: usize = 1_000;
const PODS: usize = 5_000;

fn main() {
    if std::env::var_os(ROLE).is_some() {
        serve();
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let window = std::env::var("COCKPIT_BENCH_WINDOW").ok().and_then(|w| w.parse().ok()).unwrap_or(60u64);
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut child = Command::new(exe)
        .env(ROLE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server process starts");
    let mut to_server = child.stdin.take().expect("stdin");
    let mut from_server = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = String::new();
    from_server.read_line(&mut url).expect("the server's URL");
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url.trim()}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "shop"}}],
        "current-context": "fake",
    });
    std::fs::write(&kubeconfig, config.to_string()).expect("kubeconfig written");
    let mut counts = move || -> serde_json::Value {
        writeln!(to_server, "counts").expect("asked");
        let mut line = String::new();
        from_server.read_line(&mut line).expect("answered");
        serde_json::from_str(&line).expect("counts as JSON")
    };

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let figures = runtime.block_on(async {
        let launched = Instant::now();
        // Built as the binary builds it: the composition root.
        let config: cockpit::config::Config =
            toml::from_str("[kubernetes]\nnamespaces = [\"shop\", \"fill\"]\n").expect("the bench config");
        let mut settings = Settings::new(config);
        settings.kubeconfig = Some(kubeconfig);
        settings.audit_log = Some(std::env::temp_dir().join("cockpit-bench-audit.jsonl"));
        let mut runtime = Runtime::compose(settings).expect("composes");
        let (_requests, request_inbox) = mpsc::channel(16);
        let hooks = runtime.start(request_inbox);
        let Runtime { mut state, mut inbox, .. } = runtime;
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("a test terminal");
        let theme = Theme::default();
        let mut draw = |state: &AppState| {
            terminal.draw(|frame| cockpit::ui::draw(frame, state, &theme)).expect("drawn");
        };
        draw(&state);
        let first_frame = launched.elapsed();
        let all_there = |s: &AppState| {
            matches!(s.connections.get("kubernetes"), Some(ConnectionState::Live))
                && s.services.len() == DEPLOYMENTS + 3
                && s.services.iter().all(|v| v.rollout.is_some())
        };
        while !all_there(&state) {
            let msg = tokio::time::timeout(Duration::from_secs(120), inbox.recv())
                .await
                .expect("all data within two minutes")
                .expect("the source runs");
            update(&mut state, cockpit::domain::Timestamp::now(), msg);
            while let Ok(msg) = inbox.try_recv() {
                update(&mut state, cockpit::domain::Timestamp::now(), msg);
            }
            draw(&state);
        }
        let all_data = launched.elapsed();
        if let Some(focus) = &hooks.on_select {
            focus("checkout");
        }
        // Steady state: nothing changes on the server; count what still happens.
        tokio::time::sleep(Duration::from_secs(2)).await;
        while inbox.try_recv().is_ok() {}
        let before = counts();
        let cpu_before = cpu_seconds();
        let mut messages = 0u64;
        let idle = tokio::time::sleep(Duration::from_secs(window));
        tokio::pin!(idle);
        loop {
            tokio::select! {
                _ = &mut idle => break,
                msg = inbox.recv() => if let Some(msg) = msg {
                    messages += 1;
                    update(&mut state, cockpit::domain::Timestamp::now(), msg);
                },
            }
        }
        let cpu = cpu_seconds() - cpu_before;
        let after = counts();
        let verb = |c: &serde_json::Value, v: &str| c[v].as_u64().unwrap_or(0);
        let per_minute = |v: &str| (verb(&after, v) - verb(&before, v)) as f64 * 60.0 / window as f64;
        vec![
            ("services on screen", format!("{}", state.services.len())),
            ("launch → first frame", format!("{:.1} ms", first_frame.as_secs_f64() * 1e3)),
            ("launch → all data on screen", format!("{:.0} ms", all_data.as_secs_f64() * 1e3)),
            ("initial requests", format!("{} lists, {} watches", verb(&before, "list"), verb(&before, "watch"))),
            ("RSS after the window", format!("{:.1} MiB", rss_mib())),
            ("CPU while idle", format!("{:.2} % of one core", cpu / window as f64 * 100.0)),
            ("list requests per minute, steady", format!("{:.1}", per_minute("list"))),
            ("get requests per minute, steady", format!("{:.1}", per_minute("get"))),
            ("messages to the UI while idle", format!("{messages}")),
        ]
    });
    println!("kube backend, {DEPLOYMENTS} Deployments and {PODS} Pods, steady window {window} s:");
    for (what, value) in figures {
        println!("  {what:<34} {value}");
    }
    drop(runtime);
    let _ = child.kill();
    let _ = child.wait();
}

/// The server role: seed, print the URL, answer `counts` on stdin until it closes.
fn serve() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let server = FakeApiServer::start(ServerConfig::default()).await.expect("the server starts");
        server.seed(DEPLOYMENTS, PODS).expect("seeded");
        println!("{}", server.url());
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        while let Some(line) = rx.recv().await {
            if line.trim() == "counts" {
                let counts: serde_json::Map<String, serde_json::Value> =
                    server.request_counts().into_iter().map(|(verb, n)| (verb.as_str().to_owned(), n.into())).collect();
                println!("{}", serde_json::Value::Object(counts));
            }
        }
    });
}

/// This process's user + system CPU time, from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
