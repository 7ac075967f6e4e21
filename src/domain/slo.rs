//! Service level objectives: the error budget and the multiwindow,
//! multi-burn-rate alerting rules of the Google SRE workbook.
//!
//! Thresholds are derived from the share of the budget each rule lets burn
//! in its long window, so a 7-day or 28-day objective gets correct numbers,
//! not the 30-day constants.

use super::time::{DAY, HOUR, MINUTE, Millis};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloSpec {
    /// Percent of good events, e.g. 99.9.
    pub objective: f64,
    pub window: Millis,
}

impl Default for SloSpec {
    fn default() -> Self {
        SloSpec { objective: 99.9, window: Millis(30 * DAY.0) }
    }
}

impl SloSpec {
    /// The error ratio the objective allows, e.g. 0.001 for 99.9 %.
    pub fn allowed_error_ratio(&self) -> f64 {
        (1.0 - self.objective / 100.0).max(f64::EPSILON)
    }

    pub fn burn_rate(&self, error_ratio: f64) -> f64 {
        error_ratio / self.allowed_error_ratio()
    }

    /// The rules with thresholds for this objective's window.
    pub fn rules(&self) -> [BurnRule; 4] {
        let rule = |severity, long: Millis, short: Millis, budget_spent: f64| BurnRule {
            severity,
            long,
            short,
            budget_spent,
            threshold: budget_spent * self.window.0 as f64 / long.0 as f64,
        };
        [
            rule(SloStatus::Page, HOUR, Millis(5 * MINUTE.0), 0.02),
            rule(SloStatus::Page, Millis(6 * HOUR.0), Millis(30 * MINUTE.0), 0.05),
            rule(SloStatus::Ticket, Millis(24 * HOUR.0), Millis(2 * HOUR.0), 0.10),
            rule(SloStatus::Ticket, Millis(3 * DAY.0), Millis(6 * HOUR.0), 0.10),
        ]
    }

    /// Every window a rule looks at, shortest first.
    pub fn windows(&self) -> Vec<Millis> {
        let mut windows: Vec<Millis> = self.rules().iter().flat_map(|r| [r.long, r.short]).collect();
        windows.sort();
        windows.dedup();
        windows
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SloStatus {
    Ok,
    Ticket,
    Page,
}

impl SloStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SloStatus::Ok => "ok",
            SloStatus::Ticket => "ticket",
            SloStatus::Page => "page",
        }
    }
}

/// One alerting rule: fires when both windows burn faster than `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnRule {
    pub severity: SloStatus,
    pub long: Millis,
    pub short: Millis,
    /// Fraction of the whole budget this rule lets burn within `long`.
    pub budget_spent: f64,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Burn {
    pub window: Millis,
    pub rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    pub spec: SloSpec,
    /// Percent good over the whole window.
    pub sli: f64,
    /// Share of the error budget left; negative once overspent.
    pub budget_left: f64,
    /// Burn rate per rule window, shortest first.
    pub burns: Vec<Burn>,
    pub status: SloStatus,
    /// The rule that decided the status, if any fired.
    pub firing: Option<BurnRule>,
    /// Error ratio over recent time, oldest first, for the chart.
    pub error_history: Vec<f64>,
}

impl SloReport {
    pub fn burn(&self, window: Millis) -> Option<f64> {
        self.burns.iter().find(|b| b.window == window).map(|b| b.rate)
    }

    /// The fastest short-window burn, for tiles and the service list.
    pub fn fast_burn(&self) -> f64 {
        self.burns.first().map(|b| b.rate).unwrap_or(0.0)
    }
}

/// Evaluates an objective from error ratios: `window_error_ratio` over the
/// whole SLO window, and `ratio_over(w)` for each rule window. A window with
/// no traffic has no errors.
pub fn evaluate(
    spec: SloSpec,
    window_error_ratio: f64,
    ratio_over: impl Fn(Millis) -> Option<f64>,
    error_history: Vec<f64>,
) -> SloReport {
    let burns: Vec<Burn> = spec
        .windows()
        .into_iter()
        .map(|window| Burn { window, rate: spec.burn_rate(ratio_over(window).unwrap_or(0.0)) })
        .collect();
    let rate = |w: Millis| burns.iter().find(|b| b.window == w).map_or(0.0, |b| b.rate);
    let mut status = SloStatus::Ok;
    let mut firing = None;
    for rule in spec.rules() {
        if rate(rule.long) > rule.threshold && rate(rule.short) > rule.threshold && rule.severity > status {
            status = rule.severity;
            firing = Some(rule);
        }
    }
    SloReport {
        spec,
        sli: 100.0 * (1.0 - window_error_ratio),
        budget_left: 1.0 - spec.burn_rate(window_error_ratio),
        burns,
        status,
        firing,
        error_history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_day_thresholds_match_the_workbook() {
        let spec = SloSpec::default();
        let thresholds: Vec<f64> = spec.rules().iter().map(|r| r.threshold).collect();
        for (got, want) in thresholds.iter().zip([14.4, 6.0, 3.0, 1.0]) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }

    #[test]
    fn shorter_windows_get_proportional_thresholds() {
        let spec = SloSpec { objective: 99.9, window: Millis(7 * DAY.0) };
        let page = spec.rules()[0];
        // 2 % of a 7-day budget in one hour: 0.02 * 168 = 3.36
        assert!((page.threshold - 3.36).abs() < 1e-9);
        let spec = SloSpec { objective: 99.0, window: Millis(28 * DAY.0) };
        assert!((spec.rules()[3].threshold - 0.10 * 28.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn pages_only_when_both_windows_burn() {
        let spec = SloSpec::default();
        // 2 % errors on a 99.9 % objective burns at 20x.
        let hot = |w: Millis| Some(if w <= HOUR { 0.02 } else { 0.0001 });
        let report = evaluate(spec, 0.0004, hot, vec![]);
        assert_eq!(report.status, SloStatus::Page);
        assert_eq!(report.firing.map(|r| r.long), Some(HOUR));
        assert!((report.budget_left - 0.6).abs() < 1e-9);
        assert!((report.sli - 99.96).abs() < 1e-9);

        // A short spike alone (5 m hot, 1 h cool) does not page.
        let spike = |w: Millis| Some(if w <= Millis(5 * MINUTE.0) { 0.05 } else { 0.0001 });
        assert_eq!(evaluate(spec, 0.0001, spike, vec![]).status, SloStatus::Ok);

        // A slow, steady burn of 1.5x over days raises a ticket.
        let slow = |_| Some(0.0015);
        let report = evaluate(spec, 0.0005, slow, vec![]);
        assert_eq!(report.status, SloStatus::Ticket);
    }
}
