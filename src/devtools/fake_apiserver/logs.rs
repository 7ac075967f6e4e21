//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a pod's buffered lines
//! (`container`, `tailLines`, `timestamps`), and with `follow=true` a
//! chunked stream of new lines until the pod goes or the client hangs up.

use super::Shared;
use super::controller::LogEntry;
use super::http::{Body, failure};
use super::resources;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// How often a follow stream looks for new lines.
const POLL: Duration = Duration::from_millis(20);

/// RFC 3339 with nanoseconds, as the kubelet prefixes `timestamps=true` lines.
fn stamp(at: SystemTime) -> String {
    let seconds = super::store::timestamp(at);
    let nanos = at.duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}.{nanos:09}Z", seconds.trim_end_matches('Z'))
}

struct Options {
    container: Option<String>,
    timestamps: bool,
}

impl Options {
    fn render(&self, lines: &[LogEntry]) -> (String, u64) {
        let mut out = String::new();
        let mut last = 0;
        for line in lines {
            last = last.max(line.seq);
            if self.container.as_deref().is_some_and(|c| c != line.container) {
                continue;
            }
            if self.timestamps {
                out.push_str(&stamp(line.at));
                out.push(' ');
            }
            out.push_str(&line.text);
            out.push('\n');
        }
        (out, last)
    }
}

fn text_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    response
}

pub(crate) fn serve(shared: &Arc<Shared>, ns: &str, pod: &str, query: &HashMap<String, String>) -> Response<Body> {
    let pods = resources::find("", "v1", "pods").unwrap_or_else(resources::namespaces);
    if let Err(e) = shared.store().get(pods, ns, pod) {
        return failure(&e);
    }
    let options = Options {
        container: query.get("container").filter(|c| !c.is_empty()).cloned(),
        timestamps: matches!(query.get("timestamps").map(String::as_str), Some("true" | "1")),
    };
    let tail = query.get("tailLines").and_then(|t| t.parse::<usize>().ok());
    let follow = matches!(query.get("follow").map(String::as_str), Some("true" | "1"));
    let mut lines: Vec<LogEntry> = shared.logs().since(ns, pod, 0).unwrap_or_default();
    if let Some(container) = &options.container {
        lines.retain(|l| &l.container == container);
    }
    if let Some(tail) = tail {
        lines.drain(..lines.len().saturating_sub(tail));
    }
    let (first, mut last) = options.render(&lines);
    // Lines filtered out above still count as seen.
    last = last.max(shared.logs().since(ns, pod, 0).unwrap_or_default().last().map_or(0, |l| l.seq));
    if !follow {
        return text_response(Full::new(Bytes::from(first)).boxed());
    }
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    let shared = shared.clone();
    let (ns, pod) = (ns.to_string(), pod.to_string());
    tokio::spawn(async move {
        if !first.is_empty() && tx.send(Ok(Frame::data(Bytes::from(first)))).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = tx.closed() => return,
            }
            if shared.store().get(pods, &ns, &pod).is_err() {
                return;
            }
            let new = shared.logs().since(&ns, &pod, last).unwrap_or_default();
            if new.is_empty() {
                continue;
            }
            let (text, seq) = options.render(&new);
            last = seq;
            if !text.is_empty() && tx.send(Ok(Frame::data(Bytes::from(text)))).await.is_err() {
                return;
            }
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|frame| (frame, rx)) });
    text_response(BodyExt::boxed(StreamBody::new(frames)))
}
