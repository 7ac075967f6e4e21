//! Stage policy: what an operation may do to a service, given fresh facts,
//! read-only mode and the answers the user gave. Pure, so every rule is
//! tested without a backend.
//!
//! - prototype: deploy goes straight to the primary, no question; nothing to promote.
//! - production: deploy starts a canary at the first step; a full promotion asks y/n.
//! - mission-critical: as production, and a promotion passes only on a
//!   canary measured healthy and an SLO measured and not paging; anything
//!   else (failing, not enough data, no or stale metrics, paging) needs the
//!   user to type the service's name (audited as forced).
//! - deploy: an image of another repository than the running one asks first.
//! - roll back: canary to 0, else undo the primary's last revision; y/n
//!   outside prototypes.

use crate::backend::{Facts, Plan};
use crate::domain::Stage;
use crate::domain::canary::{Promotion, Verdict};
use crate::domain::slo::SloStatus;
use crate::event::{Op, Question, Request};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Run { plan: Plan, forced: bool },
    Ask(Question),
    Refuse(String),
}

pub fn decide(request: &Request, facts: &Facts, read_only: bool) -> Decision {
    if read_only {
        return Decision::Refuse("read-only mode: cockpit sends no changes".into());
    }
    let service = request.service.as_str();
    match &request.op {
        Op::Rebuild => {
            if facts.building {
                Decision::Refuse(format!("a build of {service} is already running"))
            } else {
                Decision::Run { plan: Plan::Rebuild, forced: false }
            }
        }
        Op::Deploy { image } => deploy(request, facts, image),
        Op::Promote { full } => promote(request, facts, *full),
        Op::Rollback => rollback(request, facts),
        Op::Restart | Op::Stop => {
            let (plan, verb) =
                if request.op == Op::Restart { (Plan::Restart, "Restart") } else { (Plan::Stop, "Stop") };
            if facts.stage != Stage::Prototype && !request.confirmed {
                return Decision::Ask(Question::YesNo(format!("{verb} {service}?")));
            }
            Decision::Run { plan, forced: false }
        }
    }
}

fn promotion_in_flight(request: &Request, facts: &Facts) -> Option<Decision> {
    facts.promoting.then(|| {
        Decision::Refuse(format!(
            "a full promotion of {} is in progress: wait for the primary's rollout, or roll back",
            request.service
        ))
    })
}

fn deploy(request: &Request, facts: &Facts, image: &str) -> Decision {
    let image = image.trim();
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return Decision::Refuse(format!("`{image}` is not an image reference"));
    }
    if let Some(refusal) = promotion_in_flight(request, facts) {
        return refusal;
    }
    if !facts.stage.uses_canary() {
        if let Some(question) = other_repository(request, facts, image) {
            return question;
        }
        if image == facts.primary_image {
            return Decision::Refuse(format!("{} already runs {image}", request.service));
        }
        return Decision::Run { plan: Plan::DeployPrimary { image: image.into() }, forced: false };
    }
    if image == facts.primary_image {
        return Decision::Refuse(format!("the primary already runs {image}: nothing to canary"));
    }
    if facts.canary_image.as_deref() == Some(image) && facts.canary_weight > 0 {
        return Decision::Refuse(format!(
            "{image} is already the canary, at {} %: promote it with p",
            facts.canary_weight
        ));
    }
    // Replacing a canary that is in flight throws its progress away: ask,
    // in the same question as a repository slip, so one yes answers what
    // was shown and nothing else.
    let replacing = facts.canary_image.as_deref().filter(|current| facts.canary_weight > 0 && *current != image);
    match (other_repository(request, facts, image), replacing) {
        (Some(Decision::Ask(Question::YesNo(slip))), Some(current)) => {
            return Decision::Ask(Question::YesNo(format!(
                "{slip} It also replaces canary {current} at {} %.",
                facts.canary_weight
            )));
        }
        (Some(question), _) => return question,
        (None, Some(current)) if !request.confirmed => {
            return Decision::Ask(Question::YesNo(format!(
                "{} has canary {current} at {} %. Replace it with {image} at {} %?",
                request.service,
                facts.canary_weight,
                facts.plan.first()
            )));
        }
        (None, _) => {}
    }
    Decision::Run { plan: Plan::StartCanary { image: image.into(), weight: facts.plan.first() }, forced: false }
}

fn promote(request: &Request, facts: &Facts, full: bool) -> Decision {
    let service = request.service.as_str();
    if let Some(refusal) = promotion_in_flight(request, facts) {
        return refusal;
    }
    if !facts.stage.uses_canary() {
        return Decision::Refuse("prototypes deploy straight to the primary: nothing to promote".into());
    }
    if facts.canary_image.is_none() || facts.canary_weight == 0 {
        return Decision::Refuse(format!("{service} has no canary in flight: deploy one first"));
    }
    let next = if full { Promotion::Full } else { facts.plan.next(facts.canary_weight) };
    let mut forced = false;
    if facts.stage == Stage::MissionCritical {
        if let Some(reason) = gate_reason(facts) {
            match request.typed_name.as_deref() {
                Some(typed) if typed == service => forced = true,
                Some(typed) => {
                    return Decision::Refuse(format!("typed `{typed}`, not `{service}`: promotion not forced"));
                }
                None => return Decision::Ask(Question::TypeName { reason }),
            }
        }
    }
    match next {
        Promotion::Step(to) => Decision::Run { plan: Plan::SetCanaryWeight { from: facts.canary_weight, to }, forced },
        // Typing the name is a stronger yes than y.
        Promotion::Full if request.confirmed || forced => Decision::Run { plan: Plan::PromoteFull, forced },
        Promotion::Full => Decision::Ask(Question::YesNo(format!(
            "Promote {service} fully? {} replaces {} on the primary; then all traffic returns to the primary and the canary is emptied.",
            facts.canary_image.as_deref().unwrap_or("the canary"),
            facts.primary_image
        ))),
    }
}

/// Why a mission-critical promotion may not pass without the typed name,
/// if it may not. Fails closed: it passes only on a canary measured
/// healthy and an SLO measured and not paging. A missing verdict or SLO,
/// not enough canary data, stale metrics or no metrics source at all keep
/// it shut, with the reason in words.
pub fn gate_reason(facts: &Facts) -> Option<String> {
    let gap = facts.metrics_gap.as_deref();
    let mut reasons = Vec::new();
    if facts.verdict.is_none() && facts.slo_status.is_none() {
        reasons.push(format!("no canary analysis and no SLO measurement: {}", gap.unwrap_or("nothing measured yet")));
    } else {
        match &facts.verdict {
            Some(Verdict::Healthy(_)) => {}
            Some(Verdict::Failing(why)) => reasons.push(format!("canary failing ({why})")),
            Some(Verdict::NotEnoughData(why)) => reasons.push(format!("not enough canary data ({why})")),
            None => reasons.push(format!("no canary analysis: {}", gap.unwrap_or("nothing measured yet"))),
        }
        match facts.slo_status {
            Some(SloStatus::Page) => reasons.push("SLO is paging".to_string()),
            Some(SloStatus::Ok | SloStatus::Ticket) => {}
            None => reasons.push(format!("no SLO measurement: {}", gap.unwrap_or("nothing measured yet"))),
        }
    }
    (!reasons.is_empty()).then(|| reasons.join(" and "))
}

/// The repository of an image reference, without its tag or digest:
/// `registry:5000/shop/cart:1.2@sha256:…` is `registry:5000/shop/cart`.
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        // A colon after the last slash starts a tag; before it, a port.
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    }
}

/// A question when `image` is of another repository than what the service
/// runs: deploying `shop/checkout` to `payments` is a slip until confirmed.
fn other_repository(request: &Request, facts: &Facts, image: &str) -> Option<Decision> {
    let running = repository(&facts.primary_image);
    let wanted = repository(image);
    (!request.confirmed && !running.is_empty() && running != wanted).then(|| {
        Decision::Ask(Question::YesNo(format!(
            "{} runs {running}, and {image} is of another repository ({wanted}). Deploy it anyway?",
            request.service
        )))
    })
}

fn rollback(request: &Request, facts: &Facts) -> Decision {
    let service = request.service.as_str();
    let plan = if facts.canary_image.is_some() {
        Plan::AbortCanary
    } else if facts.rollout_paused {
        return Decision::Refuse(format!("{service}'s rollout is paused: resume it before undoing"));
    } else if facts.previous_image.is_some() {
        Plan::UndoPrimary
    } else {
        return Decision::Refuse(format!("{service} has no canary and no earlier revision to roll back to"));
    };
    if facts.stage != Stage::Prototype && !request.confirmed {
        let question = match &plan {
            Plan::AbortCanary if facts.promoting => format!(
                "Roll back {service}? The full promotion stops: the primary returns to {}, the canary goes to 0 %.",
                facts.previous_image.as_deref().unwrap_or("its previous revision")
            ),
            Plan::AbortCanary => format!(
                "Roll back {service}? Canary {} goes from {} % to 0 % and is scaled to 0.",
                facts.canary_image.as_deref().unwrap_or("?"),
                facts.canary_weight
            ),
            _ => format!(
                "Roll back {service}? The primary goes from {} back to {}.",
                facts.primary_image,
                facts.previous_image.as_deref().unwrap_or("?")
            ),
        };
        return Decision::Ask(Question::YesNo(question));
    }
    Decision::Run { plan, forced: false }
}
