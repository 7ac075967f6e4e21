//! The Kubernetes backend against the fake API server, over real HTTP
//! through the real `kube::Client`: what the screen shows, what changes on
//! the server, what the audit log and the cluster's Events record.

mod common;
#[path = "common/kubectl.rs"]
mod kubectl;

use cockpit::action::{Key, Keymap};
use cockpit::audit::{AuditEntry, AuditLog};
use cockpit::backend::kube::{ClusterTarget, KubeBackend, KubeOptions};
use cockpit::backend::{ActionContext, BackendError, Change, Facts, Plan, Workloads};
use cockpit::clock::Clock;
use cockpit::config::Config;
use cockpit::devtools::fake_apiserver::{AccessRule, Config as ServerConfig, ControllerConfig, FakeApiServer, Verb};
use cockpit::domain::rollout::RolloutPhase;
use cockpit::event::{ConnectionState, ExecEvent, Op, Question, Request};
use cockpit::executor::Executor;
use cockpit::state::{AppState, Msg, update};
use cockpit::theme::Theme;
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);

/// A cockpit on the fake cluster, without a terminal: its state, its
/// executor and a second client standing for the rest of the team.
struct Cockpit {
    server: FakeApiServer,
    _dir: tempfile::TempDir,
    backend: KubeBackend,
    executor: Executor<KubeBackend>,
    inbox: mpsc::Receiver<Msg>,
    state: AppState,
    audit_path: PathBuf,
    other: Client,
    next_id: u64,
}

struct Setup {
    read_only: bool,
    /// The fake controller's speed: simulated seconds per real second.
    speed: f64,
    rules: Option<Vec<AccessRule>>,
    config: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup { read_only: false, speed: 40.0, rules: None, config: "[kubernetes]\nnamespaces = [\"shop\"]\n" }
    }
}

fn server_config(rules: Option<Vec<AccessRule>>) -> ServerConfig {
    server_config_at(rules, 40.0)
}

fn server_config_at(rules: Option<Vec<AccessRule>>, speed: f64) -> ServerConfig {
    // Generated log lines would push the tests' own lines out of a tail: one an hour.
    let controller = ControllerConfig {
        speed,
        tick: Duration::from_millis(50),
        log_interval: Duration::from_secs(3600),
        ..ControllerConfig::default()
    };
    ServerConfig { controller: Some(controller), access_rules: rules, ..ServerConfig::default() }
}

fn client_of(server: &FakeApiServer) -> Client {
    let url = server.url().parse().expect("the server's URL is a URI");
    Client::try_from(kube::Config::new(url)).expect("a client")
}

impl Cockpit {
    async fn start(setup: Setup) -> Cockpit {
        let config = server_config_at(setup.rules.clone(), setup.speed);
        let server = FakeApiServer::start(config).await.expect("the fake API server starts");
        server.seed(0, 0).expect("the shop team is seeded");
        Cockpit::on(server, setup).await
    }

    async fn on(server: FakeApiServer, setup: Setup) -> Cockpit {
        let dir = tempfile::tempdir().expect("a temp dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("a kubeconfig");
        let config: Config = toml::from_str(setup.config).expect("the test config parses");
        let target = ClusterTarget { kubeconfig: Some(kubeconfig), context: None, namespaces: vec!["shop".into()] };
        let (events, inbox) = mpsc::channel(4096);
        let options = KubeOptions {
            backoff: (Duration::from_millis(50), Duration::from_millis(400)),
            read_only: setup.read_only,
            user: "alice".into(),
            tail_lines: 10,
            ..KubeOptions::default()
        };
        let clock = Clock::system();
        let backend = KubeBackend::new(&config, target, clock, events, options);
        tokio::spawn(cockpit::backend::kube::run(backend.clone()));
        let audit_path = dir.path().join("audit.jsonl");
        let executor = Executor::new(backend.clone(), setup.read_only, AuditLog::at(audit_path.clone()), clock)
            .with_identity("alice", "kubernetes", "fake");
        let info = cockpit::event::BackendInfo {
            kind: "kubernetes".into(),
            context: "fake".into(),
            simulated: false,
            scenario: None,
        };
        let mut state = AppState::new(info, Keymap::default(), setup.read_only, 1000);
        state.width = 160;
        state.height = 45;
        let other = client_of(&server);
        let mut cockpit = Cockpit { server, _dir: dir, backend, executor, inbox, state, audit_path, other, next_id: 0 };
        cockpit.until("the first sync", |s| live(s) && s.services.len() >= 3).await;
        cockpit
    }

    /// Folds events in until `done` holds; fails after the deadline.
    async fn until(&mut self, what: &str, done: impl Fn(&AppState) -> bool) {
        let wait = async {
            while !done(&self.state) {
                match self.inbox.recv().await {
                    Some(msg) => {
                        update(&mut self.state, cockpit::domain::Timestamp::now(), msg);
                    }
                    None => return false,
                }
            }
            true
        };
        match tokio::time::timeout(DEADLINE, wait).await {
            Ok(true) => {}
            _ => panic!("timed out waiting for {what}; the screen:\n{}", self.screen()),
        }
    }

    /// Waits, folding events in meanwhile, until the server's state passes `check`.
    async fn until_server<F, Fut>(&mut self, what: &str, check: F)
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if check(self.other.clone()).await {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what} on the server");
            if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), self.inbox.recv()).await {
                update(&mut self.state, cockpit::domain::Timestamp::now(), msg);
            }
        }
    }

    fn screen(&self) -> String {
        common::render(&self.state, 160, 45, &Theme::default())
    }

    fn select(&mut self, name: &str) {
        let index = self.state.services.iter().position(|s| s.info.name == name).expect("the service is listed");
        self.state.selected = index;
    }

    fn request(&mut self, service: &str, op: Op) -> Request {
        self.next_id += 1;
        Request { id: self.next_id, service: service.into(), op, confirmed: true, typed_name: None, asked_token: None }
    }

    /// Runs an action through the executor, answering yes, and at the
    /// mission-critical gate (shut here: no metrics source) typing the
    /// service's name; returns its outcome.
    async fn act(&mut self, service: &str, op: Op) -> ExecEvent {
        let mut request = self.request(service, op);
        request.typed_name = Some(service.into());
        let mut outcome = self.executor.execute(request).await;
        if let ExecEvent::Ask { request, .. } = outcome {
            outcome = self.executor.execute(Request { confirmed: true, ..request }).await;
        }
        update(&mut self.state, cockpit::domain::Timestamp::now(), Msg::Exec(outcome.clone()));
        outcome
    }

    fn audit(&self) -> Vec<AuditEntry> {
        AuditLog::read(&self.audit_path).unwrap_or_default()
    }

    fn writes(&self) -> u64 {
        [Verb::Create, Verb::Update, Verb::Patch, Verb::Delete].into_iter().map(|v| self.server.requests(v)).sum()
    }
}

fn live(state: &AppState) -> bool {
    matches!(state.connections.get("kubernetes"), Some(ConnectionState::Live))
}

fn done(outcome: &ExecEvent) -> &str {
    match outcome {
        ExecEvent::Done { summary, .. } => summary,
        other => panic!("the action did not go through: {other:?}"),
    }
}

fn weight(state: &AppState, service: &str) -> Option<u8> {
    state.service(service)?.traffic.as_ref().map(|t| t.target_weight)
}

/// What another user does with kubectl: read, change, write; again after a
/// 409 (the controller updated the status in between).
async fn edit(client: &Client, name: &str, change: impl Fn(&mut Deployment)) {
    let api = Api::<Deployment>::namespaced(client.clone(), "shop");
    for _ in 0..20 {
        let mut object = api.get(name).await.expect("read");
        change(&mut object);
        match api.replace(name, &PostParams::default(), &object).await {
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            result => {
                result.expect("written");
                return;
            }
        }
    }
    panic!("{name} kept changing under the test's writes");
}

async fn deployment(client: &Client, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(client.clone(), "shop").get(name).await.expect("the Deployment exists")
}

async fn route_weights(client: &Client) -> Vec<(String, i32)> {
    let route = Api::<HttpRoute>::namespaced(client.clone(), "shop").get("checkout").await.expect("the route exists");
    route.spec.rules.unwrap_or_default()[0]
        .backend_refs
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.name, r.weight.unwrap_or(1)))
        .collect()
}

fn image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].image.clone())
        .unwrap_or_default()
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

async fn cockpit_events(client: &Client) -> Vec<(String, String)> {
    let events = Api::<Event>::namespaced(client.clone(), "shop").list(&ListParams::default()).await.expect("events");
    events
        .items
        .into_iter()
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("cockpit"))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn the_team_appears_by_label_with_stages_rollouts_and_the_route_split() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    cockpit
        .until("every rollout complete", |s| {
            s.services.iter().all(|v| v.rollout.as_ref().is_some_and(|r| r.phase == RolloutPhase::Complete))
        })
        .await;
    let names: Vec<(&str, &str)> =
        cockpit.state.services.iter().map(|s| (s.info.name.as_str(), s.info.stage.as_str())).collect();
    assert_eq!(names, [("frontend", "prototype"), ("payments", "production"), ("checkout", "mission-critical")]);
    assert_eq!(weight(&cockpit.state, "checkout"), Some(10), "the HTTPRoute's 90/10 split");
    cockpit.select("checkout");
    let screen = cockpit.screen();
    assert!(screen.contains("canary  2.2.0-rc1"), "{screen}");
    assert!(screen.contains("HTTPRoute checkout 90/10"), "{screen}");
    assert!(!screen.contains("SIMULATED"), "{screen}");
    // Once synced, a change arrives by watch: nothing is listed again.
    let lists = cockpit.server.requests(Verb::List);
    edit(&cockpit.other, "payments", |d| d.spec.as_mut().expect("spec").replicas = Some(4)).await;
    cockpit
        .until("the scale seen", |s| {
            s.service("payments").and_then(|v| v.rollout.as_ref()).is_some_and(|r| r.replicas.desired == 4)
        })
        .await;
    assert_eq!(cockpit.server.requests(Verb::List), lists);
}

#[tokio::test]
async fn a_deploy_shows_the_rollout_progressing_to_complete_and_leaves_an_event() {
    // A slower controller: the rollout lasts long enough to be seen progressing on a loaded machine.
    let mut cockpit = Cockpit::start(Setup { speed: 4.0, ..Setup::default() }).await;
    cockpit
        .until("frontend rolled out", |s| rollout_is(s, "frontend", "shop/frontend:1.4.0", RolloutPhase::Complete))
        .await;
    let outcome = cockpit.act("frontend", Op::Deploy { image: "shop/frontend:1.5.0".into() }).await;
    assert_eq!(done(&outcome), "image shop/frontend:1.4.0 → shop/frontend:1.5.0");
    cockpit
        .until("the new rollout in progress", |s| {
            rollout_is(s, "frontend", "shop/frontend:1.5.0", RolloutPhase::Progressing)
        })
        .await;
    cockpit.select("frontend");
    assert!(cockpit.screen().contains("Progressing"), "{}", cockpit.screen());
    cockpit
        .until("the new rollout complete", |s| rollout_is(s, "frontend", "shop/frontend:1.5.0", RolloutPhase::Complete))
        .await;
    let screen = cockpit.screen();
    assert!(screen.contains("Complete"), "{screen}");
    let revisions =
        &cockpit.state.service("frontend").expect("frontend").rollout.as_ref().expect("a rollout").revisions;
    assert_eq!(revisions.iter().map(|r| r.number).collect::<Vec<_>>(), [2, 1], "revisions from the ReplicaSets");
    let events = cockpit_events(&cockpit.other).await;
    assert!(
        events.contains(&(
            "CockpitDeploy".into(),
            "frontend by alice: image shop/frontend:1.4.0 → shop/frontend:1.5.0".into()
        )),
        "{events:?}"
    );
    cockpit
        .until("the Event in the timeline", |s| s.timeline.iter().any(|c| c.action == "deploy" && c.user == "alice"))
        .await;
    cockpit
        .until("the new revision in the timeline", |s| s.timeline.iter().any(|c| c.summary.starts_with("revision 2")))
        .await;
    // The team screen's timeline: the cluster's record, as any wall display reads it.
    cockpit.state.team_screen = true;
    let board = common::render(&cockpit.state, 240, 45, &Theme::default());
    assert!(board.contains("image shop/frontend:1.4.0 → shop/frontend:1.5.0 (alice)"), "{board}");
    assert!(board.contains("revision 2: shop/frontend:1.5.0 (cluster)"), "{board}");
    cockpit.state.team_screen = false;
    let audit = cockpit.audit();
    assert_eq!((audit[0].action.as_str(), audit[0].outcome.as_str()), ("deploy", "ok"));
}

fn rollout_is(state: &AppState, service: &str, image: &str, phase: RolloutPhase) -> bool {
    state.service(service).and_then(|s| s.rollout.as_ref()).is_some_and(|r| r.image == image && r.phase == phase)
}

#[tokio::test]
async fn promotion_moves_the_route_weights_step_by_step_then_fully() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    cockpit.select("checkout");
    assert_eq!(
        done(&cockpit.act("checkout", Op::Promote { full: false }).await),
        "canary 10 → 25 % (forced past the gate)"
    );
    assert_eq!(route_weights(&cockpit.other).await, [("checkout".into(), 75), ("checkout-canary".into(), 25)]);
    cockpit.until("25 % on screen", |s| weight(s, "checkout") == Some(25)).await;
    assert!(cockpit.screen().contains("HTTPRoute checkout 75/25"), "{}", cockpit.screen());
    assert_eq!(
        done(&cockpit.act("checkout", Op::Promote { full: false }).await),
        "canary 25 → 50 % (forced past the gate)"
    );
    assert_eq!(route_weights(&cockpit.other).await, [("checkout".into(), 50), ("checkout-canary".into(), 50)]);

    let summary = done(&cockpit.act("checkout", Op::Promote { full: true }).await).to_owned();
    assert!(summary.starts_with("promoting shop/checkout:2.2.0-rc1 to the primary"), "{summary}");
    assert_eq!(image(&deployment(&cockpit.other, "checkout").await), "shop/checkout:2.2.0-rc1");
    // Traffic stays split until the primary has rolled out; then all of it returns.
    cockpit
        .until_server("traffic back on the primary, the canary at 0", |client| async move {
            let canary = deployment(&client, "checkout-canary").await;
            let primary = deployment(&client, "checkout").await;
            route_weights(&client).await == [("checkout".into(), 100), ("checkout-canary".into(), 0)]
                && replicas(&canary) == 0
                && !primary.metadata.annotations.unwrap_or_default().contains_key("cockpit.dev/promoting")
        })
        .await;
    let primary = deployment(&cockpit.other, "checkout").await;
    assert_eq!(
        primary.spec.and_then(|s| s.template.metadata).and_then(|m| m.labels).and_then(|l| l.get("app").cloned()),
        Some("checkout".into()),
        "the primary keeps its own template labels"
    );
    cockpit
        .until("no canary on screen", |s| {
            s.service("checkout").and_then(|v| v.traffic.as_ref()).is_some_and(|t| t.canary_image.is_none())
        })
        .await;
    cockpit
        .until_server("four CockpitPromote Events, the last saying it is complete", |client| async move {
            let events = cockpit_events(&client).await;
            events.iter().filter(|(reason, _)| reason == "CockpitPromote").count() == 4
                && events.iter().any(|(_, message)| message.contains("promotion complete"))
        })
        .await;
}

#[tokio::test]
async fn rolling_back_a_canary_empties_it_and_undo_restores_the_previous_template() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    let summary = done(&cockpit.act("checkout", Op::Rollback).await).to_owned();
    assert_eq!(summary, "shop/checkout:2.2.0-rc1 emptied: 10 → 0 %, scaled to 0");
    assert_eq!(route_weights(&cockpit.other).await, [("checkout".into(), 100), ("checkout-canary".into(), 0)]);
    assert_eq!(replicas(&deployment(&cockpit.other, "checkout-canary").await), 0);

    cockpit
        .until("frontend rolled out", |s| rollout_is(s, "frontend", "shop/frontend:1.4.0", RolloutPhase::Complete))
        .await;
    done(&cockpit.act("frontend", Op::Deploy { image: "shop/frontend:1.5.0".into() }).await);
    cockpit
        .until("revision 2", |s| {
            s.service("frontend").and_then(|v| v.rollout.as_ref()).is_some_and(|r| r.revisions.len() == 2)
        })
        .await;
    let summary = done(&cockpit.act("frontend", Op::Rollback).await).to_owned();
    // `kubectl rollout undo`'s words: revision 1's template comes back as revision 3.
    assert_eq!(summary, "rolled back to revision 1 (now revision 3): shop/frontend:1.5.0 → shop/frontend:1.4.0");
    let primary = deployment(&cockpit.other, "frontend").await;
    assert_eq!(image(&primary), "shop/frontend:1.4.0");
    let labels = primary.spec.and_then(|s| s.template.metadata).and_then(|m| m.labels).unwrap_or_default();
    assert!(!labels.contains_key("pod-template-hash"), "{labels:?}");
    cockpit
        .until("the old version rolled out again as revision 3", |s| {
            rollout_is(s, "frontend", "shop/frontend:1.4.0", RolloutPhase::Complete)
                && s.service("frontend")
                    .and_then(|v| v.rollout.as_ref())
                    .and_then(|r| r.revisions.first())
                    .map(|r| r.number)
                    == Some(3)
        })
        .await;
    // The toast and the rollout pane tell the same story.
    cockpit.select("frontend");
    let screen = cockpit.screen();
    assert!(screen.contains("✓ Complete  rev 3 ") && screen.contains("  3  shop/frontend:1.4.0"), "{screen}");
    assert!(screen.contains("rolled back to revision 1 (now revision 3)"), "{screen}");
    // A paused Deployment is not undone: the pause is the reason, on screen too.
    edit(&cockpit.other, "frontend", |d| d.spec.as_mut().expect("spec").paused = Some(true)).await;
    cockpit
        .until("the pause seen", |s| {
            s.service("frontend")
                .and_then(|v| v.rollout.as_ref())
                .is_some_and(|r| r.conditions.iter().any(|c| c.kind == "Paused"))
        })
        .await;
    let outcome = cockpit.act("frontend", Op::Rollback).await;
    let ExecEvent::Refused { reason, .. } = &outcome else { panic!("not refused: {outcome:?}") };
    assert!(reason.contains("paused: resume it"), "{reason}");
    cockpit.select("frontend");
    assert!(cockpit.screen().contains("Paused ✗"), "{}", cockpit.screen());
}

/// Someone else writes between the executor's read (facts) and its write.
struct Meddler {
    backend: KubeBackend,
    other: Client,
}

impl Workloads for Meddler {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        self.backend.facts(service).await
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        let api = Api::<HttpRoute>::namespaced(self.other.clone(), "shop");
        let mut route = api.get("checkout").await.expect("the route");
        for backend in route.spec.rules.as_mut().expect("rules")[0].backend_refs.as_mut().expect("refs") {
            backend.weight = Some(if backend.name == "checkout" { 70 } else { 30 });
        }
        api.replace("checkout", &PostParams::default(), &route).await.expect("the other client writes");
        self.backend.apply(service, plan, context).await
    }
}

#[tokio::test]
async fn a_change_made_in_between_survives_and_the_conflict_is_shown_and_audited() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    let meddler = Meddler { backend: cockpit.backend.clone(), other: cockpit.other.clone() };
    let audit = AuditLog::at(cockpit.audit_path.clone());
    let executor = Executor::new(meddler, false, audit, Clock::system()).with_identity("alice", "kubernetes", "fake");
    let mut request = cockpit.request("checkout", Op::Promote { full: false });
    request.typed_name = Some("checkout".into());
    let outcome = executor.execute(request).await;
    let ExecEvent::Failed { error, .. } = &outcome else { panic!("not refused: {outcome:?}") };
    assert!(error.contains("changed by someone else"), "{error}");
    assert_eq!(route_weights(&cockpit.other).await, [("checkout".into(), 70), ("checkout-canary".into(), 30)]);
    update(&mut cockpit.state, cockpit::domain::Timestamp::now(), Msg::Exec(outcome));
    cockpit.select("checkout");
    assert!(cockpit.screen().contains("changed by someone else"), "{}", cockpit.screen());
    cockpit.until("the other client's 30 % on screen", |s| weight(s, "checkout") == Some(30)).await;
    let audit = cockpit.audit();
    assert_eq!((audit[0].action.as_str(), audit[0].outcome.as_str()), ("promote", "conflict"));

    // The server refuses a write at a stale resourceVersion too, whoever asks.
    let facts = cockpit.backend.facts("checkout").await.expect("facts");
    edit(&cockpit.other, "checkout-canary", |d| d.spec.as_mut().expect("spec").replicas = Some(2)).await;
    let api = Api::<Deployment>::namespaced(cockpit.other.clone(), "shop");
    let context = ActionContext { user: "alice".into(), token: facts.token };
    let result = cockpit.backend.apply("checkout", &Plan::SetCanaryWeight { from: 30, to: 50 }, &context).await;
    assert!(matches!(result, Err(BackendError::Conflict(_))), "{result:?}");
    assert_eq!(replicas(&api.get("checkout-canary").await.expect("the canary")), 2);
}

/// Opens the question an operation asks (as a key press would) and returns
/// the request as the executor handed it back, with its token, and the words shown.
async fn ask(executor: &Executor<KubeBackend>, request: Request) -> (Request, String) {
    let outcome = executor.execute(Request { confirmed: false, typed_name: None, asked_token: None, ..request }).await;
    match outcome {
        ExecEvent::Ask { request, question: Question::YesNo(text) } => (request, text),
        other => panic!("no y/n question: {other:?}"),
    }
}

/// The answer `y` to a question, given after the world may have moved on.
fn yes(asked: &Request) -> Request {
    assert!(asked.asked_token.is_some(), "the question carries the token it was asked at");
    Request { confirmed: true, ..asked.clone() }
}

fn set_first_image(d: &mut Deployment, image: &str) {
    let spec = d.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("a pod spec");
    spec.containers[0].image = Some(image.into());
}

#[tokio::test]
async fn a_yes_to_promote_one_canary_does_not_promote_another_client_put_there_meanwhile() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    let labels = json!({"app": "payments-canary", "cockpit.dev/service": "payments", "cockpit.dev/track": "canary"});
    let canary = json!({
        "metadata": {"name": "payments-canary", "labels": labels},
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "shop/payments:0.9.3"}]}}},
    });
    cockpit.server.create("apps", "v1", "deployments", "shop", canary).expect("the canary Deployment");
    done(&cockpit.act("payments", Op::Deploy { image: "shop/payments:0.12.0".into() }).await);
    let request = cockpit.request("payments", Op::Promote { full: true });
    let (asked, question) = ask(&cockpit.executor, request).await;
    assert!(question.contains("shop/payments:0.12.0 replaces shop/payments:0.9.3"), "{question}");

    // While the question is on screen, someone else puts another image on the canary.
    edit(&cockpit.other, "payments-canary", |d| set_first_image(d, "shop/payments:0.13.0-evil")).await;
    let outcome = cockpit.executor.execute(yes(&asked)).await;
    let ExecEvent::Ask { question: Question::YesNo(again), .. } = &outcome else {
        panic!("the answer was acted on: {outcome:?}")
    };
    assert!(
        again.contains("shop/payments:0.13.0-evil replaces shop/payments:0.9.3"),
        "asked about what is there now: {again}"
    );
    assert_eq!(image(&deployment(&cockpit.other, "payments").await), "shop/payments:0.9.3", "nothing promoted");
    assert_eq!(image(&deployment(&cockpit.other, "payments-canary").await), "shop/payments:0.13.0-evil");
    let audit = cockpit.audit();
    assert!(!audit.iter().any(|e| e.action == "promote-full"), "{audit:?}");
}

#[tokio::test]
async fn a_yes_to_roll_back_a_canary_at_10_percent_is_asked_again_once_it_carries_30() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    let request = cockpit.request("checkout", Op::Rollback);
    let (asked, question) = ask(&cockpit.executor, request).await;
    assert!(question.contains("goes from 10 % to 0 %"), "{question}");

    // Someone else moves the route's weights while the question is open.
    let routes = Api::<HttpRoute>::namespaced(cockpit.other.clone(), "shop");
    let mut route = routes.get("checkout").await.expect("the route");
    for backend in route.spec.rules.as_mut().expect("rules")[0].backend_refs.as_mut().expect("refs") {
        backend.weight = Some(if backend.name == "checkout" { 70 } else { 30 });
    }
    routes.replace("checkout", &PostParams::default(), &route).await.expect("the other client writes");
    let outcome = cockpit.executor.execute(yes(&asked)).await;
    let ExecEvent::Ask { question: Question::YesNo(again), .. } = &outcome else {
        panic!("the answer was acted on: {outcome:?}")
    };
    assert!(again.contains("goes from 30 % to 0 %"), "asked about what is there now: {again}");
    assert_eq!(route_weights(&cockpit.other).await, [("checkout".into(), 70), ("checkout-canary".into(), 30)]);
    assert_eq!(replicas(&deployment(&cockpit.other, "checkout-canary").await), 1, "the canary still runs");
    assert!(!cockpit.audit().iter().any(|e| e.action == "rollback"), "{:?}", cockpit.audit());
}

/// A ReplicaSet of `owner` at `revision`, as the Deployment controller makes them.
fn replica_set(owner: &Deployment, revision: u64, image: &str) -> serde_json::Value {
    let name = owner.metadata.name.clone().unwrap_or_default();
    let mut labels = owner.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default();
    labels.insert("pod-template-hash".into(), format!("h{revision}"));
    json!({
        "metadata": {
            "name": format!("{name}-h{revision}"),
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                "uid": owner.metadata.uid, "controller": true}],
        },
        "spec": {"replicas": 0, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}}},
    })
}

#[tokio::test]
async fn a_yes_to_undo_back_to_one_revision_is_asked_again_when_the_revisions_changed() {
    // No controller: the test plays it, so ReplicaSets change while the Deployment does not.
    let server = FakeApiServer::start(ServerConfig::default()).await.expect("the server");
    server.seed(0, 0).expect("seeded");
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    let payments = deployment(&cockpit.other, "payments").await;
    for (revision, image) in [(1, "shop/payments:0.9.1"), (2, "shop/payments:0.9.2"), (3, "shop/payments:0.9.3")] {
        cockpit
            .server
            .create("apps", "v1", "replicasets", "shop", replica_set(&payments, revision, image))
            .expect("rs");
    }
    let request = cockpit.request("payments", Op::Rollback);
    let (asked, question) = ask(&cockpit.executor, request).await;
    assert!(question.contains("from shop/payments:0.9.3 back to shop/payments:0.9.2"), "{question}");

    // Someone removes revision 2 (never to come back) while the question is open.
    cockpit.server.delete("apps", "v1", "replicasets", "shop", "payments-h2").expect("deleted");
    let outcome = cockpit.executor.execute(yes(&asked)).await;
    let ExecEvent::Ask { question: Question::YesNo(again), .. } = &outcome else {
        panic!("the answer was acted on: {outcome:?}")
    };
    assert!(again.contains("back to shop/payments:0.9.1"), "asked about what is there now: {again}");
    assert_eq!(image(&deployment(&cockpit.other, "payments").await), "shop/payments:0.9.3", "nothing undone");
    assert_eq!(deployment(&cockpit.other, "payments").await.metadata.generation, payments.metadata.generation);
}

#[tokio::test]
async fn a_server_restart_is_shown_and_followed_by_a_resync() {
    let mut config = server_config(None);
    // Little watch history: the writes made during the outage push the
    // watchers' resourceVersion out of it, so they get 410 Gone and list again.
    config.history_limit = 4;
    let server = FakeApiServer::start(config).await.expect("the server");
    server.seed(0, 0).expect("seeded");
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    cockpit
        .until("every rollout complete", |s| {
            s.services.iter().all(|v| v.rollout.as_ref().is_some_and(|r| r.phase == RolloutPhase::Complete))
        })
        .await;
    cockpit.select("checkout");
    cockpit.server.pause().await;
    cockpit
        .until("the outage on screen", |s| {
            !live(s) && matches!(s.connections.get("kubernetes"), Some(ConnectionState::Disconnected { .. }))
        })
        .await;
    let screen = cockpit.screen();
    assert!(screen.contains("disconnected"), "{screen}\n{:?}", cockpit.state.connections);
    assert_eq!(weight(&cockpit.state, "checkout"), Some(10), "the panes keep the last known state");
    // Changed while cockpit could not see it.
    let labels = json!({"app": "search", "cockpit.dev/service": "search", "cockpit.dev/stage": "production"});
    let search = json!({
        "metadata": {"name": "search", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "search"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "shop/search:1"}]}}},
    });
    cockpit.server.create("apps", "v1", "deployments", "shop", search).expect("created");
    cockpit.server.delete("apps", "v1", "deployments", "shop", "frontend").expect("deleted");
    for i in 0..6 {
        let filler = json!({"metadata": {"name": format!("other-{i}")}});
        cockpit.server.create("", "v1", "namespaces", "", filler).expect("created");
    }
    let lists = cockpit.server.requests(Verb::List);
    cockpit.server.resume().await.expect("the server is back");
    cockpit
        .until("live again, with the new service and without the deleted one", |s| {
            live(s) && s.service("search").is_some() && s.service("frontend").is_none()
        })
        .await;
    assert!(cockpit.server.requests(Verb::List) > lists, "the watchers listed again after 410 Gone");
    let screen = cockpit.screen();
    assert!(screen.contains("search") && !screen.contains("frontend"), "{screen}");
}

fn disconnected_reason(state: &AppState) -> Option<&str> {
    match state.connections.get("kubernetes") {
        Some(ConnectionState::Disconnected { reason, .. }) => Some(reason),
        _ => None,
    }
}

#[tokio::test]
async fn failing_events_leave_the_cluster_live_and_a_real_outage_then_says_its_own_reason() {
    let server = FakeApiServer::start(server_config(None)).await.expect("the server");
    server.seed(0, 0).expect("seeded");
    // Events kept in an etcd of their own, which is down; the rest of the API works.
    server.fail("events", Some("etcdserver: request timed out"));
    let lists = server.requests(Verb::List);
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    cockpit
        .until("the note about Events", |s| {
            s.toasts.iter().any(|t| t.text.starts_with("events unavailable in shop: etcdserver: request timed out"))
        })
        .await;
    // Still live after the Events watcher has tried again a few times.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while cockpit.server.requests(Verb::List) < lists + 12 {
        assert!(tokio::time::Instant::now() < deadline, "the Events watcher does not try again");
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(100), cockpit.inbox.recv()).await {
            update(&mut cockpit.state, cockpit::domain::Timestamp::now(), msg);
        }
        assert!(live(&cockpit.state), "{:?}", cockpit.state.connections);
    }
    cockpit.select("checkout");
    let screen = cockpit.screen();
    assert!(screen.contains("● live") && !screen.contains("disconnected"), "{screen}");
    assert!(screen.contains("events unavailable in shop: etcdserver: request timed out"), "{screen}");
    assert_eq!(weight(&cockpit.state, "checkout"), Some(10), "the rest is shown as usual");

    // The real outage: its reason is the one on screen, not the Events' old one.
    cockpit.server.pause().await;
    cockpit.until("the outage", |s| disconnected_reason(s).is_some_and(|r| r.contains("cannot reach"))).await;
    let screen = cockpit.screen();
    assert!(screen.contains("✗ kubernetes disconnected since") && screen.contains("(cannot reach"), "{screen}");
    assert!(!disconnected_reason(&cockpit.state).unwrap_or_default().contains("etcdserver"));
    cockpit.server.resume().await.expect("the server is back");
    cockpit.until("live again", live).await;
}

#[tokio::test]
async fn read_only_sends_no_writes_at_all_and_without_it_the_same_actions_do() {
    let ops = || {
        [
            ("frontend", Op::Deploy { image: "shop/frontend:9".into() }),
            ("payments", Op::Deploy { image: "shop/payments:1.0.0".into() }),
            ("checkout", Op::Promote { full: false }),
            ("checkout", Op::Promote { full: true }),
            ("checkout", Op::Rollback),
            ("frontend", Op::Restart),
        ]
    };
    let mut reader = Cockpit::start(Setup { read_only: true, ..Setup::default() }).await;
    // A full promotion someone else started: a read-only cockpit does not finish it.
    edit(&reader.other, "checkout", |d| {
        let annotations = d.metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert(cockpit::backend::kube::ANNOTATION_PROMOTING.into(), "shop/checkout:2.1.0".into());
    })
    .await;
    edit(&reader.other, "payments", |d| d.spec.as_mut().expect("spec").replicas = Some(3)).await;
    // Seen in order on one watch: once the scale is on screen, so is the mark.
    reader
        .until("the mark and the scale seen", |s| {
            let done = |name| {
                s.service(name).and_then(|v| v.rollout.as_ref()).is_some_and(|r| r.phase == RolloutPhase::Complete)
            };
            done("checkout")
                && s.service("payments").and_then(|v| v.rollout.as_ref()).is_some_and(|r| r.replicas.desired == 3)
        })
        .await;
    let before = reader.writes();
    for (service, op) in ops() {
        let outcome = reader.act(service, op).await;
        assert!(matches!(outcome, ExecEvent::Refused { .. }), "{outcome:?}");
    }
    assert_eq!(reader.writes(), before, "none from the cockpit: {:?}", reader.server.request_counts());
    assert!(reader.server.requests(Verb::Review) > 0, "access reviews are still asked");
    reader.select("checkout");
    let screen = reader.screen();
    assert!(screen.contains("read-only"), "{screen}");

    let mut writer = Cockpit::start(Setup::default()).await;
    for (service, op) in ops() {
        writer.act(service, op).await;
    }
    assert!(writer.writes() > 0);
}

#[tokio::test]
async fn keys_the_access_rules_deny_are_shown_disabled_with_the_reason() {
    let rules = vec![AccessRule::new(&["get", "list", "watch"], &["*"], &["*"])];
    let mut cockpit = Cockpit::start(Setup { rules: Some(rules), ..Setup::default() }).await;
    cockpit.until("the rules review", |s| s.service("checkout").is_some_and(|v| !v.denied.is_empty())).await;
    cockpit.select("checkout");
    let screen = cockpit.screen();
    assert!(screen.contains("RBAC: may not update deployments.apps"), "{screen}");
    let effects = update(&mut cockpit.state, cockpit::domain::Timestamp::now(), Msg::Key(Key::char('p')));
    assert!(effects.is_empty(), "no request leaves a disabled key");
    assert!(cockpit.screen().contains("promote is disabled for checkout"), "{}", cockpit.screen());
}

#[tokio::test]
async fn behind_an_authoriser_that_cannot_list_rules_each_permission_is_asked() {
    // Deployments may be updated, HTTPRoutes not: deploy and restart on, promotion through the route off.
    let rules = vec![
        AccessRule::new(&["get", "list", "watch"], &["*"], &["*"]),
        AccessRule::new(&["update"], &["apps"], &["deployments"]),
    ];
    let mut config = server_config(Some(rules));
    config.partial_rules_review = true;
    let server = FakeApiServer::start(config).await.expect("the server");
    server.seed(0, 0).expect("seeded");
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    cockpit.until("the access reviews", |s| s.service("checkout").is_some_and(|v| !v.denied.is_empty())).await;
    let denied = |s: &AppState, name: &str| -> Vec<String> {
        s.service(name).expect("listed").denied.iter().map(|d| d.op.clone()).collect()
    };
    assert_eq!(denied(&cockpit.state, "checkout"), ["deploy", "promote", "promote-full", "rollback"]);
    assert!(denied(&cockpit.state, "frontend").is_empty(), "a prototype's deploy needs the Deployment only");
    cockpit.select("checkout");
    let screen = cockpit.screen();
    assert!(screen.contains("RBAC: may not update httproutes.gateway.networking.k8s.io in shop"), "{screen}");
}

#[tokio::test]
async fn pod_logs_of_primary_and_canary_are_followed_together_and_shown_safely() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    cockpit.select("checkout");
    let pods = Api::<Pod>::namespaced(cockpit.other.clone(), "shop");
    let mut names = Vec::new();
    for app in ["checkout", "checkout-canary"] {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let name = loop {
            let list = pods.list(&ListParams::default().labels(&format!("app={app}"))).await.expect("pods");
            let running =
                list.items.into_iter().find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
            if let Some(pod) = running {
                break pod.metadata.name.unwrap_or_default();
            }
            assert!(tokio::time::Instant::now() < deadline, "no running {app} pod");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        names.push(name);
    }
    cockpit.server.write_log("shop", &names[0], "app", "primary says \u{1b}[31mhello\u{1b}[0m");
    cockpit.server.write_log("shop", &names[1], "app", "canary says hello");
    cockpit
        .until("both lines in the logs pane", |s| {
            let logs = &s.service("checkout").expect("checkout").logs;
            let texts: Vec<&str> = logs.iter().map(|l| l.text.as_str()).collect();
            texts.contains(&"primary says hello") && texts.contains(&"canary says hello")
        })
        .await;
    let screen = cockpit.screen();
    assert!(screen.contains("primary says hello") && screen.contains("canary says hello"), "{screen}");
    assert!(!screen.contains('\u{1b}'));

    // A megabyte line is cut as it is read, with a marker.
    cockpit.server.write_log("shop", &names[0], "app", &"x".repeat(1 << 20));
    // A dropped connection: the followers reconnect and resume after their last line.
    cockpit.server.restart().await.expect("restarted");
    cockpit.server.write_log("shop", &names[0], "app", "after the restart");
    cockpit
        .until("the line written after the restart", |s| {
            s.service("checkout").expect("checkout").logs.iter().any(|l| l.text == "after the restart")
        })
        .await;
    let logs = &cockpit.state.service("checkout").expect("checkout").logs;
    let seen = |text: &str| logs.iter().filter(|l| l.text == text).count();
    assert_eq!((seen("primary says hello"), seen("canary says hello")), (1, 1), "nothing twice after resuming");
    let long = logs.iter().find(|l| l.text.starts_with("xxxx")).expect("the long line");
    assert!(long.text.len() < 10_000 && long.text.contains("[cut "), "{} bytes", long.text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_full_promotion_waits_for_its_end() {
    let server = FakeApiServer::start(server_config(None)).await.expect("the server");
    server.seed(0, 0).expect("seeded");
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("a kubeconfig");
    let empty = dir.path().join("cockpit.toml");
    std::fs::write(&empty, "").expect("an empty config");
    let audit = dir.path().join("audit.jsonl");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"));
    command
        .args(["--namespace", "shop", "promote", "checkout", "--full", "--yes", "--force", "checkout", "--config"])
        .arg(&empty)
        .arg("--audit-log")
        .arg(&audit)
        .env("KUBECONFIG", &kubeconfig)
        .current_dir(dir.path());
    let output = tokio::task::spawn_blocking(move || command.output().expect("cockpit runs")).await.expect("ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("waiting for the primary's rollout"), "{stdout}");
    assert!(stdout.contains("promotion complete: the primary runs shop/checkout:2.2.0-rc1"), "{stdout}");
    let client = client_of(&server);
    assert_eq!(route_weights(&client).await, [("checkout".into(), 100), ("checkout-canary".into(), 0)]);
    assert_eq!(replicas(&deployment(&client, "checkout-canary").await), 0);
    let primary = deployment(&client, "checkout").await;
    assert!(
        !primary.metadata.annotations.unwrap_or_default().contains_key("cockpit.dev/promoting"),
        "the mark is gone"
    );
    let entries = AuditLog::read(&audit).expect("the audit log");
    assert_eq!((entries[0].action.as_str(), entries[0].outcome.as_str()), ("promote-full", "ok"));
}

#[tokio::test]
async fn switching_context_resyncs_everything_from_the_other_cluster() {
    let mut cockpit = Cockpit::start(Setup::default()).await;
    let other = FakeApiServer::start(server_config(None)).await.expect("a second server");
    let labels = json!({"app": "ledger", "cockpit.dev/service": "ledger", "cockpit.dev/stage": "mission-critical"});
    other.create("", "v1", "namespaces", "", json!({"metadata": {"name": "shop"}})).expect("namespace");
    let ledger = json!({
        "metadata": {"name": "ledger", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "ledger"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "bank/ledger:3"}]}}},
    });
    other.create("apps", "v1", "deployments", "shop", ledger).expect("created");
    // One kubeconfig, two contexts.
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "a", "cluster": {"server": cockpit.server.url()}}, {"name": "b", "cluster": {"server": other.url()}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "a", "user": "u", "namespace": "shop"}},
                     {"name": "bank", "context": {"cluster": "b", "user": "u", "namespace": "shop"}}],
        "current-context": "fake",
    });
    std::fs::write(cockpit._dir.path().join("kubeconfig"), kubeconfig.to_string()).expect("written");
    assert_eq!(cockpit.backend.contexts(), ["bank", "fake"]);
    assert!(cockpit.backend.switch_context("nowhere").unwrap_err().contains("no context `nowhere`"));
    cockpit.backend.switch_context("bank").expect("switched");
    cockpit
        .until("only the other cluster's service", |s| {
            s.services.len() == 1 && s.service("ledger").is_some() && s.backend.context.starts_with("bank")
        })
        .await;
    cockpit.until("live on the other cluster", live).await;
    // Nothing is left behind on the old cluster: every watch stream closed.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while cockpit.server.open_watches() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "watches left open on the old server");
        if let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(50), cockpit.inbox.recv()).await {
            update(&mut cockpit.state, cockpit::domain::Timestamp::now(), msg);
        }
    }
    assert!(other.open_watches() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_manifests_apply_with_kubectl_and_a_replica_ratio_canary_steps_by_pods() {
    if !kubectl::have_kubectl() {
        return;
    }
    let server = FakeApiServer::start(server_config(None)).await.expect("the server");
    let k = Arc::new(kubectl::Kubectl::new(&server));
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/k8s");
    for file in
        ["00-namespace.yaml", "10-checkout.yaml", "20-checkout-route.yaml", "30-catalog.yaml", "40-playground.yaml"]
    {
        let path = assets.join(file).display().to_string();
        let kubectl = k.clone();
        tokio::task::spawn_blocking(move || kubectl.ok(&["apply", "-f", &path])).await.expect("kubectl ran");
    }
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    let stages: Vec<(&str, &str)> =
        cockpit.state.services.iter().map(|s| (s.info.name.as_str(), s.info.stage.as_str())).collect();
    assert_eq!(stages, [("playground", "prototype"), ("catalog", "production"), ("checkout", "mission-critical")]);
    cockpit.until("checkout's route at 100/0", |s| weight(s, "checkout") == Some(0)).await;

    let outcome = cockpit.act("catalog", Op::Deploy { image: "ghcr.io/stefanprodan/podinfo:6.7.1".into() }).await;
    let summary = done(&outcome);
    assert!(
        summary.starts_with("canary ghcr.io/stefanprodan/podinfo:6.7.1 at 5 % (effective 25 %: 1 of 4 pods"),
        "the toast says where the ratio landed: {summary}"
    );
    assert_eq!(replicas(&deployment(&cockpit.other, "catalog").await), 3);
    assert_eq!(replicas(&deployment(&cockpit.other, "catalog-canary").await), 1);
    cockpit.until("the nearest reachable ratio", |s| weight(s, "catalog") == Some(25)).await;
    cockpit.select("catalog");
    assert!(cockpit.screen().contains("1 of 4 pods"), "{}", cockpit.screen());
    let kubectl = k.clone();
    let status = tokio::task::spawn_blocking(move || {
        kubectl.ok(&["-n", "shop", "rollout", "status", "deployment/catalog-canary", "--timeout=20s"])
    })
    .await
    .expect("kubectl ran");
    assert!(status.contains("successfully rolled out"), "{status}");

    let summary = done(&cockpit.act("catalog", Op::Promote { full: false }).await).to_owned();
    assert!(summary.starts_with("canary 25 → 50 %"), "{summary}");
    cockpit.until("2 of 4 pods", |s| weight(s, "catalog") == Some(50)).await;
    assert!(cockpit.screen().contains("2 of 4 pods"), "{}", cockpit.screen());
    done(&cockpit.act("catalog", Op::Rollback).await);
    assert_eq!(replicas(&deployment(&cockpit.other, "catalog").await), 4);
    assert_eq!(replicas(&deployment(&cockpit.other, "catalog-canary").await), 0);
}

#[tokio::test]
async fn without_the_gateway_api_the_cluster_is_live_and_canaries_go_by_replica_ratio() {
    let mut config = server_config(None);
    config.without_groups = vec!["gateway.networking.k8s.io".into()];
    let server = FakeApiServer::start(config).await.expect("the server");
    server.seed(0, 0).expect("seeded, the route is only in the store");
    let mut cockpit = Cockpit::on(server, Setup::default()).await;
    cockpit.select("checkout");
    cockpit.until("the split by pods", |s| weight(s, "checkout") == Some(25)).await;
    let screen = cockpit.screen();
    assert!(screen.contains("● live"), "{screen}");
    assert!(screen.contains("1 of 4 pods"), "3 primary and 1 canary pods: {screen}");
    assert!(screen.contains("HTTPRoutes (canaries by replica ratio)"), "said once: {screen}");
    // Promoting moves pods, since no route can be written.
    let summary = done(&cockpit.act("checkout", Op::Promote { full: false }).await).to_owned();
    assert!(summary.starts_with("canary 25 → 50 %"), "{summary}");
    assert_eq!(replicas(&deployment(&cockpit.other, "checkout-canary").await), 2);
    assert_eq!(replicas(&deployment(&cockpit.other, "checkout").await), 2);
}

/// A cockpit on `target` that never connects; returns the screen once the
/// source has said why.
async fn unreachable_screen(target: ClusterTarget) -> String {
    let config: Config = toml::from_str("").expect("an empty config");
    let (events, mut inbox) = mpsc::channel(64);
    let options =
        KubeOptions { backoff: (Duration::from_millis(50), Duration::from_millis(200)), ..KubeOptions::default() };
    let backend = KubeBackend::new(&config, target, Clock::system(), events, options);
    let source = tokio::spawn(cockpit::backend::kube::run(backend));
    let info = cockpit::event::BackendInfo {
        kind: "kubernetes".into(),
        context: "x".into(),
        simulated: false,
        scenario: None,
    };
    let mut state = AppState::new(info, Keymap::default(), false, 100);
    let wait = async {
        while let Some(msg) = inbox.recv().await {
            update(&mut state, cockpit::domain::Timestamp::now(), msg);
            if matches!(state.connections.get("kubernetes"), Some(ConnectionState::Disconnected { .. })) {
                return;
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait).await.expect("the source says why it is not connected");
    source.abort();
    common::render(&state, 120, 36, &Theme::default())
}

#[tokio::test]
async fn an_unreachable_cluster_or_a_wrong_context_is_a_state_on_screen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "s3cr3t-token"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
        "current-context": "gone",
    });
    std::fs::write(&kubeconfig, config.to_string()).expect("written");
    let target = ClusterTarget { kubeconfig: Some(kubeconfig.clone()), context: None, namespaces: vec![] };
    let screen = unreachable_screen(target).await;
    assert!(screen.contains("disconnected since"), "{screen}");
    assert!(screen.contains("cannot reach http://127.0.0.1:9"), "{screen}");
    assert!(screen.contains("the cluster up and reachable from here?"), "the pane has the whole reason:\n{screen}");
    assert!(!screen.contains("s3cr3t-token"));

    let target = ClusterTarget { kubeconfig: Some(kubeconfig), context: Some("prod".into()), namespaces: vec![] };
    let screen = unreachable_screen(target).await;
    assert!(screen.contains("no context `prod` in the kubeconfig (it has: gone)"), "{screen}");
}

#[test]
fn the_headless_status_reads_the_cluster() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = runtime.block_on(FakeApiServer::start(server_config(None))).expect("the server");
    server.seed(0, 0).expect("seeded");
    let dir = tempfile::tempdir().expect("a temp dir");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("a kubeconfig");
    let empty = dir.path().join("cockpit.toml");
    std::fs::write(&empty, "").expect("an empty config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["--namespace", "shop", "status", "--json", "--config"])
        .arg(&empty)
        .env("KUBECONFIG", &kubeconfig)
        .current_dir(dir.path())
        .output()
        .expect("cockpit runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let checkout = report["services"].as_array().expect("services").iter().find(|s| s["name"] == "checkout").cloned();
    let checkout = checkout.expect("checkout is listed");
    assert_eq!(checkout["stage"], "mission-critical");
    assert_eq!(checkout["canary"]["weight"], 10, "{checkout}");
    drop(runtime);
}
