//! The fake Kubernetes API server through the `kube` crate: a
//! `kube::runtime::watcher` that pages its list, survives a server restart
//! and relists after 410 Gone, and `Api::replace` conflicts.

use cockpit::devtools::fake_apiserver::{Config, FakeApiServer, Verb};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(30);

fn client(server: &FakeApiServer) -> Client {
    let url = server.url().parse().expect("the server's URL is a URI");
    Client::try_from(kube::Config::new(url)).expect("a client")
}

fn deployment(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "x"}]}},
        },
    })
}

/// What the watcher yields, simplified.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Init,
    InitApply(String),
    InitDone,
    Apply(String),
    Delete(String),
}

/// Runs a watcher on Deployments in `default` (list pages of 2) and forwards its events.
fn watch(client: Client) -> mpsc::UnboundedReceiver<Seen> {
    watch_with(client, watcher::Config::default().page_size(2))
}

fn watch_with(client: Client, config: watcher::Config) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    let api: Api<Deployment> = Api::namespaced(client, "default");
    tokio::spawn(async move {
        let mut events = watcher(api, config).default_backoff().boxed();
        let name = |d: &Deployment| d.metadata.name.clone().unwrap_or_default();
        while let Some(event) = events.next().await {
            let seen = match event {
                Ok(watcher::Event::Init) => Seen::Init,
                Ok(watcher::Event::InitApply(d)) => Seen::InitApply(name(&d)),
                Ok(watcher::Event::InitDone) => Seen::InitDone,
                Ok(watcher::Event::Apply(d)) => Seen::Apply(name(&d)),
                Ok(watcher::Event::Delete(d)) => Seen::Delete(name(&d)),
                // Connection refused while the server is down, 410 Gone: the watcher retries.
                Err(_) => continue,
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    rx
}

/// Receives until `done` says so; returns everything received.
async fn until(rx: &mut mpsc::UnboundedReceiver<Seen>, what: &str, mut done: impl FnMut(&Seen) -> bool) -> Vec<Seen> {
    let mut seen = Vec::new();
    let wait = async {
        while let Some(event) = rx.recv().await {
            let finished = done(&event);
            seen.push(event);
            if finished {
                return true;
            }
        }
        false
    };
    let finished = tokio::time::timeout(DEADLINE, wait).await;
    assert_eq!(finished, Ok(true), "{what} within {DEADLINE:?}; saw {seen:?}");
    seen
}

fn initial_names(events: &[Seen]) -> BTreeSet<String> {
    let start = events.iter().rposition(|e| *e == Seen::Init).map_or(0, |i| i + 1);
    events[start..]
        .iter()
        .filter_map(|e| match e {
            Seen::InitApply(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_survives_a_server_restart() {
    let mut server = FakeApiServer::start(Config::default()).await.expect("server starts");
    for name in ["a", "b", "c"] {
        server.create("apps", "v1", "deployments", "default", deployment(name, 1)).expect("created");
    }
    let mut rx = watch(client(&server));
    let events = until(&mut rx, "the initial list", |e| *e == Seen::InitDone).await;
    assert_eq!(initial_names(&events), names(&["a", "b", "c"]));
    assert!(server.requests(Verb::List) >= 2, "the list came in pages of two");
    let rv_before = server.resource_version();

    server.restart().await.expect("the server restarts on the same port");
    let api: Api<Deployment> = Api::namespaced(client(&server), "default");
    let d: Deployment = serde_json::from_value(deployment("d", 1)).expect("a Deployment");
    let created = api.create(&Default::default(), &d).await.expect("created after the restart");
    let rv: u64 = created.metadata.resource_version.as_deref().and_then(|rv| rv.parse().ok()).expect("an rv");
    assert!(rv > rv_before, "the resourceVersion counter survived the restart");
    let events = until(&mut rx, "the watcher sees d", |e| matches!(e, Seen::Apply(n) if n == "d")).await;
    assert!(!events.contains(&Seen::Init), "resumed from its resourceVersion without relisting: {events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_relists_after_410_gone() {
    let config = Config { history_limit: 2, ..Config::default() };
    let mut server = FakeApiServer::start(config).await.expect("server starts");
    server.create("apps", "v1", "deployments", "default", deployment("a", 1)).expect("created");
    let mut rx = watch(client(&server));
    let events = until(&mut rx, "the initial list", |e| *e == Seen::InitDone).await;
    assert_eq!(initial_names(&events), names(&["a"]));
    let lists = server.requests(Verb::List);

    server.pause().await;
    for name in ["b", "c", "d", "e"] {
        server.create("apps", "v1", "deployments", "default", deployment(name, 1)).expect("created");
    }
    server.resume().await.expect("serving again");
    let events = until(&mut rx, "the relist", |e| *e == Seen::InitDone).await;
    assert!(events.contains(&Seen::Init), "{events:?}");
    assert_eq!(initial_names(&events), names(&["a", "b", "c", "d", "e"]));
    assert!(server.requests(Verb::List) > lists, "the watcher listed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_with_a_stale_resource_version_is_a_409() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let alice: Api<Deployment> = Api::namespaced(client(&server), "default");
    let bob: Api<Deployment> = Api::namespaced(client(&server), "default");
    let d: Deployment = serde_json::from_value(deployment("web", 1)).expect("a Deployment");
    alice.create(&Default::default(), &d).await.expect("created");
    let mut alices = alice.get("web").await.expect("alice reads");
    let mut bobs = bob.get("web").await.expect("bob reads");
    if let Some(spec) = bobs.spec.as_mut() {
        spec.replicas = Some(5);
    }
    bob.replace("web", &Default::default(), &bobs).await.expect("bob's replace wins");
    if let Some(spec) = alices.spec.as_mut() {
        spec.replicas = Some(7);
    }
    match alice.replace("web", &Default::default(), &alices).await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (409, "Conflict")),
        other => panic!("expected a 409 Conflict, got {other:?}"),
    }
    let now = alice.get("web").await.expect("read back");
    assert_eq!(now.spec.and_then(|s| s.replicas), Some(5), "bob's value survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_list_sends_the_state_then_a_bookmark_then_changes() {
    // `sendInitialEvents`, as kubectl 1.35+ and client-go's WatchListClient ask.
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    for name in ["a", "b"] {
        server.create("apps", "v1", "deployments", "default", deployment(name, 1)).expect("created");
    }
    let lists = server.requests(Verb::List);
    let mut rx = watch_with(client(&server), watcher::Config::default().streaming_lists());
    let events = until(&mut rx, "the initial events", |e| *e == Seen::InitDone).await;
    assert_eq!(initial_names(&events), names(&["a", "b"]));
    assert_eq!(server.requests(Verb::List), lists, "no list: the state came over the watch");
    server.create("apps", "v1", "deployments", "default", deployment("c", 1)).expect("created");
    until(&mut rx, "the change after the bookmark", |e| *e == Seen::Apply("c".into())).await;

    // Without resourceVersionMatch=NotOlderThan it is refused, as the real server refuses it.
    let url = format!(
        "{}/apis/apps/v1/namespaces/default/deployments?watch=1&sendInitialEvents=true&allowWatchBookmarks=true",
        server.url()
    );
    let status = reqwest::get(&url).await.expect("answered").status();
    assert_eq!(status.as_u16(), 422);
}
