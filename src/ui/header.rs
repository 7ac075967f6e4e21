//! The top line: team, backend and context, connection state, read-only,
//! and the SIMULATED label whenever the data is not real.

use crate::event::ConnectionState;
use crate::state::AppState;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    // (priority, left side?, text, style): the lowest priorities are
    // dropped first when the terminal is narrow. SIMULATED is never dropped.
    // An outage is never dropped; its reason is cut to what fits.
    let budget = usize::from(area.width).saturating_sub(70).max(12);
    let (connection, connection_style, outage) = connection_summary(state, theme, budget);
    let mut parts: Vec<(u8, bool, String, Style)> = vec![
        (0, true, "cockpit".into(), theme.accent),
        (4, true, state.team.as_ref().map(|t| format!("team {t}")).unwrap_or_default(), theme.text),
        (2, true, format!("{} {}", state.backend.kind, state.backend.context), theme.text),
        (u8::from(!outage), true, connection, connection_style),
    ];
    if state.read_only {
        parts.push((0, true, "read-only".into(), theme.warn));
    }
    if let Some(request) = state.pending.values().next() {
        parts.push((3, true, format!("⟳ {} {}…", request.op.name(), request.service), theme.accent));
    }
    if state.backend.simulated {
        parts.push((0, false, "SIMULATED".into(), theme.simulated));
        if let Some(scenario) = &state.backend.scenario {
            parts.push((5, false, format!("scenario {scenario}"), theme.warn));
        }
    }
    parts.retain(|p| !p.2.is_empty());

    let width = |kept: &[&(u8, bool, String, Style)]| -> usize {
        kept.iter().map(|p| p.2.chars().count() + 3).sum::<usize>() + 1
    };
    let mut kept: Vec<&(u8, bool, String, Style)> = parts.iter().collect();
    while width(&kept) > area.width as usize {
        let Some(drop) = kept.iter().enumerate().filter(|(_, p)| p.0 > 0).max_by_key(|(_, p)| p.0).map(|(i, _)| i)
        else {
            break;
        };
        kept.remove(drop);
    }
    let mut left = vec![Span::raw(" ")];
    for (i, part) in kept.iter().filter(|p| p.1).enumerate() {
        if i > 0 {
            left.push(Span::styled(" · ", theme.dim));
        }
        left.push(Span::styled(part.2.clone(), part.3));
    }
    let mut right = Vec::new();
    for part in kept.iter().filter(|p| !p.1) {
        let text = if part.2 == "SIMULATED" { " SIMULATED ".to_string() } else { format!(" {}", part.2) };
        right.push(Span::styled(text, part.3));
    }
    right.push(Span::raw(" "));
    split_line(frame, area, Line::from(left), Line::from(right));
}

/// One row with `left` flush left and `right` flush right; the right side
/// wins when both do not fit.
pub fn split_line(frame: &mut Frame, area: Rect, left: Line, right: Line) {
    let right_width = (right.width() as u16).min(area.width);
    let left_area = Rect { width: area.width - right_width, ..area };
    let right_area = Rect { x: area.x + left_area.width, width: right_width, ..area };
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

/// The connections in a few words (reasons cut to `budget` characters),
/// and whether any is down.
fn connection_summary(state: &AppState, theme: &Theme, budget: usize) -> (String, ratatui::style::Style, bool) {
    let down: Vec<String> = state
        .connections
        .iter()
        .filter_map(|(source, c)| match c {
            ConnectionState::Disconnected { since, reason } => {
                let reason = match reason.char_indices().nth(budget) {
                    Some((cut, _)) => format!("{}…", &reason[..cut]),
                    None => reason.clone(),
                };
                Some(format!("✗ {source} disconnected since {} ({reason})", since.clock()))
            }
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        return (down.join(", "), theme.bad, true);
    }
    if state.connections.values().any(|c| *c == ConnectionState::Connecting) || state.connections.is_empty() {
        return ("○ connecting".into(), theme.warn, false);
    }
    ("● live".into(), theme.ok, false)
}
