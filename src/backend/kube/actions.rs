//! The writes behind each plan. Objects are read fresh; every write is a
//! replace that carries the resourceVersion it was read at, so the API
//! server refuses it (409) if anyone changed the object in between. Each
//! action ends with a Kubernetes Event on the object it changed, so other
//! cockpits and `kubectl get events` see who did what.

use super::backend_error;
use super::model::{self, Target};
use crate::backend::{ActionContext, BackendError, Change, Facts, Plan, Snapshot};
use crate::clock::Clock;
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Resource};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// Event reasons, one per kind of action.
pub const REASON_DEPLOY: &str = "CockpitDeploy";
pub const REASON_PROMOTE: &str = "CockpitPromote";
pub const REASON_ROLLBACK: &str = "CockpitRollback";
pub const REASON_RESTART: &str = "CockpitRestart";
/// Annotation on cockpit's Events: who acted.
pub const ANNOTATION_USER: &str = "cockpit.dev/user";
/// `kubectl rollout restart` sets this on the pod template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A service's objects as read at one moment.
#[derive(Debug, Clone)]
pub struct Read {
    pub primary: Deployment,
    pub canary: Option<Deployment>,
    pub route: Option<HttpRoute>,
    /// The primary's ReplicaSets (its revisions).
    pub replica_sets: Vec<ReplicaSet>,
}

fn describe(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind} {namespace}/{name}")
}

async fn get_optional<K>(api: &Api<K>, what: &str, name: &str) -> Result<Option<K>, BackendError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(backend_error(what, error)),
    }
}

impl Read {
    pub async fn fetch(client: &Client, target: &Target) -> Result<Read, BackendError> {
        let ns = target.namespace.as_str();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let primary_name = describe("Deployment", ns, &target.primary);
        let primary = get_optional(&deployments, &primary_name, &target.primary)
            .await?
            .ok_or_else(|| BackendError::NotFound(primary_name.clone()))?;
        let canary_name = describe("Deployment", ns, &target.canary_deployment);
        let canary = get_optional(&deployments, &canary_name, &target.canary_deployment).await?;
        let route = match &target.route {
            Some(name) => {
                let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
                let what = describe("HTTPRoute", ns, name);
                Some(get_optional(&routes, &what, name).await?.ok_or(BackendError::NotFound(what))?)
            }
            None => None,
        };
        let selector = primary
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.as_ref())
            .map(|labels| labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let replica_sets = if selector.is_empty() {
            Vec::new()
        } else {
            let api: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| backend_error(&format!("ReplicaSets of {primary_name}"), e))?;
            model::owned(&primary, &list.items.iter().collect::<Vec<_>>()).into_iter().cloned().collect()
        };
        Ok(Read { primary, canary, route, replica_sets })
    }

    /// What `Facts::token` is: the objects' generations (their specs) and
    /// the promotion mark, hashed. Status updates by controllers do not
    /// change it; any change to what a decision was based on does.
    pub fn token(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        deployment_basis(&self.primary).hash(&mut hasher);
        self.canary.as_ref().map(deployment_basis).hash(&mut hasher);
        self.route.as_ref().map(|r| (&r.metadata.uid, r.metadata.generation)).hash(&mut hasher);
        hasher.finish()
    }

    fn traffic(&self, target: &Target) -> crate::event::Traffic {
        model::traffic(target, &self.primary, self.canary.as_ref(), self.route.as_ref())
    }

    fn revisions(&self, target: &Target) -> Vec<crate::domain::rollout::Revision> {
        model::revisions(&self.replica_sets.iter().collect::<Vec<_>>(), target.container.as_deref())
    }

    pub fn facts(&self, target: &Target) -> Facts {
        let traffic = self.traffic(target);
        let revisions = self.revisions(target);
        Facts {
            stage: target.stage,
            plan: target.plan(),
            primary_image: traffic.primary_image.clone(),
            canary_image: traffic.canary_image.clone(),
            canary_weight: traffic.target_weight,
            verdict: None,
            slo_status: None,
            previous_image: revisions.get(1).map(|r| r.image.clone()),
            rollout_paused: model::paused(&self.primary),
            promoting: model::promoting(&self.primary).is_some(),
            building: false,
            token: self.token(),
        }
    }

    fn snapshot(&self, target: &Target) -> Snapshot {
        let traffic = self.traffic(target);
        Snapshot {
            image: traffic.primary_image,
            canary_image: traffic.canary_image,
            weight: traffic.target_weight,
            revision: self.revisions(target).first().map(|r| r.number),
        }
    }
}

/// Carries out `plan` on fresh objects, if they are still the ones the
/// plan was decided on.
pub async fn apply(
    client: &Client,
    target: &Target,
    plan: &Plan,
    context: &ActionContext,
    clock: &Clock,
) -> Result<Change, BackendError> {
    let read = Read::fetch(client, target).await?;
    if read.token() != context.token {
        return Err(BackendError::Conflict(format!(
            "{}'s Deployments or HTTPRoute changed since cockpit read them",
            target.name
        )));
    }
    let before = read.snapshot(target);
    let writer = Writer { client, target, user: &context.user, clock };
    let (summary, reason, on) = match plan {
        Plan::DeployPrimary { image } => {
            let from = model::image(&read.primary, target.container.as_deref());
            let mut primary = read.primary.clone();
            set_image(&mut primary, target, image)?;
            let written = writer.deployment(primary, &read.primary).await?;
            (format!("image {from} → {image}"), REASON_DEPLOY, reference(&written))
        }
        Plan::StartCanary { image, weight } => {
            let canary = read.canary.clone().ok_or_else(|| no_canary(target))?;
            let mut canary = canary;
            set_image(&mut canary, target, image)?;
            let on = writer.shift(&read, Some(canary), *weight).await?;
            (format!("canary {image} at {weight} %"), REASON_DEPLOY, on)
        }
        Plan::SetCanaryWeight { from, to } => {
            let on = writer.shift(&read, None, *to).await?;
            (format!("canary {from} → {to} %"), REASON_PROMOTE, on)
        }
        Plan::PromoteFull => {
            let canary = read.canary.as_ref().ok_or_else(|| no_canary(target))?;
            let image = model::image(canary, target.container.as_deref());
            let mut primary = read.primary.clone();
            copy_template(&mut primary, canary);
            primary
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(model::ANNOTATION_PROMOTING.into(), image.clone());
            let written = writer.deployment(primary, &read.primary).await?;
            let summary = format!("promoting {image} to the primary; traffic returns to it when its rollout completes");
            (summary, REASON_PROMOTE, reference(&written))
        }
        Plan::AbortCanary => {
            let mut notes = Vec::new();
            if model::promoting(&read.primary).is_some() {
                let undone = writer.undo(&read).await?;
                notes.push(format!("primary back to revision {undone}"));
            }
            let on = writer.shift(&read, None, 0).await?;
            let canary = before.canary_image.clone().unwrap_or_else(|| "canary".into());
            notes.insert(0, format!("{canary} emptied: {} → 0 %, scaled to 0", before.weight));
            (notes.join("; "), REASON_ROLLBACK, on)
        }
        Plan::UndoPrimary => {
            if model::paused(&read.primary) {
                return Err(BackendError::Unsupported(format!(
                    "{} is paused: resume it (kubectl rollout resume) before undoing",
                    target.primary
                )));
            }
            let revision = writer.undo(&read).await?;
            let image = read.revisions(target).into_iter().find(|r| r.number == revision).map(|r| r.image);
            let summary = format!("rolled back to revision {revision} ({})", image.unwrap_or_default());
            (summary, REASON_ROLLBACK, reference(&read.primary))
        }
        Plan::Restart => {
            let mut primary = read.primary.clone();
            if let Some(spec) = primary.spec.as_mut() {
                spec.template
                    .metadata
                    .get_or_insert_with(ObjectMeta::default)
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(RESTARTED_AT.into(), clock.now().rfc3339());
            }
            let written = writer.deployment(primary, &read.primary).await?;
            ("restarted: every pod is replaced".to_owned(), REASON_RESTART, reference(&written))
        }
        Plan::Rebuild => return Err(BackendError::Unsupported("rebuilding needs [docker] in cockpit.toml".into())),
        Plan::Stop => {
            return Err(BackendError::Unsupported(
                "stopping is for dev containers; scale the Deployment to 0 with kubectl if you mean it".into(),
            ));
        }
    };
    let mut after = Read::fetch(client, target).await.map(|r| r.snapshot(target)).unwrap_or_else(|_| before.clone());
    if let Plan::UndoPrimary = plan {
        // The controller creates the new revision later; say what it will be.
        after.revision = before.revision.map(|r| r + 1);
    }
    let mut summary = summary;
    if let Err(why) = writer.event(on, reason, &summary).await {
        summary.push_str(&format!(" (no Event recorded: {why})"));
    }
    Ok(Change { before, after, summary })
}

/// What a decision about a Deployment rests on: which object, its spec's
/// generation, and the promotion mark.
fn deployment_basis(deployment: &Deployment) -> (Option<&str>, Option<i64>, Option<&str>) {
    (deployment.metadata.uid.as_deref(), deployment.metadata.generation, model::promoting(deployment))
}

/// How often a write is tried again when only status changed under it.
const RETRIES: usize = 5;

fn no_canary(target: &Target) -> BackendError {
    BackendError::NotFound(format!(
        "canary Deployment {}/{} (create it with 0 replicas; see assets/k8s)",
        target.namespace, target.canary_deployment
    ))
}

fn set_image(deployment: &mut Deployment, target: &Target, image: &str) -> Result<(), BackendError> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let missing = || {
        BackendError::Failed(match &target.container {
            Some(c) => format!("Deployment {name} has no container `{c}`"),
            None => format!("Deployment {name} has no containers"),
        })
    };
    let spec = deployment.spec.as_mut().ok_or_else(missing)?;
    let index = model::container_index(&spec.template, target.container.as_deref()).ok_or_else(missing)?;
    let pod = spec.template.spec.as_mut().ok_or_else(missing)?;
    pod.containers[index].image = Some(image.to_owned());
    Ok(())
}

/// The canary's pod spec and template annotations on the primary; the
/// primary keeps its own template labels, which its selector matches.
fn copy_template(primary: &mut Deployment, canary: &Deployment) {
    let (Some(spec), Some(from)) = (primary.spec.as_mut(), canary.spec.as_ref()) else { return };
    spec.template.spec = from.template.spec.clone();
    let annotations = from.template.metadata.as_ref().and_then(|m| m.annotations.clone());
    spec.template.metadata.get_or_insert_with(ObjectMeta::default).annotations = annotations;
}

fn reference<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn set_replicas(deployment: &mut Deployment, replicas: u32) {
    if let Some(spec) = deployment.spec.as_mut() {
        spec.replicas = Some(i32::try_from(replicas).unwrap_or(i32::MAX));
    }
}

/// Writes on behalf of one user, for one service.
pub struct Writer<'a> {
    pub client: &'a Client,
    pub target: &'a Target,
    pub user: &'a str,
    pub clock: &'a Clock,
}

impl Writer<'_> {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    /// Replaces a Deployment, at the resourceVersion it carries. When the
    /// server refuses (409) because only its status or bookkeeping moved
    /// on, the same change is made to the fresh object and sent again; when
    /// its spec or promotion mark changed, it is a conflict.
    pub async fn deployment(&self, changed: Deployment, based_on: &Deployment) -> Result<Deployment, BackendError> {
        let name = changed.metadata.name.clone().unwrap_or_default();
        let what = describe("Deployment", &self.target.namespace, &name);
        let api = self.deployments();
        let mut attempt = changed;
        for _ in 0..RETRIES {
            match api.replace(&name, &PostParams::default(), &attempt).await {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let fresh = api.get(&name).await.map_err(|e| backend_error(&what, e))?;
                    if deployment_basis(&fresh) != deployment_basis(based_on) {
                        return Err(BackendError::Conflict(what));
                    }
                    // Only status moved on: the same change, on the fresh object.
                    attempt.metadata.resource_version = fresh.metadata.resource_version.clone();
                    attempt.status = fresh.status;
                }
                result => return result.map_err(|e| backend_error(&what, e)),
            }
        }
        Err(BackendError::Conflict(what))
    }

    async fn route(&self, changed: HttpRoute, based_on: &HttpRoute) -> Result<HttpRoute, BackendError> {
        let name = changed.metadata.name.clone().unwrap_or_default();
        let what = describe("HTTPRoute", &self.target.namespace, &name);
        let api: Api<HttpRoute> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let mut attempt = changed;
        for _ in 0..RETRIES {
            match api.replace(&name, &PostParams::default(), &attempt).await {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let fresh = api.get(&name).await.map_err(|e| backend_error(&what, e))?;
                    if fresh.metadata.generation != based_on.metadata.generation {
                        return Err(BackendError::Conflict(what));
                    }
                    attempt.metadata.resource_version = fresh.metadata.resource_version.clone();
                    attempt.status = fresh.status;
                }
                result => return result.map_err(|e| backend_error(&what, e)),
            }
        }
        Err(BackendError::Conflict(what))
    }

    /// Moves the canary to `weight` percent: through the route's weights
    /// when there is a route (the canary scaled to match the primary's size
    /// as it starts, and to 0 as it ends), else by the replica ratio.
    /// `canary` is a changed canary to write (a new image), if any.
    /// Returns what the Event should be about.
    pub async fn shift(
        &self,
        read: &Read,
        canary: Option<Deployment>,
        weight: u8,
    ) -> Result<ObjectReference, BackendError> {
        let mut canary = match canary.or_else(|| read.canary.clone()) {
            Some(canary) => canary,
            None if weight == 0 => return Ok(reference(&read.primary)),
            None => return Err(no_canary(self.target)),
        };
        let canary_basis = read.canary.clone().unwrap_or_else(|| canary.clone());
        let primary_replicas = model::spec_replicas(&read.primary);
        let canary_replicas = model::spec_replicas(&canary);
        match &read.route {
            Some(basis) => {
                let mut route = basis.clone();
                set_weights(&mut route, self.target, weight);
                if weight == 0 {
                    // Traffic first, then the pods it no longer reaches.
                    let written = self.route(route, basis).await?;
                    set_replicas(&mut canary, 0);
                    self.deployment(canary, &canary_basis).await?;
                    Ok(reference(&written))
                } else {
                    let wanted = if canary_replicas == 0 {
                        let share = (u64::from(primary_replicas) * u64::from(weight)).div_ceil(100);
                        u32::try_from(share).unwrap_or(1).max(1)
                    } else {
                        canary_replicas
                    };
                    set_replicas(&mut canary, wanted);
                    // Pods first, then the traffic that reaches them.
                    self.deployment(canary, &canary_basis).await?;
                    let written = self.route(route, basis).await?;
                    Ok(reference(&written))
                }
            }
            None => {
                let (primary_to, canary_to) = model::ratio_replicas(primary_replicas, canary_replicas, weight);
                let mut primary = read.primary.clone();
                set_replicas(&mut canary, canary_to);
                if primary_to > primary_replicas {
                    // Growing the primary before the canary shrinks keeps capacity.
                    set_replicas(&mut primary, primary_to);
                    self.deployment(primary, &read.primary).await?;
                    Ok(reference(&self.deployment(canary, &canary_basis).await?))
                } else {
                    let written = self.deployment(canary, &canary_basis).await?;
                    if primary_to != primary_replicas {
                        set_replicas(&mut primary, primary_to);
                        self.deployment(primary, &read.primary).await?;
                    }
                    Ok(reference(&written))
                }
            }
        }
    }

    /// `kubectl rollout undo`: the previous revision's template replaces
    /// the primary's (without `pod-template-hash`); nothing is written if
    /// it already matches. Also clears a promotion in flight. Returns the
    /// revision restored.
    pub async fn undo(&self, read: &Read) -> Result<u64, BackendError> {
        let mut by_revision: Vec<(u64, &ReplicaSet)> =
            read.replica_sets.iter().filter_map(|rs| Some((model::revision_number(rs)?, rs))).collect();
        by_revision.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        let Some((revision, rs)) = by_revision.get(1) else {
            return Err(BackendError::Unsupported(format!("{} has no earlier revision", self.target.primary)));
        };
        let template = model::undo_template(rs)
            .ok_or_else(|| BackendError::Failed(format!("revision {revision} has no pod template")))?;
        let mut primary = read.primary.clone();
        let promoting = primary.metadata.annotations.as_mut().and_then(|a| a.remove(model::ANNOTATION_PROMOTING));
        let same = primary.spec.as_ref().is_some_and(|s| s.template == template);
        if same && promoting.is_none() {
            return Err(BackendError::Unsupported(format!(
                "{} already runs revision {revision}'s template: nothing to undo",
                self.target.primary
            )));
        }
        if let Some(spec) = primary.spec.as_mut() {
            spec.template = template;
        }
        self.deployment(primary, &read.primary).await?;
        Ok(*revision)
    }

    /// Creates an Event about `on`: the shared record of who did what.
    pub async fn event(&self, on: ObjectReference, reason: &str, summary: &str) -> Result<(), String> {
        let now = self.clock.now();
        let namespace = on.namespace.clone().unwrap_or_else(|| self.target.namespace.clone());
        let name = format!("{}.cockpit.{:x}", on.name.as_deref().unwrap_or("object"), now.0);
        let time = k8s_openapi::jiff::Timestamp::from_millisecond(now.0).unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace.clone()),
                labels: Some(BTreeMap::from([(model::LABEL_SERVICE.to_owned(), self.target.name.clone())])),
                annotations: Some(BTreeMap::from([(ANNOTATION_USER.to_owned(), self.user.to_owned())])),
                ..ObjectMeta::default()
            },
            involved_object: on,
            reason: Some(reason.to_owned()),
            message: Some(format!("{} by {}: {summary}", self.target.name, self.user)),
            type_: Some("Normal".into()),
            source: Some(EventSource { component: Some("cockpit".into()), host: None }),
            reporting_component: Some("cockpit".into()),
            first_timestamp: Some(Time(time)),
            last_timestamp: Some(Time(time)),
            count: Some(1),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await.map(drop).map_err(|e| match e {
            kube::Error::Api(status) => status.message,
            other => other.to_string(),
        })
    }
}

/// Sets the canary's weight in every rule that names the canary backend:
/// the two backends' weights become (100 − w, w).
pub fn set_weights(route: &mut HttpRoute, target: &Target, weight: u8) {
    let weight = i32::from(weight.min(100));
    for rule in route.spec.rules.iter_mut().flatten() {
        let Some(refs) = rule.backend_refs.as_mut() else { continue };
        if !refs.iter().any(|r| r.name == target.canary_backend) {
            continue;
        }
        for backend in refs.iter_mut() {
            if backend.name == target.canary_backend {
                backend.weight = Some(weight);
            } else if backend.name == target.primary_backend {
                backend.weight = Some(100 - weight);
            }
        }
    }
}
