//! One service as the screen knows it: its identity and stage, and the last
//! known rollout, traffic, analysis, SLO, build and logs, each replaced
//! whole when its source reports.

use crate::action::Action;
use crate::domain::canary::{TrackMetrics, Verdict, analyse};
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

    pub fn slo_status(&self) -> Option<SloStatus> {
        self.slo.as_ref().map(|r| r.status)
    }

    /// The canary weight in percent, 0 when no canary is live.
    pub fn canary_weight(&self) -> u8 {
        self.traffic.as_ref().filter(|t| t.canary_live()).map_or(0, |t| t.target_weight)
    }

    /// The verdict counts only while a canary is live.
    pub fn live_verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref().filter(|_| self.canary_weight() > 0)
    }

    pub fn set_analysis(&mut self, primary: TrackMetrics, canary: TrackMetrics) {
        self.verdict = Some(analyse(&canary, &primary, &self.info.thresholds));
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
