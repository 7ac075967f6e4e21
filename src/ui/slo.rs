//! The SLO pane: objective, SLI, budget left, burn rate per rule window
//! against its threshold, the error-ratio chart, and the status.
//!
//! It says how much time the data covers: a window longer than the data
//! shows "3d: 3 min of data" instead of a number, the SLI and budget say
//! "over 3 min of 30 d", the chart "last 3 min of 6 h", and a report
//! without data shows no numbers at all, only why.

use super::{fit, pane_block, percent};
use crate::domain::slo::{Burn, SloReport, SloStatus};
use crate::domain::time::{MINUTE, Millis};
use crate::state::{AppState, Pane};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

/// The chart's history has one point a minute.
const CHART_STEP: Millis = MINUTE;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let service = state.selected_service();
    let report = service.and_then(|s| s.slo.as_ref());
    let mut title_spans = vec![Span::styled(" SLO", theme.accent)];
    if let Some(s) = service {
        title_spans.push(Span::styled(format!(" · {}", s.info.name), theme.text));
    }
    if let Some(r) = report {
        title_spans.push(Span::styled(format!(" · {} % over {} ", r.spec.objective, r.spec.window), theme.text));
    } else {
        title_spans.push(Span::raw(" "));
    }
    // Metrics that stopped arriving are still shown, marked stale.
    if let Some(crate::event::ConnectionState::Disconnected { since, .. }) = state.connections.get("prometheus") {
        title_spans.push(Span::styled(format!("stale since {} ", since.clock()), theme.warn));
    }
    let mut block = pane_block(Line::from(title_spans), Pane::Slo, state, theme);
    if let Some(r) = report {
        let (label, style) = status_label(r, theme);
        block = block.title(Line::styled(format!(" {label} "), style).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;

    let Some(service) = service else { return };
    if let Some(error) = &service.metrics_error {
        let lines = vec![
            Line::styled(fit(&format!("metrics error: {error}"), width), theme.bad),
            Line::styled("check the PromQL for this service in cockpit.toml", theme.dim),
        ];
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let Some(report) = report else {
        frame.render_widget(Paragraph::new(Line::styled("no SLO data for this service", theme.dim)), inner);
        return;
    };
    if !report.has_data() {
        // No data is not health: no SLI, no budget, no burn, only why.
        let why = match &report.query {
            Some(query) => format!("no SLO data: no series for {query}"),
            None => "no SLO data: nothing was measured".to_owned(),
        };
        let lines = vec![
            Line::styled(fit(&why, width), theme.warn),
            Line::styled(
                fit(
                    &format!(
                        "health unknown: check that Prometheus scrapes {} and its [service.slo] total query",
                        service.info.name
                    ),
                    width,
                ),
                theme.dim,
            ),
        ];
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }

    let budget_style = match report.budget_left {
        b if b <= 0.0 => theme.bad,
        b if b < 0.25 => theme.warn,
        _ => theme.ok,
    };
    let mut first = Vec::new();
    if report.is_partial() {
        // The SLI and budget are over the covered time only.
        first.push(Span::styled(
            format!("over {} of {}: ", span(report.coverage), span(report.spec.window)),
            theme.warn,
        ));
    }
    first.extend([
        Span::styled("SLI ", theme.dim),
        Span::styled(percent(report.sli), theme.text),
        Span::styled("   budget left ", theme.dim),
        Span::styled(format!("{:.0} %", report.budget_left * 100.0), budget_style),
    ]);
    if let Some(culprit) = state.impacted_by(&service.info.name) {
        first.push(Span::styled(format!("   impacted by {culprit}"), theme.warn));
    }
    if let Some(rule) = &report.firing {
        first.push(Span::styled(
            format!("   {}: {} and {} burn > {}", rule.severity.as_str(), rule.long, rule.short, trim(rule.threshold)),
            status_style(rule.severity, theme),
        ));
    } else if !report.is_judged() {
        let shortest = report.spec.rules().iter().map(|r| r.long).min().unwrap_or(report.spec.window);
        first.push(Span::styled(
            format!("   no alert rule judged yet: the first needs {} of data", span(shortest)),
            theme.warn,
        ));
    }
    let mut lines = vec![Line::from(first), burn_line(report, width, theme)];
    let chart_rows = inner.height.saturating_sub(2);
    frame.render_widget(Paragraph::new(std::mem::take(&mut lines)), Rect { height: 2.min(inner.height), ..inner });
    if chart_rows == 0 {
        return;
    }
    draw_chart(frame, Rect { y: inner.y + 2, height: chart_rows, ..inner }, report, theme);
}

/// The status in the title: what the rules say, but never "OK" for what
/// they could not judge.
fn status_label(report: &SloReport, theme: &Theme) -> (String, Style) {
    let judged = report.judged_rules().len();
    let rules = report.spec.rules().len();
    match report.status {
        _ if !report.has_data() => ("NO DATA".into(), theme.warn),
        SloStatus::Ok if judged == 0 => ("NOT ENOUGH DATA".into(), theme.warn),
        SloStatus::Ok if judged < rules => (format!("OK on {judged} of {rules} rules"), theme.ok),
        status => (status.as_str().to_uppercase(), status_style(status, theme)),
    }
}

/// The error ratio chart over `area`: a label on the left (what it spans,
/// the measured maximum, the scale), the bars, the page rules on the right.
/// Minutes the data does not cover are drawn as "no data", not as zeros.
fn draw_chart(frame: &mut Frame, area: Rect, report: &SloReport, theme: &Theme) {
    let history = &report.error_history;
    let points = history.len();
    // The newest points the data covers (one a minute, the newest now).
    let covered = ((report.coverage.0 / CHART_STEP.0) as usize + 1).min(points);
    let tail = &history[points - covered..];
    let measured = tail.iter().copied().filter(|r| r.is_finite()).fold(0.0, f64::max);
    // Full scale is the worst minute shown, but never less than the error
    // ratio that burns exactly the budget (burn 1): a healthy service looks
    // flat, a burning one fills the chart.
    let floor = report.spec.allowed_error_ratio();
    let peak = measured.max(floor);
    let chart_span = span(Millis(points as i64 * CHART_STEP.0));
    let spans = if covered < points { format!("last {} of {chart_span}", span(report.coverage)) } else { chart_span };
    let max = format!("max {} measured", percent(measured * 100.0));
    let labels: Vec<String> = if area.height >= 2 {
        let scale = if measured < floor { format!(", scale {}", percent(floor * 100.0)) } else { String::new() };
        vec![format!("error ratio {spans}"), format!("{max}{scale}")]
    } else {
        vec![format!("{spans}: {max}")]
    };
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 1;
    let rules = rules_text(report);
    // Narrow panes give the chart the room the rules text would take.
    let rules_width = if area.width >= 90 { (rules.chars().count() as u16 + 1).min(area.width / 2) } else { 0 };
    let chart = Rect { x: area.x + label_width, width: area.width.saturating_sub(label_width + rules_width), ..area };
    let label_rows = labels.len() as u16;
    let label_area = Rect { y: area.y + area.height - label_rows, height: label_rows, width: label_width, ..area };
    let label_lines: Vec<Line> = labels.into_iter().map(|l| Line::styled(l, theme.dim)).collect();
    frame.render_widget(Paragraph::new(label_lines), label_area);

    // The covered part takes its share of the width, at least a column.
    let width = chart.width as usize;
    let covered_cols =
        if covered < points { ((width * covered) as f64 / points as f64).round().max(1.0) as usize } else { width }
            .min(width);
    let samples = downsample(tail, covered_cols);
    // Partial: the newest minutes at the right edge, "no data" before them.
    let bars_x = if covered < points { chart.x + (width - samples.len()) as u16 } else { chart.x };
    if bars_x > chart.x {
        let gap = (bars_x - chart.x) as usize;
        let mut text = "·".repeat(gap);
        if gap >= 11 {
            let pad = (gap - 9) / 2;
            text = format!("{} no data {}", "·".repeat(pad), "·".repeat(gap - 9 - pad));
        }
        let row = Rect { x: chart.x, y: chart.y + chart.height - 1, width: gap as u16, height: 1 };
        frame.render_widget(Paragraph::new(Line::styled(text, theme.faint)), row);
    }
    let data: Vec<u64> = samples.iter().map(|r| ((r / peak).min(1.0) * 100.0).round() as u64).collect();
    let spark_style = status_style(report.status, theme);
    let bars = Rect { x: bars_x, width: chart.x + chart.width - bars_x, ..chart };
    frame.render_widget(Sparkline::default().data(&data).max(100).style(spark_style), bars);
    let rules_area = Rect {
        x: chart.x + chart.width + 1,
        y: area.y + area.height - 1,
        width: rules_width.saturating_sub(1),
        height: 1,
    };
    frame.render_widget(Paragraph::new(Line::styled(fit(&rules, rules_area.width as usize), theme.faint)), rules_area);
}

fn burn_line<'a>(report: &SloReport, width: usize, theme: &Theme) -> Line<'a> {
    let rules = report.spec.rules();
    let (covered, uncovered): (Vec<&Burn>, Vec<&Burn>) = report.burns.iter().partition(|b| b.is_covered());
    let entries: Vec<(Millis, Vec<Span<'a>>)> = covered
        .iter()
        .map(|burn| {
            // The lowest threshold any rule applies to this window.
            let threshold = rules
                .iter()
                .filter(|r| r.long == burn.window || r.short == burn.window)
                .map(|r| r.threshold)
                .fold(f64::INFINITY, f64::min);
            let style = if burn.rate > threshold { theme.bad } else { theme.text };
            let mut spans = vec![
                Span::styled(format!(" {} ", window(burn.window)), theme.dim),
                Span::styled(format!("{:.1}", burn.rate), style),
                Span::styled(format!("/{}", trim(threshold)), theme.faint),
            ];
            if width >= 120 {
                // A bar against the threshold: full means the alert fires.
                let (done, todo) = super::bar(burn.rate / threshold, 4);
                spans.push(Span::styled(format!(" {done}"), style));
                spans.push(Span::styled(todo, theme.faint));
            }
            (burn.window, spans)
        })
        .collect();
    // Windows longer than the data: no number, only how much data there is
    // ("6h 1d 3d: 2 h of data", or "6h–3d: 2 h of data" when narrow).
    let data = format!("{} of data", span(report.coverage));
    let missing = match (uncovered.first(), uncovered.last()) {
        (Some(first), Some(last)) => {
            let all: Vec<String> = uncovered.iter().map(|b| window(b.window)).collect();
            let full = format!(" {}: {data}", all.join(" "));
            let short = if first.window == last.window {
                full.clone()
            } else {
                format!(" {}–{}: {data}", window(first.window), window(last.window))
            };
            let room = width.saturating_sub(5 + entries.iter().map(|(_, s)| width_of(s)).sum::<usize>());
            if full.chars().count() <= room { full } else { short }
        }
        _ => String::new(),
    };
    let room = width.saturating_sub(missing.chars().count());
    // Narrow panes keep each rule's long window and the fastest short one.
    let mut keep: Vec<Millis> = std::iter::once(rules[0].short).chain(rules.iter().map(|r| r.long)).collect();
    let cells = |keep: &[Millis]| -> usize {
        5 + entries.iter().filter(|(w, _)| keep.contains(w)).map(|(_, spans)| width_of(spans)).sum::<usize>()
    };
    for (w, _) in &entries {
        let mut more = keep.clone();
        more.push(*w);
        if !keep.contains(w) && cells(&more) <= room {
            keep = more;
        }
    }
    let mut spans = vec![Span::styled("burn ", theme.dim)];
    for (w, entry) in entries {
        if keep.contains(&w) {
            spans.extend(entry);
        }
    }
    if !missing.is_empty() {
        spans.push(Span::styled(missing, theme.warn));
    }
    Line::from(spans)
}

fn width_of(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.width()).sum()
}

fn rules_text(report: &SloReport) -> String {
    let rules = report.spec.rules();
    format!(
        "page {}&{}>{} or {}&{}>{}",
        window(rules[0].long),
        window(rules[0].short),
        trim(rules[0].threshold),
        window(rules[1].long),
        window(rules[1].short),
        trim(rules[1].threshold)
    )
}

fn window(w: Millis) -> String {
    w.to_string()
}

/// A span of time for people, rounded down: `<1 min`, `3 min`, `5 h`
/// (up to two days), `30 d`.
fn span(m: Millis) -> String {
    let minutes = m.0.max(0) / MINUTE.0;
    match minutes {
        0 => "<1 min".into(),
        1..60 => format!("{minutes} min"),
        60..2880 => format!("{} h", minutes / 60),
        _ => format!("{} d", minutes / 1440),
    }
}

fn trim(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Averages `samples` into at most `width` buckets.
fn downsample(samples: &[f64], width: usize) -> Vec<f64> {
    if width == 0 || samples.is_empty() {
        return Vec::new();
    }
    if samples.len() <= width {
        return samples.to_vec();
    }
    let chunk = samples.len().div_ceil(width);
    samples.chunks(chunk).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
}

pub fn status_style(status: SloStatus, theme: &Theme) -> Style {
    match status {
        SloStatus::Ok => theme.ok,
        SloStatus::Ticket => theme.warn,
        SloStatus::Page => theme.bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Keymap;
    use crate::domain::slo::{SloSpec, evaluate};
    use crate::domain::time::{MINUTE, Millis};
    use crate::domain::{Stage, Timestamp};
    use crate::event::{BackendInfo, ServiceInfo, SourceEvent};
    use crate::state::{Msg, update};

    /// The SLO pane of one service with `report`, as text.
    fn pane(report: SloReport, width: u16, height: u16) -> String {
        let backend = BackendInfo { kind: "config".into(), context: "test".into(), simulated: false, scenario: None };
        let service = ServiceInfo {
            name: "checkout".into(),
            stage: Stage::Production,
            owner: None,
            depends_on: vec![],
            plan: Default::default(),
            thresholds: Default::default(),
        };
        let mut state = AppState::new(backend.clone(), Keymap::default(), false, 10);
        let now = Timestamp(0);
        update(&mut state, now, Msg::Source(SourceEvent::Inventory { backend, services: vec![service] }));
        update(&mut state, now, Msg::Source(SourceEvent::Slo { service: "checkout".into(), report }));
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).expect("a test terminal");
        let theme = Theme::default();
        terminal.draw(|frame| draw(frame, frame.area(), &state, &theme)).expect("draw");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect::<String>().trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_chart_labels_the_measured_maximum_not_the_axis_floor() {
        // A quiet service: the worst minute is 0.04 %, below the 0.10 % that
        // burns the budget at 1, which is the top of the chart.
        let history: Vec<f64> = (0..360).map(|m| if m == 200 { 0.0004 } else { 0.0001 }).collect();
        let report = evaluate(SloSpec::default(), 0.0001, |_| Some(0.0001), history);
        let text = pane(report.clone(), 120, 7);
        assert!(text.contains("max 0.04 % measured"), "{text}");
        assert!(text.contains("scale 0.10 %"), "{text}");
        assert!(!text.contains("max 0.10 %"), "{text}");
        // One chart row: only the measured maximum.
        let text = pane(report, 100, 5);
        assert!(text.contains("max 0.04 % measured"), "{text}");
        assert!(!text.contains("max 0.10 %"), "{text}");
    }

    #[test]
    fn partial_history_says_how_much_time_it_covers() {
        use crate::domain::slo::evaluate_covered;
        let history: Vec<f64> = (0..360).map(|m| if m >= 356 { 0.005 } else { 0.0 }).collect();
        let report = evaluate_covered(SloSpec::default(), Millis(3 * MINUTE.0), 0.005, |_| Some(0.005), history);
        let text = pane(report.clone(), 140, 8);
        for seen in [
            "over 3 min of 30 d: SLI 99.50 %   budget left -400 %",
            "no alert rule judged yet: the first needs 1 h of data",
            "burn  5m 30m 1h 2h 6h 1d 3d: 3 min of data",
            "error ratio last 3 min of 6 h",
            "max 0.50 % measured",
            "no data",
            "NOT ENOUGH DATA",
        ] {
            assert!(text.contains(seen), "`{seen}`:\n{text}");
        }
        assert!(!text.contains(" OK "), "{text}");
        // One chart row: what it spans and the measured maximum.
        let text = pane(report.clone(), 60, 5);
        assert!(text.contains("burn  5m 30m 1h 2h 6h 1d 3d: 3 min of data"), "{text}");
        assert!(text.contains("last 3 min of 6 h: max 0.50 % measured"), "{text}");
        // Narrower: the windows without data are a range.
        let text = pane(report, 40, 5);
        assert!(text.contains("burn  5m–3d: 3 min of data"), "{text}");

        // Two hours: the short windows have numbers, the long ones say why not.
        let report = evaluate_covered(SloSpec::default(), Millis(120 * MINUTE.0), 0.0, |_| Some(0.0), vec![0.0; 360]);
        let text = pane(report, 140, 8);
        assert!(text.contains(" 2h 0.0/3") && text.contains(" 6h 1d 3d: 2 h of data"), "{text}");
        assert!(text.contains("OK on 1 of 4 rules"), "{text}");
    }

    #[test]
    fn no_data_shows_no_numbers_only_why() {
        use crate::domain::slo::evaluate_covered;
        let mut report = evaluate_covered(SloSpec::default(), Millis(0), 0.0, |_| None, vec![0.0; 360]);
        report.query = Some("sum(rate(http_requests_total{service=\"checkout\"}[5m]))".into());
        let text = pane(report, 120, 7);
        assert!(
            text.contains("no SLO data: no series for sum(rate(http_requests_total{service=\"checkout\"}[5m]))"),
            "{text}"
        );
        assert!(text.contains("NO DATA") && text.contains("health unknown"), "{text}");
        for unseen in ["SLI", "budget", "burn", "100", "OK"] {
            assert!(!text.contains(unseen), "`{unseen}`:\n{text}");
        }
    }
}
