//! The Prometheus source against a real Prometheus.
//!
//! - History: days of generated `http_requests_total` and latency histogram
//!   series (primary and canary, an old incident, a recent bad canary that
//!   must page) are backfilled with `promtool`; the source runs on a clock
//!   set just after the last sample, and every number it reports is checked
//!   against values computed here from the generated series.
//! - Live: Prometheus scrapes a `/metrics` endpoint served by the test
//!   every second; it is stopped and restarted under the running source, and
//!   one service has broken PromQL.
//!
//! Without `prometheus`/`promtool` on PATH the Prometheus tests print a note
//! and pass, except under `CI=true`, where they fail.

#[path = "common/prometheus.rs"]
mod prom;

use cockpit::action::Keymap;
use cockpit::audit::AuditLog;
use cockpit::backend::prometheus::{self, MetricsFacts, Source};
use cockpit::backend::{Facts, NoWorkloads, Plan, config_inventory};
use cockpit::clock::Clock;
use cockpit::config::Config;
use cockpit::domain::canary::{CanaryPlan, TrackMetrics, Verdict};
use cockpit::domain::slo::{SloReport, SloStatus};
use cockpit::domain::time::{DAY, HOUR};
use cockpit::domain::{Millis, Stage, Timestamp};
use cockpit::event::{ConnectionState, ExecEvent, Op, Question, Request, SourceEvent};
use cockpit::executor::Executor;
use cockpit::executor::policy::{self, Decision};
use cockpit::state::{AppState, Msg, update};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

// ---------------------------------------------------------------------------
// Generated history

const SERVICES: [&str; 2] = ["checkout", "payments"];
const TRACKS: [&str; 2] = ["primary", "canary"];
const CODES: [&str; 3] = ["200", "404", "500"];
const LES: [&str; 6] = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];

/// Requests in one minute of one track: per code, and cumulative per bucket.
struct Minute {
    codes: [f64; 3],
    buckets: [f64; 6],
}

/// Minute `m` is the m-th minute before the end (0: the last one).
fn traffic(service: &str, track: &str, m: i64) -> Minute {
    let minute = |total: f64, not_found: f64, errors: f64, shape: [f64; 6]| Minute {
        codes: [total - not_found - errors, not_found, errors],
        buckets: shape.map(|share| share * total),
    };
    let idle = Minute { codes: [0.0; 3], buckets: [0.0; 6] };
    let healthy_shape = [0.6, 0.9, 0.995, 1.0, 1.0, 1.0];
    match (service, track) {
        ("checkout", "primary") => {
            // A two-hour incident three days ago at 1 % errors.
            let incident = (3 * 1440 - 120..3 * 1440).contains(&m);
            minute(2000.0, 5.0, if incident { 20.0 } else { 1.0 }, healthy_shape)
        }
        // The canary went live 150 minutes ago and went bad 45 minutes ago.
        ("checkout", "canary") if m < 45 => minute(200.0, 0.0, 16.0, [0.4, 0.65, 0.85, 0.95, 0.995, 1.0]),
        ("checkout", "canary") if m < 150 => minute(200.0, 0.0, 0.0, healthy_shape),
        ("payments", "primary") => minute(1000.0, 2.0, if m % 4 == 0 { 1.0 } else { 0.0 }, healthy_shape),
        ("payments", "canary") if m < 120 => minute(100.0, 0.0, 0.0, [0.6, 0.95, 1.0, 1.0, 1.0, 1.0]),
        _ => idle,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Code(usize),
    Le(usize),
}

/// Counters as Prometheus stores them: sampled every 5 minutes, every
/// minute over the last 7 hours, all series at the same instants.
struct History {
    /// Sample times in seconds, ascending.
    times: Vec<i64>,
    values: BTreeMap<(&'static str, &'static str, Label), Vec<f64>>,
}

impl History {
    fn generate(end: i64, span: i64) -> History {
        let start = end - span;
        let sampled = |t: i64| end - t <= 7 * 3600 || (end - t) % 300 == 0;
        let mut counters: BTreeMap<(&'static str, &'static str, Label), f64> = BTreeMap::new();
        for service in SERVICES {
            for track in TRACKS {
                for c in 0..CODES.len() {
                    counters.insert((service, track, Label::Code(c)), 1.0e6);
                }
                for b in 0..LES.len() {
                    counters.insert((service, track, Label::Le(b)), 1.0e6);
                }
            }
        }
        let mut history = History { times: vec![start], values: BTreeMap::new() };
        for (key, value) in &counters {
            history.values.insert(*key, vec![*value]);
        }
        let mut t = start;
        while t < end {
            t += 60;
            let m = (end - t) / 60;
            for service in SERVICES {
                for track in TRACKS {
                    let minute = traffic(service, track, m);
                    for (c, n) in minute.codes.iter().enumerate() {
                        *counters.entry((service, track, Label::Code(c))).or_default() += n;
                    }
                    for (b, n) in minute.buckets.iter().enumerate() {
                        *counters.entry((service, track, Label::Le(b))).or_default() += n;
                    }
                }
            }
            if sampled(t) {
                history.times.push(t);
                for (key, value) in &counters {
                    history.values.entry(*key).or_default().push(*value);
                }
            }
        }
        history
    }

    fn openmetrics(&self) -> String {
        let mut out = String::with_capacity(self.times.len() * self.values.len() * 100);
        for (i, t) in self.times.iter().enumerate() {
            for ((service, track, label), values) in &self.values {
                let v = values[i];
                match label {
                    Label::Code(c) => out.push_str(&format!(
                        "http_requests_total{{service=\"{service}\",track=\"{track}\",code=\"{}\"}} {v} {t}\n",
                        CODES[*c]
                    )),
                    Label::Le(b) => out.push_str(&format!(
                        "http_request_duration_seconds_bucket{{service=\"{service}\",track=\"{track}\",le=\"{}\"}} {v} {t}\n",
                        LES[*b]
                    )),
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Indices of the first and last sample in `[t - w, t]`.
    fn window(&self, t: i64, w: i64) -> (usize, usize) {
        let first = self.times.iter().position(|&s| s >= t - w).expect("a sample in the window");
        let last = self.times.iter().rposition(|&s| s <= t).expect("a sample in the window");
        (first, last)
    }

    fn delta(&self, key: (&'static str, &'static str, Label), t: i64, w: i64) -> f64 {
        let (first, last) = self.window(t, w);
        let values = &self.values[&key];
        values[last] - values[first]
    }

    fn track_delta(&self, service: &'static str, tracks: &[&'static str], label: Label, t: i64, w: i64) -> f64 {
        tracks.iter().map(|track| self.delta((service, track, label), t, w)).sum()
    }

    fn requests_delta(&self, service: &'static str, tracks: &[&'static str], t: i64, w: i64) -> f64 {
        (0..CODES.len()).map(|c| self.track_delta(service, tracks, Label::Code(c), t, w)).sum()
    }

    /// 5xx over all requests of both tracks: the SLO's error ratio.
    fn error_ratio(&self, service: &'static str, t: i64, w: i64) -> f64 {
        let total = self.requests_delta(service, &TRACKS, t, w);
        let errors = self.track_delta(service, &TRACKS, Label::Code(2), t, w);
        if total > 0.0 { errors / total } else { 0.0 }
    }

    /// Requests of one track as `increase` reports them: the sampled
    /// increase extrapolated to the whole window, which Prometheus does when
    /// the window's edges lie within 1.1 sample intervals of a sample.
    fn requests(&self, service: &'static str, track: &'static str, t: i64, w: i64) -> f64 {
        let (first, last) = self.window(t, w);
        let sampled = (self.times[last] - self.times[first]) as f64;
        let average = sampled / (last - first) as f64;
        assert!(((self.times[first] - (t - w)) as f64) < 1.1 * average, "test data: start edge must extrapolate");
        assert!(((t - self.times[last]) as f64) < 1.1 * average, "test data: end edge must extrapolate");
        self.requests_delta(service, &[track], t, w) * w as f64 / sampled
    }

    fn success_pct(&self, service: &'static str, track: &'static str, t: i64, w: i64) -> f64 {
        let total = self.requests_delta(service, &[track], t, w);
        100.0 * (1.0 - self.track_delta(service, &[track], Label::Code(2), t, w) / total)
    }

    /// The 99th percentile in ms, interpolated linearly inside its bucket
    /// as `histogram_quantile` does. Every bucket is extrapolated by the
    /// same factor, so the sampled increases give the same quantile.
    fn p99_ms(&self, service: &'static str, track: &'static str, t: i64, w: i64) -> f64 {
        let counts: Vec<f64> =
            (0..LES.len()).map(|b| self.track_delta(service, &[track], Label::Le(b), t, w)).collect();
        let rank = 0.99 * counts[LES.len() - 1];
        let bound = |b: usize| LES[b].parse::<f64>().expect("a finite bucket bound");
        let b = counts.iter().position(|&c| c >= rank).expect("a bucket holds the rank");
        assert!(b < LES.len() - 1, "test data: the 99th percentile must fall in a finite bucket");
        let (lower, below) = if b == 0 { (0.0, 0.0) } else { (bound(b - 1), counts[b - 1]) };
        1000.0 * (lower + (bound(b) - lower) * (rank - below) / (counts[b] - below))
    }
}

fn close(got: f64, want: f64, what: &str) {
    let tolerance = 0.01 * want.abs().max(1e-12);
    assert!((got - want).abs() <= tolerance, "{what}: got {got}, computed by hand {want}");
}

// ---------------------------------------------------------------------------
// Event plumbing

/// Receives until an event satisfies `wanted`, keeping everything seen.
async fn wait_for(
    inbox: &mut mpsc::Receiver<Msg>,
    seen: &mut Vec<SourceEvent>,
    limit: Duration,
    what: &str,
    wanted: impl Fn(&SourceEvent) -> bool,
) -> SourceEvent {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, inbox.recv()).await {
            Ok(Some(Msg::Source(event))) => {
                seen.push(event.clone());
                if wanted(&event) {
                    return event;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the source task ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {limit:?}; seen: {:#?}", summary(seen)),
        }
    }
}

fn summary(events: &[SourceEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            SourceEvent::Slo { service, report } => format!("Slo {service} {:?}", report.status),
            SourceEvent::Analysis { service, .. } => format!("Analysis {service}"),
            SourceEvent::MetricsError { service, message } => format!("MetricsError {service}: {message}"),
            SourceEvent::Connection { state, .. } => format!("Connection {state:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn parse(toml: &str) -> Config {
    Config::parse(toml, Path::new("cockpit.toml")).expect("test config parses")
}

fn source_for(config: &Config) -> Source {
    let prometheus = config.prometheus.as_ref().expect("[prometheus] in the test config");
    Source::new(prometheus, &config.services, &config.canary).expect("a Prometheus source")
}

// ---------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_and_canary_analysis_from_backfilled_history_match_the_series() {
    let Some(tools) = prom::tools() else { return };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("data");
    std::fs::create_dir_all(&storage).expect("storage dir");

    // Minute-aligned, a little in the past; the source's clock starts 5 s
    // after the last sample, so every window ends just past it.
    let now_secs = Timestamp::now().0 / 1000;
    let end = now_secs / 60 * 60 - 120;
    let history = History::generate(end, 7 * 86_400 + 1800);
    prom::backfill(&tools, &history.openmetrics(), &storage);
    let backfilled = started.elapsed();
    let server = tokio::task::block_in_place(|| prom::Prometheus::start(&tools, dir.path(), &storage, &[]));
    let ready = started.elapsed();

    let config = parse(&format!(
        r#"
[prometheus]
url = "{url}"
refresh = "15s"
analysis_interval = "5m"

[[service]]
name = "payments"
stage = "production"

[[service]]
name = "checkout"
stage = "mission-critical"
owner = "payments-team"
depends_on = ["payments"]
[service.canary]
min_success = 99.5
[service.slo]
objective = 99.9
window = "7d"
"#,
        url = server.url()
    ));
    let source = source_for(&config);
    let facts: MetricsFacts = source.facts();
    let t = end + 5;
    let clock = Clock::starting_at(Timestamp(t * 1000), 1.0);
    let (events, mut inbox) = mpsc::channel(256);
    let task = tokio::spawn(prometheus::run(source, clock, events));

    let mut seen = Vec::new();
    let limit = Duration::from_secs(40);
    for service in SERVICES {
        let is = |e: &SourceEvent, kind: &str| match e {
            SourceEvent::Slo { service: s, .. } => kind == "slo" && s == service,
            SourceEvent::Analysis { service: s, .. } => kind == "analysis" && s == service,
            _ => false,
        };
        if !seen.iter().any(|e| is(e, "slo")) {
            wait_for(&mut inbox, &mut seen, limit, &format!("Slo for {service}"), |e| is(e, "slo")).await;
        }
        if !seen.iter().any(|e| is(e, "analysis")) {
            wait_for(&mut inbox, &mut seen, limit, &format!("Analysis for {service}"), |e| is(e, "analysis")).await;
        }
    }
    let measured = started.elapsed();
    task.abort();
    assert!(
        (clock.now().0 / 1000 - t) < 50,
        "the first batch must come while every window still ends past the last sample"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, SourceEvent::MetricsError { .. })),
        "no metrics errors: {:?}",
        summary(&seen)
    );
    assert!(seen.iter().any(|e| matches!(e, SourceEvent::Connection { state: ConnectionState::Live, .. })));

    let report = |name: &str| -> SloReport {
        seen.iter()
            .find_map(|e| match e {
                SourceEvent::Slo { service, report } if service == name => Some(report.clone()),
                _ => None,
            })
            .expect("an SLO report")
    };
    let analysis = |name: &str| -> (TrackMetrics, TrackMetrics) {
        seen.iter()
            .find_map(|e| match e {
                SourceEvent::Analysis { service, primary, canary } if service == name => Some((*primary, *canary)),
                _ => None,
            })
            .expect("an analysis")
    };

    // The SLO, window by window, against the generated series.
    let rule_windows = [5 * 60, 30 * 60, 3600, 2 * 3600, 6 * 3600, 86_400, 3 * 86_400];
    for (service, window, allowed) in [("checkout", 7 * 86_400, 0.001), ("payments", 30 * 86_400, 0.001)] {
        let report = report(service);
        let ratio = history.error_ratio(service, t, window);
        close(report.sli, 100.0 * (1.0 - ratio), &format!("{service} SLI"));
        close(report.budget_left, 1.0 - ratio / allowed, &format!("{service} budget left"));
        assert_eq!(report.burns.len(), rule_windows.len());
        for (burn, w) in report.burns.iter().zip(rule_windows) {
            assert_eq!(burn.window, Millis::from_secs(w));
            close(burn.rate, history.error_ratio(service, t, w) / allowed, &format!("{service} burn over {w} s"));
        }
        // The chart: a 5-minute error ratio for each of the last 360 minutes.
        assert_eq!(report.error_history.len(), 360);
        for back in [0i64, 44, 60, 130, 359] {
            let got = report.error_history[(359 - back) as usize];
            close(got, history.error_ratio(service, t - back * 60, 300), &format!("{service} history {back} min ago"));
        }
    }

    // checkout: 7-day objective, so the fast page fires above 0.02 * 168 = 3.36.
    let checkout = report("checkout");
    let page = 0.02 * 7.0 * 24.0;
    assert!(history.error_ratio("checkout", t, 3600) / 0.001 > page, "test data: the last hour must page");
    assert!(history.error_ratio("checkout", t, 300) / 0.001 > page, "test data: the last 5 minutes must page");
    assert_eq!(checkout.status, SloStatus::Page);
    assert_eq!(checkout.firing.map(|r| r.long), Some(HOUR));
    assert!(checkout.budget_left > 0.0 && checkout.budget_left < 1.0, "{}", checkout.budget_left);
    // Seven days and a half hour of history cover checkout's 7-day window.
    assert_eq!(checkout.coverage, Millis(7 * DAY.0));
    assert!(checkout.has_data() && !checkout.is_partial());
    assert!(checkout.burns.iter().all(|b| b.is_covered()), "{:?}", checkout.burns);
    // payments: the default 30-day objective, burning at 0.25x, on 7 days
    // of data: every rule window is covered, the window is not.
    let payments = report("payments");
    assert_eq!(payments.spec.window, Millis(30 * DAY.0));
    assert_eq!(payments.status, SloStatus::Ok);
    assert_eq!(payments.firing, None);
    let seven_days = Millis(7 * DAY.0)..Millis(7 * DAY.0 + 60_000);
    assert!(seven_days.contains(&payments.coverage), "{:?}", payments.coverage);
    assert!(payments.is_partial() && payments.is_judged());
    assert!(payments.burns.iter().all(|b| b.is_covered()), "{:?}", payments.burns);

    // The canary analysis over 5 minutes, per track.
    let w = 300;
    for service in SERVICES {
        let (primary, canary) = analysis(service);
        for (track, got) in [("primary", primary), ("canary", canary)] {
            let what = format!("{service} {track}");
            close(got.requests, history.requests(service, track, t, w), &format!("{what} requests"));
            close(got.success_pct, history.success_pct(service, track, t, w), &format!("{what} success"));
            close(got.p99_ms, history.p99_ms(service, track, t, w), &format!("{what} p99"));
        }
    }
    let (_, checkout_canary) = analysis("checkout");
    assert!(checkout_canary.success_pct < 93.0 && checkout_canary.p99_ms > 900.0, "{checkout_canary:?}");

    // Verdicts, with each service's resolved thresholds, in the shared facts
    // and in the state the events fold into.
    let (verdict, status) = facts.gate("checkout");
    assert_eq!(status, Some(SloStatus::Page));
    let Some(Verdict::Failing(reason)) = &verdict else { panic!("checkout's canary must fail: {verdict:?}") };
    assert!(reason.contains("canary success 92.00 % < 99.5 %"), "{reason}");
    assert!(reason.contains("p99 9") && reason.contains("> 300 ms"), "{reason}");
    let (payments_verdict, payments_status) = facts.gate("payments");
    assert!(matches!(payments_verdict, Some(Verdict::Healthy(_))), "{payments_verdict:?}");
    assert_eq!(payments_status, Some(SloStatus::Ok));
    assert_eq!(facts.gate("unknown"), (None, None));

    let (info, services) = config_inventory(&config, &server.url());
    let mut state = AppState::new(info.clone(), Keymap::default(), false, 100);
    update(&mut state, clock.now(), Msg::Source(SourceEvent::Inventory { backend: info, services }));
    for event in seen.iter().cloned() {
        update(&mut state, clock.now(), Msg::Source(event));
    }
    let pane = prom::slo_pane(&state, "payments", 140, 8);
    assert!(pane.contains("over 7 d of 30 d: SLI 99.98 %   budget left 75 %"), "{pane}");
    assert!(pane.contains(" OK ") && !pane.contains("of data"), "{pane}");
    let pane = prom::slo_pane(&state, "checkout", 140, 8);
    let worst = (0..360).map(|back| history.error_ratio("checkout", t - back * 60, 300)).fold(0.0, f64::max);
    let max_label = format!("max {:.2} % measured", 100.0 * worst);
    assert!(pane.contains(" PAGE ") && !pane.contains(" of ") && pane.contains(&max_label), "{max_label}:\n{pane}");
    let view = state.service("checkout").expect("checkout in the inventory");
    assert_eq!(view.verdict, verdict, "the state judges with the same thresholds");
    assert_eq!(view.slo_status(), Some(SloStatus::Page));
    assert_eq!(state.connections.get("prometheus"), Some(&ConnectionState::Live));

    // The mission-critical gate on these facts: promotion needs the typed name.
    let gate_facts = |(verdict, slo_status): (Option<Verdict>, Option<SloStatus>)| Facts {
        stage: Stage::MissionCritical,
        plan: CanaryPlan::default(),
        primary_image: "shop/checkout:1.4.2".into(),
        canary_image: Some("shop/checkout:1.5.0".into()),
        canary_weight: 5,
        verdict,
        slo_status,
        metrics_gap: None,
        previous_image: Some("shop/checkout:1.4.1".into()),
        rollout_paused: false,
        promoting: false,
        building: false,
        token: 1,
    };
    let promote = Request {
        id: 1,
        service: "checkout".into(),
        op: Op::Promote { full: false },
        confirmed: false,
        typed_name: None,
        asked_token: None,
    };
    match policy::decide(&promote, &gate_facts(facts.gate("checkout")), false) {
        Decision::Ask(Question::TypeName { reason }) => {
            assert!(reason.contains("canary failing (canary success 92.00 %"), "{reason}");
            assert!(reason.contains("SLO is paging"), "{reason}");
        }
        other => panic!("the gate must ask for the typed name: {other:?}"),
    }
    // The same gate on healthy metrics lets the step through.
    let healthy = policy::decide(&promote, &gate_facts(facts.gate("payments")), false);
    assert_eq!(healthy, Decision::Run { plan: Plan::SetCanaryWeight { from: 5, to: 25 }, forced: false });

    eprintln!("timings: backfill {:?}, ready {:?}, first batch {:?}", backfilled, ready - backfilled, measured - ready);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scrapes_survive_a_prometheus_restart_and_a_bad_query_stays_with_its_service() {
    let Some(tools) = prom::tools() else { return };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("data");

    // 20 requests/s for each service: 1 % errors, all within 100 ms.
    let born = Instant::now();
    let endpoint = prom::MetricsEndpoint::serve(move || {
        let s = born.elapsed().as_secs_f64();
        let mut body = String::new();
        for service in ["orders", "broken"] {
            for (track, code, per_second) in [("primary", "200", 17.8), ("primary", "500", 0.2), ("canary", "200", 2.0)] {
                body.push_str(&format!(
                    "http_requests_total{{service=\"{service}\",track=\"{track}\",code=\"{code}\"}} {}\n",
                    per_second * s
                ));
            }
            for (track, per_second) in [("primary", 18.0), ("canary", 2.0)] {
                for le in ["0.1", "+Inf"] {
                    body.push_str(&format!(
                        "http_request_duration_seconds_bucket{{service=\"{service}\",track=\"{track}\",le=\"{le}\"}} {}\n",
                        per_second * s
                    ));
                }
            }
        }
        body
    })
    .await;
    let mut server =
        tokio::task::block_in_place(|| prom::Prometheus::start(&tools, dir.path(), &storage, &[endpoint.addr]));

    let config = parse(&format!(
        r#"
[prometheus]
url = "{url}"
refresh = "1s"
analysis_interval = "1m"

[[service]]
name = "orders"
stage = "production"

[[service]]
name = "broken"
stage = "production"
[service.slo]
total = 'sum(rate(http_requests_total{{service="{{{{service}}}}"}}[{{{{window}}}}])'
"#,
        url = server.url()
    ));
    let (events, mut inbox) = mpsc::channel(1024);
    let task = tokio::spawn(prometheus::run(source_for(&config), Clock::system(), events));
    let mut seen = Vec::new();
    let limit = Duration::from_secs(30);

    // Real scraped data: 1 % errors burn a 99.9 % objective at 10x.
    let orders_burning = |e: &SourceEvent| matches!(e, SourceEvent::Slo { service, report } if service == "orders" && report.fast_burn() > 0.0);
    let event = wait_for(&mut inbox, &mut seen, limit, "a burning Slo for orders", orders_burning).await;
    let SourceEvent::Slo { report, .. } = event else { unreachable!() };
    close(report.fast_burn(), 10.0, "orders 5m burn from scraped data");
    let event = wait_for(
        &mut inbox,
        &mut seen,
        limit,
        "a MetricsError for broken",
        |e| matches!(e, SourceEvent::MetricsError { service, .. } if service == "broken"),
    )
    .await;
    let SourceEvent::MetricsError { message, .. } = event else { unreachable!() };
    assert!(message.contains("total query") && message.contains("parse error"), "{message}");
    assert!(message.contains("bad_data"), "{message}");
    wait_for(
        &mut inbox,
        &mut seen,
        limit,
        "an Analysis for orders",
        |e| matches!(e, SourceEvent::Analysis { service, canary, .. } if service == "orders" && canary.requests > 0.0),
    )
    .await;

    let measured = started.elapsed();

    // Prometheus goes away: the source says so and keeps running.
    let stopped = Timestamp::now();
    tokio::task::block_in_place(|| server.stop());
    let event = wait_for(&mut inbox, &mut seen, Duration::from_secs(10), "Disconnected", |e| {
        matches!(e, SourceEvent::Connection { state: ConnectionState::Disconnected { .. }, .. })
    })
    .await;
    let SourceEvent::Connection { source, state: ConnectionState::Disconnected { since, reason } } = event else {
        unreachable!()
    };
    assert_eq!(source, "prometheus");
    assert!(since >= Timestamp(stopped.0 - 1000) && since.since(stopped) < Millis(10_000), "{since:?}");
    assert!(reason.contains(&server.url()), "{reason}");
    assert!(!task.is_finished(), "the source must keep running while Prometheus is down");
    let down_from = seen.len();
    let noticed = started.elapsed();

    // Back on the same storage: Live again, and metrics flow again.
    tokio::task::block_in_place(|| server.restart());
    wait_for(&mut inbox, &mut seen, limit, "Live after the restart", |e| {
        matches!(e, SourceEvent::Connection { state: ConnectionState::Live, .. })
    })
    .await;
    assert!(
        !seen[down_from..].iter().any(|e| matches!(e, SourceEvent::Slo { .. } | SourceEvent::Analysis { .. })),
        "nothing measured is sent while Prometheus is down: {:?}",
        summary(&seen[down_from..])
    );
    let after = seen.len();
    let back = started.elapsed();
    wait_for(&mut inbox, &mut seen, limit, "a burning Slo for orders after the restart", orders_burning).await;
    assert!(seen[after..].iter().any(|e| matches!(e, SourceEvent::Slo { service, .. } if service == "orders")));

    // Throughout: the bad query concerned its own service only.
    assert!(
        !seen.iter().any(|e| matches!(e, SourceEvent::Slo { service, .. } | SourceEvent::Analysis { service, .. } if service == "broken")),
        "broken must never be measured: {:?}",
        summary(&seen)
    );
    assert!(
        !seen.iter().any(|e| matches!(e, SourceEvent::MetricsError { service, .. } if service == "orders")),
        "orders must never get a metrics error: {:?}",
        summary(&seen)
    );
    // One outage: however its reason changed while Prometheus came back,
    // it is dated from when it began.
    let outage: Vec<Timestamp> = seen
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Connection { state: ConnectionState::Disconnected { since: s, .. }, .. } => Some(*s),
            _ => None,
        })
        .collect();
    assert!(outage.iter().all(|s| *s == since), "{:?}", summary(&seen));
    eprintln!(
        "timings: measured {measured:?}, disconnect noticed {:?}, live again {:?}, measured again {:?}",
        noticed - measured,
        back - noticed,
        started.elapsed() - back
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_minutes_of_history_are_not_thirty_days_and_no_series_is_not_health() {
    let Some(tools) = prom::tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("data");
    std::fs::create_dir_all(&storage).expect("storage dir");

    // `fresh` has existed for three minutes, sampled every 5 s: 20 requests/s
    // at 0.5 % errors, a burn of 5 on 99.9 % that, taken for 30 days of
    // history, would exceed the 1d/2h and 3d/6h ticket thresholds (3 and 1).
    // No canary traffic. `ghost` has no series at all.
    let end = Timestamp::now().0 / 1000 / 60 * 60 - 120;
    let mut openmetrics = String::new();
    for k in 0..=36 {
        let (t, s) = (end - 180 + 5 * k, 5.0 * k as f64);
        for (code, per_second) in [("200", 19.9), ("500", 0.1)] {
            openmetrics.push_str(&format!(
                "http_requests_total{{service=\"fresh\",track=\"primary\",code=\"{code}\"}} {} {t}\n",
                per_second * s
            ));
        }
        for le in ["0.1", "+Inf"] {
            openmetrics.push_str(&format!(
                "http_request_duration_seconds_bucket{{service=\"fresh\",track=\"primary\",le=\"{le}\"}} {} {t}\n",
                20.0 * s
            ));
        }
    }
    openmetrics.push_str("# EOF\n");
    prom::backfill(&tools, &openmetrics, &storage);
    let server = tokio::task::block_in_place(|| prom::Prometheus::start(&tools, dir.path(), &storage, &[]));
    let config = parse(&format!(
        r#"
[prometheus]
url = "{url}"

[[service]]
name = "fresh"
stage = "production"
[service.canary]
min_requests = 0

[[service]]
name = "ghost"
stage = "production"
"#,
        url = server.url()
    ));
    let source = source_for(&config);
    let facts = source.facts();
    let now = Timestamp((end + 5) * 1000);
    let events = source.refresh(now).await.expect("Prometheus answers");

    let (info, services) = config_inventory(&config, &server.url());
    let mut state = AppState::new(info.clone(), Keymap::default(), false, 100);
    update(&mut state, now, Msg::Source(SourceEvent::Inventory { backend: info, services }));
    for event in events.iter().cloned() {
        update(&mut state, now, Msg::Source(event));
    }

    // Three minutes are three minutes: every window longer than the data
    // says so, the budget says what it is over, and no rule fires on
    // windows the data does not cover.
    let fresh = prom::slo_pane(&state, "fresh", 140, 8);
    for seen in ["3d: 3 min of data", "over 3 min of 30 d", "last 3 min of 6 h", "NOT ENOUGH DATA"] {
        assert!(fresh.contains(seen), "`{seen}` in the SLO pane:\n{fresh}");
    }
    for unseen in ["TICKET", "PAGE", " OK "] {
        assert!(!fresh.contains(unseen), "no `{unseen}` on three minutes of data:\n{fresh}");
    }
    let slo = |name: &str| state.service(name).and_then(|s| s.slo.clone()).expect("an SLO report");
    let report = slo("fresh");
    assert_eq!(report.coverage, Millis(180_000));
    assert!(report.has_data() && !report.is_judged());
    assert!(report.burns.iter().all(|b| !b.is_covered() && b.covered == Millis(180_000)), "{:?}", report.burns);
    assert_eq!((report.status, report.firing), (SloStatus::Ok, None));
    close(report.budget_left, 1.0 - 5.0, "budget left over the three minutes");

    // No series is not health: the pane names the query that found nothing
    // and shows no numbers, and the gate has no SLO status to judge on.
    let ghost = prom::slo_pane(&state, "ghost", 140, 8);
    assert!(ghost.contains("no SLO data: no series for sum(rate(http_requests_total{service=\"ghost\""), "{ghost}");
    for unseen in ["SLI", "budget", "100", " OK "] {
        assert!(!ghost.contains(unseen), "no `{unseen}` without data:\n{ghost}");
    }
    assert_eq!(facts.gate("ghost").1, None, "no SLO status without data");
    assert!(!slo("ghost").has_data());

    // A canary without a single request has no success rate.
    let canary = events
        .iter()
        .find_map(|e| match e {
            SourceEvent::Analysis { service, canary, .. } if service == "fresh" => Some(*canary),
            _ => None,
        })
        .expect("an analysis for fresh");
    assert_eq!(canary.requests, 0.0);
    assert!(canary.success_pct.is_nan(), "0 requests is no success rate, not {} %", canary.success_pct);
    let (verdict, _) = facts.gate("fresh");
    assert!(matches!(verdict, Some(Verdict::NotEnoughData(_))), "{verdict:?}");
    drop(server);
}

#[tokio::test]
async fn without_a_workload_backend_the_inventory_comes_from_the_config_and_actions_say_so() {
    let config = parse(
        r#"
[prometheus]
url = "http://127.0.0.1:9"
[canary]
min_requests = 50
[[service]]
name = "payments"
stage = "mission-critical"
owner = "payments-team"
[service.canary]
steps = [1, 10, 50]
[[service]]
name = "checkout"
stage = "production"
depends_on = ["payments"]
"#,
    );
    let (info, services) = config_inventory(&config, "http://127.0.0.1:9");
    assert_eq!((info.kind.as_str(), info.context.as_str(), info.simulated), ("config", "http://127.0.0.1:9", false));
    assert_eq!(info.scenario, None);
    let payments = &services[0];
    assert_eq!((payments.name.as_str(), payments.stage), ("payments", Stage::MissionCritical));
    assert_eq!(payments.owner.as_deref(), Some("payments-team"));
    assert_eq!(payments.plan.steps(), &[1, 10, 50]);
    assert_eq!(payments.thresholds.min_requests, 50.0);
    assert_eq!(services[1].depends_on, vec!["payments".to_string()]);
    assert_eq!(services[1].plan, CanaryPlan::default());

    let executor = Executor::new(NoWorkloads, false, AuditLog::disabled(), Clock::system());
    for op in [Op::Deploy { image: "shop/checkout:2".into() }, Op::Promote { full: false }, Op::Rollback] {
        let request =
            Request { id: 7, service: "checkout".into(), op, confirmed: true, typed_name: None, asked_token: None };
        match executor.execute(request).await {
            ExecEvent::Failed { error, .. } => {
                assert!(error.contains("no workload backend configured: add [kubernetes] or run --demo"), "{error}")
            }
            other => panic!("expected a clear failure, got {other:?}"),
        }
    }
    assert_eq!(executor.applied_counter().load(std::sync::atomic::Ordering::SeqCst), 0);

    // An unreachable Prometheus is a connection problem, not a query one.
    let source = source_for(&config);
    match source.refresh(Timestamp::now()).await {
        Err(prometheus::PromError::Unreachable(why)) => assert!(why.contains("127.0.0.1:9"), "{why}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}
