//! The executor: the only way a change reaches a backend. For each request
//! it reads fresh facts, applies stage policy, read-only mode and the
//! confirmation rules (`policy`), calls the backend, writes the audit log,
//! and reports back to the loop as an `ExecEvent`.
//!
//! Read-only is enforced here, below the UI: no key, script or future code
//! path can send a change around it.

pub mod policy;

use crate::audit::{AuditEntry, AuditLog};
use crate::backend::{ActionContext, BackendError, Change, Plan, Workloads};
use crate::clock::Clock;
use crate::event::{ExecEvent, Request};
use policy::Decision;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Executor<W> {
    workloads: W,
    read_only: bool,
    audit: AuditLog,
    user: String,
    backend: String,
    context: String,
    clock: Clock,
    /// Calls that reached the backend's `apply`: what read-only must keep at 0.
    applied: Arc<AtomicU64>,
    /// The context as it is now, for a backend that can switch (`:ctx`).
    context_now: Option<ContextNow>,
}

/// Says which context the backend is on at the moment of an action.
pub type ContextNow = Box<dyn Fn() -> String + Send + Sync>;

impl<W: Workloads> Executor<W> {
    pub fn new(workloads: W, read_only: bool, audit: AuditLog, clock: Clock) -> Self {
        Executor {
            workloads,
            read_only,
            audit,
            user: current_user(),
            backend: String::new(),
            context: String::new(),
            clock,
            applied: Arc::new(AtomicU64::new(0)),
            context_now: None,
        }
    }

    /// Audit entries name the context `now` returns at the time of each
    /// action, not the one at startup.
    pub fn with_context_now(mut self, now: ContextNow) -> Self {
        self.context_now = Some(now);
        self
    }

    pub fn with_identity(mut self, user: &str, backend: &str, context: &str) -> Self {
        self.user = user.into();
        self.backend = backend.into();
        self.context = context.into();
        self
    }

    /// The context audit entries are written under now: the key the
    /// timeline finds them by again.
    pub fn context(&self) -> String {
        self.context_now.as_ref().map_or_else(|| self.context.clone(), |now| now())
    }

    /// A counter of calls that reached the backend boundary.
    pub fn applied_counter(&self) -> Arc<AtomicU64> {
        self.applied.clone()
    }

    /// The facts a decision would be made on now, gate inputs included.
    pub async fn facts(&self, service: &str) -> Result<crate::backend::Facts, BackendError> {
        self.workloads.facts(service).await
    }

    /// Decides and, if allowed, carries out one request.
    #[tracing::instrument(name = "action", skip_all, fields(service = %request.service, op = request.op.name(), id = request.id))]
    pub async fn execute(&self, mut request: Request) -> ExecEvent {
        // Every request that reaches the executor is audited, whatever its
        // outcome: one the backend could not even describe too.
        let facts = match self.workloads.facts(&request.service).await {
            Ok(facts) => facts,
            Err(error) => {
                let error = error.to_string();
                self.record(&request, false, "failed", &error, None);
                return ExecEvent::Failed { request, error };
            }
        };
        if request.asked_token.is_some_and(|token| token != facts.token) {
            // The answer was to another state of the world: ask again.
            request.confirmed = false;
            request.typed_name = None;
        }
        match policy::decide(&request, &facts, self.read_only) {
            Decision::Ask(question) => {
                request.asked_token = Some(facts.token);
                ExecEvent::Ask { request, question }
            }
            Decision::Refuse(reason) => {
                self.record(&request, false, "refused", &reason, None);
                ExecEvent::Refused { request, reason }
            }
            Decision::Run { plan, forced } => {
                if self.read_only {
                    // Policy refuses first; this is the belt to its braces.
                    return ExecEvent::Refused { request, reason: "read-only mode".into() };
                }
                self.applied.fetch_add(1, Ordering::SeqCst);
                let context = ActionContext { user: self.user.clone(), token: facts.token };
                match self.workloads.apply(&request.service, &plan, &context).await {
                    Ok(change) => {
                        self.record(&request, forced, "ok", &change.summary, Some(&change));
                        let summary = done_summary(&plan, &change, forced);
                        ExecEvent::Done { request, summary }
                    }
                    Err(BackendError::Conflict(what)) => {
                        let error = BackendError::Conflict(what).to_string();
                        self.record(&request, forced, "conflict", &error, None);
                        ExecEvent::Failed { request, error }
                    }
                    Err(error) => {
                        let error = error.to_string();
                        self.record(&request, forced, "failed", &error, None);
                        ExecEvent::Failed { request, error }
                    }
                }
            }
        }
    }

    /// Ends a request whose question nobody will answer (a headless run
    /// without `--yes` or `--force`): refused, and audited as such.
    pub fn refuse_unanswered(&self, request: &Request, reason: &str) {
        self.record(request, false, "refused", reason, None);
    }

    fn record(&self, request: &Request, forced: bool, outcome: &str, detail: &str, change: Option<&Change>) {
        let entry = AuditEntry {
            time: AuditEntry::at(self.clock.now()),
            user: self.user.clone(),
            backend: self.backend.clone(),
            context: self.context(),
            service: request.service.clone(),
            action: request.op.name().into(),
            forced,
            outcome: outcome.into(),
            detail: detail.into(),
            before: change.map(|c| c.before.clone()),
            after: change.map(|c| c.after.clone()),
        };
        tracing::info!(outcome, forced, detail, "action");
        // An audit log that cannot be written must not go unnoticed, but it
        // must not stop an incident response either: say so on stderr,
        // which the terminal guard shows after exit.
        if let Err(error) = self.audit.append(&entry) {
            eprintln!("cockpit: cannot write the audit log: {error}");
        }
    }
}

fn done_summary(plan: &Plan, change: &Change, forced: bool) -> String {
    let forced = if forced { " (forced past the gate)" } else { "" };
    match plan {
        Plan::Rebuild => format!("{}; progress in the rollout pane", change.summary),
        _ => format!("{}{forced}", change.summary),
    }
}

/// The acting user for the audit log: `$USER`, `$LOGNAME` or `$USERNAME`.
pub fn current_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Runs requests one at a time, in the order they were made: two quick
/// presses of `p` are two steps, not a race between them.
pub async fn run<W: Workloads>(
    executor: Arc<Executor<W>>,
    mut requests: tokio::sync::mpsc::Receiver<Request>,
    events: tokio::sync::mpsc::Sender<crate::state::Msg>,
) {
    while let Some(request) = requests.recv().await {
        let outcome = executor.execute(request).await;
        if events.send(crate::state::Msg::Exec(outcome)).await.is_err() {
            return;
        }
    }
}
