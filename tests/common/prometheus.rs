//! A real Prometheus for tests: finds `prometheus` and `promtool` on PATH,
//! backfills generated history with `promtool`, starts an instance of its
//! own on a free loopback port with a temporary storage dir, waits for
//! `/-/ready` with a deadline, and kills it on drop. Also a tiny `/metrics`
//! endpoint for it to scrape, served on 127.0.0.1.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The binaries, when installed.
#[derive(Debug, Clone)]
pub struct Tools {
    pub prometheus: PathBuf,
    pub promtool: PathBuf,
}

/// `prometheus` and `promtool` from PATH. Missing: with `CI=true` the test
/// fails, so that CI cannot pass without exercising Prometheus; elsewhere it
/// says so and the caller skips.
pub fn tools() -> Option<Tools> {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    };
    match (find("prometheus"), find("promtool")) {
        (Some(prometheus), Some(promtool)) => Some(Tools { prometheus, promtool }),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but `prometheus`/`promtool` are not on PATH: install them (apt-get install -y prometheus)")
        }
        _ => {
            eprintln!("note: `prometheus`/`promtool` not on PATH; skipping (apt-get install -y prometheus to run it)");
            None
        }
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Turns OpenMetrics text into TSDB blocks in `storage`.
pub fn backfill(tools: &Tools, openmetrics: &str, storage: &Path) {
    let input = storage.with_extension("om");
    std::fs::write(&input, openmetrics).expect("write the OpenMetrics file");
    let output = Command::new(&tools.promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h", "--quiet"])
        .arg(&input)
        .arg(storage)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running Prometheus of the test's own.
pub struct Prometheus {
    tools: Tools,
    child: Option<Child>,
    pub port: u16,
    pub storage: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Prometheus {
    /// Starts on a free port with `storage` (which may hold backfilled
    /// blocks), scraping `targets` every second, and waits until ready.
    pub fn start(tools: &Tools, dir: &Path, storage: &Path, targets: &[SocketAddr]) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let mut yaml = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if !targets.is_empty() {
            let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
            yaml.push_str(&format!(
                "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ));
        }
        std::fs::write(&config, yaml).expect("write prometheus.yml");
        let mut prometheus = Prometheus {
            tools: tools.clone(),
            child: None,
            port: free_port(),
            storage: storage.to_owned(),
            config,
            log: dir.join("prometheus.log"),
        };
        prometheus.launch();
        prometheus
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it; the storage stays for a restart.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the log");
        let child = Command::new(&self.tools.prometheus)
            .arg(format!("--config.file={}", self.config.display()))
            .arg(format!("--storage.tsdb.path={}", self.storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            // Backfilled history is older than the default 15 days would keep.
            .arg("--storage.tsdb.retention.time=90d")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("prometheus exited with {status} before it was ready:\n{}", self.log_text());
            }
            if http_get(&format!("127.0.0.1:{}", self.port), "/-/ready").is_some_and(|(status, _)| status == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "prometheus not ready within {limit:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A plain HTTP/1.0 GET: status and body, or None when nobody answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Some((status, body))
}

/// A `/metrics` endpoint on 127.0.0.1 whose body `render` makes afresh for
/// every scrape. Stops when dropped.
pub struct MetricsEndpoint {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsEndpoint {
    pub async fn serve(render: impl Fn() -> String + Send + Sync + 'static) -> MetricsEndpoint {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the metrics endpoint");
        let addr = listener.local_addr().expect("local address");
        let render = Arc::new(render);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let render = render.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = render();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        MetricsEndpoint { addr, task }
    }
}

impl Drop for MetricsEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The SLO pane of `service` as a user sees it: the service selected, the
/// pane drawn alone into a `width`×`height` test terminal, one line a row.
pub fn slo_pane(state: &cockpit::state::AppState, service: &str, width: u16, height: u16) -> String {
    let mut state = state.clone();
    state.selected = state.services.iter().position(|s| s.info.name == service).expect("service in the state");
    state.user_moved = true;
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("a test terminal");
    let theme = cockpit::theme::Theme::default();
    terminal.draw(|frame| cockpit::ui::slo::draw(frame, frame.area(), &state, &theme)).expect("draw the SLO pane");
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let row: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect();
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
