//! A fake Kubernetes API server: a real HTTP server on 127.0.0.1 that
//! behaves like an API server where cockpit and kubectl depend on it.
//! A development tool: tests and `examples/fake-apiserver.rs` use it, the
//! shipped `cockpit` binary does not.
//!
//! This slice serves discovery, stores namespaces, deployments,
//! replicasets, pods, services, events and httproutes with real
//! resourceVersion/uid/generation semantics, supports create, get, list
//! (label and field selectors), update (with conflicts), delete, the three
//! patch types and watch (resume, bookmarks, 410 Gone, timeouts), and counts
//! requests by verb. With [`Config::controller`] set, a simulated
//! controller (reusing the simulated fleet's workload model and log
//! generator) rolls Deployments out through ReplicaSets and Pods, and pods
//! write logs served at `/log`; `/status` and `/scale` are served too.
//! Lists page with `limit`/`continue`; [`FakeApiServer::seed`] fills the
//! store and [`FakeApiServer::restart`] restarts serving on the same port
//! with the store kept.

pub mod access;
pub mod controller;
mod http;
mod logs;
pub mod openapi;
mod paging;
pub mod patch;
pub mod resources;
pub mod seed;
pub mod selectors;
pub mod store;

pub use access::AccessRule;
pub use controller::ControllerConfig;
use controller::{Controller, Logs};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The verbs requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    /// A `SelfSubjectAccessReview` or `SelfSubjectRulesReview`: a POST
    /// that asks a question and stores nothing, so not a write.
    Review,
}

impl Verb {
    /// The Kubernetes name of the verb.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::Review => "review",
        }
    }
}

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on; port 0 picks a free one.
    pub addr: SocketAddr,
    /// How many writes watches can resume from; older is 410 Gone.
    pub history_limit: usize,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The simulated Deployment controller; `None` (the default) runs none.
    pub controller: Option<ControllerConfig>,
    /// What `SelfSubjectAccessReview`s allow; `None` (the default) allows everything.
    pub access_rules: Option<Vec<AccessRule>>,
    /// API groups answered with 404 under `/apis/GROUP/…`, like a cluster
    /// without their CRDs (e.g. `gateway.networking.k8s.io`). Discovery
    /// still lists them.
    pub without_groups: Vec<String>,
    /// Rules reviews answer "incomplete" with no rules, as behind a webhook
    /// or cloud IAM authoriser; access reviews still answer from the rules.
    pub partial_rules_review: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
            controller: None,
            access_rules: None,
            without_groups: Vec::new(),
            partial_rules_review: false,
        }
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) counts: Mutex<BTreeMap<Verb, u64>>,
    pub(crate) config: Config,
    pub(crate) watches: AtomicUsize,
    pub(crate) logs: Mutex<Logs>,
    /// Limited lists being paged through.
    pub(crate) snapshots: Mutex<paging::Snapshots>,
    /// Objects lists read from the store: the work a list costs.
    pub(crate) objects_read: std::sync::atomic::AtomicU64,
    /// Resources (by plural) whose every request fails, with the message.
    pub(crate) failing: Mutex<BTreeMap<String, String>>,
}

impl Shared {
    pub(crate) fn snapshots(&self) -> std::sync::MutexGuard<'_, paging::Snapshots> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn count(&self, verb: Verb) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(verb).or_insert(0) += 1;
    }

    pub(crate) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn logs(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake API server; dropping it stops accepting connections.
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
    controller: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let log_lines = config.controller.as_ref().map_or(1000, |c| c.log_lines);
        let controller = config.controller.clone();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(config.history_limit)),
            counts: Mutex::new(BTreeMap::new()),
            config,
            watches: AtomicUsize::new(0),
            logs: Mutex::new(Logs::new(log_lines)),
            snapshots: Mutex::new(paging::Snapshots::default()),
            objects_read: std::sync::atomic::AtomicU64::new(0),
            failing: Mutex::new(BTreeMap::new()),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(http::serve(listener, shared.clone(), stopped));
        let controller = controller.map(|c| tokio::spawn(Controller::new(c).run(shared.clone())));
        Ok(Self { addr, shared, accept, stop, controller })
    }

    /// Stops serving: closes the listener and every open connection (watch
    /// streams end without a final event, as when a real API server dies).
    /// The store, its resourceVersion counter and watch history stay, as
    /// etcd's would; so does the controller. [`Self::resume`] serves again.
    pub async fn pause(&mut self) {
        // Receivers see the change (or the sender dropped): connections end.
        let _ = self.stop.send(true);
        self.accept.abort();
        // Aborted is the expected outcome; wait so the listener is closed.
        let _ = (&mut self.accept).await;
    }

    /// Serves again on the same address after [`Self::pause`].
    pub async fn resume(&mut self) -> io::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        self.stop = stop;
        self.accept = tokio::spawn(http::serve(listener, self.shared.clone(), stopped));
        Ok(())
    }

    /// [`Self::pause`] then [`Self::resume`]: a server restart on the same
    /// port that keeps the stored state.
    pub async fn restart(&mut self) -> io::Result<()> {
        self.pause().await;
        self.resume().await
    }

    /// Creates an object through the library, as a client's POST would
    /// (watches see it; it is not counted as a request).
    pub fn create(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        object: serde_json::Value,
    ) -> Result<serde_json::Value, store::ApiError> {
        let res = resources::find(group, version, plural)
            .ok_or_else(|| store::ApiError::bad_request(format!("unknown resource {group}/{version}/{plural}")))?;
        self.shared.store().create(res, namespace, object)
    }

    /// Deletes an object through the library, as a client's DELETE would
    /// (watches see it; it is not counted as a request).
    pub fn delete(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<serde_json::Value, store::ApiError> {
        let res = resources::find(group, version, plural)
            .ok_or_else(|| store::ApiError::bad_request(format!("unknown resource {group}/{version}/{plural}")))?;
        self.shared.store().delete(res, namespace, name)
    }

    /// Seeds the cockpit-labelled `shop` team ([`seed::team`]) plus
    /// `deployments` filler Deployments and `pods` filler Pods in `fill`.
    pub fn seed(&self, deployments: usize, pods: usize) -> Result<(), store::ApiError> {
        let mut store = self.shared.store();
        seed::team(&mut store)?;
        seed::fillers(&mut store, deployments, pods)
    }

    /// Every request for `plural` (list, watch, get, writes) answers 500
    /// `InternalError` with `message` from now on, or normally again with
    /// `None`; watches already open go on. Like a cluster whose Events live
    /// in a separate etcd that is down while everything else works.
    pub fn fail(&self, plural: &str, message: Option<&str>) {
        let mut failing = self.shared.failing.lock().unwrap_or_else(|p| p.into_inner());
        match message {
            Some(message) => failing.insert(plural.to_owned(), message.to_owned()),
            None => failing.remove(plural),
        };
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests of `verb` it has answered.
    pub fn requests(&self, verb: Verb) -> u64 {
        self.shared.counts.lock().unwrap_or_else(|p| p.into_inner()).get(&verb).copied().unwrap_or(0)
    }

    /// How many objects lists have read from the store: a first page reads
    /// every match once, later pages none (they slice its snapshot).
    pub fn objects_read(&self) -> u64 {
        self.shared.objects_read.load(Ordering::Relaxed)
    }

    /// Every verb's count.
    pub fn request_counts(&self) -> BTreeMap<Verb, u64> {
        self.shared.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many watch streams are open now; one ends when its client hangs
    /// up, its `timeoutSeconds` pass or the server drops.
    pub fn open_watches(&self) -> usize {
        self.shared.watches.load(Ordering::SeqCst)
    }

    /// Appends a line to a pod's log (container `container`), as if the pod wrote it.
    pub fn write_log(&self, namespace: &str, pod: &str, container: &str, line: &str) {
        self.shared.logs().push(namespace, pod, container, line.to_string());
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// A kubeconfig (JSON, which kubectl reads as YAML) pointing at this server.
    pub fn kubeconfig(&self) -> String {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url()}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
            "current-context": "fake"
        })
        .to_string()
    }

    /// Writes [`Self::kubeconfig`] to `dir/kubeconfig` and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig())?;
        Ok(path)
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(controller) = &self.controller {
            controller.abort();
        }
    }
}
