//! Log lines a service would write: access lines, JSON events, warnings,
//! errors that follow the real error ratio, multi-line panics, and the odd
//! coloured line, all as raw bytes that go through the real sanitiser.

use super::rng::Rng;

pub struct LineContext<'a> {
    pub service: &'a str,
    pub paths: &'a [&'static str],
    pub depends_on: &'a [&'static str],
    pub error_ratio: f64,
    pub p99_ms: f64,
    /// The worst dependency, when one drags this service down.
    pub failing_dependency: Option<&'a str>,
}

/// One or more raw lines (a panic writes its backtrace as more lines).
pub fn lines(rng: &mut Rng, cx: &LineContext<'_>) -> Vec<Vec<u8>> {
    // Errors are over-represented in logs compared with requests: one bad
    // request often logs twice (the error and its retry warning).
    let p_error = (cx.error_ratio * 6.0).min(0.6);
    let roll = rng.f64();
    let path = *rng.pick(cx.paths);
    let ms = (cx.p99_ms * rng.range(0.05, 0.6)).round();
    if roll < p_error {
        return error(rng, cx, path);
    }
    if roll < p_error + 0.04 {
        return vec![warn(rng, cx, path)];
    }
    if roll < p_error + 0.12 {
        let active = rng.below(40);
        return vec![format!("DEBUG pool stats active={active} idle={} waiters=0", 64 - active).into_bytes()];
    }
    if rng.chance(0.01) {
        // Colour codes, as some loggers write them: stripped on ingest.
        return vec![b"\x1b[32mINFO\x1b[0m connection pool warmed up in \x1b[1m41 ms\x1b[0m".to_vec()];
    }
    if rng.chance(0.3) {
        let trace: String = rng.suffix(16);
        let status = if path.contains("orders") || path.contains("charges") { 201 } else { 200 };
        return vec![format!(
            r#"{{"ts":"-","level":"info","msg":"request served","path":"{path}","status":{status},"latency_ms":{ms},"trace_id":"{trace}"}}"#
        )
        .into_bytes()];
    }
    let method = if rng.chance(0.8) { "GET" } else { "POST" };
    vec![format!("INFO {method} {path} 200 {ms}ms").into_bytes()]
}

fn warn(rng: &mut Rng, cx: &LineContext<'_>, path: &str) -> Vec<u8> {
    let upstream = match cx.failing_dependency {
        Some(dep) => Some(dep),
        None if !cx.depends_on.is_empty() && rng.chance(0.4) => Some(*rng.pick(cx.depends_on)),
        None => None,
    };
    match upstream {
        Some(dep) => format!(
            r#"{{"level":"warn","msg":"retrying upstream","upstream":"{dep}","attempt":{},"path":"{path}"}}"#,
            1 + rng.below(3)
        )
        .into_bytes(),
        None => format!(
            "WARN slow request {path} took {} ms (p99 target {:.0} ms)",
            (cx.p99_ms * rng.range(1.1, 2.5)).round(),
            cx.p99_ms
        )
        .into_bytes(),
    }
}

fn error(rng: &mut Rng, cx: &LineContext<'_>, path: &str) -> Vec<Vec<u8>> {
    if let Some(dep) = cx.failing_dependency {
        return vec![format!("ERROR upstream timeout calling {dep} after 2000 ms path={path}").into_bytes()];
    }
    if rng.chance(0.08) {
        let handler = path.trim_start_matches('/').replace('/', "_");
        let line = 20 + rng.below(200);
        return vec![
            format!("ERROR thread 'tokio-runtime-worker' panicked at src/handlers/{handler}.rs:{line}:13").into_bytes(),
            b"    called `Option::unwrap()` on a `None` value".to_vec(),
            format!("    0: {}::handlers::{handler}::handle", cx.service.replace('-', "_")).into_bytes(),
            b"    1: tokio::runtime::task::harness::poll_future".to_vec(),
            b"    2: std::panicking::try::do_call".to_vec(),
        ];
    }
    if rng.chance(0.5) {
        return vec![
            format!(
                r#"{{"level":"error","msg":"request failed","path":"{path}","status":500,"error":"{}"}}"#,
                rng.pick(&[
                    "deadline exceeded",
                    "connection reset by peer",
                    "invalid state transition",
                    "serialization failure"
                ])
            )
            .into_bytes(),
        ];
    }
    vec![
        format!(
            "ERROR {path} 500 Internal Server Error: {}",
            rng.pick(&["nil pointer in price rule", "db pool exhausted", "unexpected EOF"])
        )
        .into_bytes(),
    ]
}
