//! The injectable clock. Wall time is `base + (tokio now - origin) * speed`,
//! so tests with tokio's paused time get a deterministic, fast-forwardable
//! clock, and the simulated fleet can run faster than real time.

use crate::domain::{Millis, Timestamp};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Timestamp,
    origin: Instant,
    speed: f64,
}

impl Clock {
    /// Real time.
    pub fn system() -> Clock {
        Clock { base: Timestamp::now(), origin: Instant::now(), speed: 1.0 }
    }

    /// Starts at `base` and runs `speed` times faster than tokio's clock.
    pub fn starting_at(base: Timestamp, speed: f64) -> Clock {
        Clock { base, origin: Instant::now(), speed: if speed > 0.0 { speed } else { 1.0 } }
    }

    pub fn now(&self) -> Timestamp {
        let elapsed = self.origin.elapsed().as_secs_f64() * self.speed;
        self.base.plus(Millis((elapsed * 1000.0) as i64))
    }

    /// The tokio instant at which the clock shows `at`.
    pub fn instant_at(&self, at: Timestamp) -> Instant {
        // Rounded up: waking a millisecond early would find the deadline not
        // yet reached and spin until it is.
        let ms = (at.since(self.base).0.max(0) as f64 / self.speed).ceil() as u64;
        self.origin + std::time::Duration::from_millis(ms)
    }

    /// A span of clock time in real (tokio) time.
    pub fn real(&self, span: Millis) -> std::time::Duration {
        std::time::Duration::from_millis(((span.0.max(0) as f64 / self.speed) as u64).max(1))
    }

    /// Clock time per real time.
    pub fn speed(&self) -> f64 {
        self.speed
    }
}
