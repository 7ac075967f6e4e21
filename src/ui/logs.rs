//! The logs pane: every pod of the service merged, a stable colour per pod,
//! canary lines marked, level filter, search highlights, wrap, and whether
//! the view follows the tail or is paused.
//!
//! Only the rows that fit are visited, walking back from the bottom line, so
//! a frame costs the same with 50 or 50,000 buffered lines.

use super::{pane_block, title};
use crate::domain::logs::{Level, LogLine, Track};
use crate::state::{AppState, Pane, Search, passes};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_width::UnicodeWidthChar;

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let service = state.selected_service();
    let view = &state.log_view;
    let name = service.map_or("", |s| s.info.name.as_str());
    let mode = match (view.anchor, service) {
        (None, _) => "following".to_string(),
        (Some(anchor), Some(s)) => {
            let newer = s.logs.next_seq().saturating_sub(anchor + 1);
            format!("paused, {newer} newer")
        }
        (Some(_), None) => "paused".to_string(),
    };
    let lines_count = service.map_or(0, |s| s.logs.len()).to_string() + " lines";
    let mut block = pane_block(title(&["Logs", name, &lines_count, &mode], theme), Pane::Logs, state, theme);
    let mut right = Vec::new();
    if let Some(level) = view.min_level {
        right.push(Span::styled(format!(" ≥{} ", level.as_str()), theme.warn));
    }
    if view.wrap {
        right.push(Span::styled(" wrap ", theme.dim));
    }
    if let Some(search) = &view.search {
        let position = search.position().map_or("-".to_string(), |p| p.to_string());
        let style = if search.matches.is_empty() { theme.bad } else { theme.accent };
        right.push(Span::styled(format!(" /{}  {position} of {} ", search.query, search.matches.len()), style));
    }
    if !right.is_empty() {
        block = block.title(Line::from(right).right_aligned());
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(service) = service else { return };
    if service.logs.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("no log lines yet", theme.dim)), inner);
        return;
    }
    let rows = visible_rows(state, service, inner.width as usize, inner.height as usize, theme);
    frame.render_widget(Paragraph::new(rows), inner);
}

fn visible_rows<'a>(
    state: &AppState,
    service: &'a crate::state::ServiceView,
    width: usize,
    height: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let view = &state.log_view;
    let upto = view.anchor.map_or(service.logs.next_seq(), |a| a + 1);
    let pod_width = (width / 4).clamp(10, 30);
    let mut rows: Vec<Line> = Vec::with_capacity(height);
    for line in service.logs.iter_back_from(upto).filter(|l| passes(l, view.min_level)) {
        if rows.len() >= height {
            break;
        }
        let current = view.search.as_ref().and_then(|s| s.current) == Some(line.seq);
        let spans = line_spans(line, &service.info.name, pod_width, view.search.as_ref(), current, theme);
        if view.wrap {
            let mut wrapped = wrap(spans, width);
            // Walking backwards: the last row of this line goes first.
            while let Some(row) = wrapped.pop() {
                if rows.len() >= height {
                    break;
                }
                rows.push(row);
            }
        } else {
            rows.push(Line::from(spans));
        }
    }
    rows.reverse();
    rows
}

fn line_spans<'a>(
    line: &'a LogLine,
    service: &str,
    pod_width: usize,
    search: Option<&Search>,
    current: bool,
    theme: &Theme,
) -> Vec<Span<'a>> {
    let level = line.level.unwrap_or(Level::Info);
    let level_style = match level {
        Level::Error => theme.bad,
        Level::Warn => theme.warn,
        Level::Info => theme.text,
        Level::Debug | Level::Trace => theme.dim,
    };
    let mark = match line.track {
        Track::Canary => Span::styled("◆ ", theme.canary),
        Track::Primary => Span::raw("  "),
    };
    let mut spans = vec![
        Span::styled(line.at.clock(), theme.dim),
        Span::raw(" "),
        // The pane's title names the service; the pod column shows the rest.
        Span::styled(
            fit_end(line.pod.strip_prefix(service).and_then(|p| p.strip_prefix('-')).unwrap_or(&line.pod), pod_width),
            theme.pod(&line.pod),
        ),
        Span::raw(" "),
        mark,
        Span::styled(format!("{:<5} ", level.as_str()), level_style),
    ];
    let text_style =
        if level >= Level::Warn { level_style.remove_modifier(ratatui::style::Modifier::BOLD) } else { theme.text };
    let mut split = line.fields_at.unwrap_or(line.text.len()).min(line.text.len());
    while !line.text.is_char_boundary(split) {
        split -= 1;
    }
    let matches = search.map(|s| s.find_all(&line.text)).unwrap_or_default();
    let highlight = if current { theme.current_match } else { theme.matched };
    let mut at = 0;
    // Cut points: field start and match edges, each piece styled once.
    let mut cuts: Vec<usize> = vec![0, split.min(line.text.len()), line.text.len()];
    for (start, end) in &matches {
        cuts.push(*start);
        cuts.push(*end);
    }
    cuts.sort_unstable();
    cuts.dedup();
    for &cut in cuts.iter().skip(1) {
        if cut <= at {
            continue;
        }
        let piece = &line.text[at..cut];
        let in_match = matches.iter().any(|(s, e)| *s <= at && cut <= *e);
        let style = if in_match {
            highlight
        } else if at >= split {
            theme.dim
        } else {
            text_style
        };
        spans.push(Span::styled(piece, style));
        at = cut;
    }
    spans
}

/// Keeps the end of a pod name, where its distinguishing suffix is.
fn fit_end(name: &str, width: usize) -> String {
    let count = name.chars().count();
    if count <= width {
        return format!("{name:<width$}");
    }
    let tail: String = name.chars().skip(count - (width - 1)).collect();
    format!("…{tail}")
}

/// Splits styled spans into rows of at most `width` cells.
fn wrap(spans: Vec<Span<'_>>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut rows: Vec<Line<'static>> = Vec::new();
    let mut row: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in spans {
        let style: Style = span.style;
        let mut piece = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                if !piece.is_empty() {
                    row.push(Span::styled(std::mem::take(&mut piece), style));
                }
                rows.push(Line::from(std::mem::take(&mut row)));
                used = 0;
            }
            piece.push(c);
            used += w;
        }
        if !piece.is_empty() {
            row.push(Span::styled(piece, style));
        }
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(Line::from(row));
    }
    rows
}
