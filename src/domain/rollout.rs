//! Rollout status of a service's primary workload, judged the way
//! `kubectl rollout status` judges a Deployment, plus its revision history.

use super::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutPhase {
    /// Every replica runs the current template and is available.
    Complete,
    /// The controller has not yet observed the newest spec, or replicas are
    /// still being replaced.
    Progressing,
    /// The progress deadline passed.
    Failed,
    /// The rollout is paused on purpose.
    Paused,
}

impl RolloutPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutPhase::Complete => "complete",
            RolloutPhase::Progressing => "progressing",
            RolloutPhase::Failed => "failed",
            RolloutPhase::Paused => "paused",
        }
    }
}

/// The raw counters a workload reports, as a Deployment's status has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReplicaCounts {
    /// `spec.replicas`
    pub desired: u32,
    /// `status.replicas`: every pod, old and new.
    pub total: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub number: u64,
    pub image: String,
    pub created: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub kind: String,
    pub ok: bool,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutStatus {
    pub phase: RolloutPhase,
    pub generation: u64,
    pub observed_generation: u64,
    pub replicas: ReplicaCounts,
    pub image: String,
    /// Newest first.
    pub revisions: Vec<Revision>,
    pub conditions: Vec<Condition>,
}

impl RolloutStatus {
    pub fn generation_observed(&self) -> bool {
        self.observed_generation >= self.generation
    }

    pub fn current_revision(&self) -> Option<&Revision> {
        self.revisions.first()
    }

    /// What `kubectl rollout status` would print about this rollout.
    pub fn explain(&self) -> String {
        let r = &self.replicas;
        if self.phase == RolloutPhase::Paused {
            return "rollout is paused".into();
        }
        if self.phase == RolloutPhase::Failed {
            // In the words of whatever failed it: a Deployment's missed
            // progress deadline, a container the engine killed.
            return match self.conditions.iter().find(|c| !c.ok) {
                Some(c) if c.reason == "ProgressDeadlineExceeded" || (c.reason.is_empty() && c.message.is_empty()) => {
                    "progress deadline exceeded".into()
                }
                Some(c) if c.message.is_empty() => c.reason.clone(),
                Some(c) => c.message.clone(),
                None => "progress deadline exceeded".into(),
            };
        }
        if !self.generation_observed() {
            return "waiting for the controller to observe the new spec".into();
        }
        if r.updated < r.desired {
            return format!("{} of {} new replicas updated", r.updated, r.desired);
        }
        if r.total > r.updated {
            return format!("{} old replicas pending termination", r.total - r.updated);
        }
        if r.available < r.updated {
            return format!("{} of {} updated replicas available", r.available, r.updated);
        }
        "successfully rolled out".into()
    }
}

/// Judges a rollout exactly as `kubectl rollout status` does for a Deployment.
pub fn phase(
    generation: u64,
    observed_generation: u64,
    replicas: ReplicaCounts,
    paused: bool,
    progress_deadline_exceeded: bool,
) -> RolloutPhase {
    if paused {
        return RolloutPhase::Paused;
    }
    if observed_generation < generation {
        return RolloutPhase::Progressing;
    }
    if progress_deadline_exceeded {
        return RolloutPhase::Failed;
    }
    let r = replicas;
    if r.updated < r.desired || r.total > r.updated || r.available < r.updated {
        return RolloutPhase::Progressing;
    }
    RolloutPhase::Complete
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(desired: u32, total: u32, updated: u32, available: u32) -> ReplicaCounts {
        ReplicaCounts { desired, total, updated, ready: available, available }
    }

    #[test]
    fn a_failed_rollout_is_explained_in_the_words_of_what_failed_it() {
        let failed = |reason: &str, message: &str| RolloutStatus {
            phase: RolloutPhase::Failed,
            generation: 2,
            observed_generation: 2,
            replicas: counts(1, 1, 0, 0),
            image: "shop/web:1".into(),
            revisions: Vec::new(),
            conditions: vec![Condition {
                kind: "Progressing".into(),
                ok: false,
                reason: reason.into(),
                message: message.into(),
            }],
        };
        let deadline = failed("ProgressDeadlineExceeded", "ReplicaSet \"web-1\" has timed out progressing.");
        assert_eq!(deadline.explain(), "progress deadline exceeded");
        let killed = failed("Killed", "exited with code 137 (killed) at 12:00:01");
        assert_eq!(killed.explain(), "exited with code 137 (killed) at 12:00:01", "Docker's words, not Kubernetes'");
    }

    #[test]
    fn follows_kubectl_rollout_status() {
        assert_eq!(phase(2, 1, counts(3, 3, 3, 3), false, false), RolloutPhase::Progressing);
        assert_eq!(phase(2, 2, counts(3, 3, 3, 3), false, true), RolloutPhase::Failed);
        assert_eq!(phase(2, 2, counts(3, 4, 2, 3), false, false), RolloutPhase::Progressing);
        assert_eq!(phase(2, 2, counts(3, 4, 3, 3), false, false), RolloutPhase::Progressing);
        assert_eq!(phase(2, 2, counts(3, 3, 3, 2), false, false), RolloutPhase::Progressing);
        assert_eq!(phase(2, 2, counts(3, 3, 3, 3), false, false), RolloutPhase::Complete);
        assert_eq!(phase(2, 1, counts(3, 3, 3, 3), true, false), RolloutPhase::Paused);
    }
}
