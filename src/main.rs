//! The `cockpit` binary: parse the command line, compose the runtime from
//! the config and the flags (`cockpit::compose`), and run it: in the
//! terminal, or as one headless command.

use clap::Parser;
use cockpit::action::Keymap;
use cockpit::app::{self, Exit};
use cockpit::compose::{Runtime, Settings};
use cockpit::config::{Config, Scenario};
use cockpit::headless::{self, Command};
use cockpit::theme::Theme;
use color_eyre::eyre::WrapErr;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// A terminal cockpit for teams that run microservices: services by stage,
/// live logs, rollouts, canaries and SLO health, with keys to rebuild,
/// deploy, promote and roll back.
#[derive(Debug, Parser)]
#[command(name = "cockpit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<TopCommand>,
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
    /// cockpit's own diagnostics (filter with RUST_LOG); default
    /// $XDG_STATE_HOME/cockpit/cockpit.log. Never written to the terminal.
    #[arg(long, global = true)]
    log_file: Option<PathBuf>,
}

/// What can follow `cockpit`: a headless command, or one that describes
/// cockpit itself.
#[derive(Debug, clap::Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Headless(Command),
    /// Print a shell completion script: `cockpit completions bash > /etc/bash_completion.d/cockpit`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `cockpit man > cockpit.1`.
    Man,
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
    // Colour only where a person reads it: a backtrace piped to a file or
    // a CI log stays plain.
    let theme = if std::io::stderr().is_terminal() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    if let Err(report) = color_eyre::config::HookBuilder::default().theme(theme).install() {
        eprintln!("cockpit: {report}");
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(report) => {
            match report.downcast_ref::<UserError>() {
                Some(problem) => eprintln!("cockpit: {problem}"),
                None => eprintln!("cockpit: {report:?}"),
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<i32> {
    // Describing cockpit needs no config and no backend.
    match &cli.command {
        Some(TopCommand::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "cockpit", &mut std::io::stdout());
            return Ok(0);
        }
        Some(TopCommand::Man) => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            page.render(&mut std::io::stdout()).wrap_err("cannot write the man page")?;
            return Ok(0);
        }
        _ => {}
    }
    if let Some(path) = cli.log_file.clone().or_else(cockpit::logging::default_path) {
        if let Err(problem) = cockpit::logging::init(&path) {
            eprintln!("cockpit: {problem}; running without a log file");
        }
    }
    let (config, config_path) = Config::discover(cli.config.as_deref()).map_err(user_error)?;
    let theme = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        Theme::monochrome()
    } else {
        let name = cli.theme.as_deref().or(config.theme.as_deref()).unwrap_or("dark");
        Theme::load(name).map_err(user_error)?
    };
    let keymap = Keymap::with_overrides(&config.keys).map_err(user_error)?;
    let mut settings = Settings::new(config);
    // Build contexts are relative to the config file's directory.
    if let Some(dir) = config_path.as_deref().and_then(|p| p.parent()).filter(|p| !p.as_os_str().is_empty()) {
        settings.base_dir = dir.to_owned();
    }
    settings.keymap = keymap;
    settings.demo = cli.demo;
    settings.team_screen = cli.team_screen;
    settings.read_only |= cli.read_only;
    settings.audit_log = cli.audit_log;
    settings.context = cli.context;
    settings.namespace = cli.namespace;
    settings.sim.seed = cli.seed.unwrap_or(settings.sim.seed);
    settings.sim.scenario = cli.scenario.unwrap_or(settings.sim.scenario);
    settings.sim.log_rate = cli.log_rate.unwrap_or(settings.sim.log_rate);
    settings.speed = cli.speed.unwrap_or(settings.speed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let command = match cli.command {
        Some(TopCommand::Headless(command)) => Some(command),
        _ => None,
    };
    let result = runtime.block_on(async move {
        let composed = Runtime::compose(settings).map_err(user_error)?;
        match command {
            Some(command) => Ok(headless::run(composed, command).await),
            None => app::run_in_terminal(composed, &theme).await.map(Exit::code),
        }
    });
    // Background tasks (a blocked stdin read among them) must not keep the
    // process alive after the terminal is restored.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}
