//! A simulated Deployment controller. It reuses the simulated fleet's
//! [`Workload`] for pacing (surge, unavailability, readiness delays,
//! revisions, the progress deadline and `BROKEN_MARKER` images) and its log
//! generator, and writes what it decides through the store as ReplicaSets,
//! Pods and Deployment status, so watches and resourceVersions see it.
//!
//! A pod template's identity is its canonical JSON (nulls, empty objects
//! and `pod-template-hash` removed, keys sorted): the Workload's "image".

use super::Shared;
use super::resources::{self, Resource};
use super::store::Store;
use crate::backend::sim::loggen::{self, LineContext};
use crate::backend::sim::rng::Rng;
use crate::backend::sim::workload::Workload;
use crate::domain::Timestamp;
use crate::domain::time::Millis;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Simulated seconds per real second: 20 runs a rollout in well under a second.
    pub speed: f64,
    /// How often (real time) it steps.
    pub tick: Duration,
    /// Simulated time between two generated log lines of one pod.
    pub log_interval: Duration,
    /// Log lines kept per pod.
    pub log_lines: usize,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self { speed: 1.0, tick: Duration::from_millis(100), log_interval: Duration::from_secs(2), log_lines: 1000 }
    }
}

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

/// One log line of a pod.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    pub(crate) seq: u64,
    pub(crate) at: SystemTime,
    pub(crate) container: String,
    pub(crate) text: String,
}

/// Bounded per-pod log buffers.
#[derive(Default)]
pub(crate) struct Logs {
    pods: HashMap<(String, String), VecDeque<LogEntry>>,
    next_seq: u64,
    limit: usize,
}

impl Logs {
    pub(crate) fn new(limit: usize) -> Self {
        Self { pods: HashMap::new(), next_seq: 1, limit: limit.max(1) }
    }

    pub(crate) fn push(&mut self, ns: &str, pod: &str, container: &str, text: String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let lines = self.pods.entry((ns.to_string(), pod.to_string())).or_default();
        lines.push_back(LogEntry { seq, at: SystemTime::now(), container: container.to_string(), text });
        while lines.len() > self.limit {
            lines.pop_front();
        }
    }

    /// Lines after `after` (a seq), `None` when the pod has no buffer.
    pub(crate) fn since(&self, ns: &str, pod: &str, after: u64) -> Option<Vec<LogEntry>> {
        let lines = self.pods.get(&(ns.to_string(), pod.to_string()))?;
        Some(lines.iter().filter(|l| l.seq > after).cloned().collect())
    }

    fn forget(&mut self, ns: &str, pod: &str) {
        self.pods.remove(&(ns.to_string(), pod.to_string()));
    }
}

/// Removes nulls, empty objects/arrays and the hash label, so the same
/// template sent by different clients compares equal.
fn canonical(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| k.as_str() != HASH)
                .filter_map(|(k, v)| canonical(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(canonical).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// An `int-or-string` field (`2` or `"25%"`) of `of` replicas.
fn int_or_percent(value: Option<&Value>, of: u32, round_up: bool) -> Option<u32> {
    let value = value?;
    if let Some(n) = value.as_u64() {
        return u32::try_from(n).ok();
    }
    let percent: f64 = value.as_str()?.strip_suffix('%')?.parse().ok()?;
    let exact = f64::from(of) * percent / 100.0;
    Some(if round_up { exact.ceil() } else { exact.floor() } as u32)
}

struct Sim {
    uid: String,
    workload: Workload,
    /// Canonical key → the template as the Deployment had it.
    templates: HashMap<String, Value>,
    seen_generation: i64,
    observed_generation: i64,
    /// Pod name → (ready, terminating) as last written.
    pods: HashMap<String, (bool, bool)>,
    replica_sets: Vec<String>,
    next_log: HashMap<String, Timestamp>,
}

pub(crate) struct Controller {
    sims: BTreeMap<(String, String), Sim>,
    rng: Rng,
    now: Timestamp,
    config: ControllerConfig,
}

fn res(group: &str, plural: &str) -> &'static Resource {
    resources::find_by_key(group, plural).unwrap_or_else(resources::namespaces)
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, at: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    })
}

/// Creates or updates `object` (by its metadata name), keeping server fields.
fn upsert(store: &mut Store, res: &'static Resource, ns: &str, name: &str, object: Value) {
    match store.get(res, ns, name) {
        Ok(mut current) => {
            for field in ["spec", "status"] {
                if let Some(v) = object.get(field) {
                    current[field] = v.clone();
                }
            }
            for field in ["labels", "annotations", "ownerReferences", "deletionTimestamp"] {
                if let Some(v) = object["metadata"].get(field) {
                    current["metadata"][field] = v.clone();
                }
            }
            let _ = store.update(res, ns, name, current);
        }
        Err(_) => {
            let _ = store.create(res, ns, object);
        }
    }
}

impl Controller {
    pub(crate) fn new(config: ControllerConfig) -> Self {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(11);
        Self { sims: BTreeMap::new(), rng: Rng::new(seed), now: Timestamp::now(), config }
    }

    /// Steps until the server drops.
    pub(crate) async fn run(mut self, shared: Arc<Shared>) {
        let mut ticker = tokio::time::interval(self.config.tick);
        let mut last = tokio::time::Instant::now();
        loop {
            ticker.tick().await;
            let now = tokio::time::Instant::now();
            let simulated = now.duration_since(last).as_secs_f64() * self.config.speed * 1000.0;
            last = now;
            self.now = self.now.plus(Millis(simulated as i64));
            self.step(&shared);
        }
    }

    fn step(&mut self, shared: &Shared) {
        let deployments = res("apps", "deployments");
        let mut store = shared.store();
        let mut live = Vec::new();
        for deployment in store.list(deployments, None) {
            let ns = str_at(&deployment, "/metadata/namespace").to_string();
            let name = str_at(&deployment, "/metadata/name").to_string();
            let uid = str_at(&deployment, "/metadata/uid").to_string();
            let key = (ns.clone(), name.clone());
            if self.sims.get(&key).is_some_and(|s| s.uid != uid)
                && let Some(old) = self.sims.remove(&key)
            {
                Self::clean_up(&mut store, &mut shared.logs(), &ns, &old);
            }
            let now = self.now;
            let rng = &mut self.rng;
            let sim = self.sims.entry(key.clone()).or_insert_with(|| Sim {
                uid,
                workload: Workload::running(&name, "", 0, Vec::new(), now, rng),
                templates: HashMap::new(),
                seen_generation: 0,
                observed_generation: 0,
                pods: HashMap::new(),
                replica_sets: Vec::new(),
                next_log: HashMap::new(),
            });
            let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
            if generation != sim.seen_generation {
                Self::observe(sim, &deployment, now, rng);
                sim.seen_generation = generation;
            }
            sim.workload.step(now, rng);
            if sim.workload.observed_generation == sim.workload.generation {
                sim.observed_generation = sim.seen_generation;
            }
            Self::sync(sim, &mut store, &ns, &deployment, now);
            live.push(key);
        }
        let gone: Vec<(String, String)> = self.sims.keys().filter(|k| !live.contains(k)).cloned().collect();
        for key in gone {
            if let Some(sim) = self.sims.remove(&key) {
                Self::clean_up(&mut store, &mut shared.logs(), &key.0, &sim);
            }
        }
        drop(store);
        self.write_logs(shared);
    }

    /// Feeds a new Deployment generation to the workload.
    fn observe(sim: &mut Sim, deployment: &Value, now: Timestamp, rng: &mut Rng) {
        let spec = &deployment["spec"];
        let replicas = spec["replicas"].as_u64().map_or(1, |r| u32::try_from(r).unwrap_or(u32::MAX));
        let template = spec.get("template").cloned().unwrap_or_else(|| json!({}));
        let key = canonical(&template).unwrap_or_else(|| json!({})).to_string();
        let rolling = &spec["strategy"]["rollingUpdate"];
        let w = &mut sim.workload;
        w.max_surge = int_or_percent(rolling.get("maxSurge"), replicas, true);
        w.max_unavailable = int_or_percent(rolling.get("maxUnavailable"), replicas, false).unwrap_or(0);
        if w.max_surge == Some(0) && w.max_unavailable == 0 {
            w.max_surge = Some(1);
        }
        let deadline = spec["progressDeadlineSeconds"].as_i64().unwrap_or(600);
        w.progress_deadline = Millis(deadline.saturating_mul(1000));
        sim.templates.insert(key.clone(), template);
        w.set_image(&key, now, rng);
        w.scale(replicas, now);
    }

    fn sync(sim: &mut Sim, store: &mut Store, ns: &str, deployment: &Value, now: Timestamp) {
        let name = str_at(deployment, "/metadata/name");
        let w = &sim.workload;
        let owner = json!([{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
            "uid": sim.uid, "controller": true, "blockOwnerDeletion": true,
        }]);
        let selector = deployment["spec"]["selector"]["matchLabels"].clone();
        // ReplicaSets: one per template the workload remembers or runs.
        let mut rs_names = Vec::new();
        for (key, template) in &sim.templates {
            let revision = w.revisions.iter().find(|r| &r.image == key).map(|r| r.number);
            let live = w.pods.iter().filter(|p| &p.image == key && p.terminating_since.is_none());
            let (count, ready) = live.fold((0u32, 0u32), |(c, r), p| (c + 1, r + u32::from(p.ready(now))));
            if revision.is_none() && count == 0 && key != &w.image {
                continue;
            }
            let hash = w.template_hash(key);
            let rs_name = format!("{name}-{hash}");
            let mut template = template.clone();
            template["metadata"]["labels"][HASH] = json!(hash);
            let mut rs_selector = selector.clone();
            rs_selector[HASH] = json!(hash);
            let replicas = if key == &w.image { w.desired } else { count };
            let rs = json!({
                "metadata": {
                    "name": rs_name,
                    "labels": template["metadata"]["labels"],
                    "annotations": {
                        REVISION: revision.unwrap_or(0).to_string(),
                        "deployment.kubernetes.io/desired-replicas": w.desired.to_string(),
                    },
                    "ownerReferences": owner,
                },
                "spec": {"replicas": replicas, "selector": {"matchLabels": rs_selector}, "template": template},
                "status": {
                    "replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready,
                    "availableReplicas": ready, "observedGeneration": 1,
                },
            });
            upsert(store, res("apps", "replicasets"), ns, &rs_name, rs);
            rs_names.push(rs_name);
        }
        for old in sim.replica_sets.iter().filter(|n| !rs_names.contains(n)) {
            let _ = store.delete(res("apps", "replicasets"), ns, old);
        }
        sim.replica_sets = rs_names;
        // Pods.
        let pods = res("", "pods");
        let mut seen = HashMap::new();
        for pod in &w.pods {
            let state = (pod.ready(now), pod.terminating_since.is_some());
            seen.insert(pod.name.to_string(), state);
            if sim.pods.get(pod.name.as_ref()) == Some(&state) {
                continue;
            }
            let hash = w.template_hash(&pod.image);
            let template = sim.templates.get(&pod.image).cloned().unwrap_or_else(|| json!({}));
            let mut labels = template["metadata"]["labels"].clone();
            labels[HASH] = json!(hash);
            let at = super::store::timestamp(SystemTime::now());
            let containers = template["spec"]["containers"].as_array().cloned().unwrap_or_default();
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": state.0,
                        "started": state.0, "restartCount": 0,
                        "state": if state.0 { json!({"running": {"startedAt": at}}) }
                            else { json!({"waiting": {"reason": "ContainerCreating"}}) },
                    })
                })
                .collect();
            let mut spec = template["spec"].clone();
            spec["nodeName"] = json!("fake-node");
            let mut object = json!({
                "metadata": {
                    "name": pod.name.as_ref(),
                    "labels": labels,
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-{hash}"),
                        "uid": "", "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": spec,
                "status": {
                    "phase": if state.0 { "Running" } else { "Pending" },
                    "podIP": "10.0.0.1",
                    "conditions": [condition("Ready", state.0, "", "", &at)],
                    "containerStatuses": statuses,
                },
            });
            if state.1 {
                object["metadata"]["deletionTimestamp"] = json!(at);
            }
            upsert(store, pods, ns, pod.name.as_ref(), object);
        }
        for gone in sim.pods.keys().filter(|n| !seen.contains_key(*n)) {
            let _ = store.delete(pods, ns, gone);
            sim.next_log.remove(gone);
        }
        sim.pods = seen;
        // Deployment status.
        let status = w.status(now);
        let counts = status.replicas;
        let at = super::store::timestamp(SystemTime::now());
        let conditions: Vec<Value> =
            status.conditions.iter().map(|c| condition(&c.kind, c.ok, &c.reason, &c.message, &at)).collect();
        let mut updated = deployment.clone();
        updated["status"] = json!({
            "observedGeneration": sim.observed_generation,
            "replicas": counts.total,
            "updatedReplicas": counts.updated,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "unavailableReplicas": counts.total.saturating_sub(counts.available),
            "conditions": conditions,
        });
        if let Some(revision) = w.revisions.first() {
            updated["metadata"]["annotations"][REVISION] = json!(revision.number.to_string());
        }
        // Keep the condition times stable when nothing else changed.
        if let Some(old) = deployment["status"]["conditions"].as_array()
            && old.len() == conditions.len()
            && old.iter().zip(&conditions).all(|(a, b)| a["reason"] == b["reason"] && a["status"] == b["status"])
        {
            updated["status"]["conditions"] = Value::Array(old.clone());
        }
        if updated != *deployment {
            let _ = store.update(res("apps", "deployments"), ns, name, updated);
        }
    }

    fn clean_up(store: &mut Store, logs: &mut Logs, ns: &str, sim: &Sim) {
        for pod in sim.pods.keys() {
            let _ = store.delete(res("", "pods"), ns, pod);
            logs.forget(ns, pod);
        }
        for rs in &sim.replica_sets {
            let _ = store.delete(res("apps", "replicasets"), ns, rs);
        }
    }

    /// Ready pods write generated lines, one every `log_interval` (simulated).
    fn write_logs(&mut self, shared: &Shared) {
        let interval = Millis(self.config.log_interval.as_millis() as i64);
        let mut logs = shared.logs();
        for ((ns, _), sim) in &mut self.sims {
            for pod in sim.workload.pods.iter().filter(|p| p.ready(self.now)) {
                let next = sim.next_log.entry(pod.name.to_string()).or_insert(self.now);
                if *next > self.now {
                    continue;
                }
                *next = self.now.plus(interval);
                let container = sim
                    .templates
                    .get(&pod.image)
                    .and_then(|t| t.pointer("/spec/containers/0/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("app")
                    .to_string();
                let cx = LineContext {
                    service: &sim.workload.name,
                    paths: &["/", "/healthz", "/api/items", "/api/orders"],
                    depends_on: &[],
                    error_ratio: 0.01,
                    p99_ms: 120.0,
                    failing_dependency: None,
                };
                for raw in loggen::lines(&mut self.rng, &cx) {
                    logs.push(ns, &pod.name, &container, String::from_utf8_lossy(&raw).into_owned());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compare_without_nulls_empties_or_the_hash() {
        let sent =
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "i"}]}});
        let from_kubectl = json!({
            "metadata": {"creationTimestamp": null, "labels": {"app": "web", "pod-template-hash": "x"}},
            "spec": {"containers": [{"name": "a", "image": "i", "resources": {}}]},
        });
        assert_eq!(canonical(&sent), canonical(&from_kubectl));
    }

    #[test]
    fn surge_and_unavailability_take_numbers_or_percentages() {
        assert_eq!(int_or_percent(Some(&json!(2)), 10, true), Some(2));
        assert_eq!(int_or_percent(Some(&json!("25%")), 10, true), Some(3));
        assert_eq!(int_or_percent(Some(&json!("25%")), 10, false), Some(2));
        assert_eq!(int_or_percent(None, 10, false), None);
    }

    #[test]
    fn log_buffers_are_bounded() {
        let mut logs = Logs::new(2);
        for i in 0..5 {
            logs.push("ns", "p", "c", format!("line {i}"));
        }
        let lines = logs.since("ns", "p", 0).unwrap_or_default();
        assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["line 3", "line 4"]);
        assert_eq!(logs.since("ns", "p", lines[0].seq).map(|l| l.len()), Some(1));
        assert!(logs.since("ns", "other", 0).is_none());
    }
}
