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
/// Set beside `cockpit.dev/promoting`: the primary's revision before the
/// promotion, which a roll back during it returns to.
pub const ANNOTATION_PROMOTED_FROM: &str = "cockpit.dev/promoted-from-revision";

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
    let container = target.container.as_deref();
    let (summary, reason, on) = match plan {
        Plan::DeployPrimary { image } => {
            let from = model::image(&read.primary, container);
            let written = writer.deployment(&read.primary, |d| set_image(d, target, image)).await?;
            (format!("image {from} → {image}"), REASON_DEPLOY, reference(&written))
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
            let written = writer
                .deployment(&read.primary, |primary| {
                    copy_template(primary, canary);
                    let annotations = primary.metadata.annotations.get_or_insert_with(BTreeMap::new);
                    annotations.insert(model::ANNOTATION_PROMOTING.into(), image.clone());
                    annotations.insert(ANNOTATION_PROMOTED_FROM.into(), from_revision.clone());
                    Ok(())
                })
                .await?;
            let summary = format!("promoting {image} to the primary; traffic returns to it when its rollout completes");
            (summary, REASON_PROMOTE, reference(&written))
        }
        Plan::AbortCanary => {
            let mut notes = Vec::new();
            let mut read = read.clone();
            if model::promoting(&read.primary).is_some() {
                let wanted = read.primary.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_PROMOTED_FROM));
                let wanted = wanted.and_then(|r| r.parse().ok());
                let (revision, primary) = writer.undo(&read, wanted).await?;
                notes.push(format!("primary back to revision {revision}"));
                read.primary = primary;
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
            let summary = format!("rolled back to revision {revision} ({})", image.unwrap_or_default());
            (summary, REASON_ROLLBACK, reference(&written))
        }
        Plan::Restart => {
            let now = clock.now().rfc3339();
            let written = writer
                .deployment(&read.primary, |primary| {
                    if let Some(spec) = primary.spec.as_mut() {
                        let meta = spec.template.metadata.get_or_insert_with(ObjectMeta::default);
                        meta.annotations.get_or_insert_with(BTreeMap::new).insert(RESTARTED_AT.into(), now.clone());
                    }
                    Ok(())
                })
                .await?;
            ("restarted: every pod is replaced".to_owned(), REASON_RESTART, reference(&written))
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
    if let Plan::UndoPrimary = plan {
        // The controller creates the new revision later; say what it will be.
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
    /// Makes `change` to a Deployment as read (`based_on`) and replaces it
    /// at that resourceVersion. On a 409 the object is read again: if its
    /// spec or promotion mark moved on, it is a conflict; if only status or
    /// metadata did, the same change is made to the fresh object, which
    /// keeps what the other writer did.
    pub async fn deployment(
        &self,
        based_on: &Deployment,
        change: impl Fn(&mut Deployment) -> Result<(), BackendError>,
    ) -> Result<Deployment, BackendError> {
        let name = based_on.metadata.name.clone().unwrap_or_default();
        let what = describe("Deployment", &self.target.namespace, &name);
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let mut current = based_on.clone();
        for _ in 0..RETRIES {
            let mut attempt = current.clone();
            change(&mut attempt)?;
            match api.replace(&name, &PostParams::default(), &attempt).await {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let fresh = api.get(&name).await.map_err(|e| backend_error(&what, e))?;
                    if deployment_basis(&fresh) != deployment_basis(based_on) {
                        return Err(BackendError::Conflict(what));
                    }
                    current = fresh;
                }
                result => return result.map_err(|e| backend_error(&what, e)),
            }
        }
        Err(BackendError::Conflict(what))
    }

    /// The same as `deployment`, for an HTTPRoute (its generation is its basis).
    async fn route(
        &self,
        based_on: &HttpRoute,
        change: impl Fn(&mut HttpRoute) -> Result<(), BackendError>,
    ) -> Result<HttpRoute, BackendError> {
        let name = based_on.metadata.name.clone().unwrap_or_default();
        let what = describe("HTTPRoute", &self.target.namespace, &name);
        let api: Api<HttpRoute> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let mut current = based_on.clone();
        for _ in 0..RETRIES {
            let mut attempt = current.clone();
            change(&mut attempt)?;
            match api.replace(&name, &PostParams::default(), &attempt).await {
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let fresh = api.get(&name).await.map_err(|e| backend_error(&what, e))?;
                    if (&fresh.metadata.uid, fresh.metadata.generation)
                        != (&based_on.metadata.uid, based_on.metadata.generation)
                    {
                        return Err(BackendError::Conflict(what));
                    }
                    current = fresh;
                }
                result => return result.map_err(|e| backend_error(&what, e)),
            }
        }
        Err(BackendError::Conflict(what))
    }

    /// Moves the canary to `weight` percent (with a new `image`, when one
    /// is given). With a route: the canary is first scaled so it can carry
    /// its share (the primary's replicas × the weight, never fewer than it
    /// has), then the weights move; at 0 the traffic goes first and the
    /// pods after. Without a route, by the replica ratio. Returns what the
    /// Event should be about.
    pub async fn shift(&self, read: &Read, image: Option<&str>, weight: u8) -> Result<ObjectReference, BackendError> {
        let Some(canary) = read.canary.as_ref() else {
            return if weight == 0 { Ok(reference(&read.primary)) } else { Err(no_canary(self.target)) };
        };
        let primary_replicas = model::spec_replicas(&read.primary);
        let canary_replicas = model::spec_replicas(canary);
        let canary_change = |replicas: u32| {
            move |d: &mut Deployment| {
                if let Some(image) = image {
                    set_image(d, self.target, image)?;
                }
                set_replicas(d, replicas);
                Ok(())
            }
        };
        let Some(route) = &read.route else {
            let (primary_to, canary_to) = model::ratio_replicas(primary_replicas, canary_replicas, weight);
            let resize_primary = |d: &mut Deployment| {
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
            return Ok(reference(&written));
        };
        let weights = |r: &mut HttpRoute| set_weights(r, self.target, weight);
        if weight == 0 {
            // Traffic first, then the pods it no longer reaches.
            let written = self.route(route, weights).await?;
            let done = ["traffic moved to the primary".to_owned()];
            self.deployment(canary, canary_change(0)).await.map_err(|e| partly(e, &done))?;
            return Ok(reference(&written));
        }
        let share = (u64::from(primary_replicas) * u64::from(weight)).div_ceil(100);
        let wanted = u32::try_from(share).unwrap_or(u32::MAX).max(1).max(canary_replicas);
        // Pods first, then the traffic that reaches them.
        self.deployment(canary, canary_change(wanted)).await?;
        let done = ["the canary updated".to_owned()];
        let written = self.route(route, weights).await.map_err(|e| partly(e, &done))?;
        Ok(reference(&written))
    }

    /// `kubectl rollout undo`: a revision's template (the one before the
    /// current, or `to`) replaces the primary's, without
    /// `pod-template-hash`; nothing is written if it already matches. Also
    /// clears a promotion in flight. Returns the revision restored and the
    /// primary as written.
    pub async fn undo(&self, read: &Read, to: Option<u64>) -> Result<(u64, Deployment), BackendError> {
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
        let template = model::undo_template(rs)
            .ok_or_else(|| BackendError::Failed(format!("revision {revision} has no pod template")))?;
        let promoting = model::promoting(&read.primary).is_some();
        let same = read.primary.spec.as_ref().is_some_and(|s| s.template == template);
        if same && !promoting {
            return Err(BackendError::Unsupported(format!(
                "{} already runs revision {revision}'s template: nothing to undo",
                self.target.primary
            )));
        }
        let written = self
            .deployment(&read.primary, |primary| {
                if let Some(annotations) = primary.metadata.annotations.as_mut() {
                    annotations.remove(model::ANNOTATION_PROMOTING);
                    annotations.remove(ANNOTATION_PROMOTED_FROM);
                }
                if let Some(spec) = primary.spec.as_mut() {
                    spec.template = template.clone();
                }
                Ok(())
            })
            .await?;
        Ok((*revision, written))
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
/// the two backends' weights become (100 − w, w). A route without such a
/// rule cannot carry the split: that is an error, not a silent no-op.
pub fn set_weights(route: &mut HttpRoute, target: &Target, weight: u8) -> Result<(), BackendError> {
    let weight = i32::from(weight.min(100));
    let mut found = false;
    for rule in route.spec.rules.iter_mut().flatten() {
        let Some(refs) = rule.backend_refs.as_mut() else { continue };
        if !refs.iter().any(|r| r.name == target.canary_backend) {
            continue;
        }
        found = true;
        for backend in refs.iter_mut() {
            if backend.name == target.canary_backend {
                backend.weight = Some(weight);
            } else if backend.name == target.primary_backend {
                backend.weight = Some(100 - weight);
            }
        }
    }
    if found {
        Ok(())
    } else {
        Err(BackendError::Failed(format!(
            "HTTPRoute {}/{} has no rule with a backendRef to `{}`: add one (weight 0), or name the canary's \
             Service in [service.kubernetes] canary_backend",
            target.namespace,
            route.metadata.name.as_deref().unwrap_or_default(),
            target.canary_backend
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devtools::fake_apiserver::{Config as ServerConfig, FakeApiServer};

    fn client(server: &FakeApiServer) -> Client {
        Client::try_from(kube::Config::new(server.url().parse().expect("a URI"))).expect("a client")
    }

    async fn checkout(client: &Client) -> Target {
        let config: crate::config::Config =
            toml::from_str("[[service]]\nname = \"checkout\"\nstage = \"mission-critical\"\n").expect("a config");
        let mut target = model::discover(&config, &["shop".into()], &[], &[]).remove(0);
        target.route = Some("checkout".into());
        let _ = Read::fetch(client, &target).await.expect("the seeded service reads");
        target
    }

    #[tokio::test]
    async fn a_write_raced_by_metadata_is_remade_on_the_fresh_object_and_a_spec_race_is_a_conflict() {
        let server = FakeApiServer::start(ServerConfig::default()).await.expect("the server");
        server.seed(0, 0).expect("seeded");
        let client = client(&server);
        let target = checkout(&client).await;
        let clock = Clock::system();
        let writer = Writer { client: &client, target: &target, user: "alice", clock: &clock };
        let api: Api<Deployment> = Api::namespaced(client.clone(), "shop");

        // Someone labels the canary after cockpit read it: the server refuses
        // cockpit's write (409), cockpit makes its change to the fresh object.
        let read = api.get("checkout-canary").await.expect("read");
        let mut labelled = read.clone();
        labelled.metadata.labels.get_or_insert_with(Default::default).insert("team".into(), "payments".into());
        api.replace("checkout-canary", &PostParams::default(), &labelled).await.expect("labelled");
        let written = writer
            .deployment(&read, |d| {
                set_replicas(d, 2);
                Ok(())
            })
            .await
            .expect("a metadata race is not a conflict");
        assert_eq!(model::spec_replicas(&written), 2);
        assert_eq!(written.metadata.labels.as_ref().and_then(|l| l.get("team")).map(String::as_str), Some("payments"));

        // Someone scales it: a spec race is a conflict, and their value stays.
        let read = api.get("checkout-canary").await.expect("read");
        let mut scaled = read.clone();
        set_replicas(&mut scaled, 5);
        api.replace("checkout-canary", &PostParams::default(), &scaled).await.expect("scaled");
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
        let mut other = read.clone();
        set_weights(&mut other, &target, 30).expect("the route has the canary backend");
        routes.replace("checkout", &PostParams::default(), &other).await.expect("reweighted");
        let raced = writer.route(&read, |r| set_weights(r, &target, 50)).await;
        assert!(matches!(raced, Err(BackendError::Conflict(_))), "{raced:?}");
        let now = routes.get("checkout").await.expect("read");
        assert_eq!(model::route_weights(&now, "checkout", "checkout-canary"), Some((70, 30)));
    }

    #[test]
    fn a_route_without_the_canary_backend_cannot_carry_the_split() {
        let config: crate::config::Config =
            toml::from_str("[[service]]\nname = \"web\"\nstage = \"production\"\n").expect("a config");
        let target = model::discover(&config, &["shop".into()], &[], &[]).remove(0);
        let mut route: HttpRoute = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"rules": [{"backendRefs": [{"name": "web", "port": 80}]}]},
        }))
        .expect("a route");
        let error = set_weights(&mut route, &target, 25).expect_err("no canary backend");
        assert!(error.to_string().contains("no rule with a backendRef to `web-canary`"), "{error}");
    }
}
