//! The boundary every workload backend sits behind: facts the executor
//! judges policy on, and plans it applies. Sources (the tasks that watch a
//! backend) send `event::SourceEvent`s; this trait is the way back in.
//!
//! The simulated fleet, `kube` (a cluster's Deployments and HTTPRoutes)
//! and `docker` (rebuilds, prototypes' dev containers) implement it;
//! `Split` puts rebuilds on Docker and the rest on a cluster. `prometheus`
//! is a metrics source only; with it alone, the inventory comes from the
//! config (`config_inventory`) and changes are answered by `NoWorkloads`.

pub mod docker;
pub mod kube;
pub mod prometheus;
pub mod sim;

use crate::config::Config;
use crate::domain::Stage;
use crate::domain::canary::{CanaryPlan, Verdict};
use crate::domain::slo::SloStatus;
use crate::event::{BackendInfo, ServiceInfo};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// What the executor needs to know, read fresh at the moment it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub stage: Stage,
    pub plan: CanaryPlan,
    pub primary_image: String,
    pub canary_image: Option<String>,
    /// Percent of traffic on the canary; 0 when none.
    pub canary_weight: u8,
    /// The canary analysis, while a canary is live.
    pub verdict: Option<Verdict>,
    pub slo_status: Option<SloStatus>,
    /// Why the verdict or the SLO status is missing, when whoever supplies
    /// them knows ("no metrics source configured", "measurements are stale").
    /// The mission-critical gate stays closed without them and says this.
    pub metrics_gap: Option<String>,
    /// The image of the revision before the current one, for undo.
    pub previous_image: Option<String>,
    pub rollout_paused: bool,
    /// A full promotion is waiting for the primary's rollout.
    pub promoting: bool,
    pub building: bool,
    /// Optimistic-concurrency token (a resourceVersion): a plan based on
    /// stale facts must fail instead of overwriting someone else's change.
    pub token: u64,
}

/// A concrete change, decided by policy from an `event::Op` and facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "plan")]
pub enum Plan {
    Rebuild,
    /// Prototypes: replace the primary's image at once.
    DeployPrimary {
        image: String,
    },
    /// Production and mission-critical: start (or replace) the canary.
    StartCanary {
        image: String,
        weight: u8,
    },
    SetCanaryWeight {
        from: u8,
        to: u8,
    },
    /// The canary's version becomes the primary's; traffic returns to the
    /// primary and the canary is emptied once the primary has rolled out.
    PromoteFull,
    /// Canary traffic to 0 and the canary scaled to 0; during a full
    /// promotion, the primary also returns to its previous revision.
    AbortCanary,
    /// Like `kubectl rollout undo`: the previous revision's template.
    UndoPrimary,
    /// A fresh instance of what runs now.
    Restart,
    Stop,
}

/// The state an action touched, before and after, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub image: String,
    pub canary_image: Option<String>,
    pub weight: u8,
    pub revision: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub before: Snapshot,
    pub after: Snapshot,
    /// One line for the toast and the timeline: "canary 5 → 25 %".
    pub summary: String,
}

/// Who acts, on what they saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionContext {
    pub user: String,
    /// The `Facts::token` the plan was decided on.
    pub token: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    NotFound(String),
    /// Someone else changed the object since it was read.
    Conflict(String),
    /// The backend cannot do this (e.g. no earlier revision).
    Unsupported(String),
    /// Not reachable right now.
    Unavailable(String),
    Failed(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::NotFound(what) => write!(f, "{what} not found"),
            BackendError::Conflict(what) => {
                write!(f, "changed by someone else ({what}); refreshed, nothing was overwritten")
            }
            BackendError::Unsupported(why) | BackendError::Failed(why) => f.write_str(why),
            BackendError::Unavailable(why) => write!(f, "backend unavailable: {why}"),
        }
    }
}

impl std::error::Error for BackendError {}

/// A backend that runs services and can change them.
pub trait Workloads: Send + Sync + 'static {
    fn facts(&self, service: &str) -> impl Future<Output = Result<Facts, BackendError>> + Send;

    fn apply(
        &self,
        service: &str,
        plan: &Plan,
        context: &ActionContext,
    ) -> impl Future<Output = Result<Change, BackendError>> + Send;
}

/// `Workloads` behind a pointer: the composition root picks the backend mix
/// at run time, so the executor holds one of these whatever the mix is.
pub type AnyWorkloads = std::sync::Arc<dyn ErasedWorkloads>;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe face of `Workloads`, implemented for every `Workloads`.
pub trait ErasedWorkloads: Send + Sync + 'static {
    fn facts_boxed<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Facts, BackendError>>;
    fn apply_boxed<'a>(
        &'a self,
        service: &'a str,
        plan: &'a Plan,
        context: &'a ActionContext,
    ) -> BoxFuture<'a, Result<Change, BackendError>>;
}

impl<W: Workloads> ErasedWorkloads for W {
    fn facts_boxed<'a>(&'a self, service: &'a str) -> BoxFuture<'a, Result<Facts, BackendError>> {
        Box::pin(self.facts(service))
    }

    fn apply_boxed<'a>(
        &'a self,
        service: &'a str,
        plan: &'a Plan,
        context: &'a ActionContext,
    ) -> BoxFuture<'a, Result<Change, BackendError>> {
        Box::pin(self.apply(service, plan, context))
    }
}

impl Workloads for AnyWorkloads {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        self.as_ref().facts_boxed(service).await
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        self.as_ref().apply_boxed(service, plan, context).await
    }
}

/// The answer to every change while no workload backend is configured.
pub const NO_WORKLOADS: &str = "no workload backend configured: add [kubernetes] or run --demo";

/// The workload backend of a cockpit that only watches metrics: every
/// action is answered, clearly, that there is nothing to act on.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWorkloads;

impl Workloads for NoWorkloads {
    async fn facts(&self, _service: &str) -> Result<Facts, BackendError> {
        Err(BackendError::Unavailable(NO_WORKLOADS.into()))
    }

    async fn apply(&self, _service: &str, _plan: &Plan, _context: &ActionContext) -> Result<Change, BackendError> {
        Err(BackendError::Unavailable(NO_WORKLOADS.into()))
    }
}

/// A cluster for deploys and an engine for rebuilds: `Plan::Rebuild` goes
/// to Docker, every other plan to the cluster. An image Docker built here
/// and never pushed is not deployed to the cluster, which could not pull it.
pub struct Split<C> {
    pub docker: docker::DockerWorkloads,
    pub cluster: C,
}

impl<C: Workloads> Workloads for Split<C> {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        let mut facts = self.cluster.facts(service).await?;
        if self.docker.handles(service) {
            facts.building = self.docker.facts(service).await.map(|f| f.building).unwrap_or(false);
        }
        Ok(facts)
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        match plan {
            Plan::Rebuild => self.docker.apply(service, plan, context).await,
            Plan::DeployPrimary { image } | Plan::StartCanary { image, .. }
                if self.docker.never_pushed(image).await =>
            {
                Err(BackendError::Unsupported(format!(
                    "{image} was built on this machine and never pushed: the cluster cannot pull it; \
                     push it (docker push {image}) and deploy it again"
                )))
            }
            _ => self.cluster.apply(service, plan, context).await,
        }
    }
}

/// The inventory of the config's `[[service]]`s, for a cockpit whose
/// services are known from its config alone (`context` is shown in the
/// header, e.g. the Prometheus URL).
pub fn config_inventory(config: &Config, context: &str) -> (BackendInfo, Vec<ServiceInfo>) {
    let backend = BackendInfo { kind: "config".into(), context: context.into(), simulated: false, scenario: None };
    let services = config
        .services
        .iter()
        .map(|service| {
            let canary = service.canary.resolve(&config.canary);
            ServiceInfo {
                name: service.name.clone(),
                stage: service.stage,
                owner: service.owner.clone(),
                depends_on: service.depends_on.clone(),
                thresholds: canary.thresholds(),
                plan: canary.steps,
            }
        })
        .collect();
    (backend, services)
}
