//! The fake Kubernetes API server (`cockpit::devtools::fake_apiserver`)
//! through the real kubectl and through plain HTTP: discovery good enough
//! for kubectl, create/apply/get/patch of every stored kind, `get -w`,
//! conflicts, 410 Gone watches, selectors and request counters.
//!
//! kubectl validates through the server (the fake's minimal OpenAPI v3 says
//! every PATCH takes `fieldValidation`), so no `--validate=false` is needed.
//! Without kubectl those tests print a note and pass; under `CI=true` they fail.

use cockpit::devtools::fake_apiserver::{AccessRule, Config, ControllerConfig, FakeApiServer, Verb};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

#[path = "common/kubectl.rs"]
mod kubectl;

use kubectl::{Kubectl, have_kubectl};

const DEADLINE: Duration = Duration::from_secs(30);

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "shop/web:1"}
      - {name: sidecar, image: "shop/proxy:1"}
"#;

const OTHERS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  containers: [{name: app, image: "shop/web:1"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Event
metadata: {name: web.1, namespace: shop}
involvedObject: {kind: Deployment, name: web, namespace: shop}
reason: ScalingReplicaSet
message: Scaled up
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-abc, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: "shop/web:1"}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: gateway}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#;

fn images(deployment: &Value) -> Vec<(String, String)> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["image"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_applies_gets_and_patches() {
    if !have_kubectl() {
        return;
    }
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let k = Kubectl::new(&server);
    let ns = k.file("ns.yaml", NAMESPACE);
    let deploy = k.file("deploy.yaml", DEPLOYMENT);
    let others = k.file("others.yaml", OTHERS);

    assert!(k.ok(&["create", "-f", path_str(&ns)]).contains("namespace/shop created"));
    let again = k.run(&["create", "-f", path_str(&ns)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("AlreadyExists"), "{again:?}");
    assert!(k.ok(&["apply", "-f", path_str(&deploy)]).contains("deployment.apps/web created"));
    assert!(k.ok(&["apply", "-f", path_str(&deploy)]).contains("unchanged"));
    k.ok(&["create", "-f", path_str(&others)]);

    let namespace = k.json(&["get", "namespace", "shop"]);
    assert_eq!(namespace["status"]["phase"], "Active");
    assert_eq!(namespace["metadata"]["uid"].as_str().map(str::len), Some(36));
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d["metadata"]["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    for kind in ["pods", "services", "events", "replicasets", "httproutes", "deployments"] {
        let list = k.json(&["-n", "shop", "get", kind]);
        assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{kind}: {list}");
    }
    let missing = k.run(&["-n", "shop", "get", "deployment", "nope"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NotFound"), "{missing:?}");

    // A replace with a stale resourceVersion is a conflict.
    let mut stale = k.json(&["-n", "shop", "get", "deployment", "web"]);
    k.ok(&["-n", "shop", "annotate", "deployment", "web", "touched=yes"]);
    stale["spec"]["replicas"] = json!(7);
    let stale_file = k.file("stale.json", &stale.to_string());
    let conflict = k.run(&["replace", "-f", path_str(&stale_file)]);
    assert!(!conflict.status.success());
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("the object has been modified"), "{conflict:?}");

    let patches = server.requests(Verb::Patch);
    k.ok(&[
        "-n",
        "shop",
        "patch",
        "deployment",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"shop/web:2"}]}}}}"#,
    ]);
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(
        images(&d),
        [("app".into(), "shop/web:2".into()), ("sidecar".into(), "shop/proxy:1".into())],
        "the strategic patch keeps the other container"
    );
    assert_eq!(d["metadata"]["generation"], 2);

    k.ok(&[
        "-n",
        "shop",
        "patch",
        "deployment",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"stage":"prod"}}}"#,
    ]);
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(d["metadata"]["labels"]["stage"], "prod");
    assert_eq!(d["metadata"]["generation"], 2, "a metadata change does not bump generation");
    k.ok(&[
        "-n",
        "shop",
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":5}]"#,
    ]);
    assert_eq!(k.json(&["-n", "shop", "get", "deployment", "web"])["spec"]["replicas"], 5);
    assert!(server.requests(Verb::Patch) >= patches + 3);

    let selected = k.json(&["-n", "shop", "get", "pods,replicasets,deployments", "-l", "app=web,tier in (front)"]);
    assert_eq!(selected["items"].as_array().map(Vec::len), Some(1), "{selected}");
    let by_name = k.json(&["get", "namespaces", "--field-selector", "metadata.name=shop"]);
    assert_eq!(by_name["items"].as_array().map(Vec::len), Some(1), "{by_name}");

    assert!(k.ok(&["-n", "shop", "delete", "service", "web"]).contains("deleted"));
    assert!(server.requests(Verb::Create) >= 7);
    assert!(server.requests(Verb::Get) >= 1);
    assert!(server.requests(Verb::List) >= 1);
    assert!(server.requests(Verb::Delete) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_a_change_as_it_happens() {
    if !have_kubectl() {
        return;
    }
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let k = Kubectl::new(&server);
    k.ok(&["create", "-f", path_str(&k.file("ns.yaml", NAMESPACE))]);
    k.ok(&["apply", "-f", path_str(&k.file("deploy.yaml", DEPLOYMENT))]);

    let mut child = k
        .command(&[
            "-n",
            "shop",
            "get",
            "deployments",
            "-w",
            "-o",
            r#"jsonpath={.metadata.name} {.spec.template.spec.containers[0].image}{"\n"}"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |want: &str| {
        let until = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == want => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("`{want}` was not printed within {DEADLINE:?}; printed: {seen:?}");
    };
    wait_for("web shop/web:1");
    let until = Instant::now() + DEADLINE;
    while server.requests(Verb::Watch) == 0 {
        assert!(Instant::now() < until, "kubectl get -w did not start watching within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    k.ok(&["-n", "shop", "set", "image", "deployment/web", "app=shop/web:3"]);
    wait_for("web shop/web:3");
    // Ended by us, by its id.
    let _ = child.kill();
    let _ = child.wait();
}

async fn body(response: reqwest::Response) -> (u16, Value) {
    let code = response.status().as_u16();
    (code, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_status_codes_conflicts_selectors_and_counters() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let http = reqwest::Client::new();
    let base = format!("{}/apis/apps/v1/namespaces/default/deployments", server.url());
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let d = json!({"metadata": {"name": name, "labels": {"app": name, "tier": tier}}, "spec": {"replicas": 1}});
        let (code, created) = body(http.post(&base).json(&d).send().await.expect("post")).await;
        assert_eq!(code, 201);
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["kind"], "Deployment");
    }
    let (code, status) =
        body(http.post(&base).json(&json!({"metadata": {"name": "a"}})).send().await.expect("post")).await;
    assert_eq!(
        (code, status["kind"].as_str(), status["reason"].as_str()),
        (409, Some("Status"), Some("AlreadyExists"))
    );
    let (code, status) = body(http.get(format!("{base}/zzz")).send().await.expect("get")).await;
    assert_eq!((code, status["reason"].as_str(), status["code"].as_u64()), (404, Some("NotFound"), Some(404)));
    let (code, status) = body(
        http.post(format!("{}/apis/apps/v1/namespaces/nowhere/deployments", server.url()))
            .json(&json!({"metadata": {"name": "x"}}))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!((code, status["message"].as_str()), (404, Some("namespaces \"nowhere\" not found")));

    // Optimistic concurrency.
    let (_, a) = body(http.get(format!("{base}/a")).send().await.expect("get")).await;
    let mut first = a.clone();
    first["spec"]["replicas"] = json!(2);
    let (code, updated) = body(http.put(format!("{base}/a")).json(&first).send().await.expect("put")).await;
    assert_eq!(code, 200);
    assert_eq!(updated["metadata"]["generation"], 2);
    assert_eq!(updated["metadata"]["uid"], a["metadata"]["uid"]);
    let mut stale = a.clone();
    stale["spec"]["replicas"] = json!(3);
    let (code, status) = body(http.put(format!("{base}/a")).json(&stale).send().await.expect("put")).await;
    assert_eq!(code, 409);
    assert_eq!((status["kind"].as_str(), status["reason"].as_str()), (Some("Status"), Some("Conflict")));
    assert!(status["message"].as_str().is_some_and(|m| m.contains("the object has been modified")), "{status}");

    // Selectors.
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").into())
            .collect()
    };
    for (labels, fields, want) in [
        ("tier=front", "", vec!["a", "c"]),
        ("tier in (back),app", "", vec!["b"]),
        ("tier!=front", "", vec!["b"]),
        ("app notin (a, b)", "", vec!["c"]),
        ("", "metadata.name=b", vec!["b"]),
        ("tier=front", "metadata.name!=a", vec!["c"]),
    ] {
        let (code, list) = body(
            http.get(&base).query(&[("labelSelector", labels), ("fieldSelector", fields)]).send().await.expect("list"),
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(list["kind"], "DeploymentList");
        assert_eq!(list["metadata"]["resourceVersion"], server.resource_version().to_string());
        assert_eq!(names(&list), want, "labels `{labels}` fields `{fields}`");
    }

    // Strategic merge patch is for built-in kinds only.
    let route = format!("{}/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes", server.url());
    http.post(&route).json(&json!({"metadata": {"name": "r"}, "spec": {}})).send().await.expect("post");
    let response = http
        .patch(format!("{route}/r"))
        .header("content-type", "application/strategic-merge-patch+json")
        .body("{}")
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status().as_u16(), 415);

    let (code, deleted) = body(http.delete(format!("{base}/c")).send().await.expect("delete")).await;
    assert_eq!((code, deleted["metadata"]["name"].as_str()), (200, Some("c")));

    let counts = server.request_counts();
    let count = |v: Verb| counts.get(&v).copied().unwrap_or(0);
    assert_eq!(
        [Verb::Create, Verb::Get, Verb::List, Verb::Update, Verb::Patch, Verb::Delete, Verb::Watch].map(count),
        [6, 2, 6, 2, 1, 1, 0]
    );
}

async fn watch_lines(http: &reqwest::Client, url: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let response = http.get(url).query(&[("watch", "true")]).query(query).send().await.expect("watch");
    assert_eq!(response.status().as_u16(), 200);
    let text = tokio::time::timeout(DEADLINE, response.text()).await.expect("the watch ends in time").expect("a body");
    text.lines().map(|l| serde_json::from_str(l).expect("one JSON event a line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_resume_bookmark_time_out_and_expire() {
    let config = Config { history_limit: 4, bookmark_interval: Duration::from_millis(200), ..Config::default() };
    let server = FakeApiServer::start(config).await.expect("server starts");
    let http = reqwest::Client::new();
    let pods = format!("{}/api/v1/namespaces/default/pods", server.url());
    let start = server.resource_version();
    for name in ["p1", "p2"] {
        http.post(&pods)
            .json(&json!({"metadata": {"name": name, "labels": {"app": name}}}))
            .send()
            .await
            .expect("post");
    }

    // Resume from a resourceVersion; timeoutSeconds ends the stream.
    let began = Instant::now();
    let rv = start.to_string();
    let events = watch_lines(&http, &pods, &[("resourceVersion", &rv), ("timeoutSeconds", "1")]).await;
    assert!(began.elapsed() >= Duration::from_millis(900) && began.elapsed() < DEADLINE);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["type"].as_str().unwrap_or(""), e["object"]["metadata"]["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(seen, [("ADDED", "p1"), ("ADDED", "p2")]);

    // Live events and bookmarks, filtered by a label selector.
    let current = server.resource_version().to_string();
    let url = pods.clone();
    let client = http.clone();
    let watcher = tokio::spawn(async move {
        watch_lines(
            &client,
            &url,
            &[
                ("resourceVersion", &current),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", "2"),
                ("labelSelector", "app=p1"),
            ],
        )
        .await
    });
    let until = Instant::now() + DEADLINE;
    while server.requests(Verb::Watch) < 2 {
        assert!(Instant::now() < until, "the watch did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for name in ["p1", "p2"] {
        let response = http
            .patch(format!("{pods}/{name}"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"metadata":{"annotations":{"touched":"yes"}}}"#)
            .send()
            .await
            .expect("patch");
        assert_eq!(response.status().as_u16(), 200);
    }
    let events = watcher.await.expect("the watcher");
    let modified: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "MODIFIED")
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(modified, ["p1"], "{events:?}");
    assert!(events.iter().any(|e| e["type"] == "BOOKMARK"), "{events:?}");

    // Beyond the kept history: one ERROR event with a 410 Status.
    for i in 0..6 {
        http.post(&pods).json(&json!({"metadata": {"name": format!("q{i}")}})).send().await.expect("post");
    }
    let events = watch_lines(&http, &pods, &[("resourceVersion", &rv)]).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < until, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_when_its_client_hangs_up() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/api/v1/namespaces", server.url()))
        .query(&[("watch", "true")])
        .send()
        .await
        .expect("watch");
    assert_eq!(response.status().as_u16(), 200);
    wait_until("the watch opens", || server.open_watches() == 1).await;
    drop(response);
    drop(http);
    wait_until("the watch closes after the client hangs up", || server.open_watches() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let http = reqwest::Client::new();
    for (path, kind) in [
        ("/version", None),
        ("/api", Some("APIVersions")),
        ("/api/v1", Some("APIResourceList")),
        ("/apis", Some("APIGroupList")),
        ("/apis/apps/v1", Some("APIResourceList")),
        ("/apis/gateway.networking.k8s.io/v1", Some("APIResourceList")),
        ("/openapi/v3", None),
        ("/openapi/v3/apis/apps/v1", None),
    ] {
        let (code, doc) = body(http.get(format!("{}{path}", server.url())).send().await.expect("get")).await;
        assert_eq!(code, 200, "{path}");
        assert_eq!(doc["kind"].as_str(), kind, "{path}");
    }
    let (code, _) = body(http.get(format!("{}/apis/nope/v1", server.url())).send().await.expect("get")).await;
    assert_eq!(code, 404);
}

// --- Slice 2: the simulated controller, subresources and logs ---

/// A server whose controller runs 20× real time, stepping every 10 ms.
async fn fast_server() -> FakeApiServer {
    let controller = ControllerConfig { speed: 20.0, tick: Duration::from_millis(10), ..ControllerConfig::default() };
    FakeApiServer::start(Config { controller: Some(controller), ..Config::default() }).await.expect("server starts")
}

fn rollout_deployment(image: &str, replicas: u32, deadline_seconds: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: shop}}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: {deadline_seconds}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: app, image: "{image}"}}]
"#
    )
}

/// Runs kubectl on a blocking thread so the server keeps both workers.
async fn kubectl(k: &Arc<Kubectl>, args: &[&str]) -> Output {
    let k = k.clone();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&args)
    })
    .await
    .expect("kubectl thread")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A fast server with `shop/web` applied at `image`, and what `kubectl
/// rollout status` said about it.
async fn deploy_web(image: &str, replicas: u32, deadline_seconds: u32) -> (FakeApiServer, Arc<Kubectl>, Output) {
    let server = fast_server().await;
    let k = Arc::new(Kubectl::new(&server));
    k.ok(&["create", "-f", path_str(&k.file("ns.yaml", NAMESPACE))]);
    k.ok(&["apply", "-f", path_str(&k.file("d.yaml", &rollout_deployment(image, replicas, deadline_seconds)))]);
    let out = rollout_status(&k).await;
    (server, k, out)
}

async fn rollout_status(k: &Arc<Kubectl>) -> Output {
    kubectl(k, &["-n", "shop", "rollout", "status", "deployment/web", "--timeout=30s"]).await
}

/// The ReplicaSets of `web` as (revision, image, spec.replicas), by revision.
fn replica_sets(k: &Kubectl) -> Vec<(u64, String, u64)> {
    let list = k.json(&["-n", "shop", "get", "rs", "-l", "app=web"]);
    let mut out: Vec<(u64, String, u64)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|rs| {
            let revision = rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let image = rs["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_string();
            (revision, image, rs["spec"]["replicas"].as_u64().unwrap_or(0))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_undo_scale_and_get_follow_the_controller() {
    if !have_kubectl() {
        return;
    }
    let (_server, k, out) = deploy_web("shop/web:1", 3, 600).await;
    assert!(out.status.success(), "rollout status: {}", text(&out));
    assert!(text(&out).contains("successfully rolled out"), "{}", text(&out));
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(d["status"]["observedGeneration"], d["metadata"]["generation"]);
    for field in ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas"] {
        assert_eq!(d["status"][field], 3, "{field}: {}", d["status"]);
    }
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing").cloned())
        .expect("a Progressing condition");
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");

    // A new image: a second ReplicaSet, revision 2, the old one scaled to 0.
    k.ok(&["-n", "shop", "set", "image", "deployment/web", "app=shop/web:2"]);
    let out = rollout_status(&k).await;
    assert!(out.status.success(), "rollout status: {}", text(&out));
    assert_eq!(replica_sets(&k), vec![(1, "shop/web:1".into(), 0), (2, "shop/web:2".into(), 3)]);
    let pods = k.json(&["-n", "shop", "get", "pods", "-l", "app=web"]);
    let hash_of = |p: &Value| p["metadata"]["labels"]["pod-template-hash"].as_str().unwrap_or("").to_string();
    let live: Vec<&Value> = pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
        .collect();
    assert_eq!(live.len(), 3, "{pods}");
    assert!(live.iter().all(|p| p["spec"]["containers"][0]["image"] == "shop/web:2" && !hash_of(p).is_empty()));

    // Undo, which kubectl does from the ReplicaSets: web:1 comes back as revision 3.
    let out = kubectl(&k, &["-n", "shop", "rollout", "undo", "deployment/web"]).await;
    assert!(out.status.success(), "rollout undo: {}", text(&out));
    let out = rollout_status(&k).await;
    assert!(out.status.success(), "rollout status: {}", text(&out));
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!(images(&d), vec![("app".to_string(), "shop/web:1".to_string())]);
    assert_eq!(replica_sets(&k), vec![(2, "shop/web:2".into(), 0), (3, "shop/web:1".into(), 3)]);

    // Scale through /scale.
    let out = kubectl(&k, &["-n", "shop", "scale", "deployment/web", "--replicas=5"]).await;
    assert!(out.status.success(), "scale: {}", text(&out));
    let out = rollout_status(&k).await;
    assert!(out.status.success(), "rollout status: {}", text(&out));
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    assert_eq!((d["spec"]["replicas"].clone(), d["status"]["availableReplicas"].clone()), (json!(5), json!(5)));

    let listed = k.ok(&["-n", "shop", "get", "rs,pods", "-l", "app=web"]);
    assert!(listed.contains("replicaset.apps/web-"), "{listed}");
    // Without server-side tables kubectl prints NAME and AGE only.
    assert_eq!(listed.lines().filter(|l| l.starts_with("pod/web-")).count(), 5, "{listed}");
    let pods = k.json(&["-n", "shop", "get", "pods", "-l", "app=web"]);
    let phases: Vec<&str> =
        pods["items"].as_array().expect("items").iter().filter_map(|p| p["status"]["phase"].as_str()).collect();
    assert_eq!(phases, vec!["Running"; 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_fails_past_the_progress_deadline() {
    if !have_kubectl() {
        return;
    }
    let (_server, k, out) = deploy_web("shop/web:broken", 2, 10).await;
    assert_eq!(out.status.code(), Some(1), "rollout status: {}", text(&out));
    assert!(text(&out).contains("exceeded its progress deadline"), "{}", text(&out));
    let d = k.json(&["-n", "shop", "get", "deployment", "web"]);
    let reasons: Vec<&str> =
        d["status"]["conditions"].as_array().expect("conditions").iter().filter_map(|c| c["reason"].as_str()).collect();
    assert!(reasons.contains(&"ProgressDeadlineExceeded"), "{reasons:?}");
    assert_eq!(d["status"]["availableReplicas"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_tails_and_follows_a_pod() {
    if !have_kubectl() {
        return;
    }
    let (server, k, out) = deploy_web("shop/web:1", 1, 600).await;
    assert!(out.status.success(), "rollout status: {}", text(&out));
    let pods = k.json(&["-n", "shop", "get", "pods", "-l", "app=web"]);
    let pod = pods["items"][0]["metadata"]["name"].as_str().expect("a pod").to_string();
    // Generated lines (the simulated fleet's generator) arrive over time.
    let until = Instant::now() + DEADLINE;
    let tail = loop {
        let out = kubectl(&k, &["-n", "shop", "logs", &pod, "--tail=2", "--timestamps", "-c", "app"]).await;
        assert!(out.status.success(), "logs: {}", text(&out));
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        if printed.lines().count() == 2 {
            break printed;
        }
        assert!(Instant::now() < until, "two log lines within {DEADLINE:?}: {printed:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(tail.lines().all(|l| l.len() > 31 && l.as_bytes()[4] == b'-' && l.contains("Z ")), "{tail}");

    let mut child = k
        .command(&["-n", "shop", "logs", "-f", &pod, "--tail=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl logs -f starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first line proves the stream is open; then a marker is written.
    let first = rx.recv_timeout(DEADLINE);
    assert!(first.is_ok(), "kubectl logs -f printed nothing within {DEADLINE:?}");
    server.write_log("shop", &pod, "app", "MARKER line written now");
    let until = Instant::now() + DEADLINE;
    let mut seen = false;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line == "MARKER line written now" => {
                seen = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "kubectl logs -f did not print the marker within {DEADLINE:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_scale_subresources() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let http = reqwest::Client::new();
    let base = format!("{}/apis/apps/v1/namespaces/default/deployments", server.url());
    let deployment = json!({
        "metadata": {"name": "api"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": {"metadata": {"labels": {"app": "api"}}}},
    });
    let (code, _) = body(http.post(&base).json(&deployment).send().await.expect("create")).await;
    assert_eq!(code, 201);
    let (code, scale) = body(http.get(format!("{base}/api/scale")).send().await.expect("get scale")).await;
    assert_eq!(code, 200);
    assert_eq!((scale["kind"].clone(), scale["apiVersion"].clone()), (json!("Scale"), json!("autoscaling/v1")));
    assert_eq!((scale["spec"]["replicas"].clone(), scale["status"]["selector"].clone()), (json!(2), json!("app=api")));
    let (code, scale) = body(
        http.patch(format!("{base}/api/scale"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"spec":{"replicas":4}}"#)
            .send()
            .await
            .expect("patch scale"),
    )
    .await;
    assert_eq!((code, scale["spec"]["replicas"].clone()), (200, json!(4)));
    let mut put = scale.clone();
    put["spec"]["replicas"] = json!(1);
    let (code, _) = body(http.put(format!("{base}/api/scale")).json(&put).send().await.expect("put scale")).await;
    assert_eq!(code, 200);
    put["spec"]["replicas"] = json!(7);
    let (code, _) = body(http.put(format!("{base}/api/scale")).json(&put).send().await.expect("stale put")).await;
    assert_eq!(code, 409, "a stale Scale resourceVersion conflicts");

    // /status changes the status only.
    let (_, mut current) = body(http.get(format!("{base}/api")).send().await.expect("get")).await;
    assert_eq!(current["spec"]["replicas"], 1);
    current["spec"]["replicas"] = json!(9);
    current["status"] = json!({"replicas": 1, "observedGeneration": 3});
    let (code, updated) =
        body(http.put(format!("{base}/api/status")).json(&current).send().await.expect("put status")).await;
    assert_eq!(code, 200);
    assert_eq!((updated["spec"]["replicas"].clone(), updated["status"]["replicas"].clone()), (json!(1), json!(1)));
    let (code, patched) = body(
        http.patch(format!("{base}/api/status"))
            .header("content-type", "application/merge-patch+json")
            .body(r#"{"status":{"readyReplicas":1},"spec":{"replicas":5}}"#)
            .send()
            .await
            .expect("patch status"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!((patched["spec"]["replicas"].clone(), patched["status"]["readyReplicas"].clone()), (json!(1), json!(1)));
    let (code, got) = body(http.get(format!("{base}/api/status")).send().await.expect("get status")).await;
    assert_eq!((code, got["status"]["observedGeneration"].clone()), (200, json!(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_follows_the_configured_rules() {
    if !have_kubectl() {
        return;
    }
    let rules = vec![AccessRule::new(&["get", "list", "watch", "patch"], &["apps"], &["deployments"])];
    let server =
        FakeApiServer::start(Config { access_rules: Some(rules), ..Config::default() }).await.expect("server starts");
    let k = Arc::new(Kubectl::new(&server));
    let out = kubectl(&k, &["auth", "can-i", "patch", "deployments"]).await;
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(0), "yes"), "{}", text(&out));
    let out = kubectl(&k, &["auth", "can-i", "delete", "deployments"]).await;
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).trim()), (Some(1), "no"), "{}", text(&out));
    let out = kubectl(&k, &["auth", "can-i", "get", "pods"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let listed = kubectl(&k, &["auth", "can-i", "--list"]).await;
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("deployments.apps"), "{}", text(&listed));
}

// --- Slice 3: paging, seeding, many objects ---

/// Lists `url` page by page with `limit`; returns every item's name and the number of pages.
async fn list_pages(http: &reqwest::Client, url: &str, limit: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let limit = limit.to_string();
        let mut query = vec![("limit", limit.as_str())];
        if !token.is_empty() {
            query.push(("continue", token.as_str()));
        }
        let (code, page) = body(http.get(url).query(&query).send().await.expect("list")).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit.parse().expect("a number"));
        names.extend(items.iter().map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string()));
        match page["metadata"]["continue"].as_str() {
            Some(next) => token = next.to_string(),
            None => return (names, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_limit_and_continue() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    for i in 0..5 {
        let pod = json!({"metadata": {"name": format!("p{i}"), "labels": {"even": (i % 2 == 0).to_string()}}});
        server.create("", "v1", "pods", "default", pod).expect("pod created");
    }
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/pods", server.url());
    let (names, pages) = list_pages(&http, &url, 2).await;
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(pages, 3);
    let (code, first) = body(http.get(&url).query(&[("limit", "2")]).send().await.expect("list")).await;
    assert_eq!(code, 200);
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    // Selectors filter before the limit.
    let (code, even) =
        body(http.get(&url).query(&[("limit", "2"), ("labelSelector", "even=true")]).send().await.expect("list")).await;
    assert_eq!(code, 200);
    assert_eq!(even["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(even["metadata"]["remainingItemCount"], 1);
    let (code, _) = body(http.get(&url).query(&[("continue", "not-a-token")]).send().await.expect("list")).await;
    assert_eq!(code, 400);

    if !have_kubectl() {
        return;
    }
    let k = Kubectl::new(&server);
    let lists_before = server.requests(Verb::List);
    let out = k.ok(&["get", "pods", "--chunk-size=2", "-o", "name"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["pod/p0", "pod/p1", "pod/p2", "pod/p3", "pod/p4"]);
    assert_eq!(server.requests(Verb::List) - lists_before, 3, "kubectl fetched three chunks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_slices_of_one_snapshot_costing_what_they_hold() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    for i in 0..5 {
        server.create("", "v1", "pods", "default", json!({"metadata": {"name": format!("p{i}")}})).expect("pod");
    }
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/default/pods", server.url());
    let (_, first) = body(http.get(&url).query(&[("limit", "2")]).send().await.expect("list")).await;
    let token = first["metadata"]["continue"].as_str().expect("a continue token").to_owned();
    let rv = first["metadata"]["resourceVersion"].clone();
    // Writes between pages do not show: the list is consistent at its first page.
    server.delete("", "v1", "pods", "default", "p3").expect("deleted");
    server.create("", "v1", "pods", "default", json!({"metadata": {"name": "p25"}})).expect("created");
    let (code, rest) =
        body(http.get(&url).query(&[("limit", "10"), ("continue", &token)]).send().await.expect("list")).await;
    assert_eq!(code, 200, "{rest}");
    let names: Vec<&str> =
        rest["items"].as_array().expect("items").iter().filter_map(|o| o["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["p2", "p3", "p4"]);
    assert_eq!(rest["metadata"]["resourceVersion"], rv, "every page says the first page's resourceVersion");

    // At scale: paging through 5,000 pods reads each from the store once,
    // as one unpaged list does; later pages cost only what they hold.
    server.seed(1_000, 5_000).expect("seeded");
    let all_pods = format!("{}/api/v1/pods", server.url());
    let before = server.objects_read();
    let (_, unpaged) = body(http.get(&all_pods).send().await.expect("list")).await;
    let whole = server.objects_read() - before;
    let count = unpaged["items"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(whole, count);
    let before = server.objects_read();
    let (names, pages) = list_pages(&http, &all_pods, 500).await;
    assert_eq!(names.len() as u64, count);
    assert!(pages >= 10, "{pages} pages");
    assert_eq!(server.objects_read() - before, count, "the first page read them all, the others none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_a_team_and_lists_thousands_of_objects() {
    let server = FakeApiServer::start(Config::default()).await.expect("server starts");
    let seeding = Instant::now();
    server.seed(1_000, 5_000).expect("seeded");
    eprintln!("seeding 1,000 deployments and 5,000 pods took {:?}", seeding.elapsed());
    let http = reqwest::Client::new();
    let shop = format!("{}/apis/apps/v1/namespaces/shop/deployments", server.url());
    let (code, team) =
        body(http.get(&shop).query(&[("labelSelector", "cockpit.dev/service=checkout")]).send().await.expect("list"))
            .await;
    assert_eq!(code, 200);
    let tracks: Vec<&str> = team["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|d| d["metadata"]["labels"]["cockpit.dev/track"].as_str())
        .collect();
    assert_eq!(tracks, ["primary", "canary"]);
    let route = format!("{}/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout", server.url());
    let (code, route) = body(http.get(&route).send().await.expect("get")).await;
    assert_eq!(code, 200);
    let weights: Vec<u64> = route["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .expect("backendRefs")
        .iter()
        .filter_map(|b| b["weight"].as_u64())
        .collect();
    assert_eq!(weights, [90, 10]);
    for (path, want) in [("/apis/apps/v1/namespaces/fill/deployments", 1_000), ("/api/v1/namespaces/fill/pods", 5_000)]
    {
        let started = Instant::now();
        let (code, list) = body(http.get(format!("{}{path}", server.url())).send().await.expect("list")).await;
        eprintln!("GET {path}: {want} items in {:?}", started.elapsed());
        assert_eq!(code, 200);
        assert_eq!(list["items"].as_array().map(Vec::len), Some(want));
    }
    let (names, pages) = list_pages(&http, &format!("{}/api/v1/pods", server.url()), 500).await;
    assert_eq!((names.len(), pages), (5_000, 10));
}
