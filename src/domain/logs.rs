//! Log lines: making untrusted bytes safe to put on a terminal, reading a
//! level out of them, and a bounded per-service buffer.
//!
//! Sanitising happens once, when a line is ingested by its source task, so
//! drawing a frame never re-parses anything. Lines carry a sequence number
//! that survives eviction, which is what search matches and the paused view
//! hold on to.

use super::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }

    fn parse(word: &str) -> Option<Level> {
        Some(match word.to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" | "dbg" => Level::Debug,
            "info" | "information" | "notice" => Level::Info,
            "warn" | "warning" => Level::Warn,
            "error" | "err" | "fatal" | "critical" | "crit" | "panic" | "alert" | "emerg" => Level::Error,
            _ => return None,
        })
    }
}

/// Which workload of a service a pod belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Track {
    Primary,
    Canary,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Primary => "primary",
            Track::Canary => "canary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Assigned by the buffer; unique and increasing per service.
    pub seq: u64,
    pub at: Timestamp,
    pub pod: Arc<str>,
    pub track: Track,
    /// `None` when the line did not say; the buffer fills it in.
    pub level: Option<Level>,
    /// Printable text only: no control characters, no escape sequences.
    pub text: String,
    /// Byte offset in `text` where structured `key=value` fields start
    /// (lines that arrived as JSON), so they can be drawn dimmer.
    pub fields_at: Option<usize>,
}

/// How long a line may be on screen before it is cut, in bytes.
pub const DEFAULT_MAX_LINE: usize = 4096;

impl LogLine {
    /// Turns raw bytes from a pod or container into a line that is safe to
    /// draw: invalid UTF-8 shown lossily, escape sequences and control
    /// characters removed, tabs expanded, very long lines cut with a marker,
    /// JSON objects shown as `message key=value …`.
    pub fn from_raw(at: Timestamp, pod: Arc<str>, track: Track, raw: &[u8], max_len: usize) -> LogLine {
        let (text, cut) = sanitize(raw, max_len);
        let mut line = LogLine { seq: 0, at, pod, track, level: None, text, fields_at: None };
        if line.text.starts_with('{') && cut == 0 {
            if let Some((readable, level, fields_at)) = readable_json(&line.text) {
                // No message: the fields lead, without their separator (which
                // would otherwise read as a continuation line's indent).
                let indent = readable.len() - readable.trim_start().len();
                line.text = readable.trim_start().to_owned();
                line.level = level;
                line.fields_at = fields_at.map(|at| at.saturating_sub(indent));
            }
        }
        if line.level.is_none() {
            line.level = plain_level(&line.text);
            if line.level.is_some() {
                let removed = strip_leading_level(&mut line.text);
                line.fields_at = line.fields_at.map(|at| at.saturating_sub(removed));
            }
        }
        if cut > 0 {
            line.text.push_str(&format!(" … [cut {cut} bytes]"));
        }
        line
    }
}

/// Returns the printable text and how many input bytes were cut off.
pub fn sanitize(raw: &[u8], max_len: usize) -> (String, usize) {
    // Work on a bounded prefix: a megabyte line costs no more than a long one.
    let budget = max_len.saturating_mul(2).max(16);
    let head = &raw[..raw.len().min(budget)];
    let mut text = if head.iter().all(|b| (0x20..0x7f).contains(b)) {
        String::from_utf8_lossy(head).into_owned()
    } else {
        strip_controls(&String::from_utf8_lossy(head))
    };
    let mut cut = raw.len() - head.len();
    if text.len() > max_len {
        let mut end = max_len;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        // Count what is dropped in input bytes, approximately for stripped text.
        cut += text.len() - end;
        text.truncate(end);
    }
    (text, cut)
}

fn strip_controls(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 control: CSI introducer, then a CSI body.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            // Bidi overrides can make a line read as something it is not.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Two-byte sequences such as ESC ( B take one more byte.
        Some('(' | ')' | '*' | '+' | '#' | '%') => {
            chars.next();
        }
        _ => {}
    }
}

fn skip_csi(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// OSC, DCS and friends end at BEL or ST (ESC \).
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        if c == '\u{7}' || c == '\u{9c}' {
            break;
        }
        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
            chars.next();
            break;
        }
    }
}

fn plain_level(text: &str) -> Option<Level> {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    for word in head.split(|c: char| !c.is_ascii_alphabetic() && c != '=') {
        let word = word.strip_prefix("level=").unwrap_or(word);
        if word.len() >= 3 && word.len() <= 8 {
            if let Some(level) = Level::parse(word) {
                // Plain words like "info" in prose are too weak: only
                // upper-case or `level=` spellings count.
                if word.chars().all(|c| c.is_ascii_uppercase()) || head.contains("level=") {
                    return Some(level);
                }
            }
        }
    }
    None
}

/// `INFO GET /` → `GET /`: the level has its own column. Returns how many
/// bytes were removed from the front.
fn strip_leading_level(text: &mut String) -> usize {
    let word_end = text.find(' ').unwrap_or(text.len());
    let word = text[..word_end].trim_end_matches(':');
    let word = word.strip_prefix("level=").unwrap_or(word);
    let word = word.trim_start_matches('[').trim_end_matches(']');
    if Level::parse(word).is_some() && (word.chars().all(|c| c.is_ascii_uppercase()) || text.starts_with("level=")) {
        let rest = text[word_end..].trim_start().to_owned();
        let removed = text.len() - rest.len();
        *text = rest;
        return removed;
    }
    0
}

const MESSAGE_KEYS: [&str; 3] = ["msg", "message", "text"];
const LEVEL_KEYS: [&str; 4] = ["level", "severity", "lvl", "loglevel"];
const TIME_KEYS: [&str; 4] = ["ts", "time", "timestamp", "@timestamp"];

fn readable_json(text: &str) -> Option<(String, Option<Level>, Option<usize>)> {
    let serde_json::Value::Object(map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let level = LEVEL_KEYS.iter().find_map(|k| map.get(*k).and_then(|v| v.as_str()).and_then(Level::parse));
    let mut out =
        MESSAGE_KEYS.iter().find_map(|k| map.get(*k).and_then(|v| v.as_str())).map(strip_controls).unwrap_or_default();
    let mut fields_at = None;
    for (key, value) in &map {
        let key = key.as_str();
        if MESSAGE_KEYS.contains(&key) || LEVEL_KEYS.contains(&key) || TIME_KEYS.contains(&key) {
            continue;
        }
        if fields_at.is_none() {
            out.push_str("  ");
            fields_at = Some(out.len());
        } else {
            out.push(' ');
        }
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&strip_controls(&format!("{key}={value}")));
    }
    Some((out, level, fields_at))
}

/// A bounded buffer of one service's lines, oldest evicted first.
#[derive(Debug, Clone)]
pub struct LogBuffer {
    lines: VecDeque<LogLine>,
    capacity: usize,
    next_seq: u64,
    /// Last level per pod, for continuation lines (stack traces).
    last_level: HashMap<Arc<str>, Level>,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        LogBuffer { lines: VecDeque::new(), capacity: capacity.max(1), next_seq: 0, last_level: HashMap::new() }
    }

    pub fn push(&mut self, mut line: LogLine) -> u64 {
        let level = match line.level {
            Some(level) => level,
            None if line.text.starts_with(' ') || line.text.starts_with("Caused by") => {
                self.last_level.get(&line.pod).copied().unwrap_or(Level::Info)
            }
            None => Level::Info,
        };
        line.level = Some(level);
        match self.last_level.get_mut(&line.pod) {
            Some(last) => *last = level,
            None => {
                self.last_level.insert(line.pod.clone(), level);
            }
        }
        line.seq = self.next_seq;
        self.next_seq += 1;
        if self.lines.len() == self.capacity {
            if let Some(evicted) = self.lines.pop_front() {
                // Forget pods that no longer have lines, so churn stays bounded.
                if self.last_level.len() > 256 && !self.lines.iter().any(|l| l.pod == evicted.pod) {
                    self.last_level.remove(&evicted.pod);
                }
            }
        }
        self.lines.push_back(line);
        self.next_seq - 1
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sequence number of the oldest line still held.
    pub fn first_seq(&self) -> u64 {
        self.lines.front().map_or(self.next_seq, |l| l.seq)
    }

    /// Sequence number the next pushed line will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn get(&self, seq: u64) -> Option<&LogLine> {
        let index = seq.checked_sub(self.first_seq())?;
        self.lines.get(usize::try_from(index).ok()?)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogLine> + ExactSizeIterator {
        self.lines.iter()
    }

    /// Lines with `seq < before`, newest first.
    pub fn iter_back_from(&self, before: u64) -> impl Iterator<Item = &LogLine> {
        let end = before.saturating_sub(self.first_seq()).min(self.lines.len() as u64) as usize;
        self.lines.range(..end).rev()
    }

    /// Lines with `seq >= from`, oldest first.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = &LogLine> {
        let start = from.saturating_sub(self.first_seq()).min(self.lines.len() as u64) as usize;
        self.lines.range(start..)
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

/// RFC 3339 in UTC (`Z`) with optional fraction, as Docker and the kubelet print it.
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
    let days = super::time::days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000_000) + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(raw: &[u8]) -> LogLine {
        LogLine::from_raw(Timestamp(0), Arc::from("pod-a"), Track::Primary, raw, 80)
    }

    #[test]
    fn escape_sequences_and_controls_never_reach_the_screen() {
        let l = line(b"\x1b[31mERROR\x1b[0m boom\x07 \x1b]0;pwned title\x07done\r");
        assert_eq!(l.text, "boom done");
        assert_eq!(l.level, Some(Level::Error));
        let l = line("\u{9b}2Jclear \u{202e}evil".as_bytes());
        assert_eq!(l.text, "clear evil");
        let l = line(b"\x1bPq#0;2;0;0;0\x1b\\after\x1b(Bx");
        assert_eq!(l.text, "afterx");
        assert!(!l.text.chars().any(|c| c.is_control()));
    }

    #[test]
    fn invalid_utf8_is_shown_lossily() {
        let l = line(b"caf\xc3\xa9 \xff\xfe ok");
        assert_eq!(l.text, "café \u{fffd}\u{fffd} ok");
    }

    #[test]
    fn long_lines_are_cut_with_a_marker() {
        let raw = vec![b'x'; 1 << 20];
        let l = line(&raw);
        assert!(l.text.starts_with(&"x".repeat(80)));
        assert!(l.text.ends_with(&format!("… [cut {} bytes]", (1 << 20) - 80)), "{}", &l.text[80..]);
        // A multi-byte character at the cut is never split.
        let raw = "é".repeat(100);
        let l = line(raw.as_bytes());
        assert!(l.text.starts_with(&"é".repeat(40)));
    }

    #[test]
    fn json_lines_read_as_message_and_fields() {
        let l = line(br#"{"ts":"2026-01-01","level":"warn","msg":"slow query","ms":812,"table":"orders"}"#);
        assert_eq!(l.level, Some(Level::Warn));
        assert_eq!(l.text, "slow query  ms=812 table=orders");
        assert_eq!(&l.text[l.fields_at.unwrap()..], "ms=812 table=orders");
        let l = line(br#"{"msg":"\u001b[2Jhidden"}"#);
        assert_eq!(l.text, "hidden");
        // A level word stripped from the front keeps the fields' offset right.
        let l = line(r#"{"msg":"ERROR: café","user":"jé"}"#.as_bytes());
        assert_eq!(l.level, Some(Level::Error));
        assert_eq!(&l.text[l.fields_at.unwrap()..], "user=jé");
        // No message at all: the fields lead and the line is not a continuation.
        let l = line(br#"{"user":"x","status":500}"#);
        assert_eq!(l.text, "status=500 user=x");
        assert_eq!(l.fields_at, Some(0));
    }

    #[test]
    fn levels_are_read_from_words_and_inherited_by_continuations() {
        assert_eq!(line(b"2026 WARN disk almost full").level, Some(Level::Warn));
        let l = line(b"INFO GET / 200");
        assert_eq!((l.level, l.text.as_str()), (Some(Level::Info), "GET / 200"));
        assert_eq!(line(b"ts=1 level=debug cache miss").level, Some(Level::Debug));
        assert_eq!(line(b"the info desk is open").level, None);
        let mut buffer = LogBuffer::new(10);
        buffer.push(line(b"ERROR panic in handler"));
        buffer.push(line(b"    at handler.rs:12"));
        assert_eq!(buffer.iter().last().unwrap().level, Some(Level::Error));
        buffer.push(line(b"GET /health 200"));
        assert_eq!(buffer.iter().last().unwrap().level, Some(Level::Info));
    }

    #[test]
    fn buffer_is_bounded_and_addressed_by_sequence() {
        let mut buffer = LogBuffer::new(3);
        for i in 0..5u8 {
            buffer.push(line(&[b'a' + i]));
        }
        assert_eq!(buffer.len(), 3);
        assert_eq!(buffer.first_seq(), 2);
        assert_eq!(buffer.get(1), None);
        assert_eq!(buffer.get(3).unwrap().text, "d");
        let back: Vec<_> = buffer.iter_back_from(4).map(|l| l.text.as_str()).collect();
        assert_eq!(back, ["d", "c"]);
        let fwd: Vec<_> = buffer.iter_from(3).map(|l| l.text.as_str()).collect();
        assert_eq!(fwd, ["d", "e"]);
    }

    #[test]
    fn engine_timestamps_are_read() {
        let (nanos, text) = split_timestamp(b"2024-03-05T07:08:09.5Z hello world");
        assert_eq!(nanos, Some(1_709_622_489_500_000_000));
        assert_eq!(text, b"hello world");
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(split_timestamp(b"no timestamp here"), (None, &b"no timestamp here"[..]));
    }
}
