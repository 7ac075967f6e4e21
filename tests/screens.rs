//! The screen as a user sees it: full-screen snapshots of the simulated
//! fleet at two sizes, single panes into a buffer, colour spot checks, and
//! the too-small message.

mod common;

use cockpit::action::Key;
use cockpit::config::Scenario;
use cockpit::domain::Millis;
use cockpit::state::Msg;
use cockpit::theme::Theme;
use common::{Harness, buffer_text, masked, render};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

fn settled(scenario: Scenario) -> Harness {
    let mut h = Harness::new(scenario);
    h.advance(Millis(10_000));
    h
}

#[test]
fn calm_fleet_at_160x45() {
    let h = settled(Scenario::Calm);
    insta::assert_snapshot!(masked(&h.screen(160, 45)));
}

#[test]
fn bad_canary_at_160x45() {
    let h = settled(Scenario::BadCanary);
    insta::assert_snapshot!(masked(&h.screen(160, 45)));
}

#[test]
fn bad_canary_at_80x24() {
    let h = settled(Scenario::BadCanary);
    insta::assert_snapshot!(masked(&h.screen(80, 24)));
}

#[test]
fn dependency_failure_at_120x36() {
    let h = settled(Scenario::DependencyFailure);
    insta::assert_snapshot!(masked(&h.screen(120, 36)));
}

#[test]
fn help_overlay_lists_every_bound_key() {
    let mut h = settled(Scenario::Calm);
    h.send(Msg::Key(Key::char('?')));
    let screen = h.screen(100, 40);
    for needle in ["promote one step", "roll back", "search the logs", "ctrl-c", "shift-tab"] {
        assert!(screen.contains(needle), "help lacks {needle}:\n{screen}");
    }
    // Any key closes it and does nothing else.
    h.send(Msg::Key(Key::char('q')));
    assert!(h.state.modal.is_none());
    assert!(!h.state.quitting);
}

#[test]
fn the_simulated_label_is_on_every_screen() {
    let h = settled(Scenario::Calm);
    for (w, hgt) in [(80, 24), (120, 36), (200, 60)] {
        assert!(h.screen(w, hgt).contains("SIMULATED"), "{w}x{hgt}");
    }
}

#[test]
fn a_terminal_below_80x24_says_so() {
    let h = settled(Scenario::Calm);
    let screen = h.screen(60, 20);
    assert!(screen.contains("terminal too small"), "{screen}");
    assert!(screen.contains("60×20, cockpit needs 80×24"), "{screen}");
}

#[test]
fn stage_groups_and_the_four_panes_are_drawn() {
    let h = settled(Scenario::Calm);
    let screen = h.screen(80, 24);
    for needle in ["PROTOTYPE", "PRODUCTION", "MISSION CRITICAL", "Rollout", "Canary", "SLO", "Logs"] {
        assert!(screen.contains(needle), "{needle} missing:\n{screen}");
    }
}

#[test]
fn colours_carry_meaning() {
    let h = settled(Scenario::BadCanary);
    let theme = Theme::default();
    let mut state = h.state.clone();
    state.width = 160;
    state.height = 45;
    let mut terminal = Terminal::new(TestBackend::new(160, 45)).unwrap();
    terminal.draw(|f| cockpit::ui::draw(f, &state, &theme)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let text = buffer_text(&buffer);
    let find = |needle: &str| -> (u16, u16) {
        for (y, line) in text.lines().enumerate() {
            if let Some(byte) = line.find(needle) {
                let x = line[..byte].chars().count();
                return (x as u16, y as u16);
            }
        }
        panic!("{needle} not on screen:\n{text}");
    };
    let (x, y) = find("SIMULATED");
    assert_eq!(buffer[(x, y)].bg, Color::Yellow, "the simulated label stands out");
    let (x, y) = find("✗ FAILING");
    assert_eq!(buffer[(x, y)].fg, Color::LightRed);
    let (x, y) = find("PAGE");
    assert_eq!(buffer[(x, y)].fg, Color::LightRed);
    // The selected service row is highlighted.
    let (x, y) = find("▶checkout");
    assert_eq!(buffer[(x + 1, y)].bg, Color::Cyan);

    // NO_COLOR: no colour at all, meaning kept by reverse video.
    let mono = Theme::monochrome();
    terminal.draw(|f| cockpit::ui::draw(f, &state, &mono)).unwrap();
    let buffer = terminal.backend().buffer();
    assert!(buffer.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
}

#[test]
fn hostile_log_lines_are_drawn_safely() {
    use cockpit::domain::logs::{LogLine, Track};
    use cockpit::event::SourceEvent;
    use std::sync::Arc;
    let mut h = settled(Scenario::Calm);
    let service = h.state.selected_service().unwrap().info.name.clone();
    let raw: [&[u8]; 3] =
        [b"\x1b[2J\x1b[H\x1b]0;owned\x07ERROR wiped the screen", b"bad \xff\xfe bytes", &[b'A'; 1 << 20]];
    let lines =
        raw.iter().map(|r| LogLine::from_raw(h.now(), Arc::from("evil-pod"), Track::Primary, r, 4096)).collect();
    h.send(Msg::Source(SourceEvent::Logs { service, lines }));
    let screen = render(&h.state, 160, 45, &Theme::default());
    assert!(screen.contains("wiped the screen"), "{screen}");
    assert!(screen.contains("bad �� bytes"), "{screen}");
    assert!(!screen.contains('\u{1b}'));
    assert_eq!(screen.lines().count(), 45, "nothing scrolled or wrapped the terminal");
}

#[test]
fn help_at_80x24_still_lists_every_key() {
    let mut h = settled(Scenario::Calm);
    h.send(Msg::Key(Key::char('?')));
    let screen = h.screen(80, 24);
    for needle in ["ctrl-c", "level filter", "team screen", "restart", "follow"] {
        assert!(screen.contains(needle), "help at 80x24 lacks {needle}:\n{screen}");
    }
}
