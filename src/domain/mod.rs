//! The domain: what a service, a rollout, a canary, an SLO and a log line are,
//! and the maths on them. Shared by every backend (the simulated fleet today,
//! Kubernetes and Prometheus tomorrow) so that the screen means the same thing
//! whatever feeds it. Nothing here does I/O, spawns tasks or knows the terminal.

pub mod canary;
pub mod logs;
pub mod rollout;
pub mod slo;
pub mod stage;
pub mod time;

pub use canary::{CanaryPlan, CanaryThresholds, PlanPosition, TrackMetrics, Verdict};
pub use logs::{Level, LogBuffer, LogLine, Track};
pub use rollout::{Revision, RolloutPhase, RolloutStatus};
pub use slo::{SloReport, SloSpec, SloStatus};
pub use stage::Stage;
pub use time::{Millis, Timestamp};
