//! The simulated fleet (`cockpit --demo`): a deterministic world that
//! behaves like a cluster with metrics, behind the same boundary as the
//! real backends. `SimFleet` is the world; `run` is its source task;
//! `SimBackend` is how the executor changes it.
//!
//! The world sits behind a std mutex shared by the source task and the
//! executor; it is held only for a step or an action, never across an
//! await, and the UI never touches it.

mod catalog;
mod fleet;
pub(crate) mod loggen;
pub(crate) mod rng;
mod series;
pub(crate) mod workload;

pub use fleet::{STEP, SimFleet, SimOptions};

use crate::backend::{ActionContext, BackendError, Change, Facts, Plan, Workloads};
use crate::clock::Clock;
use crate::state::Msg;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct SimBackend {
    world: Arc<Mutex<SimFleet>>,
}

impl SimBackend {
    pub fn new(fleet: SimFleet) -> SimBackend {
        SimBackend { world: Arc::new(Mutex::new(fleet)) }
    }

    /// The world, for the source task and for tests.
    pub fn world(&self) -> MutexGuard<'_, SimFleet> {
        // A panic while holding the lock leaves a consistent world (every
        // step is applied whole), so a poisoned lock is still usable.
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Workloads for SimBackend {
    async fn facts(&self, service: &str) -> Result<Facts, BackendError> {
        self.world().facts(service)
    }

    async fn apply(&self, service: &str, plan: &Plan, context: &ActionContext) -> Result<Change, BackendError> {
        self.world().apply(service, plan, context)
    }
}

/// The source task: advances the world with the clock and sends what
/// changed. Ends when the receiver is gone.
pub async fn run(backend: SimBackend, clock: Clock, events: mpsc::Sender<Msg>) {
    let mut ticker = tokio::time::interval(clock.real(STEP));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let batch = backend.world().advance_to(clock.now());
        for event in batch {
            if events.send(Msg::Source(event)).await.is_err() {
                return;
            }
        }
    }
}
