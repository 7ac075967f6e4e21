//! The bottom line: the keys that apply right now, disabled ones dimmed with
//! the reason, from the live keymap so overrides show.

use crate::action::Action;
use crate::event::ConnectionState;
use crate::state::{AppState, Modal, PromptPurpose};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let fixed = |pairs: &[(&str, &str)]| {
        let mut spans = Vec::new();
        for (key, what) in pairs {
            spans.push(Span::styled(format!(" {key}"), theme.accent));
            spans.push(Span::styled(format!(" {what} "), theme.dim));
        }
        spans
    };
    let spans = match &state.modal {
        Some(Modal::Help) => fixed(&[("any key", "close help")]),
        Some(Modal::Confirm { .. }) => fixed(&[("y", "yes"), ("n", "no"), ("esc", "cancel")]),
        Some(Modal::Prompt { purpose: PromptPurpose::Search, .. }) => {
            fixed(&[("enter", "search"), ("esc", "cancel"), ("ctrl-u", "clear")])
        }
        Some(Modal::Prompt { .. }) => fixed(&[("enter", "submit"), ("esc", "cancel"), ("ctrl-u", "clear")]),
        None => main_keys(state, theme),
    };
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn main_keys<'a>(state: &AppState, theme: &Theme) -> Vec<Span<'a>> {
    let selected = state.selected_service();
    let stage = selected.map(|s| s.info.stage);
    let has_canary = state.selected_service().is_some_and(|s| s.canary_weight() > 0);
    let shown = [
        (vec![Action::Down, Action::Up], "move"),
        (vec![Action::NextPane], "pane"),
        (vec![Action::Rebuild], "rebuild"),
        (vec![Action::Deploy], "deploy"),
        (vec![Action::Promote], "promote"),
        (vec![Action::PromoteFull], "full"),
        (vec![Action::Rollback], "roll back"),
        (vec![Action::Search], "search"),
        (vec![Action::Follow], if state.log_view.following() { "pause" } else { "follow" }),
        (vec![Action::TeamScreen], "team"),
        (vec![Action::Help], "help"),
        (vec![Action::Quit], "quit"),
    ];
    // Builds need the engine: while it is away the key says so.
    let docker_down = matches!(state.connections.get("docker"), Some(ConnectionState::Disconnected { .. }));
    // Outside the simulated fleet, builds need a configured engine.
    let no_builder = !state.backend.simulated && !state.connections.contains_key("docker");
    let mut spans = Vec::new();
    if docker_down {
        spans.push(Span::styled(" no docker engine: rebuild off;", theme.warn));
    }
    if let Some(denied) = selected.and_then(|s| s.denied.first()).filter(|_| !state.read_only) {
        // The dimmed keys' reason, before them.
        spans.push(Span::styled(format!(" {}:", denied.reason), theme.warn));
    }
    if state.read_only {
        // First, so it is never cut off on a narrow terminal.
        spans.push(Span::styled(" read-only:", theme.warn));
    }
    for (actions, what) in shown {
        let keys: Vec<String> = actions.iter().filter_map(|a| state.keymap.label(*a)).collect();
        if keys.is_empty() {
            continue;
        }
        let promotes = matches!(actions[0], Action::Promote | Action::PromoteFull);
        let disabled = (actions[0].mutates() && state.read_only)
            || (promotes && (stage.is_some_and(|s| !s.uses_canary()) || !has_canary))
            || (actions[0] == Action::Rebuild && (docker_down || no_builder))
            || selected.is_some_and(|s| s.denied_reason(actions[0]).is_some());
        let (key_style, text_style) = if disabled { (theme.faint, theme.faint) } else { (theme.accent, theme.dim) };
        spans.push(Span::styled(format!(" {}", keys.join("/")), key_style));
        spans.push(Span::styled(format!(" {what} "), text_style));
    }
    spans
}
