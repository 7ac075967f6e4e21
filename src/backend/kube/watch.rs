//! The Kubernetes source task: connect, then one list and watches per
//! namespace of Deployments, ReplicaSets, Pods, HTTPRoutes and Events
//! (`kube::runtime::watcher`, which resumes from the last resourceVersion
//! after a drop and lists again after 410 Gone). What the cached objects
//! mean is reported as inventory, rollouts, traffic, timeline entries and
//! log lines, and only what changed is sent. Nothing polls: while nothing
//! happens in the cluster, nothing is requested and nothing is sent.
//!
//! While the API server cannot be reached the status bar says since when,
//! and every pane keeps the last known state; the first relist replaces
//! the cache whole, so objects deleted meanwhile disappear.
//!
//! It also finishes full promotions: once a primary marked
//! `cockpit.dev/promoting` has rolled out, traffic returns to it and the
//! canary is scaled to 0 (never in read-only mode).

use super::actions::{REASON_PROMOTE, Read, Writer, clear_promotion};
use super::logs::{self, Follow};
use super::model::{self, Target};
use super::{Connection, Inner, KubeBackend, SOURCE, access, connect, lock};
use crate::domain::logs::Track;
use crate::domain::rollout::{RolloutPhase, RolloutStatus};
use crate::event::{BackendInfo, ChangeRecord, ConnectionState, Denied, ServiceInfo, SourceEvent, Traffic};
use crate::state::Msg;
use futures::StreamExt;
use gateway_api::apis::standard::httproutes::HttpRoute;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::ResourceRule;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::runtime::utils::Backoff;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Changes arriving together are reported together, this long after the first.
const SETTLE: Duration = Duration::from_millis(30);
/// Kinds watched per namespace.
const KINDS: usize = 5;
/// After a failed attempt to finish a promotion, the next waits this long.
const FINISH_RETRY: Duration = Duration::from_secs(10);
/// Pods whose logs are followed at most, over all services; beyond it, only
/// the focused service's pods are.
const MAX_FOLLOWED: usize = 48;

/// Exponential backoff from `min` to `max`, with ±25 % jitter so that many
/// watchers do not reconnect in lockstep.
///
/// kube's stream backoff resets on every successful item, and a watcher
/// yields one (`Init`) before each list attempt, so a list that keeps
/// failing would otherwise be retried at `min` forever. A reset is
/// honoured only once the stream has gone `stable` without an error.
struct Doubling {
    min: Duration,
    max: Duration,
    next: Duration,
    stable: Duration,
    last_error: Option<std::time::Instant>,
}

impl Doubling {
    fn new((min, max): (Duration, Duration)) -> Doubling {
        Doubling { min, max, next: min, stable: (max * 2).max(Duration::from_secs(1)), last_error: None }
    }
}

impl Iterator for Doubling {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = std::time::Instant::now();
        if self.last_error.is_some_and(|at| at.elapsed() >= self.stable) {
            // A new outage after a quiet spell starts from the shortest wait.
            self.next = self.min;
        }
        self.last_error = Some(now);
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        // Jitter from the clock's low bits: no RNG needed for spreading retries.
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let nanos = clock.subsec_nanos() ^ std::process::id().wrapping_mul(2_654_435_761);
        let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
        Some(base.mul_f64(factor))
    }
}

impl Backoff for Doubling {
    fn reset(&mut self) {
        if self.last_error.is_none_or(|at| at.elapsed() >= self.stable) {
            self.next = self.min;
        }
    }
}

#[derive(Debug, Clone)]
enum Object {
    Deployment(Deployment),
    ReplicaSet(ReplicaSet),
    Pod(Pod),
    Route(HttpRoute),
    Event(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Deployment,
    ReplicaSet,
    Pod,
    Route,
    Event,
}

impl Object {
    /// The kind and namespace it was watched as.
    fn origin(&self) -> (Kind, String) {
        let (kind, meta) = match self {
            Object::Deployment(o) => (Kind::Deployment, &o.metadata),
            Object::ReplicaSet(o) => (Kind::ReplicaSet, &o.metadata),
            Object::Pod(o) => (Kind::Pod, &o.metadata),
            Object::Route(o) => (Kind::Route, &o.metadata),
            Object::Event(o) => (Kind::Event, &o.metadata),
        };
        (kind, meta.namespace.clone().unwrap_or_default())
    }
}

/// What the watcher tasks tell the session.
enum Update {
    Init(Kind, String),
    InitApply(String, Object),
    InitDone(Kind, String),
    Apply(Object),
    Delete(Object),
    Failed {
        kind: Kind,
        namespace: String,
        reason: String,
    },
    /// An optional kind's watch could not reach the server: nothing to
    /// say of it (whether the server is away, the required kinds tell).
    Lost(Kind, String),
    /// A kind that cannot be listed in a namespace: carried on without.
    Unavailable {
        kind: Kind,
        namespace: String,
        reason: String,
    },
    /// Report again (a promotion to finish is due another try).
    Retry,
    Rules(String, Option<Vec<ResourceRule>>),
    Reachable,
}

/// Objects of one kind by (namespace, name), with a relist's objects held
/// apart until it is complete.
struct Store<K> {
    objects: BTreeMap<(String, String), K>,
    relisting: HashMap<String, BTreeMap<(String, String), K>>,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store { objects: BTreeMap::new(), relisting: HashMap::new() }
    }
}

fn key<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

impl<K: Resource> Store<K> {
    fn init(&mut self, namespace: &str) {
        self.relisting.insert(namespace.to_owned(), BTreeMap::new());
    }

    fn init_apply(&mut self, namespace: &str, object: K) {
        self.relisting.entry(namespace.to_owned()).or_default().insert(key(&object), object);
    }

    fn init_done(&mut self, namespace: &str) {
        let fresh = self.relisting.remove(namespace).unwrap_or_default();
        self.objects.retain(|(ns, _), _| ns != namespace);
        self.objects.extend(fresh);
    }

    fn apply(&mut self, object: K) {
        self.objects.insert(key(&object), object);
    }

    fn delete(&mut self, object: &K) {
        self.objects.remove(&key(object));
    }

    fn get(&self, namespace: &str, name: &str) -> Option<&K> {
        self.objects.get(&(namespace.to_owned(), name.to_owned()))
    }

    fn all(&self) -> Vec<&K> {
        self.objects.values().collect()
    }
}

#[derive(Default)]
struct Cache {
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    routes: Store<HttpRoute>,
}

/// What was last sent, so only changes are.
#[derive(Default)]
struct Sent {
    inventory: Option<Vec<ServiceInfo>>,
    rollouts: HashMap<String, RolloutStatus>,
    traffic: HashMap<String, Traffic>,
    denied: HashMap<String, Vec<Denied>>,
    /// Timeline entries by a stable key (Event or ReplicaSet uid).
    changes: HashSet<String>,
}

/// One connection's watches, followers and caches; dropping it stops them.
struct Session {
    inner: Arc<Inner>,
    connection: Connection,
    updates: mpsc::Receiver<Update>,
    sender: mpsc::Sender<Update>,
    tasks: Vec<JoinHandle<()>>,
    followers: HashMap<(String, String), JoinHandle<()>>,
    /// The last log line's time (ns since the epoch) per pod.
    log_marks: HashMap<(String, String), logs::Mark>,
    cache: Cache,
    rules: HashMap<String, Option<Vec<ResourceRule>>>,
    sent: Sent,
    pending_changes: Vec<(String, ChangeRecord)>,
    /// Namespaces × kinds listed at least once.
    listed: HashSet<(Kind, String)>,
    live: bool,
    /// `Live` was reported since the last outage.
    said_live: bool,
    /// An outage to report.
    outage: Option<ConnectionState>,
    /// When the current outage began: kept until a watcher yields again,
    /// so a flapping connection still says since when it has been down.
    outage_since: Option<crate::domain::Timestamp>,
    /// Kinds and namespaces whose watch is failing now.
    failing: HashSet<(Kind, String)>,
    /// The reason the header shows for the outage now, once reported.
    shown_reason: Option<String>,
    /// Optional kinds whose watch the server answers with an error, and
    /// why: the connection stays live without them, with a note.
    degraded: HashMap<(Kind, String), String>,
    /// Those already noted.
    noted: HashSet<(Kind, String)>,
    /// Problems to show once (a kind that cannot be watched).
    problems: Vec<String>,
    probing: Option<JoinHandle<()>>,
    finishing: HashMap<String, JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let handles = self.tasks.iter().chain(self.followers.values()).chain(self.finishing.values());
        for handle in handles.chain(self.probing.iter()) {
            handle.abort();
        }
    }
}

async fn send(inner: &Inner, event: SourceEvent) -> bool {
    inner.events.send(Msg::Source(event)).await.is_ok()
}

async fn connection_state(inner: &Inner, state: ConnectionState) -> bool {
    send(inner, SourceEvent::Connection { source: SOURCE.into(), state }).await
}

/// Runs until the app's channel closes: connects (again on a context
/// switch or after a failure) and keeps a session going.
pub async fn run(backend: KubeBackend) {
    let inner = backend.inner;
    let mut delay = inner.options.backoff.0;
    loop {
        let target = lock(&inner.target).clone();
        if !connection_state(&inner, ConnectionState::Connecting).await {
            return;
        }
        let mut connection = match connect::connect(&target).await {
            Ok(connection) => connection,
            Err(reason) => {
                let state = ConnectionState::Disconnected { since: inner.clock.now(), reason };
                if !connection_state(&inner, state).await {
                    return;
                }
                tokio::select! {
                    _ = inner.reconnect.notified() => delay = inner.options.backoff.0,
                    _ = tokio::time::sleep(delay) => delay = (delay * 2).min(inner.options.backoff.1.max(delay)),
                }
                continue;
            }
        };
        delay = inner.options.backoff.0;
        // A service configured in another namespace is watched there too.
        for ns in inner.config.services.iter().filter_map(|s| s.kubernetes.namespace.as_ref()) {
            if !connection.namespaces.contains(ns) {
                connection.namespaces.push(ns.clone());
            }
        }
        *lock(&inner.connection) = Some(connection.clone());
        // This cluster's configured services, until its lists arrive.
        lock(&inner.view).targets = model::discover(&inner.config, &connection.namespaces, &[], &[]);
        let mut session = Session::start(inner.clone(), connection);
        tokio::select! {
            alive = session.run() => if !alive { return },
            _ = inner.reconnect.notified() => {}
        }
        drop(session);
        lock(&inner.view).targets.clear();
        // Another cluster: nothing of this one may stay on screen.
        let empty = SourceEvent::Inventory { backend: backend_info(&inner, None), services: Vec::new() };
        if !send(&inner, empty).await {
            return;
        }
    }
}

fn backend_info(inner: &Inner, connection: Option<&Connection>) -> BackendInfo {
    let context = match connection {
        Some(c) => format!("{} · {}", c.context, c.namespaces.join(",")),
        None => connect::context_name(&lock(&inner.target)).unwrap_or_else(|| "(current context)".into()),
    };
    BackendInfo { kind: "kubernetes".into(), context, simulated: false, scenario: None }
}

/// Why a watch failed, in a user's words; `None` for 410 Gone, which the
/// watcher answers with a relist and is no outage.
fn failure(error: &watcher::Error, server: &str) -> Option<String> {
    let client_error = match error {
        watcher::Error::WatchError(status) if status.code == 410 => return None,
        watcher::Error::WatchError(status) => return Some(format!("watch failed: {}", status.message)),
        watcher::Error::NoResourceVersion => return Some("the server sent no resourceVersion".into()),
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            e
        }
    };
    Some(super::describe_error(client_error, server))
}

/// Watch requests end on the server after this long and are made again
/// (a watch, not a list); it stays below the client's read timeout, so only
/// a connection that really went silent times out.
const WATCH_TIMEOUT_SECS: u32 = 100;

fn spawn_watcher<K>(
    client: &Client,
    namespace: &str,
    wrap: fn(K) -> Object,
    backoff: (Duration, Duration),
    server: String,
    updates: mpsc::Sender<Update>,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let namespace = namespace.to_owned();
    tokio::spawn(async move {
        let kind = kind_of::<K>();
        let mut config = watcher::Config::default().timeout(WATCH_TIMEOUT_SECS);
        if kind == Kind::Event {
            // Only cockpit's own Events matter; a busy namespace has many others.
            config = config.labels(model::LABEL_SERVICE);
        }
        let mut stream = watcher(api, config).backoff(Doubling::new(backoff)).boxed();
        let optional = optional(kind);
        let mut said_unavailable = false;
        while let Some(event) = stream.next().await {
            let update = match event {
                Ok(watcher::Event::Init) => Update::Init(kind, namespace.clone()),
                Ok(watcher::Event::InitApply(object)) => Update::InitApply(namespace.clone(), wrap(object)),
                Ok(watcher::Event::InitDone) => Update::InitDone(kind, namespace.clone()),
                Ok(watcher::Event::Apply(object)) => Update::Apply(wrap(object)),
                Ok(watcher::Event::Delete(object)) => Update::Delete(wrap(object)),
                Err(error) => {
                    if let Some(reason) = not_served(&error).filter(|_| optional) {
                        // An optional kind this cluster does not serve (no Gateway API
                        // CRDs) or forbids: carry on without it, say so once, and keep
                        // trying (with backoff) in case it appears.
                        if std::mem::replace(&mut said_unavailable, true) {
                            continue;
                        }
                        Update::Unavailable { kind, namespace: namespace.clone(), reason }
                    } else if optional && !answered(&error) {
                        Update::Lost(kind, namespace.clone())
                    } else {
                        match failure(&error, &server) {
                            Some(reason) => Update::Failed { kind, namespace: namespace.clone(), reason },
                            None => continue,
                        }
                    }
                }
            };
            if updates.send(update).await.is_err() {
                return;
            }
        }
    })
}

/// Whether the server answered (with an error status), as opposed to not
/// being reached at all.
fn answered(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::WatchError(_) => true,
        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(_))
        }
        watcher::Error::NoResourceVersion => true,
    }
}

/// Whether a kind is optional: a cluster is live without it.
fn optional(kind: Kind) -> bool {
    matches!(kind, Kind::Route | Kind::Event)
}

/// An optional kind in a user's words.
fn optional_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Route => "HTTPRoutes",
        _ => "events",
    }
}

/// What is missing while an optional kind cannot be watched.
fn without(kind: Kind) -> &'static str {
    match kind {
        Kind::Route => "canary weights as last seen",
        _ => "no shared timeline",
    }
}

/// Why a kind's list was refused for good (404: not served, e.g. no Gateway
/// API CRDs; 403: not allowed), as opposed to the server being away.
fn not_served(error: &watcher::Error) -> Option<String> {
    let (watcher::Error::InitialListFailed(kube::Error::Api(status))
    | watcher::Error::WatchStartFailed(kube::Error::Api(status))) = error
    else {
        return None;
    };
    match status.code {
        404 => Some("not served by this cluster".into()),
        403 => Some(format!("not allowed: {}", status.message)),
        _ => None,
    }
}

/// The kind of a watched type.
fn kind_of<K: Resource<DynamicType = ()>>() -> Kind {
    match K::kind(&()).as_ref() {
        "Deployment" => Kind::Deployment,
        "ReplicaSet" => Kind::ReplicaSet,
        "Pod" => Kind::Pod,
        "HTTPRoute" => Kind::Route,
        _ => Kind::Event,
    }
}

/// Managed fields are large and never read: not kept.
fn slim<K: Resource>(mut object: K) -> K {
    object.meta_mut().managed_fields = None;
    object
}

impl Session {
    fn start(inner: Arc<Inner>, connection: Connection) -> Session {
        let (sender, updates) = mpsc::channel(1024);
        let client = &connection.client;
        let backoff = inner.options.backoff;
        let server = connection.server.clone();
        let mut tasks = Vec::new();
        for ns in &connection.namespaces {
            let s = || sender.clone();
            let srv = || server.clone();
            tasks.push(spawn_watcher(client, ns, |d| Object::Deployment(slim(d)), backoff, srv(), s()));
            tasks.push(spawn_watcher(client, ns, |r| Object::ReplicaSet(slim(r)), backoff, srv(), s()));
            tasks.push(spawn_watcher(client, ns, |p| Object::Pod(slim(p)), backoff, srv(), s()));
            tasks.push(spawn_watcher(client, ns, |r| Object::Route(slim(r)), backoff, srv(), s()));
            tasks.push(spawn_watcher(client, ns, |e| Object::Event(slim(e)), backoff, srv(), s()));
            let (client, ns, tx) = (client.clone(), ns.clone(), sender.clone());
            tasks.push(tokio::spawn(async move {
                // Without an answer nothing is disabled: the server still judges every write.
                let rules = access::review(&client, &ns).await.ok().flatten();
                let _ = tx.send(Update::Rules(ns, rules)).await;
            }));
        }
        Session {
            inner,
            connection,
            updates,
            sender,
            tasks,
            followers: HashMap::new(),
            log_marks: HashMap::new(),
            cache: Cache::default(),
            rules: HashMap::new(),
            sent: Sent::default(),
            pending_changes: Vec::new(),
            listed: HashSet::new(),
            live: false,
            said_live: false,
            outage: None,
            outage_since: None,
            failing: HashSet::new(),
            shown_reason: None,
            degraded: HashMap::new(),
            noted: HashSet::new(),
            problems: Vec::new(),
            probing: None,
            finishing: HashMap::new(),
        }
    }

    /// Folds updates in and reports; false when the app has gone.
    async fn run(&mut self) -> bool {
        let info = backend_info(&self.inner, Some(&self.connection));
        let services = lock(&self.inner.view).targets.iter().map(Target::info).collect::<Vec<_>>();
        if !send(&self.inner, SourceEvent::Inventory { backend: info, services: services.clone() }).await {
            return false;
        }
        self.sent.inventory = Some(services);
        loop {
            let update = tokio::select! {
                update = self.updates.recv() => update,
                _ = self.inner.refocus.notified() => {
                    if !self.report().await {
                        return false;
                    }
                    continue;
                }
            };
            let Some(update) = update else { return true };
            self.fold(update);
            // Whatever else arrives meanwhile is reported with it.
            let settle = tokio::time::sleep(SETTLE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    _ = &mut settle => break,
                    update = self.updates.recv() => match update {
                        Some(update) => self.fold(update),
                        None => return true,
                    },
                }
            }
            if !self.report().await {
                return false;
            }
        }
    }

    fn fold(&mut self, update: Update) {
        match update {
            Update::Init(kind, ns) => match kind {
                Kind::Deployment => self.cache.deployments.init(&ns),
                Kind::ReplicaSet => self.cache.replica_sets.init(&ns),
                Kind::Pod => self.cache.pods.init(&ns),
                Kind::Route => self.cache.routes.init(&ns),
                Kind::Event => {}
            },
            Update::InitApply(ns, object) => match object {
                Object::Deployment(o) => self.cache.deployments.init_apply(&ns, o),
                Object::ReplicaSet(o) => self.cache.replica_sets.init_apply(&ns, o),
                Object::Pod(o) => self.cache.pods.init_apply(&ns, o),
                Object::Route(o) => self.cache.routes.init_apply(&ns, o),
                Object::Event(e) => self.event(&e),
            },
            Update::InitDone(kind, ns) => {
                match kind {
                    Kind::Deployment => self.cache.deployments.init_done(&ns),
                    Kind::ReplicaSet => self.cache.replica_sets.init_done(&ns),
                    Kind::Pod => self.cache.pods.init_done(&ns),
                    Kind::Route => self.cache.routes.init_done(&ns),
                    Kind::Event => {}
                }
                self.failing.remove(&(kind, ns.clone()));
                self.back(&(kind, ns.clone()));
                self.listed.insert((kind, ns));
                self.healed();
                self.reachable();
            }
            Update::Apply(object) => {
                self.failing.remove(&object.origin());
                self.back(&object.origin());
                match object {
                    Object::Deployment(o) => self.cache.deployments.apply(o),
                    Object::ReplicaSet(o) => self.cache.replica_sets.apply(o),
                    Object::Pod(o) => self.cache.pods.apply(o),
                    Object::Route(o) => self.cache.routes.apply(o),
                    Object::Event(e) => self.event(&e),
                }
                self.healed();
                self.reachable();
            }
            Update::Delete(object) => match object {
                Object::Deployment(o) => self.cache.deployments.delete(&o),
                Object::ReplicaSet(o) => self.cache.replica_sets.delete(&o),
                Object::Pod(o) => self.cache.pods.delete(&o),
                Object::Route(o) => self.cache.routes.delete(&o),
                Object::Event(_) => {}
            },
            Update::Failed { kind, namespace, reason } if optional(kind) => {
                // Degrades alone: the connection is not down for it, and the
                // watcher keeps trying. Counted as synced, with what was known.
                self.listed.insert((kind, namespace.clone()));
                self.degraded.insert((kind, namespace), reason);
            }
            Update::Failed { kind, namespace, reason } => {
                self.failing.insert((kind, namespace));
                self.unreachable(reason);
            }
            Update::Lost(kind, namespace) => {
                self.listed.insert((kind, namespace));
            }
            Update::Unavailable { kind, namespace, reason } => {
                self.listed.insert((kind, namespace.clone()));
                if kind == Kind::Route {
                    // Nothing known of them any more: replica-ratio canaries.
                    self.cache.routes.init(&namespace);
                    self.cache.routes.init_done(&namespace);
                }
                let what = match kind {
                    Kind::Route => "HTTPRoutes (canaries by replica ratio)",
                    _ => "Events (no shared timeline)",
                };
                self.problems.push(format!("{what} in {namespace}: {reason}; carrying on without them"));
                self.reachable();
            }
            Update::Rules(ns, rules) => {
                self.rules.insert(ns, rules);
            }
            Update::Reachable => self.reachable(),
            Update::Retry => {}
        }
    }

    /// A cockpit Event becomes a timeline entry, once.
    fn event(&mut self, event: &Event) {
        let Some(reason) = event.reason.as_deref().filter(|r| r.starts_with("Cockpit")) else { return };
        let uid = event.metadata.uid.clone().unwrap_or_else(|| event.metadata.name.clone().unwrap_or_default());
        let service = event.metadata.labels.as_ref().and_then(|l| l.get(model::LABEL_SERVICE)).cloned();
        let Some(service) = service else { return };
        let user = event
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::actions::ANNOTATION_USER))
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        let time = event
            .last_timestamp
            .as_ref()
            .or(event.first_timestamp.as_ref())
            .or(event.metadata.creation_timestamp.as_ref());
        let at = time.map_or_else(|| self.inner.clock.now(), |t| crate::domain::Timestamp(t.0.as_millisecond()));
        let message = event.message.clone().unwrap_or_default();
        let summary = message.split_once(": ").map_or(message.as_str(), |(_, rest)| rest).to_owned();
        let action = reason.trim_start_matches("Cockpit").to_lowercase();
        self.pending_changes.push((format!("event/{uid}"), ChangeRecord { at, service, action, user, summary }));
    }

    /// An optional kind watched again: a later failure is noted again.
    fn back(&mut self, origin: &(Kind, String)) {
        self.degraded.remove(origin);
        self.noted.remove(origin);
    }

    /// The outage is over only once no watch is failing any more.
    fn healed(&mut self) {
        if self.failing.is_empty() {
            self.outage_since = None;
        }
    }

    fn reachable(&mut self) {
        if !self.live {
            self.live = true;
            if let Some(probe) = self.probing.take() {
                probe.abort();
            }
        }
    }

    /// A watch failed: the status bar says so until the server answers
    /// again (a version probe, with backoff, while it lasts).
    fn unreachable(&mut self, reason: String) {
        let was_live = self.live;
        self.live = false;
        self.said_live = false;
        // A new outage, or a new reason for this one (the header says the
        // current one, "since" stays its start): sent with the next report,
        // which awaits room in the channel.
        if was_live || self.shown_reason.as_deref() != Some(reason.as_str()) {
            let since = *self.outage_since.get_or_insert_with(|| self.inner.clock.now());
            self.shown_reason = Some(reason.clone());
            self.outage = Some(ConnectionState::Disconnected { since, reason });
        }
        if self.probing.is_none() {
            let (client, tx) = (self.connection.client.clone(), self.sender.clone());
            let (min, max) = self.inner.options.backoff;
            self.probing = Some(tokio::spawn(async move {
                let mut delay = min;
                loop {
                    tokio::time::sleep(delay).await;
                    if client.apiserver_version().await.is_ok() {
                        let _ = tx.send(Update::Reachable).await;
                        return;
                    }
                    delay = (delay * 2).min(max);
                }
            }));
        }
    }

    /// Sends what changed since the last report.
    async fn report(&mut self) -> bool {
        let inner = self.inner.clone();
        if let Some(outage) = self.outage.take() {
            if !self.live && !connection_state(&inner, outage).await {
                return false;
            }
        }
        for problem in std::mem::take(&mut self.problems) {
            if inner.events.send(Msg::Problem(problem)).await.is_err() {
                return false;
            }
        }
        // Live means synced: every kind listed in every namespace.
        let synced = self.listed.len() >= KINDS * self.connection.namespaces.len();
        if self.live && synced && !self.said_live {
            if !connection_state(&inner, ConnectionState::Live).await {
                return false;
            }
            self.said_live = true;
            self.shown_reason = None;
        }
        if self.live {
            // Said while live only: during an outage its reason says it all.
            let new: Vec<((Kind, String), String)> = self
                .degraded
                .iter()
                .filter(|(key, _)| !self.noted.contains(*key))
                .map(|(key, reason)| (key.clone(), reason.clone()))
                .collect();
            for ((kind, namespace), reason) in new {
                let note = format!(
                    "{} unavailable in {namespace}: {reason} ({}; cockpit keeps trying)",
                    optional_name(kind),
                    without(kind)
                );
                if inner.events.send(Msg::Problem(note)).await.is_err() {
                    return false;
                }
                self.noted.insert((kind, namespace));
            }
        }
        let deployments = self.cache.deployments.all();
        let routes = self.cache.routes.all();
        let targets = model::discover(&inner.config, &self.connection.namespaces, &deployments, &routes);
        let infos: Vec<ServiceInfo> = targets.iter().map(Target::info).collect();
        if self.sent.inventory.as_ref() != Some(&infos) {
            // A service that left and comes back starts from a blank view: say everything again.
            let names: HashSet<&str> = infos.iter().map(|i| i.name.as_str()).collect();
            self.sent.rollouts.retain(|name, _| names.contains(name.as_str()));
            self.sent.traffic.retain(|name, _| names.contains(name.as_str()));
            self.sent.denied.retain(|name, _| names.contains(name.as_str()));
            let info = backend_info(&inner, Some(&self.connection));
            if !send(&inner, SourceEvent::Inventory { backend: info, services: infos.clone() }).await {
                return false;
            }
            self.sent.inventory = Some(infos);
        }
        let mut events = Vec::new();
        let mut rollouts = BTreeMap::new();
        // Indexes, so a report costs O(objects), not O(services × objects).
        let mut by_owner: HashMap<&str, Vec<&ReplicaSet>> = HashMap::new();
        for rs in self.cache.replica_sets.objects.values() {
            for owner in rs.metadata.owner_references.iter().flatten().filter(|o| o.kind == "Deployment") {
                by_owner.entry(owner.uid.as_str()).or_default().push(rs);
            }
        }
        let mut running: HashMap<(&str, &str, &str), Vec<&Pod>> = HashMap::new();
        for pod in self.cache.pods.objects.values() {
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                continue;
            }
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            for (key, value) in pod.metadata.labels.iter().flatten() {
                running.entry((ns, key.as_str(), value.as_str())).or_default().push(pod);
            }
        }
        let mut wanted_logs: HashMap<(String, String), Follow> = HashMap::new();
        let mut finished_promotions = Vec::new();
        for target in &targets {
            let ns = target.namespace.as_str();
            let Some(primary) = self.cache.deployments.get(ns, &target.primary) else { continue };
            let canary = self.cache.deployments.get(ns, &target.canary_deployment);
            let route = target.route.as_deref().and_then(|name| self.cache.routes.get(ns, name));
            let owned = primary.metadata.uid.as_deref().and_then(|uid| by_owner.get(uid)).cloned().unwrap_or_default();
            let status = model::rollout_status(primary, &owned, target.container.as_deref());
            if model::promoting(primary).is_some()
                && status.phase == RolloutPhase::Complete
                && status.generation_observed()
            {
                finished_promotions.push(target.clone());
            }
            if self.sent.rollouts.get(&target.name) != Some(&status) {
                self.sent.rollouts.insert(target.name.clone(), status.clone());
                events.push(SourceEvent::Rollout { service: target.name.clone(), status: status.clone() });
            }
            for rs in owned {
                let Some(number) = model::revision_number(rs) else { continue };
                let uid = rs.metadata.uid.clone().unwrap_or_default();
                let key = format!("rs/{uid}/{number}");
                if self.sent.changes.contains(&key) {
                    continue;
                }
                let image = rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .and_then(|t| model::template_image(t, target.container.as_deref()))
                    .unwrap_or_default();
                let cause = rs.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/change-cause")).cloned();
                let at = rs
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or_else(|| inner.clock.now(), |t| crate::domain::Timestamp(t.0.as_millisecond()));
                let summary = match cause {
                    Some(cause) => format!("revision {number}: {image} ({cause})"),
                    None => format!("revision {number}: {image}"),
                };
                let record = ChangeRecord {
                    at,
                    service: target.name.clone(),
                    action: "rollout".into(),
                    user: "cluster".into(),
                    summary,
                };
                self.pending_changes.push((key, record));
            }
            rollouts.insert(target.name.clone(), status);
            let traffic = model::traffic(target, primary, canary, route);
            if self.sent.traffic.get(&target.name) != Some(&traffic) {
                self.sent.traffic.insert(target.name.clone(), traffic.clone());
                events.push(SourceEvent::Traffic { service: target.name.clone(), traffic });
            }
            if let Some(Some(rules)) = self.rules.get(ns) {
                let denied = access::denied_ops(rules, target);
                if self.sent.denied.get(&target.name) != Some(&denied) {
                    self.sent.denied.insert(target.name.clone(), denied.clone());
                    events.push(SourceEvent::Access { service: target.name.clone(), denied });
                }
            }
            for (deployment, track) in [(Some(primary), Track::Primary), (canary, Track::Canary)] {
                let Some(deployment) = deployment else { continue };
                let first = deployment.spec.as_ref().and_then(|s| s.selector.match_labels.as_ref()?.iter().next());
                let Some((key, value)) = first else { continue };
                for pod in running.get(&(ns, key.as_str(), value.as_str())).into_iter().flatten() {
                    if model::selects(deployment, pod) {
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let mark =
                            self.log_marks.entry((ns.to_owned(), name.clone())).or_insert_with(logs::new_mark).clone();
                        let follow = Follow {
                            service: target.name.clone(),
                            namespace: ns.to_owned(),
                            pod: name.clone(),
                            container: target.container.clone().or_else(|| model::log_container(pod)),
                            last: mark,
                            track,
                            tail: inner.options.tail_lines,
                            max_line: inner.options.max_line,
                            backoff: inner.options.backoff,
                        };
                        wanted_logs.insert((ns.to_owned(), name), follow);
                    }
                }
            }
        }
        {
            let mut view = lock(&inner.view);
            view.targets = targets;
            view.rollouts = rollouts;
        }
        for (key, record) in std::mem::take(&mut self.pending_changes) {
            if self.sent.changes.insert(key) {
                events.push(SourceEvent::Change(record));
            }
        }
        for event in events {
            if !send(&inner, event).await {
                return false;
            }
        }
        if wanted_logs.len() > MAX_FOLLOWED {
            let focus = lock(&inner.focus).clone();
            wanted_logs.retain(|_, follow| Some(&follow.service) == focus.as_ref());
        }
        self.follow_logs(wanted_logs);
        if !inner.options.read_only {
            for target in finished_promotions {
                // A user RBAC does not let promote would only fail, again and again.
                let denied =
                    self.sent.denied.get(&target.name).is_some_and(|d| d.iter().any(|d| d.op == "promote-full"));
                if !denied {
                    self.finish_promotion(target);
                }
            }
        }
        self.finishing.retain(|_, handle| !handle.is_finished());
        true
    }

    fn follow_logs(&mut self, mut wanted: HashMap<(String, String), Follow>) {
        // Where each pod's log was left is kept while the pod is there, so a
        // follower started again (focus moved back) resumes instead of repeating.
        let pods = &self.cache.pods;
        self.log_marks.retain(|(ns, pod), _| pods.get(ns, pod).is_some());
        self.followers.retain(|key, handle| {
            let keep = wanted.contains_key(key) && !handle.is_finished();
            if !keep {
                handle.abort();
            }
            keep
        });
        for (key, follow) in wanted.drain() {
            if self.followers.contains_key(&key) {
                continue;
            }
            let handle = tokio::spawn(logs::follow(self.connection.client.clone(), follow, self.inner.events.clone()));
            self.followers.insert(key, handle);
        }
    }

    /// Traffic back to the promoted primary, the canary to 0, then the mark
    /// removed: until that last write the promotion is still marked, so a
    /// failure part-way is finished on a later report (or by another
    /// cockpit). A problem is shown, never swallowed.
    fn finish_promotion(&mut self, target: Target) {
        if self.finishing.get(&target.name).is_some_and(|running| !running.is_finished()) {
            return;
        }
        let (client, inner) = (self.connection.client.clone(), self.inner.clone());
        let retry = self.sender.clone();
        let name = target.name.clone();
        let handle = tokio::spawn(async move {
            let writer = Writer { client: &client, target: &target, user: &inner.options.user, clock: &inner.clock };
            let finished = async {
                let read = Read::fetch(&client, &target).await?;
                let Some(image) = model::promoting(&read.primary).map(str::to_owned) else { return Ok(None) };
                let on = writer.shift(&read, None, 0).await?;
                let read = Read::fetch(&client, &target).await?;
                writer
                    .deployment(&read.primary, |primary| {
                        clear_promotion(primary);
                        Ok(())
                    })
                    .await?;
                Ok::<_, crate::backend::BackendError>(Some((on, image)))
            };
            match finished.await {
                Ok(Some((on, image))) => {
                    let summary = format!("promotion complete: the primary runs {image}; canary emptied");
                    let _ = writer.event(on, REASON_PROMOTE, &summary).await;
                }
                Ok(None) => {}
                Err(error) => {
                    // A conflict: someone else (another cockpit) is finishing it, or changed
                    // it; the next report looks again. Anything else is shown.
                    if !matches!(error, crate::backend::BackendError::Conflict(_)) {
                        let problem = format!("finishing the promotion of {}: {error}; will try again", target.name);
                        let _ = inner.events.send(Msg::Problem(problem)).await;
                    }
                    // Held while waiting: no new attempt before this one's pause is
                    // over; then a report, which tries again if it is still marked.
                    tokio::time::sleep(FINISH_RETRY).await;
                    let _ = retry.send(Update::Retry).await;
                }
            }
        });
        self.finishing.insert(name, handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::kube::KubeOptions;
    use crate::clock::Clock;

    /// A session whose watches go nowhere; updates are folded by hand.
    fn session() -> (Session, mpsc::Receiver<Msg>) {
        let config: crate::config::Config = toml::from_str("").expect("an empty config");
        let (events, inbox) = mpsc::channel(256);
        let target = connect::Target { kubeconfig: None, context: None, namespaces: vec!["shop".into()] };
        let backend = KubeBackend::new(&config, target, Clock::system(), events, KubeOptions::default());
        let url = "http://127.0.0.1:9";
        let client = Client::try_from(kube::Config::new(url.parse().expect("a URI"))).expect("a client");
        let connection =
            Connection { client, context: "test".into(), server: url.into(), namespaces: vec!["shop".into()] };
        (Session::start(backend.inner.clone(), connection), inbox)
    }

    /// What a report tells the screen: connection states and notes.
    async fn report(session: &mut Session, inbox: &mut mpsc::Receiver<Msg>) -> Vec<String> {
        assert!(session.report().await);
        let mut said = Vec::new();
        while let Ok(msg) = inbox.try_recv() {
            match msg {
                Msg::Source(SourceEvent::Connection { state: ConnectionState::Live, .. }) => said.push("live".into()),
                Msg::Source(SourceEvent::Connection {
                    state: ConnectionState::Disconnected { reason, .. }, ..
                }) => said.push(format!("disconnected: {reason}")),
                Msg::Problem(note) => said.push(note),
                _ => {}
            }
        }
        said
    }

    fn failed(kind: Kind, reason: &str) -> Update {
        Update::Failed { kind, namespace: "shop".into(), reason: reason.into() }
    }

    #[tokio::test]
    async fn an_optional_kind_failing_is_a_note_and_the_outage_says_its_current_reason() {
        let (mut session, mut inbox) = session();
        for kind in [Kind::Deployment, Kind::ReplicaSet, Kind::Pod, Kind::Route, Kind::Event] {
            session.fold(Update::Init(kind, "shop".into()));
            session.fold(Update::InitDone(kind, "shop".into()));
        }
        assert_eq!(report(&mut session, &mut inbox).await, ["live"]);

        // Events failing on the server: live still, with a note, said once.
        session.fold(failed(Kind::Event, "etcdserver: request timed out"));
        let said = report(&mut session, &mut inbox).await;
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("events unavailable in shop: etcdserver: request timed out"), "{said:?}");
        session.fold(failed(Kind::Event, "etcdserver: request timed out"));
        assert!(report(&mut session, &mut inbox).await.is_empty());

        // The real outage begins: its reason, and each new one, is what the header says.
        session.fold(failed(Kind::Deployment, "forbidden: deployments"));
        assert_eq!(report(&mut session, &mut inbox).await, ["disconnected: forbidden: deployments"]);
        let since = session.outage_since;
        session.fold(failed(Kind::Pod, "cannot reach the API server"));
        assert_eq!(report(&mut session, &mut inbox).await, ["disconnected: cannot reach the API server"]);
        session.fold(failed(Kind::ReplicaSet, "cannot reach the API server"));
        assert!(report(&mut session, &mut inbox).await.is_empty(), "the same reason is not said again");
        assert_eq!(session.outage_since, since, "since stays the start of the outage");
    }
}
