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
use crate::domain::logs::{LogLine, Track, split_timestamp};
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
