//! What floats above the panes: help, the recent messages, prompts
//! (deploy image, search, the typed-name gate) and y/n confirmations; and
//! the message line, which floats over nothing: it has a row of its own
//! above the key bar (on the team screen, the free end of its bottom row).

use super::layout::centered;
use super::{fit, fit_words, keybar, wrap_words};
use crate::action::Action;
use crate::state::{AppState, Message, Modal, PromptPurpose, ToastKind};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    if state.team_screen {
        team_message(frame, area, state, theme);
    }
    match &state.modal {
        None => {}
        Some(Modal::Help) => help(frame, area, state, theme),
        Some(Modal::Messages) => messages(frame, area, state, theme),
        Some(Modal::Confirm { question, .. }) => {
            let lines = vec![
                Line::styled(question.clone(), theme.text),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", theme.accent),
                    Span::styled(" yes   ", theme.dim),
                    Span::styled("n", theme.accent),
                    Span::styled(" no", theme.dim),
                ]),
            ];
            boxed(frame, area, " Confirm ", lines, theme);
        }
        Some(Modal::Prompt { purpose, input }) => {
            let (heading, hint) = match purpose {
                PromptPurpose::Search => {
                    (" Search logs ".to_string(), "smart case: a capital letter makes it exact".to_string())
                }
                PromptPurpose::DeployImage { service } => {
                    let stage = state.service(service).map(|s| s.info.stage);
                    let how = match stage {
                        Some(s) if s.uses_canary() => "starts a canary at the first step",
                        _ => "replaces the primary at once (prototype)",
                    };
                    (format!(" Deploy {service} "), format!("image to deploy; {how}"))
                }
                PromptPurpose::Command => {
                    let hint = match state.contexts.is_empty() {
                        true => "ctx NAME: switch the Kubernetes context; messages: the recent messages".to_string(),
                        false => format!(
                            "ctx NAME: switch context ({}); messages: the recent messages",
                            state.contexts.join(", ")
                        ),
                    };
                    (" Command ".to_string(), hint)
                }
                PromptPurpose::TypeName { request, reason } => (
                    format!(" Forced {} of {} ", request.op.name(), request.service),
                    format!("refused: {reason}. Type {} to force it (audited as forced).", request.service),
                ),
            };
            let lines = vec![
                Line::styled(hint, theme.dim),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("> ", theme.accent),
                    Span::styled(input.clone(), theme.text),
                    Span::styled("█", theme.accent),
                ]),
            ];
            boxed(frame, area, &heading, lines, theme);
        }
    }
}

fn boxed(frame: &mut Frame, area: Rect, heading: &str, lines: Vec<Line>, theme: &Theme) {
    let width = area.width.saturating_sub(8).min(72);
    let text_width = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(text_width).max(1)).sum();
    let rect = centered(area, width, rows as u16 + 2);
    frame.render_widget(Clear, rect);
    let block =
        Block::bordered().border_style(theme.border_focus).title(Line::styled(heading.to_string(), theme.accent));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), rect);
}

fn kind_style(kind: ToastKind, theme: &Theme) -> Style {
    match kind {
        ToastKind::Info => theme.text,
        ToastKind::Success => theme.ok,
        ToastKind::Error => theme.bad,
    }
}

/// The newest message on its own line: cut between words when long, with
/// where the full text is (`:messages`) when cut or when others are live.
pub fn message_line(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(newest) = state.toasts.last() else { return };
    let spans =
        message_spans(newest.kind, &newest.text, state.toasts.len() - 1, ":messages", area.width as usize, theme);
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn message_spans(
    kind: ToastKind,
    text: &str,
    others: usize,
    where_all: &str,
    width: usize,
    theme: &Theme,
) -> Vec<Span<'static>> {
    let more = match others {
        0 => String::new(),
        n => format!("  +{n} more: {where_all}"),
    };
    let room = width.saturating_sub(1);
    let (shown, hint) = if text.width() + more.width() <= room {
        (text.to_owned(), more)
    } else {
        let hint = if more.is_empty() { format!("  {where_all}") } else { more };
        let text_room = room.saturating_sub(hint.width());
        if text_room < 12 {
            // No room for words worth reading: say where they are.
            let count = others + 1;
            let told = format!("{count} message{}: {where_all}", if count == 1 { "" } else { "s" });
            return vec![Span::raw(" "), Span::styled(fit(&told, room), kind_style(kind, theme))];
        }
        (fit_words(text, text_room).0, hint)
    };
    vec![Span::raw(" "), Span::styled(shown, kind_style(kind, theme)), Span::styled(hint, theme.dim)]
}

/// The team screen's rows are its own: its newest message goes where its
/// bottom row is blank, after the keys.
fn team_message(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(newest) = state.toasts.last() else { return };
    if area.height == 0 {
        return;
    }
    let y = area.bottom() - 1;
    let buffer = frame.buffer_mut();
    let used =
        (area.left()..area.right()).rev().find(|&x| buffer[(x, y)].symbol() != " ").map_or(area.left(), |x| x + 1);
    let start = used + 2;
    if start + 12 > area.right() {
        return;
    }
    let width = (area.right() - start) as usize;
    let spans = message_spans(newest.kind, &newest.text, state.toasts.len() - 1, "? help", width, theme);
    frame.render_widget(Paragraph::new(Line::from(spans)), Rect { x: start, y, width: width as u16, height: 1 });
}

/// A message in rows of `width`: its time, then its text between words,
/// continued under the text.
fn message_rows(message: &Message, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let time = message.at.clock();
    let indent = time.width() + 1;
    let style = kind_style(message.kind, theme);
    wrap_words(&message.text, width.saturating_sub(indent).max(8))
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let lead = if i == 0 { format!("{time} ") } else { " ".repeat(indent) };
            Line::from(vec![Span::styled(lead, theme.dim), Span::styled(row, style)])
        })
        .collect()
}

/// `:messages`: every recent message in full, newest first.
fn messages(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let width = area.width.saturating_sub(4).min(110);
    let inner = width.saturating_sub(2) as usize;
    let room = area.height.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    let mut shown = 0;
    for message in &state.messages {
        let rows = message_rows(message, inner, theme);
        // Leave a row to say how many did not fit.
        let last = shown + 1 == state.messages.len();
        if lines.len() + rows.len() + usize::from(!last) > room {
            break;
        }
        lines.extend(rows);
        shown += 1;
    }
    if state.messages.is_empty() {
        lines.push(Line::styled("no messages yet", theme.dim));
    } else if shown < state.messages.len() {
        lines.push(Line::styled(format!("… {} older not shown", state.messages.len() - shown), theme.dim));
    }
    let rect = centered(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = Block::bordered()
        .border_style(theme.border_focus)
        .title(Line::styled(" Messages, newest first ", theme.accent));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

/// The help: the keys of the screen it is opened on, why the disabled
/// ones are off, how each stage deploys (main screen), recent messages.
fn help(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let team = state.team_screen;
    let actions: Vec<Action> = if team {
        // The board offers no actions; these are all it answers to.
        vec![Action::TeamScreen, Action::Dismiss, Action::Help, Action::Quit]
    } else {
        Action::ALL.to_vec()
    };
    let mut entries = Vec::new();
    let mut off: Vec<(String, Vec<String>)> = Vec::new();
    for action in actions {
        let keys: Vec<String> = state.keymap.keys_for(action).iter().map(|k| k.to_string()).collect();
        if keys.is_empty() {
            continue;
        }
        let reason = if team { None } else { keybar::why_disabled(state, action) };
        let style = if reason.is_some() { theme.faint } else { theme.text };
        let mut text = match (team, action) {
            (true, Action::TeamScreen) => "back to the main screen".to_string(),
            (true, Action::Dismiss) => "dismiss messages".to_string(),
            _ => action.describe().to_string(),
        };
        match reason {
            Some(r) if r == "read-only" => text.push_str(" (read-only)"),
            Some(r) => {
                let key = state.keymap.label(action).unwrap_or_else(|| keys[0].clone());
                match off.iter_mut().find(|(reason, _)| *reason == r) {
                    Some((_, keys)) => keys.push(key),
                    None => off.push((r, vec![key])),
                }
            }
            None => {}
        }
        entries.push((keys.join(" "), text, style));
    }
    let off: Vec<String> = off.into_iter().map(|(reason, keys)| format!("{} off: {reason}", keys.join("/"))).collect();
    let policy: &[&str] = if team {
        &[]
    } else {
        &[
            "prototype: deploy replaces the primary at once",
            "production: deploy starts a canary; p steps it, P promotes fully",
            "mission-critical: promotion refused while the canary fails or",
            "  the SLO pages, unless you type the service's name",
        ]
    };
    let room = area.height.saturating_sub(4) as usize;
    let one_column = entries.len() + 1 + off.len() <= room;
    // Wide enough for a reason in one piece where the screen allows.
    let widest = off.iter().map(|r| r.width() as u16 + 2).max().unwrap_or(0);
    let width =
        if one_column { 72.max(widest).min(area.width.saturating_sub(4)) } else { area.width.saturating_sub(2) };
    let inner = width.saturating_sub(2) as usize;
    let entry = |(keys, text, style): &(String, String, ratatui::style::Style), column: usize| {
        let key_width = 14.min(column / 3);
        vec![
            Span::styled(format!("{:<w$} ", fit(keys, key_width), w = key_width), theme.accent),
            Span::styled(format!("{:<w$}", fit(text, column - key_width - 1), w = column - key_width - 1), *style),
        ]
    };
    let mut lines = Vec::new();
    if one_column {
        lines.extend(entries.iter().map(|e| Line::from(entry(e, inner))));
    } else {
        // Short terminals: two columns, every key still listed.
        let column = (width.saturating_sub(3) / 2) as usize;
        let half = entries.len().div_ceil(2);
        for row in 0..half {
            let mut spans = entry(&entries[row], column);
            if let Some(right) = entries.get(row + half) {
                spans.push(Span::raw(" "));
                spans.extend(entry(right, column));
            }
            lines.push(Line::from(spans));
        }
    }
    // Then, while there is room: why keys are off, the stages, the messages.
    let off: Vec<Line> = off.iter().flat_map(|r| wrap_words(r, inner)).map(|r| Line::styled(r, theme.warn)).collect();
    let section = |lines: &mut Vec<Line<'static>>, rows: Vec<Line<'static>>| {
        if !rows.is_empty() && lines.len() + 1 + rows.len() <= room {
            lines.push(Line::raw(""));
            lines.extend(rows);
        }
    };
    section(&mut lines, off);
    section(&mut lines, policy.iter().map(|p| Line::styled(*p, theme.dim)).collect());
    let heading = if team { "recent messages" } else { "recent messages (:messages lists them all)" };
    let mut recent = vec![Line::styled(heading, theme.dim)];
    for message in state.messages.iter().take(3) {
        let rows = message_rows(message, inner, theme);
        if lines.len() + 1 + recent.len() + rows.len() > room {
            break;
        }
        recent.extend(rows);
    }
    if recent.len() > 1 {
        section(&mut lines, recent);
    }
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::bordered().border_style(theme.border_focus).title(Line::styled(" Keys ", theme.accent));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}
