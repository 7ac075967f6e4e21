//! Kubernetes as a workload backend, through `kube`: services made of a
//! primary and a canary Deployment, the canary's traffic in an HTTPRoute's
//! backend weights (or, without a route, in the ratio of replicas).
//!
//! - `KubeBackend` is how the executor changes the cluster. It reads fresh
//!   objects for `facts`, and every write carries the resourceVersion it
//!   was based on, so a change made by someone else in between is refused
//!   (409), never overwritten. Each action leaves a Kubernetes Event.
//! - `run` is its source task: one list and then watches of Deployments,
//!   ReplicaSets, Pods, HTTPRoutes and Events per namespace, turned into
//!   rollouts, traffic, logs and timeline entries. No polling.
//!
//! - `connect`: kubeconfig, context, namespace, in-cluster;
//! - `model`: what the objects mean (pure);
//! - `actions`: the writes behind each plan;
//! - `watch`: the watchers and what they report;
//! - `logs`: following every pod of a service;
//! - `access`: RBAC, as one SelfSubjectRulesReview per namespace.

mod access;
mod actions;
pub mod connect;
mod logs;
pub mod model;
mod watch;

pub use access::{Needs, denied_ops};
pub use connect::{Connection, Target as ClusterTarget};
pub use model::{ANNOTATION_PROMOTING, LABEL_SERVICE, LABEL_STAGE, LABEL_TRACK};
pub use watch::run;

use crate::backend::{ActionContext, BackendError, Change, Facts, Plan, Workloads};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::rollout::RolloutStatus;
use crate::state::Msg;
use model::Target;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// The name this source reports its connection under.
pub const SOURCE: &str = "kubernetes";

/// Settings that are not in the config.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Watch reconnection backoff, from the first wait to the longest.
    pub backoff: (Duration, Duration),
    /// Lines of each pod's log shown when it is first followed.
    pub tail_lines: u32,
    pub max_line: usize,
    /// Never write, not even to finish a promotion someone else started.
    pub read_only: bool,
    /// Who acts, for Events.
    pub user: String,
}

impl Default for KubeOptions {
    fn default() -> Self {
        KubeOptions {
            backoff: (Duration::from_millis(800), Duration::from_secs(30)),
            tail_lines: 100,
            max_line: crate::domain::logs::DEFAULT_MAX_LINE,
            read_only: false,
            user: crate::executor::current_user(),
        }
    }
}

/// What the source task learned, for the executor's side.
#[derive(Debug, Default)]
struct View {
    targets: Vec<Target>,
    rollouts: BTreeMap<String, RolloutStatus>,
}

pub(crate) struct Inner {
    config: Config,
    options: KubeOptions,
    clock: Clock,
    events: mpsc::Sender<Msg>,
    /// Where to connect; a context switch changes it.
    target: Mutex<connect::Target>,
    /// The live connection, once there is one.
    connection: Mutex<Option<Connection>>,
    view: Mutex<View>,
    /// Wakes the source task to reconnect (a context switch).
    reconnect: Notify,
    /// The service on screen: in a large fleet, the only one whose pods'
    /// logs are followed.
    focus: Mutex<Option<String>>,
    refocus: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The Kubernetes workload backend; cheap to clone.
#[derive(Clone)]
pub struct KubeBackend {
    inner: Arc<Inner>,
}

impl KubeBackend {
    /// A backend for `config`'s services (and labelled ones) in the cluster
    /// `target` points at. Nothing connects until `run` starts.
    pub fn new(
        config: &Config,
        target: connect::Target,
        clock: Clock,
        events: mpsc::Sender<Msg>,
        options: KubeOptions,
    ) -> KubeBackend {
        let namespaces = target.namespaces.clone();
        let targets = model::discover(config, &namespaces, &[], &[]);
        KubeBackend {
            inner: Arc::new(Inner {
                config: config.clone(),
                options,
                clock,
                events,
                target: Mutex::new(target),
                connection: Mutex::new(None),
                view: Mutex::new(View { targets, rollouts: BTreeMap::new() }),
                reconnect: Notify::new(),
                focus: Mutex::new(None),
                refocus: Notify::new(),
            }),
        }
    }

    /// The context in use: the one asked for, else the kubeconfig's current one.
    pub fn context(&self) -> Option<String> {
        connect::context_name(&lock(&self.inner.target))
    }

    /// The contexts the kubeconfig offers.
    pub fn contexts(&self) -> Vec<String> {
        connect::contexts(&lock(&self.inner.target))
    }

    /// Switches to another kubeconfig context: the source task drops every
    /// watch and log stream and syncs everything again from the new one.
    pub fn switch_context(&self, context: &str) -> Result<(), String> {
        let known = self.contexts();
        if !known.is_empty() && !known.iter().any(|c| c == context) {
            return Err(format!("no context `{context}` in the kubeconfig (it has: {})", known.join(", ")));
        }
        let namespaces = {
            let mut target = lock(&self.inner.target);
            target.context = Some(context.to_owned());
            target.namespaces.clone()
        };
        *lock(&self.inner.connection) = None;
        // Nothing of the old cluster may be acted on while the new one syncs.
        lock(&self.inner.view).targets = model::discover(&self.inner.config, &namespaces, &[], &[]);
        self.inner.reconnect.notify_one();
        Ok(())
    }

    /// The service the user is looking at. Every service's pods are
    /// followed in a small fleet; in a large one only this one's are.
    pub fn focus(&self, service: &str) {
        let mut focus = lock(&self.inner.focus);
        if focus.as_deref() != Some(service) {
            *focus = Some(service.to_owned());
            drop(focus);
            self.inner.refocus.notify_one();
        }
    }

    fn connection(&self) -> Result<Connection, BackendError> {
        lock(&self.inner.connection).clone().ok_or_else(|| {
            BackendError::Unavailable("not connected to the cluster yet; see the status bar for why".into())
        })
    }

    fn target(&self, service: &str) -> Result<Target, BackendError> {
        lock(&self.inner.view)
            .targets
            .iter()
            .find(|t| t.name == service)
            .cloned()
            .ok_or_else(|| BackendError::NotFound(format!("service {service}")))
    }
}

impl Workloads for KubeBackend {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        let connection = self.connection()?;
        let target = self.target(service)?;
        let read = actions::Read::fetch(&connection.client, &target).await?;
        Ok(read.facts(&target))
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        let connection = self.connection()?;
        let target = self.target(service)?;
        actions::apply(&connection.client, &target, plan, context, &self.inner.clock).await
    }
}

/// What a `kube` error means to a user, as a backend error about `what`.
pub(crate) fn backend_error(what: &str, error: kube::Error) -> BackendError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => BackendError::NotFound(what.to_owned()),
            409 => BackendError::Conflict(what.to_owned()),
            403 => BackendError::Failed(format!("not allowed to change {what}: {}", status.message)),
            _ => BackendError::Failed(format!("{what}: {}", status.message)),
        },
        other => BackendError::Unavailable(describe_error(&other, "the API server")),
    }
}

/// A `kube` error in a user's words, with what to check. Credentials never
/// appear: an exec plugin's failure (whose command line and output may hold
/// secrets) is named, not quoted.
pub(crate) fn describe_error(error: &kube::Error, server: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 401 => {
            format!("unauthorised at {server}: this context's credentials are not accepted (expired token?)")
        }
        kube::Error::Api(status) if status.code == 403 => format!("forbidden: {}", status.message),
        kube::Error::Api(status) => status.message.clone(),
        kube::Error::Auth(_) => format!(
            "cannot authenticate to {server}: the kubeconfig's credentials (token, certificate or exec plugin) \
             could not be used; run `kubectl get namespaces` with this context to see why"
        ),
        other => format!("cannot reach {server} ({other}); is the cluster up and reachable from here?"),
    }
}
