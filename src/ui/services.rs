//! The service list, grouped by stage: health from the SLO, rollout state,
//! and the canary weight at a glance.

use super::{pad, pane_block, title};
use crate::domain::rollout::RolloutPhase;
use crate::state::{AppState, Health, ListRow, Pane, ServiceView, list_offset};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let count = format!("{}", state.services.len());
    let block = pane_block(title(&["Services", &count], theme), Pane::Services, state, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if state.services.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("waiting for services…", theme.dim)), inner);
        return;
    }
    let rows = state.list_rows();
    let selected_row = rows.iter().position(|r| *r == ListRow::Service(state.selected)).unwrap_or(0);
    let offset = list_offset(selected_row, inner.height as usize);
    let width = inner.width as usize;
    let lines: Vec<Line> = rows
        .iter()
        .skip(offset)
        .take(inner.height as usize)
        .map(|row| match row {
            ListRow::Heading(stage) => {
                Line::styled(stage.title(), theme.dim.add_modifier(ratatui::style::Modifier::BOLD))
            }
            ListRow::Service(i) => service_row(state, &state.services[*i], *i == state.selected, width, theme),
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `(glyph, style)` for a service's health: its SLO, or the paging
/// dependency that drags it.
/// Unknown is `?` in the warning colour: on an incident screen, no data
/// must never look like health (nor like nothing to look at).
pub fn health(state: &AppState, service: &ServiceView, theme: &Theme) -> (&'static str, Style) {
    match state.health(service) {
        Health::Paging => ("✗", theme.bad),
        Health::Ticket | Health::Impacted => ("!", theme.warn),
        Health::Ok => ("✓", theme.ok),
        Health::Unknown => ("?", theme.warn),
    }
}

fn service_row<'a>(state: &AppState, service: &ServiceView, selected: bool, width: usize, theme: &Theme) -> Line<'a> {
    let (glyph, glyph_style) = health(state, service, theme);
    // Wide lists show "⟳2/3"; narrow ones only the glyph.
    let wide = width >= 30;
    let rollout = match service.rollout.as_ref() {
        Some(r) if r.phase == RolloutPhase::Progressing && wide => {
            (format!("⟳{}/{}", r.replicas.updated, r.replicas.desired), theme.accent)
        }
        Some(r) if r.phase == RolloutPhase::Progressing => ("⟳".into(), theme.accent),
        Some(r) if r.phase == RolloutPhase::Failed => ("✗".into(), theme.bad),
        Some(r) if r.phase == RolloutPhase::Paused => ("‖".into(), theme.warn),
        _ => (String::new(), theme.dim),
    };
    let rollout_width = if wide { 6 } else { 1 };
    let weight = service.canary_weight();
    let canary = if weight > 0 { format!("▮{weight}%") } else { String::new() };
    let canary_style = match service.live_verdict() {
        Some(v) if v.is_failing() => theme.bad,
        _ => theme.canary,
    };
    let name_width = width.saturating_sub(1 + 2 + 1 + rollout_width + 5).max(6);
    let marker = if selected { "▶" } else { " " };
    let base = if selected { theme.selection } else { Style::new() };
    let mut spans = vec![
        Span::styled(marker, base.patch(theme.accent)),
        Span::styled(pad(&service.info.name, name_width), base.patch(theme.text)),
        Span::styled(format!(" {glyph}"), base.patch(glyph_style)),
        Span::styled(format!(" {}", pad(&rollout.0, rollout_width)), base.patch(rollout.1)),
        Span::styled(format!("{:>5}", canary), base.patch(canary_style)),
    ];
    if selected {
        // Fill the rest of the row so the highlight spans the pane.
        let used: usize = spans.iter().map(|s| s.width()).sum();
        spans.push(Span::styled(" ".repeat(width.saturating_sub(used)), base));
    }
    Line::from(spans)
}
