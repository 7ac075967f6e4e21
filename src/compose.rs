//! The composition root: settings (the config and the command line) in, a
//! `Runtime` out: the initial state, the executor with its gate inputs,
//! the sources and the loop's hooks. The TUI, every headless command, the
//! tests and the benches build cockpit here, so no path can be assembled
//! without what another path has (the metrics gate above all).
//!
//! Which backends run is the `Mix`: the simulated fleet; a cluster (with
//! Docker for rebuilds and Prometheus for metrics when configured); or
//! Docker and Prometheus alone or together over the config's services.

use crate::action::Keymap;
use crate::app::{ContextSwitch, SelectHook};
use crate::audit::AuditLog;
use crate::backend::docker::{self, DockerOptions, DockerWorkloads};
use crate::backend::kube::{self as cluster, ClusterTarget, KubeBackend, KubeOptions};
use crate::backend::prometheus::{self, GatedByMetrics, MetricsFacts, Source as PrometheusSource};
use crate::backend::sim::{self, SimBackend, SimFleet, SimOptions};
use crate::backend::{AnyWorkloads, NO_WORKLOADS, NoWorkloads, Split, config_inventory};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::Millis;
use crate::event::{BackendInfo, ConnectionState, Denied, Request, SourceEvent};
use crate::executor::{self, Executor};
use crate::state::{AppState, Msg};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Everything a cockpit is built from: the config plus what the command
/// line said over it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    /// Build contexts are relative to this (the config file's directory).
    pub base_dir: PathBuf,
    /// Run on the simulated fleet whatever the config says.
    pub demo: bool,
    pub team_screen: bool,
    pub read_only: bool,
    /// Where actions are recorded; `None`: the default for the mix.
    pub audit_log: Option<PathBuf>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub sim: SimOptions,
    /// Simulated seconds per real second.
    pub speed: f64,
    pub keymap: Keymap,
    /// Who acts, for the audit log and the cluster's Events.
    pub user: String,
    /// Kubernetes watch backoff, first wait to longest (tests shorten it).
    pub kube_backoff: Option<(Duration, Duration)>,
}

impl Settings {
    /// Settings for `config` with nothing said on the command line.
    pub fn new(config: Config) -> Settings {
        let sim = SimOptions {
            seed: config.demo.seed,
            scenario: config.demo.scenario,
            log_rate: config.demo.log_rate,
            max_line: config.logs.max_line_bytes,
            start: crate::domain::Timestamp::now(),
        };
        Settings {
            speed: config.demo.speed,
            read_only: config.read_only,
            config,
            base_dir: std::env::current_dir().unwrap_or_default(),
            demo: false,
            team_screen: false,
            audit_log: None,
            kubeconfig: None,
            context: None,
            namespace: None,
            sim,
            keymap: Keymap::default(),
            user: executor::current_user(),
            kube_backoff: None,
        }
    }

    /// Which backends these settings run.
    pub fn mix(&self) -> Result<Mix, ComposeError> {
        let config = &self.config;
        if self.demo {
            return Ok(Mix::Sim);
        }
        if config.kubernetes.is_some() || self.context.is_some() || self.namespace.is_some() {
            return Ok(Mix::Cluster { prometheus: config.prometheus.is_some(), docker: config.docker.is_some() });
        }
        match (&config.prometheus, &config.docker) {
            (None, None) => Ok(Mix::Sim),
            (prometheus, _) if config.services.is_empty() => Err(ComposeError::NoServices(match prometheus {
                Some(prometheus) => format!("[prometheus] ({})", prometheus.url),
                None => "[docker]".into(),
            })),
            (prometheus, docker) => Ok(Mix::Local { prometheus: prometheus.is_some(), docker: docker.is_some() }),
        }
    }

    /// Where actions are recorded: the simulated fleet keeps its own log,
    /// so a demo never mixes with what was done to real services.
    pub fn audit(&self, mix: Mix) -> AuditLog {
        let name = if mix == Mix::Sim { "demo-audit.jsonl" } else { "audit.jsonl" };
        match self.audit_log.clone().or_else(|| AuditLog::default_dir().map(|dir| dir.join(name))) {
            Some(path) => AuditLog::at(path),
            None => AuditLog::disabled(),
        }
    }
}

/// The backends a cockpit runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// The built-in simulated fleet: workloads and metrics in one.
    Sim,
    /// A Kubernetes cluster; Prometheus for metrics and Docker for
    /// rebuilds when configured.
    Cluster { prometheus: bool, docker: bool },
    /// The config's services, with Prometheus metrics and/or Docker dev
    /// containers and builds.
    Local { prometheus: bool, docker: bool },
}

impl Mix {
    pub fn has_prometheus(self) -> bool {
        matches!(self, Mix::Cluster { prometheus: true, .. } | Mix::Local { prometheus: true, .. })
    }
}

/// A configuration cockpit cannot be built from; each says what to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ComposeError {
    /// Metrics or Docker configured, but no service to watch.
    NoServices(String),
    /// The `[prometheus]` section cannot be used.
    Prometheus(String),
    /// `--speed` out of range.
    Speed(f64),
}

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComposeError::NoServices(what) => write!(
                f,
                "{what} is configured but the config lists no [[service]] to watch; \
                 add [[service]] sections, or run `cockpit --demo`"
            ),
            ComposeError::Prometheus(why) => write!(f, "[prometheus]: {why}"),
            ComposeError::Speed(speed) => write!(f, "--speed {speed}: use a factor from 0.1 to 100"),
        }
    }
}

impl std::error::Error for ComposeError {}

/// What the loop calls back into a backend with.
#[derive(Default)]
pub struct Hooks {
    pub switch_context: Option<ContextSwitch>,
    pub on_select: Option<SelectHook>,
}

/// The world a runtime acts on, for what only it can do (advance the
/// simulated fleet, follow a cluster's promotion).
#[derive(Clone)]
pub enum World {
    Sim(SimBackend),
    Cluster(KubeBackend),
    /// Services from the config (Docker and Prometheus sources only).
    Local,
}

/// A composed cockpit: built, not yet started.
pub struct Runtime {
    pub mix: Mix,
    pub state: AppState,
    pub clock: Clock,
    pub executor: Arc<Executor<AnyWorkloads>>,
    pub events: mpsc::Sender<Msg>,
    pub inbox: mpsc::Receiver<Msg>,
    pub world: World,
    prometheus: Option<PrometheusSource>,
    docker: Option<DockerWorkloads>,
    /// Messages the runtime has for the state before any source reports
    /// (the inventory of a config-only mix, its access denials).
    pending: Vec<Msg>,
}

/// A pause this long ends a source's burst of first reports.
const BURST_QUIET: Duration = Duration::from_millis(150);
const BURST_MAX: Duration = Duration::from_secs(2);

/// How long measurements may be judged on, from the refresh interval.
pub fn stale_after(refresh: Millis) -> Millis {
    Millis((refresh.0 * 3).max(30_000))
}

impl Runtime {
    /// Builds a cockpit from `settings`. Nothing runs until `start` (the
    /// TUI) or `sync` (a headless command).
    pub fn compose(settings: Settings) -> Result<Runtime, ComposeError> {
        let mix = settings.mix()?;
        tracing::info!(?mix, read_only = settings.read_only, team_screen = settings.team_screen, "composing");
        if mix == Mix::Sim && !(0.1..=100.0).contains(&settings.speed) {
            return Err(ComposeError::Speed(settings.speed));
        }
        let audit = settings.audit(mix);
        let config = &settings.config;
        let (events, inbox) = mpsc::channel::<Msg>(4096);
        let prometheus = match &config.prometheus {
            Some(p) if mix.has_prometheus() => Some(
                PrometheusSource::new(p, &config.services, &config.canary)
                    .map_err(|e| ComposeError::Prometheus(e.to_string()))?,
            ),
            _ => None,
        };
        let metrics = prometheus.as_ref().map(PrometheusSource::facts);
        let stale = config.prometheus.as_ref().map_or(Millis(30_000), |p| stale_after(p.refresh));
        let gate = Gate { metrics, stale_after: stale };
        let Parts { clock, info, world, workloads, docker, mut pending } = match mix {
            Mix::Sim => Parts::sim(&settings),
            Mix::Cluster { docker, .. } => Parts::cluster(&settings, &events, &gate, docker),
            Mix::Local { prometheus, docker } => Parts::local(&settings, &events, &gate, prometheus, docker),
        };
        let read_only = settings.read_only || settings.team_screen;
        let mut executor = Executor::new(workloads, read_only, audit.clone(), clock).with_identity(
            &settings.user,
            &info.kind,
            &info.context,
        );
        if let World::Cluster(kube) = &world {
            let current = kube.clone();
            executor = executor.with_context_now(Box::new(move || current.context().unwrap_or_default()));
        }
        let mut state = AppState::new(info.clone(), settings.keymap.clone(), read_only, config.logs.buffer_lines);
        state.team_screen = settings.team_screen;
        match &world {
            World::Sim(backend) => {
                state.team = Some(config.team.clone().unwrap_or_else(|| backend.world().team().to_string()));
                state.time_scale = settings.speed;
            }
            World::Cluster(kube) => {
                state.team = config.team.clone();
                state.contexts = kube.contexts();
            }
            World::Local => state.team = config.team.clone(),
        }
        // The timeline starts with this fleet's history from the audit log.
        // A simulated fleet is new on every run: it has none.
        if mix != Mix::Sim {
            pending.extend(history(&audit, &info.kind, &executor.context()));
        }
        Ok(Runtime {
            mix,
            state,
            clock,
            executor: Arc::new(executor),
            events,
            inbox,
            world,
            prometheus,
            docker,
            pending,
        })
    }

    /// Starts every source and the executor's task (which takes requests
    /// from `requests`), for a long-running cockpit. Call inside a tokio
    /// runtime. Returns the hooks the loop calls back with.
    pub fn start(&mut self, requests: mpsc::Receiver<Request>) -> Hooks {
        self.fold_pending();
        tokio::spawn(executor::run(self.executor.clone(), requests, self.events.clone()));
        if let Some(source) = self.prometheus.take() {
            tokio::spawn(prometheus::run(source, self.clock, self.events.clone()));
        }
        if let Some(docker) = self.docker.take() {
            tokio::spawn(docker::run(docker));
        }
        match &self.world {
            World::Sim(backend) => {
                tokio::spawn(sim::run(backend.clone(), self.clock, self.events.clone()));
                Hooks::default()
            }
            World::Cluster(kube) => {
                tokio::spawn(cluster::run(kube.clone()));
                let switching = kube.clone();
                let focusing = kube.clone();
                Hooks {
                    switch_context: Some(Box::new(move |name| switching.switch_context(name))),
                    on_select: Some(Box::new(move |service| focusing.focus(service))),
                }
            }
            World::Local => Hooks::default(),
        }
    }

    /// Brings the state up to date once, for a command that reports or acts
    /// and exits: the fleet's first step, the cluster's first sync, the
    /// engine's first poll, and one measurement of every service's metrics,
    /// so that status and the gate see what the screen would.
    pub async fn sync(&mut self, within: Duration) -> Result<(), String> {
        self.fold_pending();
        if let World::Sim(backend) = &self.world {
            let now = self.clock.now().plus(Millis(250));
            let batch = backend.world().advance_to(now);
            for event in batch {
                crate::state::update(&mut self.state, now, Msg::Source(event));
            }
        }
        let mut waiting: Vec<&'static str> = Vec::new();
        if let World::Cluster(kube) = &self.world {
            tokio::spawn(cluster::run(kube.clone()));
            waiting.push(cluster::SOURCE);
        }
        if let Some(docker) = self.docker.take() {
            tokio::spawn(docker::run(docker));
            waiting.push(docker::SOURCE);
        }
        let deadline = tokio::time::Instant::now() + within;
        let any_source = !waiting.is_empty();
        while !waiting.is_empty() {
            let msg = match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => return Err("the sources stopped".into()),
                Err(_) => {
                    return Err(format!("{} did not answer within {} s", waiting.join(" and "), within.as_secs()));
                }
            };
            if let Msg::Source(SourceEvent::Connection { source, state }) = &msg {
                match state {
                    ConnectionState::Live => waiting.retain(|s| s != source),
                    ConnectionState::Disconnected { reason, .. } if source == cluster::SOURCE => {
                        return Err(format!("cannot reach the cluster: {reason}"));
                    }
                    ConnectionState::Disconnected { .. } => waiting.retain(|s| s != source),
                    ConnectionState::Connecting => {}
                }
            }
            crate::state::update(&mut self.state, self.clock.now(), msg);
        }
        // The inventory first, then the metrics of what it lists.
        if any_source {
            self.drain_burst(deadline).await;
        }
        if let Some(source) = self.prometheus.take() {
            let now = self.clock.now();
            let measured = tokio::time::timeout_at(deadline, source.refresh(now)).await;
            let events = match measured {
                Ok(Ok(events)) => events,
                Ok(Err(error)) => vec![disconnected(prometheus::SOURCE, now, error.to_string())],
                Err(_) => vec![disconnected(prometheus::SOURCE, now, format!("no answer within {within:?}"))],
            };
            for event in events {
                crate::state::update(&mut self.state, now, Msg::Source(event));
            }
        }
        Ok(())
    }

    /// A source says Live and then reports what it synced (inventory,
    /// rollouts, traffic) in one burst: take it all, until it is quiet.
    /// Logs may never be quiet: the burst is over after `BURST_MAX` anyway.
    async fn drain_burst(&mut self, deadline: tokio::time::Instant) {
        let burst_over = (tokio::time::Instant::now() + BURST_MAX).min(deadline);
        while let Ok(Some(msg)) = tokio::time::timeout(BURST_QUIET, self.inbox.recv()).await {
            crate::state::update(&mut self.state, self.clock.now(), msg);
            if tokio::time::Instant::now() > burst_over {
                break;
            }
        }
    }

    fn fold_pending(&mut self) {
        let now = self.clock.now();
        for msg in std::mem::take(&mut self.pending) {
            crate::state::update(&mut self.state, now, msg);
        }
    }
}

/// The gate inputs every non-simulated workload backend is wrapped in.
struct Gate {
    metrics: Option<MetricsFacts>,
    stale_after: Millis,
}

impl Gate {
    fn over<W>(&self, workloads: W, clock: Clock) -> GatedByMetrics<W> {
        GatedByMetrics { workloads, metrics: self.metrics.clone(), clock, stale_after: self.stale_after }
    }
}

/// What one mix is made of, before the executor and the state.
struct Parts {
    clock: Clock,
    info: BackendInfo,
    world: World,
    workloads: AnyWorkloads,
    docker: Option<DockerWorkloads>,
    pending: Vec<Msg>,
}

impl Parts {
    fn sim(settings: &Settings) -> Parts {
        let clock = Clock::starting_at(settings.sim.start, settings.speed);
        let fleet = SimFleet::new(settings.sim.clone());
        let info = fleet.backend_info();
        let backend = SimBackend::new(fleet);
        // The fleet measures itself: its facts carry its own verdicts.
        let workloads: AnyWorkloads = Arc::new(backend.clone());
        Parts { clock, info, world: World::Sim(backend), workloads, docker: None, pending: Vec::new() }
    }

    fn cluster(settings: &Settings, events: &mpsc::Sender<Msg>, gate: &Gate, with_docker: bool) -> Parts {
        let config = &settings.config;
        let clock = Clock::system();
        let kubernetes = config.kubernetes.clone().unwrap_or_default();
        let target = ClusterTarget {
            kubeconfig: settings.kubeconfig.clone(),
            context: settings.context.clone().or(kubernetes.context),
            namespaces: settings.namespace.clone().map_or(kubernetes.namespaces, |ns| vec![ns]),
        };
        let mut options = KubeOptions {
            tail_lines: config.logs.tail_lines,
            max_line: config.logs.max_line_bytes,
            read_only: settings.read_only || settings.team_screen,
            user: settings.user.clone(),
            ..KubeOptions::default()
        };
        if let Some(backoff) = settings.kube_backoff {
            options.backoff = backoff;
        }
        let kube = KubeBackend::new(config, target, clock, events.clone(), options);
        let context = kube.context().unwrap_or_else(|| "(current context)".into());
        let info = BackendInfo { kind: "kubernetes".into(), context, simulated: false, scenario: None };
        let docker = with_docker.then(|| docker_workloads(settings, clock, events));
        let workloads: AnyWorkloads = match &docker {
            Some(docker) => Arc::new(gate.over(Split { docker: docker.clone(), cluster: kube.clone() }, clock)),
            None => Arc::new(gate.over(kube.clone(), clock)),
        };
        Parts { clock, info, world: World::Cluster(kube), workloads, docker, pending: Vec::new() }
    }

    fn local(
        settings: &Settings,
        events: &mpsc::Sender<Msg>,
        gate: &Gate,
        with_prometheus: bool,
        with_docker: bool,
    ) -> Parts {
        let config = &settings.config;
        let clock = Clock::system();
        let docker = with_docker.then(|| docker_workloads(settings, clock, events));
        let prometheus_url = config.prometheus.as_ref().filter(|_| with_prometheus).map(|p| p.url.as_str());
        let context = match (&docker, prometheus_url) {
            (Some(docker), Some(url)) => format!("{} · {url}", docker.host()),
            (Some(docker), None) => docker.host().to_owned(),
            (None, Some(url)) => url.to_owned(),
            (None, None) => String::new(),
        };
        let (mut info, services) = config_inventory(config, &context);
        let mut pending = Vec::new();
        if docker.is_some() {
            info.kind = "docker".into();
        } else {
            // Nothing to act on: say so on every action key, in words.
            for service in &services {
                let denied = crate::event::OP_NAMES
                    .iter()
                    .map(|op| Denied { op: (*op).into(), reason: NO_WORKLOADS.into() })
                    .collect();
                pending.push(Msg::Source(SourceEvent::Access { service: service.name.clone(), denied }));
            }
        }
        pending.insert(0, Msg::Source(SourceEvent::Inventory { backend: info.clone(), services }));
        let workloads: AnyWorkloads = match &docker {
            Some(docker) => Arc::new(gate.over(docker.clone(), clock)),
            None => Arc::new(gate.over(NoWorkloads, clock)),
        };
        Parts { clock, info, world: World::Local, workloads, docker, pending }
    }
}

fn docker_workloads(settings: &Settings, clock: Clock, events: &mpsc::Sender<Msg>) -> DockerWorkloads {
    let options = DockerOptions {
        tail_lines: settings.config.logs.tail_lines,
        max_line: settings.config.logs.max_line_bytes,
        ..DockerOptions::default()
    };
    DockerWorkloads::new(&settings.config, &settings.base_dir, clock, events.clone(), options)
}

fn disconnected(source: &str, since: crate::domain::Timestamp, reason: String) -> SourceEvent {
    SourceEvent::Connection { source: source.into(), state: ConnectionState::Disconnected { since, reason } }
}

/// Earlier successful changes of this backend and context from the audit
/// log, for the timeline. Entries are matched by the key the executor
/// writes them under (`Executor::context`), so they are found again.
fn history(audit: &AuditLog, backend: &str, context: &str) -> Vec<Msg> {
    let Some(path) = audit.path() else { return Vec::new() };
    let Ok(entries) = AuditLog::read(path) else { return Vec::new() };
    entries
        .into_iter()
        .filter(|e| e.outcome == "ok" && e.backend == backend && e.context == context)
        .filter_map(|entry| {
            let at = crate::domain::Timestamp::parse_rfc3339(&entry.time)?;
            let record = crate::event::ChangeRecord {
                at,
                service: entry.service,
                action: entry.action,
                user: entry.user,
                summary: entry.detail,
            };
            Some(Msg::Source(SourceEvent::Change(record)))
        })
        .collect()
}
