//! The simulated fleet as one deterministic world: services with primary
//! and canary workloads, traffic and errors that follow versions and
//! dependencies, 30 days of SLI history, builds, logs and a change history.
//!
//! It is advanced explicitly (`advance_to`) by whoever owns the clock, so a
//! test can drive it step by step and get the same events for the same seed.

use super::catalog::{self, FLEET, PEOPLE, Spec};
use super::loggen::{self, LineContext};
use super::rng::Rng;
use super::series::{MinuteSeries, ratio};
use super::workload::Workload;
use crate::backend::{ActionContext, BackendError, Change, Facts, Plan, Snapshot};
use crate::config::Scenario;
use crate::domain::canary::{CanaryPlan, CanaryThresholds, TrackMetrics, Verdict, analyse_after};
use crate::domain::logs::{LogLine, Track};
use crate::domain::rollout::{Revision, RolloutStatus};
use crate::domain::slo::{self, SloReport, SloSpec};
use crate::domain::time::{DAY, MINUTE, Millis, SECOND};
use crate::domain::{RolloutPhase, Timestamp};
use crate::event::{BackendInfo, BuildStatus, ChangeRecord, ConnectionState, ServiceInfo, SourceEvent, Traffic};
use std::sync::Arc;

/// Finest simulation step.
pub const STEP: Millis = Millis(250);
/// How often SLO reports and canary analyses are published.
const METRICS_EVERY: Millis = Millis(2 * SECOND.0);
/// Minutes of error ratio in the SLO chart.
const CHART_MINUTES: usize = 360;
/// Interval the canary analysis looks back over.
const ANALYSIS_WINDOW: Millis = Millis(5 * MINUTE.0);

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub scenario: Scenario,
    /// Log lines per second per ready pod.
    pub log_rate: f64,
    pub max_line: usize,
    pub start: Timestamp,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            seed: 7,
            scenario: Scenario::Calm,
            log_rate: 1.0,
            max_line: crate::domain::logs::DEFAULT_MAX_LINE,
            // 2026-11-26 12:00 UTC: a fixed start keeps screens reproducible.
            start: Timestamp(1_795_694_400_000),
        }
    }
}

/// An image that misbehaves from some time on.
#[derive(Debug, Clone)]
struct BadImage {
    image: String,
    /// Minutes relative to the simulation start.
    since: f64,
    behaviour: Badness,
}

#[derive(Debug, Clone, Copy)]
enum Badness {
    /// Errors climb from 8 % by 0.4 points a minute, up to 16 %.
    Climbing,
    Fixed(f64),
}

#[derive(Debug, Clone)]
struct Build {
    started: Timestamp,
    step: usize,
    next_step_at: Timestamp,
    tag: String,
    output: Vec<String>,
    finished: Option<Timestamp>,
}

const BUILD_STEPS: [&str; 7] = [
    "FROM rust:1.85-slim AS build",
    "COPY Cargo.toml Cargo.lock ./",
    "RUN cargo fetch --locked",
    "COPY src ./src",
    "RUN cargo build --release --locked",
    "FROM gcr.io/distroless/cc-debian12",
    "COPY --from=build /app/target/release/server /server",
];

struct Service {
    spec: &'static Spec,
    info: ServiceInfo,
    primary: Workload,
    canary: Workload,
    weight: u8,
    /// A full promotion waits for the primary's rollout before it returns
    /// traffic and empties the canary.
    promoting: bool,
    slo: SloSpec,
    series: MinuteSeries,
    tracks: [MinuteSeries; 2],
    /// Current error ratio and p99 per track.
    error_now: [f64; 2],
    p99_now: [f64; 2],
    /// Share of requests the canary serves right now (0 without ready pods).
    current_weight_hint: f64,
    build: Option<Build>,
    latest_version: String,
    /// Bumped by every change cockpit makes (and by `touch`, standing for
    /// someone else's); part of the token, beside the values it covers.
    changes: u64,
    log_debt: f64,
    last_rollout: Option<RolloutStatus>,
    last_traffic: Option<Traffic>,
    last_build: Option<BuildStatus>,
    last_slo: Option<SloReport>,
    last_verdict: Option<Verdict>,
}

pub struct SimFleet {
    options: SimOptions,
    rng: Rng,
    now: Timestamp,
    services: Vec<Service>,
    /// Service indices with dependencies before dependants.
    order: Vec<usize>,
    bad_images: Vec<BadImage>,
    next_metrics: Timestamp,
    started: bool,
    changes: Vec<ChangeRecord>,
    logs: Vec<Vec<LogLine>>,
}

impl SimFleet {
    pub fn new(options: SimOptions) -> SimFleet {
        let mut rng = Rng::new(options.seed);
        let start = options.start;
        let services: Vec<Service> = FLEET.iter().map(|spec| Service::new(spec, start, &mut rng)).collect();
        let order = topological(&services);
        let mut fleet = SimFleet {
            rng,
            now: start,
            services,
            order,
            bad_images: Vec::new(),
            next_metrics: start,
            started: false,
            changes: Vec::new(),
            logs: vec![Vec::new(); FLEET.len()],
            options,
        };
        fleet.set_scene();
        fleet.fill_history();
        // A minute of backlog, as a log stream opened with a tail would show.
        for i in 0..fleet.services.len() {
            let failing = fleet.drag(i).1;
            fleet.write_logs(i, start, 60.0, failing);
        }
        fleet
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn backend_info(&self) -> BackendInfo {
        BackendInfo {
            kind: "sim".into(),
            context: format!("{}/seed-{}", catalog::TEAM, self.options.seed),
            simulated: true,
            scenario: Some(self.options.scenario.as_str().into()),
        }
    }

    pub fn team(&self) -> &'static str {
        catalog::TEAM
    }

    fn index(&self, name: &str) -> Result<usize, BackendError> {
        self.services
            .iter()
            .position(|s| s.spec.name == name)
            .ok_or_else(|| BackendError::NotFound(format!("service {name}")))
    }

    /// The scenario's starting point: canaries in flight, bad versions and
    /// the changes that led here.
    fn set_scene(&mut self) {
        let start = self.now;
        let ago = |minutes: i64| start.plus(Millis(-minutes * MINUTE.0));
        let mut history: Vec<(Timestamp, &str, &str, &str, String)> = vec![
            (ago(3 * 24 * 60 + 75), "catalog", "deploy", PEOPLE[2], "5.1.0 → 5.2.0".into()),
            (ago(26 * 60), "auth", "promote-full", PEOPLE[3], "7.2.0 → 7.3.0, canary emptied".into()),
            (ago(5 * 60 + 12), "web-frontend", "promote-full", PEOPLE[1], "3.12.0 → 3.12.1, canary emptied".into()),
        ];

        // Calm background: cart's canary is at 25 %, search-ui is rolling out.
        let cart = self.index("cart").unwrap_or(0);
        self.start_canary(cart, &catalog::image("cart", "2.8.0"), 25, ago(180));
        history.push((ago(180), "cart", "deploy", PEOPLE[1], "canary 2.8.0 at 5 %".into()));
        history.push((ago(120), "cart", "promote", PEOPLE[1], "canary 5 → 25 %".into()));
        if self.options.scenario == Scenario::Calm {
            // On a calm day someone is shipping a prototype; during an
            // incident, the change that caused it heads the timeline.
            let search = self.index("search-ui").unwrap_or(0);
            let image = catalog::image("search-ui", "0.9.1");
            self.services[search].latest_version = "0.9.1".into();
            self.services[search].primary.set_image(&image, start.plus(Millis(-1_000)), &mut self.rng);
            history.push((start.plus(Millis(-1_000)), "search-ui", "deploy", PEOPLE[2], "0.9.0 → 0.9.1".into()));
        }

        match self.options.scenario {
            Scenario::Calm => {}
            Scenario::BadCanary => {
                let checkout = self.index("checkout").unwrap_or(0);
                let image = catalog::image("checkout", "1.5.0");
                self.services[checkout].latest_version = "1.5.0".into();
                self.start_canary(checkout, &image, 25, ago(80));
                self.bad_images.push(BadImage { image, since: -80.0, behaviour: Badness::Climbing });
                history.push((ago(80), "checkout", "deploy", PEOPLE[0], "canary 1.5.0 at 5 %".into()));
                history.push((ago(70), "checkout", "promote", PEOPLE[0], "canary 5 → 25 %".into()));
            }
            Scenario::DependencyFailure => {
                let ledger = self.index("ledger").unwrap_or(0);
                let image = catalog::image("ledger", "2.3.0");
                self.bad_images.push(BadImage { image, since: -52.0, behaviour: Badness::Fixed(0.15) });
                // Its revision is as old as the failure.
                if let Some(rev) = self.services[ledger].primary.revisions.first_mut() {
                    rev.created = ago(52);
                }
                history.push((ago(52), "ledger", "deploy", PEOPLE[3], "2.2.0 → 2.3.0".into()));
            }
        }
        history.sort_by_key(|h| h.0);
        self.changes = history
            .into_iter()
            .map(|(at, service, action, user, summary)| ChangeRecord {
                at,
                service: service.into(),
                action: action.into(),
                user: user.into(),
                summary,
            })
            .collect();
    }

    fn start_canary(&mut self, i: usize, image: &str, weight: u8, at: Timestamp) {
        let s = &mut self.services[i];
        s.canary.set_image(image, at, &mut self.rng);
        s.canary.scale(canary_replicas(s.primary.desired, weight), at);
        // Pods that started long ago are ready now.
        for _ in 0..40 {
            s.canary.step(self.now.plus(Millis(-30_000)), &mut self.rng);
        }
        s.canary.step(self.now, &mut self.rng);
        s.weight = weight;
    }

    /// The canary weight a scene had at `minutes` relative to the start.
    fn weight_at(&self, i: usize, minutes: f64) -> f64 {
        let name = self.services[i].spec.name;
        let ramp = |deployed: f64, promoted: f64| {
            if minutes < deployed {
                0.0
            } else if minutes < promoted {
                0.05
            } else {
                0.25
            }
        };
        match (name, self.options.scenario) {
            ("cart", _) => ramp(-180.0, -120.0),
            ("checkout", Scenario::BadCanary) => ramp(-80.0, -70.0),
            _ => 0.0,
        }
    }

    /// Error ratio and p99 of an image at `minutes` relative to the start.
    fn quality(&self, spec: &Spec, image: &str, minutes: f64) -> (f64, f64) {
        for bad in &self.bad_images {
            if bad.image == image && minutes >= bad.since {
                return match bad.behaviour {
                    Badness::Climbing => {
                        let e = (0.08 + minutes.max(0.0) * 0.004).min(0.16);
                        (e, spec.p99_ms * (1.3 + e * 4.0))
                    }
                    Badness::Fixed(e) => (e, spec.p99_ms * 3.0),
                };
            }
        }
        (spec.base_error, spec.p99_ms)
    }

    /// Extra errors from the worst failing dependency, and its name.
    fn drag(&self, i: usize) -> (f64, Option<&'static str>) {
        let mut worst = (0.0, None);
        for dep in self.services[i].spec.depends_on {
            if let Ok(d) = self.index(dep) {
                let e = self.services[d].blended_error();
                if e > 0.01 && e * 0.5 > worst.0 {
                    worst = (e * 0.5, Some(self.services[d].spec.name));
                }
            }
        }
        worst
    }

    /// 30 days of minute buckets, with a few old incidents and the
    /// scenario's recent past, so budgets and burn rates mean something from
    /// the first frame.
    fn fill_history(&mut self) {
        let minutes = SloSpec::default().window.0 / MINUTE.0;
        let mut incidents: Vec<Vec<(i64, i64, f64)>> = Vec::new();
        for _ in 0..self.services.len() {
            let count = self.rng.below(3);
            let list = (0..count)
                .map(|_| {
                    let at = -(self.rng.range(3.0 * 1440.0, minutes as f64 - 60.0) as i64);
                    let len = self.rng.range(10.0, 45.0) as i64;
                    (at, at + len, self.rng.range(0.004, 0.03))
                })
                .collect();
            incidents.push(list);
        }
        let order = self.order.clone();
        for m in -minutes..0 {
            let at = self.now.plus(Millis(m * MINUTE.0));
            let season = seasonal(at);
            for &i in &order {
                let spec = self.services[i].spec;
                let w = self.weight_at(i, m as f64);
                let (drag, _) = self.drag(i);
                let requests = spec.rps * 60.0 * season * self.rng.jitter(0.1);
                let primary_image = self.services[i].primary.image.clone();
                let canary_image = self.services[i].canary.image.clone();
                let (mut pe, pp) = self.quality(spec, &primary_image, m as f64);
                let (ce, cp) = self.quality(spec, &canary_image, m as f64);
                for (from, to, e) in &incidents[i] {
                    if (*from..*to).contains(&m) {
                        pe = pe.max(*e);
                    }
                }
                let s = &mut self.services[i];
                s.error_now = [pe + drag, ce + drag];
                s.p99_now = [pp, cp];
                s.current_weight_hint = w;
                let canary_requests = requests * w;
                let primary_requests = requests - canary_requests;
                let pe = ((pe + drag) * self.rng.jitter(0.3)).min(1.0);
                let ce = ((ce + drag) * self.rng.jitter(0.3)).min(1.0);
                let s = &mut self.services[i];
                s.series.roll();
                s.series.add(requests, primary_requests * pe + canary_requests * ce, pp);
                if m >= -(ANALYSIS_WINDOW.0 / MINUTE.0) * 2 {
                    s.tracks[0].roll();
                    s.tracks[0].add(primary_requests, primary_requests * pe, pp * self.rng.jitter(0.05));
                    s.tracks[1].roll();
                    s.tracks[1].add(canary_requests, canary_requests * ce, cp * self.rng.jitter(0.05));
                }
            }
        }
        for s in &mut self.services {
            s.series.roll();
            s.tracks[0].roll();
            s.tracks[1].roll();
        }
    }

    /// Runs the world up to `now` and returns what changed.
    pub fn advance_to(&mut self, now: Timestamp) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        if !self.started {
            self.started = true;
            events.push(self.inventory());
            events.push(SourceEvent::Connection { source: "sim".into(), state: ConnectionState::Live });
        }
        let gap = now.since(self.now).0;
        if gap > 0 {
            // A long gap (a suspended laptop) is crossed in at most 400 steps.
            let steps = (gap / STEP.0).clamp(1, 400);
            let mut t = self.now;
            for k in 1..=steps {
                let next = self.now.plus(Millis(gap * k / steps));
                self.step(t, next);
                t = next;
            }
            self.now = now;
        }
        self.collect(&mut events);
        events
    }

    pub fn inventory(&self) -> SourceEvent {
        SourceEvent::Inventory {
            backend: self.backend_info(),
            services: self.services.iter().map(|s| s.info.clone()).collect(),
        }
    }

    fn step(&mut self, from: Timestamp, to: Timestamp) {
        let dt = to.since(from).as_secs_f64();
        if to.0.div_euclid(MINUTE.0) != from.0.div_euclid(MINUTE.0) {
            for s in &mut self.services {
                s.series.roll();
                s.tracks[0].roll();
                s.tracks[1].roll();
            }
        }
        let minutes = to.since(self.options.start).0 as f64 / MINUTE.0 as f64;
        let season = seasonal(to);
        let order = self.order.clone();
        for &i in &order {
            {
                let s = &mut self.services[i];
                s.primary.step(to, &mut self.rng);
                s.canary.step(to, &mut self.rng);
                if s.promoting && s.primary.status(to).phase == RolloutPhase::Complete {
                    s.promoting = false;
                    let from_weight = s.weight;
                    s.weight = 0;
                    s.canary.scale(0, to);
                    s.changes += 1;
                    self.changes.push(ChangeRecord {
                        at: to,
                        service: s.spec.name.into(),
                        action: "promote-full".into(),
                        user: "controller".into(),
                        summary: format!("primary rolled out; canary {from_weight} → 0 %, scaled to 0"),
                    });
                }
            }
            let spec = self.services[i].spec;
            let (drag, failing) = self.drag(i);
            let primary_image = self.services[i].primary.image.clone();
            let canary_image = self.services[i].canary.image.clone();
            let (pe, pp) = self.quality(spec, &primary_image, minutes);
            let (ce, cp) = self.quality(spec, &canary_image, minutes);
            let requests = spec.rps * dt * season * self.rng.jitter(0.15);
            let s = &self.services[i];
            let canary_ready = s.canary.ready_pods(to).count() > 0;
            let w = if canary_ready { f64::from(s.weight) / 100.0 } else { 0.0 };
            let primary_ready = s.primary.ready_pods(to).count() > 0;
            // With no ready primary pod every primary request fails.
            let pe = if primary_ready { pe + drag } else { 1.0 };
            let ce = ce + drag;
            let canary_requests = requests * w * self.rng.jitter(0.1);
            let primary_requests = (requests - canary_requests).max(0.0);
            let p_err = primary_requests * (pe * self.rng.jitter(0.3)).min(1.0);
            let c_err = canary_requests * (ce * self.rng.jitter(0.3)).min(1.0);
            let pp = pp * (1.0 + drag * 5.0) * self.rng.jitter(0.05);
            let cp = cp * (1.0 + drag * 5.0) * self.rng.jitter(0.05);
            let s = &mut self.services[i];
            s.error_now = [pe, ce];
            s.p99_now = [pp, cp];
            s.current_weight_hint = w;
            s.series.add(primary_requests + canary_requests, p_err + c_err, pp);
            s.tracks[0].add(primary_requests, p_err, pp);
            s.tracks[1].add(canary_requests, c_err, cp);
            self.step_build(i, to);
            self.write_logs(i, to, dt, failing);
        }
    }

    fn step_build(&mut self, i: usize, now: Timestamp) {
        let s = &mut self.services[i];
        let Some(build) = &mut s.build else { return };
        while build.finished.is_none() && now >= build.next_step_at {
            if build.step == BUILD_STEPS.len() {
                build.finished = Some(build.next_step_at);
                build.output.push(format!("Successfully tagged {}", build.tag));
                break;
            }
            build.step += 1;
            build.output.push(format!("Step {}/{} : {}", build.step, BUILD_STEPS.len(), BUILD_STEPS[build.step - 1]));
            let pause = 250 + self.rng.below(650) as i64;
            build.next_step_at = build.next_step_at.plus(Millis(pause));
        }
    }

    fn write_logs(&mut self, i: usize, now: Timestamp, dt: f64, failing: Option<&'static str>) {
        let rate = self.options.log_rate;
        if rate <= 0.0 {
            return;
        }
        let s = &mut self.services[i];
        let primary: Vec<Arc<str>> = s.primary.ready_pods(now).map(|p| p.name.clone()).collect();
        let canary: Vec<Arc<str>> = s.canary.ready_pods(now).map(|p| p.name.clone()).collect();
        let pods = primary.len() + canary.len();
        s.log_debt += rate * pods as f64 * dt;
        let due = s.log_debt.floor().min(5_000.0);
        s.log_debt -= due;
        let canary_share = if canary.is_empty() { 0.0 } else { s.current_weight_hint.max(0.1) };
        let spec = s.spec;
        let (error_now, p99_now) = (s.error_now, s.p99_now);
        for k in 0..due as usize {
            let on_canary = !canary.is_empty() && self.rng.chance(canary_share);
            let (track, pods, t) = if on_canary { (Track::Canary, &canary, 1) } else { (Track::Primary, &primary, 0) };
            if pods.is_empty() {
                break;
            }
            let pod = self.rng.pick(pods).clone();
            let cx = LineContext {
                service: spec.name,
                paths: spec.paths,
                depends_on: spec.depends_on,
                error_ratio: error_now[t],
                p99_ms: p99_now[t],
                failing_dependency: failing,
            };
            // Spread lines over the step so timestamps are not all equal.
            let at = now.plus(Millis(-((dt * 1000.0) as i64) * (due as i64 - k as i64) / due.max(1.0) as i64));
            for raw in loggen::lines(&mut self.rng, &cx) {
                self.logs[i].push(LogLine::from_raw(at, pod.clone(), track, &raw, self.options.max_line));
            }
        }
    }

    fn collect(&mut self, events: &mut Vec<SourceEvent>) {
        let now = self.now;
        for change in self.changes.drain(..) {
            events.push(SourceEvent::Change(change));
        }
        let publish_metrics = now >= self.next_metrics;
        if publish_metrics {
            self.next_metrics = now.plus(METRICS_EVERY);
        }
        for i in 0..self.services.len() {
            let name = self.services[i].spec.name.to_string();
            let s = &mut self.services[i];
            let rollout = s.primary.status(now);
            if s.last_rollout.as_ref() != Some(&rollout) {
                s.last_rollout = Some(rollout.clone());
                events.push(SourceEvent::Rollout { service: name.clone(), status: rollout });
            }
            let traffic = s.traffic();
            if s.last_traffic.as_ref() != Some(&traffic) {
                s.last_traffic = Some(traffic.clone());
                events.push(SourceEvent::Traffic { service: name.clone(), traffic });
            }
            if let Some(build) = s.build_status() {
                if s.last_build.as_ref() != Some(&build) {
                    s.last_build = Some(build.clone());
                    events.push(SourceEvent::Build { service: name.clone(), build });
                }
            }
            if publish_metrics {
                let report = s.slo_report();
                s.last_slo = Some(report.clone());
                events.push(SourceEvent::Slo { service: name.clone(), report });
                if s.spec.stage.uses_canary() {
                    let (primary, canary) = s.analysis();
                    s.last_verdict =
                        Some(analyse_after(s.last_verdict.as_ref(), &canary, &primary, &s.info.thresholds));
                    events.push(SourceEvent::Analysis { service: name.clone(), primary, canary });
                }
            }
            let lines = std::mem::take(&mut self.logs[i]);
            if !lines.is_empty() {
                events.push(SourceEvent::Logs { service: name, lines });
            }
        }
    }

    /// Fresh facts for the executor.
    pub fn facts(&self, name: &str) -> Result<Facts, BackendError> {
        let s = &self.services[self.index(name)?];
        let canary_live = s.weight > 0 || s.canary.desired > 0;
        Ok(Facts {
            stage: s.spec.stage,
            plan: s.info.plan.clone(),
            primary_image: s.primary.image.clone(),
            canary_image: canary_live.then(|| s.canary.image.clone()),
            canary_weight: s.weight,
            verdict: if s.weight > 0 { s.last_verdict.clone() } else { None },
            slo_status: s.last_slo.as_ref().map(|r| r.status),
            // The fleet measures itself; a new canary waits for its first analysis.
            metrics_gap: (s.weight > 0 && s.last_verdict.is_none())
                .then(|| format!("the canary of {name} has not been analysed yet")),
            previous_image: s.primary.revisions.get(1).map(|r| r.image.clone()),
            rollout_paused: false,
            promoting: s.promoting,
            building: s.build.as_ref().is_some_and(|b| b.finished.is_none()),
            token: s.token(),
        })
    }

    /// Applies a plan decided on facts with `context.token`.
    pub fn apply(&mut self, name: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        let i = self.index(name)?;
        let now = self.now;
        if self.services[i].token() != context.token {
            return Err(BackendError::Conflict(format!("{name} changed since it was read")));
        }
        let before = self.services[i].snapshot();
        let summary = match plan {
            Plan::Rebuild => {
                let s = &mut self.services[i];
                if s.build.as_ref().is_some_and(|b| b.finished.is_none()) {
                    return Err(BackendError::Unsupported(format!("a build of {name} is already running")));
                }
                let version = catalog::bump(&s.latest_version);
                s.latest_version = version.clone();
                let tag = catalog::image(name, &version);
                s.build = Some(Build {
                    started: now,
                    step: 0,
                    next_step_at: now,
                    tag: tag.clone(),
                    output: Vec::new(),
                    finished: None,
                });
                format!("building {tag}")
            }
            Plan::DeployPrimary { image } => {
                let s = &mut self.services[i];
                let old = s.primary.image.clone();
                if old == *image {
                    return Err(BackendError::Unsupported(format!("{name} already runs {image}")));
                }
                s.primary.set_image(image, now, &mut self.rng);
                format!("{} → {}", catalog::version_of(&old), catalog::version_of(image))
            }
            Plan::StartCanary { image, weight } => {
                let s = &mut self.services[i];
                if s.primary.image == *image {
                    return Err(BackendError::Unsupported(format!("the primary already runs {image}")));
                }
                s.canary.set_image(image, now, &mut self.rng);
                s.canary.scale(canary_replicas(s.primary.desired, *weight), now);
                s.weight = *weight;
                // A new canary supersedes a full promotion in progress.
                s.promoting = false;
                // The analysis judges this version only, as a query scoped
                // to the new canary's pods would.
                s.tracks[1] = MinuteSeries::new(Millis(10 * MINUTE.0));
                s.tracks[1].roll();
                s.last_verdict = None;
                format!("canary {} at {weight} %", catalog::version_of(image))
            }
            Plan::SetCanaryWeight { from, to } => {
                let s = &mut self.services[i];
                if s.weight != *from {
                    return Err(BackendError::Conflict(format!(
                        "{name}'s canary weight is {} %, not {from} %",
                        s.weight
                    )));
                }
                s.weight = *to;
                s.canary.scale(canary_replicas(s.primary.desired, *to), now);
                format!("canary {from} → {to} %")
            }
            Plan::PromoteFull => {
                let s = &mut self.services[i];
                if s.weight == 0 && s.canary.desired == 0 {
                    return Err(BackendError::Unsupported(format!("{name} has no canary to promote")));
                }
                let old = s.primary.image.clone();
                let image = s.canary.image.clone();
                s.primary.set_image(&image, now, &mut self.rng);
                s.promoting = true;
                format!(
                    "{} → {} on the primary; traffic returns once it is rolled out",
                    catalog::version_of(&old),
                    catalog::version_of(&image)
                )
            }
            Plan::AbortCanary => {
                let s = &mut self.services[i];
                let from = s.weight;
                s.weight = 0;
                s.canary.scale(0, now);
                s.tracks[1] = MinuteSeries::new(Millis(10 * MINUTE.0));
                s.tracks[1].roll();
                s.last_verdict = None;
                if std::mem::take(&mut s.promoting) {
                    // Stop the promotion: the primary goes back to what it ran.
                    if let Some(previous) = s.primary.revisions.get(1).cloned() {
                        s.primary.set_image(&previous.image, now, &mut self.rng);
                        let now_revision = s.primary.revisions.first().map_or(previous.number, |r| r.number);
                        format!(
                            "promotion stopped: primary back to revision {} (now revision {now_revision}): {}, \
                             canary {from} → 0 %",
                            previous.number,
                            catalog::version_of(&previous.image)
                        )
                    } else {
                        format!("canary {from} → 0 %, scaled to 0")
                    }
                } else {
                    format!("canary {from} → 0 %, scaled to 0")
                }
            }
            Plan::Restart | Plan::Stop => {
                return Err(BackendError::Unsupported(
                    "the simulated fleet runs pods, not dev containers: restart and stop are for Docker dev containers"
                        .into(),
                ));
            }
            Plan::UndoPrimary => {
                let s = &mut self.services[i];
                let Some(previous) = s.primary.revisions.get(1).cloned() else {
                    return Err(BackendError::Unsupported(format!("{name} has no earlier revision")));
                };
                let old = s.primary.image.clone();
                s.primary.set_image(&previous.image, now, &mut self.rng);
                // As `kubectl rollout undo`: the old template comes back as a
                // new revision, the one the rollout pane shows on top.
                let now_revision = s.primary.revisions.first().map_or(previous.number, |r| r.number);
                format!(
                    "rolled back to revision {} (now revision {now_revision}): {} → {}",
                    previous.number,
                    catalog::version_of(&old),
                    catalog::version_of(&previous.image)
                )
            }
        };
        let s = &mut self.services[i];
        s.changes += 1;
        let after = s.snapshot();
        if !matches!(plan, Plan::Rebuild) {
            self.changes.push(ChangeRecord {
                at: now,
                service: name.into(),
                action: plan_action(plan).into(),
                user: context.user.clone(),
                summary: summary.clone(),
            });
        }
        Ok(Change { before, after, summary })
    }

    /// Someone else's change, for tests of conflicting writes.
    pub fn touch(&mut self, name: &str) -> Result<(), BackendError> {
        let i = self.index(name)?;
        self.services[i].changes += 1;
        Ok(())
    }
}

fn plan_action(plan: &Plan) -> &'static str {
    match plan {
        Plan::Rebuild => "rebuild",
        Plan::Restart => "restart",
        Plan::Stop => "stop",
        Plan::DeployPrimary { .. } | Plan::StartCanary { .. } => "deploy",
        Plan::SetCanaryWeight { .. } => "promote",
        Plan::PromoteFull => "promote-full",
        Plan::AbortCanary | Plan::UndoPrimary => "rollback",
    }
}

fn canary_replicas(primary: u32, weight: u8) -> u32 {
    if weight == 0 {
        return 0;
    }
    ((f64::from(primary) * f64::from(weight) / 100.0).round() as u32).max(1)
}

/// Daily traffic curve: quiet at night, busiest in the evening.
fn seasonal(at: Timestamp) -> f64 {
    let hour = (at.0.rem_euclid(DAY.0)) as f64 / 3_600_000.0;
    0.65 + 0.35 * ((hour - 13.0) / 24.0 * std::f64::consts::TAU).cos()
}

fn topological(services: &[Service]) -> Vec<usize> {
    let mut order = Vec::with_capacity(services.len());
    fn visit(i: usize, services: &[Service], order: &mut Vec<usize>, seen: &mut Vec<bool>) {
        if seen[i] {
            return;
        }
        seen[i] = true;
        for dep in services[i].spec.depends_on {
            if let Some(d) = services.iter().position(|s| s.spec.name == *dep) {
                visit(d, services, order, seen);
            }
        }
        order.push(i);
    }
    let mut seen = vec![false; services.len()];
    for i in 0..services.len() {
        visit(i, services, &mut order, &mut seen);
    }
    order
}

impl Service {
    fn new(spec: &'static Spec, start: Timestamp, rng: &mut Rng) -> Service {
        let count = spec.versions.len() as i64;
        let revisions: Vec<Revision> = spec
            .versions
            .iter()
            .enumerate()
            .rev()
            .map(|(k, v)| Revision {
                number: 10 + k as u64,
                image: catalog::image(spec.name, v),
                // Older versions further back: days apart, newest days ago.
                created: start.plus(Millis(-DAY.0 * (2 + 5 * (count - 1 - k as i64)) - rng.below(20_000_000) as i64)),
            })
            .collect();
        let current = spec.versions.last().copied().unwrap_or("0.1.0");
        let primary =
            Workload::running(spec.name, &catalog::image(spec.name, current), spec.replicas, revisions, start, rng);
        let canary = Workload::running(
            &format!("{}-canary", spec.name),
            &catalog::image(spec.name, current),
            0,
            Vec::new(),
            start,
            rng,
        );
        let slo = SloSpec { objective: spec.objective, window: SloSpec::default().window };
        Service {
            spec,
            info: ServiceInfo {
                name: spec.name.into(),
                stage: spec.stage,
                owner: Some(spec.owner.into()),
                depends_on: spec.depends_on.iter().map(|d| d.to_string()).collect(),
                plan: CanaryPlan::default(),
                thresholds: CanaryThresholds { max_p99_ms: (spec.p99_ms * 1.5).round(), ..CanaryThresholds::default() },
            },
            primary,
            canary,
            weight: 0,
            promoting: false,
            slo,
            series: MinuteSeries::new(slo.window),
            tracks: [MinuteSeries::new(Millis(10 * MINUTE.0)), MinuteSeries::new(Millis(10 * MINUTE.0))],
            error_now: [spec.base_error, spec.base_error],
            p99_now: [spec.p99_ms, spec.p99_ms],
            build: None,
            latest_version: current.into(),
            changes: 0,
            log_debt: 0.0,
            last_rollout: None,
            last_traffic: None,
            last_build: None,
            last_slo: None,
            last_verdict: None,
            current_weight_hint: 0.0,
        }
    }

    fn blended_error(&self) -> f64 {
        let w = self.current_weight_hint;
        self.error_now[0] * (1.0 - w) + self.error_now[1] * w
    }

    /// What `Facts::token` is: the count of changes and everything a
    /// question can show or a plan acts on (images, weight, replicas,
    /// revisions, a promotion in flight), hashed, so an answer to another
    /// state of the world is never taken for one to this state.
    fn token(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.changes.hash(&mut hasher);
        (&self.primary.image, &self.canary.image, self.weight, self.promoting).hash(&mut hasher);
        (self.primary.desired, self.canary.desired).hash(&mut hasher);
        for workload in [&self.primary, &self.canary] {
            let revisions = workload.revisions.iter().map(|r| (r.number, &r.image)).collect::<Vec<_>>();
            revisions.hash(&mut hasher);
        }
        hasher.finish()
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            image: self.primary.image.clone(),
            canary_image: (self.weight > 0 || self.canary.desired > 0).then(|| self.canary.image.clone()),
            weight: self.weight,
            revision: self.primary.revisions.first().map(|r| r.number),
        }
    }

    fn traffic(&self) -> Traffic {
        let live = self.weight > 0 || self.canary.desired > 0;
        let last = |t: usize| self.tracks[t].last(MINUTE);
        let (p, c) = (last(0).requests, last(1).requests);
        Traffic {
            primary_image: self.primary.image.clone(),
            canary_image: live.then(|| self.canary.image.clone()),
            target_weight: self.weight,
            // Rounded so that noise alone does not redraw the screen.
            actual_weight: (live && p + c > 0.0).then(|| (1000.0 * c / (p + c)).round() / 10.0),
            note: None,
        }
    }

    fn build_status(&self) -> Option<BuildStatus> {
        let b = self.build.as_ref()?;
        Some(BuildStatus {
            step: b.step as u32,
            of: BUILD_STEPS.len() as u32,
            started: b.started,
            finished: b.finished,
            tag: b.finished.map(|_| b.tag.clone()),
            error: None,
            output: b.output.iter().rev().take(8).rev().cloned().collect(),
        })
    }

    fn slo_report(&self) -> SloReport {
        let total = self.series.total();
        slo::evaluate(
            self.slo,
            ratio(total.errors, total.requests),
            |w| {
                let b = self.series.last(w);
                Some(ratio(b.errors, b.requests))
            },
            self.series.error_ratios(CHART_MINUTES),
        )
    }

    fn analysis(&self) -> (TrackMetrics, TrackMetrics) {
        let metrics = |t: usize| {
            let b = self.tracks[t].last(ANALYSIS_WINDOW);
            TrackMetrics {
                requests: b.requests.round(),
                success_pct: 100.0 * (1.0 - ratio(b.errors, b.requests)),
                p99_ms: if b.requests > 0.0 { b.latency_weighted / b.requests } else { 0.0 },
            }
        };
        (metrics(0), metrics(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::slo::SloStatus;

    fn fleet(scenario: Scenario) -> SimFleet {
        SimFleet::new(SimOptions { scenario, ..SimOptions::default() })
    }

    fn reports(events: &[SourceEvent]) -> std::collections::HashMap<String, SloReport> {
        events
            .iter()
            .filter_map(|e| match e {
                SourceEvent::Slo { service, report } => Some((service.clone(), report.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_bad_canary_pages_checkout_from_the_first_frame() {
        let mut f = fleet(Scenario::BadCanary);
        let events = f.advance_to(f.now().plus(Millis(250)));
        let slo = reports(&events);
        let checkout = &slo["checkout"];
        assert_eq!(checkout.status, SloStatus::Page, "{checkout:#?}");
        assert_eq!(slo["cart"].status, SloStatus::Ok);
        let facts = f.facts("checkout").unwrap();
        assert_eq!(facts.canary_weight, 25);
        assert!(facts.verdict.as_ref().is_some_and(Verdict::is_failing), "{:?}", facts.verdict);
    }

    #[test]
    fn a_failing_dependency_drags_its_callers() {
        let mut f = fleet(Scenario::DependencyFailure);
        let events = f.advance_to(f.now().plus(Millis(250)));
        let slo = reports(&events);
        assert_eq!(slo["ledger"].status, SloStatus::Page);
        assert_eq!(slo["payments"].status, SloStatus::Page);
        assert_eq!(slo["catalog"].status, SloStatus::Ok);
    }

    #[test]
    fn the_token_changes_with_everything_a_question_shows() {
        let mut f = fleet(Scenario::Calm);
        let i = f.index("cart").unwrap();
        let token = |f: &SimFleet| f.facts("cart").unwrap().token;
        let mut seen = vec![token(&f)];
        // Each change made the way no action makes it (no counter bumped):
        // the token still moves, since it covers the values themselves.
        let changes: [fn(&mut Service); 5] = [
            |s| s.canary.image = "shop/cart:0.13.0-evil".into(),
            |s| s.weight = 30,
            |s| s.primary.image = "shop/cart:0.1.0".into(),
            |s| drop(s.primary.revisions.remove(1)),
            |s| s.canary.desired += 1,
        ];
        for change in changes {
            change(&mut f.services[i]);
            let now = token(&f);
            assert!(!seen.contains(&now), "a change the token did not see: {now}");
            seen.push(now);
        }
        // An answer to what was seen before is not taken for one to what is there now.
        let context = ActionContext { user: "t".into(), token: seen[0] };
        let stale = f.apply("cart", &Plan::AbortCanary, &context);
        assert!(matches!(stale, Err(BackendError::Conflict(_))), "{stale:?}");
        assert_eq!(f.facts("cart").unwrap().canary_weight, 30, "nothing done");
    }

    #[test]
    fn an_undo_says_the_revision_it_restored_and_the_one_it_became_as_the_pane_shows() {
        let mut f = fleet(Scenario::Calm);
        let numbers = |f: &SimFleet| {
            let s = &f.services[f.index("catalog").unwrap()];
            s.primary.status(f.now()).revisions.iter().map(|r| r.number).collect::<Vec<_>>()
        };
        let before = numbers(&f);
        let (current, previous) = (before[0], before[1]);
        let token = f.facts("catalog").unwrap().token;
        let change = f.apply("catalog", &Plan::UndoPrimary, &ActionContext { user: "t".into(), token }).unwrap();
        // As `kubectl rollout undo`: the old template comes back as a new revision.
        let after = numbers(&f);
        assert_eq!(after[..2], [current + 1, current], "the pane: rev {current} → {}", current + 1);
        assert!(
            change.summary.starts_with(&format!("rolled back to revision {previous} (now revision {})", current + 1)),
            "{}",
            change.summary
        );
        assert_eq!(change.after.revision, Some(current + 1));
    }

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let run = || {
            let mut f = fleet(Scenario::BadCanary);
            let start = f.now();
            (1..=20)
                .flat_map(|k| f.advance_to(start.plus(Millis(k * 500))))
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
