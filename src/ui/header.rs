//! The top line: team, backend and context, connection state, read-only,
//! and the SIMULATED label whenever the data is not real.

use crate::event::ConnectionState;
use crate::state::AppState;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut left = vec![Span::styled(" cockpit", theme.accent)];
    let sep = |spans: &mut Vec<Span<'static>>, text: String, style| {
        spans.push(Span::styled(" · ", theme.dim));
        spans.push(Span::styled(text, style));
    };
    if let Some(team) = &state.team {
        sep(&mut left, format!("team {team}"), theme.text);
    }
    sep(&mut left, format!("{} {}", state.backend.kind, state.backend.context), theme.text);
    let (text, style) = connection_summary(state, theme);
    sep(&mut left, text, style);
    if state.read_only {
        sep(&mut left, "read-only".into(), theme.warn);
    }
    if let Some(request) = state.pending.values().next() {
        sep(&mut left, format!("⟳ {} {}…", request.op.name(), request.service), theme.accent);
    }

    let mut right = Vec::new();
    if state.backend.simulated {
        right.push(Span::styled(" SIMULATED ", theme.simulated));
        if let Some(scenario) = &state.backend.scenario {
            right.push(Span::styled(format!(" scenario {scenario}"), theme.warn));
        }
    }
    right.push(Span::styled(format!(" {} UTC ", state.now.clock()), theme.dim));
    let right = Line::from(right);
    let right_width = right.width() as u16;
    let left_area = Rect { width: area.width.saturating_sub(right_width), ..area };
    let right_area = Rect { x: area.x + left_area.width, width: area.width - left_area.width, ..area };
    frame.render_widget(Paragraph::new(Line::from(left)), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

fn connection_summary(state: &AppState, theme: &Theme) -> (String, ratatui::style::Style) {
    let down: Vec<String> = state
        .connections
        .iter()
        .filter_map(|(source, c)| match c {
            ConnectionState::Disconnected { since, reason } => {
                Some(format!("✗ {source} disconnected since {} ({reason})", since.clock()))
            }
            _ => None,
        })
        .collect();
    if !down.is_empty() {
        return (down.join(", "), theme.bad);
    }
    if state.connections.values().any(|c| *c == ConnectionState::Connecting) || state.connections.is_empty() {
        return ("○ connecting".into(), theme.warn);
    }
    ("● live".into(), theme.ok)
}
