//! How the logs pane looks at a service's buffer: following or paused at a
//! line, the level filter, wrapping, and search with its matches.
//!
//! Positions are log sequence numbers, not row offsets, so a paused view
//! stays on the same line while new lines arrive and old ones are evicted.

use crate::domain::logs::{Level, LogBuffer, LogLine};
use std::collections::VecDeque;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogView {
    /// Paused at this line (the bottom row); `None` follows the tail.
    pub anchor: Option<u64>,
    pub min_level: Option<Level>,
    pub wrap: bool,
    pub search: Option<Search>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    /// Lower-case queries match any case; one capital makes it exact.
    case_sensitive: bool,
    /// Sequence numbers of matching lines still in the buffer, ascending.
    pub matches: VecDeque<u64>,
    /// The next sequence number not yet scanned.
    scanned_to: u64,
    /// The match the view jumped to.
    pub current: Option<u64>,
}

impl Search {
    pub fn new(query: &str) -> Search {
        Search {
            query: query.to_owned(),
            case_sensitive: query.chars().any(char::is_uppercase),
            matches: VecDeque::new(),
            scanned_to: 0,
            current: None,
        }
    }

    pub fn is_match(&self, text: &str) -> bool {
        !self.find_all(text).is_empty()
    }

    /// Byte ranges of every match in `text`.
    pub fn find_all(&self, text: &str) -> Vec<(usize, usize)> {
        let needle = self.query.as_bytes();
        if needle.is_empty() || needle.len() > text.len() {
            return Vec::new();
        }
        let hay = text.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while i + needle.len() <= hay.len() {
            let window = &hay[i..i + needle.len()];
            let hit = if self.case_sensitive { window == needle } else { window.eq_ignore_ascii_case(needle) };
            if hit && text.is_char_boundary(i) && text.is_char_boundary(i + needle.len()) {
                found.push((i, i + needle.len()));
                i += needle.len();
            } else {
                i += 1;
            }
        }
        found
    }

    /// Brings the matches up to date with the buffer: forgets evicted
    /// lines, scans only lines not seen before.
    pub fn refresh(&mut self, buffer: &LogBuffer, min_level: Option<Level>) {
        let first = buffer.first_seq();
        while self.matches.front().is_some_and(|&seq| seq < first) {
            self.matches.pop_front();
        }
        if self.current.is_some_and(|seq| seq < first) {
            self.current = None;
        }
        let from = self.scanned_to.max(first);
        for line in buffer.iter_from(from) {
            if passes(line, min_level) && self.is_match(&line.text) {
                self.matches.push_back(line.seq);
            }
        }
        self.scanned_to = buffer.next_seq();
    }

    /// 1-based position of the current match, for "3 of 41".
    pub fn position(&self) -> Option<usize> {
        let current = self.current?;
        self.matches.binary_search(&current).ok().map(|i| i + 1)
    }
}

pub fn passes(line: &LogLine, min_level: Option<Level>) -> bool {
    match min_level {
        None => true,
        Some(min) => line.level.unwrap_or(Level::Info) >= min,
    }
}

impl LogView {
    pub fn following(&self) -> bool {
        self.anchor.is_none()
    }

    /// A fresh view for another service keeps the user's filter, wrap and
    /// query, but follows the new service's tail.
    pub fn switch_service(&mut self, buffer: &LogBuffer) {
        self.anchor = None;
        if let Some(search) = &self.search {
            self.search = Some(Search::new(&search.query));
        }
        self.refresh(buffer);
    }

    pub fn refresh(&mut self, buffer: &LogBuffer) {
        let min_level = self.min_level;
        if let Some(search) = &mut self.search {
            search.refresh(buffer, min_level);
        }
        // A paused line that was evicted pins the view to the oldest line.
        if let Some(anchor) = self.anchor {
            if anchor < buffer.first_seq() {
                self.anchor = Some(buffer.first_seq());
            }
        }
    }

    pub fn toggle_follow(&mut self, buffer: &LogBuffer) {
        if let Some(search) = &mut self.search {
            search.current = None;
        }
        self.anchor = match self.anchor {
            Some(_) => None,
            None => buffer.next_seq().checked_sub(1),
        };
    }

    /// Moves the bottom row by `rows` visible lines; negative is older.
    /// Reaching the tail resumes following.
    pub fn scroll(&mut self, buffer: &LogBuffer, rows: i64) {
        let min_level = self.min_level;
        // The bottom row: the paused line, or the newest line the filter shows.
        let Some(start) = self.anchor.or_else(|| buffer.iter().rev().find(|l| passes(l, min_level)).map(|l| l.seq))
        else {
            return;
        };
        if let Some(search) = &mut self.search {
            // n/N continue from where the user scrolled to, not the old match.
            search.current = None;
        }
        if rows < 0 {
            let mut target = start;
            for line in buffer.iter_back_from(start).filter(|l| passes(l, min_level)).take(rows.unsigned_abs() as usize)
            {
                target = line.seq;
            }
            self.anchor = Some(target);
        } else if rows > 0 {
            let mut target = start;
            let mut moved = 0;
            for line in buffer.iter_from(start + 1).filter(|l| passes(l, min_level)) {
                target = line.seq;
                moved += 1;
                if moved == rows {
                    break;
                }
            }
            let tail = buffer.iter().rev().find(|l| passes(l, min_level)).map(|l| l.seq);
            self.anchor = if Some(target) >= tail { None } else { Some(target) };
        }
    }

    pub fn top(&mut self, buffer: &LogBuffer) {
        if let Some(search) = &mut self.search {
            search.current = None;
        }
        let min_level = self.min_level;
        self.anchor = buffer.iter().find(|l| passes(l, min_level)).map(|l| l.seq);
    }

    pub fn cycle_level(&mut self, buffer: &LogBuffer) {
        self.min_level = match self.min_level {
            None => Some(Level::Info),
            Some(Level::Trace | Level::Debug | Level::Info) => Some(Level::Warn),
            Some(Level::Warn) => Some(Level::Error),
            Some(Level::Error) => None,
        };
        if let Some(search) = &self.search {
            let mut fresh = Search::new(&search.query);
            fresh.refresh(buffer, self.min_level);
            self.search = Some(fresh);
        }
    }

    pub fn set_search(&mut self, query: &str, buffer: &LogBuffer) {
        if query.is_empty() {
            self.search = None;
            return;
        }
        let mut search = Search::new(query);
        search.refresh(buffer, self.min_level);
        self.search = Some(search);
        // Jump to the newest match at or above the bottom row, as `?` in
        // less would: the line in view counts.
        let from = self.anchor.map_or(buffer.next_seq(), |a| a + 1);
        self.jump_from(from, true);
    }

    /// Jumps to the next older (`older`) or newer match, wrapping around.
    /// Returns false when there is no match at all.
    pub fn jump(&mut self, buffer: &LogBuffer, older: bool) -> bool {
        let from = self.search.as_ref().and_then(|s| s.current).or(self.anchor).unwrap_or(buffer.next_seq());
        self.jump_from(from, older)
    }

    fn jump_from(&mut self, from: u64, older: bool) -> bool {
        let Some(search) = &mut self.search else {
            return false;
        };
        if search.matches.is_empty() {
            return false;
        }
        let next = if older {
            search.matches.iter().rev().find(|&&s| s < from).or(search.matches.back())
        } else {
            search.matches.iter().find(|&&s| s > from).or(search.matches.front())
        };
        search.current = next.copied();
        self.anchor = search.current;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::logs::Track;
    use std::sync::Arc;

    fn buffer(texts: &[&str], capacity: usize) -> LogBuffer {
        let mut b = LogBuffer::new(capacity);
        for t in texts {
            b.push(LogLine::from_raw(Timestamp(0), Arc::from("p"), Track::Primary, t.as_bytes(), 200));
        }
        b
    }

    #[test]
    fn search_is_smart_case_and_incremental() {
        let mut b = buffer(&["GET /a timeout", "ok", "Timeout again"], 100);
        let mut view = LogView::default();
        view.set_search("timeout", &b);
        let s = view.search.as_ref().unwrap();
        assert_eq!(s.matches, [0, 2]);
        assert_eq!(s.current, Some(2), "jumps to the newest match");
        assert_eq!(view.anchor, Some(2));

        b.push(LogLine::from_raw(Timestamp(0), Arc::from("p"), Track::Primary, b"late timeout", 200));
        view.refresh(&b);
        assert_eq!(view.search.as_ref().unwrap().matches, [0, 2, 3]);

        view.set_search("Timeout", &b);
        assert_eq!(view.search.as_ref().unwrap().matches, [2]);
    }

    #[test]
    fn n_and_shift_n_walk_matches_and_wrap() {
        let b = buffer(&["x1", "y", "x2", "y", "x3"], 100);
        let mut view = LogView::default();
        view.set_search("x", &b);
        assert_eq!(view.anchor, Some(4));
        view.jump(&b, true);
        assert_eq!(view.anchor, Some(2));
        view.jump(&b, true);
        assert_eq!(view.anchor, Some(0));
        view.jump(&b, true);
        assert_eq!(view.anchor, Some(4), "wraps to the newest");
        view.jump(&b, false);
        assert_eq!(view.anchor, Some(0), "wraps to the oldest");
        assert_eq!(view.search.as_ref().unwrap().position(), Some(1));
    }

    #[test]
    fn a_search_counts_the_line_in_view_and_n_continues_from_a_scroll() {
        let b = buffer(&["x0", "y", "x2", "y", "x4", "y"], 100);
        let mut view = LogView { anchor: Some(2), ..LogView::default() };
        view.set_search("x", &b);
        assert_eq!(view.anchor, Some(2), "the paused line itself matches");
        view.scroll(&b, 2);
        assert_eq!(view.anchor, Some(4));
        view.jump(&b, true);
        assert_eq!(view.anchor, Some(2), "n goes up from where the view is");
    }

    #[test]
    fn the_first_scroll_up_under_a_filter_moves_one_visible_line() {
        let b = buffer(&["ERROR a", "ERROR b", "INFO c"], 100);
        let mut view = LogView { min_level: Some(Level::Error), ..LogView::default() };
        view.scroll(&b, -1);
        assert_eq!(view.anchor, Some(0));
    }

    #[test]
    fn evicted_matches_are_forgotten() {
        let mut b = buffer(&["x", "y", "x"], 3);
        let mut view = LogView::default();
        view.set_search("x", &b);
        for _ in 0..2 {
            b.push(LogLine::from_raw(Timestamp(0), Arc::from("p"), Track::Primary, b"z", 200));
        }
        view.refresh(&b);
        assert_eq!(view.search.as_ref().unwrap().matches, [2]);
    }

    #[test]
    fn scrolling_respects_the_filter_and_resumes_following_at_the_tail() {
        let b = buffer(&["ERROR a", "INFO b", "ERROR c", "INFO d", "ERROR e"], 100);
        let mut view = LogView { min_level: Some(Level::Error), ..LogView::default() };
        view.scroll(&b, -1);
        assert_eq!(view.anchor, Some(2));
        view.scroll(&b, -5);
        assert_eq!(view.anchor, Some(0));
        view.scroll(&b, 1);
        assert_eq!(view.anchor, Some(2));
        view.scroll(&b, 1);
        assert!(view.following());
    }
}
