//! The HTTP side: hyper 1 over loopback TCP, URL routing in the API
//! server's layout (`/api/v1/namespaces/{ns}/pods/{name}`,
//! `/apis/{group}/{version}/…`), verbs from method and query, `Status`
//! bodies for errors, and watches as JSON lines over a chunked response.

use super::resources::{self, Resource};
use super::selectors::Selector;
use super::store::{ApiError, Change, Write};
use super::{Shared, Verb};
use super::{access, logs, openapi, paging, patch};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Accepts connections until the task is aborted; every connection (and so
/// every watch stream) ends once `stop` changes or its sender is dropped.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or similar: back off, then retry.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(req, shared).await) }
            });
            // A client that hangs up mid-request is not our error.
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                // Stopped: dropping the connection closes the socket.
                _ = stop.changed() => {}
            }
        });
    }
}

pub(crate) fn respond(code: u16, value: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn failure(error: &ApiError) -> Response<Body> {
    respond(error.code, &error.status())
}

fn not_found_path(path: &str) -> Response<Body> {
    failure(&ApiError::new(404, "NotFound", format!("the server could not find the requested resource ({path})")))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push(h * 16 + l);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn truthy(query: &HashMap<String, String>, key: &str) -> bool {
    matches!(query.get(key).map(String::as_str), Some("true" | "1"))
}

/// The parts of a request a resource handler needs.
struct Call {
    method: Method,
    query: HashMap<String, String>,
    content_type: String,
    body: Bytes,
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let protobuf = content_type.starts_with("application/vnd.kubernetes.protobuf");
    let review = req.uri().path().strip_prefix("/apis/authorization.k8s.io/v1/").and_then(|p| match p {
        "selfsubjectaccessreviews" => Some(false),
        "selfsubjectrulesreviews" => Some(true),
        _ => None,
    });
    if (protobuf && review.is_none()) || content_type == "application/cbor" {
        return failure(&ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the fake API server reads JSON only, not `{content_type}` (kubectl create -f sends JSON)"),
        ));
    }
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return failure(&ApiError::bad_request(format!("reading the body: {e}"))),
    };
    if let Some(rules_review) = review {
        if method != Method::POST {
            return failure(&ApiError::new(405, "MethodNotAllowed", format!("only POST is allowed on {path}")));
        }
        shared.count(Verb::Review);
        return match access::body_json(&body, protobuf, rules_review) {
            Ok(request) => {
                let (rules, partial) = (shared.config.access_rules.as_deref(), shared.config.partial_rules_review);
                respond(201, &access::review(&request, rules, rules_review, partial))
            }
            Err(e) => failure(&e),
        };
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let ["apis", group, _, ..] = segments.as_slice() {
        if shared.config.without_groups.iter().any(|g| g == group) {
            return not_found_path(&path);
        }
    }
    let call = Call { method, query, content_type, body };
    match segments.as_slice() {
        ["version"] => respond(200, &resources::version()),
        ["api"] => respond(200, &resources::core_versions()),
        ["apis"] => respond(200, &resources::group_list()),
        ["openapi", "v3"] => respond(200, &openapi::root()),
        ["openapi", "v3", gv @ ..] => {
            openapi::group_version(&gv.join("/")).map_or_else(|| not_found_path(&path), |d| respond(200, &d))
        }
        ["api", version] => {
            resources::resource_list("", version).map_or_else(|| not_found_path(&path), |l| respond(200, &l))
        }
        ["apis", group, version] => {
            resources::resource_list(group, version).map_or_else(|| not_found_path(&path), |l| respond(200, &l))
        }
        ["api", version, rest @ ..] => resource(&shared, "", version, rest, call, &path).await,
        ["apis", group, version, rest @ ..] => resource(&shared, group, version, rest, call, &path).await,
        _ => not_found_path(&path),
    }
}

async fn resource(
    shared: &Arc<Shared>,
    group: &str,
    version: &str,
    rest: &[&str],
    call: Call,
    path: &str,
) -> Response<Body> {
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        ["namespaces", ns, plural, name, sub] => {
            let Some(res) = resources::find(group, version, plural) else { return not_found_path(path) };
            return subresource(shared, res, (ns, name, sub), call, path).await;
        }
        _ => return not_found_path(path),
    };
    let Some(res) = resources::find(group, version, plural) else { return not_found_path(path) };
    let failing = shared.failing.lock().unwrap_or_else(|p| p.into_inner()).get(res.plural).cloned();
    if let Some(message) = failing {
        // Counted as answered, like any other request.
        shared.count(match (&call.method, name) {
            (&Method::GET, Some(_)) => Verb::Get,
            (&Method::GET, None) if truthy(&call.query, "watch") => Verb::Watch,
            (&Method::GET, None) => Verb::List,
            (&Method::POST, _) => Verb::Create,
            (&Method::PUT, _) => Verb::Update,
            (&Method::PATCH, _) => Verb::Patch,
            _ => Verb::Delete,
        });
        return failure(&ApiError::new(500, "InternalError", message));
    }
    if res.namespaced == namespace.is_none() && (name.is_some() || call.method != Method::GET) {
        return not_found_path(path);
    }
    if !res.namespaced && namespace.is_some() {
        return not_found_path(path);
    }
    let ns = namespace.unwrap_or("");
    let mut code = 200;
    let result = match (&call.method, name) {
        (&Method::GET, Some(name)) => {
            shared.count(Verb::Get);
            shared.store().get(res, ns, name)
        }
        (&Method::GET, None) if truthy(&call.query, "watch") => {
            shared.count(Verb::Watch);
            return watch(shared, res, namespace, &call.query);
        }
        (&Method::GET, None) => {
            shared.count(Verb::List);
            list(shared, res, namespace, &call.query)
        }
        (&Method::POST, None) => {
            shared.count(Verb::Create);
            code = 201;
            parse_body(&call.body).and_then(|body| shared.store().create(res, ns, body))
        }
        (&Method::PUT, Some(name)) => {
            shared.count(Verb::Update);
            parse_body(&call.body).and_then(|body| shared.store().update(res, ns, name, body))
        }
        (&Method::PATCH, Some(name)) => {
            shared.count(Verb::Patch);
            patch_object(shared, res, ns, name, &call)
        }
        (&Method::DELETE, Some(name)) => {
            shared.count(Verb::Delete);
            shared.store().delete(res, ns, name)
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", format!("the server does not allow this method on {path}"))),
    };
    match result {
        Ok(value) => respond(code, &value),
        Err(e) => failure(&e),
    }
}

/// `/status` and `/scale` of deployments, `/log` of pods.
async fn subresource(
    shared: &Arc<Shared>,
    res: &'static Resource,
    (ns, name, sub): (&str, &str, &str),
    call: Call,
    path: &str,
) -> Response<Body> {
    let verb = match call.method {
        Method::GET => Verb::Get,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        _ => {
            return failure(&ApiError::new(
                405,
                "MethodNotAllowed",
                format!("the server does not allow this method on {path}"),
            ));
        }
    };
    shared.count(verb);
    let result = match (res.plural, sub) {
        ("pods", "log") if verb == Verb::Get => return logs::serve(shared, ns, name, &call.query),
        ("deployments", "status") => status(shared, res, ns, name, &call),
        ("deployments", "scale") => scale(shared, res, ns, name, &call),
        _ => return not_found_path(path),
    };
    match result {
        Ok(value) => respond(200, &value),
        Err(e) => failure(&e),
    }
}

/// Applies a PATCH request's body to `object` by its content type.
fn apply_patch(object: &mut Value, call: &Call, builtin: bool) -> Result<(), ApiError> {
    let patch_doc = parse_body(&call.body)?;
    match call.content_type.as_str() {
        "application/merge-patch+json" => patch::merge(object, &patch_doc),
        "application/json-patch+json" => {
            patch::json_patch(object, &patch_doc).map_err(|e| ApiError::new(422, "Invalid", e))?;
        }
        "application/strategic-merge-patch+json" if builtin => patch::strategic(object, &patch_doc),
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got `{other}`)"
                ),
            ));
        }
    }
    Ok(())
}

fn status(shared: &Arc<Shared>, res: &'static Resource, ns: &str, name: &str, call: &Call) -> Result<Value, ApiError> {
    let mut store = shared.store();
    let current = store.get(res, ns, name)?;
    let incoming = match call.method {
        Method::GET => return Ok(current),
        Method::PUT => parse_body(&call.body)?,
        _ => {
            let mut patched = current.clone();
            apply_patch(&mut patched, call, res.builtin)?;
            patched
        }
    };
    // Only the status changes through /status.
    let mut updated = current;
    updated["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
    if let Some(rv) = incoming.pointer("/metadata/resourceVersion") {
        updated["metadata"]["resourceVersion"] = rv.clone();
    }
    store.update(res, ns, name, updated)
}

fn scale_of(deployment: &Value) -> Value {
    let meta = &deployment["metadata"];
    let selector: Vec<String> = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": deployment["spec"]["replicas"].as_u64().unwrap_or(1)},
        "status": {"replicas": deployment["status"]["replicas"].as_u64().unwrap_or(0), "selector": selector.join(",")},
    })
}

fn scale(shared: &Arc<Shared>, res: &'static Resource, ns: &str, name: &str, call: &Call) -> Result<Value, ApiError> {
    let mut store = shared.store();
    let current = store.get(res, ns, name)?;
    let incoming = match call.method {
        Method::GET => return Ok(scale_of(&current)),
        Method::PUT => parse_body(&call.body)?,
        _ => {
            let mut patched = scale_of(&current);
            apply_patch(&mut patched, call, true)?;
            patched
        }
    };
    let Some(replicas) = incoming.pointer("/spec/replicas").and_then(Value::as_u64) else {
        return Err(ApiError::new(422, "Invalid", "Scale.spec.replicas: Required value"));
    };
    let mut updated = current;
    updated["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = incoming.pointer("/metadata/resourceVersion").filter(|rv| rv.as_str() != Some("")) {
        updated["metadata"]["resourceVersion"] = rv.clone();
    }
    store.update(res, ns, name, updated).map(|d| scale_of(&d))
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
}

fn selectors(query: &HashMap<String, String>) -> Result<(Selector, Selector), ApiError> {
    let labels = Selector::labels(query.get("labelSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let fields = Selector::fields(query.get("fieldSelector").map_or("", String::as_str))
        .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
    Ok((labels, fields))
}

fn list(
    shared: &Arc<Shared>,
    res: &'static Resource,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let (labels, fields) = selectors(query)?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| ApiError::bad_request(format!("invalid limit `{n}`")))?),
    };
    // A later page is a slice of the snapshot the first one took; the first
    // page (or an unlimited list) reads the store.
    let (all, rv, offset, snapshot) = match query.get("continue").map(String::as_str) {
        None | Some("") => {
            let (items, rv) = {
                let store = shared.store();
                (store.list(res, namespace), store.resource_version())
            };
            shared.objects_read.fetch_add(items.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let matching: Vec<Value> = items.into_iter().filter(|o| labels.matches(o) && fields.matches(o)).collect();
            match limit {
                Some(limit) if matching.len() > limit => {
                    let (id, all) = shared.snapshots().keep(matching);
                    (all, rv, 0, Some(id))
                }
                _ => (std::sync::Arc::new(matching), rv, 0, None),
            }
        }
        Some(token) => {
            let token = paging::Token::decode(token)?;
            (shared.snapshots().get(token.snapshot)?, token.rv, token.offset, Some(token.snapshot))
        }
    };
    let end = limit.map_or(all.len(), |l| offset.saturating_add(l).min(all.len()));
    let page: Vec<Value> = all.get(offset.min(end)..end).unwrap_or_default().to_vec();
    let remaining = all.len() - end;
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some(snapshot) = snapshot
    {
        metadata["continue"] = Value::String(paging::Token { rv, snapshot, offset: end }.encode());
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = page
        .into_iter()
        .map(|mut o| {
            // Lists of built-in kinds carry no kind/apiVersion per item.
            if res.builtin
                && let Value::Object(m) = &mut o
            {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    Ok(json!({
        "kind": format!("{}List", res.kind),
        "apiVersion": res.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

fn patch_object(
    shared: &Arc<Shared>,
    res: &'static Resource,
    ns: &str,
    name: &str,
    call: &Call,
) -> Result<Value, ApiError> {
    let mut store = shared.store();
    let mut object = store.get(res, ns, name)?;
    apply_patch(&mut object, call, res.builtin)?;
    store.update(res, ns, name, object)
}

fn event_line(kind: &str, object: &Value) -> Frame<Bytes> {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Frame::data(Bytes::from(line))
}

/// What a watcher with these selectors sees of one write, if anything.
fn seen(write: &Write, labels: &Selector, fields: &Selector) -> Option<&'static str> {
    let matches = |o: &Value| labels.matches(o) && fields.matches(o);
    let now = matches(&write.object);
    let before = write.previous.as_ref().is_some_and(matches);
    match (write.change, before, now) {
        (Change::Modified, true, false) => Some("DELETED"),
        (Change::Modified, false, true) => Some("ADDED"),
        (_, _, true) => Some(write.change.as_str()),
        _ => None,
    }
}

/// Counts an open watch stream for as long as it lives.
struct OpenWatch(Arc<Shared>);

impl OpenWatch {
    fn new(shared: Arc<Shared>) -> Self {
        shared.watches.fetch_add(1, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.watches.fetch_sub(1, Ordering::SeqCst);
    }
}

fn watch(
    shared: &Arc<Shared>,
    res: &'static Resource,
    namespace: Option<&str>,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return failure(&e),
    };
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => return failure(&ApiError::bad_request(format!("invalid resourceVersion `{rv}`"))),
        },
    };
    let timeout = query.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs);
    let bookmarks = truthy(query, "allowWatchBookmarks");
    let interval = shared.config.bookmark_interval;
    // A streaming list (`sendInitialEvents`, kubectl 1.35+ and client-go's
    // WatchListClient): the current state as ADDED events, then a bookmark
    // marking its end, then the changes after it, from one consistent view.
    let initial_events = truthy(query, "sendInitialEvents");
    if initial_events {
        if query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
            return failure(&ApiError::new(
                422,
                "Invalid",
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !bookmarks {
            return failure(&ApiError::new(
                422,
                "Invalid",
                "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
    }
    let (start, initial) = {
        let store = shared.store();
        let initial = if initial_events { store.list(res, namespace) } else { Vec::new() };
        (store.watch(res, namespace, if initial_events { None } else { from }), initial)
    };
    let namespace = namespace.map(str::to_string);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let open = OpenWatch::new(shared.clone());
    tokio::spawn(async move {
        let _open = open;
        let mut start = match start {
            Ok(start) => start,
            Err(gone) => {
                // As the real server: 200, then one ERROR event with the Status.
                let _ = tx.send(Ok(event_line("ERROR", &gone.status()))).await;
                return;
            }
        };
        let mut last_rv = start.current_rv;
        if initial_events {
            for object in initial.iter().filter(|o| labels.matches(o) && fields.matches(o)) {
                if tx.send(Ok(event_line("ADDED", object))).await.is_err() {
                    return;
                }
            }
            let end = json!({
                "kind": res.kind,
                "apiVersion": res.api_version(),
                "metadata": {
                    "resourceVersion": last_rv.to_string(),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            });
            if tx.send(Ok(event_line("BOOKMARK", &end))).await.is_err() {
                return;
            }
        }
        for write in &start.replay {
            if let Some(kind) = seen(write, &labels, &fields)
                && tx.send(Ok(event_line(kind, &write.object))).await.is_err()
            {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            let expired = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = start.live.recv() => match received {
                    Ok(write) => {
                        if write.rv <= last_rv {
                            continue;
                        }
                        last_rv = write.rv;
                        if write.resource != res || namespace.as_deref().is_some_and(|ns| ns != write.namespace) {
                            continue;
                        }
                        if let Some(kind) = seen(&write, &labels, &fields)
                            && tx.send(Ok(event_line(kind, &write.object))).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let gone = ApiError::gone("the watch fell too far behind; relist");
                        let _ = tx.send(Ok(event_line("ERROR", &gone.status()))).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    let bookmark = json!({
                        "kind": res.kind,
                        "apiVersion": res.api_version(),
                        "metadata": {"resourceVersion": last_rv.to_string()},
                    });
                    if tx.send(Ok(event_line("BOOKMARK", &bookmark))).await.is_err() {
                        return;
                    }
                }
                () = expired => return,
                // The client hung up: stop even while nothing is written.
                () = tx.closed() => return,
            }
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}
