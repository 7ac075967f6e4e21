//! Where each pane goes for a given terminal size. Pure geometry, shared by
//! drawing and by mouse handling in `update`, so a click always lands on
//! what was drawn.

use crate::state::Pane;
use ratatui::layout::{Constraint, Layout, Rect};

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainAreas {
    pub header: Rect,
    pub services: Rect,
    pub rollout: Rect,
    pub canary: Rect,
    pub slo: Rect,
    pub logs: Rect,
    /// The newest message, on a line of its own above the key bar.
    pub messages: Rect,
    pub keybar: Rect,
}

impl MainAreas {
    /// The service list inside its border.
    pub fn services_inner(&self) -> Rect {
        inner(self.services)
    }

    pub fn panes(&self) -> [(Pane, Rect); 5] {
        [
            (Pane::Services, self.services),
            (Pane::Rollout, self.rollout),
            (Pane::Canary, self.canary),
            (Pane::Slo, self.slo),
            (Pane::Logs, self.logs),
        ]
    }
}

pub fn inner(rect: Rect) -> Rect {
    Rect {
        x: rect.x.saturating_add(1),
        y: rect.y.saturating_add(1),
        width: rect.width.saturating_sub(2),
        height: rect.height.saturating_sub(2),
    }
}

/// The main screen's areas, or `None` when the terminal is too small.
pub fn main(area: Rect) -> Option<MainAreas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let [header, body, messages, keybar] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1), Constraint::Length(1)])
            .areas(area);
    let list_width = (area.width / 6).clamp(24, 32);
    let [services, right] = Layout::horizontal([Constraint::Length(list_width), Constraint::Min(0)]).areas(body);
    let (top, slo) = match body.height {
        40.. => (11, 7),
        30.. => (10, 6),
        _ => (8, 5),
    };
    let [top, slo, logs] =
        Layout::vertical([Constraint::Length(top), Constraint::Length(slo), Constraint::Min(3)]).areas(right);
    let [rollout, canary] = Layout::horizontal([Constraint::Percentage(46), Constraint::Percentage(54)]).areas(top);
    Some(MainAreas { header, services, rollout, canary, slo, logs, messages, keybar })
}

/// How many log rows fit, for paging.
pub fn log_rows(width: u16, height: u16) -> u16 {
    main(Rect::new(0, 0, width, height)).map_or(1, |a| inner(a.logs).height)
}

/// A centred box for overlays.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}
