//! `cockpit.toml`: the whole schema, its defaults, where it is found, and
//! errors that name file, line and column.
//!
//! Every section later backends need is here already (kubernetes,
//! prometheus, docker, per-service build and dev containers), so adding a
//! backend adds behaviour, not shape. Unknown keys are errors: a typo must
//! not silently fall back to a default during an incident.

use crate::domain::canary::{CanaryPlan, CanaryThresholds};
use crate::domain::slo::{LONGEST_RULE_WINDOW, SloSpec};
use crate::domain::time::Millis;
use crate::domain::{Stage, time::SECOND};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Shown in the header and the team screen.
    #[serde(default)]
    pub team: Option<String>,
    /// A theme name from `themes/` or a path to a theme file.
    #[serde(default)]
    pub theme: Option<String>,
    /// Start read-only, as `--read-only` does.
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub logs: LogsConfig,
    /// Key overrides: `"ctrl-p" = "promote"`.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub kubernetes: Option<KubernetesConfig>,
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
    #[serde(default)]
    pub docker: Option<DockerConfig>,
    /// Defaults for every service's canary plan and analysis.
    #[serde(default)]
    pub canary: CanaryConfig,
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Lines kept per service; the oldest are dropped first.
    pub buffer_lines: usize,
    /// Longer lines are cut with a marker.
    pub max_line_bytes: usize,
    /// Lines fetched per pod when a stream opens.
    pub tail_lines: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig { buffer_lines: 10_000, max_line_bytes: crate::domain::logs::DEFAULT_MAX_LINE, tail_lines: 100 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    pub seed: u64,
    pub scenario: Scenario,
    /// Log lines per second per pod.
    pub log_rate: f64,
    /// Simulated seconds per real second.
    pub speed: f64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { seed: 7, scenario: Scenario::Calm, log_rate: 1.0, speed: 1.0 }
    }
}

/// What the simulated fleet is going through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Everything healthy; a production canary in flight.
    #[default]
    Calm,
    /// A mission-critical canary whose error rate climbs.
    BadCanary,
    /// A downstream dependency fails and drags its callers with it.
    DependencyFailure,
}

impl Scenario {
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Calm => "calm",
            Scenario::BadCanary => "bad-canary",
            Scenario::DependencyFailure => "dependency-failure",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Default: the kubeconfig's current context.
    pub context: Option<String>,
    /// Default: the context's namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    #[serde(default = "default_refresh")]
    pub refresh: Millis,
    /// Interval the canary analysis looks back over.
    #[serde(default = "default_analysis_interval")]
    pub analysis_interval: Millis,
}

fn default_refresh() -> Millis {
    Millis(15 * SECOND.0)
}

fn default_analysis_interval() -> Millis {
    Millis(300 * SECOND.0)
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// Default: `DOCKER_HOST`, else the local socket.
    pub host: Option<String>,
    /// Registry to push rebuilt images to; none: images stay local.
    pub registry: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    pub steps: CanaryPlan,
    pub min_success: f64,
    pub max_p99_ms: f64,
    pub max_degradation: f64,
    pub min_requests: f64,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        let t = CanaryThresholds::default();
        CanaryConfig {
            steps: CanaryPlan::default(),
            min_success: t.min_success,
            max_p99_ms: t.max_p99_ms,
            max_degradation: t.max_degradation,
            min_requests: t.min_requests,
        }
    }
}

impl CanaryConfig {
    pub fn thresholds(&self) -> CanaryThresholds {
        CanaryThresholds {
            min_success: self.min_success,
            max_p99_ms: self.max_p99_ms,
            max_degradation: self.max_degradation,
            min_requests: self.min_requests,
        }
    }
}

/// Per-service canary settings; anything left out comes from `[canary]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCanary {
    pub steps: Option<CanaryPlan>,
    pub min_success: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub max_degradation: Option<f64>,
    pub min_requests: Option<f64>,
}

impl ServiceCanary {
    pub fn resolve(&self, defaults: &CanaryConfig) -> CanaryConfig {
        CanaryConfig {
            steps: self.steps.clone().unwrap_or_else(|| defaults.steps.clone()),
            min_success: self.min_success.unwrap_or(defaults.min_success),
            max_p99_ms: self.max_p99_ms.unwrap_or(defaults.max_p99_ms),
            max_degradation: self.max_degradation.unwrap_or(defaults.max_degradation),
            min_requests: self.min_requests.unwrap_or(defaults.min_requests),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub stage: Stage,
    #[serde(default)]
    pub owner: Option<String>,
    /// Services this one calls; when one pages, this one is marked impacted.
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub kubernetes: ServiceKubernetes,
    #[serde(default)]
    pub canary: ServiceCanary,
    #[serde(default)]
    pub slo: Option<SloConfig>,
    #[serde(default)]
    pub build: Option<BuildConfig>,
    #[serde(default)]
    pub dev: Option<DevConfig>,
}

/// Where a service lives in the cluster; every field defaults from the name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKubernetes {
    pub namespace: Option<String>,
    /// The primary Deployment; default: the service name.
    pub deployment: Option<String>,
    /// The canary Deployment; default: `<name>-canary`.
    pub canary: Option<String>,
    /// Default: the first container.
    pub container: Option<String>,
    /// The HTTPRoute holding the split; none: a replica-ratio canary.
    pub route: Option<String>,
    pub primary_backend: Option<String>,
    pub canary_backend: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    #[serde(default = "default_objective")]
    pub objective: f64,
    /// At least the longest alert window (`LONGEST_RULE_WINDOW`, 3 d);
    /// refused where it is written otherwise.
    #[serde(default = "default_window", deserialize_with = "slo_window")]
    pub window: Millis,
    /// PromQL for good events; `{{service}}`, `{{track}}` and `{{window}}`
    /// are filled in. Default: `http_requests_total` without 5xx codes.
    pub good: Option<String>,
    /// PromQL for all events. Default: `http_requests_total`.
    pub total: Option<String>,
    pub latency: Option<LatencySli>,
}

fn default_objective() -> f64 {
    99.9
}

fn default_window() -> Millis {
    SloSpec::default().window
}

/// An SLO window no shorter than the longest alert window: a shorter one
/// would have the rules judge more time than the objective spans, and
/// derive thresholds below a burn of 1 (a 1-hour window pages at 0.02).
/// Checked while parsing, so the error names the value's line and column.
fn slo_window<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
    let window = Millis::deserialize(deserializer)?;
    if window < LONGEST_RULE_WINDOW {
        let page = SloSpec { window, ..SloSpec::default() }.rules()[0].threshold;
        return Err(serde::de::Error::custom(format!(
            "slo.window `{window}` is shorter than the longest alert window ({LONGEST_RULE_WINDOW}): the alert \
             rules would judge more time than the objective spans and page at a burn rate of {}; use a window \
             of at least {LONGEST_RULE_WINDOW} (30d is usual)",
            format!("{page:.4}").trim_end_matches('0').trim_end_matches('.')
        )));
    }
    Ok(window)
}

impl SloConfig {
    pub fn spec(&self) -> SloSpec {
        SloSpec { objective: self.objective, window: self.window }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySli {
    pub quantile: f64,
    pub threshold_ms: f64,
    /// Histogram buckets selector. Default: `http_request_duration_seconds_bucket`.
    pub buckets: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub context: PathBuf,
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    pub image: String,
}

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Default: the image from `[service.build]`.
    pub image: Option<String>,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `"8080:8080"` host:container.
    #[serde(default)]
    pub ports: Vec<String>,
}

/// A config file that could not be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses a config, naming `path` in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            ConfigError { path: path.to_owned(), line, column, message: e.message().trim().to_owned() }
        })?;
        config.validate().map_err(|message| ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message,
        })?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// `--config`, else `./cockpit.toml`, else the user config dir; none
    /// found is the default config.
    pub fn discover(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        if let Some(path) = explicit {
            return Ok((Config::load(path)?, Some(path.to_owned())));
        }
        let candidates =
            [Some(PathBuf::from("cockpit.toml")), dirs::config_dir().map(|d| d.join("cockpit").join("cockpit.toml"))];
        for path in candidates.into_iter().flatten() {
            if path.is_file() {
                return Ok((Config::load(&path)?, Some(path)));
            }
        }
        Ok((Config::default(), None))
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for service in &self.services {
            if !seen.insert(service.name.as_str()) {
                return Err(format!("service `{}` is defined twice", service.name));
            }
        }
        for service in &self.services {
            for dep in &service.depends_on {
                if !seen.contains(dep.as_str()) {
                    return Err(format!(
                        "service `{}` depends on `{dep}`, which is not a [[service]] in this file",
                        service.name
                    ));
                }
            }
            if let Some(slo) = &service.slo {
                if !(0.0..100.0).contains(&slo.objective) || slo.objective <= 0.0 {
                    return Err(format!(
                        "service `{}`: slo.objective must be a percentage between 0 and 100, got {}",
                        service.name, slo.objective
                    ));
                }
            }
        }
        if self.logs.buffer_lines == 0 {
            return Err("logs.buffer_lines must be at least 1".into());
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("cockpit.toml"))
    }

    #[test]
    fn the_shipped_example_loads() {
        let text = include_str!("../assets/cockpit.example.toml");
        let config = parse(text).unwrap();
        assert!(config.services.iter().any(|s| s.stage == Stage::MissionCritical));
        assert!(config.prometheus.is_some());
    }

    #[test]
    fn a_syntax_error_names_line_and_column() {
        let err = parse("team = \"shop\"\n[logs]\nbuffer_lines = = 3\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(16)), "{err}");
        assert!(err.to_string().starts_with("cockpit.toml:3:16: "), "{err}");
    }

    #[test]
    fn an_unknown_key_is_named() {
        let err = parse("[[service]]\nname = \"a\"\nstage = \"production\"\nstgae = 1\n").unwrap_err();
        assert!(err.message.contains("unknown field `stgae`"), "{err}");
        assert_eq!(err.line, Some(4));
    }

    #[test]
    fn a_misspelled_stage_lists_the_valid_ones() {
        let err = parse("[[service]]\nname = \"a\"\nstage = \"prod\"\n").unwrap_err();
        assert!(err.message.contains("mission-critical"), "{err}");
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn bad_values_are_refused_with_reasons() {
        let err = parse("[canary]\nsteps = [50, 25]\n").unwrap_err();
        assert!(err.message.contains("ascending"), "{err}");
        let err = parse("[prometheus]\nurl = \"http://x\"\nrefresh = \"15\"\n").unwrap_err();
        assert!(err.message.contains("no unit"), "{err}");
        let err = parse("[[service]]\nname = \"a\"\nstage = \"production\"\ndepends_on = [\"b\"]\n").unwrap_err();
        assert!(err.message.contains("depends on `b`"), "{err}");
    }

    #[test]
    fn an_slo_window_shorter_than_the_alert_windows_is_refused_where_it_is_written() {
        let text = "[[service]]\nname = \"a\"\nstage = \"production\"\n[service.slo]\nwindow = \"1h\"\n";
        let err = parse(text).unwrap_err();
        assert_eq!((err.line, err.column), (Some(5), Some(10)), "{err}");
        assert!(err.to_string().starts_with("cockpit.toml:5:10: "), "{err}");
        assert!(err.message.contains("slo.window `1h` is shorter than the longest alert window (3d)"), "{err}");
        assert!(err.message.contains("burn rate of 0.02"), "{err}");
        // The longest alert window itself and anything longer are fine.
        for window in ["3d", "7d", "30d"] {
            let config = parse(&text.replace("1h", window)).unwrap();
            assert_eq!(config.services[0].slo.as_ref().unwrap().window.to_string(), window);
        }
        assert!(parse(&text.replace("1h", "71h")).is_err());
    }

    #[test]
    fn service_canary_settings_fall_back_to_the_defaults() {
        let config = parse("[canary]\nmin_success = 98.0\n[[service]]\nname = \"a\"\nstage = \"production\"\n[service.canary]\nsteps = [10, 50]\n").unwrap();
        let resolved = config.services[0].canary.resolve(&config.canary);
        assert_eq!(resolved.steps.steps(), &[10, 50]);
        assert_eq!(resolved.min_success, 98.0);
        assert_eq!(resolved.max_p99_ms, 300.0);
    }
}
