//! `limit`/`continue` on lists, as the real API server pages: the first
//! page of a limited list takes a consistent snapshot of every matching
//! object at that resourceVersion; later pages are slices of it, so a page
//! costs what its items cost, and writes between pages do not show. A
//! continue token is opaque to clients: hex of `RV/SNAPSHOT/OFFSET`. Only
//! the newest snapshots are kept, each for a while; a token whose snapshot
//! is gone is `410 Expired`, as a real server answers once etcd compacted
//! the revision, and the client lists again from the start.

use super::store::ApiError;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many list snapshots are kept at once (oldest dropped first).
const KEPT: usize = 32;
/// How long a snapshot is kept: about the real server's compaction interval.
const KEPT_FOR: Duration = Duration::from_secs(300);

/// A page's place in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    /// The first page's resourceVersion: every page of the list says it.
    pub rv: u64,
    pub snapshot: u64,
    /// Items served so far.
    pub offset: usize,
}

impl Token {
    pub(crate) fn encode(&self) -> String {
        format!("{}/{}/{}", self.rv, self.snapshot, self.offset).bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn decode(token: &str) -> Result<Token, ApiError> {
        let invalid = || ApiError::bad_request(format!("invalid continue token `{token}`"));
        let bytes = token.as_bytes();
        if bytes.len() % 2 != 0 {
            return Err(invalid());
        }
        let raw = bytes
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        let text = String::from_utf8(raw).map_err(|_| invalid())?;
        let mut parts = text.split('/').map(str::parse::<u64>);
        let (Some(Ok(rv)), Some(Ok(snapshot)), Some(Ok(offset)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Token { rv, snapshot, offset: usize::try_from(offset).map_err(|_| invalid())? })
    }
}

struct Snapshot {
    id: u64,
    taken: Instant,
    items: Arc<Vec<Value>>,
}

/// The snapshots of limited lists still being paged through.
#[derive(Default)]
pub(crate) struct Snapshots {
    next: u64,
    kept: VecDeque<Snapshot>,
}

impl Snapshots {
    /// Keeps `items` for later pages; returns its id.
    pub(crate) fn keep(&mut self, items: Vec<Value>) -> (u64, Arc<Vec<Value>>) {
        self.expire();
        self.next += 1;
        let items = Arc::new(items);
        self.kept.push_back(Snapshot { id: self.next, taken: Instant::now(), items: items.clone() });
        while self.kept.len() > KEPT {
            self.kept.pop_front();
        }
        (self.next, items)
    }

    /// The snapshot a token points into, or 410 once it is gone.
    pub(crate) fn get(&mut self, id: u64) -> Result<Arc<Vec<Value>>, ApiError> {
        self.expire();
        self.kept.iter().find(|s| s.id == id).map(|s| s.items.clone()).ok_or_else(|| {
            ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter.",
            )
        })
    }

    fn expire(&mut self) {
        while self.kept.front().is_some_and(|s| s.taken.elapsed() > KEPT_FOR) {
            self.kept.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_a_bad_request() {
        let token = Token { rv: 42, snapshot: 7, offset: 500 };
        let text = token.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Token::decode(&text).unwrap(), token);
        assert_eq!(Token::decode("zz").unwrap_err().code, 400);
        assert_eq!(Token::decode("3132").unwrap_err().code, 400, "`12` alone is not a token");
    }

    #[test]
    fn only_the_newest_snapshots_are_kept_and_an_old_one_is_gone() {
        let mut snapshots = Snapshots::default();
        let (first, _) = snapshots.keep(vec![Value::Null]);
        for _ in 0..KEPT {
            snapshots.keep(Vec::new());
        }
        assert_eq!(snapshots.get(first).unwrap_err().code, 410);
        assert!(snapshots.get(first + 1).is_ok());
    }
}
