//! The canary pane: the traffic split (target and actual), where it stands
//! in the plan, canary against primary, and the verdict in words.

use super::{bar, fit, off_reasons, pad, pane_block, percent, title};
use crate::action::Action;
use crate::domain::canary::Verdict;
use crate::state::{AppState, Pane};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let service = state.selected_service();
    let name = service.map_or("", |s| s.info.name.as_str());
    let block = pane_block(title(&["Canary", name], theme), Pane::Canary, state, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let Some(service) = service else { return };

    let mut lines: Vec<Line> = Vec::new();
    if !service.info.stage.uses_canary() {
        lines.push(Line::styled("prototype: deploys go straight", theme.dim));
        lines.push(Line::styled("to the primary, no canary", theme.dim));
        if let Some(t) = &service.traffic {
            lines.push(Line::styled(fit(&format!("primary {}", t.primary_image), width), theme.text));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let label_width = 8;
    if let Some(traffic) = &service.traffic {
        let weight = service.canary_weight();
        let image_width = (width / 4).clamp(7, 16);
        let bar_width = width.saturating_sub(label_width + image_width + 7).max(4);
        let split_line = |label: &str, image: &str, share: u8, style| {
            let (done, todo) = bar(f64::from(share) / 100.0, bar_width);
            Line::from(vec![
                Span::styled(pad(label, label_width), theme.dim),
                Span::styled(pad(&version(image), image_width), theme.text),
                Span::raw(" "),
                Span::styled(done, style),
                Span::styled(todo, theme.faint),
                Span::styled(format!("{share:>4} %"), theme.text),
            ])
        };
        lines.push(split_line("primary", &traffic.primary_image, 100 - weight, theme.ok));
        match &traffic.canary_image {
            Some(image) if weight > 0 => lines.push(split_line("canary", image, weight, theme.canary)),
            _ => {
                lines.push(Line::styled("no canary in flight: d deploys one", theme.dim));
                frame.render_widget(Paragraph::new(lines), inner);
                return;
            }
        }

        // Plan position, with the actual share when a source can tell it.
        let plan = &service.info.plan;
        let position = plan.position(weight);
        let mut steps: Vec<Span> =
            vec![Span::styled(format!("step {} of {}  ", position.step, position.of), theme.text)];
        for (i, step) in plan.steps().iter().chain(std::iter::once(&100)).enumerate() {
            if i > 0 {
                steps.push(Span::styled("→", theme.faint));
            }
            let text = format!("{step}");
            if *step == weight {
                steps.push(Span::styled(format!("[{text}]"), theme.accent));
            } else {
                steps.push(Span::styled(text, theme.dim));
            }
        }
        let actual = match service.actual_weight() {
            Some(a) => format!("  actual {a:.1} %"),
            None => "  actual n/a".into(),
        };
        steps.push(Span::styled(actual, theme.dim));
        if let Some(note) = &traffic.note {
            steps.push(Span::styled(format!("  {note}"), theme.dim));
        }
        lines.push(Line::from(steps));
    } else if service.analysis.is_some() {
        // Metrics without a workload backend: the split is unknown, the
        // comparison is still worth showing.
        lines.push(Line::styled("traffic split: unknown (no workload backend)", theme.dim));
    } else {
        frame.render_widget(Paragraph::new(Line::styled("no traffic data yet", theme.dim)), inner);
        return;
    }

    if let Some((primary, canary)) = &service.analysis {
        lines.push(Line::styled(format!("{}{}p99", pad("", label_width), pad("success", 11)), theme.dim));
        for (label, m, style) in [("primary", primary, theme.text), ("canary", canary, theme.canary)] {
            if m.requests <= 0.0 {
                // A rate over no requests is no rate at all.
                lines.push(Line::from(vec![
                    Span::styled(pad(label, label_width), theme.dim),
                    Span::styled("no requests", theme.warn),
                ]));
                continue;
            }
            lines.push(Line::from(vec![
                Span::styled(pad(label, label_width), theme.dim),
                Span::styled(pad(&percent(m.success_pct), 11), style),
                Span::styled(format!("{:.0} ms", m.p99_ms), style),
                Span::styled(format!("  {:.0} req", m.requests), theme.faint),
            ]));
        }
    }
    let height = inner.height as usize;
    if let Some(verdict) = &service.verdict {
        let (label, style) = match verdict {
            Verdict::Healthy(_) => ("✓ HEALTHY", theme.ok),
            Verdict::Failing(_) => ("✗ FAILING", theme.bad),
            Verdict::NotEnoughData(_) => ("… NOT ENOUGH DATA", theme.warn),
        };
        let reasons: Vec<&str> = verdict.reason().split("; ").collect();
        // Short panes give way in this order: the table's header, then the
        // reasons' own lines (joined after the label), then the table.
        if lines.len() + 1 + reasons.len() > height {
            if let Some(header) = lines.iter().position(|l| l.to_string().contains("success")) {
                lines.remove(header);
            }
        }
        let mut verdict_lines = Vec::new();
        if lines.len() + 1 + reasons.len() <= height {
            verdict_lines.push(Line::styled(label, style));
            verdict_lines.extend(reasons.iter().map(|r| Line::styled(fit(r, width), theme.text)));
        } else {
            // The label shares its line with the first reason; the others
            // follow while there is room.
            let room = height.saturating_sub(lines.len()).max(1);
            verdict_lines.push(Line::from(vec![
                Span::styled(label, style),
                Span::raw(" "),
                Span::styled(fit(reasons[0], width.saturating_sub(label.chars().count() + 1)), theme.text),
            ]));
            verdict_lines.extend(reasons[1..].iter().take(room - 1).map(|r| Line::styled(fit(r, width), theme.text)));
        }
        lines.truncate(height.saturating_sub(verdict_lines.len()));
        lines.extend(verdict_lines);
    }
    // Why promotion is off, where there is room (the help has it always).
    let off = off_reasons(state, &[Action::Promote, Action::PromoteFull], width, theme);
    if lines.len() + off.len() <= height {
        lines.extend(off);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `registry.example/shop/checkout:1.5.0` → `1.5.0`; an untagged or
/// digest reference keeps its last path segment.
pub fn version(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !last.contains('@') => tag.to_owned(),
        _ => last.to_owned(),
    }
}
