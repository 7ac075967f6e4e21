//! What floats above the panes: help, prompts (deploy image, search, the
//! typed-name gate), y/n confirmations, and toasts.

use super::fit;
use super::layout::centered;
use crate::action::Action;
use crate::state::{AppState, Modal, PromptPurpose, ToastKind};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    toasts(frame, area, state, theme);
    match &state.modal {
        None => {}
        Some(Modal::Help) => help(frame, area, state, theme),
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
                        true => "ctx NAME: switch the Kubernetes context".to_string(),
                        false => format!("ctx NAME: switch context ({})", state.contexts.join(", ")),
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

fn help(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut entries = Vec::new();
    for action in Action::ALL {
        let keys: Vec<String> = state.keymap.keys_for(action).iter().map(|k| k.to_string()).collect();
        if keys.is_empty() {
            continue;
        }
        let disabled = action.mutates() && state.read_only;
        let style = if disabled { theme.faint } else { theme.text };
        let mut text = action.describe().to_string();
        if disabled {
            text.push_str(" (read-only)");
        }
        entries.push((keys.join(" "), text, style));
    }
    let policy = [
        "prototype: deploy replaces the primary at once",
        "production: deploy starts a canary; p steps it, P promotes fully",
        "mission-critical: promotion refused while the canary fails or",
        "  the SLO pages, unless you type the service's name",
    ];
    let room = area.height.saturating_sub(4) as usize;
    let one_column = entries.len() + 1 + policy.len() <= room;
    let width = if one_column { 72.min(area.width.saturating_sub(4)) } else { area.width.saturating_sub(2) };
    let entry = |(keys, text, style): &(String, String, ratatui::style::Style), column: usize| {
        let key_width = 14.min(column / 3);
        vec![
            Span::styled(format!("{:<w$} ", fit(keys, key_width), w = key_width), theme.accent),
            Span::styled(format!("{:<w$}", fit(text, column - key_width - 1), w = column - key_width - 1), *style),
        ]
    };
    let mut lines = Vec::new();
    if one_column {
        let column = width.saturating_sub(2) as usize;
        lines.extend(entries.iter().map(|e| Line::from(entry(e, column))));
        lines.push(Line::raw(""));
        lines.extend(policy.iter().map(|p| Line::styled(*p, theme.dim)));
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
        if lines.len() + 1 + policy.len() <= room {
            lines.push(Line::raw(""));
            lines.extend(policy.iter().map(|p| Line::styled(*p, theme.dim)));
        }
    }
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = Block::bordered().border_style(theme.border_focus).title(Line::styled(" Keys ", theme.accent));
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

fn toasts(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let width = (area.width / 2).max(30).min(area.width);
    for (i, toast) in state.toasts.iter().rev().enumerate() {
        let y = area.y + 1 + i as u16;
        if y + 1 >= area.y + area.height {
            break;
        }
        let style = match toast.kind {
            ToastKind::Info => theme.text,
            ToastKind::Success => theme.ok,
            ToastKind::Error => theme.bad,
        };
        let text = fit(&toast.text, width as usize - 2);
        let w = (text.chars().count() as u16 + 2).min(width);
        let rect = Rect { x: area.x + area.width - w, y, width: w, height: 1 };
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(Line::styled(format!(" {text} "), style.add_modifier(ratatui::style::Modifier::REVERSED))),
            rect,
        );
    }
}
