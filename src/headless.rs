//! The engine without the terminal, for scripts and chat-ops:
//! `cockpit status [--json]` and `cockpit deploy|promote|rollback SERVICE`.
//! Actions go through the same executor, stage policy and audit log as the
//! keys; `--yes` answers y/n questions, and only `--force SERVICE` (the
//! service's name again) passes the mission-critical gate.
//!
//! The JSON schema of `status` is versioned (`schema`); fields are only ever
//! added within a version.

use crate::backend::Workloads;
use crate::domain::slo::SloStatus;
use crate::event::{BackendInfo, ExecEvent, Question, Request};
use crate::executor::Executor;
use crate::state::AppState;
use serde::Serialize;
use std::collections::BTreeMap;

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub schema: u32,
    pub generated_at: String,
    pub backend: BackendInfo,
    pub summary: Summary,
    pub services: Vec<ServiceStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub paging: usize,
    pub ticket: usize,
    /// Not paging themselves, but a dependency they rely on is.
    pub impacted: usize,
    pub ok: usize,
    /// No SLO data.
    pub unknown: usize,
}

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
    let mut summary = Summary { paging: 0, ticket: 0, impacted: 0, ok: 0, unknown: 0 };
    let services = state
        .services
        .iter()
        .map(|s| {
            let impacted_by = state.impacted_by(&s.info.name).map(str::to_owned);
            match s.slo_status() {
                Some(SloStatus::Page) => summary.paging += 1,
                Some(SloStatus::Ticket) => summary.ticket += 1,
                _ if impacted_by.is_some() => summary.impacted += 1,
                Some(SloStatus::Ok) => summary.ok += 1,
                None => summary.unknown += 1,
            }
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
            let slo = s.slo.as_ref().map(|r| SloSummary {
                status: r.status.as_str().into(),
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
                Question::YesNo(q) => return Outcome::Refused(format!("{q} (not confirmed: pass --yes)")),
                Question::TypeName { reason } => match force {
                    Some(name) if asked.typed_name.is_none() => {
                        request = Request { typed_name: Some(name.to_owned()), ..asked }
                    }
                    _ => {
                        return Outcome::Refused(format!(
                            "{reason}; --yes does not pass this gate: pass --force {} to force it",
                            asked.service
                        ));
                    }
                },
            },
        }
    }
    Outcome::Failed("the executor kept asking; nothing was done".into())
}
