//! The real `cockpit --demo` binary in a pseudo-terminal, read through a
//! terminal emulator: it draws the stage groups and the four panes, `?`
//! shows help, and `q` or SIGTERM exits with the terminal restored.
//! Few and serial: each test waits for text with a deadline. One runs it
//! on the fake Kubernetes API server and promotes with a key.

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// One cockpit in a pty at a time: they share two cores with everything else.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Running {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    screen: Arc<Mutex<vt100::Parser>>,
    _master: Box<dyn MasterPty + Send>,
    _dir: tempfile::TempDir,
}

fn start(args: &[&str]) -> Running {
    start_with(args, &[])
}

fn start_with(args: &[&str], env: &[(&str, &str)]) -> Running {
    let pty = native_pty_system();
    let pair = pty.openpty(PtySize { rows: 30, cols: 100, pixel_width: 0, pixel_height: 0 }).expect("a pty");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_cockpit"));
    cmd.args(args);
    cmd.arg("--audit-log");
    cmd.arg(dir.path().join("audit.jsonl"));
    cmd.cwd(dir.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    cmd.env("XDG_CONFIG_HOME", dir.path());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = pair.slave.spawn_command(cmd).expect("cockpit starts");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("a reader");
    let writer = pair.master.take_writer().expect("a writer");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(30, 100, 0)));
    let sink = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("parser").process(&buf[..n]);
        }
    });
    Running { child, writer, screen, _master: pair.master, _dir: dir }
}

impl Running {
    fn contents(&self) -> String {
        self.screen.lock().expect("parser").screen().contents()
    }

    fn wait_for(&self, text: &str) {
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until {
            if self.contents().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("`{text}` did not appear within {DEADLINE:?}; the screen:\n{}", self.contents());
    }

    fn keys(&mut self, keys: &str) {
        self.writer.write_all(keys.as_bytes()).expect("typing");
        self.writer.flush().expect("typing");
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let until = Instant::now() + DEADLINE;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("cockpit did not exit within {DEADLINE:?}; the screen:\n{}", self.contents());
    }

    fn assert_restored(&self) {
        // Give the reader thread a moment to take in the last bytes.
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && self.screen.lock().expect("parser").screen().alternate_screen() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let parser = self.screen.lock().expect("parser");
        let screen = parser.screen();
        assert!(!screen.alternate_screen(), "left the alternate screen");
        assert!(!screen.hide_cursor(), "the cursor is visible again");
        assert_eq!(screen.mouse_protocol_mode(), vt100::MouseProtocolMode::None, "mouse capture is off");
    }
}

#[test]
fn demo_draws_the_cockpit_shows_help_and_quits_cleanly() {
    let _serial = serial();
    let mut app = start(&["--demo", "--scenario", "bad-canary"]);
    app.wait_for("MISSION CRITICAL");
    app.wait_for("Logs");
    let screen = app.contents();
    for needle in ["PROTOTYPE", "PRODUCTION", "Rollout", "Canary", "SLO", "SIMULATED"] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
    app.keys("?");
    app.wait_for("promote one step");
    app.keys("q"); // closes help
    app.wait_for("j/k move");
    app.keys("q");
    let status = app.wait_exit();
    assert!(status.success(), "{status:?}");
    app.assert_restored();
}

#[test]
fn signals_restore_the_terminal_and_exit_as_shells_expect() {
    let _serial = serial();
    for (signal, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let mut app = start(&["--demo"]);
        app.wait_for("MISSION CRITICAL");
        let pid = app.child.process_id().expect("a pid");
        let sent = std::process::Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
        assert!(sent.expect("kill runs").success());
        let status = app.wait_exit();
        assert_eq!(status.exit_code(), code, "SIG{signal}: {status:?}");
        app.assert_restored();
    }
}

#[test]
fn a_lost_terminal_is_a_quiet_exit() {
    let _serial = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let stderr = dir.path().join("stderr");
    // The shell only sends cockpit's stderr to a file, so that what it
    // says after the terminal is gone can be read.
    let script = format!("exec \"$0\" --demo 2>'{}'", stderr.display());
    let pty = native_pty_system();
    let pair = pty.openpty(PtySize { rows: 30, cols: 100, pixel_width: 0, pixel_height: 0 }).expect("a pty");
    let mut cmd = CommandBuilder::new("sh");
    cmd.args(["-c", &script, env!("CARGO_BIN_EXE_cockpit")]);
    cmd.cwd(dir.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env("XDG_CONFIG_HOME", dir.path());
    cmd.env("XDG_STATE_HOME", dir.path());
    let mut child = pair.slave.spawn_command(cmd).expect("cockpit starts");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("a reader");
    // Wait until it has drawn, then close the terminal under it.
    let mut seen = Vec::new();
    let until = Instant::now() + DEADLINE;
    let mut buf = [0u8; 8192];
    while Instant::now() < until && !String::from_utf8_lossy(&seen).contains("MISSION CRITICAL") {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(String::from_utf8_lossy(&seen).contains("MISSION CRITICAL"), "it drew first");
    // Every handle on the terminal's side goes: the pty is closed.
    drop(reader);
    drop(pair.master);
    let until = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        assert!(Instant::now() < until, "cockpit did not exit after its terminal closed");
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(said.trim().is_empty(), "a lost terminal is a quiet exit, said:\n{said}");
    assert_eq!(status.exit_code(), 129, "as on SIGHUP: {status:?}");
}

#[test]
fn a_malformed_config_is_refused_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cockpit.toml");
    std::fs::write(&path, "team = \"shop\"\n[[service]]\nname = \"x\"\nstage = \"prod\"\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("cockpit runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}:4:9", path.display())), "{stderr}");
    assert!(stderr.contains("mission-critical"), "{stderr}");
}

#[test]
fn a_team_screen_process_stays_read_only_on_the_main_screen() {
    let _serial = serial();
    let mut app = start(&["--demo", "--team-screen", "--scenario", "bad-canary"]);
    app.wait_for("TEAM SCREEN");
    app.wait_for("read-only");
    app.wait_for("What changed");
    app.keys("T");
    app.wait_for("Rollout · checkout");
    app.keys("p");
    app.wait_for("read-only: promote is disabled");
    app.keys("q");
    let status = app.wait_exit();
    assert!(status.success(), "{status:?}");
    app.assert_restored();
}

#[test]
fn on_a_cluster_the_screen_fills_in_and_p_moves_the_route_weight_on_the_server() {
    use cockpit::devtools::fake_apiserver::{Config, ControllerConfig, FakeApiServer};
    let _serial = serial();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let controller = ControllerConfig { speed: 40.0, ..ControllerConfig::default() };
    let server = runtime.block_on(FakeApiServer::start(Config { controller: Some(controller), ..Config::default() }));
    let server = server.expect("the fake API server starts");
    server.seed(0, 0).expect("seeded");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("a kubeconfig");
    let kubeconfig = kubeconfig.display().to_string();
    let mut app = start_with(&["--namespace", "shop"], &[("KUBECONFIG", kubeconfig.as_str())]);
    app.wait_for("MISSION CRITICAL");
    app.wait_for("● live");
    app.wait_for("kubernetes fake");
    assert!(!app.contents().contains("SIMULATED"), "{}", app.contents());
    app.keys("G"); // the last service: checkout
    app.wait_for("Canary · checkout");
    app.keys("p");
    // No metrics source: the mission-critical gate stays shut and says why.
    app.wait_for("Forced promote of checkout");
    let asked = app.contents().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(asked.contains("metrics source"), "{}", app.contents());
    app.keys("checkout\r");
    app.wait_for("canary 10 → 25 %");
    let _context = runtime.enter();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let routes: kube::Api<gateway_api::apis::standard::httproutes::HttpRoute> = kube::Api::namespaced(client, "shop");
    let route = runtime.block_on(routes.get("checkout")).expect("the route");
    let weights: Vec<i32> =
        route.spec.rules.unwrap()[0].backend_refs.clone().unwrap().iter().filter_map(|b| b.weight).collect();
    assert_eq!(weights, [75, 25]);
    app.keys(":ctx\r");
    app.wait_for("contexts: fake");
    app.keys("q");
    let status = app.wait_exit();
    assert!(status.success(), "{status:?}");
    app.assert_restored();
}
