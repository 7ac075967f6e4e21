//! The writes behind each plan. Objects are read fresh; every write is a
//! replace that carries the resourceVersion it was read at, so the API
//! server refuses it (409) if anyone changed the object in between. A 409
//! caused only by status or metadata (a controller's status update, a
//! label) is met by making the same change to the fresh object; a changed
//! spec is a conflict, reported, never overwritten. Each action ends with a
//! Kubernetes Event on the object it changed, so other cockpits and
//! `kubectl get events` see who did what.

use super::backend_error;
use super::model::{self, Target};
use crate::backend::{ActionContext, BackendError, Change, Facts, Plan, Snapshot};
use crate::clock::Clock;
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Event reasons, one per kind of action.
pub const REASON_DEPLOY: &str = "CockpitDeploy";
pub const REASON_PROMOTE: &str = "CockpitPromote";
pub const REASON_ROLLBACK: &str = "CockpitRollback";
pub const REASON_RESTART: &str = "CockpitRestart";
/// Annotation on cockpit's Events: who acted.
pub const ANNOTATION_USER: &str = "cockpit.dev/user";
/// `kubectl rollout restart` sets this on the pod template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// Set beside `cockpit.dev/promoting`: the primary's revision before the
/// promotion, which a roll back during it returns to.
pub const ANNOTATION_PROMOTED_FROM: &str = "cockpit.dev/promoted-from-revision";

/// A service's objects as read at one moment.
#[derive(Debug, Clone)]
pub struct Read {
    pub primary: Deployment,
    pub canary: Option<Deployment>,
    pub route: Option<HttpRoute>,
    /// The route named for the service but not found (no such object, or
    /// no Gateway API here): traffic cannot be moved, everything else can.
    pub missing_route: Option<String>,
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
        let (route, missing_route) = match &target.route {
            Some(name) => {
                let routes: Api<HttpRoute> = Api::namespaced(client.clone(), ns);
                let what = describe("HTTPRoute", ns, name);
                match get_optional(&routes, &what, name).await {
                    Ok(Some(route)) => (Some(route), None),
                    Ok(None) | Err(BackendError::NotFound(_)) => (None, Some(what)),
                    // Forbidden: as good as missing for traffic; every other action goes on.
                    Err(BackendError::Failed(why)) if why.starts_with("not allowed") => (None, Some(why)),
                    Err(error) => return Err(error),
                }
            }
            None => (None, None),
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
        Ok(Read { primary, canary, route, missing_route, replica_sets })
    }

    /// What `Facts::token` is: everything a question can have shown and a
    /// plan acts on, hashed. The objects (uid) and their specs (generation,
    /// the promotion marks), and, whatever the server does with
    /// `generation`, the values themselves: the primary's and the canary's
    /// images and replicas, the canary's weight and every backend weight of
    /// the route, the revisions (number, ReplicaSet, image; `previous_image`
    /// and the undo target come from them, and the controller changes them
    /// without touching the Deployment) and the pause. Status updates by
    /// controllers (ready counts, observed generation) do not change it.
    pub fn token(&self, target: &Target) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        deployment_basis(&self.primary).hash(&mut hasher);
        self.canary.as_ref().map(deployment_basis).hash(&mut hasher);
        for deployment in std::iter::once(&self.primary).chain(self.canary.as_ref()) {
            let annotations = deployment.metadata.annotations.as_ref();
            annotations.and_then(|a| a.get(ANNOTATION_PROMOTED_FROM)).hash(&mut hasher);
            model::spec_replicas(deployment).hash(&mut hasher);
            model::image(deployment, target.container.as_deref()).hash(&mut hasher);
            model::paused(deployment).hash(&mut hasher);
        }
        self.route.as_ref().map(|r| (&r.metadata.uid, r.metadata.generation)).hash(&mut hasher);
        for rule in self.route.iter().flat_map(|r| r.spec.rules.iter().flatten()) {
            let refs = rule.backend_refs.iter().flatten();
            refs.map(|r| (&r.name, r.weight)).collect::<Vec<_>>().hash(&mut hasher);
        }
        let traffic = self.traffic(target);
        (traffic.primary_image, traffic.canary_image, traffic.target_weight).hash(&mut hasher);
        let mut revisions: Vec<(Option<u64>, Option<&str>, Option<String>)> = self
            .replica_sets
            .iter()
            .map(|rs| {
                let image = rs.spec.as_ref().and_then(|s| s.template.as_ref());
                let image = image.and_then(|t| model::template_image(t, target.container.as_deref()));
                (model::revision_number(rs), rs.metadata.uid.as_deref(), image)
            })
            .collect();
        revisions.sort();
        revisions.hash(&mut hasher);
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
            metrics_gap: None,
            previous_image: revisions.get(1).map(|r| r.image.clone()),
            rollout_paused: model::paused(&self.primary),
            promoting: model::promoting(&self.primary).is_some(),
            building: false,
            token: self.token(target),
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
    if read.token(target) != context.token {
        return Err(BackendError::Conflict(format!(
            "{}'s Deployments or HTTPRoute changed since cockpit read them",
            target.name
        )));
    }
    let before = read.snapshot(target);
    let writer = Writer { client, target, user: &context.user, clock };
    let container = target.container.as_deref();
    let (summary, reason, on) = match plan {
        Plan::DeployPrimary { image } => {
            let from = model::image(&read.primary, container);
            let written = writer.deployment(&read.primary, |d| set_image(d, container, image)).await?;
            (format!("image {from} → {image}"), REASON_DEPLOY, reference::<Deployment>(&written.metadata))
        }
        Plan::StartCanary { image, weight } => {
            let on = writer.shift(&read, Some(image), *weight).await?;
            (format!("canary {image} at {weight} %"), REASON_DEPLOY, on)
        }
        Plan::SetCanaryWeight { from, to } => {
            let on = writer.shift(&read, None, *to).await?;
            (format!("canary {from} → {to} %"), REASON_PROMOTE, on)
        }
        Plan::PromoteFull => {
            let canary = read.canary.as_ref().ok_or_else(|| no_canary(target))?;
            let image = model::image(canary, container);
            let from_revision = read.revisions(target).first().map(|r| r.number.to_string()).unwrap_or_default();
            // The canary's template as the server has it, unknown fields included.
            let raw = writer.raw::<Deployment>().get(&target.canary_deployment).await;
            let what = describe("Deployment", &target.namespace, &target.canary_deployment);
            let raw = raw.map_err(|e| backend_error(&what, e))?;
            // The template copied is the one the decision was about, or none.
            if (raw.metadata.uid.as_deref(), raw.metadata.generation)
                != (canary.metadata.uid.as_deref(), canary.metadata.generation)
            {
                return Err(BackendError::Conflict(what));
            }
            let written = writer
                .deployment(&read.primary, |primary| {
                    copy_template(primary, &raw);
                    let annotations = primary.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    annotations.insert(model::ANNOTATION_PROMOTING.into(), image.clone());
                    annotations.insert(ANNOTATION_PROMOTED_FROM.into(), from_revision.clone());
                    Ok(())
                })
                .await?;
            let summary = format!("promoting {image} to the primary; traffic returns to it when its rollout completes");
            (summary, REASON_PROMOTE, reference::<Deployment>(&written.metadata))
        }
        Plan::AbortCanary => {
            let mut notes = Vec::new();
            let mut read = read.clone();
            if model::promoting(&read.primary).is_some() {
                let wanted = read.primary.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_PROMOTED_FROM));
                let wanted = wanted.and_then(|r| r.parse().ok());
                let (revision, primary) = writer.undo(&read, wanted).await?;
                notes.push(format!("primary back to revision {revision}{}", now_revision(&before)));
                read.primary = typed(&primary)?;
            }
            let on = writer.shift(&read, None, 0).await.map_err(|e| partly(e, &notes))?;
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
            let (revision, written) = writer.undo(&read, None).await?;
            let image = read.revisions(target).into_iter().find(|r| r.number == revision).map(|r| r.image);
            let summary = format!(
                "rolled back to revision {revision}{}: {} → {}",
                now_revision(&before),
                before.image,
                image.unwrap_or_default()
            );
            (summary, REASON_ROLLBACK, reference::<Deployment>(&written.metadata))
        }
        Plan::Restart => {
            let now = clock.now().rfc3339();
            let written = writer
                .deployment(&read.primary, |primary| {
                    *pointer(&mut primary.data, &["spec", "template", "metadata", "annotations", RESTARTED_AT]) =
                        json!(now);
                    Ok(())
                })
                .await?;
            ("restarted: every pod is replaced".to_owned(), REASON_RESTART, reference::<Deployment>(&written.metadata))
        }
        Plan::Rebuild => return Err(BackendError::Unsupported("rebuilding needs [docker] in cockpit.toml".into())),
        Plan::Stop => {
            return Err(BackendError::Unsupported(
                "stopping is for dev containers; scale the Deployment to 0 with kubectl if you mean it".into(),
            ));
        }
    };
    let fresh = Read::fetch(client, target).await.ok();
    let mut after = fresh.as_ref().map_or_else(|| before.clone(), |r| r.snapshot(target));
    if matches!(plan, Plan::UndoPrimary)
        || (matches!(plan, Plan::AbortCanary) && model::promoting(&read.primary).is_some())
    {
        // The controller makes the new revision later; say what it will be.
        after.revision = before.revision.map(|r| r + 1);
    }
    let mut summary = summary;
    // A replica-ratio canary reaches only the ratios its pods allow: say where it landed.
    if let (Plan::StartCanary { weight, .. } | Plan::SetCanaryWeight { to: weight, .. }, Some(fresh)) = (plan, &fresh) {
        let traffic = model::traffic(target, &fresh.primary, fresh.canary.as_ref(), fresh.route.as_ref());
        if traffic.target_weight != *weight {
            let how = traffic.note.map(|n| format!(": {n}")).unwrap_or_default();
            summary.push_str(&format!(" (effective {} %{how})", traffic.target_weight));
        }
    }
    if let Err(why) = writer.event(on, reason, &summary).await {
        summary.push_str(&format!(" (no Event recorded: {why})"));
    }
    Ok(Change { before, after, summary })
}

/// The revision an undo becomes, as `kubectl rollout undo` does it: the old
/// template comes back as a new revision, one past the newest (the
/// controller renumbers the old ReplicaSet), which the rollout pane shows
/// as "rev NEWEST → NEWEST+1".
fn now_revision(before: &Snapshot) -> String {
    before.revision.map(|newest| format!(" (now revision {})", newest + 1)).unwrap_or_default()
}

/// An error after some writes went through: says which did.
fn partly(error: BackendError, done: &[String]) -> BackendError {
    if done.is_empty() {
        return error;
    }
    let done = done.join("; ");
    match error {
        BackendError::Conflict(what) => BackendError::Conflict(format!("{what}; already done: {done}")),
        other => BackendError::Failed(format!("{other}; already done: {done}")),
    }
}

/// What a decision about a Deployment rests on: which object, its spec's
/// generation, and the promotion mark.
fn deployment_basis(deployment: &Deployment) -> (Option<&str>, Option<i64>, Option<&str>) {
    (deployment.metadata.uid.as_deref(), deployment.metadata.generation, model::promoting(deployment))
}

/// How often a write is tried again when only status changed under it.
const RETRIES: usize = 5;
/// How long a promotion step waits for the canary's pods to be ready.
const READY_WAIT: Duration = Duration::from_secs(120);
const READY_POLL: Duration = Duration::from_millis(250);

fn no_canary(target: &Target) -> BackendError {
    BackendError::NotFound(format!(
        "canary Deployment {}/{} (create it with 0 replicas; see assets/k8s)",
        target.namespace, target.canary_deployment
    ))
}

/// The object at `path` in `value`, made (as objects) where missing.
fn pointer<'v>(value: &'v mut Value, path: &[&str]) -> &'v mut Value {
    path.iter().fold(value, |at, key| {
        if !at.is_object() {
            *at = json!({});
        }
        at.as_object_mut().map(|o| o.entry(key.to_string()).or_insert(Value::Null)).unwrap_or_else(|| unreachable!())
    })
}

/// A raw object as its typed self, for reasoning about it.
fn typed<K: serde::de::DeserializeOwned>(raw: &DynamicObject) -> Result<K, BackendError> {
    serde_json::to_value(raw)
        .and_then(serde_json::from_value)
        .map_err(|e| BackendError::Failed(format!("the server sent an object cockpit cannot read: {e}")))
}

/// Sets the service's container's image (by name, else the first).
fn set_image(deployment: &mut DynamicObject, container: Option<&str>, image: &str) -> Result<(), BackendError> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let containers = pointer(&mut deployment.data, &["spec", "template", "spec", "containers"]);
    let entry = containers.as_array_mut().and_then(|list| match container {
        Some(wanted) => list.iter_mut().find(|c| c["name"] == wanted),
        None => list.first_mut(),
    });
    let Some(entry) = entry else {
        return Err(BackendError::Failed(match container {
            Some(c) => format!("Deployment {name} has no container `{c}`"),
            None => format!("Deployment {name} has no containers"),
        }));
    };
    entry["image"] = json!(image);
    Ok(())
}

/// The canary's pod spec and template annotations on the primary, as the
/// server has them (fields this build does not know included); the primary
/// keeps its own template labels, which its selector matches.
fn copy_template(primary: &mut DynamicObject, canary: &DynamicObject) {
    let from = &canary.data["spec"]["template"];
    *pointer(&mut primary.data, &["spec", "template", "spec"]) = from["spec"].clone();
    let annotations = pointer(&mut primary.data, &["spec", "template", "metadata", "annotations"]);
    *annotations = from["metadata"]["annotations"].clone();
    if annotations.is_null() {
        if let Some(meta) = primary.data["spec"]["template"]["metadata"].as_object_mut() {
            meta.remove("annotations");
        }
    }
}

fn reference<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> ObjectReference {
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

/// Removes the marks of a full promotion from a primary.
pub fn clear_promotion(primary: &mut DynamicObject) {
    if let Some(annotations) = primary.metadata.annotations.as_mut() {
        annotations.remove(model::ANNOTATION_PROMOTING);
        annotations.remove(ANNOTATION_PROMOTED_FROM);
    }
}

fn set_replicas(deployment: &mut DynamicObject, replicas: u32) {
    *pointer(&mut deployment.data, &["spec", "replicas"]) = json!(replicas);
}

/// What a decision about a Deployment rests on, read from the raw object.
fn raw_basis(deployment: &DynamicObject) -> (Option<&str>, Option<i64>, Option<&str>) {
    let promoting = deployment.metadata.annotations.as_ref().and_then(|a| a.get(model::ANNOTATION_PROMOTING));
    (deployment.metadata.uid.as_deref(), deployment.metadata.generation, promoting.map(String::as_str))
}

/// Writes on behalf of one user, for one service.
pub struct Writer<'a> {
    pub client: &'a Client,
    pub target: &'a Target,
    pub user: &'a str,
    pub clock: &'a Clock,
}

impl Writer<'_> {
    /// The raw API for a kind: objects as JSON, so fields this build's
    /// types do not know (a newer cluster, experimental Gateway API fields)
    /// survive a write.
    pub fn raw<K: Resource<DynamicType = ()>>(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.target.namespace, &ApiResource::erase::<K>(&()))
    }

    /// Makes `change` to a Deployment and replaces it at the resourceVersion
    /// it has on the server, provided what the decision was based on (its
    /// spec's generation, the promotion mark) is still what `based_on`
    /// says; else it is a conflict. A 409 (status or metadata moved on in
    /// between) means: read again, check again, make the change again.
    pub async fn deployment(
        &self,
        based_on: &Deployment,
        change: impl Fn(&mut DynamicObject) -> Result<(), BackendError>,
    ) -> Result<DynamicObject, BackendError> {
        let name = based_on.metadata.name.clone().unwrap_or_default();
        let what = describe("Deployment", &self.target.namespace, &name);
        let basis = deployment_basis(based_on);
        self.write(self.raw::<Deployment>(), &name, &what, |raw| raw_basis(raw) == basis, change).await
    }

    /// The same as `deployment`, for an HTTPRoute (its generation is its basis).
    async fn route(
        &self,
        based_on: &HttpRoute,
        change: impl Fn(&mut DynamicObject) -> Result<(), BackendError>,
    ) -> Result<DynamicObject, BackendError> {
        let name = based_on.metadata.name.clone().unwrap_or_default();
        let what = describe("HTTPRoute", &self.target.namespace, &name);
        let basis = (based_on.metadata.uid.as_deref(), based_on.metadata.generation);
        let same = |raw: &DynamicObject| (raw.metadata.uid.as_deref(), raw.metadata.generation) == basis;
        self.write(self.raw::<HttpRoute>(), &name, &what, same, change).await
    }

    async fn write(
        &self,
        api: Api<DynamicObject>,
        name: &str,
        what: &str,
        unchanged: impl Fn(&DynamicObject) -> bool,
        change: impl Fn(&mut DynamicObject) -> Result<(), BackendError>,
    ) -> Result<DynamicObject, BackendError> {
        for _ in 0..RETRIES {
            let mut object = api.get(name).await.map_err(|e| backend_error(what, e))?;
            if !unchanged(&object) {
                return Err(BackendError::Conflict(what.to_owned()));
            }
            change(&mut object)?;
            match api.replace(name, &PostParams::default(), &object).await {
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                result => return result.map_err(|e| backend_error(what, e)),
            }
        }
        Err(BackendError::Conflict(what.to_owned()))
    }

    /// Moves the canary to `weight` percent (with a new `image`, when one
    /// is given). With a route: the canary is first scaled so it can carry
    /// its share (the primary's replicas × the weight, never fewer than it
    /// has) and its pods must be ready before the weights move; at 0 the
    /// traffic goes first and the pods after. Without a route, by the
    /// replica ratio. Returns what the Event should be about.
    pub async fn shift(&self, read: &Read, image: Option<&str>, weight: u8) -> Result<ObjectReference, BackendError> {
        if let Some(missing) = read.missing_route.as_ref().filter(|_| weight > 0) {
            return Err(BackendError::NotFound(format!("{missing}, which holds {}'s traffic split", self.target.name)));
        }
        let container = self.target.container.as_deref();
        let Some(canary) = read.canary.as_ref() else {
            // No canary Deployment: its traffic (if a route still sends any) can still go.
            return match (&read.route, weight) {
                (Some(route), 0) => {
                    let written = self.route(route, |r| set_weights(r, self.target, 0)).await?;
                    Ok(reference::<HttpRoute>(&written.metadata))
                }
                (None, 0) => Ok(reference::<Deployment>(&read.primary.metadata)),
                _ => Err(no_canary(self.target)),
            };
        };
        let primary_replicas = model::spec_replicas(&read.primary);
        let canary_replicas = model::spec_replicas(canary);
        let canary_change = |replicas: u32| {
            move |d: &mut DynamicObject| {
                if let Some(image) = image {
                    set_image(d, container, image)?;
                }
                set_replicas(d, replicas);
                Ok(())
            }
        };
        let Some(route) = &read.route else {
            let (primary_to, canary_to) = model::ratio_replicas(primary_replicas, canary_replicas, weight);
            let resize_primary = |d: &mut DynamicObject| {
                set_replicas(d, primary_to);
                Ok(())
            };
            let written = if primary_to > primary_replicas {
                // Growing the primary before the canary shrinks keeps capacity.
                self.deployment(&read.primary, resize_primary).await?;
                let done = ["the primary resized".to_owned()];
                self.deployment(canary, canary_change(canary_to)).await.map_err(|e| partly(e, &done))?
            } else {
                let written = self.deployment(canary, canary_change(canary_to)).await?;
                if primary_to != primary_replicas {
                    let done = ["the canary updated".to_owned()];
                    self.deployment(&read.primary, resize_primary).await.map_err(|e| partly(e, &done))?;
                }
                written
            };
            return Ok(reference::<Deployment>(&written.metadata));
        };
        let weights = |r: &mut DynamicObject| set_weights(r, self.target, weight);
        if weight == 0 {
            // Traffic first, then the pods it no longer reaches.
            let written = self.route(route, weights).await?;
            let done = ["traffic moved to the primary".to_owned()];
            self.deployment(canary, canary_change(0)).await.map_err(|e| partly(e, &done))?;
            return Ok(reference::<HttpRoute>(&written.metadata));
        }
        // A route that cannot carry the split is refused before the canary is touched.
        let mut trial: DynamicObject = serde_json::to_value(route)
            .and_then(serde_json::from_value)
            .map_err(|e| BackendError::Failed(format!("cannot read the HTTPRoute: {e}")))?;
        set_weights(&mut trial, self.target, weight)?;
        let share = (u64::from(primary_replicas) * u64::from(weight)).div_ceil(100);
        let wanted = u32::try_from(share).unwrap_or(u32::MAX).max(1).max(canary_replicas);
        // Pods first, ready, then the traffic that reaches them.
        let written = self.deployment(canary, canary_change(wanted)).await?;
        let done = ["the canary updated".to_owned()];
        let ready = typed::<Deployment>(&written)?;
        self.until_ready(&ready, wanted).await.map_err(|e| partly(e, &done))?;
        let written = self.route(route, weights).await.map_err(|e| partly(e, &done))?;
        Ok(reference::<HttpRoute>(&written.metadata))
    }

    /// Waits until the canary has `wanted` ready pods of its current spec,
    /// so no share of traffic is sent to pods that cannot serve it.
    async fn until_ready(&self, canary: &Deployment, wanted: u32) -> Result<(), BackendError> {
        let name = canary.metadata.name.clone().unwrap_or_default();
        let what = describe("Deployment", &self.target.namespace, &name);
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let generation = canary.metadata.generation.unwrap_or(0);
        let deadline = tokio::time::Instant::now() + READY_WAIT;
        loop {
            let now = api.get(&name).await.map_err(|e| backend_error(&what, e))?;
            let status = now.status.clone().unwrap_or_default();
            let count = |n: Option<i32>| u32::try_from(n.unwrap_or(0)).unwrap_or(0);
            let (ready, updated, total) =
                (count(status.available_replicas), count(status.updated_replicas), count(status.replicas));
            // As `kubectl rollout status` would say it is done: only new pods, enough of them available.
            if status.observed_generation.unwrap_or(0) >= generation
                && updated >= wanted
                && total == updated
                && ready >= wanted
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BackendError::Failed(format!(
                    "{what} has {ready} of {wanted} pods ready after {} s: traffic not moved",
                    READY_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// `kubectl rollout undo`: a revision's template (the one before the
    /// current, or `to`) replaces the primary's, without
    /// `pod-template-hash`; nothing is written if it already matches. Also
    /// clears a promotion in flight. Returns the revision restored and the
    /// primary as written.
    pub async fn undo(&self, read: &Read, to: Option<u64>) -> Result<(u64, DynamicObject), BackendError> {
        let mut by_revision: Vec<(u64, &ReplicaSet)> =
            read.replica_sets.iter().filter_map(|rs| Some((model::revision_number(rs)?, rs))).collect();
        by_revision.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        let found = match to {
            Some(wanted) => by_revision.iter().find(|(number, _)| *number == wanted),
            None => by_revision.get(1),
        };
        let Some((revision, rs)) = found else {
            return Err(BackendError::Unsupported(match to {
                Some(wanted) => format!("{} has no revision {wanted} any more", self.target.primary),
                None => format!("{} has no earlier revision", self.target.primary),
            }));
        };
        let promoting = model::promoting(&read.primary).is_some();
        let same =
            model::undo_template(rs).is_some_and(|t| read.primary.spec.as_ref().is_some_and(|s| s.template == t));
        if same && !promoting {
            return Err(BackendError::Unsupported(format!(
                "{} already runs revision {revision}'s template: nothing to undo",
                self.target.primary
            )));
        }
        // The template as the server has it, fields this build does not know included.
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let what = describe("ReplicaSet", &self.target.namespace, &rs_name);
        let raw = self.raw::<ReplicaSet>().get(&rs_name).await.map_err(|e| backend_error(&what, e))?;
        let mut template = raw.data["spec"]["template"].clone();
        if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
            labels.remove(model::POD_TEMPLATE_HASH);
        }
        let written = self
            .deployment(&read.primary, |primary| {
                clear_promotion(primary);
                *pointer(&mut primary.data, &["spec", "template"]) = template.clone();
                Ok(())
            })
            .await?;
        Ok((*revision, written))
    }

    /// Creates an Event about `on`: the shared record of who did what.
    pub async fn event(&self, on: ObjectReference, reason: &str, summary: &str) -> Result<(), String> {
        let now = self.clock.now();
        let namespace = on.namespace.clone().unwrap_or_else(|| self.target.namespace.clone());
        // The server completes the name: two cockpits acting at once never clash.
        let prefix = format!("{}.cockpit.", on.name.as_deref().unwrap_or("object"));
        let time = k8s_openapi::jiff::Timestamp::from_millisecond(now.0).unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                generate_name: Some(prefix),
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

/// Weights scaled to sum to 100 (largest remainders); all zero stays so.
fn normalized(weights: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let total: u64 = weights.values().sum();
    if total == 0 {
        return weights.clone();
    }
    let mut out: BTreeMap<String, u64> = weights.iter().map(|(k, w)| (k.clone(), w * 100 / total)).collect();
    let mut left = 100 - out.values().sum::<u64>();
    let mut remainders: Vec<(u64, &String)> = weights.iter().map(|(k, w)| (w * 100 % total, k)).collect();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    for (_, key) in remainders {
        if left == 0 {
            break;
        }
        *out.entry(key.clone()).or_default() += 1;
        left -= 1;
    }
    out
}

/// Annotation on a route while a canary has weight: each rule's weights as
/// they were before the canary got any, which every step splits from, so
/// rounding never drifts and 0 restores them exactly.
pub const ANNOTATION_BASE_WEIGHTS: &str = "cockpit.dev/base-weights";

/// Sets the canary's weight in every rule that names the canary backend:
/// the canary gets `w`, the rule's other backends share 100 − w in the
/// proportions they had before the canary got any (largest remainders, so
/// the rule sums to 100); at
/// 0 those weights come back exactly. A route without such a rule, or whose
/// other backends had no weight at all, cannot carry the split: an error,
/// not a silent no-op.
pub fn set_weights(route: &mut DynamicObject, target: &Target, weight: u8) -> Result<(), BackendError> {
    let weight = u64::from(weight.min(100));
    let name = route.metadata.name.clone().unwrap_or_default();
    let canary = target.canary_backend.as_str();
    let recorded = route.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_BASE_WEIGHTS));
    let mut base: Vec<BTreeMap<String, u64>> = recorded.and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
    let mut found = false;
    for (index, rule) in route.data["spec"]["rules"].as_array_mut().into_iter().flatten().enumerate() {
        let Some(refs) = rule["backendRefs"].as_array_mut() else { continue };
        if !refs.iter().any(|r| r["name"] == canary) {
            continue;
        }
        found = true;
        let name_of = |r: &Value| r["name"].as_str().unwrap_or_default().to_owned();
        // A backendRef without a weight has weight 1.
        let current: BTreeMap<String, u64> = refs
            .iter()
            .filter(|r| r["name"] != canary)
            .map(|r| (name_of(r), r["weight"].as_u64().unwrap_or(1)))
            .collect();
        if base.len() <= index {
            base.resize(index + 1, BTreeMap::new());
        }
        if base[index].is_empty() {
            // The canary's own weight is kept beside: restoring is exact when
            // it had none, else the others are scaled to the whole.
            let canary_now: u64 =
                refs.iter().filter(|r| r["name"] == canary).map(|r| r["weight"].as_u64().unwrap_or(1)).sum();
            base[index] = current;
            base[index].insert(canary.to_owned(), canary_now);
        }
        let captured_with = base[index].get(canary).copied().unwrap_or(0);
        let from: BTreeMap<String, u64> =
            base[index].iter().filter(|(k, _)| *k != canary).map(|(k, w)| (k.clone(), *w)).collect();
        if weight == 0 {
            // The canary emptied: the others get what they had before it.
            let restored = if captured_with == 0 { from.clone() } else { normalized(&from) };
            for backend in refs.iter_mut() {
                let value =
                    if backend["name"] == canary { 0 } else { restored.get(&name_of(backend)).copied().unwrap_or(0) };
                backend["weight"] = json!(value);
            }
            continue;
        }
        let mut total: u64 = from.values().sum();
        let mut shares: BTreeMap<String, u64> = from.clone();
        if total == 0 {
            // No weights to keep the proportions of: all to the primary backend.
            if !from.contains_key(&target.primary_backend) {
                return Err(BackendError::Failed(format!(
                    "HTTPRoute {}/{name}: the backends beside `{canary}` have no weight and none is `{}`",
                    target.namespace, target.primary_backend
                )));
            }
            shares.insert(target.primary_backend.clone(), 1);
            total = 1;
        }
        let rest = 100 - weight;
        let mut given: BTreeMap<String, u64> =
            shares.iter().map(|(backend, w)| (backend.clone(), w * rest / total)).collect();
        let mut left = rest - given.values().sum::<u64>();
        // The leftover, one by one, to the largest remainders among backends that have a share.
        let mut remainders: Vec<(u64, String)> =
            shares.iter().filter(|(_, w)| **w > 0).map(|(backend, w)| (w * rest % total, backend.clone())).collect();
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (_, backend) in remainders.iter().cycle().take(remainders.len().max(1) * 2) {
            if left == 0 {
                break;
            }
            *given.entry(backend.clone()).or_default() += 1;
            left -= 1;
        }
        for backend in refs.iter_mut() {
            let value =
                if backend["name"] == canary { weight } else { given.get(&name_of(backend)).copied().unwrap_or(0) };
            backend["weight"] = json!(value);
        }
    }
    if !found {
        return Err(BackendError::Failed(format!(
            "HTTPRoute {}/{name} has no rule with a backendRef to `{canary}`: add one (weight 0), or name the \
             canary's Service in [service.kubernetes] canary_backend",
            target.namespace
        )));
    }
    let annotations = route.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if weight == 0 {
        annotations.remove(ANNOTATION_BASE_WEIGHTS);
    } else {
        annotations.insert(ANNOTATION_BASE_WEIGHTS.into(), serde_json::to_string(&base).unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devtools::fake_apiserver::{Config as ServerConfig, FakeApiServer};

    fn client(server: &FakeApiServer) -> Client {
        Client::try_from(kube::Config::new(server.url().parse().expect("a URI"))).expect("a client")
    }

    fn checkout() -> Target {
        let config: crate::config::Config =
            toml::from_str("[[service]]\nname = \"checkout\"\nstage = \"mission-critical\"\n").expect("a config");
        let mut target = model::discover(&config, &["shop".into()], &[], &[]).remove(0);
        target.route = Some("checkout".into());
        target
    }

    #[tokio::test]
    async fn writes_keep_what_others_and_newer_clusters_put_there_and_refuse_a_changed_spec() {
        let server = FakeApiServer::start(ServerConfig::default()).await.expect("the server");
        server.seed(0, 0).expect("seeded");
        let client = client(&server);
        let target = checkout();
        let clock = Clock::system();
        let writer = Writer { client: &client, target: &target, user: "alice", clock: &clock };
        let api: Api<Deployment> = Api::namespaced(client.clone(), "shop");
        let raw = writer.raw::<Deployment>();

        // Fields these types do not know (a newer cluster), in the spec and in a container.
        let mut canary = raw.get("checkout-canary").await.expect("read");
        canary.data["spec"]["futureField"] = json!("kept");
        canary.data["spec"]["template"]["spec"]["containers"][0]["futureContainerField"] = json!(7);
        raw.replace("checkout-canary", &PostParams::default(), &canary).await.expect("written");
        // Someone labels the canary after cockpit read it: not a conflict, and the label stays.
        let read = api.get("checkout-canary").await.expect("read");
        let mut labelled = raw.get("checkout-canary").await.expect("read");
        labelled.metadata.labels.get_or_insert_with(Default::default).insert("team".into(), "payments".into());
        raw.replace("checkout-canary", &PostParams::default(), &labelled).await.expect("labelled");
        let written = writer
            .deployment(&read, |d| {
                set_replicas(d, 2);
                set_image(d, None, "shop/checkout:2.3.0")
            })
            .await
            .expect("a metadata race is not a conflict");
        assert_eq!(written.data["spec"]["replicas"], 2);
        assert_eq!(written.data["spec"]["template"]["spec"]["containers"][0]["image"], "shop/checkout:2.3.0");
        assert_eq!(written.data["spec"]["futureField"], "kept");
        assert_eq!(written.data["spec"]["template"]["spec"]["containers"][0]["futureContainerField"], 7);
        assert_eq!(written.metadata.labels.as_ref().and_then(|l| l.get("team")).map(String::as_str), Some("payments"));

        // Someone scales it: a spec race is a conflict, and their value stays.
        let read = api.get("checkout-canary").await.expect("read");
        let mut scaled = raw.get("checkout-canary").await.expect("read");
        set_replicas(&mut scaled, 5);
        raw.replace("checkout-canary", &PostParams::default(), &scaled).await.expect("scaled");
        let raced = writer
            .deployment(&read, |d| {
                set_replicas(d, 3);
                Ok(())
            })
            .await;
        assert!(matches!(raced, Err(BackendError::Conflict(_))), "{raced:?}");
        assert_eq!(model::spec_replicas(&api.get("checkout-canary").await.expect("read")), 5);

        // The same for the route's weights.
        let routes: Api<HttpRoute> = Api::namespaced(client.clone(), "shop");
        let read = routes.get("checkout").await.expect("read");
        let raw_routes = writer.raw::<HttpRoute>();
        let mut other = raw_routes.get("checkout").await.expect("read");
        set_weights(&mut other, &target, 30).expect("the route has the canary backend");
        raw_routes.replace("checkout", &PostParams::default(), &other).await.expect("reweighted");
        let raced = writer.route(&read, |r| set_weights(r, &target, 50)).await;
        assert!(matches!(raced, Err(BackendError::Conflict(_))), "{raced:?}");
        let now = routes.get("checkout").await.expect("read");
        assert_eq!(model::route_weights(&now, "checkout-canary"), Some((70, 30)));
    }

    fn route(refs: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"rules": [{"backendRefs": refs}]},
        }))
        .expect("a route")
    }

    fn weights(route: &DynamicObject) -> Vec<(String, u64)> {
        route.data["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .expect("refs")
            .iter()
            .map(|r| (r["name"].as_str().unwrap_or_default().to_owned(), r["weight"].as_u64().unwrap_or(1)))
            .collect()
    }

    #[test]
    fn weights_give_the_canary_its_share_and_the_others_theirs_in_proportion() {
        let target = checkout();
        let mut two = route(json!([{"name": "checkout", "weight": 90}, {"name": "checkout-canary", "weight": 10}]));
        set_weights(&mut two, &target, 25).expect("set");
        assert_eq!(weights(&two), [("checkout".into(), 75), ("checkout-canary".into(), 25)]);
        let mut three = route(json!([
            {"name": "checkout", "weight": 60}, {"name": "checkout-eu", "weight": 30}, {"name": "checkout-canary", "weight": 10}
        ]));
        set_weights(&mut three, &target, 50).expect("set");
        assert_eq!(
            weights(&three),
            [("checkout".into(), 33), ("checkout-eu".into(), 17), ("checkout-canary".into(), 50)],
            "the rule still sums to 100"
        );
        // Steps split from the weights before the canary: no drift, and 0 restores them.
        let mut split = route(json!([
            {"name": "checkout", "weight": 50}, {"name": "checkout-eu", "weight": 50}, {"name": "checkout-canary", "weight": 0}
        ]));
        for step in [5, 99, 25] {
            set_weights(&mut split, &target, step).expect("set");
        }
        assert_eq!(
            weights(&split),
            [("checkout".into(), 38), ("checkout-eu".into(), 37), ("checkout-canary".into(), 25)]
        );
        set_weights(&mut split, &target, 99).expect("set");
        assert_eq!(
            weights(&split),
            [("checkout".into(), 1), ("checkout-eu".into(), 0), ("checkout-canary".into(), 99)]
        );
        set_weights(&mut split, &target, 0).expect("set");
        assert_eq!(
            weights(&split),
            [("checkout".into(), 50), ("checkout-eu".into(), 50), ("checkout-canary".into(), 0)]
        );
        assert!(!split.metadata.annotations.unwrap_or_default().contains_key(ANNOTATION_BASE_WEIGHTS));
        let mut unweighted = route(json!([{"name": "checkout"}, {"name": "checkout-canary", "weight": 0}]));
        set_weights(&mut unweighted, &target, 5).expect("set");
        assert_eq!(weights(&unweighted), [("checkout".into(), 95), ("checkout-canary".into(), 5)]);
        let mut without = route(json!([{"name": "checkout", "port": 80}]));
        let error = set_weights(&mut without, &target, 25).expect_err("no canary backend");
        assert!(error.to_string().contains("no rule with a backendRef to `checkout-canary`"), "{error}");
    }
}
