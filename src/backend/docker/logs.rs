//! A dev container's logs, stdout and stderr, followed from the engine and
//! sent as `SourceEvent::Logs` through `LogLine::from_raw` (pod = the
//! container's name, track primary).
//!
//! Lines are asked for with the engine's timestamps: they give each line
//! its time, and let a follower that resumes after a lost connection skip
//! what it already sent. A follower for a new container first waits for
//! the previous container's follower to drain, so that a service's lines
//! stay in order across a restart.

use crate::domain::Timestamp;
use crate::domain::logs::{LogLine, Track};
use crate::event::SourceEvent;
use crate::state::Msg;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a new follower waits for the previous one to drain.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// Lines sent in one event at most.
const BATCH: usize = 256;

/// A running (or finished) follower of one container's logs.
#[derive(Debug)]
pub struct Follower {
    pub container: String,
    pub handle: JoinHandle<()>,
    /// The stream broke (not: the container ended): resume when possible.
    pub failed: Arc<AtomicBool>,
    /// Engine timestamp (ns since the epoch) of the last line sent.
    pub last: Arc<AtomicI64>,
}

/// Where a follower starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// The newest `n` lines (a container that was there before cockpit).
    Tail(u32),
    /// Everything (a container cockpit created).
    All,
    /// After the given line (resuming).
    After(i64),
}

/// What a follower needs to run.
pub struct Follow {
    pub docker: Docker,
    pub service: String,
    pub container: String,
    pub pod: Arc<str>,
    pub start: Start,
    pub previous: Option<JoinHandle<()>>,
    pub events: mpsc::Sender<Msg>,
    pub max_line: usize,
}

/// Spawns a follower.
pub fn spawn(follow: Follow) -> Follower {
    let failed = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicI64::new(match follow.start {
        Start::After(last) => last,
        _ => i64::MIN,
    }));
    let container = follow.container.clone();
    let handle = tokio::spawn(run(follow, failed.clone(), last.clone()));
    Follower { container, handle, failed, last }
}

async fn run(follow: Follow, failed: Arc<AtomicBool>, last: Arc<AtomicI64>) {
    let Follow { docker, service, container, pod, start, previous, events, max_line } = follow;
    if let Some(mut previous) = previous {
        if tokio::time::timeout(DRAIN_WAIT, &mut previous).await.is_err() {
            previous.abort();
        }
    }
    let mut options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true).timestamps(true);
    options = match start {
        Start::Tail(n) => options.tail(&n.to_string()),
        Start::All => options.tail("all"),
        Start::After(nanos) => options.tail("all").since(i32::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0)),
    };
    let mut stream = docker.logs(&container, Some(options.build())).ready_chunks(BATCH);
    while let Some(items) = stream.next().await {
        let mut lines = Vec::new();
        let mut broke = false;
        for item in items {
            let message = match item {
                Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message }) => {
                    message
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(_) => {
                    broke = true;
                    break;
                }
            };
            for raw in message.split(|b| *b == b'\n') {
                if raw.is_empty() {
                    continue;
                }
                let (nanos, text) = split_timestamp(raw);
                if let Some(nanos) = nanos {
                    if nanos <= last.load(Ordering::SeqCst) {
                        continue;
                    }
                    last.store(nanos, Ordering::SeqCst);
                }
                let at = nanos.map_or_else(Timestamp::now, |n| Timestamp(n.div_euclid(1_000_000)));
                lines.push(LogLine::from_raw(at, pod.clone(), Track::Primary, text, max_line));
            }
        }
        if !lines.is_empty()
            && events.send(Msg::Source(SourceEvent::Logs { service: service.clone(), lines })).await.is_err()
        {
            return;
        }
        if broke {
            failed.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// `2026-11-26T08:08:24.640720509Z hello` → (ns since the epoch, `hello`).
/// A line without a timestamp is kept whole.
pub fn split_timestamp(raw: &[u8]) -> (Option<i64>, &[u8]) {
    let Some(space) = raw.iter().position(|b| *b == b' ') else { return (parse_rfc3339(raw), &raw[raw.len()..]) };
    match parse_rfc3339(&raw[..space]) {
        Some(nanos) => (Some(nanos), &raw[space + 1..]),
        None => (None, raw),
    }
}

/// RFC 3339 in UTC (`Z`) with optional fraction, as the engine prints it.
pub fn parse_rfc3339(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: i64 = date.next()?.parse().ok()?;
    let day: i64 = date.next()?.parse().ok()?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut nanos: i64 = 0;
    for (i, digit) in fraction.bytes().take(9).enumerate() {
        if !digit.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - i as u32);
    }
    let days = crate::domain::time::days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_timestamps_are_read() {
        let (nanos, text) = split_timestamp(b"2024-03-05T07:08:09.5Z hello world");
        assert_eq!(nanos, Some(1_709_622_489_500_000_000));
        assert_eq!(text, b"hello world");
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(split_timestamp(b"no timestamp here"), (None, &b"no timestamp here"[..]));
    }
}
