//! A dev container's logs, stdout and stderr, followed from the engine and
//! sent as `SourceEvent::Logs` through `LogLine::from_raw` (pod = the
//! container's name, track primary).
//!
//! Lines are asked for with the engine's timestamps: they give each line
//! its time, and let a follower that resumes after a lost connection skip
//! what it already sent. A line the engine split into frames (past 16 KiB)
//! is joined again before it is cut to `max_line` (`Reader`). A follower for a new container first waits for
//! the previous container's follower to drain, so that a service's lines
//! stay in order across a restart.

use crate::domain::Timestamp;
use crate::domain::logs::{LogLine, Track, sanitize, split_timestamp};
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
    let mut reader = Reader::new(pod, max_line, last);
    while let Some(items) = stream.next().await {
        let mut lines = Vec::new();
        let mut broke = false;
        for item in items {
            match item {
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    reader.frame(Channel::Out, &message, &mut lines);
                }
                Ok(LogOutput::StdErr { message }) => reader.frame(Channel::Err, &message, &mut lines),
                Ok(LogOutput::StdIn { .. }) => {}
                Err(_) => {
                    broke = true;
                    break;
                }
            }
        }
        // A line still open waits for the frames that end it; one open when
        // the stream broke is read again, whole, on resuming.
        if !lines.is_empty() && !send(&events, &service, lines).await {
            return;
        }
        if broke {
            failed.store(true, Ordering::SeqCst);
            return;
        }
    }
    // The container ended: its last line may have had no newline.
    let mut lines = Vec::new();
    reader.end(&mut lines);
    if !lines.is_empty() {
        send(&events, &service, lines).await;
    }
}

async fn send(events: &mpsc::Sender<Msg>, service: &str, lines: Vec<LogLine>) -> bool {
    events.send(Msg::Source(SourceEvent::Logs { service: service.to_owned(), lines })).await.is_ok()
}

/// Which of the container's outputs a frame came from: each has its own
/// open line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Out,
    Err,
}

/// A line whose frames are still arriving: its first frame's timestamp,
/// its first bytes (at most `Reader::keep`), and how many bytes past those
/// were counted and dropped.
#[derive(Debug, Default)]
struct Open {
    nanos: Option<i64>,
    head: Vec<u8>,
    dropped: usize,
}

/// Turns the engine's frames into lines. The engine cuts a line longer
/// than its buffer (16 KiB) into frames that end without a newline, each
/// prefixed with the timestamp of the line's first frame; the frames are
/// joined until the newline, so the line is cut (at `max_line`) once, with
/// the number of bytes really cut. Memory stays bounded: past `keep` bytes
/// a line's bytes are only counted.
///
/// Resuming reads again from the second of the last line sent; a line
/// whose timestamp is not newer than that one was sent before and is
/// skipped, whole. The engine does not repeat itself within one stream, so
/// lines are compared with where this stream resumed, not with each other:
/// a long line and a short one from the other output, and the frames of
/// one line, may share or cross timestamps.
struct Reader {
    pod: Arc<str>,
    max_line: usize,
    keep: usize,
    /// Lines up to this timestamp were sent before this stream began.
    resumed_after: i64,
    /// The newest timestamp sent, where the next stream resumes.
    last: Arc<AtomicI64>,
    out: Option<Open>,
    err: Option<Open>,
}

impl Reader {
    fn new(pod: Arc<str>, max_line: usize, last: Arc<AtomicI64>) -> Reader {
        // Twice the line's length: room for what sanitizing removes.
        let keep = max_line.saturating_mul(2).max(16);
        let resumed_after = last.load(Ordering::SeqCst);
        Reader { pod, max_line, keep, resumed_after, last, out: None, err: None }
    }

    /// One frame: `<timestamp> <bytes>`, ending a line when it ends with a
    /// newline (a console frame may hold several lines, each with its
    /// timestamp).
    fn frame(&mut self, channel: Channel, frame: &[u8], lines: &mut Vec<LogLine>) {
        let mut pieces = frame.split(|b| *b == b'\n').peekable();
        let mut first = true;
        while let Some(piece) = pieces.next() {
            let ended = pieces.peek().is_some();
            let slot = match channel {
                Channel::Out => &mut self.out,
                Channel::Err => &mut self.err,
            };
            // A frame's own timestamp: for a continuation, the line's again.
            let (nanos, text) = split_timestamp(piece);
            match slot {
                Some(open) if first => append(open, text, self.keep),
                _ if piece.is_empty() => {}
                _ => {
                    let mut open = Open { nanos, ..Open::default() };
                    append(&mut open, text, self.keep);
                    *slot = Some(open);
                }
            }
            first = false;
            if ended {
                if let Some(open) = slot.take() {
                    self.emit(open, lines);
                }
            }
        }
    }

    /// The stream ended: a last line without a newline is a line too.
    fn end(&mut self, lines: &mut Vec<LogLine>) {
        for open in [self.out.take(), self.err.take()].into_iter().flatten() {
            self.emit(open, lines);
        }
    }

    /// A whole line, unless it was sent before (resuming).
    fn emit(&self, open: Open, lines: &mut Vec<LogLine>) {
        if let Some(nanos) = open.nanos {
            if nanos <= self.resumed_after {
                return;
            }
            self.last.fetch_max(nanos, Ordering::SeqCst);
        }
        let at = open.nanos.map_or_else(Timestamp::now, |n| Timestamp(n.div_euclid(1_000_000)));
        let mut line = LogLine::from_raw(at, self.pod.clone(), Track::Primary, &open.head, self.max_line);
        if open.dropped > 0 {
            // The marker counts what was cut from the kept bytes; add the rest.
            let (_, cut) = sanitize(&open.head, self.max_line);
            if cut > 0 {
                let marker = format!("{MARKER_OPEN}{cut}{MARKER_CLOSE}");
                if let Some(text) = line.text.strip_suffix(marker.as_str()) {
                    line.text.truncate(text.len());
                }
            }
            line.text.push_str(&format!("{MARKER_OPEN}{}{MARKER_CLOSE}", cut + open.dropped));
        }
        lines.push(line);
    }
}

/// The cut marker `LogLine::from_raw` appends: ` … [cut N bytes]`.
const MARKER_OPEN: &str = " … [cut ";
const MARKER_CLOSE: &str = " bytes]";

fn append(open: &mut Open, bytes: &[u8], keep: usize) {
    let room = keep.saturating_sub(open.head.len()).min(bytes.len());
    open.head.extend_from_slice(&bytes[..room]);
    open.dropped += bytes.len() - room;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-26T08:08:24.640720509Z";
    const LATER: &str = "2026-11-26T08:08:24.640720600Z";

    fn nanos(ts: &str) -> i64 {
        split_timestamp(ts.as_bytes()).0.expect("a timestamp")
    }

    fn reader(last: i64) -> Reader {
        Reader::new(Arc::from("api-dev-1"), 100, Arc::new(AtomicI64::new(last)))
    }

    /// The frames the engine sends for one line of `len` bytes: 16 KiB
    /// each, every one with the line's timestamp, the last with the newline.
    fn frames(ts: &str, byte: u8, len: usize) -> Vec<Vec<u8>> {
        let body = vec![byte; len];
        let mut chunks: Vec<Vec<u8>> = body.chunks(16 * 1024).map(|c| [ts.as_bytes(), b" ", c].concat()).collect();
        chunks.last_mut().expect("a frame").push(b'\n');
        chunks
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn the_frames_of_a_long_line_make_one_line_cut_by_its_true_size() {
        let mut r = reader(i64::MIN);
        let mut lines = Vec::new();
        for frame in frames(TS, b'x', 200_000) {
            r.frame(Channel::Out, &frame, &mut lines);
            assert!(r.out.as_ref().is_none_or(|o| o.head.len() <= r.keep), "memory stays bounded");
        }
        r.frame(Channel::Out, format!("{LATER} after\n").as_bytes(), &mut lines);
        assert_eq!(texts(&lines), [format!("{} … [cut {} bytes]", "x".repeat(100), 200_000 - 100), "after".into()]);
        assert_eq!(lines[0].at, Timestamp(nanos(TS).div_euclid(1_000_000)));
        assert_eq!(r.last.load(Ordering::SeqCst), nanos(LATER));
    }

    #[test]
    fn a_line_within_the_cap_is_whole_and_short_lines_split_as_before() {
        let mut r = reader(i64::MIN);
        let mut lines = Vec::new();
        // A line in two frames, shorter than the cap: whole, no marker.
        r.frame(Channel::Out, format!("{TS} hel").as_bytes(), &mut lines);
        assert!(lines.is_empty(), "an open line waits for its newline");
        r.frame(Channel::Out, format!("{TS} lo\n").as_bytes(), &mut lines);
        // A console frame holding several lines, each with its timestamp.
        r.frame(Channel::Out, format!("{LATER} one\n2026-11-26T08:08:24.640720700Z two\n").as_bytes(), &mut lines);
        assert_eq!(texts(&lines), ["hello", "one", "two"]);
    }

    #[test]
    fn stdout_and_stderr_each_join_their_own_line() {
        let mut r = reader(i64::MIN);
        let mut lines = Vec::new();
        let out = frames(TS, b'o', 20_000);
        r.frame(Channel::Out, &out[0], &mut lines);
        // A short stderr line, newer, in the middle of the stdout line.
        r.frame(Channel::Err, format!("{LATER} oops\n").as_bytes(), &mut lines);
        r.frame(Channel::Out, &out[1], &mut lines);
        assert_eq!(texts(&lines), ["oops".to_owned(), format!("{} … [cut {} bytes]", "o".repeat(100), 20_000 - 100)]);
    }

    #[test]
    fn resuming_skips_what_was_sent_whole_and_keeps_what_was_not() {
        // The first stream: a long line, then a short one; it breaks while
        // a third line is open.
        let mut first = reader(i64::MIN);
        let mut sent = Vec::new();
        let replay: Vec<Vec<u8>> = frames(TS, b'x', 50_000)
            .into_iter()
            .chain([format!("{LATER} short\n").into_bytes()])
            .chain(frames("2026-11-26T08:08:25.000000001Z", b'y', 40_000))
            .collect();
        let (before, open) = replay.split_at(replay.len() - 1);
        for frame in before {
            first.frame(Channel::Out, frame, &mut sent);
        }
        assert_eq!(sent.len(), 2);
        let last = first.last.load(Ordering::SeqCst);
        assert_eq!(last, nanos(LATER));

        // Resumed from the same second: everything again, the open line's end too.
        let mut resumed = reader(last);
        let mut again = Vec::new();
        for frame in before.iter().chain(open) {
            resumed.frame(Channel::Out, frame, &mut again);
        }
        resumed.end(&mut again);
        assert_eq!(texts(&again), [format!("{} … [cut {} bytes]", "y".repeat(100), 40_000 - 100)]);
    }

    #[test]
    fn a_last_line_without_a_newline_is_sent_when_the_stream_ends() {
        let mut r = reader(i64::MIN);
        let mut lines = Vec::new();
        r.frame(Channel::Err, format!("{TS} bye").as_bytes(), &mut lines);
        r.end(&mut lines);
        assert_eq!(texts(&lines), ["bye"]);
    }
}
