//! The bottom line: the keys that apply to the focused pane right now,
//! from the live keymap so overrides show. Disabled keys are dimmed; why
//! they are off is said in the pane they act on and in the help, never
//! here. `? help` and `q quit` always stay; when the line is short the
//! least important entries go first, whole.

use crate::action::Action;
use crate::event::ConnectionState;
use crate::state::{AppState, Modal, Pane, PromptPurpose};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthStr;

/// One key bar entry: `j/k move`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    keys: String,
    what: String,
    /// 0 always stays; higher numbers go first when the line is short.
    rank: u8,
    disabled: bool,
}

impl Entry {
    fn width(&self) -> usize {
        // ` key what `
        self.keys.width() + self.what.width() + 3
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let fixed = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(keys, what)| Entry { keys: keys.to_string(), what: what.to_string(), rank: 0, disabled: false })
            .collect()
    };
    let entries = match &state.modal {
        Some(Modal::Help) => fixed(&[("any key", "close help")]),
        Some(Modal::Messages) => fixed(&[("any key", "close")]),
        Some(Modal::Confirm { .. }) => fixed(&[("y", "yes"), ("n", "no"), ("esc", "cancel")]),
        Some(Modal::Prompt { purpose: PromptPurpose::Search, .. }) => {
            fixed(&[("enter", "search"), ("esc", "cancel"), ("ctrl-u", "clear")])
        }
        Some(Modal::Prompt { .. }) => fixed(&[("enter", "submit"), ("esc", "cancel"), ("ctrl-u", "clear")]),
        None => main_entries(state),
    };
    let mut spans = Vec::new();
    for entry in fitting(entries, area.width as usize) {
        let (key_style, text_style) =
            if entry.disabled { (theme.faint, theme.faint) } else { (theme.accent, theme.dim) };
        spans.push(Span::styled(format!(" {}", entry.keys), key_style));
        spans.push(Span::styled(format!(" {} ", entry.what), text_style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The entries that fit in `width` cells, in their order: those that must
/// stay, then by rank (disabled keys last), each whole or not at all.
fn fitting(entries: Vec<Entry>, width: usize) -> Vec<Entry> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].rank > 0, entries[i].disabled, entries[i].rank, i));
    let mut keep = vec![false; entries.len()];
    let mut used = 0;
    for i in order {
        let w = entries[i].width();
        if entries[i].rank == 0 || used + w <= width {
            keep[i] = true;
            used += w;
        }
    }
    entries.into_iter().zip(keep).filter_map(|(e, k)| k.then_some(e)).collect()
}

/// How important each action key is in the focused pane (lower stays
/// longer); `None` where the key does not belong on the bar there.
fn action_rank(focus: Pane, action: Action) -> u8 {
    use Action::*;
    match (focus, action) {
        (Pane::Services, Deploy | Promote | Rollback) => 3,
        (Pane::Services, PromoteFull | Rebuild) => 4,
        (Pane::Rollout, Rebuild | Deploy | Rollback) => 3,
        (Pane::Rollout, Restart | Stop) => 4,
        (Pane::Canary, Promote | PromoteFull | Rollback) => 3,
        (Pane::Canary, Deploy) => 4,
        (Pane::Slo, Rollback) => 3,
        (Pane::Slo, Deploy | Promote | PromoteFull) => 4,
        (Pane::Logs, _) => 7,
        _ => 5,
    }
}

fn main_entries(state: &AppState) -> Vec<Entry> {
    let focus = state.focus;
    let logs = focus == Pane::Logs;
    let searching = state.log_view.search.is_some();
    let mut entries = Vec::new();
    let mut add = |actions: &[Action], what: &str, rank: u8| {
        let keys: Vec<String> = actions.iter().filter_map(|a| state.keymap.label(*a)).collect();
        if keys.is_empty() {
            return;
        }
        let disabled = why_disabled(state, actions[0]).is_some();
        entries.push(Entry { keys: keys.join("/"), what: what.to_owned(), rank, disabled });
    };
    if logs {
        add(&[Action::Down, Action::Up], "scroll", 1);
        add(&[Action::Top, Action::Bottom], "oldest/newest", 5);
        add(&[Action::PageUp, Action::PageDown], "page", 5);
        add(&[Action::Search], "search", 1);
        if searching {
            add(&[Action::NextMatch, Action::PrevMatch], "match", 2);
            add(&[Action::Dismiss], "clear search", 3);
        }
        add(&[Action::Follow], if state.log_view.following() { "pause" } else { "follow" }, 1);
        add(&[Action::LevelFilter], "level", 2);
        add(&[Action::Wrap], "wrap", 3);
        add(&[Action::NextPane], "pane", 2);
    } else {
        add(&[Action::Down, Action::Up], "move", 1);
        add(&[Action::NextPane], "pane", 2);
    }
    // Dev containers are Docker's.
    let docker = state.backend.kind == "docker";
    for action in [
        Action::Rebuild,
        Action::Deploy,
        Action::Promote,
        Action::PromoteFull,
        Action::Rollback,
        Action::Restart,
        Action::Stop,
    ] {
        if matches!(action, Action::Restart | Action::Stop) && !docker {
            continue;
        }
        add(&[action], action.short(), action_rank(focus, action));
    }
    add(&[Action::TeamScreen], "team", 6);
    add(&[Action::Command], "command", 8);
    add(&[Action::Help], "help", 0);
    add(&[Action::Quit], "quit", 0);
    entries
}

/// Why `action` is off on the selected service and a pane must say so:
/// the backend's access rules, or a build engine that went away.
pub fn pane_reason(state: &AppState, action: Action) -> Option<String> {
    if state.read_only {
        // The header says read-only; every such key is off for that reason.
        return None;
    }
    let service = state.selected_service()?;
    if let Some(reason) = service.denied_reason(action) {
        return Some(reason.to_owned());
    }
    let builds = matches!(action, Action::Rebuild | Action::RebuildDeploy);
    let docker_down = matches!(state.connections.get("docker"), Some(ConnectionState::Disconnected { .. }));
    (builds && docker_down).then(|| "no docker engine".to_owned())
}

/// Why `action` is off right now, if it is: read-only, nothing to
/// promote, no engine to build with, or what the backend denies.
pub fn why_disabled(state: &AppState, action: Action) -> Option<String> {
    if action.mutates() && state.read_only {
        return Some("read-only".into());
    }
    if let Some(reason) = pane_reason(state, action) {
        return Some(reason);
    }
    let service = state.selected_service();
    if matches!(action, Action::Promote | Action::PromoteFull) {
        if service.is_some_and(|s| !s.info.stage.uses_canary()) {
            return Some("prototypes have no canary to promote".into());
        }
        if service.is_none_or(|s| s.canary_weight() == 0) {
            return Some("no canary in flight".into());
        }
    }
    // Outside the simulated fleet, builds need a configured engine.
    let no_builder = !state.backend.simulated && !state.connections.contains_key("docker");
    if matches!(action, Action::Rebuild | Action::RebuildDeploy) && no_builder {
        return Some("no Docker engine configured for builds".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(keys: &str, what: &str, rank: u8, disabled: bool) -> Entry {
        Entry { keys: keys.into(), what: what.into(), rank, disabled }
    }

    #[test]
    fn short_lines_drop_whole_entries_disabled_and_least_important_first() {
        let entries = vec![
            entry("j/k", "move", 1, false),
            entry("p", "promote", 3, true),
            entry("d", "deploy", 3, false),
            entry("T", "team", 6, false),
            entry("?", "help", 0, false),
            entry("q", "quit", 0, false),
        ];
        let names = |width| fitting(entries.clone(), width).into_iter().map(|e| e.what).collect::<Vec<_>>();
        assert_eq!(names(200), ["move", "promote", "deploy", "team", "help", "quit"]);
        assert_eq!(names(16 + 10 + 10 + 8), ["move", "deploy", "team", "help", "quit"]);
        assert_eq!(names(16 + 10), ["move", "help", "quit"]);
        assert_eq!(names(3), ["help", "quit"], "help and quit stay, whatever the width");
    }
}
