//! Prometheus as a metrics source: each service's SLO (error budget, burn
//! rates, alert status, error history) and its canary analysis, measured
//! from real series and reported as `SourceEvent::Slo` and
//! `SourceEvent::Analysis`.
//!
//! `Source` measures; `run` is its task, which refreshes every `refresh`
//! with at most one batch in flight and reports the connection's state.
//! The maths is the domain's (`slo::evaluate`, `canary::analyse`): this
//! module only turns PromQL answers into its inputs.
//!
//! - `client`: the HTTP API and its errors;
//! - `queries`: the PromQL of a service, from config or the conventions;
//! - `facts`: the latest gate facts per service, shared with policy.

mod client;
mod facts;
mod queries;

pub use client::{Client, Point, PromError};
pub use facts::{GatedByMetrics, MetricsFacts, ServiceFacts};
pub use queries::{DEFAULT_BUCKETS, DEFAULT_GOOD, DEFAULT_TOTAL, Queries, track_regex};

use crate::clock::Clock;
use crate::config::{CanaryConfig, PrometheusConfig, ServiceConfig};
use crate::domain::canary::{CanaryThresholds, TrackMetrics, analyse_after};
use crate::domain::logs::Track;
use crate::domain::slo::{SloReport, SloSpec, evaluate};
use crate::domain::time::{HOUR, MINUTE};
use crate::domain::{Millis, Stage, Timestamp};
use crate::event::{ConnectionState, SourceEvent};
use crate::state::Msg;
use futures::future::try_join_all;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// The name this source reports its connection under.
pub const SOURCE: &str = "prometheus";
/// How far back the error chart looks, and its resolution.
pub const HISTORY_SPAN: Millis = Millis(6 * HOUR.0);
pub const HISTORY_STEP: Millis = MINUTE;
/// The rate window of each point of the error chart.
pub const HISTORY_RATE_WINDOW: Millis = Millis(5 * MINUTE.0);

/// One service as this source measures it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub stage: Stage,
    pub spec: SloSpec,
    pub thresholds: CanaryThresholds,
    pub queries: Queries,
}

impl Target {
    /// A service without `[service.slo]` gets the default objective and the
    /// default metric conventions.
    pub fn from_config(service: &ServiceConfig, canary: &CanaryConfig) -> Target {
        Target {
            name: service.name.clone(),
            stage: service.stage,
            spec: service.slo.as_ref().map(|s| s.spec()).unwrap_or_default(),
            thresholds: service.canary.resolve(canary).thresholds(),
            queries: Queries::for_service(service),
        }
    }
}

/// What one refresh measured for one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub report: SloReport,
    /// Primary and canary, for stages that ship canaries.
    pub analysis: Option<(TrackMetrics, TrackMetrics)>,
}

pub struct Source {
    client: Client,
    targets: Vec<Target>,
    refresh: Millis,
    analysis_interval: Millis,
    facts: MetricsFacts,
}

impl Source {
    pub fn new(
        config: &PrometheusConfig,
        services: &[ServiceConfig],
        canary: &CanaryConfig,
    ) -> Result<Source, PromError> {
        // A request may take as long as a refresh, within reason: a 30-day
        // rate over many series is slow, a hung server must not hang us.
        let timeout = Duration::from_millis(config.refresh.0.clamp(5_000, 30_000) as u64);
        Ok(Source {
            client: Client::new(&config.url, timeout)?,
            targets: services.iter().map(|s| Target::from_config(s, canary)).collect(),
            refresh: config.refresh,
            analysis_interval: config.analysis_interval,
            facts: MetricsFacts::new(),
        })
    }

    /// The shared gate facts this source keeps up to date.
    pub fn facts(&self) -> MetricsFacts {
        self.facts.clone()
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Measures every service at `now`. A service whose queries Prometheus
    /// refuses gets a `MetricsError` and the others go on; an unreachable
    /// Prometheus fails the whole batch, so that nothing half-measured is sent.
    pub async fn refresh(&self, now: Timestamp) -> Result<Vec<SourceEvent>, PromError> {
        let mut events = Vec::new();
        for target in &self.targets {
            let service = target.name.clone();
            match self.measure(target, now).await {
                Ok(Measurement { report, analysis }) => {
                    let previous = self.facts.get(&service).and_then(|f| f.verdict);
                    let verdict = analysis
                        .as_ref()
                        .map(|(primary, canary)| analyse_after(previous.as_ref(), canary, primary, &target.thresholds));
                    self.facts.record(&service, ServiceFacts { slo_status: Some(report.status), verdict, at: now });
                    events.push(SourceEvent::Slo { service: service.clone(), report });
                    if let Some((primary, canary)) = analysis {
                        events.push(SourceEvent::Analysis { service, primary, canary });
                    }
                }
                Err(PromError::Query { error_type, message }) => {
                    events.push(SourceEvent::MetricsError { service, message: format!("{message} ({error_type})") });
                }
                Err(unreachable) => return Err(unreachable),
            }
        }
        Ok(events)
    }

    /// The SLO and, where the stage ships canaries, the canary analysis of
    /// one service at `now`.
    pub async fn measure(&self, target: &Target, now: Timestamp) -> Result<Measurement, PromError> {
        let analysis = async {
            if !target.stage.uses_canary() {
                return Ok(None);
            }
            let (primary, canary) =
                futures::try_join!(self.track(target, Track::Primary, now), self.track(target, Track::Canary, now))?;
            Ok(Some((primary, canary)))
        };
        let (report, analysis) = futures::try_join!(self.slo(target, now), analysis)?;
        Ok(Measurement { report, analysis })
    }

    async fn slo(&self, target: &Target, now: Timestamp) -> Result<SloReport, PromError> {
        let spec = target.spec;
        let mut windows = spec.windows();
        if !windows.contains(&spec.window) {
            windows.push(spec.window);
        }
        let ratios = try_join_all(windows.iter().map(|&w| self.error_ratio(target, w, now)));
        let (ratios, history) = futures::try_join!(ratios, self.history(target, now))?;
        let by_window: HashMap<Millis, f64> = windows.into_iter().zip(ratios).collect();
        let whole = by_window.get(&spec.window).copied().unwrap_or(0.0);
        Ok(evaluate(spec, whole, |w| by_window.get(&w).copied(), history))
    }

    /// Share of failed events over `window` ending at `now`, both tracks.
    async fn error_ratio(&self, target: &Target, window: Millis, now: Timestamp) -> Result<f64, PromError> {
        let q = &target.queries;
        let (good, total) = futures::try_join!(
            self.value("good", q.good(None, window), now),
            self.value("total", q.total(None, window), now)
        )?;
        Ok(error_ratio(good, total))
    }

    /// The error ratio of each minute of the last `HISTORY_SPAN`, oldest first.
    async fn history(&self, target: &Target, now: Timestamp) -> Result<Vec<f64>, PromError> {
        let q = &target.queries;
        let steps = (HISTORY_SPAN.0 / HISTORY_STEP.0) as usize;
        let end = Timestamp(now.0.div_euclid(1000) * 1000);
        let start = end.plus(Millis(-(HISTORY_SPAN.0 - HISTORY_STEP.0)));
        let range = |role: &'static str, query: String| async move {
            let series = self.client.range(&query, start, end, HISTORY_STEP).await.map_err(|e| in_query(role, e))?;
            Ok::<_, PromError>(per_step(&series, start, HISTORY_STEP, steps))
        };
        let (good, total) = futures::try_join!(
            range("good", q.good(None, HISTORY_RATE_WINDOW)),
            range("total", q.total(None, HISTORY_RATE_WINDOW))
        )?;
        Ok(good.iter().zip(&total).map(|(&g, &t)| error_ratio(g, t)).collect())
    }

    /// One track over the analysis interval.
    async fn track(&self, target: &Target, track: Track, now: Timestamp) -> Result<TrackMetrics, PromError> {
        let q = &target.queries;
        let window = self.analysis_interval;
        let (good, total, p99) = futures::try_join!(
            self.value("good", q.good(Some(track), window), now),
            self.value("total", q.total(Some(track), window), now),
            self.value("latency", q.p99(Some(track), window), now),
        )?;
        Ok(TrackMetrics {
            // A rate times its range is exactly Prometheus's `increase`.
            requests: total * window.as_secs_f64(),
            success_pct: if total > 0.0 { 100.0 * (good / total).clamp(0.0, 1.0) } else { 100.0 },
            p99_ms: p99 * 1000.0,
        })
    }

    /// The sum of every series an instant query returns; series without a
    /// number (NaN: no traffic) count as 0.
    async fn value(&self, role: &'static str, query: String, now: Timestamp) -> Result<f64, PromError> {
        let values = self.client.instant(&query, now).await.map_err(|e| in_query(role, e))?;
        Ok(values.into_iter().filter(|v| v.is_finite()).sum())
    }
}

/// Names the query a refusal is about: "total query: parse error …".
fn in_query(role: &str, error: PromError) -> PromError {
    match error {
        PromError::Query { error_type, message } => {
            PromError::Query { error_type, message: format!("{role} query: {message}") }
        }
        unreachable => unreachable,
    }
}

/// `1 - good/total`; no traffic is no errors.
fn error_ratio(good: f64, total: f64) -> f64 {
    if total > 0.0 && good.is_finite() && total.is_finite() { (1.0 - good / total).clamp(0.0, 1.0) } else { 0.0 }
}

/// Range query series summed per step: `steps` values from `start`.
fn per_step(series: &[Vec<Point>], start: Timestamp, step: Millis, steps: usize) -> Vec<f64> {
    let mut sums = vec![0.0; steps];
    for point in series.iter().flatten() {
        let offset = point.at.since(start).0;
        if offset < 0 || !point.value.is_finite() {
            continue;
        }
        let index = ((offset as f64) / step.0 as f64).round() as usize;
        if let Some(sum) = sums.get_mut(index) {
            *sum += point.value;
        }
    }
    sums
}

/// The source task: refreshes every `refresh` of clock time, one batch at a
/// time, and sends what it measured. While Prometheus is unreachable it
/// reports `Disconnected` once (again if the reason changes) and sends no
/// metrics, so the screen keeps the last ones; `Live` again on recovery.
/// Ends when the receiver is gone.
pub async fn run(source: Source, clock: Clock, events: mpsc::Sender<Msg>) {
    let send = |event: SourceEvent| events.send(Msg::Source(event));
    let connection = |state: ConnectionState| SourceEvent::Connection { source: SOURCE.into(), state };
    if send(connection(ConnectionState::Connecting)).await.is_err() {
        return;
    }
    let mut ticker = tokio::time::interval(clock.real(source.refresh));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut live = false;
    let mut down: Option<(Timestamp, String)> = None;
    loop {
        ticker.tick().await;
        let now = clock.now();
        match source.refresh(now).await {
            Ok(batch) => {
                if !live {
                    live = true;
                    down = None;
                    if send(connection(ConnectionState::Live)).await.is_err() {
                        return;
                    }
                }
                for event in batch {
                    if send(event).await.is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                live = false;
                let reason = error.to_string();
                let since = down.as_ref().map_or(now, |(since, _)| *since);
                if down.as_ref().map(|(_, r)| r) != Some(&reason) {
                    let state = ConnectionState::Disconnected { since, reason: reason.clone() };
                    if send(connection(state)).await.is_err() {
                        return;
                    }
                }
                down = Some((since, reason));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_traffic_is_no_errors() {
        assert_eq!(error_ratio(0.0, 0.0), 0.0);
        assert_eq!(error_ratio(f64::NAN, 0.0), 0.0);
        assert!((error_ratio(99.0, 100.0) - 0.01).abs() < 1e-12);
        assert_eq!(error_ratio(101.0, 100.0), 0.0, "extrapolation noise is not negative errors");
    }

    #[test]
    fn range_series_are_summed_per_step() {
        let start = Timestamp(1_000_000);
        let at = |i: i64, value: f64| Point { at: start.plus(Millis(i * 60_000)), value };
        let series = vec![vec![at(0, 1.0), at(1, 2.0), at(5, 9.0)], vec![at(1, 3.0), at(2, f64::NAN)]];
        assert_eq!(per_step(&series, start, MINUTE, 3), vec![1.0, 5.0, 0.0]);
    }
}
