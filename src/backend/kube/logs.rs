//! Following one pod's log into `SourceEvent::Logs`. The watch source keeps
//! one follower per running pod of a service's primary and canary, so the
//! logs pane shows them merged; it stops a follower when its pod goes.
//!
//! Lines are asked for with the kubelet's timestamps: a follower that
//! reconnects after a drop asks from its last line's time and skips what it
//! already sent. A line is read at most `cap` bytes deep; the rest of a
//! megabyte line is dropped before it reaches memory.

use crate::domain::Timestamp;
use crate::domain::logs::{LogLine, Track, split_timestamp};
use crate::event::SourceEvent;
use crate::state::Msg;
use futures::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines sent in one event at most.
const BATCH: usize = 256;
/// Lines wait at most this long to be sent with others.
const FLUSH: Duration = Duration::from_millis(50);

/// Where a pod's log was left: the last line's kubelet timestamp in ns
/// since the epoch, `i64::MIN` before the first.
pub type Mark = Arc<AtomicI64>;

/// A mark before the first line.
pub fn new_mark() -> Mark {
    Arc::new(AtomicI64::new(i64::MIN))
}

/// Lines asked for at most when resuming after a drop.
const RESUME_TAIL: i64 = 1000;

/// One pod's container to follow.
#[derive(Debug, Clone)]
pub struct Follow {
    pub service: String,
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub track: Track,
    /// Where this pod's log was left; shared with the next follower of it.
    pub last: Mark,
    /// Lines of history to start with.
    pub tail: u32,
    pub max_line: usize,
    pub backoff: (Duration, Duration),
}

/// Reads one line of at most `cap` bytes into `line`, dropping the rest of
/// a longer one (counted in `dropped`). Returns false at the end of the
/// stream. Safe to cancel and call again: all progress is in `line` and
/// `dropped`.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    dropped: &mut usize,
    cap: usize,
) -> std::io::Result<bool> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(!line.is_empty() || *dropped > 0);
        }
        let (chunk, complete) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (&buffer[..end], Some(end + 1)),
            None => (buffer, None),
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        *dropped += chunk.len().saturating_sub(room);
        let used = complete.unwrap_or(buffer.len());
        reader.consume_unpin(used);
        if complete.is_some() {
            return Ok(true);
        }
    }
}

/// Follows until aborted: reconnects with backoff when the stream ends or
/// breaks, and stops for good when the pod is gone.
pub async fn follow(client: Client, follow: Follow, events: mpsc::Sender<Msg>) {
    let api: Api<Pod> = Api::namespaced(client, &follow.namespace);
    let pod: Arc<str> = Arc::from(follow.pod.as_str());
    let cap = follow.max_line.saturating_mul(4).max(1024);
    let mut last: Option<i64> = Some(follow.last.load(Ordering::SeqCst)).filter(|l| *l != i64::MIN);
    let mut delay = follow.backoff.0;
    loop {
        // `sinceTime` goes to the server in whole seconds: ask from the second
        // before, and drop what was already shown by its timestamp.
        let since = last.map(|nanos| nanos.div_euclid(1_000_000_000) - 1);
        let params = LogParams {
            container: follow.container.clone(),
            follow: true,
            timestamps: true,
            tail_lines: Some(if last.is_none() { i64::from(follow.tail) } else { RESUME_TAIL }),
            since_time: since.and_then(|secs| k8s_openapi::jiff::Timestamp::from_second(secs).ok()),
            ..LogParams::default()
        };
        // Lines up to here were shown: on a resumed stream they come again and
        // are dropped; after that, lines with the same timestamp are new ones.
        let replay_until = last;
        match api.log_stream(&follow.pod, &params).await {
            Ok(reader) => {
                let mut reader = std::pin::pin!(reader);
                let (mut line, mut dropped, mut batch) = (Vec::new(), 0usize, Vec::new());
                loop {
                    // Waits without a timer while nothing is held back: an idle stream costs nothing.
                    let next = read_line(&mut reader, &mut line, &mut dropped, cap);
                    let read = if batch.is_empty() { Ok(next.await) } else { tokio::time::timeout(FLUSH, next).await };
                    let more = match read {
                        Err(_elapsed) => true,
                        Ok(Ok(false)) | Ok(Err(_)) => false,
                        Ok(Ok(true)) => {
                            let (nanos, text) = split_timestamp(&line);
                            if nanos.is_none_or(|n| replay_until.is_none_or(|r| n > r)) {
                                last = nanos.or(last);
                                let at = nanos.map_or_else(Timestamp::now, |n| Timestamp(n.div_euclid(1_000_000)));
                                let mut entry = LogLine::from_raw(at, pod.clone(), follow.track, text, follow.max_line);
                                if dropped > 0 && !entry.text.contains("[cut ") {
                                    entry.text.push_str(&format!(" … [cut {dropped} bytes]"));
                                }
                                batch.push(entry);
                            }
                            line.clear();
                            dropped = 0;
                            delay = follow.backoff.0;
                            if batch.len() < BATCH {
                                continue;
                            }
                            true
                        }
                    };
                    if !batch.is_empty() {
                        let lines = std::mem::take(&mut batch);
                        let event = SourceEvent::Logs { service: follow.service.clone(), lines };
                        if events.send(Msg::Source(event)).await.is_err() {
                            return;
                        }
                        // Only what reached the screen counts as shown.
                        if let Some(nanos) = last {
                            follow.last.store(nanos, Ordering::SeqCst);
                        }
                    }
                    if !more {
                        break;
                    }
                }
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return,
            // Not started yet (400), or the server away: try again later.
            Err(_) => {}
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(follow.backoff.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_capped_as_they_are_read() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nshort\nlast");
        let mut reader = futures::io::BufReader::with_capacity(64, &input[..]);
        let (mut line, mut dropped) = (Vec::new(), 0);
        assert!(read_line(&mut reader, &mut line, &mut dropped, 100).await.expect("read"));
        assert_eq!((line.len(), dropped), (100, 9_900));
        let (mut line, mut dropped) = (Vec::new(), 0);
        assert!(read_line(&mut reader, &mut line, &mut dropped, 100).await.expect("read"));
        assert_eq!(line, b"short");
        let (mut line, mut dropped) = (Vec::new(), 0);
        assert!(read_line(&mut reader, &mut line, &mut dropped, 100).await.expect("read"));
        assert_eq!(line, b"last", "an unterminated last line is kept");
        line.clear();
        assert!(!read_line(&mut reader, &mut line, &mut dropped, 100).await.expect("read"));
    }
}
