//! The typed, owned messages that cross task boundaries: what sources
//! report, what the executor is asked to do and what it answers.
//!
//! Sources (simulated fleet, Kubernetes, Docker, Prometheus) never touch the
//! terminal or the state; they send these, and `state::update` folds them in.

use crate::domain::canary::{CanaryPlan, CanaryThresholds, TrackMetrics};
use crate::domain::logs::LogLine;
use crate::domain::rollout::RolloutStatus;
use crate::domain::slo::SloReport;
use crate::domain::{Stage, Timestamp};
use serde::{Deserialize, Serialize};

/// Which world the screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `sim`, `kubernetes`, …
    pub kind: String,
    /// Context or cluster shown in the header, e.g. `prod-eu/shop`.
    pub context: String,
    /// Simulated data is labelled as such on every screen.
    pub simulated: bool,
    pub scenario: Option<String>,
}

/// A service as its source knows it, before any live data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub name: String,
    pub stage: Stage,
    pub owner: Option<String>,
    pub depends_on: Vec<String>,
    pub plan: CanaryPlan,
    pub thresholds: CanaryThresholds,
}

/// The traffic split between a service's primary and canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub primary_image: String,
    /// None when no canary is deployed.
    pub canary_image: Option<String>,
    /// Percent of traffic the split sends to the canary.
    pub target_weight: u8,
    /// Percent of requests the canary really served, where a source can tell.
    pub actual_weight: Option<f64>,
    /// How the weight is realised, e.g. "1 of 4 pods" for a replica-ratio canary.
    pub note: Option<String>,
}

impl Traffic {
    pub fn canary_live(&self) -> bool {
        self.canary_image.is_some() && self.target_weight > 0
    }
}

/// A build of a service's image, as the build view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildStatus {
    pub step: u32,
    pub of: u32,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    /// The tag produced, once it succeeded.
    pub tag: Option<String>,
    pub error: Option<String>,
    /// The newest output lines, sanitised.
    pub output: Vec<String>,
}

impl BuildStatus {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionState {
    Connecting,
    Live,
    Disconnected { since: Timestamp, reason: String },
}

/// One change to the world, from the audit log, the sim's history or the
/// cluster's events: the team's shared timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub at: Timestamp,
    pub service: String,
    pub action: String,
    pub user: String,
    /// "1.4.2 → canary 1.5.0 at 5 %"
    pub summary: String,
}

/// An action the user may not take on a service, and why (e.g. RBAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    /// `Op::name` of the action.
    pub op: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    /// The services a source knows about; replaces the previous inventory.
    Inventory {
        backend: BackendInfo,
        services: Vec<ServiceInfo>,
    },
    Rollout {
        service: String,
        status: RolloutStatus,
    },
    Traffic {
        service: String,
        traffic: Traffic,
    },
    /// Canary and primary measured over the same recent interval.
    Analysis {
        service: String,
        primary: TrackMetrics,
        canary: TrackMetrics,
    },
    Slo {
        service: String,
        report: SloReport,
    },
    /// A metrics problem that concerns one service only (e.g. bad PromQL).
    MetricsError {
        service: String,
        message: String,
    },
    Logs {
        service: String,
        lines: Vec<LogLine>,
    },
    Build {
        service: String,
        build: BuildStatus,
    },
    Connection {
        source: String,
        state: ConnectionState,
    },
    Change(ChangeRecord),
    /// The actions the backend's access rules deny on a service; replaces
    /// what was said before (empty: everything allowed).
    Access {
        service: String,
        denied: Vec<Denied>,
    },
}

/// A change someone asked for. Carries the answers given so far, so the
/// executor can re-check policy on every round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub service: String,
    pub op: Op,
    /// The y/n question was answered yes.
    pub confirmed: bool,
    /// What the user typed when asked for the service's name.
    pub typed_name: Option<String>,
    /// The facts' token when the question was asked: an answer given to
    /// a world that has changed since is not an answer, and is asked again.
    #[serde(default)]
    pub asked_token: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum Op {
    Rebuild,
    Deploy {
        image: String,
    },
    /// One step, or (`full`) all the way.
    Promote {
        full: bool,
    },
    Rollback,
    /// A new instance of the same version (a dev container's restart).
    Restart,
    /// Stop a dev container.
    Stop,
}

/// Every `Op::name`: what a backend with nothing to act on denies.
pub const OP_NAMES: [&str; 7] = ["rebuild", "deploy", "promote", "promote-full", "rollback", "restart", "stop"];

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Rebuild => "rebuild",
            Op::Deploy { .. } => "deploy",
            Op::Promote { full: false } => "promote",
            Op::Promote { full: true } => "promote-full",
            Op::Rollback => "rollback",
            Op::Restart => "restart",
            Op::Stop => "stop",
        }
    }
}

/// What the executor needs from the user before it goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Question {
    YesNo(String),
    /// The mission-critical gate: type the service's name to force.
    TypeName {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecEvent {
    Ask { request: Request, question: Question },
    Done { request: Request, summary: String },
    Refused { request: Request, reason: String },
    Failed { request: Request, error: String },
}
