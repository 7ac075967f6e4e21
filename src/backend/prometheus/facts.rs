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
