//! Full-frame render at 200×60 with 1,000 services and 50,000 buffered log
//! lines on the selected service. Target: ≤ 2 ms median.

use cockpit::action::Keymap;
use cockpit::domain::canary::{CanaryPlan, CanaryThresholds, TrackMetrics};
use cockpit::domain::logs::{LogLine, Track};
use cockpit::domain::rollout::{Condition, ReplicaCounts, Revision, RolloutPhase, RolloutStatus};
use cockpit::domain::slo::{SloSpec, evaluate};
use cockpit::domain::{Stage, Timestamp};
use cockpit::event::{BackendInfo, ServiceInfo, SourceEvent, Traffic};
use cockpit::state::{AppState, Msg, update};
use cockpit::theme::Theme;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::sync::Arc;

fn fleet_state() -> AppState {
    let now = Timestamp(1_795_694_400_000);
    let info = BackendInfo { kind: "sim".into(), context: "bench".into(), simulated: true, scenario: None };
    let mut state = AppState::new(info.clone(), Keymap::default(), false, 50_000);
    let services: Vec<ServiceInfo> = (0..1000)
        .map(|i| ServiceInfo {
            name: format!("service-{i:04}"),
            stage: Stage::ALL[i % 3],
            owner: None,
            depends_on: if i > 0 { vec![format!("service-{:04}", i - 1)] } else { vec![] },
            plan: CanaryPlan::default(),
            thresholds: CanaryThresholds::default(),
        })
        .collect();
    let send = |state: &mut AppState, event| {
        update(state, now, Msg::Source(event));
    };
    send(&mut state, SourceEvent::Inventory { backend: info, services: services.clone() });
    for (i, s) in services.iter().enumerate() {
        let image = format!("shop/{}:1.{i}.0", s.name);
        let revisions = (0..5)
            .map(|r| Revision { number: 10 - r, image: format!("shop/{}:1.{i}.{r}", s.name), created: now })
            .collect();
        let status = RolloutStatus {
            phase: if i % 7 == 0 { RolloutPhase::Progressing } else { RolloutPhase::Complete },
            generation: 3,
            observed_generation: 3,
            replicas: ReplicaCounts { desired: 4, total: 4, updated: 3, ready: 4, available: 4 },
            image: image.clone(),
            revisions,
            conditions: vec![Condition {
                kind: "Available".into(),
                ok: true,
                reason: "x".into(),
                message: String::new(),
            }],
        };
        send(&mut state, SourceEvent::Rollout { service: s.name.clone(), status });
        send(
            &mut state,
            SourceEvent::Traffic {
                service: s.name.clone(),
                traffic: Traffic {
                    primary_image: image.clone(),
                    canary_image: Some(format!("{image}-rc")),
                    target_weight: 25,
                    actual_weight: Some(24.6),
                    note: None,
                },
            },
        );
        let m = TrackMetrics { requests: 1000.0, success_pct: 99.9, p99_ms: 120.0 };
        send(&mut state, SourceEvent::Analysis { service: s.name.clone(), primary: m, canary: m });
        let history: Vec<f64> = (0..360).map(|k| 0.0005 + (k % 17) as f64 * 0.0001).collect();
        let report = evaluate(SloSpec::default(), 0.0004, |_| Some(0.0008), history);
        send(&mut state, SourceEvent::Slo { service: s.name.clone(), report });
    }
    // 50,000 lines on the service the screen shows.
    let selected = state.selected_service().map(|s| s.info.name.clone()).unwrap_or_default();
    let pods: Vec<Arc<str>> = (0..8).map(|p| Arc::from(format!("{selected}-7d9f8c6b5-pod{p}"))).collect();
    let lines: Vec<LogLine> = (0..50_000)
        .map(|k| {
            let raw = if k % 3 == 0 {
                format!(r#"{{"level":"info","msg":"request served","path":"/api/cart","latency_ms":{k}}}"#)
            } else {
                format!("INFO GET /api/items/{k} 200 12ms")
            };
            let track = if k % 5 == 0 { Track::Canary } else { Track::Primary };
            LogLine::from_raw(now, pods[k % 8].clone(), track, raw.as_bytes(), 4096)
        })
        .collect();
    send(&mut state, SourceEvent::Logs { service: selected, lines });
    state.width = 200;
    state.height = 60;
    state
}

fn render(c: &mut Criterion) {
    let state = fleet_state();
    let theme = Theme::default();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    c.bench_function("render 200x60, 1000 services, 50k log lines", |b| {
        b.iter(|| {
            terminal.draw(|f| cockpit::ui::draw(f, &state, &theme)).expect("draw");
        })
    });
    let mut searching = state.clone();
    let buffer = searching.selected_service().map(|s| s.logs.clone()).expect("a service");
    searching.log_view.set_search("items/4", &buffer);
    searching.log_view.anchor = None;
    c.bench_function("render 200x60, search highlights on", |b| {
        b.iter(|| {
            terminal.draw(|f| cockpit::ui::draw(f, &searching, &theme)).expect("draw");
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
