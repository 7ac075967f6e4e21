//! Seed data: a cockpit-labelled team in namespace `shop` (Deployments
//! labelled `cockpit.dev/service`, `cockpit.dev/stage`, `cockpit.dev/track`,
//! their Services and an HTTPRoute splitting `checkout` between its primary
//! and canary tracks by weight) and filler Deployments (each its own
//! cockpit-labelled service) and Pods in `fill`.

use super::resources::{self, Resource};
use super::store::{ApiError, Store};
use serde_json::{Value, json};

/// The team's workloads: (service, stage, track, replicas, image).
const TEAM: &[(&str, &str, &str, u64, &str)] = &[
    ("frontend", "prototype", "primary", 2, "shop/frontend:1.4.0"),
    ("checkout", "mission-critical", "primary", 3, "shop/checkout:2.1.0"),
    ("checkout", "mission-critical", "canary", 1, "shop/checkout:2.2.0-rc1"),
    ("payments", "production", "primary", 2, "shop/payments:0.9.3"),
];

fn find(group: &str, version: &str, plural: &str) -> Result<&'static Resource, ApiError> {
    resources::find(group, version, plural)
        .ok_or_else(|| ApiError::bad_request(format!("unknown resource {group}/{version}/{plural}")))
}

fn ensure_namespace(store: &mut Store, name: &str) -> Result<(), ApiError> {
    match store.create(resources::namespaces(), "", json!({"metadata": {"name": name}})) {
        Err(e) if e.code != 409 => Err(e),
        _ => Ok(()),
    }
}

fn deployment(name: &str, labels: &Value, replicas: u64, image: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    })
}

fn workload_name(service: &str, track: &str) -> String {
    if track == "primary" { service.to_string() } else { format!("{service}-{track}") }
}

/// Creates the `shop` team.
pub fn team(store: &mut Store) -> Result<(), ApiError> {
    let deployments = find("apps", "v1", "deployments")?;
    let services = find("", "v1", "services")?;
    let routes = find("gateway.networking.k8s.io", "v1", "httproutes")?;
    ensure_namespace(store, "shop")?;
    for (service, stage, track, replicas, image) in TEAM {
        let name = workload_name(service, track);
        let labels = json!({
            "app": name,
            "cockpit.dev/service": service,
            "cockpit.dev/stage": stage,
            "cockpit.dev/track": track,
        });
        store.create(deployments, "shop", deployment(&name, &labels, *replicas, image))?;
        let svc = json!({
            "metadata": {"name": name, "labels": {"cockpit.dev/service": service}},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        });
        store.create(services, "shop", svc)?;
    }
    let route = json!({
        "metadata": {"name": "checkout", "labels": {"cockpit.dev/service": "checkout"}},
        "spec": {
            "parentRefs": [{"name": "shop-gateway"}],
            "rules": [{"backendRefs": [
                {"name": "checkout", "port": 80, "weight": 90},
                {"name": "checkout-canary", "port": 80, "weight": 10},
            ]}],
        },
    });
    store.create(routes, "shop", route)?;
    Ok(())
}

/// Creates `deployments` Deployments and `pods` Pods in namespace `fill`.
pub fn fillers(store: &mut Store, deployments: usize, pods: usize) -> Result<(), ApiError> {
    let deployment_res = find("apps", "v1", "deployments")?;
    let pod_res = find("", "v1", "pods")?;
    ensure_namespace(store, "fill")?;
    for i in 0..deployments {
        let name = format!("filler-{i:05}");
        // Labelled as services, so a cockpit watching `fill` shows them all.
        let labels = json!({"app": name, "cockpit.dev/service": name, "cockpit.dev/stage": "production"});
        store.create(deployment_res, "fill", deployment(&name, &labels, 1, "fill/app:1"))?;
    }
    for i in 0..pods {
        let owner = if deployments == 0 { 0 } else { i % deployments };
        let pod = json!({
            "metadata": {"name": format!("filler-{i:05}"), "labels": {"app": format!("filler-{owner:05}")}},
            "spec": {"containers": [{"name": "app", "image": "fill/app:1"}]},
            "status": {"phase": "Running"},
        });
        store.create(pod_res, "fill", pod)?;
    }
    Ok(())
}
