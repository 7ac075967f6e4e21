//! The object store: every object as a `serde_json::Value`, one global
//! `resourceVersion` counter bumped on every write, the server-set metadata
//! (`uid`, `creationTimestamp`, `generation`), optimistic concurrency on
//! update, and a bounded history of watch events that watches resume from.

use super::resources::{self, Resource};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// An API error, answered as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: Value::Null }
    }

    fn about(mut self, res: &Resource, name: &str) -> Self {
        self.details = json!({"name": name, "group": res.group, "kind": res.plural});
        self
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", res.qualified())).about(res, name)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` body of this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}

/// `ADDED`, `MODIFIED` or `DELETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug, Clone)]
pub struct Write {
    pub rv: u64,
    pub resource: &'static Resource,
    pub namespace: String,
    pub change: Change,
    pub object: Value,
    /// The object before the write, so a selector watch can tell an object
    /// that stopped matching (sent as `DELETED`).
    pub previous: Option<Value>,
}

type Key = (&'static str, &'static str, String, String);

/// Where a watch starts.
pub struct WatchStart {
    pub replay: Vec<Arc<Write>>,
    pub live: broadcast::Receiver<Arc<Write>>,
    pub current_rv: u64,
}

/// All objects and the write history.
pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: VecDeque<Arc<Write>>,
    history_limit: usize,
    /// Writes at or below this resourceVersion are no longer in `history`.
    compacted: u64,
    uid_seed: u64,
    uids: u64,
    events: broadcast::Sender<Arc<Write>>,
}

fn key(res: &'static Resource, namespace: &str, name: &str) -> Key {
    (res.group, res.plural, namespace.to_string(), name.to_string())
}

/// RFC 3339 in UTC with second precision, as `creationTimestamp` is.
pub fn timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// Everything but `metadata` and `status`: a change here bumps `generation`.
fn spec_of(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(m) = &mut copy {
        m.remove("metadata");
        m.remove("status");
        m.remove("kind");
        m.remove("apiVersion");
    }
    copy
}

impl Store {
    /// A store with the `default` and `kube-system` namespaces, keeping the
    /// last `history_limit` writes for watches to resume from.
    pub fn new(history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let uid_seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
        let mut store = Self {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            uid_seed,
            uids: 0,
            events,
        };
        for ns in ["default", "kube-system"] {
            let created = store.create(resources::namespaces(), "", json!({"metadata": {"name": ns}}));
            debug_assert!(created.is_ok());
        }
        store
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    fn next_uid(&mut self) -> String {
        self.uids += 1;
        let a = self.uid_seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(self.uids);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            a & 0xfff,
            (self.uids >> 12) & 0xfff,
            self.uids & 0xffff_ffff_ffff
        )
    }

    fn record(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        change: Change,
        object: Value,
        previous: Option<Value>,
    ) {
        let write =
            Arc::new(Write { rv: self.rv, resource, namespace: namespace.to_string(), change, object, previous });
        self.history.push_back(write.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.events.send(write);
    }

    fn check_namespace(&self, res: &'static Resource, namespace: &str) -> Result<(), ApiError> {
        if res.namespaced && !self.objects.contains_key(&key(resources::namespaces(), "", namespace)) {
            return Err(ApiError::not_found(resources::namespaces(), namespace));
        }
        Ok(())
    }

    /// Stamps `kind`, `apiVersion` and the metadata that must agree with the URL.
    fn normalise(res: &'static Resource, namespace: &str, object: &mut Value) -> Result<(), ApiError> {
        let Value::Object(map) = object else {
            return Err(ApiError::bad_request("the body is not a JSON object"));
        };
        if let Some(kind) = map.get("kind").and_then(Value::as_str)
            && kind != res.kind
        {
            return Err(ApiError::bad_request(format!("the body kind `{kind}` does not match `{}`", res.kind)));
        }
        map.insert("kind".into(), Value::String(res.kind.into()));
        map.insert("apiVersion".into(), Value::String(res.api_version()));
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(meta) = meta else {
            return Err(ApiError::bad_request("metadata is not an object"));
        };
        if res.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(ns) if ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), Value::String(namespace.into()));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// Creates an object; `AlreadyExists` (409) when the name is taken.
    pub fn create(&mut self, res: &'static Resource, namespace: &str, mut object: Value) -> Result<Value, ApiError> {
        Self::normalise(res, namespace, &mut object)?;
        self.check_namespace(res, namespace)?;
        let mut name = meta_str(&object, "name").unwrap_or("").to_string();
        if name.is_empty()
            && let Some(prefix) = meta_str(&object, "generateName")
        {
            let suffix: String = format!("{:05x}", self.uid_seed.wrapping_add(self.rv * 7919) & 0xfffff)
                .chars()
                .map(|c| if c.is_ascii_digit() { (b'b' + (c as u8 - b'0')) as char } else { c })
                .collect();
            name = format!("{prefix}{suffix}");
        }
        if name.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("{} \"\" is invalid: metadata.name: Required value", res.kind),
            ));
        }
        let k = key(res, namespace, &name);
        if self.objects.contains_key(&k) {
            return Err(ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", res.qualified()))
                .about(res, &name));
        }
        self.rv += 1;
        let uid = self.next_uid();
        let meta = &mut object["metadata"];
        meta["name"] = Value::String(name);
        meta["uid"] = Value::String(uid);
        meta["resourceVersion"] = Value::String(self.rv.to_string());
        meta["creationTimestamp"] = Value::String(timestamp(SystemTime::now()));
        if let Value::Object(m) = meta {
            m.remove("deletionTimestamp");
            if res.has_generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if res.plural == "namespaces" {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
        }
        self.objects.insert(k, object.clone());
        self.record(res, namespace, Change::Added, object.clone(), None);
        Ok(object)
    }

    /// One object.
    pub fn get(&self, res: &'static Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects.get(&key(res, namespace, name)).cloned().ok_or_else(|| ApiError::not_found(res, name))
    }

    /// Objects of one resource, in one namespace or (`None`) in all.
    pub fn list(&self, res: &'static Resource, namespace: Option<&str>) -> Vec<Value> {
        // Keys sort by resource, then namespace: read only the range asked for.
        let from = (res.group, res.plural, namespace.unwrap_or("").to_string(), String::new());
        self.objects
            .range(from..)
            .take_while(|((g, p, ns, _), _)| {
                *g == res.group && *p == res.plural && namespace.is_none_or(|want| ns == want)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Replaces an object. A `metadata.resourceVersion` in the body that is
    /// not the current one is a 409 `Conflict`; none means unconditional.
    pub fn update(
        &mut self,
        res: &'static Resource,
        namespace: &str,
        name: &str,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        Self::normalise(res, namespace, &mut object)?;
        if meta_str(&object, "name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        let k = key(res, namespace, name);
        let current = self.objects.get(&k).cloned().ok_or_else(|| ApiError::not_found(res, name))?;
        if let Some(rv) = meta_str(&object, "resourceVersion").filter(|rv| !rv.is_empty())
            && Some(rv) != meta_str(&current, "resourceVersion")
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.qualified()
                ),
            )
            .about(res, name));
        }
        for field in ["uid", "creationTimestamp", "generation"] {
            match current["metadata"].get(field) {
                Some(v) => object["metadata"][field] = v.clone(),
                None => {
                    if let Value::Object(m) = &mut object["metadata"] {
                        m.remove(field);
                    }
                }
            }
        }
        object["metadata"]["name"] = Value::String(name.to_string());
        if res.plural == "namespaces" && object.get("status").is_none() {
            object["status"] = current["status"].clone();
        }
        if res.has_generation && spec_of(&object) != spec_of(&current) {
            let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
        let mut unchanged = object.clone();
        unchanged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        if unchanged == current {
            // The real server does not write (nor bump resourceVersion) for a no-op.
            return Ok(current);
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.objects.insert(k, object.clone());
        self.record(res, namespace, Change::Modified, object.clone(), Some(current));
        Ok(object)
    }

    /// Deletes an object (a namespace takes its objects with it) and returns it.
    pub fn delete(&mut self, res: &'static Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let k = key(res, namespace, name);
        let mut object = self.objects.remove(&k).ok_or_else(|| ApiError::not_found(res, name))?;
        if res.plural == "namespaces" {
            let inside: Vec<Key> = self.objects.keys().filter(|(_, _, ns, _)| ns == name).cloned().collect();
            for k in inside {
                if let Some(res) = resources::find_by_key(k.0, k.1)
                    && let Some(mut child) = self.objects.remove(&k)
                {
                    self.rv += 1;
                    child["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
                    self.record(res, &k.2, Change::Deleted, child, None);
                }
            }
        }
        self.rv += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.record(res, namespace, Change::Deleted, object.clone(), None);
        Ok(object)
    }

    /// Starts a watch after `from` (`None`: the current state as `ADDED`
    /// events first). A `from` older than the kept history is 410 Gone.
    pub fn watch(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let live = self.events.subscribe();
        let replay = match from {
            None => self
                .list(res, namespace)
                .into_iter()
                .map(|object| {
                    Arc::new(Write {
                        rv: 0,
                        resource: res,
                        namespace: meta_str(&object, "namespace").unwrap_or("").to_string(),
                        change: Change::Added,
                        object,
                        previous: None,
                    })
                })
                .collect(),
            Some(rv) if rv < self.compacted => {
                return Err(ApiError::gone(format!("too old resource version: {rv} ({})", self.compacted + 1)));
            }
            Some(rv) => self
                .history
                .iter()
                .filter(|w| w.rv > rv && *w.resource == *res)
                .filter(|w| namespace.is_none_or(|ns| w.namespace == ns))
                .cloned()
                .collect(),
        };
        Ok(WatchStart { replay, live, current_rv: self.rv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn deployments() -> &'static Resource {
        resources::find("apps", "v1", "deployments").unwrap()
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(UNIX_EPOCH + Duration::from_secs(1_709_210_096)), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn writes_bump_resource_version_and_generation_only_when_they_change_something() {
        let mut store = Store::new(10);
        let created = store
            .create(deployments(), "default", json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}))
            .unwrap();
        let rv = store.resource_version();
        assert_eq!(created["metadata"]["resourceVersion"], rv.to_string());
        let same = store.update(deployments(), "default", "web", created.clone()).unwrap();
        assert_eq!(store.resource_version(), rv, "a no-op update writes nothing");
        assert_eq!(same, created);
        let mut labelled = created.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        let labelled = store.update(deployments(), "default", "web", labelled).unwrap();
        assert_eq!(labelled["metadata"]["generation"], 1);
        let mut scaled = labelled.clone();
        scaled["spec"]["replicas"] = json!(3);
        let scaled = store.update(deployments(), "default", "web", scaled).unwrap();
        assert_eq!(scaled["metadata"]["generation"], 2);
        assert_eq!(store.resource_version(), rv + 2);
        let err = store.update(deployments(), "default", "web", labelled).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "Conflict"));
        let deleted = store.delete(resources::namespaces(), "", "default").unwrap();
        assert_eq!(deleted["metadata"]["name"], "default");
        assert!(store.get(deployments(), "default", "web").is_err(), "a namespace takes its objects with it");
    }
}
