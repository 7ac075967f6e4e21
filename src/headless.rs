//! The engine without the terminal, for scripts and chat-ops:
//! `cockpit status [--json]` and `cockpit deploy|promote|rollback SERVICE`.
//! Actions go through the same executor, stage policy and audit log as the
//! keys; `--yes` answers y/n questions, and only `--force SERVICE` (the
//! service's name again) passes the mission-critical gate.
//!
//! The JSON schema of `status` is versioned (`schema`); fields are only ever
//! added within a version.

use crate::backend::Workloads;
use crate::compose::{Runtime, World};
use crate::event::{BackendInfo, ExecEvent, Op, Question, Request};
use crate::executor::Executor;
use crate::state::{AppState, Msg};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// Headless commands: the same engine, executor, policy and audit log as
/// the keys, without the terminal. On the simulated fleet each runs on a
/// fresh fleet (same seed, same fleet).
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Every service's stage, rollout, canary weight, SLO status and canary
    /// verdict. Exits 1 when any service is paging.
    Status {
        /// The stable JSON schema (see the README) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deploy an image: a prototype's primary at once; otherwise a canary at
    /// the first step of its plan.
    Deploy {
        service: String,
        #[arg(long)]
        image: String,
        /// Answer y/n questions with yes.
        #[arg(long)]
        yes: bool,
    },
    /// Promote the canary one step (or fully with --full).
    Promote {
        service: String,
        #[arg(long)]
        full: bool,
        /// Answer y/n questions with yes; does not pass the mission-critical gate.
        #[arg(long)]
        yes: bool,
        /// The service's name again: passes the mission-critical gate (audited as forced).
        #[arg(long, value_name = "SERVICE")]
        force: Option<String>,
    },
    /// Roll back: the canary to 0, else undo the primary's last revision.
    Rollback {
        service: String,
        #[arg(long)]
        yes: bool,
    },
}

/// Exit codes of headless commands.
pub mod exit {
    /// Done, or nothing is paging.
    pub const OK: i32 = 0;
    /// Refused, failed, or something is paging.
    pub const NOT_DONE: i32 = 1;
    /// Bad usage (an unknown service) or no backend to talk to.
    pub const USAGE: i32 = 2;
}

/// How long a headless command waits for its backends' first answer.
pub const SYNC_WITHIN: Duration = Duration::from_secs(30);

/// Runs one headless command on a composed runtime: brings it up to date,
/// then reports or acts through its executor. Returns the exit code.
pub async fn run(mut runtime: Runtime, command: Command) -> i32 {
    if let Err(problem) = runtime.sync(SYNC_WITHIN).await {
        eprintln!("cockpit: {problem}");
        return exit::USAGE;
    }
    let mut out = Out::stdout();
    if runtime.state.backend.simulated && !matches!(command, Command::Status { .. }) {
        out.line(&format!("SIMULATED fleet ({})", runtime.state.backend.scenario.as_deref().unwrap_or("calm")));
    }
    let (service, op, yes, force) = match command {
        Command::Status { json } => {
            let report = status(&runtime.state);
            if json {
                out.line(&serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                out.text(&status_text(&report));
            }
            return if report.summary.paging > 0 { exit::NOT_DONE } else { exit::OK };
        }
        Command::Deploy { service, image, yes } => (service, Op::Deploy { image }, yes, None),
        Command::Promote { service, full, yes, force } => (service, Op::Promote { full }, yes, force),
        Command::Rollback { service, yes } => (service, Op::Rollback, yes, None),
    };
    if runtime.state.service(&service).is_none() {
        let known: Vec<&str> = runtime.state.services.iter().map(|s| s.info.name.as_str()).collect();
        eprintln!("cockpit: no service `{service}` here (known: {})", known.join(", "));
        return exit::USAGE;
    }
    let full = op == Op::Promote { full: true };
    let request =
        Request { id: 1, service: service.clone(), op, confirmed: false, typed_name: None, asked_token: None };
    let outcome = act(&runtime.executor, request, yes, force.as_deref()).await;
    match outcome {
        Outcome::Done(summary) if full && matches!(runtime.world, World::Cluster(_)) => {
            out.line(&format!("{service}: {summary}"));
            // Like `kubectl rollout status`: wait for the end of the promotion.
            out.line(&format!("{service}: waiting for the primary's rollout…"));
            match follow_promotion(&mut runtime, &service).await {
                Ok(done) => {
                    out.line(&format!("{service}: {done}"));
                    exit::OK
                }
                Err(problem) => {
                    eprintln!("{service}: {problem}");
                    exit::NOT_DONE
                }
            }
        }
        Outcome::Done(summary) => {
            out.line(&format!("{service}: {summary}"));
            exit::OK
        }
        Outcome::Refused(reason) => {
            eprintln!("{service}: refused: {reason}");
            exit::NOT_DONE
        }
        Outcome::Failed(error) => {
            eprintln!("{service}: failed: {error}");
            exit::NOT_DONE
        }
    }
}

/// Standard output that a closed pipe (`cockpit status | head`) ends
/// quietly: what cannot be written is dropped, as every Unix tool does.
struct Out {
    closed: bool,
}

impl Out {
    fn stdout() -> Out {
        Out { closed: false }
    }

    fn line(&mut self, line: &str) {
        self.text(&format!("{line}\n"));
    }

    fn text(&mut self, text: &str) {
        if self.closed {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
            self.closed = true;
        }
    }
}

/// Follows a full promotion on a cluster to its end: the Event that says it
/// is complete (written after traffic returned, the canary was emptied and
/// the mark was removed), the objects showing the same, or the rollout
/// failing. Problems on the way are printed.
async fn follow_promotion(runtime: &mut Runtime, service: &str) -> Result<String, String> {
    use crate::domain::rollout::RolloutPhase;
    let clock = runtime.clock;
    let started = clock.now().plus(crate::domain::Millis(-1_000));
    let executor = runtime.executor.clone();
    let state = &mut runtime.state;
    let inbox = &mut runtime.inbox;
    // Where Events cannot be read (or were not written), the objects tell too.
    let mut check = tokio::time::interval(Duration::from_secs(2));
    let wait = async {
        loop {
            let msg = tokio::select! {
                msg = inbox.recv() => msg,
                _ = check.tick() => {
                    let facts = executor.facts(service).await;
                    if let Some(facts) = facts.ok().filter(|f| !f.promoting && f.canary_image.is_none()) {
                        return Ok(format!("promotion complete: the primary runs {}", facts.primary_image));
                    }
                    continue;
                }
            };
            let Some(msg) = msg else { break };
            if let Msg::Problem(problem) = &msg {
                eprintln!("{service}: {problem}");
            }
            crate::state::update(state, clock.now(), msg);
            let complete = state
                .timeline
                .iter()
                .find(|c| c.service == service && c.at >= started && c.summary.starts_with("promotion complete"));
            if let Some(change) = complete {
                return Ok(change.summary.clone());
            }
            let Some(view) = state.service(service) else { continue };
            if let Some(rollout) = view.rollout.as_ref().filter(|r| r.phase == RolloutPhase::Failed) {
                return Err(format!(
                    "the primary's rollout failed ({}); roll back with `cockpit rollback`",
                    rollout.explain()
                ));
            }
        }
        Err("the Kubernetes source stopped".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(900), wait)
        .await
        .unwrap_or_else(|_| Err("the promotion did not finish within 15 minutes".to_owned()))
}

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub schema: u32,
    pub generated_at: String,
    pub backend: BackendInfo,
    pub summary: Summary,
    pub services: Vec<ServiceStatus>,
}

/// Services per health, as the team screen counts them.
pub type Summary = crate::state::HealthCounts;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub stage: String,
    pub owner: Option<String>,
    pub depends_on: Vec<String>,
    pub impacted_by: Option<String>,
    pub rollout: Option<RolloutSummary>,
    pub canary: Option<CanarySummary>,
    pub slo: Option<SloSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutSummary {
    pub phase: String,
    pub image: String,
    pub revision: Option<u64>,
    pub desired: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanarySummary {
    pub image: String,
    /// Percent of traffic the split sends to the canary.
    pub weight: u8,
    pub actual_weight: Option<f64>,
    pub step: usize,
    pub of: usize,
    /// `healthy`, `failing`, `not enough data`, or null before the first analysis.
    pub verdict: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloSummary {
    /// `ok`, `ticket` or `page`.
    pub status: String,
    pub objective: f64,
    pub window: String,
    pub sli: f64,
    /// Percent of the error budget left; negative once overspent.
    pub budget_left: f64,
    /// Burn rate per rule window, keyed `5m`, `30m`, `1h`, `2h`, `6h`, `1d`, `3d`.
    pub burn: BTreeMap<String, f64>,
}

/// Every service's state as the screen would show it.
pub fn status(state: &AppState) -> StatusReport {
    let summary = state.health_counts();
    let services = state
        .services
        .iter()
        .map(|s| {
            let impacted_by = state.impacted_by(&s.info.name).map(str::to_owned);
            let rollout = s.rollout.as_ref().map(|r| RolloutSummary {
                phase: r.phase.as_str().into(),
                image: r.image.clone(),
                revision: r.current_revision().map(|rev| rev.number),
                desired: r.replicas.desired,
                updated: r.replicas.updated,
                ready: r.replicas.ready,
                available: r.replicas.available,
            });
            let weight = s.canary_weight();
            let canary = s.traffic.as_ref().filter(|_| weight > 0).and_then(|t| {
                let position = s.info.plan.position(weight);
                Some(CanarySummary {
                    image: t.canary_image.clone()?,
                    weight,
                    actual_weight: s.actual_weight(),
                    step: position.step,
                    of: position.of,
                    verdict: s.live_verdict().map(|v| v.label().into()),
                    reason: s.live_verdict().map(|v| v.reason().into()),
                })
            });
            // A report of no data (no series) is unknown, as on screen.
            let slo = s.slo.as_ref().filter(|r| r.has_data()).map(|r| SloSummary {
                // Figures over partial data, but no rule judged yet: unknown.
                status: if r.is_judged() { r.status.as_str() } else { "unknown" }.into(),
                objective: r.spec.objective,
                window: r.spec.window.to_string(),
                sli: round(r.sli, 4),
                budget_left: round(r.budget_left * 100.0, 2),
                burn: r.burns.iter().map(|b| (b.window.to_string(), round(b.rate, 3))).collect(),
            });
            ServiceStatus {
                name: s.info.name.clone(),
                stage: s.info.stage.as_str().into(),
                owner: s.info.owner.clone(),
                depends_on: s.info.depends_on.clone(),
                impacted_by,
                rollout,
                canary,
                slo,
            }
        })
        .collect();
    StatusReport {
        schema: SCHEMA,
        generated_at: state.now.rfc3339(),
        backend: state.backend.clone(),
        summary,
        services,
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// A table for people.
pub fn status_text(report: &StatusReport) -> String {
    let mut out = String::new();
    if report.backend.simulated {
        out.push_str("SIMULATED fleet");
        if let Some(scenario) = &report.backend.scenario {
            out.push_str(&format!(" (scenario {scenario})"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{:<14} {:<16} {:<12} {:<14} {:>7} {:>8} {:>8}  {}\n",
        "SERVICE", "STAGE", "ROLLOUT", "CANARY", "SLO", "BURN", "BUDGET", "NOTE"
    ));
    for s in &report.services {
        let rollout = s.rollout.as_ref().map_or("-".to_string(), |r| r.phase.clone());
        let canary = s.canary.as_ref().map_or("-".to_string(), |c| {
            format!("{} % {}", c.weight, c.verdict.as_deref().map_or("", |v| if v == "failing" { "FAIL" } else { "" }))
        });
        let (slo, burn, budget) = s.slo.as_ref().map_or(("-".into(), "-".into(), "-".into()), |slo| {
            let fast = slo.burn.get("5m").copied().unwrap_or(0.0);
            (slo.status.to_uppercase(), format!("{fast:.1}x"), format!("{:.0} %", slo.budget_left))
        });
        let note = match (&s.impacted_by, s.canary.as_ref().and_then(|c| c.reason.as_ref())) {
            (Some(culprit), _) => format!("impacted by {culprit}"),
            (None, Some(reason)) if s.canary.as_ref().and_then(|c| c.verdict.as_deref()) == Some("failing") => {
                reason.clone()
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<14} {:<16} {:<12} {:<14} {:>7} {:>8} {:>8}  {}\n",
            s.name,
            s.stage,
            rollout,
            canary.trim_end(),
            slo,
            burn,
            budget,
            note
        ));
    }
    let m = &report.summary;
    out.push_str(&format!(
        "{} paging, {} ticket, {} impacted, {} ok, {} unknown\n",
        m.paging, m.ticket, m.impacted, m.ok, m.unknown
    ));
    out
}

/// How a headless action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    Refused(String),
    Failed(String),
}

/// Runs one request through the executor, answering its questions from the
/// command line: `yes` answers y/n, `force` is typed at the gate.
pub async fn act<W: Workloads>(
    executor: &Executor<W>,
    mut request: Request,
    yes: bool,
    force: Option<&str>,
) -> Outcome {
    // Each round answers one question; the executor asks at most two.
    for _ in 0..4 {
        match executor.execute(request.clone()).await {
            ExecEvent::Done { summary, .. } => return Outcome::Done(summary),
            ExecEvent::Refused { reason, .. } => return Outcome::Refused(reason),
            ExecEvent::Failed { error, .. } => return Outcome::Failed(error),
            ExecEvent::Ask { request: asked, question } => match question {
                Question::YesNo(_) if yes && !asked.confirmed => request = Request { confirmed: true, ..asked },
                Question::YesNo(q) => {
                    let reason = format!("{q} (not confirmed: pass --yes)");
                    executor.refuse_unanswered(&asked, &reason);
                    return Outcome::Refused(reason);
                }
                Question::TypeName { reason } => match force {
                    Some(name) if asked.typed_name.is_none() => {
                        request = Request { typed_name: Some(name.to_owned()), ..asked }
                    }
                    _ => {
                        let reason = format!(
                            "{reason}; --yes does not pass this gate: pass --force {} to force it",
                            asked.service
                        );
                        executor.refuse_unanswered(&asked, &reason);
                        return Outcome::Refused(reason);
                    }
                },
            },
        }
    }
    Outcome::Failed("the executor kept asking; nothing was done".into())
}
