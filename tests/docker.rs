//! The Docker backend against a real engine (`common/docker.rs` starts one
//! `dockerd` for this test binary). Each test drives the backend through
//! the real executor and folds what the source sends into the real state,
//! then checks what the user would see: the rollout pane's build line, the
//! log lines, the rollout phase, the connection, and the images and
//! containers the engine really has.
//!
//! Without `dockerd` (and a static busybox) the tests print a note and
//! pass, except under `CI=true`, where they fail.

mod common;
#[path = "common/docker.rs"]
mod engine;

use cockpit::action::Keymap;
use cockpit::audit::AuditLog;
use cockpit::backend::docker::{self, DockerOptions, DockerWorkloads};
use cockpit::backend::{
    ActionContext, BackendError, Change, Facts, NO_WORKLOADS, Plan, Snapshot, Split, Workloads, config_inventory,
};
use cockpit::clock::Clock;
use cockpit::config::Config;
use cockpit::domain::{RolloutPhase, Timestamp};
use cockpit::event::{BuildStatus, ConnectionState, ExecEvent, Op, Request, SourceEvent};
use cockpit::executor::Executor;
use cockpit::state::{AppState, Msg, update};
use cockpit::theme::Theme;
use engine::Engine;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Builds and container starts on two shared cores: generous, never slept.
const DEADLINE: Duration = Duration::from_secs(90);

/// The backend, its source task, the executor and the state, wired as
/// `main` wires them.
/// A cluster that records what reaches it.
#[derive(Clone, Default)]
struct Recorder {
    applied: Arc<AtomicU64>,
}

impl Workloads for Recorder {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        Err(BackendError::NotFound(service.into()))
    }

    async fn apply(&self, _service: &str, plan: &Plan, _context: &ActionContext) -> Result<Change, BackendError> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(Change { before: Snapshot::default(), after: Snapshot::default(), summary: format!("{plan:?}") })
    }
}

struct Rig {
    backend: DockerWorkloads,
    executor: Executor<DockerWorkloads>,
    state: AppState,
    inbox: mpsc::Receiver<Msg>,
    /// Every source event received, in order.
    seen: Vec<SourceEvent>,
    source: JoinHandle<()>,
    next_id: u64,
    dir: tempfile::TempDir,
}

impl Rig {
    /// `services` is the `[[service]]` part of a config; build contexts are
    /// relative to the rig's temp dir.
    fn new(engine: &Engine, services: &str) -> Rig {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!("[docker]\nhost = \"{}\"\n\n{services}", engine.host);
        let config = Config::parse(&text, Path::new("cockpit.toml")).expect("the test config parses");
        let (events, inbox) = mpsc::channel(4096);
        let clock = Clock::system();
        let options = DockerOptions {
            network_mode: Some("none".into()),
            poll: Duration::from_millis(200),
            ..DockerOptions::default()
        };
        let backend = DockerWorkloads::new(&config, dir.path(), clock, events, options);
        let (mut info, services) = config_inventory(&config, backend.host());
        info.kind = "docker".into();
        let executor = Executor::new(backend.clone(), false, AuditLog::at(dir.path().join("audit.jsonl")), clock)
            .with_identity("tester", &info.kind, &info.context);
        let mut state = AppState::new(info.clone(), Keymap::default(), false, 10_000);
        update(&mut state, Timestamp::now(), Msg::Resize { width: 160, height: 45 });
        update(&mut state, Timestamp::now(), Msg::Source(SourceEvent::Inventory { backend: info, services }));
        let source = tokio::spawn(docker::run(backend.clone()));
        Rig { backend, executor, state, inbox, seen: Vec::new(), source, next_id: 1, dir }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs one request through the executor (policy included) and folds
    /// the answer in, as the loop does.
    async fn request(&mut self, service: &str, op: Op) -> ExecEvent {
        let request = Request {
            id: self.next_id,
            service: service.into(),
            op,
            confirmed: false,
            typed_name: None,
            asked_token: None,
        };
        self.next_id += 1;
        let answer = self.executor.execute(request).await;
        update(&mut self.state, Timestamp::now(), Msg::Exec(answer.clone()));
        answer
    }

    /// Folds in what the sources send until `done` holds for the state.
    async fn until(&mut self, what: &str, mut done: impl FnMut(&Rig) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.inbox.recv()).await {
                Ok(Some(msg)) => {
                    if let Msg::Source(event) = &msg {
                        self.seen.push(event.clone());
                    }
                    update(&mut self.state, Timestamp::now(), msg);
                }
                Ok(None) => panic!("the event channel closed while waiting for {what}"),
                Err(_) => panic!("no {what} within {DEADLINE:?}; last events: {:#?}", self.tail_of_seen()),
            }
        }
    }

    fn tail_of_seen(&self) -> &[SourceEvent] {
        &self.seen[self.seen.len().saturating_sub(8)..]
    }

    fn select(&mut self, service: &str) {
        let target = self.state.services.iter().position(|s| s.info.name == service).expect("service exists");
        self.state.selected = target;
        self.state.user_moved = true;
    }

    fn screen(&mut self, service: &str) -> String {
        self.select(service);
        common::render(&self.state, 160, 45, &Theme::default())
    }

    fn build(&self, service: &str) -> Option<&BuildStatus> {
        self.state.service(service).and_then(|s| s.build.as_ref())
    }

    fn finished_build(&self, service: &str) -> bool {
        self.build(service).is_some_and(|b| !b.running())
    }

    /// Log lines of `service` as (container, text), oldest first.
    fn log_lines(&self, service: &str) -> Vec<(String, String)> {
        let Some(s) = self.state.service(service) else { return Vec::new() };
        s.logs.iter().map(|l| (l.pod.to_string(), l.text.clone())).collect()
    }

    /// Rebuilds through the executor and waits for the build to finish.
    async fn rebuild(&mut self, service: &str) -> BuildStatus {
        let before = self.seen.len();
        let answer = self.request(service, Op::Rebuild).await;
        assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
        let finished = |r: &Rig| {
            r.seen[before..]
                .iter()
                .any(|e| matches!(e, SourceEvent::Build { service: s, build } if s == service && !build.running()))
        };
        self.until("a finished build", finished).await;
        assert!(self.finished_build(service));
        self.build(service).cloned().expect("a build")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.source.abort();
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=tester", "-c", "user.email=tester@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

const APP: &str =
    "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY . /app\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_is_tagged_with_the_commit_and_shows_every_step() {
    let Some(engine) = engine::engine() else { return };
    let _shared = engine::shared().await;
    let mut rig = Rig::new(
        engine,
        "[[service]]\nname = \"web\"\nstage = \"prototype\"\n[service.build]\ncontext = \"web\"\nimage = \"cockpit-test/web:dev\"\n\n\
         [[service]]\nname = \"billing\"\nstage = \"production\"\n",
    );
    let context = rig.path("web");
    engine.context(&context, APP);
    std::fs::write(context.join(".dockerignore"), "secret.txt\n").expect("write .dockerignore");
    std::fs::write(context.join("secret.txt"), "do not send").expect("write a secret");
    git(&context, &["init", "-q"]);
    git(&context, &["add", "-A"]);
    git(&context, &["commit", "-q", "-m", "first"]);
    let commit = git(&context, &["rev-parse", "--short", "HEAD"]);

    let build = rig.rebuild("web").await;
    let tag = format!("cockpit-test/web:{commit}");
    assert_eq!(build.error, None, "{:#?}", build.output);
    assert_eq!(build.tag.as_deref(), Some(tag.as_str()));
    assert_eq!((build.step, build.of), (4, 4), "the last step of four was reached");
    assert!(build.output.iter().any(|l| l.starts_with("Step 3/4 : RUN")), "{:#?}", build.output);
    let steps: Vec<u32> = rig
        .seen
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Build { service, build } if service == "web" => Some(build.step),
            _ => None,
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]) && steps.contains(&1) && steps.contains(&4), "{steps:?}");
    let screen = rig.screen("web");
    assert!(screen.contains(&format!("built {tag}")), "{screen}");
    assert!(screen.contains(&format!("built {tag}; press d to deploy it")), "the toast offers deploy:\n{screen}");

    // The engine has the image, built from the context minus .dockerignore.
    let docker = engine.client().await;
    let image = docker.inspect_image(&tag).await.expect("the tagged image exists");
    assert!(image.repo_tags.unwrap_or_default().contains(&tag));

    // Built here and never pushed: not sent to a cluster, which could not pull it.
    let cluster = Recorder::default();
    let split = Split { docker: rig.backend.clone(), cluster: cluster.clone() };
    let acting = ActionContext { user: "tester".into(), token: 0 };
    let local = split.apply("web", &Plan::DeployPrimary { image: tag.clone() }, &acting).await;
    let Err(BackendError::Unsupported(why)) = local else { panic!("{local:?}") };
    assert!(why.contains("never pushed") && why.contains(&format!("docker push {tag}")), "{why}");
    assert_eq!(cluster.applied.load(Ordering::SeqCst), 0);
    let remote = Plan::StartCanary { image: "registry.example/shop/web:1.0.0".into(), weight: 5 };
    split.apply("web", &remote, &acting).await.expect("an image the engine does not hold goes to the cluster");
    assert_eq!(cluster.applied.load(Ordering::SeqCst), 1);

    // Uncommitted changes: the tag says so.
    std::fs::write(context.join("new.txt"), "change").expect("change the context");
    let build = rig.rebuild("web").await;
    assert_eq!(build.tag, Some(format!("cockpit-test/web:{commit}-dirty")));

    // A service with neither [service.build] nor [service.dev]: the usual answer.
    let answer = rig.request("billing", Op::Rebuild).await;
    let ExecEvent::Failed { error, .. } = answer else { panic!("{answer:?}") };
    assert!(error.contains(NO_WORKLOADS), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_names_the_step_and_keeps_the_output() {
    let Some(engine) = engine::engine() else { return };
    let _shared = engine::shared().await;
    let mut rig = Rig::new(
        engine,
        "[[service]]\nname = \"broken\"\nstage = \"prototype\"\n[service.build]\ncontext = \"broken\"\nimage = \"cockpit-test/broken\"\n\n\
         [[service]]\nname = \"missing\"\nstage = \"prototype\"\n[service.build]\ncontext = \"missing\"\ndockerfile = \"build/Dockerfile\"\nimage = \"cockpit-test/missing\"\n",
    );
    engine.context(&rig.path("broken"), "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n");
    let build = rig.rebuild("broken").await;
    let error = build.error.clone().expect("the build failed");
    assert!(error.starts_with("step 3/3 `RUN [\"/bin/busybox\", \"false\"]`"), "{error}");
    assert!(error.contains("returned a non-zero code: 1"), "{error}");
    assert_eq!(build.tag, None);
    assert!(build.output.iter().any(|l| l == "Step 1/3 : FROM scratch"), "output is kept: {:#?}", build.output);
    let screen = rig.screen("broken");
    assert!(screen.contains("build failed at step 3/3"), "{screen}");

    let context = rig.path("missing");
    std::fs::create_dir_all(context.join("build")).expect("mkdir");
    std::fs::write(context.join("build/Dockerfile"), "FROM scratch\nCOPY nothere /x\n").expect("write");
    let build = rig.rebuild("missing").await;
    let error = build.error.clone().expect("the build failed");
    assert!(error.starts_with("step 2/2 `COPY nothere /x`"), "{error}");
    assert!(error.contains("nothere"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_container_streams_logs_restarts_in_order_and_rolls_back() {
    let Some(engine) = engine::engine() else { return };
    let _shared = engine::shared().await;
    let mut rig = Rig::new(
        engine,
        "[[service]]\nname = \"hello\"\nstage = \"prototype\"\n[service.build]\ncontext = \"hello\"\nimage = \"cockpit-test/hello\"\n\
         [service.dev]\ncommand = [\"/bin/sh\", \"-c\", \"echo hello from $NAME; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done\"]\n\
         env = { NAME = \"dev\" }\nports = [\"8080:8080\"]\n\n\
         [[service]]\nname = \"crash\"\nstage = \"prototype\"\n[service.build]\ncontext = \"hello\"\nimage = \"cockpit-test/hello\"\n\
         [service.dev]\ncommand = [\"/bin/sh\", \"-c\", \"echo bye; exit 3\"]\n",
    );
    let context = rig.path("hello");
    engine.context(&context, APP);
    git(&context, &["init", "-q"]);
    git(&context, &["add", "-A"]);
    git(&context, &["commit", "-q", "-m", "first"]);
    let first = rig.rebuild("hello").await.tag.expect("built");
    std::fs::write(context.join("v2.txt"), "2").expect("change");
    let second = rig.rebuild("hello").await.tag.expect("built again");
    assert_ne!(first, second);

    // Before any deploy the pane says there is no container yet.
    rig.until("the not-created rollout", |r| {
        r.state.service("hello").and_then(|s| s.rollout.as_ref()).is_some_and(|s| s.phase == RolloutPhase::Paused)
    })
    .await;

    // Deploy (prototype: straight to the primary, no question).
    let answer = rig.request("hello", Op::Deploy { image: first.clone() }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let old = rig.backend.container("hello").await.expect("engine reachable").expect("a dev container");
    assert!(old.running);
    rig.until("hello and two ticks", |r| {
        let lines = r.log_lines("hello");
        lines.iter().any(|(_, t)| t == "hello from dev") && lines.iter().any(|(_, t)| t == "tick 2")
    })
    .await;
    rig.until("a complete rollout", |r| {
        r.state.service("hello").and_then(|s| s.rollout.as_ref()).is_some_and(|s| s.phase == RolloutPhase::Complete)
    })
    .await;
    assert!(rig.log_lines("hello").iter().all(|(pod, _)| *pod == old.name), "pod = container name");
    let screen = rig.screen("hello");
    assert!(screen.contains("hello from dev"), "{screen}");

    // Restart: a new container; the old lines stay, the new ones follow them.
    // Through the executor, as the R key sends it: policy and audit included.
    let answer = rig.request("hello", Op::Restart).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let new = rig.backend.container("hello").await.expect("engine reachable").expect("a dev container");
    assert_ne!(new.id, old.id, "a restart is a new container");
    rig.until("the new container's first lines", |r| {
        r.log_lines("hello").iter().any(|(pod, t)| *pod == new.name && t == "tick 1")
    })
    .await;
    let lines = rig.log_lines("hello");
    let first_new = lines.iter().position(|(pod, _)| *pod == new.name).expect("new lines");
    assert!(lines[..first_new].iter().all(|(pod, _)| *pod == old.name), "old lines first: {lines:#?}");
    assert!(lines[first_new..].iter().all(|(pod, _)| *pod == new.name), "then only new ones: {lines:#?}");
    assert_eq!(lines[0].1, "hello from dev");
    assert_eq!(lines[first_new].1, "hello from dev");
    for pod in [&old.name, &new.name] {
        let ticks: Vec<u32> =
            lines.iter().filter(|(p, _)| p == pod).filter_map(|(_, t)| t.strip_prefix("tick ")?.parse().ok()).collect();
        assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{pod}: ticks in order, none lost: {ticks:?}");
    }

    // Deploy the second image, then roll back to the first.
    let answer = rig.request("hello", Op::Deploy { image: second.clone() }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let answer = rig.request("hello", Op::Rollback).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    rig.until("the rolled-back rollout", |r| {
        r.state
            .service("hello")
            .and_then(|s| s.rollout.as_ref())
            .is_some_and(|s| s.image == first && s.phase == RolloutPhase::Complete && s.revisions.len() == 2)
    })
    .await;
    let rollout = rig.state.service("hello").and_then(|s| s.rollout.clone()).expect("rollout");
    let images: Vec<&str> = rollout.revisions.iter().map(|r| r.image.as_str()).collect();
    assert_eq!(images, [first.as_str(), second.as_str()], "images it ran, newest first");

    // A container that exits non-zero is a failed rollout with its exit code.
    let answer = rig.request("crash", Op::Deploy { image: first.clone() }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    rig.until("a failed rollout", |r| {
        r.state.service("crash").and_then(|s| s.rollout.as_ref()).is_some_and(|s| s.phase == RolloutPhase::Failed)
    })
    .await;
    let rollout = rig.state.service("crash").and_then(|s| s.rollout.clone()).expect("rollout");
    assert!(rollout.conditions.iter().any(|c| c.message.contains("exited with code 3")), "{rollout:?}");
    rig.until("the crashed container's line", |r| r.log_lines("crash").iter().any(|(_, t)| t == "bye")).await;

    // Stop: paused, not failed.
    let answer = rig.request("hello", Op::Stop).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    rig.until("a stopped (paused) rollout", |r| {
        r.state.service("hello").and_then(|s| s.rollout.as_ref()).is_some_and(|s| s.phase == RolloutPhase::Paused)
    })
    .await;

    // Clean up what this test created.
    let docker = engine.client().await;
    for service in ["hello", "crash"] {
        if let Ok(Some(c)) = rig.backend.container(service).await {
            let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
            let _ = docker.remove_container(&c.id, Some(options)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_reports_a_lost_engine_and_its_return() {
    let Some(engine) = engine::engine() else { return };
    let _exclusive = engine::exclusive().await;
    let mut rig = Rig::new(
        engine,
        "[[service]]\nname = \"api\"\nstage = \"prototype\"\n[service.build]\ncontext = \"api\"\nimage = \"cockpit-test/api\"\n",
    );
    let live = |r: &Rig| r.state.connections.get(docker::SOURCE) == Some(&ConnectionState::Live);
    rig.until("a live connection", live).await;

    engine.stop_daemon();
    rig.until("a disconnected connection", |r| {
        matches!(r.state.connections.get(docker::SOURCE), Some(ConnectionState::Disconnected { .. }))
    })
    .await;
    let Some(ConnectionState::Disconnected { reason, .. }) = rig.state.connections.get(docker::SOURCE).cloned() else {
        unreachable!()
    };
    assert!(reason.starts_with("docker is not reachable: "), "{reason}");
    let screen = rig.screen("api");
    assert!(screen.contains("docker"), "{screen}");

    // Rebuild answers clearly, and nothing crashed.
    let answer = rig.request("api", Op::Rebuild).await;
    let ExecEvent::Failed { error, .. } = answer else { panic!("{answer:?}") };
    assert!(error.contains("docker is not reachable: "), "{error}");
    assert!(!rig.source.is_finished(), "the source keeps running");

    engine.start_daemon();
    rig.until("the connection live again", live).await;
    assert!(!rig.source.is_finished());
}

/// A container's (dev) state now, as the rollout pane shows it.
fn rollout_of(rig: &Rig, service: &str) -> Option<cockpit::domain::RolloutStatus> {
    rig.state.service(service).and_then(|s| s.rollout.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_is_joined_from_its_frames_and_its_cut_tells_the_true_size() {
    let Some(engine) = engine::engine() else { return };
    let _shared = engine::shared().await;
    // One line of 200 000 bytes (the engine splits it into 16 KiB frames
    // sharing one timestamp), then two short ones.
    let mut rig = Rig::new(
        engine,
        r#"[[service]]
name = "long"
stage = "prototype"
[service.build]
context = "long"
image = "cockpit-test/long"
[service.dev]
command = ["/bin/sh", "-c", "echo before; head -c 200000 /dev/zero | tr '\\000' x; echo; echo after; echo done"]
"#,
    );
    engine.context(&rig.path("long"), APP);
    let image = rig.rebuild("long").await.tag.expect("built");
    let answer = rig.request("long", Op::Deploy { image }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    rig.until("the last line", |r| r.log_lines("long").iter().any(|(_, t)| t == "done")).await;

    let texts: Vec<String> = rig.log_lines("long").into_iter().map(|(_, t)| t).collect();
    let max_line = DockerOptions::default().max_line;
    let long = format!("{} … [cut {} bytes]", "x".repeat(max_line), 200_000 - max_line);
    let shown: Vec<String> = texts
        .iter()
        .map(|t| if t.len() > 80 { format!("{}… ({} bytes)", &t[..40], t.len()) } else { t.clone() })
        .collect();
    assert_eq!(texts.len(), 4, "before, the long line once, after, done: {shown:#?}");
    assert_eq!(texts[0], "before");
    assert!(texts[1] == long, "the long line, cut at {max_line} bytes with the true size cut: {:?}", shown[1]);
    assert_eq!(texts[2..], ["after", "done"], "the following lines once each, in order");

    // On screen, wrapped (w), the marker and the next line.
    rig.select("long");
    update(&mut rig.state, Timestamp::now(), Msg::Key(cockpit::action::Key::char('w')));
    let screen = rig.screen("long");
    let flat: String = screen.split_whitespace().collect();
    assert!(flat.contains(&format!("[cut{}bytes]", 200_000 - max_line)), "{screen}");
    assert!(screen.contains("after"), "{screen}");
    assert!(!screen.contains("[cut 12288 bytes]"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_dev_container_is_reported_in_dockers_words() {
    let Some(engine) = engine::engine() else { return };
    let _shared = engine::shared().await;
    let mut rig = Rig::new(
        engine,
        "[[service]]\nname = \"victim\"\nstage = \"prototype\"\n[service.build]\ncontext = \"victim\"\nimage = \"cockpit-test/victim\"\n\
         [service.dev]\ncommand = [\"/bin/sh\", \"-c\", \"echo up; while true; do sleep 1; done\"]\n\n\
         [[service]]\nname = \"hog\"\nstage = \"prototype\"\n[service.dev]\nimage = \"cockpit-test/victim\"\n",
    );
    engine.context(&rig.path("victim"), APP);
    let image = rig.rebuild("victim").await.tag.expect("built");
    let answer = rig.request("victim", Op::Deploy { image: image.clone() }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    rig.until("the container up", |r| r.log_lines("victim").iter().any(|(_, t)| t == "up")).await;
    rig.until("a complete rollout", |r| rollout_of(r, "victim").is_some_and(|s| s.phase == RolloutPhase::Complete))
        .await;
    let container = rig.backend.container("victim").await.expect("engine reachable").expect("a dev container");

    // `docker kill`: SIGKILL from the engine, not from cockpit.
    let docker = engine.client().await;
    docker.kill_container(&container.id, None).await.expect("the engine kills the container");
    rig.until("a failed rollout", |r| rollout_of(r, "victim").is_some_and(|s| s.phase == RolloutPhase::Failed)).await;

    let inspected = docker.inspect_container(&container.id, None).await.expect("inspect");
    let finished = inspected.state.and_then(|s| s.finished_at).expect("a finish time");
    let at = Timestamp::parse_rfc3339(&finished).expect("an RFC 3339 finish time").clock();
    let rollout = rollout_of(&rig, "victim").expect("rollout");
    let condition = rollout.conditions.iter().find(|c| !c.ok).expect("a failing condition");
    assert_eq!(condition.reason, "Killed", "{rollout:?}");
    assert!(condition.message.contains(&format!("exited with code 137 (killed) at {at}")), "{rollout:?}");
    assert!(!condition.message.contains("deadline"), "{rollout:?}");
    // The rollout pane's condition: the reason and the code; with room, the time too.
    let screen = rig.screen("victim");
    assert!(screen.contains("✗ Failed"), "{screen}");
    assert!(screen.contains("Container ✗ Killed  exited with code 137 (killed)"), "{screen}");
    let wide = common::render(&rig.state, 200, 45, &Theme::default());
    assert!(wide.contains(&format!("Container ✗ Killed  exited with code 137 (killed) at {at}")), "{wide}");

    // The kernel's OOM killer: a container made by hand with the service's
    // label, under a memory limit it outgrows.
    let limit = 16 << 20;
    let body = bollard::models::ContainerCreateBody {
        image: Some(image),
        cmd: Some(["/bin/sh", "-c", "echo eating; tail -c 268435456 /dev/zero"].map(String::from).to_vec()),
        labels: Some([(docker::LABEL_SERVICE.to_owned(), "hog".to_owned())].into()),
        host_config: Some(bollard::models::HostConfig {
            memory: Some(limit),
            memory_swap: Some(limit),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let hog =
        docker.create_container(None::<bollard::query_parameters::CreateContainerOptions>, body).await.expect("create");
    docker.start_container(&hog.id, None).await.expect("start");
    rig.until("an OOM-killed rollout", |r| rollout_of(r, "hog").is_some_and(|s| s.phase == RolloutPhase::Failed)).await;
    let inspected = docker.inspect_container(&hog.id, None).await.expect("inspect");
    let state = inspected.state.expect("a state");
    assert_eq!(state.oom_killed, Some(true), "the engine says OOM: {state:?}");
    let at = Timestamp::parse_rfc3339(&state.finished_at.expect("a finish time")).expect("RFC 3339").clock();
    let rollout = rollout_of(&rig, "hog").expect("rollout");
    let condition = rollout.conditions.iter().find(|c| !c.ok).expect("a failing condition");
    assert_eq!(condition.reason, "OOMKilled", "{rollout:?}");
    assert!(condition.message.contains(&format!("exited with code 137 (OOM-killed) at {at}")), "{rollout:?}");
    let screen = rig.screen("hog");
    assert!(screen.contains("Container ✗ OOMKilled  exited with code 137 (OOM-killed)"), "{screen}");

    for id in [&container.id, &hog.id] {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = docker.remove_container(id, Some(options)).await;
    }
}
