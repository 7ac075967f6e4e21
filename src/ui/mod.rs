//! Drawing: a pure function of `AppState` into a ratatui `Frame`. One file
//! per pane; each only reads the state, never awaits, never locks.

pub mod canary;
pub mod header;
pub mod keybar;
pub mod layout;
pub mod logs;
pub mod overlay;
pub mod rollout;
pub mod services;
pub mod slo;
pub mod team;

use crate::action::Action;
use crate::state::{AppState, Pane};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Alignment;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &AppState, theme: &Theme) {
    let area = frame.area();
    let Some(areas) = layout::main(area) else {
        too_small(frame, theme);
        return;
    };
    if state.team_screen {
        team::draw(frame, area, state, theme);
        overlay::draw(frame, area, state, theme);
        return;
    }
    header::draw(frame, areas.header, state, theme);
    services::draw(frame, areas.services, state, theme);
    rollout::draw(frame, areas.rollout, state, theme);
    canary::draw(frame, areas.canary, state, theme);
    slo::draw(frame, areas.slo, state, theme);
    logs::draw(frame, areas.logs, state, theme);
    overlay::message_line(frame, areas.messages, state, theme);
    keybar::draw(frame, areas.keybar, state, theme);
    overlay::draw(frame, area, state, theme);
}

fn too_small(frame: &mut Frame, theme: &Theme) {
    let area = frame.area();
    let text = vec![
        Line::styled("terminal too small", theme.bad),
        Line::styled(
            format!("{}×{}, cockpit needs {}×{}", area.width, area.height, layout::MIN_WIDTH, layout::MIN_HEIGHT),
            theme.text,
        ),
        Line::styled("enlarge the window, or press q to quit", theme.dim),
    ];
    let top = area.height.saturating_sub(3) / 2;
    let rect = ratatui::layout::Rect { y: area.y + top, height: area.height.min(3), ..area };
    frame.render_widget(Paragraph::new(text).alignment(Alignment::Center), rect);
}

/// A pane's border, highlighted when focused.
pub fn pane_block<'a>(title: Line<'a>, pane: Pane, state: &AppState, theme: &Theme) -> Block<'a> {
    let focused = state.focus == pane && state.modal.is_none();
    Block::bordered().border_style(if focused { theme.border_focus } else { theme.border }).title(title)
}

/// ` Title · detail ` in pane-title style.
pub fn title<'a>(parts: &[&str], theme: &Theme) -> Line<'a> {
    let mut spans = vec![Span::raw(" ")];
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim));
        }
        spans.push(Span::styled(part.to_string(), if i == 0 { theme.accent } else { theme.text }));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// A horizontal bar of `width` cells filled to `ratio`, in eighths.
pub fn bar(ratio: f64, width: usize) -> (String, String) {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let ratio = if ratio.is_finite() { ratio.clamp(0.0, 1.0) } else { 0.0 };
    let eighths = (ratio * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let mut filled = "█".repeat(full);
    let mut used = full;
    if full < width && eighths % 8 > 0 {
        filled.push(PARTS[eighths % 8]);
        used += 1;
    }
    (filled, "░".repeat(width.saturating_sub(used)))
}

/// `99.95 %` with a precision that keeps the interesting digits.
pub fn percent(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    if (99.0..100.0).contains(&value) || value.abs() < 1.0 { format!("{value:.2} %") } else { format!("{value:.1} %") }
}

/// Cuts `text` to `width` cells, marking the cut with `…`.
pub fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return text.to_owned();
    }
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Pads or cuts to exactly `width` cells.
pub fn pad(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let cut = fit(text, width);
    let w = cut.width();
    format!("{cut}{}", " ".repeat(width.saturating_sub(w)))
}

/// Cuts `text` to `width` cells at a word boundary, marking the cut with
/// `…`; a first word wider than `width` is cut inside, with the mark. The
/// flag says whether anything was cut.
pub fn fit_words(text: &str, width: usize) -> (String, bool) {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= width {
        return (text.to_owned(), false);
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let candidate = if out.is_empty() { word.to_owned() } else { format!("{out} {word}") };
        // Room for the mark after the words kept.
        if candidate.width() + 1 > width {
            break;
        }
        out = candidate;
    }
    let kept = out.trim_end();
    if kept.is_empty() {
        return (fit(text, width), true);
    }
    (format!("{kept}…"), true)
}

/// `text` in rows of at most `width` cells, broken between words; a word
/// wider than a row is cut with `…`.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split_whitespace() {
        let word = if word.width() > width { fit(word, width) } else { word.to_owned() };
        if row.is_empty() {
            row = word;
        } else if row.width() + 1 + word.width() <= width {
            row.push(' ');
            row.push_str(&word);
        } else {
            rows.push(std::mem::replace(&mut row, word));
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

/// Why the keys of `actions` are off on the selected service, where a
/// pane must say so (the backend's access rules, a missing engine), each
/// reason once with its keys: `RBAC: may not … (d/b off)`, in rows of
/// `width` broken between words.
pub fn off_reasons(state: &AppState, actions: &[Action], width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for action in actions {
        let Some(reason) = keybar::pane_reason(state, *action) else { continue };
        let Some(key) = state.keymap.label(*action) else { continue };
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, keys)) => keys.push(key),
            None => groups.push((reason, vec![key])),
        }
    }
    groups
        .into_iter()
        .flat_map(|(reason, keys)| wrap_words(&format!("{reason} ({} off)", keys.join("/")), width))
        .map(|row| Line::styled(row, theme.warn))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_kept_whole() {
        assert_eq!(fit_words("canary 5 → 25 %", 40), ("canary 5 → 25 %".to_owned(), false));
        assert_eq!(fit_words("checkout promote refused: canary failing", 24), ("checkout promote…".to_owned(), true));
        assert_eq!(fit_words("supercalifragilistic", 6), ("super…".to_owned(), true));
        assert_eq!(
            wrap_words("RBAC: may not update deployments.apps in shop", 22),
            ["RBAC: may not update", "deployments.apps in", "shop"]
        );
        assert_eq!(wrap_words("", 10), [""]);
    }
}
