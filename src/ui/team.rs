//! The team screen: the board a team watches together during an incident.
//! Every service as a row, grouped by stage and worst first; what changed,
//! newest first; and cascades, so the root cause stands out from its
//! victims. It offers no action keys.

use super::services::health;
use super::slo::status_style;
use super::{fit, pad, percent};
use crate::domain::rollout::RolloutPhase;
use crate::domain::slo::SloStatus;
use crate::state::{AppState, ServiceView};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [header, body, keys] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    draw_header(frame, header, state, theme);
    let [board, side] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body);
    let [changes, cascade] = Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(side);
    draw_board(frame, board, state, theme);
    draw_changes(frame, changes, state, theme);
    draw_cascades(frame, cascade, state, theme);
    let mut hint = vec![
        Span::styled(" T", theme.accent),
        Span::styled(" main screen ", theme.dim),
        Span::styled(" ?", theme.accent),
        Span::styled(" help ", theme.dim),
        Span::styled(" q", theme.accent),
        Span::styled(" quit ", theme.dim),
    ];
    hint.push(Span::styled("  no actions on this screen", theme.faint));
    frame.render_widget(Paragraph::new(Line::from(hint)), keys);
}

fn draw_header(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let team = state.team.as_deref().unwrap_or("");
    let mut left = vec![Span::styled(" TEAM SCREEN", theme.accent)];
    if !team.is_empty() {
        left.push(Span::styled(format!(" · {team}"), theme.text));
    }
    if state.read_only {
        left.push(Span::styled(" · read-only", theme.warn));
    }
    left.push(Span::styled(format!(" · {} UTC", state.now.clock()), theme.dim));
    let counts = state.health_counts();
    let (paging, impacted) = (counts.paging, counts.impacted);
    let mut right = vec![
        Span::styled(format!("{paging} paging"), if paging > 0 { theme.bad } else { theme.dim }),
        Span::styled(" · ", theme.dim),
    ];
    if counts.ticket > 0 {
        right.push(Span::styled(format!("{} ticket", counts.ticket), theme.warn));
        right.push(Span::styled(" · ", theme.dim));
    }
    right.push(Span::styled(format!("{impacted} impacted"), if impacted > 0 { theme.warn } else { theme.dim }));
    right.push(Span::styled(" · ", theme.dim));
    right.push(Span::styled(format!("{} ok", counts.ok), theme.ok));
    // Unknown is never folded into ok: no data is not health.
    if counts.unknown > 0 {
        right.push(Span::styled(" · ", theme.dim));
        right.push(Span::styled(format!("{} unknown", counts.unknown), theme.warn));
    }
    right.push(Span::raw(" "));
    if state.backend.simulated {
        right.push(Span::styled(" SIMULATED ", theme.simulated));
    }
    right.push(Span::raw(" "));
    super::header::split_line(frame, area, Line::from(left), Line::from(right));
}

fn draw_board(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let block =
        Block::bordered().border_style(theme.border).title(Line::styled(" Services, worst first ", theme.accent));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let groups = state.board();
    let rows_needed: usize = groups.iter().map(|(_, m)| m.len() + 1).sum();
    // Big terminals get a second, dimmer line per service: legible from
    // across a room without losing the details.
    let roomy = rows_needed * 2 <= inner.height as usize;
    let width = inner.width as usize;
    let mut lines = Vec::new();
    for (stage, members) in groups {
        lines.push(Line::styled(stage.title(), theme.dim.add_modifier(Modifier::BOLD)));
        for i in members {
            let service = &state.services[i];
            lines.push(tile(state, service, width, theme));
            if roomy {
                lines.push(detail(service, width, theme));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn tile<'a>(state: &AppState, service: &ServiceView, width: usize, theme: &Theme) -> Line<'a> {
    let (glyph, glyph_style) = health(state, service, theme);
    let name_width = (width / 4).clamp(10, 18);
    let mut spans = vec![
        Span::styled(format!(" {glyph} "), glyph_style),
        Span::styled(pad(&service.info.name, name_width), theme.text.add_modifier(Modifier::BOLD)),
    ];
    let paging = service.slo_status() == Some(SloStatus::Page);
    if let (false, Some(culprit)) = (paging, state.impacted_by(&service.info.name)) {
        spans.push(Span::styled(format!(" impacted by {culprit}"), theme.warn));
        return Line::from(spans);
    }
    match &service.slo {
        Some(report) => {
            let status = report.status.as_str().to_uppercase();
            spans.push(Span::styled(format!(" {status:<6}"), status_style(report.status, theme)));
            let burn_style = if report.fast_burn() > report.spec.rules()[0].threshold { theme.bad } else { theme.text };
            spans.push(Span::styled(format!(" burn {:>5.1}×", report.fast_burn()), burn_style));
            let budget = report.budget_left * 100.0;
            let budget_style = if budget <= 0.0 {
                theme.bad
            } else if budget < 25.0 {
                theme.warn
            } else {
                theme.text
            };
            spans.push(Span::styled(format!("  budget {budget:>3.0} %"), budget_style));
        }
        None => spans.push(Span::styled(" ?      no SLO data", theme.warn)),
    }
    let weight = service.canary_weight();
    if weight > 0 {
        let failing = service.live_verdict().is_some_and(|v| v.is_failing());
        let style = if failing { theme.bad } else { theme.canary };
        spans.push(Span::styled(format!("  canary {weight} %{}", if failing { " failing" } else { "" }), style));
    } else if let Some(r) = service.rollout.as_ref().filter(|r| r.phase != RolloutPhase::Complete) {
        let style = if r.phase == RolloutPhase::Failed { theme.bad } else { theme.accent };
        spans.push(Span::styled(format!("  rollout {}", r.phase.as_str()), style));
    }
    if paging && let Some(culprit) = state.impacted_by(&service.info.name) {
        spans.push(Span::styled(format!("  ← {culprit}"), theme.warn));
    }
    clip(spans, width)
}

fn detail<'a>(service: &ServiceView, width: usize, theme: &Theme) -> Line<'a> {
    let mut parts = Vec::new();
    if let Some(owner) = &service.info.owner {
        parts.push(owner.clone());
    }
    if let Some(r) = &service.rollout {
        parts.push(super::canary::version(&r.image));
    }
    if let Some(report) = &service.slo {
        parts.push(format!("SLI {} of {} % over {}", percent(report.sli), report.spec.objective, report.spec.window));
    }
    if let Some(v) = service.live_verdict() {
        parts.push(v.reason().split("; ").next().unwrap_or("").to_string());
    }
    Line::styled(fit(&format!("     {}", parts.join(" · ")), width), theme.dim)
}

fn clip<'a>(spans: Vec<Span<'a>>, width: usize) -> Line<'a> {
    let mut used = 0;
    let mut kept = Vec::new();
    for span in spans {
        let w = span.width();
        if used + w > width {
            break;
        }
        used += w;
        kept.push(span);
    }
    Line::from(kept)
}

fn draw_changes(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let block = Block::bordered().border_style(theme.border).title(Line::styled(" What changed ", theme.accent));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    if state.timeline.is_empty() {
        frame.render_widget(Paragraph::new(Line::styled("no changes recorded", theme.dim)), inner);
        return;
    }
    let lines: Vec<Line> = state
        .timeline
        .iter()
        .take(inner.height as usize)
        .map(|change| {
            let paging = state.service(&change.service).and_then(|s| s.slo_status()) == Some(SloStatus::Page);
            let name_style = if paging { theme.bad } else { theme.text };
            let text = format!("{} ({})", change.summary, change.user);
            let used = 10 + 14 + change.action.len() + 1;
            Line::from(vec![
                Span::styled(format!("{:>8}  ", when(state.now, change.at)), theme.dim),
                Span::styled(pad(&change.service, 13), name_style),
                Span::raw(" "),
                Span::styled(format!("{} ", change.action), theme.accent),
                Span::styled(fit(&text, width.saturating_sub(used)), Style::new().patch(theme.text)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_cascades(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let block = Block::bordered().border_style(theme.border).title(Line::styled(" Cascade ", theme.accent));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let cascades = state.cascades();
    if cascades.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled("no paging dependency drags another service", theme.dim)),
            inner,
        );
        return;
    }
    let mut lines = Vec::new();
    for (root, victims) in cascades {
        let root = &state.services[root];
        let mut spans =
            vec![Span::styled(format!("{} ✗ root cause", root.info.name), theme.bad), Span::styled(" ← ", theme.dim)];
        for (k, v) in victims.iter().enumerate() {
            if k > 0 {
                spans.push(Span::styled(", ", theme.dim));
            }
            let (glyph, style) = health(state, &state.services[*v], theme);
            spans.push(Span::styled(format!("{} {glyph}", state.services[*v].info.name), style));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}

/// Today's changes by clock time, older ones by age.
fn when(now: crate::domain::Timestamp, at: crate::domain::Timestamp) -> String {
    let age = now.since(at);
    if age < crate::domain::time::DAY { at.clock() } else { format!("{} ago", age.age()) }
}
