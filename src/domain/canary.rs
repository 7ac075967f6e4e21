//! Canary releases: the plan of traffic steps, where the live weight sits in
//! it, and the analysis that compares the canary with the primary.
//!
//! The current step is always derived from the live weight, never stored on
//! the side, so two cockpits (or a cockpit and kubectl) cannot disagree about
//! it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Traffic steps in percent of requests sent to the canary, ascending,
/// each in 1..=99. After the last step comes the full promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct CanaryPlan {
    steps: Vec<u8>,
}

impl Default for CanaryPlan {
    fn default() -> Self {
        CanaryPlan { steps: vec![5, 25, 50] }
    }
}

impl TryFrom<Vec<u8>> for CanaryPlan {
    type Error = String;
    fn try_from(steps: Vec<u8>) -> Result<Self, String> {
        if steps.is_empty() {
            return Err("a canary plan needs at least one step".into());
        }
        if steps.iter().any(|s| !(1..=99).contains(s)) {
            return Err("canary steps are percentages from 1 to 99 (100 is the full promotion)".into());
        }
        if steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err("canary steps must be strictly ascending".into());
        }
        Ok(CanaryPlan { steps })
    }
}

impl From<CanaryPlan> for Vec<u8> {
    fn from(plan: CanaryPlan) -> Vec<u8> {
        plan.steps
    }
}

/// Where a live canary weight stands in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanPosition {
    /// 1-based index of the step reached; 0 when no canary traffic flows.
    pub step: usize,
    /// Steps in the plan plus the final full promotion.
    pub of: usize,
    /// The live weight is exactly a planned step (not in between).
    pub exact: bool,
}

/// What `promote` does next from a live weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "to", content = "weight")]
pub enum Promotion {
    /// Shift the canary to this weight.
    Step(u8),
    /// Make the canary's version the primary's and return all traffic to it.
    Full,
}

impl fmt::Display for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Promotion::Step(w) => write!(f, "{w} %"),
            Promotion::Full => f.write_str("full promotion"),
        }
    }
}

impl CanaryPlan {
    pub fn steps(&self) -> &[u8] {
        &self.steps
    }

    pub fn first(&self) -> u8 {
        self.steps[0]
    }

    pub fn position(&self, weight: u8) -> PlanPosition {
        let reached = self.steps.iter().filter(|&&s| s <= weight).count();
        PlanPosition {
            step: if weight == 0 { 0 } else { reached.max(1) },
            of: self.steps.len() + 1,
            exact: self.steps.contains(&weight),
        }
    }

    /// The next promotion from a live weight: the first planned step above
    /// it, or the full promotion after the last step.
    pub fn next(&self, weight: u8) -> Promotion {
        match self.steps.iter().find(|&&s| s > weight) {
            Some(&s) => Promotion::Step(s),
            None => Promotion::Full,
        }
    }
}

/// Request outcome of one track over the analysis interval.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrackMetrics {
    pub requests: f64,
    /// Percent of requests that succeeded.
    pub success_pct: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CanaryThresholds {
    /// Minimum canary success rate, percent.
    pub min_success: f64,
    pub max_p99_ms: f64,
    /// How many percentage points the canary may be below the primary.
    pub max_degradation: f64,
    /// Below this many canary requests there is not enough data.
    pub min_requests: f64,
}

impl Default for CanaryThresholds {
    fn default() -> Self {
        CanaryThresholds { min_success: 99.0, max_p99_ms: 300.0, max_degradation: 0.5, min_requests: 100.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "reason")]
pub enum Verdict {
    Healthy(String),
    Failing(String),
    NotEnoughData(String),
}

impl Verdict {
    pub fn is_failing(&self) -> bool {
        matches!(self, Verdict::Failing(_))
    }

    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Healthy(_) => "healthy",
            Verdict::Failing(_) => "failing",
            Verdict::NotEnoughData(_) => "not enough data",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Verdict::Healthy(r) | Verdict::Failing(r) | Verdict::NotEnoughData(r) => r,
        }
    }
}

/// How far past a limit a failing canary must come back before it counts
/// as healthy again: without it, a canary that sits on the limit flips
/// between healthy and failing on every refresh.
pub const RECOVERY_MARGIN_PP: f64 = 0.05;
/// The same for latency, in percent of the p99 limit.
pub const RECOVERY_MARGIN_P99: f64 = 0.05;

/// Compares the canary with the primary. Every failing check is named, worst
/// first, so the reason reads as a sentence on screen.
pub fn analyse(canary: &TrackMetrics, primary: &TrackMetrics, t: &CanaryThresholds) -> Verdict {
    analyse_after(None, canary, primary, t)
}

/// `analyse`, knowing the verdict before: values are compared at the
/// precision they are shown with (a canary shown at the limit is at the
/// limit), and a canary that was failing stays failing until it is clear
/// of every limit by the recovery margin.
pub fn analyse_after(
    previous: Option<&Verdict>,
    canary: &TrackMetrics,
    primary: &TrackMetrics,
    t: &CanaryThresholds,
) -> Verdict {
    // No requests (or no measurable rate) is no data, whatever min_requests says.
    if canary.requests < t.min_requests || canary.requests <= 0.0 || !canary.success_pct.is_finite() {
        return Verdict::NotEnoughData(format!(
            "{:.0} canary requests < {:.0} needed",
            canary.requests, t.min_requests
        ));
    }
    let recovering = previous.is_some_and(Verdict::is_failing);
    let (pp, p99) = if recovering { (RECOVERY_MARGIN_PP, t.max_p99_ms * RECOVERY_MARGIN_P99) } else { (0.0, 0.0) };
    let success = shown(canary.success_pct, 2);
    let degradation = shown(primary.success_pct - canary.success_pct, 2);
    let latency = shown(canary.p99_ms, 0);
    let mut failures = Vec::new();
    if success < t.min_success + pp {
        failures.push(format!("canary success {success:.2} % < {} %", t.min_success));
    }
    if primary.requests >= t.min_requests && degradation > t.max_degradation - pp {
        failures.push(format!("canary success {degradation:.2} pp below primary (max {})", t.max_degradation));
    }
    if latency > t.max_p99_ms - p99 {
        failures.push(format!("canary p99 {latency:.0} ms > {} ms", t.max_p99_ms));
    }
    if failures.is_empty() {
        return Verdict::Healthy(format!(
            "success {success:.2} % ≥ {} %, p99 {latency:.0} ms ≤ {} ms",
            t.min_success, t.max_p99_ms
        ));
    }
    let reason = failures.join("; ");
    // Within the margin only: say why it still fails.
    if recovering && !analyse_after(None, canary, primary, t).is_failing() {
        return Verdict::Failing(format!("{reason}; held until clear of the limit by the recovery margin"));
    }
    Verdict::Failing(reason)
}

/// `value` rounded to `digits` decimals, as the screen shows it.
fn shown(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_and_next_step_come_from_the_live_weight() {
        let plan = CanaryPlan::default();
        assert_eq!(plan.position(0), PlanPosition { step: 0, of: 4, exact: false });
        assert_eq!(plan.position(5), PlanPosition { step: 1, of: 4, exact: true });
        assert_eq!(plan.position(25).step, 2);
        assert_eq!(plan.position(30), PlanPosition { step: 2, of: 4, exact: false });
        assert_eq!(plan.position(3).step, 1, "a weight below the first step still counts as a live canary");
        assert_eq!(plan.next(0), Promotion::Step(5));
        assert_eq!(plan.next(5), Promotion::Step(25));
        assert_eq!(plan.next(30), Promotion::Step(50));
        assert_eq!(plan.next(50), Promotion::Full);
    }

    #[test]
    fn plans_are_validated() {
        assert!(CanaryPlan::try_from(vec![]).is_err());
        assert!(CanaryPlan::try_from(vec![10, 5]).is_err());
        assert!(CanaryPlan::try_from(vec![10, 100]).is_err());
        assert!(CanaryPlan::try_from(vec![1, 99]).is_ok());
    }

    #[test]
    fn analysis_names_every_failed_check() {
        let t = CanaryThresholds::default();
        let primary = TrackMetrics { requests: 5000.0, success_pct: 99.95, p99_ms: 180.0 };
        let good = TrackMetrics { requests: 800.0, success_pct: 99.9, p99_ms: 200.0 };
        assert!(matches!(analyse(&good, &primary, &t), Verdict::Healthy(_)));

        let bad = TrackMetrics { requests: 800.0, success_pct: 97.1, p99_ms: 420.0 };
        let verdict = analyse(&bad, &primary, &t);
        assert!(verdict.is_failing());
        assert!(verdict.reason().contains("canary success 97.10 % < 99 %"), "{verdict:?}");
        assert!(verdict.reason().contains("p99 420 ms > 300 ms"), "{verdict:?}");

        let thin = TrackMetrics { requests: 12.0, ..bad };
        assert_eq!(analyse(&thin, &primary, &t).label(), "not enough data");
    }

    #[test]
    fn a_canary_without_requests_is_never_healthy() {
        let t = CanaryThresholds { min_requests: 0.0, ..CanaryThresholds::default() };
        let primary = TrackMetrics { requests: 5000.0, success_pct: 99.9, p99_ms: 180.0 };
        let idle = TrackMetrics { requests: 0.0, success_pct: f64::NAN, p99_ms: 0.0 };
        assert_eq!(analyse(&idle, &primary, &t).label(), "not enough data");
    }

    #[test]
    fn a_canary_on_the_limit_does_not_flip_with_float_noise() {
        let t = CanaryThresholds::default();
        let primary = TrackMetrics { requests: 5000.0, success_pct: 99.9, p99_ms: 180.0 };
        // 0.5 pp below the primary, give or take what floating point adds.
        let at_limit = |noise: f64| TrackMetrics { requests: 800.0, success_pct: 99.4 + noise, p99_ms: 200.0 };
        for noise in [-1e-12, 0.0, 1e-12, -3e-9, 3e-9] {
            let verdict = analyse(&at_limit(noise), &primary, &t);
            assert_eq!(verdict.label(), "healthy", "{noise}: at the limit as shown is within it: {verdict:?}");
        }
        // Just past it, as shown: failing.
        let past = TrackMetrics { success_pct: 99.39, ..at_limit(0.0) };
        let failing = analyse(&past, &primary, &t);
        assert!(failing.is_failing(), "{failing:?}");
        // Back on the limit after failing: still failing, and it says why.
        let held = analyse_after(Some(&failing), &at_limit(1e-12), &primary, &t);
        assert!(held.is_failing() && held.reason().contains("recovery margin"), "{held:?}");
        // Clear by the margin: healthy again.
        let clear = TrackMetrics { success_pct: 99.46, ..at_limit(0.0) };
        assert_eq!(analyse_after(Some(&failing), &clear, &primary, &t).label(), "healthy");
        // A healthy canary is judged without the margin.
        let healthy = analyse(&at_limit(0.0), &primary, &t);
        assert_eq!(analyse_after(Some(&healthy), &at_limit(-1e-12), &primary, &t).label(), "healthy");
    }
}
