//! What the cluster's objects mean to cockpit, as pure functions: which
//! Deployments make up which service, a Deployment's rollout judged like
//! `kubectl rollout status`, its revisions from its ReplicaSets, and the
//! canary's share of traffic from an HTTPRoute or a replica ratio.
//!
//! Nothing here talks to a server; `watch` feeds it the watched objects and
//! `actions` uses it to plan writes.

use crate::config::{CanaryConfig, Config};
use crate::domain::canary::CanaryPlan;
use crate::domain::rollout::{self, Condition, ReplicaCounts, Revision, RolloutStatus};
use crate::domain::{Stage, Timestamp};
use crate::event::{ServiceInfo, Traffic};
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use std::collections::BTreeMap;

pub const LABEL_SERVICE: &str = "cockpit.dev/service";
pub const LABEL_STAGE: &str = "cockpit.dev/stage";
pub const LABEL_TRACK: &str = "cockpit.dev/track";
/// Set on a primary Deployment while a full promotion waits for its
/// rollout; the value is the image being promoted.
pub const ANNOTATION_PROMOTING: &str = "cockpit.dev/promoting";
/// The annotation the Deployment controller numbers ReplicaSets with.
pub const ANNOTATION_REVISION: &str = "deployment.kubernetes.io/revision";
/// The label the Deployment controller adds to tell templates apart;
/// `kubectl rollout undo` drops it when copying a template back.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A service as found in the cluster: where its parts are.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    pub namespace: String,
    pub stage: Stage,
    pub owner: Option<String>,
    pub depends_on: Vec<String>,
    pub canary: CanaryConfig,
    /// The primary Deployment's name.
    pub primary: String,
    /// The canary Deployment's name (it may not exist).
    pub canary_deployment: String,
    /// The container whose image is the service's version; default the first.
    pub container: Option<String>,
    /// The HTTPRoute named in the config; else one labelled with the service.
    pub route: Option<String>,
    pub primary_backend: String,
    pub canary_backend: String,
    /// Listed in cockpit.toml (as opposed to found by its labels).
    pub configured: bool,
}

impl Target {
    pub fn info(&self) -> ServiceInfo {
        ServiceInfo {
            name: self.name.clone(),
            stage: self.stage,
            owner: self.owner.clone(),
            depends_on: self.depends_on.clone(),
            plan: self.plan(),
            thresholds: self.canary.thresholds(),
        }
    }

    pub fn plan(&self) -> CanaryPlan {
        self.canary.steps.clone()
    }
}

fn label<'a>(meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or_default()
}

/// The services to show: every `[[service]]` of the config (in its
/// `[service.kubernetes] namespace`, else the first watched namespace),
/// then every other `cockpit.dev/service` label on a Deployment in the
/// watched namespaces. Sorted by stage and name for a stable inventory.
pub fn discover(
    config: &Config,
    namespaces: &[String],
    deployments: &[&Deployment],
    routes: &[&HttpRoute],
) -> Vec<Target> {
    let default_ns = namespaces.first().cloned().unwrap_or_else(|| "default".into());
    let mut targets: Vec<Target> = config
        .services
        .iter()
        .map(|service| {
            let k = &service.kubernetes;
            let namespace = k.namespace.clone().unwrap_or_else(|| default_ns.clone());
            let route = k.route.clone().or_else(|| labelled_route(routes, &namespace, &service.name));
            Target {
                name: service.name.clone(),
                namespace,
                stage: service.stage,
                owner: service.owner.clone(),
                depends_on: service.depends_on.clone(),
                canary: service.canary.resolve(&config.canary),
                primary: k.deployment.clone().unwrap_or_else(|| service.name.clone()),
                canary_deployment: k.canary.clone().unwrap_or_else(|| format!("{}-canary", service.name)),
                container: k.container.clone(),
                route,
                primary_backend: k.primary_backend.clone().unwrap_or_else(|| service.name.clone()),
                canary_backend: k.canary_backend.clone().unwrap_or_else(|| format!("{}-canary", service.name)),
                configured: true,
            }
        })
        .collect();
    // Labelled Deployments of services the config does not list, by (namespace, service).
    let mut labelled: BTreeMap<(String, String), Tracks<'_>> = BTreeMap::new();
    for deployment in deployments {
        let meta = &deployment.metadata;
        let Some(service) = label(meta, LABEL_SERVICE) else { continue };
        if !namespaces.iter().any(|ns| ns == namespace_of(meta)) || targets.iter().any(|t| t.name == service) {
            continue;
        }
        let entry = labelled.entry((namespace_of(meta).to_owned(), service.to_owned())).or_default();
        match label(meta, LABEL_TRACK) {
            Some("canary") => entry.1 = Some(deployment),
            _ => entry.0 = Some(deployment),
        }
    }
    for ((namespace, service), (primary, canary)) in labelled {
        // A service whose names clash across namespaces is shown once: the first namespace wins.
        let Some(primary) = primary else { continue };
        if targets.iter().any(|t| t.name == service) {
            continue;
        }
        let stage = label(&primary.metadata, LABEL_STAGE).and_then(|s| s.parse().ok()).unwrap_or(Stage::Production);
        let canary_deployment =
            canary.map(|c| name_of(&c.metadata).to_owned()).unwrap_or_else(|| format!("{service}-canary"));
        targets.push(Target {
            route: labelled_route(routes, &namespace, &service),
            primary_backend: service.clone(),
            canary_backend: format!("{service}-canary"),
            name: service,
            stage,
            owner: None,
            depends_on: Vec::new(),
            canary: config.canary.clone(),
            primary: name_of(&primary.metadata).to_owned(),
            canary_deployment,
            container: None,
            namespace,
            configured: false,
        });
    }
    targets.sort_by(|a, b| (a.stage, &a.name).cmp(&(b.stage, &b.name)));
    targets
}

/// A labelled service's primary and canary Deployments, as found.
type Tracks<'a> = (Option<&'a Deployment>, Option<&'a Deployment>);

fn labelled_route(routes: &[&HttpRoute], namespace: &str, service: &str) -> Option<String> {
    routes
        .iter()
        .filter(|r| namespace_of(&r.metadata) == namespace && label(&r.metadata, LABEL_SERVICE) == Some(service))
        .map(|r| name_of(&r.metadata).to_owned())
        .min()
}

/// The index of the service's container in a pod template.
pub fn container_index(template: &PodTemplateSpec, container: Option<&str>) -> Option<usize> {
    let containers = &template.spec.as_ref()?.containers;
    match container {
        Some(name) => containers.iter().position(|c| c.name == name),
        None => (!containers.is_empty()).then_some(0),
    }
}

/// The image of the service's container in a pod template.
pub fn template_image(template: &PodTemplateSpec, container: Option<&str>) -> Option<String> {
    let index = container_index(template, container)?;
    template.spec.as_ref()?.containers.get(index)?.image.clone()
}

pub fn image(deployment: &Deployment, container: Option<&str>) -> String {
    deployment.spec.as_ref().and_then(|s| template_image(&s.template, container)).unwrap_or_default()
}

pub fn spec_replicas(deployment: &Deployment) -> u32 {
    deployment.spec.as_ref().and_then(|s| s.replicas).map_or(1, |r| u32::try_from(r).unwrap_or(0))
}

pub fn paused(deployment: &Deployment) -> bool {
    deployment.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn promoting(deployment: &Deployment) -> Option<&str> {
    deployment.metadata.annotations.as_ref()?.get(ANNOTATION_PROMOTING).map(String::as_str)
}

fn count(value: Option<i32>) -> u32 {
    value.map_or(0, |v| u32::try_from(v).unwrap_or(0))
}

fn millis(time: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Timestamp {
    Timestamp(time.0.as_millisecond())
}

/// The ReplicaSets a Deployment owns, by owner reference.
pub fn owned<'a>(deployment: &Deployment, replica_sets: &[&'a ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let Some(uid) = deployment.metadata.uid.as_deref() else { return Vec::new() };
    replica_sets
        .iter()
        .copied()
        .filter(|rs| {
            namespace_of(&rs.metadata) == namespace_of(&deployment.metadata)
                && rs.metadata.owner_references.iter().flatten().any(|o| o.uid == uid && o.kind == "Deployment")
        })
        .collect()
}

pub fn revision_number(rs: &ReplicaSet) -> Option<u64> {
    rs.metadata.annotations.as_ref()?.get(ANNOTATION_REVISION)?.parse().ok()
}

/// Revisions from the owned ReplicaSets' revision annotations, newest first.
pub fn revisions(replica_sets: &[&ReplicaSet], container: Option<&str>) -> Vec<Revision> {
    let mut revisions: Vec<Revision> = replica_sets
        .iter()
        .filter_map(|rs| {
            let number = revision_number(rs)?;
            let image = rs.spec.as_ref()?.template.as_ref().and_then(|t| template_image(t, container))?;
            let created = rs.metadata.creation_timestamp.as_ref().map_or(Timestamp(0), millis);
            Some(Revision { number, image, created })
        })
        .collect();
    revisions.sort_by_key(|r| std::cmp::Reverse(r.number));
    revisions
}

/// A Deployment's rollout, judged exactly as `kubectl rollout status` does.
pub fn rollout_status(deployment: &Deployment, replica_sets: &[&ReplicaSet], container: Option<&str>) -> RolloutStatus {
    let status = deployment.status.clone().unwrap_or_default();
    let generation = deployment.metadata.generation.map_or(0, |g| u64::try_from(g).unwrap_or(0));
    let observed_generation = status.observed_generation.map_or(0, |g| u64::try_from(g).unwrap_or(0));
    let replicas = ReplicaCounts {
        desired: spec_replicas(deployment),
        total: count(status.replicas),
        updated: count(status.updated_replicas),
        ready: count(status.ready_replicas),
        available: count(status.available_replicas),
    };
    let conditions: Vec<Condition> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| Condition {
            kind: c.type_.clone(),
            ok: c.status == "True",
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
        .collect();
    let deadline_exceeded =
        conditions.iter().any(|c| c.kind == "Progressing" && c.reason == "ProgressDeadlineExceeded");
    let mut conditions = conditions;
    if paused(deployment) {
        // `kubectl rollout status` judges a paused Deployment like any other;
        // the pause is shown beside the phase, not instead of it.
        conditions.push(Condition {
            kind: "Paused".into(),
            ok: false,
            reason: "DeploymentPaused".into(),
            message: "kubectl rollout resume continues it".into(),
        });
    }
    RolloutStatus {
        phase: rollout::phase(generation, observed_generation, replicas, false, deadline_exceeded),
        generation,
        observed_generation,
        replicas,
        image: image(deployment, container),
        revisions: revisions(&owned(deployment, replica_sets), container),
        conditions,
    }
}

/// The weights (everything else, canary) in the first rule of a route that
/// names the canary backend: every other backend of the rule carries the
/// rest of the traffic, the primary's among them. A missing weight is 1, as
/// the Gateway API says.
pub fn route_weights(route: &HttpRoute, canary_backend: &str) -> Option<(u32, u32)> {
    let rules = route.spec.rules.as_ref()?;
    rules.iter().find_map(|rule| {
        let refs = rule.backend_refs.as_ref()?;
        let weight = |r: &&gateway_api::apis::standard::httproutes::HttpRouteRulesBackendRefs| {
            u32::try_from(r.weight.unwrap_or(1)).unwrap_or(0)
        };
        let canary: u32 = refs.iter().filter(|r| r.name == canary_backend).map(|r| weight(&r)).sum();
        let rest: u32 = refs.iter().filter(|r| r.name != canary_backend).map(|r| weight(&r)).sum();
        refs.iter().any(|r| r.name == canary_backend).then_some((rest, canary))
    })
}

/// The canary's percent of a (primary, canary) split; rounds to the nearest.
pub fn percent(primary: u32, canary: u32) -> u8 {
    let total = u64::from(primary) + u64::from(canary);
    if total == 0 {
        return 0;
    }
    u8::try_from((u64::from(canary) * 200 + total) / (2 * total)).unwrap_or(100)
}

/// Replica counts (primary, canary) for a replica-ratio canary at `weight`
/// percent: the total stays the same (at least 2, so both tracks can run),
/// and the canary's share is the reachable ratio nearest to the weight,
/// at least one pod and at most all but one.
pub fn ratio_replicas(primary: u32, canary: u32, weight: u8) -> (u32, u32) {
    let total = (primary + canary).max(2);
    if weight == 0 {
        return (total, 0);
    }
    if weight >= 100 {
        return (0, total);
    }
    let wanted = (u64::from(total) * u64::from(weight) * 2 + 100) / 200;
    let canary = u32::try_from(wanted).unwrap_or(total).clamp(1, total - 1);
    (total - canary, canary)
}

/// The traffic split of a service: the route's weights, else the replica ratio.
pub fn traffic(
    target: &Target,
    primary: &Deployment,
    canary: Option<&Deployment>,
    route: Option<&HttpRoute>,
) -> Traffic {
    let container = target.container.as_deref();
    let canary_replicas = canary.map_or(0, spec_replicas);
    let split = route.and_then(|r| Some((r, route_weights(r, &target.canary_backend)?)));
    // Live while it has pods or the route sends it traffic (which then fails:
    // the weight is shown, and roll back empties it).
    let routed = split.is_some_and(|(_, (_, c))| c > 0);
    let canary_image = match canary {
        Some(c) if canary_replicas > 0 || routed => Some(image(c, container)),
        None if routed => Some(format!("{} (no Deployment)", target.canary_deployment)),
        _ => None,
    };
    let (target_weight, note) = match split {
        Some((route, (p, c))) => (percent(p, c), Some(format!("HTTPRoute {} {p}/{c}", name_of(&route.metadata)))),
        None => {
            let primary_replicas = spec_replicas(primary);
            let total = primary_replicas + canary_replicas;
            let note = (canary_replicas > 0).then(|| format!("{canary_replicas} of {total} pods"));
            (percent(primary_replicas, canary_replicas), note)
        }
    };
    // A route that sends traffic to a canary without pods fails those requests.
    let note = match (split, canary_replicas) {
        (Some((_, (_, c))), 0) if c > 0 => Some(format!(
            "{} · the route sends {} % to {}, which has no pods",
            note.unwrap_or_default(),
            target_weight,
            target.canary_backend
        )),
        _ => note,
    };
    // A canary that is not ready yet cannot serve its share: say so.
    let ready = canary.and_then(|c| c.status.as_ref()).map_or(0, |s| count(s.ready_replicas));
    let note = match note {
        Some(note) if canary_replicas > 0 && ready < canary_replicas => {
            Some(format!("{note} · canary {ready}/{canary_replicas} ready"))
        }
        other => other,
    };
    Traffic {
        primary_image: image(primary, container),
        target_weight: if canary_image.is_some() { target_weight } else { 0 },
        canary_image,
        actual_weight: None,
        note,
    }
}

/// Whether a pod belongs to a Deployment: same namespace, and the
/// Deployment's `matchLabels` all on the pod.
pub fn selects(deployment: &Deployment, pod: &Pod) -> bool {
    if namespace_of(&deployment.metadata) != namespace_of(&pod.metadata) {
        return false;
    }
    let Some(wanted) = deployment.spec.as_ref().and_then(|s| s.selector.match_labels.as_ref()) else { return false };
    let labels = pod.metadata.labels.as_ref();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The container whose log a pod shows: kubectl's
/// `kubectl.kubernetes.io/default-container` annotation, else the first
/// (a pod with a sidecar needs one named, or the API refuses).
pub fn log_container(pod: &Pod) -> Option<String> {
    let annotated = pod.metadata.annotations.as_ref().and_then(|a| a.get("kubectl.kubernetes.io/default-container"));
    annotated.cloned().or_else(|| pod.spec.as_ref()?.containers.first().map(|c| c.name.clone()))
}

/// A copy of a ReplicaSet's template fit for a Deployment's `spec.template`:
/// without the `pod-template-hash` label, as `kubectl rollout undo` does.
pub fn undo_template(rs: &ReplicaSet) -> Option<PodTemplateSpec> {
    let mut template = rs.spec.as_ref()?.template.clone()?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    Some(template)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(value: serde_json::Value) -> Deployment {
        serde_json::from_value(value).expect("a Deployment")
    }

    fn web(generation: i64, observed: i64, status: serde_json::Value) -> Deployment {
        let mut status = status;
        status["observedGeneration"] = json!(observed);
        deployment(json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": generation},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "sidecar", "image": "proxy:1"}, {"name": "app", "image": "web:2"}
                ]}},
            },
            "status": status,
        }))
    }

    #[test]
    fn rollout_status_follows_kubectl() {
        let done = json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3});
        assert_eq!(rollout_status(&web(2, 1, done.clone()), &[], None).phase, rollout::RolloutPhase::Progressing);
        assert_eq!(rollout_status(&web(2, 2, done), &[], None).phase, rollout::RolloutPhase::Complete);
        let surging = json!({"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(rollout_status(&web(2, 2, surging), &[], None).phase, rollout::RolloutPhase::Progressing);
        let stuck = json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
        ]});
        let status = rollout_status(&web(2, 2, stuck), &[], Some("app"));
        assert_eq!(status.phase, rollout::RolloutPhase::Failed);
        assert_eq!(status.image, "web:2");
        let mut paused = web(2, 2, json!({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}));
        paused.spec.as_mut().expect("spec").paused = Some(true);
        let status = rollout_status(&paused, &[], None);
        assert_eq!(status.phase, rollout::RolloutPhase::Complete, "as kubectl says of a paused Deployment");
        assert!(status.conditions.iter().any(|c| c.kind == "Paused" && !c.ok));
    }

    #[test]
    fn revisions_come_from_owned_replica_sets_newest_first() {
        let rs = |name: &str, uid: &str, revision: &str, image: &str| -> ReplicaSet {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "shop",
                    "annotations": {ANNOTATION_REVISION: revision},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": uid}]},
                "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web", POD_TEMPLATE_HASH: "abc"}},
                    "spec": {"containers": [{"name": "app", "image": image}]}}},
            }))
            .expect("a ReplicaSet")
        };
        let (a, b, other) = (rs("web-a", "u1", "1", "web:1"), rs("web-b", "u1", "2", "web:2"), rs("x", "u9", "7", "x"));
        let status = rollout_status(&web(1, 1, json!({})), &[&a, &other, &b], None);
        let numbers: Vec<(u64, &str)> = status.revisions.iter().map(|r| (r.number, r.image.as_str())).collect();
        assert_eq!(numbers, vec![(2, "web:2"), (1, "web:1")]);
        let template = undo_template(&a).expect("a template");
        assert_eq!(template.metadata.and_then(|m| m.labels).map(|l| l.len()), Some(1));
    }

    #[test]
    fn route_weights_are_proportions() {
        let route: HttpRoute = serde_json::from_value(json!({
            "metadata": {"name": "checkout", "namespace": "shop"},
            "spec": {"rules": [
                {"backendRefs": [{"name": "other", "port": 80}]},
                {"backendRefs": [{"name": "checkout", "port": 80, "weight": 3}, {"name": "checkout-canary", "port": 80, "weight": 1}]},
            ]},
        }))
        .expect("a route");
        assert_eq!(route_weights(&route, "checkout-canary"), Some((3, 1)));
        assert_eq!(percent(3, 1), 25);
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(2, 1), 33);
        assert_eq!(route_weights(&route, "nope"), None);
    }

    #[test]
    fn replica_ratio_steps_round_to_reachable_ratios() {
        assert_eq!(ratio_replicas(4, 0, 25), (3, 1));
        assert_eq!(ratio_replicas(4, 0, 5), (3, 1), "at least one canary pod");
        assert_eq!(ratio_replicas(3, 1, 50), (2, 2));
        assert_eq!(ratio_replicas(3, 1, 0), (4, 0));
        assert_eq!(ratio_replicas(1, 0, 5), (1, 1), "a single replica gains a canary beside it");
        assert_eq!(ratio_replicas(10, 0, 95), (1, 9), "the primary keeps one pod");
    }

    #[test]
    fn discovery_takes_config_then_labels() {
        let config: Config = toml::from_str(
            "[kubernetes]\nnamespaces = [\"shop\"]\n[[service]]\nname = \"checkout\"\nstage = \"mission-critical\"\n",
        )
        .expect("a config");
        let labelled = |name: &str, service: &str, track: &str, stage: &str| {
            deployment(json!({"metadata": {"name": name, "namespace": "shop", "labels": {
                LABEL_SERVICE: service, LABEL_TRACK: track, LABEL_STAGE: stage}}}))
        };
        let cart = labelled("cart", "cart", "primary", "prototype");
        let cart_canary = labelled("cart-next", "cart", "canary", "prototype");
        let elsewhere =
            deployment(json!({"metadata": {"name": "x", "namespace": "other", "labels": {LABEL_SERVICE: "x"}}}));
        let route: HttpRoute = serde_json::from_value(json!({
            "metadata": {"name": "checkout-split", "namespace": "shop", "labels": {LABEL_SERVICE: "checkout"}},
            "spec": {},
        }))
        .expect("a route");
        let targets = discover(&config, &["shop".into()], &[&cart, &cart_canary, &elsewhere], &[&route]);
        let summary: Vec<(&str, Stage, &str, &str, Option<&str>)> = targets
            .iter()
            .map(|t| (t.name.as_str(), t.stage, t.primary.as_str(), t.canary_deployment.as_str(), t.route.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("cart", Stage::Prototype, "cart", "cart-next", None),
                ("checkout", Stage::MissionCritical, "checkout", "checkout-canary", Some("checkout-split")),
            ]
        );
    }
}
