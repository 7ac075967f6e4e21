//! Request and error counts per minute over the SLO window, with a running
//! total, so burn rates over any rule window are a short sum.

use crate::domain::time::{MINUTE, Millis};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub requests: f64,
    pub errors: f64,
    /// p99 latency weighted by requests, for averaging.
    pub latency_weighted: f64,
}

impl Bucket {
    pub fn add(&mut self, requests: f64, errors: f64, p99_ms: f64) {
        self.requests += requests;
        self.errors += errors;
        self.latency_weighted += p99_ms * requests;
    }
}

#[derive(Debug, Clone)]
pub struct MinuteSeries {
    /// Oldest first; the last is the minute in progress.
    minutes: VecDeque<Bucket>,
    capacity: usize,
    total: Bucket,
}

impl MinuteSeries {
    pub fn new(window: Millis) -> Self {
        let capacity = (window.0 / MINUTE.0).max(1) as usize + 1;
        MinuteSeries { minutes: VecDeque::with_capacity(capacity), capacity, total: Bucket::default() }
    }

    /// Starts a new minute, dropping the oldest beyond the window.
    pub fn roll(&mut self) {
        if self.minutes.len() == self.capacity {
            if let Some(old) = self.minutes.pop_front() {
                self.total.requests -= old.requests;
                self.total.errors -= old.errors;
                self.total.latency_weighted -= old.latency_weighted;
            }
        }
        self.minutes.push_back(Bucket::default());
    }

    pub fn add(&mut self, requests: f64, errors: f64, p99_ms: f64) {
        if self.minutes.is_empty() {
            self.roll();
        }
        if let Some(current) = self.minutes.back_mut() {
            current.add(requests, errors, p99_ms);
        }
        self.total.add(requests, errors, p99_ms);
    }

    /// Sum of the newest minutes covering `span` (the current one included).
    pub fn last(&self, span: Millis) -> Bucket {
        let n = (span.0 / MINUTE.0).max(1) as usize;
        let mut sum = Bucket::default();
        for b in self.minutes.iter().rev().take(n) {
            sum.requests += b.requests;
            sum.errors += b.errors;
            sum.latency_weighted += b.latency_weighted;
        }
        sum
    }

    pub fn total(&self) -> Bucket {
        self.total
    }

    /// Error ratio per minute over the newest `minutes`, oldest first.
    pub fn error_ratios(&self, minutes: usize) -> Vec<f64> {
        let skip = self.minutes.len().saturating_sub(minutes);
        self.minutes.iter().skip(skip).map(|b| ratio(b.errors, b.requests)).collect()
    }
}

pub fn ratio(errors: f64, requests: f64) -> f64 {
    if requests > 0.0 { (errors / requests).clamp(0.0, 1.0) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_total_matches_the_kept_minutes() {
        let mut s = MinuteSeries::new(Millis(3 * MINUTE.0));
        for i in 0..10 {
            s.roll();
            s.add(100.0, f64::from(i), 10.0);
        }
        // Capacity is the window plus the minute in progress: 4 minutes.
        assert_eq!(s.total().requests, 400.0);
        assert_eq!(s.total().errors, 6.0 + 7.0 + 8.0 + 9.0);
        assert_eq!(s.last(Millis(2 * MINUTE.0)).errors, 17.0);
        assert_eq!(s.error_ratios(2), [0.08, 0.09]);
    }
}
