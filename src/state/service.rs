//! One service as the screen knows it: its identity and stage, and the last
//! known rollout, traffic, analysis, SLO, build and logs, each replaced
//! whole when its source reports.

use crate::action::Action;
use crate::domain::canary::{TrackMetrics, Verdict, analyse_after};
use crate::domain::logs::LogBuffer;
use crate::domain::rollout::RolloutStatus;
use crate::domain::slo::{SloReport, SloStatus};
use crate::event::{BuildStatus, Denied, ServiceInfo, Traffic};

#[derive(Debug, Clone)]
pub struct ServiceView {
    pub info: ServiceInfo,
    pub rollout: Option<RolloutStatus>,
    pub traffic: Option<Traffic>,
    /// Primary and canary over the same interval.
    pub analysis: Option<(TrackMetrics, TrackMetrics)>,
    pub verdict: Option<Verdict>,
    pub slo: Option<SloReport>,
    /// Why metrics are missing for this service only (e.g. bad PromQL).
    pub metrics_error: Option<String>,
    pub build: Option<BuildStatus>,
    /// The tag of the newest successful build, offered by deploy.
    pub last_built: Option<String>,
    /// Actions the backend's access rules deny here (e.g. RBAC).
    pub denied: Vec<Denied>,
    pub logs: LogBuffer,
}

impl ServiceView {
    pub fn new(info: ServiceInfo, logs: LogBuffer) -> Self {
        ServiceView {
            info,
            rollout: None,
            traffic: None,
            analysis: None,
            verdict: None,
            slo: None,
            metrics_error: None,
            build: None,
            last_built: None,
            denied: Vec::new(),
            logs,
        }
    }

    /// Why `action` may not be taken on this service, if the backend said so.
    pub fn denied_reason(&self, action: Action) -> Option<&str> {
        let ops = action.ops();
        self.denied.iter().find(|d| ops.contains(&d.op.as_str())).map(|d| d.reason.as_str())
    }

    /// The SLO status as measured; `None` (unknown) without a report, or
    /// with too little data to judge any alert rule (no series, or less
    /// than the shortest rule's long window): no data is not health.
    pub fn slo_status(&self) -> Option<SloStatus> {
        self.slo.as_ref().filter(|r| r.is_judged()).map(|r| r.status)
    }

    /// The canary weight in percent, 0 when no canary is live.
    pub fn canary_weight(&self) -> u8 {
        self.traffic.as_ref().filter(|t| t.canary_live()).map_or(0, |t| t.target_weight)
    }

    /// Percent of requests the canary really served: what the traffic
    /// source measured, else the canary's share of the analysed requests
    /// (a cluster's split says only what was asked for).
    pub fn actual_weight(&self) -> Option<f64> {
        let traffic = self.traffic.as_ref().filter(|t| t.canary_live())?;
        traffic.actual_weight.or_else(|| {
            let (primary, canary) = self.analysis.as_ref()?;
            let total = primary.requests + canary.requests;
            (total > 0.0).then(|| canary.requests / total * 100.0)
        })
    }

    /// The verdict counts only while a canary is live.
    pub fn live_verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref().filter(|_| self.canary_weight() > 0)
    }

    pub fn set_analysis(&mut self, primary: TrackMetrics, canary: TrackMetrics) {
        self.verdict = Some(analyse_after(self.verdict.as_ref(), &canary, &primary, &self.info.thresholds));
        self.analysis = Some((primary, canary));
    }

    /// What deploy offers: the newest build, else the running image.
    pub fn deploy_suggestion(&self) -> String {
        if let Some(tag) = &self.last_built {
            return tag.clone();
        }
        if let Some(traffic) = &self.traffic {
            return traffic.canary_image.clone().unwrap_or_else(|| traffic.primary_image.clone());
        }
        self.rollout.as_ref().map(|r| r.image.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod actual_weight_tests {
    use super::*;
    use crate::domain::Stage;

    fn view() -> ServiceView {
        let info = ServiceInfo {
            name: "checkout".into(),
            stage: Stage::Production,
            owner: None,
            depends_on: Vec::new(),
            plan: Default::default(),
            thresholds: crate::config::CanaryConfig::default().thresholds(),
        };
        ServiceView::new(info, LogBuffer::new(10))
    }

    #[test]
    fn the_actual_share_comes_from_the_source_else_from_the_analysed_requests() {
        let mut service = view();
        let traffic = Traffic {
            primary_image: "a".into(),
            canary_image: Some("b".into()),
            target_weight: 25,
            actual_weight: None,
            note: None,
        };
        service.traffic = Some(traffic.clone());
        assert_eq!(service.actual_weight(), None, "no source, no metrics: n/a");
        let track = |requests| TrackMetrics { requests, success_pct: 100.0, p99_ms: 10.0 };
        service.set_analysis(track(300.0), track(100.0));
        assert_eq!(service.actual_weight(), Some(25.0));
        service.traffic = Some(Traffic { actual_weight: Some(24.8), ..traffic.clone() });
        assert_eq!(service.actual_weight(), Some(24.8), "a measured split wins");
        service.traffic = Some(Traffic { canary_image: None, ..traffic });
        assert_eq!(service.actual_weight(), None, "no canary live");
    }
}
