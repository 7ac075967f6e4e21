//! One path: the TUI loop and the headless commands, built by the same
//! composition root, reach the same decision for the same facts on every
//! backend mix: the simulated fleet, a cluster, a cluster with Prometheus,
//! Prometheus alone and Docker. Above all, the mission-critical gate fails
//! closed wherever its inputs are missing.
//!
//! Prometheus and Docker stand at addresses where nothing answers: what is
//! checked is what cockpit does *without* their answers. Their real
//! answers are tested in `prometheus.rs` and `docker.rs`.

mod common;

use cockpit::action::{Action, Key};
use cockpit::audit::{AuditEntry, AuditLog};
use cockpit::compose::{Mix, Runtime, Settings};
use cockpit::config::{Config, Scenario};
use cockpit::devtools::fake_apiserver::{Config as ServerConfig, ControllerConfig, FakeApiServer};
use cockpit::headless::{self, Command};
use cockpit::state::{AppState, Modal, PromptPurpose};
use cockpit::theme::Theme;
use std::path::PathBuf;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(30);
/// An address where nothing listens: a metrics source that never answers.
const NOBODY: &str = "http://127.0.0.1:9";

/// A world to compose cockpits on: settings with their own audit log.
struct World {
    dir: tempfile::TempDir,
    config: String,
    demo: Option<Scenario>,
    kubeconfig: Option<PathBuf>,
    _server: Option<FakeApiServer>,
}

impl World {
    fn sim(scenario: Scenario) -> World {
        World {
            dir: tempfile::tempdir().expect("dir"),
            config: String::new(),
            demo: Some(scenario),
            kubeconfig: None,
            _server: None,
        }
    }

    fn local(config: &str) -> World {
        World {
            dir: tempfile::tempdir().expect("dir"),
            config: config.into(),
            demo: None,
            kubeconfig: None,
            _server: None,
        }
    }

    /// The fake cluster's shop team: checkout is mission-critical, its
    /// canary at 10 % on an HTTPRoute.
    async fn cluster(extra: &str) -> World {
        let controller = ControllerConfig {
            tick: Duration::from_millis(50),
            log_interval: Duration::from_secs(3600),
            ..ControllerConfig::default()
        };
        let server = FakeApiServer::start(ServerConfig { controller: Some(controller), ..ServerConfig::default() })
            .await
            .expect("the fake API server starts");
        server.seed(0, 0).expect("the shop team");
        let dir = tempfile::tempdir().expect("dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
        World {
            dir,
            config: format!("[kubernetes]\nnamespaces = [\"shop\"]\n{extra}"),
            demo: None,
            kubeconfig: Some(kubeconfig),
            _server: Some(server),
        }
    }

    fn audit_path(&self, path: &str) -> PathBuf {
        self.dir.path().join(format!("{path}-audit.jsonl"))
    }

    fn settings(&self, path: &str) -> Settings {
        let config: Config = toml::from_str(&self.config).expect("the test config parses");
        let mut settings = Settings::new(config);
        settings.demo = self.demo.is_some();
        if let Some(scenario) = self.demo {
            settings.sim.scenario = scenario;
            settings.sim.start = cockpit::domain::Timestamp::now();
        }
        settings.kubeconfig = self.kubeconfig.clone();
        settings.audit_log = Some(self.audit_path(path));
        settings.user = "alice".into();
        settings.kube_backoff = Some((Duration::from_millis(50), Duration::from_millis(400)));
        settings
    }

    fn audit(&self, path: &str) -> Vec<AuditEntry> {
        AuditLog::read(&self.audit_path(path)).unwrap_or_default()
    }

    /// `cockpit promote SERVICE --yes`: the exit code.
    async fn headless_promote(&self, service: &str) -> i32 {
        let runtime = Runtime::compose(self.settings("headless")).expect("composes");
        let command = Command::Promote { service: service.into(), full: false, yes: true, force: None };
        headless::run(runtime, command).await
    }

    /// The TUI: select `service`, press `p`, and return the state once the
    /// answer is on screen.
    async fn tui_promote(&self, service: &str) -> AppState {
        let mut runtime = Runtime::compose(self.settings("tui")).expect("composes");
        let mut pressed = false;
        common::drive(&mut runtime, DEADLINE, |state, press| {
            if pressed {
                return (state.modal.is_some() || !said(state).is_empty()).then(|| state.clone());
            }
            let index = state.services.iter().position(|s| s.info.name == service)?;
            if state.services[index].traffic.is_none() && runtime_has_traffic(state) {
                return None;
            }
            state.selected = index;
            state.user_moved = true;
            press(Key::char('p'));
            pressed = true;
            None
        })
        .await
    }
}

/// A backend with workloads reports traffic before a promotion can be judged.
fn runtime_has_traffic(state: &AppState) -> bool {
    state.backend.kind == "kubernetes" || state.backend.kind == "sim"
}

fn screen(state: &AppState) -> String {
    common::render(state, 160, 45, &Theme::default())
}

/// What the messages say, newest last.
fn said(state: &AppState) -> String {
    state.toasts.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// The gate's reason, if the screen asks for the typed name.
fn gate(state: &AppState) -> Option<String> {
    match &state.modal {
        Some(Modal::Prompt { purpose: PromptPurpose::TypeName { reason, .. }, .. }) => Some(reason.clone()),
        _ => None,
    }
}

/// The one audit entry a path wrote.
fn only(entries: &[AuditEntry]) -> &AuditEntry {
    assert_eq!(entries.len(), 1, "{entries:?}");
    &entries[0]
}

#[tokio::test]
async fn sim_a_failing_canary_closes_the_gate_on_both_paths() {
    let world = World::sim(Scenario::BadCanary);
    assert_eq!(world.settings("x").mix(), Ok(Mix::Sim));
    assert_eq!(world.headless_promote("checkout").await, headless::exit::NOT_DONE);
    let refused = only(&world.audit("headless")).clone();
    assert_eq!((refused.outcome.as_str(), refused.forced), ("refused", false));
    let state = world.tui_promote("checkout").await;
    let reason = gate(&state).unwrap_or_else(|| panic!("the gate asks for the name:\n{}", screen(&state)));
    // Each path runs on its own fleet, a moment apart: the same checks fail,
    // the figures may differ in the last digit.
    for said in [&reason, &refused.detail] {
        assert!(said.contains("canary failing (canary success") && said.contains("SLO is paging"), "{said}");
    }
}

#[tokio::test]
async fn cluster_without_metrics_closes_the_gate_on_both_paths() {
    let world = World::cluster("").await;
    assert_eq!(world.settings("x").mix(), Ok(Mix::Cluster { prometheus: false, docker: false }));
    assert_eq!(world.headless_promote("checkout").await, headless::exit::NOT_DONE);
    let refused = only(&world.audit("headless")).clone();
    assert_eq!(refused.outcome, "refused");
    assert!(refused.detail.contains("no metrics source configured"), "{}", refused.detail);
    let state = world.tui_promote("checkout").await;
    let reason = gate(&state).unwrap_or_else(|| panic!("the gate asks for the name:\n{}", screen(&state)));
    assert!(refused.detail.contains(&reason), "same reason on both paths: {} vs {reason}", refused.detail);
    // Status counts the unmeasured as unknown, never as ok.
    let mut runtime = Runtime::compose(world.settings("status")).expect("composes");
    runtime.sync(DEADLINE).await.expect("syncs");
    let report = headless::status(&runtime.state);
    assert_eq!(report.summary.ok, 0, "{:?}", report.summary);
    assert_eq!(report.summary.unknown, report.services.len());
    // So does the team screen: `?` and a count of its own.
    runtime.state.team_screen = true;
    let board = screen(&runtime.state);
    let header = board.lines().next().unwrap_or_default();
    assert!(header.contains("0 ok · 3 unknown"), "{header}");
    assert!(board.contains("? checkout") && board.contains("no SLO data"), "{board}");
}

#[tokio::test]
async fn cluster_with_an_unanswering_prometheus_closes_the_gate_on_both_paths() {
    let world = World::cluster(&format!("[prometheus]\nurl = \"{NOBODY}\"\n")).await;
    assert_eq!(world.settings("x").mix(), Ok(Mix::Cluster { prometheus: true, docker: false }));
    assert_eq!(world.headless_promote("checkout").await, headless::exit::NOT_DONE);
    let refused = only(&world.audit("headless")).clone();
    assert_eq!(refused.outcome, "refused");
    assert!(refused.detail.contains("Prometheus has not measured checkout yet"), "{}", refused.detail);
    let state = world.tui_promote("checkout").await;
    let reason = gate(&state).unwrap_or_else(|| panic!("the gate asks for the name:\n{}", screen(&state)));
    assert!(refused.detail.contains(&reason), "same reason on both paths: {} vs {reason}", refused.detail);
}

#[tokio::test]
async fn prometheus_alone_dims_the_action_keys_and_audits_what_reached_the_executor() {
    let world = World::local(&format!(
        "[prometheus]\nurl = \"{NOBODY}\"\n\n[[service]]\nname = \"checkout\"\nstage = \"mission-critical\"\n"
    ));
    assert_eq!(world.settings("x").mix(), Ok(Mix::Local { prometheus: true, docker: false }));
    assert_eq!(world.headless_promote("checkout").await, headless::exit::NOT_DONE);
    let failed = only(&world.audit("headless")).clone();
    assert_eq!(failed.outcome, "failed");
    assert!(failed.detail.contains(cockpit::backend::NO_WORKLOADS), "{}", failed.detail);
    let state = world.tui_promote("checkout").await;
    let checkout = state.service("checkout").expect("listed");
    let reason = checkout.denied_reason(Action::Promote).expect("promote is dimmed");
    assert!(reason.contains(cockpit::backend::NO_WORKLOADS), "{reason}");
    assert!(said(&state).contains(cockpit::backend::NO_WORKLOADS), "the key says why:\n{}", said(&state));
}

#[tokio::test]
async fn docker_unreachable_fails_the_same_way_on_both_paths() {
    let world = World::local(
        "[docker]\nhost = \"unix:///nonexistent/docker.sock\"\n\n[[service]]\nname = \"recs-proto\"\nstage = \"prototype\"\n\
         [service.dev]\nimage = \"busybox\"\n",
    );
    assert_eq!(world.settings("x").mix(), Ok(Mix::Local { prometheus: false, docker: true }));
    assert_eq!(world.headless_promote("recs-proto").await, headless::exit::NOT_DONE);
    let headless = only(&world.audit("headless")).clone();
    let state = world.tui_promote("recs-proto").await;
    let tui = world.audit("tui");
    let tui = only(&tui);
    assert_eq!((tui.outcome.as_str(), tui.detail.as_str()), (headless.outcome.as_str(), headless.detail.as_str()));
    assert!(said(&state).contains(&headless.detail), "{}\nvs {}", said(&state), headless.detail);
}

#[tokio::test]
async fn a_fresh_team_screen_on_a_cluster_shows_what_was_done_there_once() {
    let world = World::cluster("").await;
    let runtime = Runtime::compose(world.settings("history")).expect("composes");
    let command = Command::Rollback { service: "checkout".into(), yes: true };
    assert_eq!(headless::run(runtime, command).await, headless::exit::OK);
    let done = only(&world.audit("history")).clone();
    assert_eq!(done.outcome, "ok");

    let mut settings = world.settings("history");
    settings.team_screen = true;
    let mut runtime = Runtime::compose(settings).expect("composes");
    runtime.sync(DEADLINE).await.expect("syncs");
    // Let the cluster's own Event of the same rollback arrive too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, runtime.inbox.recv()).await {
        cockpit::state::update(&mut runtime.state, runtime.clock.now(), msg);
    }
    let told: Vec<_> = runtime.state.timeline.iter().filter(|c| c.service == "checkout" && c.user == "alice").collect();
    assert_eq!(told.len(), 1, "the audit log's rollback, once: {told:?}");
    assert_eq!(told[0].summary, done.detail);
}
