//! The `cockpit` binary: parse the command line, load the config, pick the
//! backend, and run the loop inside a terminal guard.

use clap::{Parser, Subcommand};
use cockpit::action::Keymap;
use cockpit::app::{ContextSwitch, Loop, SelectHook};
use cockpit::audit::AuditLog;
use cockpit::backend::docker::{self, DockerOptions, DockerWorkloads};
use cockpit::backend::kube::{self as cluster, ClusterTarget, KubeBackend, KubeOptions};
use cockpit::backend::prometheus::{self, GatedByMetrics, Source as PrometheusSource};
use cockpit::backend::sim::{self, SimBackend, SimFleet, SimOptions};
use cockpit::backend::{NoWorkloads, Split, Workloads, config_inventory};
use cockpit::clock::Clock;
use cockpit::config::{Config, Scenario};
use cockpit::domain::Timestamp;
use cockpit::event::SourceEvent;
use cockpit::executor::{self, Executor};
use cockpit::state::{AppState, Msg};
use cockpit::theme::Theme;
use cockpit::tui::{self, TerminalGuard};
use color_eyre::eyre::WrapErr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A terminal cockpit for teams that run microservices: services by stage,
/// live logs, rollouts, canaries and SLO health, with keys to rebuild,
/// deploy, promote and roll back.
#[derive(Debug, Parser)]
#[command(name = "cockpit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run on the built-in simulated fleet (the default while no real
    /// backend is configured).
    #[arg(long, global = true)]
    demo: bool,
    /// The team screen for a wall display; read-only for the whole process.
    #[arg(long)]
    team_screen: bool,
    /// Config file; default ./cockpit.toml, then ~/.config/cockpit/cockpit.toml.
    #[arg(long, env = "COCKPIT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Seed of the simulated fleet: the same seed gives the same fleet.
    #[arg(long, global = true)]
    seed: Option<u64>,
    /// What the simulated fleet is going through.
    #[arg(long, value_enum, global = true)]
    scenario: Option<Scenario>,
    /// Simulated log lines per second per pod.
    #[arg(long)]
    log_rate: Option<f64>,
    /// Simulated seconds per real second.
    #[arg(long)]
    speed: Option<f64>,
    /// dark, light, high-contrast, or a theme file. NO_COLOR wins.
    #[arg(long)]
    theme: Option<String>,
    /// Show everything, change nothing: every action is refused.
    #[arg(long, global = true)]
    read_only: bool,
    /// Where actions are recorded; default $XDG_STATE_HOME/cockpit/audit.jsonl.
    #[arg(long, global = true)]
    audit_log: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context (default: [kubernetes] context,
    /// then the kubeconfig's current context). Implies the Kubernetes backend.
    #[arg(long, global = true)]
    context: Option<String>,
    /// Kubernetes: the namespace to watch (default: [kubernetes] namespaces,
    /// then the context's namespace). Implies the Kubernetes backend.
    #[arg(long, short = 'n', global = true)]
    namespace: Option<String>,
}

/// Headless commands: the same engine, executor, policy and audit log as
/// the keys, without the terminal. On the simulated fleet each runs on a
/// fresh fleet (same seed, same fleet).
#[derive(Debug, Subcommand)]
enum Command {
    /// Every service's stage, rollout, canary weight, SLO status and canary
    /// verdict. Exits 1 when any service is paging.
    Status {
        /// The stable JSON schema (see the README) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deploy an image: a prototype's primary at once; otherwise a canary at
    /// the first step of its plan.
    Deploy {
        service: String,
        #[arg(long)]
        image: String,
        /// Answer y/n questions with yes.
        #[arg(long)]
        yes: bool,
    },
    /// Promote the canary one step (or fully with --full).
    Promote {
        service: String,
        #[arg(long)]
        full: bool,
        /// Answer y/n questions with yes; does not pass the mission-critical gate.
        #[arg(long)]
        yes: bool,
        /// The service's name again: passes the mission-critical gate (audited as forced).
        #[arg(long, value_name = "SERVICE")]
        force: Option<String>,
    },
    /// Roll back: the canary to 0, else undo the primary's last revision.
    Rollback {
        service: String,
        #[arg(long)]
        yes: bool,
    },
}

/// A problem the user can fix (bad config, unknown theme): printed as one
/// plain message, without a backtrace.
#[derive(Debug)]
struct UserError(String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

fn user_error(message: impl std::fmt::Display) -> color_eyre::Report {
    UserError(message.to_string()).into()
}

fn main() -> ExitCode {
    if let Err(report) = color_eyre::install() {
        eprintln!("cockpit: {report}");
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(report) => {
            match report.downcast_ref::<UserError>() {
                Some(problem) => eprintln!("cockpit: {problem}"),
                None => eprintln!("cockpit: {report:?}"),
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<()> {
    let (config, config_path) = Config::discover(cli.config.as_deref()).map_err(user_error)?;
    // Kubernetes when the config or the command line asks for a cluster;
    // else Docker and Prometheus alone or together; else the simulated fleet.
    let cluster = (!cli.demo && (config.kubernetes.is_some() || cli.context.is_some() || cli.namespace.is_some()))
        .then(|| {
            let kubernetes = config.kubernetes.clone().unwrap_or_default();
            ClusterTarget {
                kubeconfig: None,
                context: cli.context.clone().or(kubernetes.context),
                namespaces: cli.namespace.clone().map_or(kubernetes.namespaces, |ns| vec![ns]),
            }
        });
    let real = match (&config.prometheus, &config.docker, cli.demo) {
        _ if cluster.is_some() => None,
        (None, None, _) | (_, _, true) => None,
        (prometheus, docker, false) if config.services.is_empty() => {
            let what = match (prometheus, docker) {
                (Some(prometheus), _) => format!("[prometheus] ({})", prometheus.url),
                _ => "[docker]".to_owned(),
            };
            return Err(user_error(format!(
                "{what} is configured but the config lists no [[service]] to watch; \
                 add [[service]] sections, or run `cockpit --demo`"
            )));
        }
        (prometheus, docker, false) => Some((prometheus.clone(), docker.is_some())),
    };
    // Build contexts are relative to the config file's directory.
    let base_dir = config_path
        .as_deref()
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    let theme = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        Theme::monochrome()
    } else {
        let name = cli.theme.as_deref().or(config.theme.as_deref()).unwrap_or("dark");
        Theme::load(name).map_err(user_error)?
    };
    let keymap = Keymap::with_overrides(&config.keys).map_err(user_error)?;
    let read_only = cli.read_only || config.read_only || cli.team_screen;
    let audit = match cli.audit_log.clone().or_else(AuditLog::default_path) {
        Some(path) => AuditLog::at(path),
        None => AuditLog::disabled(),
    };

    let speed = cli.speed.unwrap_or(config.demo.speed);
    if !(0.1..=100.0).contains(&speed) {
        return Err(user_error(format!("--speed {speed}: use a factor from 0.1 to 100")));
    }
    let options = SimOptions {
        seed: cli.seed.unwrap_or(config.demo.seed),
        scenario: cli.scenario.unwrap_or(config.demo.scenario),
        log_rate: cli.log_rate.unwrap_or(config.demo.log_rate),
        max_line: config.logs.max_line_bytes,
        start: Timestamp::now(),
    };
    if let Some(command) = cli.command {
        if real.is_some() {
            return Err(user_error(
                "headless commands run on a cluster ([kubernetes], --context) or on the simulated fleet (--demo)",
            ));
        }
        return match cluster {
            Some(cluster) => headless_kube(command, &config, cluster, read_only, audit),
            None => headless_main(command, options, read_only, audit),
        };
    }
    let team_screen = cli.team_screen;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let (events, inbox) = mpsc::channel::<Msg>(4096);
        let (requests, request_inbox) = mpsc::channel(64);
        if let Some(cluster) = cluster {
            let setup = KubeSetup { config: &config, base_dir: &base_dir, read_only, team_screen, audit };
            let (state, hooks) = start_kube(setup, cluster, keymap, &events, request_inbox)?;
            return run_loop(state, &theme, Clock::system(), events, inbox, requests, hooks).await;
        }
        match real {
            Some((prometheus, docker)) => {
                // Real time: metrics are queried at the clock's now.
                let clock = Clock::system();
                let source = match &prometheus {
                    Some(prometheus) => Some(
                        PrometheusSource::new(prometheus, &config.services, &config.canary)
                            .map_err(|e| user_error(format!("[prometheus]: {e}")))?,
                    ),
                    None => None,
                };
                let docker = docker.then(|| {
                    let options = DockerOptions {
                        tail_lines: config.logs.tail_lines,
                        max_line: config.logs.max_line_bytes,
                        ..DockerOptions::default()
                    };
                    DockerWorkloads::new(&config, &base_dir, clock, events.clone(), options)
                });
                let context = match (&docker, &prometheus) {
                    (Some(docker), Some(prometheus)) => format!("{} · {}", docker.host(), prometheus.url),
                    (Some(docker), None) => docker.host().to_owned(),
                    (None, Some(prometheus)) => prometheus.url.clone(),
                    (None, None) => String::new(),
                };
                let (mut info, services) = config_inventory(&config, &context);
                if docker.is_some() {
                    info.kind = "docker".into();
                }
                let mut state = AppState::new(info.clone(), keymap, read_only, config.logs.buffer_lines);
                state.team = config.team.clone();
                state.team_screen = team_screen;
                seed_timeline(&audit, &(info.kind.clone(), info.context.clone()), &events).await;
                let _ = events.send(Msg::Source(SourceEvent::Inventory { backend: info.clone(), services })).await;
                let user = executor::current_user();
                // The mission-critical gate judges on measured metrics when there are any.
                let metrics = source.as_ref().map(PrometheusSource::facts).unwrap_or_default();
                match docker {
                    Some(docker) => {
                        let gated = GatedByMetrics { workloads: docker.clone(), metrics };
                        let executor = Executor::new(gated, read_only, audit, clock).with_identity(
                            &user,
                            &info.kind,
                            &info.context,
                        );
                        tokio::spawn(executor::run(Arc::new(executor), request_inbox, events.clone()));
                        tokio::spawn(docker::run(docker));
                    }
                    None => {
                        let gated = GatedByMetrics { workloads: NoWorkloads, metrics };
                        let executor = Executor::new(gated, read_only, audit, clock).with_identity(
                            &user,
                            &info.kind,
                            &info.context,
                        );
                        tokio::spawn(executor::run(Arc::new(executor), request_inbox, events.clone()));
                    }
                }
                if let Some(source) = source {
                    tokio::spawn(prometheus::run(source, clock, events.clone()));
                }
                run_loop(state, &theme, clock, events, inbox, requests, Hooks::default()).await
            }
            None => {
                let clock = Clock::starting_at(options.start, speed);
                let fleet = SimFleet::new(options);
                let info = fleet.backend_info();
                let team = fleet.team().to_string();
                let backend = SimBackend::new(fleet);
                let mut state = AppState::new(info.clone(), keymap, read_only, config.logs.buffer_lines);
                state.team = Some(config.team.clone().unwrap_or(team));
                state.time_scale = speed;
                state.team_screen = team_screen;
                seed_timeline(&audit, &(info.kind.clone(), info.context.clone()), &events).await;
                let executor = Executor::new(backend.clone(), read_only, audit, clock).with_identity(
                    &executor::current_user(),
                    &info.kind,
                    &info.context,
                );
                tokio::spawn(executor::run(Arc::new(executor), request_inbox, events.clone()));
                tokio::spawn(sim::run(backend, clock, events.clone()));
                run_loop(state, &theme, clock, events, inbox, requests, Hooks::default()).await
            }
        }
    });
    // Background tasks (a blocked stdin read among them) must not keep the
    // process alive after the terminal is restored.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// What the loop calls back into a backend with.
#[derive(Default)]
struct Hooks {
    switch_context: Option<ContextSwitch>,
    on_select: Option<SelectHook>,
}

/// What a cockpit on a cluster is set up from.
struct KubeSetup<'a> {
    config: &'a Config,
    base_dir: &'a std::path::Path,
    read_only: bool,
    team_screen: bool,
    audit: AuditLog,
}

/// Starts the Kubernetes source (plus Docker for rebuilds and Prometheus
/// for metrics, when configured) and the executor over them. The screen
/// comes up at once; the cluster fills it in.
fn start_kube(
    setup: KubeSetup<'_>,
    target: ClusterTarget,
    keymap: Keymap,
    events: &mpsc::Sender<Msg>,
    request_inbox: mpsc::Receiver<cockpit::event::Request>,
) -> color_eyre::Result<(AppState, Hooks)> {
    let KubeSetup { config, base_dir, read_only, team_screen, audit } = setup;
    let clock = Clock::system();
    let user = executor::current_user();
    let options = KubeOptions {
        tail_lines: config.logs.tail_lines,
        max_line: config.logs.max_line_bytes,
        read_only,
        user: user.clone(),
        ..KubeOptions::default()
    };
    let kube = KubeBackend::new(config, target, clock, events.clone(), options);
    let context = kube.context().unwrap_or_else(|| "(current context)".into());
    let info = cockpit::event::BackendInfo { kind: "kubernetes".into(), context, simulated: false, scenario: None };
    let mut state = AppState::new(info.clone(), keymap, read_only, config.logs.buffer_lines);
    state.team = config.team.clone();
    state.team_screen = team_screen;
    state.contexts = kube.contexts();
    let metrics = match &config.prometheus {
        Some(prometheus) => {
            let source = PrometheusSource::new(prometheus, &config.services, &config.canary)
                .map_err(|e| user_error(format!("[prometheus]: {e}")))?;
            let facts = source.facts();
            tokio::spawn(prometheus::run(source, clock, events.clone()));
            facts
        }
        None => Default::default(),
    };
    let current = kube.clone();
    let context_now: executor::ContextNow = Box::new(move || current.context().unwrap_or_default());
    match &config.docker {
        Some(_) => {
            let options = DockerOptions {
                tail_lines: config.logs.tail_lines,
                max_line: config.logs.max_line_bytes,
                ..DockerOptions::default()
            };
            let docker = DockerWorkloads::new(config, base_dir, clock, events.clone(), options);
            tokio::spawn(docker::run(docker.clone()));
            let split = Split { docker, cluster: kube.clone() };
            let executor = Executor::new(GatedByMetrics { workloads: split, metrics }, read_only, audit, clock);
            let executor = executor.with_identity(&user, &info.kind, &info.context).with_context_now(context_now);
            spawn_executor(executor, request_inbox, events);
        }
        None => {
            let gated = GatedByMetrics { workloads: kube.clone(), metrics };
            let executor = Executor::new(gated, read_only, audit, clock);
            let executor = executor.with_identity(&user, &info.kind, &info.context).with_context_now(context_now);
            spawn_executor(executor, request_inbox, events);
        }
    }
    tokio::spawn(cluster::run(kube.clone()));
    let switching = kube.clone();
    let hooks = Hooks {
        switch_context: Some(Box::new(move |name| switching.switch_context(name))),
        on_select: Some(Box::new(move |service| kube.focus(service))),
    };
    Ok((state, hooks))
}

fn spawn_executor<W: Workloads>(
    executor: Executor<W>,
    requests: mpsc::Receiver<cockpit::event::Request>,
    events: &mpsc::Sender<Msg>,
) {
    tokio::spawn(executor::run(Arc::new(executor), requests, events.clone()));
}

/// Runs one headless command on a cluster: syncs (lists) first, then
/// reports or acts through the same executor as the keys.
fn headless_kube(
    command: Command,
    config: &Config,
    target: ClusterTarget,
    read_only: bool,
    audit: AuditLog,
) -> color_eyre::Result<()> {
    use cockpit::event::{ConnectionState, Op, Request};
    use cockpit::headless::{self, Outcome};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let code = runtime.block_on(async move {
        let clock = Clock::system();
        let (events, mut inbox) = mpsc::channel::<Msg>(4096);
        let options = KubeOptions { read_only, tail_lines: 0, ..KubeOptions::default() };
        let kube = KubeBackend::new(config, target, clock, events, options);
        let context = kube.context().unwrap_or_else(|| "(current context)".into());
        let info = cockpit::event::BackendInfo { kind: "kubernetes".into(), context, simulated: false, scenario: None };
        let mut state = AppState::new(info.clone(), Keymap::default(), read_only, 100);
        tokio::spawn(cluster::run(kube.clone()));
        let synced = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(msg) = inbox.recv().await {
                let verdict = match &msg {
                    Msg::Source(SourceEvent::Connection { state, .. }) => match state {
                        ConnectionState::Live => Some(Ok(())),
                        ConnectionState::Disconnected { reason, .. } => Some(Err(reason.clone())),
                        ConnectionState::Connecting => None,
                    },
                    _ => None,
                };
                cockpit::state::update(&mut state, clock.now(), msg);
                if let Some(verdict) = verdict {
                    return verdict;
                }
            }
            Err("the Kubernetes source stopped".to_owned())
        })
        .await
        .unwrap_or_else(|_| Err("the cluster did not answer within 30 s".to_owned()));
        if let Err(reason) = synced {
            eprintln!("cockpit: cannot reach the cluster: {reason}");
            return 2;
        }
        // What arrived with the sync (rollouts, traffic) is in the queue too.
        while let Ok(msg) = inbox.try_recv() {
            cockpit::state::update(&mut state, clock.now(), msg);
        }
        let (service, op, yes, force) = match command {
            Command::Status { json } => return print_status(&state, json),
            Command::Deploy { service, image, yes } => (service, Op::Deploy { image }, yes, None),
            Command::Promote { service, full, yes, force } => (service, Op::Promote { full }, yes, force),
            Command::Rollback { service, yes } => (service, Op::Rollback, yes, None),
        };
        let user = executor::current_user();
        let kube_for_wait = kube.clone();
        let full = op == Op::Promote { full: true };
        let request =
            Request { id: 1, service: service.clone(), op, confirmed: false, typed_name: None, asked_token: None };
        let force = force.as_deref();
        let outcome = match &config.docker {
            // An image built here and never pushed is refused, as in the TUI.
            Some(_) => {
                let base_dir = std::env::current_dir().unwrap_or_default();
                let (events, _) = mpsc::channel(1);
                let docker = DockerWorkloads::new(config, &base_dir, clock, events, DockerOptions::default());
                let split = Split { docker, cluster: kube };
                let executor = Executor::new(split, read_only, audit, clock);
                let executor = executor.with_identity(&user, &info.kind, &info.context);
                headless::act(&executor, request, yes, force).await
            }
            None => {
                let executor = Executor::new(kube, read_only, audit, clock);
                let executor = executor.with_identity(&user, &info.kind, &info.context);
                headless::act(&executor, request, yes, force).await
            }
        };
        match outcome {
            Outcome::Done(summary) if full => {
                println!("{service}: {summary}");
                // Like `kubectl rollout status`: wait for the end of the promotion.
                println!("{service}: waiting for the primary's rollout…");
                match finish_promotion(&mut state, &mut inbox, &kube_for_wait, &service, clock).await {
                    Ok(done) => {
                        println!("{service}: {done}");
                        0
                    }
                    Err(problem) => {
                        eprintln!("{service}: {problem}");
                        1
                    }
                }
            }
            outcome => print_outcome(&service, outcome),
        }
    });
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Prints the status table or JSON; the exit code says whether anything pages.
fn print_status(state: &AppState, json: bool) -> i32 {
    let report = cockpit::headless::status(state);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", cockpit::headless::status_text(&report));
    }
    if report.summary.paging > 0 { 1 } else { 0 }
}

/// Prints what an action did; 0 when it was done, 1 when refused or failed.
fn print_outcome(service: &str, outcome: cockpit::headless::Outcome) -> i32 {
    use cockpit::headless::Outcome;
    match outcome {
        Outcome::Done(summary) => {
            println!("{service}: {summary}");
            0
        }
        Outcome::Refused(reason) => {
            eprintln!("{service}: refused: {reason}");
            1
        }
        Outcome::Failed(error) => {
            eprintln!("{service}: failed: {error}");
            1
        }
    }
}

/// Follows a full promotion to its end: the Event that says it is complete
/// (written after traffic returned, the canary was emptied and the mark was
/// removed), or the rollout failing. Problems on the way are printed.
async fn finish_promotion(
    state: &mut AppState,
    inbox: &mut mpsc::Receiver<Msg>,
    kube: &KubeBackend,
    service: &str,
    clock: Clock,
) -> Result<String, String> {
    use cockpit::backend::Workloads;
    use cockpit::domain::rollout::RolloutPhase;
    let started = clock.now().plus(cockpit::domain::Millis(-1_000));
    // Where Events cannot be read (or were not written), the objects tell too.
    let mut check = tokio::time::interval(std::time::Duration::from_secs(2));
    let wait = async {
        loop {
            let msg = tokio::select! {
                msg = inbox.recv() => msg,
                _ = check.tick() => {
                    let facts = kube.facts(service).await;
                    if let Some(facts) = facts.ok().filter(|f| !f.promoting && f.canary_image.is_none()) {
                        return Ok(format!("promotion complete: the primary runs {}", facts.primary_image));
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            if let Msg::Problem(problem) = &msg {
                eprintln!("{service}: {problem}");
            }
            cockpit::state::update(state, clock.now(), msg);
            let complete = state
                .timeline
                .iter()
                .find(|c| c.service == service && c.at >= started && c.summary.starts_with("promotion complete"));
            if let Some(change) = complete {
                return Ok(change.summary.clone());
            }
            let Some(view) = state.service(service) else { continue };
            if view.rollout.as_ref().is_some_and(|r| r.phase == RolloutPhase::Failed) {
                return Err("the primary's rollout failed (progress deadline exceeded); roll back with \
                            `cockpit rollback`"
                    .to_owned());
            }
        }
        Err("the Kubernetes source stopped".to_owned())
    };
    tokio::time::timeout(std::time::Duration::from_secs(900), wait)
        .await
        .unwrap_or_else(|_| Err("the promotion did not finish within 15 minutes".to_owned()))
}

/// Takes over the terminal and runs the loop until the user quits.
async fn run_loop(
    mut state: AppState,
    theme: &Theme,
    clock: Clock,
    events: mpsc::Sender<Msg>,
    mut inbox: mpsc::Receiver<Msg>,
    requests: mpsc::Sender<cockpit::event::Request>,
    hooks: Hooks,
) -> color_eyre::Result<()> {
    tokio::spawn(tui::signals(events.clone()));
    let mut guard = TerminalGuard::enter().wrap_err("cannot take over the terminal")?;
    let size = guard.terminal.size()?;
    let _ = events.send(Msg::Resize { width: size.width, height: size.height }).await;
    tokio::spawn(tui::input(events));
    let mut app = Loop {
        state: &mut state,
        theme,
        clock,
        inbox: &mut inbox,
        requests,
        stats: Default::default(),
        switch_context: hooks.switch_context,
        on_select: hooks.on_select,
    };
    let result = app.run(&mut guard.terminal).await;
    drop(guard);
    result
}

/// Earlier changes from the local audit log of this backend and context,
/// so the team screen's timeline starts with history.
async fn seed_timeline(audit: &AuditLog, (backend, context): &(String, String), events: &mpsc::Sender<Msg>) {
    let Some(path) = audit.path() else { return };
    let Ok(entries) = AuditLog::read(path) else { return };
    for entry in entries.iter().filter(|e| e.outcome == "ok" && &e.backend == backend && &e.context == context) {
        let Some(at) = cockpit::domain::Timestamp::parse_rfc3339(&entry.time) else { continue };
        let record = cockpit::event::ChangeRecord {
            at,
            service: entry.service.clone(),
            action: entry.action.clone(),
            user: entry.user.clone(),
            summary: entry.detail.clone(),
        };
        let _ = events.send(Msg::Source(SourceEvent::Change(record))).await;
    }
}

/// Runs one headless command on a fresh simulated fleet; the exit code says
/// how it went (0 done or healthy, 1 refused, failed or paging).
fn headless_main(command: Command, options: SimOptions, read_only: bool, audit: AuditLog) -> color_eyre::Result<()> {
    use cockpit::event::{Op, Request};
    use cockpit::headless;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let code = runtime.block_on(async move {
        let clock = Clock::starting_at(options.start, 1.0);
        let mut fleet = SimFleet::new(options);
        let info = fleet.backend_info();
        let mut state = AppState::new(info.clone(), Keymap::default(), read_only, 100);
        let now = fleet.now().plus(cockpit::domain::Millis(250));
        for event in fleet.advance_to(now) {
            cockpit::state::update(&mut state, now, Msg::Source(event));
        }
        let (service, op, yes, force) = match command {
            Command::Status { json } => return print_status(&state, json),
            Command::Deploy { service, image, yes } => (service, Op::Deploy { image }, yes, None),
            Command::Promote { service, full, yes, force } => (service, Op::Promote { full }, yes, force),
            Command::Rollback { service, yes } => (service, Op::Rollback, yes, None),
        };
        let executor = Executor::new(SimBackend::new(fleet), read_only, audit, clock).with_identity(
            &executor::current_user(),
            &info.kind,
            &info.context,
        );
        let request =
            Request { id: 1, service: service.clone(), op, confirmed: false, typed_name: None, asked_token: None };
        if info.simulated {
            println!("SIMULATED fleet ({})", info.scenario.as_deref().unwrap_or("calm"));
        }
        print_outcome(&service, headless::act(&executor, request, yes, force.as_deref()).await)
    });
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
