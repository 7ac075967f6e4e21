//! A minimal OpenAPI v3 (`/openapi/v3` and one document per group-version):
//! just enough for kubectl to learn that every kind's PATCH accepts the
//! `fieldValidation` query parameter, so it leaves validation to the server
//! instead of downloading schemas. There are no schemas: the fake server does
//! not validate fields (`fieldValidation=Strict` is accepted and ignored).

use super::resources::{RESOURCES, Resource};
use serde_json::{Map, Value, json};

/// `api/v1` or `apis/apps/v1`, as the OpenAPI v3 root names a group-version.
fn gv_path(r: &Resource) -> String {
    if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) }
}

/// `/openapi/v3`.
pub fn root() -> Value {
    let mut paths = Map::new();
    for r in RESOURCES {
        let gv = gv_path(r);
        paths.insert(gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=fake")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/{gv}`, `None` for an unknown group-version.
pub fn group_version(gv: &str) -> Option<Value> {
    let mut paths = Map::new();
    for r in RESOURCES.iter().filter(|r| gv_path(r) == gv) {
        let item = if r.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{gv}/{}/{{name}}", r.plural)
        };
        let patch = json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        });
        paths.insert(item, json!({"patch": patch}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
