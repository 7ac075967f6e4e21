//! The SLO pane: objective, SLI, budget left, burn rate per rule window
//! against its threshold, the error-ratio chart, and the status.

use super::{fit, pane_block, percent};
use crate::domain::slo::{SloReport, SloStatus};
use crate::domain::time::Millis;
use crate::state::{AppState, Pane};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

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
        let style = status_style(r.status, theme);
        block = block.title(Line::styled(format!(" {} ", r.status.as_str().to_uppercase()), style).right_aligned());
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

    let budget_style = match report.budget_left {
        b if b <= 0.0 => theme.bad,
        b if b < 0.25 => theme.warn,
        _ => theme.ok,
    };
    let mut first = vec![
        Span::styled("SLI ", theme.dim),
        Span::styled(percent(report.sli), theme.text),
        Span::styled("   budget left ", theme.dim),
        Span::styled(format!("{:.0} %", report.budget_left * 100.0), budget_style),
    ];
    if let Some(culprit) = state.impacted_by(&service.info.name) {
        first.push(Span::styled(format!("   impacted by {culprit}"), theme.warn));
    }
    if let Some(rule) = &report.firing {
        first.push(Span::styled(
            format!("   {}: {} and {} burn > {}", rule.severity.as_str(), rule.long, rule.short, trim(rule.threshold)),
            status_style(rule.severity, theme),
        ));
    }
    let mut lines = vec![Line::from(first), burn_line(report, width, theme)];
    let chart_rows = inner.height.saturating_sub(2);
    frame.render_widget(Paragraph::new(std::mem::take(&mut lines)), Rect { height: 2.min(inner.height), ..inner });
    if chart_rows == 0 {
        return;
    }
    let rules = rules_text(report);
    // Full scale is the worst minute shown, but never less than the error
    // ratio that burns exactly the budget (burn 1): a healthy service looks
    // flat, a burning one fills the chart.
    let peak = report.error_history.iter().copied().fold(report.spec.allowed_error_ratio(), f64::max);
    let label = format!("error ratio {}h, max {} ", report.error_history.len() / 60, super::percent(peak * 100.0));
    let label_width = label.chars().count() as u16;
    // Narrow panes give the chart the room the rules text would take.
    let rules_width = if inner.width >= 90 { (rules.chars().count() as u16 + 1).min(inner.width / 2) } else { 0 };
    let chart = Rect {
        x: inner.x + label_width,
        y: inner.y + 2,
        width: inner.width.saturating_sub(label_width + rules_width),
        height: chart_rows,
    };
    let label_area = Rect { y: inner.y + 2 + chart_rows - 1, height: 1, width: label_width, ..inner };
    frame.render_widget(Paragraph::new(Line::styled(label, theme.dim)), label_area);
    let samples = downsample(&report.error_history, chart.width as usize);
    let data: Vec<u64> = samples.iter().map(|r| ((r / peak).min(1.0) * 100.0).round() as u64).collect();
    let spark_style = status_style(report.status, theme);
    frame.render_widget(Sparkline::default().data(&data).max(100).style(spark_style), chart);
    let rules_area = Rect {
        x: chart.x + chart.width + 1,
        y: inner.y + 2 + chart_rows - 1,
        width: rules_width.saturating_sub(1),
        height: 1,
    };
    frame.render_widget(Paragraph::new(Line::styled(fit(&rules, rules_area.width as usize), theme.faint)), rules_area);
}

fn burn_line<'a>(report: &SloReport, width: usize, theme: &Theme) -> Line<'a> {
    let rules = report.spec.rules();
    let entries: Vec<(Millis, Vec<Span<'a>>)> = report
        .burns
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
    // Narrow panes keep each rule's long window and the fastest short one.
    let mut keep: Vec<Millis> = std::iter::once(rules[0].short).chain(rules.iter().map(|r| r.long)).collect();
    let cells = |keep: &[Millis]| -> usize {
        5 + entries
            .iter()
            .filter(|(w, _)| keep.contains(w))
            .map(|(_, spans)| spans.iter().map(|s| s.width()).sum::<usize>())
            .sum::<usize>()
    };
    for (w, _) in &entries {
        let mut more = keep.clone();
        more.push(*w);
        if !keep.contains(w) && cells(&more) <= width {
            keep = more;
        }
    }
    let mut spans = vec![Span::styled("burn ", theme.dim)];
    for (w, entry) in entries {
        if keep.contains(&w) {
            spans.extend(entry);
        }
    }
    Line::from(spans)
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
