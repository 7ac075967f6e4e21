//! A simulated Deployment: pods replaced over time with maxSurge 25 % and
//! maxUnavailable 0, revisions, generation and the progress deadline,
//! reported through the same `rollout::phase` the Kubernetes backend uses.

use super::rng::Rng;
use crate::domain::Timestamp;
use crate::domain::rollout::{self, Condition, ReplicaCounts, Revision, RolloutStatus};
use crate::domain::time::{Millis, SECOND};
use std::sync::Arc;

/// How long a rollout may go without progress before it is failed.
pub const PROGRESS_DEADLINE: Millis = Millis(60 * SECOND.0);
/// Images whose tag contains this never become ready: for demos of a failed rollout.
pub const BROKEN_MARKER: &str = "broken";

#[derive(Debug, Clone)]
pub struct Pod {
    pub name: Arc<str>,
    pub image: String,
    pub ready_at: Option<Timestamp>,
    pub terminating_since: Option<Timestamp>,
}

impl Pod {
    pub fn ready(&self, now: Timestamp) -> bool {
        self.terminating_since.is_none() && self.ready_at.is_some_and(|t| t <= now)
    }
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub image: String,
    pub desired: u32,
    pub generation: u64,
    pub observed_generation: u64,
    observe_at: Timestamp,
    /// Newest first.
    pub revisions: Vec<Revision>,
    pub pods: Vec<Pod>,
    last_progress: Timestamp,
    pub deadline_exceeded: bool,
    /// How long a rollout may go without progress; [`PROGRESS_DEADLINE`] by default.
    pub progress_deadline: Millis,
    /// Extra pods allowed during a rollout; `None` is 25 % of desired (at least 1).
    pub max_surge: Option<u32>,
    /// Pods that may be unavailable during a rollout; 0 by default.
    pub max_unavailable: u32,
}

impl Workload {
    /// A workload that has been running `image` at `desired` replicas.
    pub fn running(
        name: &str,
        image: &str,
        desired: u32,
        revisions: Vec<Revision>,
        now: Timestamp,
        rng: &mut Rng,
    ) -> Self {
        let mut w = Workload {
            name: name.to_owned(),
            image: image.to_owned(),
            desired,
            generation: revisions.len().max(1) as u64,
            observed_generation: revisions.len().max(1) as u64,
            observe_at: now,
            revisions,
            pods: Vec::new(),
            last_progress: now,
            deadline_exceeded: false,
            progress_deadline: PROGRESS_DEADLINE,
            max_surge: None,
            max_unavailable: 0,
        };
        for _ in 0..desired {
            let pod = w.new_pod(rng, Some(now.plus(Millis(-3_600_000))));
            w.pods.push(pod);
        }
        w
    }

    /// A stable 9-character hash of a template (here: its image), as `pod-template-hash`.
    pub fn template_hash(&self, image: &str) -> String {
        let h = image.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        let mut rng = Rng::new(u64::from(h));
        rng.suffix(9)
    }

    fn new_pod(&self, rng: &mut Rng, ready_at: Option<Timestamp>) -> Pod {
        Pod {
            name: Arc::from(format!("{}-{}-{}", self.name, self.template_hash(&self.image), rng.suffix(5))),
            image: self.image.clone(),
            ready_at,
            terminating_since: None,
        }
    }

    /// Changes the pod template's image: a new revision, like `kubectl set image`.
    pub fn set_image(&mut self, image: &str, now: Timestamp, rng: &mut Rng) {
        if self.image == image {
            return;
        }
        self.image = image.to_owned();
        self.generation += 1;
        self.observe_at = now.plus(Millis(300 + rng.below(400) as i64));
        self.last_progress = now;
        self.deadline_exceeded = false;
        let number = self.revisions.first().map_or(1, |r| r.number + 1);
        // Re-using an old template moves its revision to the top, as the
        // Deployment controller does on undo.
        self.revisions.retain(|r| r.image != image);
        self.revisions.insert(0, Revision { number, image: image.to_owned(), created: now });
        self.revisions.truncate(10);
    }

    pub fn scale(&mut self, desired: u32, now: Timestamp) {
        if self.desired != desired {
            self.desired = desired;
            self.generation += 1;
            self.observe_at = now.plus(Millis(300));
            self.last_progress = now;
        }
    }

    /// Moves pods along: start new ones within the surge, retire old ones
    /// once enough new ones are available, drop terminated pods.
    pub fn step(&mut self, now: Timestamp, rng: &mut Rng) {
        if now >= self.observe_at {
            self.observed_generation = self.generation;
        }
        if self.observed_generation < self.generation {
            return;
        }
        let before = self.counts(now);
        self.pods.retain(|p| p.terminating_since.is_none_or(|t| now.since(t) < SECOND));
        let live = |pods: &[Pod]| pods.iter().filter(|p| p.terminating_since.is_none()).count() as u32;
        let surge = self.max_surge.unwrap_or_else(|| self.desired.div_ceil(4).max(1));
        let current = |pods: &[Pod], image: &str| {
            pods.iter().filter(|p| p.terminating_since.is_none() && p.image == image).count() as u32
        };
        while current(&self.pods, &self.image) < self.desired && live(&self.pods) < self.desired + surge {
            let startup = if self.image.contains(BROKEN_MARKER) {
                None
            } else {
                Some(now.plus(Millis(1_200 + rng.below(2_300) as i64)))
            };
            let pod = self.new_pod(rng, startup);
            self.pods.push(pod);
        }
        // Retire old pods (not-ready ones first) while availability allows.
        loop {
            let available = self.pods.iter().filter(|p| p.ready(now)).count() as u32;
            let old = self
                .pods
                .iter_mut()
                .filter(|p| p.terminating_since.is_none() && p.image != self.image)
                .min_by_key(|p| p.ready_at.is_some_and(|t| t <= now));
            let Some(old) = old else { break };
            let old_ready = old.ready_at.is_some_and(|t| t <= now);
            if old_ready && available + self.max_unavailable <= self.desired {
                break;
            }
            old.terminating_since = Some(now);
        }
        // Scale down surplus pods of the current template.
        while current(&self.pods, &self.image) > self.desired {
            if let Some(extra) =
                self.pods.iter_mut().rev().find(|p| p.terminating_since.is_none() && p.image == self.image)
            {
                extra.terminating_since = Some(now);
            }
        }
        let after = self.counts(now);
        if after != before {
            self.last_progress = now;
        }
        let done = rollout::phase(self.generation, self.observed_generation, after, false, false)
            == crate::domain::RolloutPhase::Complete;
        if done {
            self.last_progress = now;
            self.deadline_exceeded = false;
        } else if now.since(self.last_progress) > self.progress_deadline {
            self.deadline_exceeded = true;
        }
    }

    pub fn counts(&self, now: Timestamp) -> ReplicaCounts {
        let ready = self.pods.iter().filter(|p| p.ready(now)).count() as u32;
        ReplicaCounts {
            desired: self.desired,
            total: self.pods.iter().filter(|p| p.terminating_since.is_none()).count() as u32,
            updated: self.pods.iter().filter(|p| p.terminating_since.is_none() && p.image == self.image).count() as u32,
            ready,
            available: ready,
        }
    }

    pub fn ready_pods(&self, now: Timestamp) -> impl Iterator<Item = &Pod> {
        self.pods.iter().filter(move |p| p.ready(now))
    }

    pub fn status(&self, now: Timestamp) -> RolloutStatus {
        let replicas = self.counts(now);
        let phase = rollout::phase(self.generation, self.observed_generation, replicas, false, self.deadline_exceeded);
        let available = Condition {
            kind: "Available".into(),
            ok: replicas.available >= self.desired,
            reason: if replicas.available >= self.desired {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            }
            .into(),
            message: String::new(),
        };
        let progressing = if self.deadline_exceeded {
            Condition {
                kind: "Progressing".into(),
                ok: false,
                reason: "ProgressDeadlineExceeded".into(),
                message: format!("{} has timed out progressing", self.name),
            }
        } else {
            Condition {
                kind: "Progressing".into(),
                ok: true,
                reason: if phase == crate::domain::RolloutPhase::Complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                }
                .into(),
                message: String::new(),
            }
        };
        RolloutStatus {
            phase,
            generation: self.generation,
            observed_generation: self.observed_generation,
            replicas,
            image: self.image.clone(),
            revisions: self.revisions.clone(),
            conditions: vec![available, progressing],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RolloutPhase;

    fn advance(w: &mut Workload, from: Timestamp, secs: i64, rng: &mut Rng) -> Timestamp {
        let mut now = from;
        for _ in 0..secs * 4 {
            now = now.plus(Millis(250));
            w.step(now, rng);
        }
        now
    }

    #[test]
    fn a_new_image_replaces_pods_without_losing_availability() {
        let mut rng = Rng::new(1);
        let start = Timestamp(1_000_000_000);
        let revisions = vec![Revision { number: 1, image: "a:1".into(), created: start }];
        let mut w = Workload::running("svc", "a:1", 4, revisions, start, &mut rng);
        w.set_image("a:2", start, &mut rng);
        assert_eq!(w.status(start).phase, RolloutPhase::Progressing);
        let mut now = start;
        for _ in 0..120 {
            now = now.plus(Millis(250));
            w.step(now, &mut rng);
            assert!(w.counts(now).available >= 4 || w.observed_generation < w.generation, "maxUnavailable 0 holds");
        }
        let status = w.status(now);
        assert_eq!(status.phase, RolloutPhase::Complete, "{status:?}");
        assert!(w.pods.iter().all(|p| p.image == "a:2"));
        assert_eq!(status.revisions[0].number, 2);
    }

    #[test]
    fn a_broken_image_misses_the_progress_deadline() {
        let mut rng = Rng::new(1);
        let start = Timestamp(1_000_000_000);
        let mut w = Workload::running("svc", "a:1", 2, vec![], start, &mut rng);
        w.set_image("a:broken", start, &mut rng);
        let now = advance(&mut w, start, 90, &mut rng);
        let status = w.status(now);
        assert_eq!(status.phase, RolloutPhase::Failed);
        assert_eq!(status.replicas.available, 2, "old pods keep serving");
        assert!(status.conditions.iter().any(|c| c.reason == "ProgressDeadlineExceeded"));
    }

    #[test]
    fn max_unavailable_and_a_shorter_deadline_are_honoured() {
        let mut rng = Rng::new(3);
        let start = Timestamp(1_000_000_000);
        let mut w = Workload::running("svc", "a:1", 4, vec![], start, &mut rng);
        w.max_surge = Some(0);
        w.max_unavailable = 1;
        w.set_image("a:2", start, &mut rng);
        let mut now = start;
        let mut lowest = 4;
        for _ in 0..160 {
            now = now.plus(Millis(250));
            w.step(now, &mut rng);
            assert!(w.pods.iter().filter(|p| p.terminating_since.is_none()).count() <= 4, "no surge");
            lowest = lowest.min(w.counts(now).available);
        }
        assert_eq!(w.status(now).phase, RolloutPhase::Complete);
        assert_eq!(lowest, 3, "one pod unavailable at a time");

        w.progress_deadline = Millis(5 * SECOND.0);
        w.set_image("a:broken", now, &mut rng);
        let now = advance(&mut w, now, 10, &mut rng);
        assert_eq!(w.status(now).phase, RolloutPhase::Failed);
    }
}
