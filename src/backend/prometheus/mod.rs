//! Prometheus as a metrics source: each service's SLO (error budget, burn
//! rates, alert status, error history) and its canary analysis, measured
//! from real series and reported as `SourceEvent::Slo` and
//! `SourceEvent::Analysis`.
//!
//! `Source` measures; `run` is its task, which refreshes every `refresh`
//! with at most one batch in flight and reports the connection's state.
//! The maths is the domain's (`slo::evaluate_covered`, `canary::analyse`):
//! this module only turns PromQL answers into its inputs, including how much
//! time the data covers, so that three minutes of history are never read
//! as thirty days and no series is never read as health.
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
use crate::domain::canary::{CanaryThresholds, TrackMetrics, Verdict, analyse_after};
use crate::domain::logs::Track;
use crate::domain::slo::{SloReport, SloSpec, evaluate_covered};
use crate::domain::time::{HOUR, MINUTE, SECOND};
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
/// Beyond the chart's span, coverage is measured at a step that gives at
/// most this many points over the SLO window (1 h for 30 days).
pub const COVERAGE_POINTS: i64 = 720;

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
                    let verdict = analysis.as_ref().map(|(primary, canary)| {
                        // Whatever `min_requests` says, no request is no success rate.
                        if canary.success_pct.is_nan() {
                            Verdict::NotEnoughData(format!(
                                "no canary requests in {}: no success rate",
                                self.analysis_interval
                            ))
                        } else {
                            analyse_after(previous.as_ref(), canary, primary, &target.thresholds)
                        }
                    });
                    // No data, or too little to judge any alert rule, is no
                    // SLO status: the gate stays shut.
                    let slo_status = report.is_judged().then_some(report.status);
                    self.facts.record(&service, ServiceFacts { slo_status, verdict, at: now });
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
        let (ratios, history, earlier) =
            futures::try_join!(ratios, self.history(target, now), self.earliest(target, now))?;
        let coverage = coverage(now, spec.window, history.first, history.start, earlier);
        let by_window: HashMap<Millis, f64> = windows.into_iter().zip(ratios).collect();
        // The SLI and budget are those of the time the data covers; when
        // that is less than the window, ask for exactly that time, so that
        // data from before a gap does not count.
        let covered = match by_window.get(&spec.window) {
            Some(&whole) if coverage >= spec.window => whole,
            _ if coverage > Millis(0) => {
                let span = Millis((coverage.0 / SECOND.0).max(1) * SECOND.0);
                self.error_ratio(target, span, now).await?
            }
            _ => 0.0,
        };
        let mut report = evaluate_covered(spec, coverage, covered, |w| by_window.get(&w).copied(), history.ratios);
        report.query = Some(target.queries.total(None, HISTORY_RATE_WINDOW));
        Ok(report)
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

    /// The error ratio of each minute of the last `HISTORY_SPAN`, oldest
    /// first, and where the newest unbroken run of minutes with data begins.
    async fn history(&self, target: &Target, now: Timestamp) -> Result<History, PromError> {
        let q = &target.queries;
        let steps = (HISTORY_SPAN.0 / HISTORY_STEP.0) as usize;
        let end = whole_second(now);
        let start = end.plus(Millis(-(HISTORY_SPAN.0 - HISTORY_STEP.0)));
        let range = |role: &'static str, query: String| async move {
            self.client.range(&query, start, end, HISTORY_STEP).await.map_err(|e| in_query(role, e))
        };
        let (good, total) = futures::try_join!(
            range("good", q.good(None, HISTORY_RATE_WINDOW)),
            range("total", q.total(None, HISTORY_RATE_WINDOW))
        )?;
        let (good_sums, total_sums) =
            (per_step(&good, start, HISTORY_STEP, steps), per_step(&total, start, HISTORY_STEP, steps));
        Ok(History {
            ratios: good_sums.iter().zip(&total_sums).map(|(&g, &t)| error_ratio(g, t)).collect(),
            first: run_start(&total, start, HISTORY_STEP, steps),
            start,
        })
    }

    /// Where the newest unbroken run of data begins over the whole SLO
    /// window, at a coarse step (`coverage_step`): the total query with the
    /// step as its range, one point per step. Every sample is read once, as
    /// the whole-window rate reads it.
    async fn earliest(&self, target: &Target, now: Timestamp) -> Result<Option<Timestamp>, PromError> {
        let window = target.spec.window;
        let step = coverage_step(window);
        let steps = window.0 / step.0 + 1;
        let end = whole_second(now);
        let start = end.plus(Millis(-(steps - 1) * step.0));
        let query = target.queries.total(None, step);
        let series = self.client.range(&query, start, end, step).await.map_err(|e| in_query("total", e))?;
        Ok(run_start(&series, start, step, steps as usize))
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
            // A rate over no requests is no rate: not a number, never 100 %.
            success_pct: if total > 0.0 && good.is_finite() {
                100.0 * (good / total).clamp(0.0, 1.0)
            } else {
                f64::NAN
            },
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

/// The chart's minutes and where its data begins.
struct History {
    ratios: Vec<f64>,
    /// The first step of the newest unbroken run of steps with data.
    first: Option<Timestamp>,
    /// The chart's first step.
    start: Timestamp,
}

fn whole_second(at: Timestamp) -> Timestamp {
    Timestamp(at.0.div_euclid(1000) * 1000)
}

/// The step of the coarse coverage query: at most `COVERAGE_POINTS` over
/// the window, whole minutes, and never below the chart's rate window.
fn coverage_step(window: Millis) -> Millis {
    let ceil = |n: i64, d: i64| (n + d - 1) / d;
    let minutes = ceil(ceil(window.0.max(0), COVERAGE_POINTS), MINUTE.0);
    Millis(minutes.max(HISTORY_RATE_WINDOW.0 / MINUTE.0) * MINUTE.0)
}

/// The first step of the newest unbroken run of steps at which any series
/// has a number; `None` when the newest step has none (no data now).
fn run_start(series: &[Vec<Point>], start: Timestamp, step: Millis, steps: usize) -> Option<Timestamp> {
    let mut present = vec![false; steps];
    for point in series.iter().flatten() {
        let offset = point.at.since(start).0;
        if offset < 0 || !point.value.is_finite() {
            continue;
        }
        if let Some(seen) = present.get_mut(((offset as f64) / step.0 as f64).round() as usize) {
            *seen = true;
        }
    }
    if !present.last().copied().unwrap_or(false) {
        return None;
    }
    let first = present.iter().rposition(|&p| !p).map_or(0, |gap| gap + 1);
    Some(start.plus(Millis(first as i64 * step.0)))
}

/// How much time the data covers at `now`, at most `window`: back to the
/// start of the newest unbroken run of data, from the chart's minutes
/// (`recent`, whose span begins at `recent_start`) and, when those have data
/// all the way back, from the coarse steps over the window (`earlier`).
///
/// A lower bound: a step with a value holds samples from before it, which
/// are not counted. Data at the newest step counts for at least a second,
/// however recent; none there is no data (zero), whatever came before.
fn coverage(
    now: Timestamp,
    window: Millis,
    recent: Option<Timestamp>,
    recent_start: Timestamp,
    earlier: Option<Timestamp>,
) -> Millis {
    let Some(recent) = recent else { return Millis(0) };
    let oldest = match earlier {
        Some(earlier) if recent <= recent_start => earlier.min(recent),
        _ => recent,
    };
    Millis(now.since(oldest).0.clamp(SECOND.0, window.0.max(SECOND.0)))
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
    fn coverage_is_the_newest_unbroken_run_of_data() {
        let start = Timestamp(1_000_000_000);
        let at = |i: i64, value: f64| Point { at: start.plus(Millis(i * 60_000)), value };
        // Steps 0..10; data at 2..=9, with 5 a NaN: the run is 6..=9.
        let series = vec![(2..10).map(|i| at(i, if i == 5 { f64::NAN } else { 1.0 })).collect::<Vec<_>>()];
        assert_eq!(run_start(&series, start, MINUTE, 10), Some(start.plus(Millis(6 * 60_000))));
        // Two series: either one having a number counts.
        let both = vec![vec![at(9, 0.0), at(5, 2.0)], (6..9).map(|i| at(i, 0.5)).collect()];
        assert_eq!(run_start(&both, start, MINUTE, 10), Some(start.plus(Millis(5 * 60_000))));
        // Nothing at the newest step is no data now, whatever came before.
        assert_eq!(run_start(&[vec![at(0, 1.0), at(8, 1.0)]], start, MINUTE, 10), None);
        assert_eq!(run_start(&[], start, MINUTE, 10), None);

        let window = Millis(30 * DAY_MS);
        let now = start.plus(Millis(9 * 60_000 + 5_000));
        // Three minutes of data in the chart: three minutes, however far
        // back the coarse steps claim (they cannot see the gap before).
        let three = Some(now.plus(Millis(-180_000)));
        assert_eq!(coverage(now, window, three, start, Some(start.plus(Millis(-DAY_MS)))), Millis(180_000));
        // Chart data all the way back: the coarse run decides, within the window.
        let two_days = Some(now.plus(Millis(-2 * DAY_MS)));
        assert_eq!(coverage(now, window, Some(start), start, two_days), Millis(2 * DAY_MS));
        let older = Some(now.plus(Millis(-90 * DAY_MS)));
        assert_eq!(coverage(now, window, Some(start), start, older), window);
        assert_eq!(coverage(now, window, Some(start), start, None), now.since(start));
        // None now: no coverage. Data only at the newest step: a second.
        assert_eq!(coverage(now, window, None, start, two_days), Millis(0));
        assert_eq!(coverage(now, window, Some(now), start, Some(now)), SECOND);
    }

    #[test]
    fn the_coarse_step_gives_at_most_720_points_in_whole_minutes() {
        assert_eq!(coverage_step(Millis(30 * DAY_MS)), HOUR);
        assert_eq!(coverage_step(Millis(7 * DAY_MS)), Millis(14 * 60_000));
        assert_eq!(coverage_step(Millis(3 * DAY_MS)), Millis(6 * 60_000));
        assert_eq!(coverage_step(Millis(DAY_MS)), Millis(5 * 60_000));
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn range_series_are_summed_per_step() {
        let start = Timestamp(1_000_000);
        let at = |i: i64, value: f64| Point { at: start.plus(Millis(i * 60_000)), value };
        let series = vec![vec![at(0, 1.0), at(1, 2.0), at(5, 9.0)], vec![at(1, 3.0), at(2, f64::NAN)]];
        assert_eq!(per_step(&series, start, MINUTE, 3), vec![1.0, 5.0, 0.0]);
    }
}
