//! The mission-critical gate on a cluster with a real Prometheus, on every
//! path: a canary that fails its analysis (97 % success against a 99 %
//! minimum) is refused by `cockpit promote --yes` and by the `p` key alike,
//! and `status --json` shows the same verdict and SLO the screen does.

mod common;
#[path = "common/prometheus.rs"]
mod prom;

use cockpit::action::Key;
use cockpit::audit::AuditLog;
use cockpit::backend::prometheus::Source;
use cockpit::compose::{Runtime, Settings};
use cockpit::config::Config;
use cockpit::devtools::fake_apiserver::{Config as ServerConfig, ControllerConfig, FakeApiServer};
use cockpit::domain::Timestamp;
use cockpit::domain::canary::{Verdict, analyse};
use cockpit::event::SourceEvent;
use cockpit::headless::{self, Command};
use cockpit::state::{Modal, PromptPurpose};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

/// checkout's primary at 50 requests/s with 0.1 % errors, its canary at
/// 10 requests/s with 3 % errors; every request within 100 ms.
fn metrics(seconds: f64) -> String {
    let mut body = String::new();
    for (track, code, per_second) in
        [("primary", "200", 49.95), ("primary", "500", 0.05), ("canary", "200", 9.7), ("canary", "500", 0.3)]
    {
        body.push_str(&format!(
            "http_requests_total{{service=\"checkout\",track=\"{track}\",code=\"{code}\"}} {}\n",
            per_second * seconds
        ));
    }
    for (track, per_second) in [("primary", 50.0), ("canary", 10.0)] {
        for le in ["0.1", "+Inf"] {
            body.push_str(&format!(
                "http_request_duration_seconds_bucket{{service=\"checkout\",track=\"{track}\",le=\"{le}\"}} {}\n",
                per_second * seconds
            ));
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_its_analysis_is_refused_on_every_path() {
    let Some(tools) = prom::tools() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let born = Instant::now();
    let endpoint = prom::MetricsEndpoint::serve(move || metrics(born.elapsed().as_secs_f64())).await;
    let storage = dir.path().join("data");
    let prometheus =
        tokio::task::block_in_place(|| prom::Prometheus::start(&tools, dir.path(), &storage, &[endpoint.addr]));

    let controller = ControllerConfig { log_interval: Duration::from_secs(3600), ..ControllerConfig::default() };
    let server = FakeApiServer::start(ServerConfig { controller: Some(controller), ..ServerConfig::default() })
        .await
        .expect("the fake API server starts");
    server.seed(0, 0).expect("the shop team: checkout's canary at 10 %");
    let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
    let config: Config = toml::from_str(&format!(
        "[kubernetes]\nnamespaces = [\"shop\"]\n\n[prometheus]\nurl = \"{}\"\nrefresh = \"1s\"\n\
         analysis_interval = \"20s\"\n\n[[service]]\nname = \"checkout\"\nstage = \"mission-critical\"\n",
        prometheus.url()
    ))
    .expect("the test config");
    let settings = |audit: &str| {
        let mut settings = Settings::new(config.clone());
        settings.kubeconfig = Some(kubeconfig.clone());
        settings.audit_log = Some(dir.path().join(audit));
        settings.user = "alice".into();
        settings
    };

    // Wait until Prometheus has enough of the canary to judge it.
    let source = {
        let prometheus = config.prometheus.as_ref().expect("[prometheus]");
        Source::new(prometheus, &config.services, &config.canary).expect("a source")
    };
    let until = Instant::now() + DEADLINE;
    let thresholds = config.services[0].canary.resolve(&config.canary).thresholds();
    loop {
        let events = source.refresh(Timestamp::now()).await.unwrap_or_default();
        let judged = events.iter().any(|e| match e {
            SourceEvent::Analysis { primary, canary, .. } => analyse(canary, primary, &thresholds).is_failing(),
            _ => false,
        });
        if judged {
            break;
        }
        assert!(Instant::now() < until, "Prometheus never had enough of the canary:\n{}", prometheus.log_text());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Headless: refused, audited as refused, not forced; the route untouched.
    let runtime = Runtime::compose(settings("headless.jsonl")).expect("composes");
    let promote = Command::Promote { service: "checkout".into(), full: false, yes: true, force: None };
    assert_eq!(headless::run(runtime, promote).await, headless::exit::NOT_DONE);
    let entries = AuditLog::read(&dir.path().join("headless.jsonl")).expect("audited");
    let refused = entries.last().expect("an entry");
    assert_eq!((refused.outcome.as_str(), refused.forced), ("refused", false));
    assert!(refused.detail.contains("canary failing (canary success 97.00 % < 99 %"), "{}", refused.detail);

    // Status: the same figures the screen shows.
    let mut runtime = Runtime::compose(settings("status.jsonl")).expect("composes");
    runtime.sync(DEADLINE).await.expect("syncs");
    let report = headless::status(&runtime.state);
    let checkout = report.services.iter().find(|s| s.name == "checkout").expect("checkout");
    let canary = checkout.canary.as_ref().expect("the canary in flight");
    assert_eq!((canary.weight, canary.verdict.as_deref()), (10, Some("failing")), "{canary:?}");
    assert!(checkout.slo.is_some(), "measured: {checkout:?}");

    // The key: the same refusal, asking for the typed name.
    let mut runtime = Runtime::compose(settings("tui.jsonl")).expect("composes");
    let mut pressed = false;
    let reason = common::drive(&mut runtime, DEADLINE, |state, press| {
        if let Some(Modal::Prompt { purpose: PromptPurpose::TypeName { reason, .. }, .. }) = &state.modal {
            return Some(reason.clone());
        }
        let measured = state.service("checkout").is_some_and(|s| {
            s.traffic.is_some() && matches!(s.live_verdict(), Some(Verdict::Failing(_))) && s.slo.is_some()
        });
        if measured && !pressed {
            state.selected = state.services.iter().position(|s| s.info.name == "checkout")?;
            press(Key::char('p'));
            pressed = true;
        }
        None
    })
    .await;
    assert!(reason.contains("canary failing (canary success 97.00 % < 99 %"), "{reason}");
    // Nothing was promoted by any path: the route still sends 10 % to the canary.
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().expect("URL"))).expect("client");
    let routes: kube::Api<gateway_api::apis::standard::httproutes::HttpRoute> = kube::Api::namespaced(client, "shop");
    let route = routes.get("checkout").await.expect("the route");
    let weights: Vec<i32> = route.spec.rules.unwrap_or_default()[0]
        .backend_refs
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b.weight)
        .collect();
    assert_eq!(weights, [90, 10]);
}
