//! Service level objectives: the error budget and the multiwindow,
//! multi-burn-rate alerting rules of the Google SRE workbook.
//!
//! Thresholds are derived from the share of the budget each rule lets burn
//! in its long window, so a 7-day or 28-day objective gets correct numbers,
//! not the 30-day constants.
//!
//! Data that covers less time than a window is never stretched over it: a
//! report knows how much time its data covers (`coverage`), each burn how
//! much of its window, and a rule whose long window is not covered does not
//! fire. No coverage at all is no data, never health.

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

/// The longest window any alert rule looks at (the slow ticket's 3 days):
/// an SLO window must be at least this long, or the rules would judge more
/// time than the objective spans, with thresholds below a burn of 1.
pub const LONGEST_RULE_WINDOW: Millis = Millis(3 * DAY.0);

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
            rule(SloStatus::Ticket, LONGEST_RULE_WINDOW, Millis(6 * HOUR.0), 0.10),
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
    /// The burn rate over the part of `window` the data covers (`covered`).
    pub rate: f64,
    /// How much of `window` the data covers: `window` itself when fully
    /// covered, less while the data is younger than the window.
    #[serde(default)]
    pub covered: Millis,
}

impl Burn {
    /// Whether the data spans the whole window, so that `rate` is the
    /// window's burn rate and not a shorter one's.
    pub fn is_covered(&self) -> bool {
        self.covered >= self.window
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloReport {
    pub spec: SloSpec,
    /// Percent good over the time the data covers (`coverage`).
    pub sli: f64,
    /// Share of the error budget of the covered time left: `1 - burn` over
    /// `coverage`; negative once overspent.
    pub budget_left: f64,
    /// Burn rate per rule window, shortest first.
    pub burns: Vec<Burn>,
    /// Ok unless a rule whose long window the data covers fires.
    pub status: SloStatus,
    /// The rule that decided the status, if any fired.
    pub firing: Option<BurnRule>,
    /// Error ratio over recent time, oldest first, for the chart. Only the
    /// newest `coverage` of it holds data.
    pub error_history: Vec<f64>,
    /// How much time the data covers, ending now: at most the SLO window;
    /// zero when there is no data at all.
    #[serde(default)]
    pub coverage: Millis,
    /// The query whose series were looked for (all events), to name when
    /// it finds none; `None` when not measured by a query.
    #[serde(default)]
    pub query: Option<String>,
}

impl SloReport {
    pub fn burn(&self, window: Millis) -> Option<f64> {
        self.burns.iter().find(|b| b.window == window).map(|b| b.rate)
    }

    /// The fastest short-window burn, for tiles and the service list.
    pub fn fast_burn(&self) -> f64 {
        self.burns.first().map(|b| b.rate).unwrap_or(0.0)
    }

    /// Whether any data was measured at all. Without it the numbers of the
    /// report mean nothing and its status is unknown, not ok.
    pub fn has_data(&self) -> bool {
        self.coverage > Millis(0)
    }

    /// Whether the data covers less than the SLO window: the SLI and budget
    /// are then over `coverage` only.
    pub fn is_partial(&self) -> bool {
        self.coverage < self.spec.window
    }

    /// The rules whose long window the data covers: only these can fire.
    pub fn judged_rules(&self) -> Vec<BurnRule> {
        self.spec.rules().into_iter().filter(|r| self.coverage >= r.long).collect()
    }

    /// Whether at least one rule could be judged: until then `status` is
    /// `Ok` only because nothing can fire, which is not health.
    pub fn is_judged(&self) -> bool {
        !self.judged_rules().is_empty()
    }
}

/// `evaluate_covered` for data that spans the whole SLO window (the
/// simulated fleet keeps 30 days of history).
pub fn evaluate(
    spec: SloSpec,
    window_error_ratio: f64,
    ratio_over: impl Fn(Millis) -> Option<f64>,
    error_history: Vec<f64>,
) -> SloReport {
    evaluate_covered(spec, spec.window, window_error_ratio, ratio_over, error_history)
}

/// Evaluates an objective from data that covers `coverage` (the time from
/// its oldest point to now; capped at the SLO window): `covered_error_ratio`
/// over that time, and `ratio_over(w)` for each rule window (over the part
/// of `w` the data covers). A window with no traffic has no errors.
///
/// Nothing is extrapolated: a rule fires only when the data covers its
/// long window, and the SLI and budget are those of the covered time.
pub fn evaluate_covered(
    spec: SloSpec,
    coverage: Millis,
    covered_error_ratio: f64,
    ratio_over: impl Fn(Millis) -> Option<f64>,
    error_history: Vec<f64>,
) -> SloReport {
    let coverage = Millis(coverage.0.clamp(0, spec.window.0));
    let burns: Vec<Burn> = spec
        .windows()
        .into_iter()
        .map(|window| Burn {
            window,
            rate: spec.burn_rate(ratio_over(window).unwrap_or(0.0)),
            covered: window.min(coverage),
        })
        .collect();
    let rate = |w: Millis| burns.iter().find(|b| b.window == w).map_or(0.0, |b| b.rate);
    let mut status = SloStatus::Ok;
    let mut firing = None;
    for rule in spec.rules() {
        let covered = coverage >= rule.long;
        if covered && rate(rule.long) > rule.threshold && rate(rule.short) > rule.threshold && rule.severity > status {
            status = rule.severity;
            firing = Some(rule);
        }
    }
    SloReport {
        spec,
        sli: 100.0 * (1.0 - covered_error_ratio),
        budget_left: 1.0 - spec.burn_rate(covered_error_ratio),
        burns,
        status,
        firing,
        error_history,
        coverage,
        query: None,
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

    #[test]
    fn a_rule_fires_only_once_the_data_covers_its_long_window() {
        let spec = SloSpec::default();
        // 0.5 % errors everywhere: a burn of 5, above both ticket thresholds
        // (3 and 1), below both page thresholds.
        let steady = |_| Some(0.005);
        let at = |coverage: Millis| evaluate_covered(spec, coverage, 0.005, steady, vec![]);

        // Three minutes of data: no window is covered, nothing fires.
        let fresh = at(Millis(3 * MINUTE.0));
        assert!(fresh.has_data() && fresh.is_partial() && !fresh.is_judged());
        assert_eq!((fresh.status, fresh.firing), (SloStatus::Ok, None));
        assert!(fresh.burns.iter().all(|b| !b.is_covered() && b.covered == Millis(3 * MINUTE.0)));
        // The budget is that of the three minutes, said to be so.
        assert!((fresh.budget_left - (1.0 - 5.0)).abs() < 1e-9);
        assert_eq!(fresh.coverage, Millis(3 * MINUTE.0));

        // One day less a millisecond: the 1d/2h ticket is not judged yet.
        let almost = at(Millis(DAY.0 - 1));
        assert_eq!(almost.status, SloStatus::Ok);
        assert_eq!(almost.judged_rules().len(), 2);
        let one_day = almost.burns.iter().find(|b| b.window == DAY).unwrap();
        assert!(!one_day.is_covered() && one_day.covered == Millis(DAY.0 - 1));
        // Exactly one day: it is, and fires.
        let day = at(DAY);
        assert_eq!(day.status, SloStatus::Ticket);
        assert_eq!(day.firing.map(|r| (r.long, r.short)), Some((DAY, Millis(2 * HOUR.0))));
        assert!(day.burns.iter().find(|b| b.window == DAY).unwrap().is_covered());

        // The fast page needs a covered hour, whatever its short window says.
        let hot = |_| Some(0.02);
        let page = |coverage| evaluate_covered(spec, coverage, 0.02, hot, vec![]).status;
        assert_eq!(page(Millis(HOUR.0 - 1)), SloStatus::Ok);
        assert_eq!(page(HOUR), SloStatus::Page);

        // More data than the window is the window.
        let old = at(Millis(90 * DAY.0));
        assert_eq!(old.coverage, spec.window);
        assert!(!old.is_partial() && old.burns.iter().all(Burn::is_covered));
    }

    #[test]
    fn no_coverage_is_no_data_not_health() {
        let spec = SloSpec::default();
        let none = evaluate_covered(spec, Millis(0), 0.0, |_| None, vec![0.0; 360]);
        assert!(!none.has_data() && !none.is_judged());
        assert_eq!(none.firing, None);
        assert!(none.burns.iter().all(|b| !b.is_covered() && b.covered == Millis(0)));
        // Data over the whole window, as the simulated fleet has.
        assert!(evaluate(spec, 0.0, |_| None, vec![]).has_data());
        assert_eq!(evaluate(spec, 0.0, |_| None, vec![]).coverage, spec.window);
    }

    #[test]
    fn the_longest_rule_window_is_the_slow_tickets() {
        let longest = SloSpec::default().rules().iter().map(|r| r.long).max();
        assert_eq!(longest, Some(LONGEST_RULE_WINDOW));
    }
}
