//! A real Docker engine for tests: one `dockerd` per test binary, with its
//! own socket, data root, exec root and pidfile in a temporary directory,
//! no bridge and no iptables (containers use network mode `none`).
//!
//! It is started once, by the first test that asks (`engine()`), and
//! waited for with a deadline. A detached watcher process stops it (and
//! removes the directory) as soon as the test binary has exited, however
//! it exits, so no daemon outlives the tests. Tests share it through
//! `shared()`; a test that stops and restarts it takes `exclusive()`.
//!
//! Images are built `FROM scratch` with a static busybox copied into the
//! build context (`context()`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the engine may take to answer after it was started.
const READY: Duration = Duration::from_secs(30);
/// How long it may take to stop.
const STOPPED: Duration = Duration::from_secs(30);

pub struct Engine {
    pub dir: PathBuf,
    /// `unix://…/docker.sock`, for `[docker] host`.
    pub host: String,
    pub socket: PathBuf,
    pidfile: PathBuf,
    log: PathBuf,
    dockerd: PathBuf,
    pub busybox: PathBuf,
    child: Mutex<Option<Child>>,
}

static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn find(name: &str, extra: &[&str]) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The shared engine, started on first use. `None`: `dockerd` or a static
/// busybox is missing and this is not CI, so the caller skips (with a
/// note). Under `CI=true` a missing tool fails the test.
pub fn engine() -> Option<&'static Engine> {
    ENGINE
        .get_or_init(|| {
            let dockerd = find("dockerd", &["/usr/sbin", "/usr/bin"]);
            let busybox = Some(PathBuf::from("/bin/busybox")).filter(|p| p.is_file()).or_else(|| find("busybox", &[]));
            match (dockerd, busybox) {
                (Some(dockerd), Some(busybox)) => Some(Engine::start(dockerd, busybox)),
                _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                    "CI=true but `dockerd` or a static `busybox` is missing: \
                     apt-get install -y docker.io busybox-static"
                ),
                _ => {
                    eprintln!(
                        "note: `dockerd` or `busybox` not found; skipping the Docker tests \
                         (apt-get install -y docker.io busybox-static to run them)"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// A test that uses the engine as it is.
pub async fn shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    GATE.read().await
}

/// A test that stops and restarts the engine: no other test runs meanwhile.
pub async fn exclusive() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

impl Engine {
    fn start(dockerd: PathBuf, busybox: PathBuf) -> Engine {
        // Short: a unix socket path has a length limit.
        let dir = PathBuf::from(format!("/tmp/cockpit-dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the engine's directory");
        let socket = dir.join("docker.sock");
        let engine = Engine {
            host: format!("unix://{}", socket.display()),
            socket,
            pidfile: dir.join("dockerd.pid"),
            log: dir.join("dockerd.log"),
            dir,
            dockerd,
            busybox,
            child: Mutex::new(None),
        };
        engine.watch();
        engine.start_daemon();
        engine
    }

    /// A detached process that waits for this test binary to exit, then
    /// stops the daemon (whichever instance is running) and cleans up.
    fn watch(&self) {
        let script = r#"
            parent=$1; dir=$2
            while kill -0 "$parent" 2>/dev/null; do sleep 0.2; done
            if [ -f "$dir/dockerd.pid" ]; then
                pid=$(cat "$dir/dockerd.pid")
                kill -TERM "$pid" 2>/dev/null
                i=0
                while [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && [ $i -lt 150 ]; do
                    sleep 0.2; i=$((i+1))
                done
                kill -KILL "$pid" 2>/dev/null
            fi
            rm -rf "$dir"
        "#;
        // `setsid -f` forks the watcher into its own session (a Ctrl-C to
        // the tests does not reach it) and returns at once.
        let status = Command::new("setsid")
            .args(["-f", "sh", "-c", script, "watcher"])
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start the engine's watcher (setsid, sh)");
        assert!(status.success(), "the engine's watcher did not start: {status}");
    }

    /// Starts `dockerd` and waits until it answers `/_ping`.
    pub fn start_daemon(&self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the engine log");
        let err = log.try_clone().expect("clone the log handle");
        let child = Command::new(&self.dockerd)
            .arg("--host")
            .arg(&self.host)
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(&self.pidfile)
            .args(["--bridge", "none", "--iptables=false"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start dockerd");
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + READY;
        while !self.ping() {
            if Instant::now() > deadline {
                panic!("dockerd did not answer within {READY:?}; its log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops `dockerd` (SIGTERM) and waits until it has exited.
    pub fn stop_daemon(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut child) = child else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + STOPPED;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /_ping` answered `OK`.
    pub fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&self.socket) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client of this engine, for checking what the backend did.
    pub async fn client(&self) -> bollard::Docker {
        bollard::Docker::connect_with_host(&self.host)
            .expect("connect to the test engine")
            .negotiate_version()
            .await
            .expect("negotiate the API version")
    }

    /// Writes a build context into `dir`: the busybox binary and `dockerfile`.
    pub fn context(&self, dir: &Path, dockerfile: &str) {
        std::fs::create_dir_all(dir).expect("create the context dir");
        std::fs::copy(&self.busybox, dir.join("busybox")).expect("copy busybox into the context");
        std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write the Dockerfile");
    }
}
