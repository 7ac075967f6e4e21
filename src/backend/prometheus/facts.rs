//! `MetricsFacts`: the latest SLO status and canary verdict per service,
//! as measured in Prometheus, shared between the source task that writes
//! them and whoever decides policy on them (the mission-critical gate).
//!
//! The lock is a std mutex held only to copy a value in or out, never
//! across an await.

use crate::domain::Timestamp;
use crate::domain::canary::Verdict;
use crate::domain::slo::SloStatus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the metrics said about one service at its last good refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceFacts {
    pub slo_status: Option<SloStatus>,
    /// The canary analysis, for services whose stage ships canaries.
    pub verdict: Option<Verdict>,
    /// When the metrics were evaluated (clock time).
    pub at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct MetricsFacts {
    inner: Arc<Mutex<HashMap<String, ServiceFacts>>>,
}

impl MetricsFacts {
    pub fn new() -> MetricsFacts {
        MetricsFacts::default()
    }

    /// The facts the mission-critical gate judges on: the canary verdict and
    /// the SLO status; both `None` until the service was first measured.
    pub fn gate(&self, service: &str) -> (Option<Verdict>, Option<SloStatus>) {
        match self.lock().get(service) {
            Some(facts) => (facts.verdict.clone(), facts.slo_status),
            None => (None, None),
        }
    }

    pub fn get(&self, service: &str) -> Option<ServiceFacts> {
        self.lock().get(service).cloned()
    }

    /// Replaces a service's facts (the source task calls this).
    pub fn record(&self, service: &str, facts: ServiceFacts) {
        self.lock().insert(service.to_owned(), facts);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, ServiceFacts>> {
        // Each write replaces one whole entry, so a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A workload backend whose gate inputs (the canary verdict and the SLO
/// status a mission-critical promotion is judged on) come from the metrics
/// source only, never from the workload backend's guess.
///
/// Fails closed: without a metrics source, before the first measurement,
/// or once the last one is older than `stale_after`, both inputs are
/// missing and `Facts::metrics_gap` says why, so the gate stays shut.
#[derive(Debug, Clone)]
pub struct GatedByMetrics<W> {
    pub workloads: W,
    /// `None`: no metrics source is configured.
    pub metrics: Option<MetricsFacts>,
    pub clock: crate::clock::Clock,
    /// Measurements older than this (clock time) are not judged on.
    pub stale_after: crate::domain::Millis,
}

/// The gap when no metrics source is configured at all.
pub const NO_METRICS_SOURCE: &str = "no metrics source configured: add [prometheus] to cockpit.toml";

impl<W> GatedByMetrics<W> {
    /// Replaces the gate inputs of `facts` with what the metrics say now.
    pub fn gate(&self, service: &str, facts: &mut crate::backend::Facts) {
        facts.verdict = None;
        facts.slo_status = None;
        let Some(metrics) = &self.metrics else {
            facts.metrics_gap = Some(NO_METRICS_SOURCE.into());
            return;
        };
        let Some(measured) = metrics.get(service) else {
            facts.metrics_gap = Some(format!("Prometheus has not measured {service} yet"));
            return;
        };
        let age = self.clock.now().since(measured.at);
        if age > self.stale_after {
            facts.metrics_gap =
                Some(format!("the last measurement of {service} is {age} old (stale after {})", self.stale_after));
            return;
        }
        facts.metrics_gap = None;
        facts.slo_status = measured.slo_status;
        if facts.slo_status.is_none() {
            facts.metrics_gap =
                Some(format!("Prometheus has too little SLO data for {service} to judge any alert rule"));
        }
        if facts.canary_weight > 0 {
            facts.verdict = measured.verdict;
        }
    }
}

impl<W: crate::backend::Workloads> crate::backend::Workloads for GatedByMetrics<W> {
    async fn facts(&self, service: &str) -> Result<crate::backend::Facts, crate::backend::BackendError> {
        let mut facts = self.workloads.facts(service).await?;
        self.gate(service, &mut facts);
        Ok(facts)
    }

    async fn apply(
        &self,
        service: &str,
        plan: &crate::backend::Plan,
        context: &crate::backend::ActionContext,
    ) -> Result<crate::backend::Change, crate::backend::BackendError> {
        self.workloads.apply(service, plan, context).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sim::{SimBackend, SimFleet, SimOptions};
    use crate::backend::{Facts, Workloads};
    use crate::config::Scenario;
    use crate::event::{Op, Question, Request};
    use crate::executor::policy::{Decision, decide};

    #[tokio::test]
    async fn a_failing_measured_canary_closes_the_gate_over_a_healthy_backend() {
        // The calm fleet has no paging service: on its own facts, payments'
        // canary would promote. Prometheus says the canary fails.
        let sim = SimBackend::new(SimFleet::new(SimOptions { scenario: Scenario::Calm, ..SimOptions::default() }));
        let context =
            crate::backend::ActionContext { user: "t".into(), token: sim.facts("payments").await.unwrap().token };
        let plan = crate::backend::Plan::StartCanary { image: "shop/payments:9.9.9".into(), weight: 5 };
        sim.apply("payments", &plan, &context).await.unwrap();
        let metrics = MetricsFacts::new();
        metrics.record(
            "payments",
            ServiceFacts {
                slo_status: Some(SloStatus::Ok),
                verdict: Some(Verdict::Failing("canary success 97.1 % < 99 %".into())),
                at: Timestamp(0),
            },
        );
        let clock = crate::clock::Clock::starting_at(Timestamp(0), 1.0);
        let gated = GatedByMetrics {
            workloads: sim,
            metrics: Some(metrics),
            clock,
            stale_after: crate::domain::Millis(60_000),
        };
        let facts: Facts = gated.facts("payments").await.unwrap();
        let request = Request {
            id: 1,
            service: "payments".into(),
            op: Op::Promote { full: false },
            confirmed: true,
            typed_name: None,
            asked_token: None,
        };
        match decide(&request, &facts, false) {
            Decision::Ask(Question::TypeName { reason }) => assert!(reason.contains("97.1 %"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
