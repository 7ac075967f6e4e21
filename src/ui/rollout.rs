//! The rollout pane: phase, generation, replica counts with a progress bar,
//! revision history, conditions, and the build in progress.

use super::{bar, fit, off_reasons, pad, pane_block, title};
use crate::action::Action;
use crate::domain::rollout::RolloutPhase;
use crate::event::ConnectionState;
use crate::state::{AppState, Pane};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// The keys whose work this pane shows: why they are off is said here.
const ACTS_HERE: [Action; 5] = [Action::Rebuild, Action::Deploy, Action::Rollback, Action::Restart, Action::Stop];

pub fn draw(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let service = state.selected_service();
    let name = service.map_or("", |s| s.info.name.as_str());
    let block = pane_block(title(&["Rollout", name], theme), Pane::Rollout, state, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let height = inner.height as usize;

    let Some(service) = service else {
        no_services(frame, inner, state, theme);
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let build_line = service.build.as_ref().map(|b| {
        let elapsed = b.finished.unwrap_or(state.now).since(b.started);
        let (text, style) = match (&b.tag, &b.error) {
            (Some(tag), _) => (format!("built {tag} in {:.1}s", elapsed.as_secs_f64()), theme.ok),
            (None, Some(error)) => (format!("build failed at step {}/{}: {error}", b.step, b.of), theme.bad),
            _ => {
                let (done, todo) = bar(f64::from(b.step) / f64::from(b.of.max(1)), 10);
                (format!("building step {}/{} {done}{todo} {:.1}s", b.step, b.of, elapsed.as_secs_f64()), theme.accent)
            }
        };
        Line::styled(fit(&text, width), style)
    });

    let Some(rollout) = &service.rollout else {
        lines.push(Line::styled("no rollout data yet", theme.dim));
        lines.extend(off_reasons(state, &ACTS_HERE, width, theme));
        lines.extend(build_line);
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    };
    let (glyph, style) = match rollout.phase {
        RolloutPhase::Complete => ("✓ Complete", theme.ok),
        RolloutPhase::Progressing => ("⟳ Progressing", theme.accent),
        RolloutPhase::Failed => ("✗ Failed", theme.bad),
        RolloutPhase::Paused => ("‖ Paused", theme.warn),
    };
    let revision = match (rollout.revisions.first(), rollout.revisions.get(1)) {
        (Some(new), Some(old)) if rollout.phase == RolloutPhase::Progressing => {
            format!("rev {} → {}", old.number, new.number)
        }
        (Some(new), _) => format!("rev {}", new.number),
        _ => String::new(),
    };
    let generation = if rollout.generation_observed() {
        Span::styled(format!("gen {} seen", rollout.generation), theme.dim)
    } else {
        Span::styled(format!("gen {} not seen", rollout.generation), theme.warn)
    };
    lines.push(Line::from(vec![
        Span::styled(glyph, style),
        Span::raw("  "),
        Span::styled(revision, theme.text),
        Span::raw("  "),
        generation,
    ]));
    let r = rollout.replicas;
    let counts = if width >= 42 {
        format!("desired {}  updated {}  ready {}  available {}", r.desired, r.updated, r.ready, r.available)
    } else {
        format!("updated {}/{}  ready {}  avail {}", r.updated, r.desired, r.ready, r.available)
    };
    lines.push(Line::styled(fit(&counts, width), theme.text));
    let bar_width = width.saturating_sub(22).clamp(4, 30);
    let (done, todo) = bar(f64::from(r.updated) / f64::from(r.desired.max(1)), bar_width);
    lines.push(Line::from(vec![
        Span::styled(done, style),
        Span::styled(todo, theme.faint),
        Span::styled(format!(" {}", fit(&rollout.explain(), width.saturating_sub(bar_width + 1))), theme.dim),
    ]));

    // What must stay: why keys are off, the build line and the conditions;
    // revisions fill the rest.
    let conditions = conditions_line(rollout, width, theme);
    let off = off_reasons(state, &ACTS_HERE, width, theme);
    let reserved = lines.len() + 1 + usize::from(build_line.is_some()) + off.len();
    let room = height.saturating_sub(reserved);
    if room >= 2 {
        let shown = &rollout.revisions[..rollout.revisions.len().min(room - 1)];
        // When each revision was made, as a time (today) or a date: unlike
        // an age, it stays true on a screen that sleeps while nothing changes.
        let ages: Vec<String> = shown.iter().map(|rev| made_at(state.now, rev.created)).collect();
        let age_width = ages.iter().map(|a| a.chars().count()).chain([4]).max().unwrap_or(4);
        // `REV  IMAGE MADE`: the image gives way, never the gap before the time.
        let image_width = width.saturating_sub(5 + 1 + age_width);
        lines.push(Line::styled(format!("REV  {} MADE", pad("IMAGE", image_width)), theme.dim));
        for (rev, age) in shown.iter().zip(ages) {
            let current = rev.image == rollout.image;
            lines.push(Line::from(vec![
                Span::styled(format!("{:>3}  ", rev.number), theme.dim),
                Span::styled(pad(&rev.image, image_width), if current { theme.text } else { theme.dim }),
                Span::styled(format!(" {age}"), theme.dim),
            ]));
        }
    }
    lines.push(conditions);
    lines.extend(off);
    lines.extend(build_line);
    frame.render_widget(Paragraph::new(lines), inner);
}

fn conditions_line<'a>(rollout: &crate::domain::RolloutStatus, width: usize, theme: &Theme) -> Line<'a> {
    let mut spans = Vec::new();
    for c in &rollout.conditions {
        let (mark, style) = if c.ok { ("✓", theme.ok) } else { ("✗", theme.bad) };
        let text = if c.ok { format!("{} {mark}  ", c.kind) } else { format!("{} {mark} {}  ", c.kind, c.reason) };
        spans.push(Span::styled(text, style));
    }
    let failing = rollout.conditions.iter().find(|c| !c.ok && !c.message.is_empty());
    if let Some(c) = failing {
        spans.push(Span::styled(c.message.clone(), theme.dim));
    }
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if text.chars().count() > width {
        // Too long: keep the styles of the first spans, cut the text.
        let mut used = 0;
        let mut kept = Vec::new();
        for span in spans {
            let w = span.content.chars().count();
            if used + w > width {
                kept.push(Span::styled(fit(&span.content, width - used), span.style));
                break;
            }
            used += w;
            kept.push(span);
        }
        return Line::from(kept);
    }
    Line::from(spans)
}

/// With no service to show, the pane says why: each source's problem in
/// full (the header has room for a few words only), or that it waits.
fn no_services(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let mut lines = Vec::new();
    for (source, connection) in &state.connections {
        match connection {
            ConnectionState::Disconnected { since, reason } => {
                lines.push(Line::styled(format!("✗ {source}, since {}:", since.clock()), theme.bad));
                lines.push(Line::styled(reason.clone(), theme.text));
            }
            ConnectionState::Connecting => lines.push(Line::styled(format!("○ connecting to {source}…"), theme.dim)),
            ConnectionState::Live => lines.push(Line::styled(
                format!(
                    "● {source} is live, but no services were found: label Deployments with \
                     cockpit.dev/service, or list them as [[service]] in cockpit.toml"
                ),
                theme.dim,
            )),
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled("no services yet", theme.dim));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

/// `14:05` for a revision made within the last day, else `11-28` (UTC).
fn made_at(now: crate::domain::Timestamp, at: crate::domain::Timestamp) -> String {
    if now.since(at) < crate::domain::time::DAY {
        at.clock()[..5].to_owned()
    } else {
        at.rfc3339().get(5..10).unwrap_or("?").to_owned()
    }
}

#[cfg(test)]
mod made_at_tests {
    use super::made_at;
    use crate::domain::Timestamp;
    use crate::domain::time::{DAY, HOUR};

    #[test]
    fn a_revision_is_shown_by_when_it_was_made_which_does_not_go_stale() {
        // 2026-11-28T14:05:00Z
        let made = Timestamp(1_795_702_380_000);
        let shown = made_at(made.plus(HOUR), made);
        assert_eq!(shown.len(), 5);
        assert_eq!(shown, made_at(made.plus(crate::domain::Millis(5 * HOUR.0)), made), "the same hours later");
        assert_eq!(made_at(made.plus(crate::domain::Millis(3 * DAY.0)), made), made.rfc3339()[5..10]);
    }
}
