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

// ---- Issue 11: per-pane buffer tests ------------------------------------

use cockpit::domain::canary::TrackMetrics;
use cockpit::event::{Denied, SourceEvent};
use cockpit::state::{AppState, Pane};
use cockpit::ui;
use ratatui::Frame;
use ratatui::layout::Rect;

type DrawFn = fn(&mut Frame, Rect, &AppState, &Theme);

/// One pane drawn alone into a `width`×`height` buffer, as rows of text.
fn pane(state: &AppState, draw: DrawFn, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let theme = Theme::default();
    terminal.draw(|f| draw(f, f.area(), state, &theme)).unwrap();
    buffer_text(terminal.backend().buffer()).lines().map(str::to_owned).collect()
}

fn key_bar(state: &AppState, width: u16) -> String {
    pane(state, ui::keybar::draw, width, 1).remove(0)
}

/// The key bar's entries (`j/k move`, `? help`), as drawn.
fn entries(bar: &str) -> Vec<String> {
    bar.split("  ").map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

fn every_focus() -> [Pane; 5] {
    [Pane::Services, Pane::Rollout, Pane::Canary, Pane::Slo, Pane::Logs]
}

#[test]
fn the_key_bar_always_keeps_help_and_quit_and_drops_whole_entries() {
    let mut h = settled(Scenario::BadCanary);
    for read_only in [false, true] {
        h.state.read_only = read_only;
        for focus in every_focus() {
            h.state.focus = focus;
            let full = entries(&key_bar(&h.state, 400));
            for width in [80, 100, 120] {
                let bar = key_bar(&h.state, width);
                assert!(bar.ends_with("? help  q quit"), "{focus:?} at {width}: `{bar}`");
                for entry in entries(&bar) {
                    assert!(full.contains(&entry), "{focus:?} at {width}: `{entry}` is cut: `{bar}` (full: {full:?})");
                }
            }
        }
    }
}

#[test]
fn an_access_reason_goes_to_the_panes_and_the_help_never_into_the_key_bar() {
    let mut h = settled(Scenario::BadCanary);
    let reason = "RBAC: may not update deployments.apps, update httproutes.gateway.networking.k8s.io in shop";
    let denied = ["deploy", "promote", "promote-full", "rollback"]
        .iter()
        .map(|op| Denied { op: (*op).into(), reason: reason.into() })
        .collect();
    h.send(Msg::Source(SourceEvent::Access { service: "checkout".into(), denied }));
    assert_eq!(h.state.selected_service().unwrap().info.name, "checkout");
    for width in [80, 100, 160] {
        let bar = key_bar(&h.state, width);
        assert!(!bar.contains("RBAC"), "{bar}");
        assert!(bar.ends_with("? help  q quit"), "{bar}");
    }
    // The panes the keys act on say why, in words that are not cut.
    let rollout = pane(&h.state, ui::rollout::draw, 60, 10).join("\n");
    assert!(rollout.contains("RBAC: may not update deployments.apps"), "{rollout}");
    let canary = pane(&h.state, ui::canary::draw, 70, 14).join("\n");
    assert!(canary.contains("RBAC: may not update deployments.apps"), "{canary}");
    // The help has it in full.
    h.send(Msg::Key(Key::char('?')));
    let help = h.screen(160, 45);
    assert!(help.contains(reason), "{help}");
}

#[test]
fn the_key_bar_follows_focus() {
    let mut h = settled(Scenario::BadCanary);
    h.state.focus = Pane::Logs;
    let bar = key_bar(&h.state, 100);
    assert!(bar.contains("j/k scroll"), "{bar}");
    assert!(!bar.contains("move"), "{bar}");
    for entry in ["/ search", "f pause", "l level"] {
        assert!(bar.contains(entry), "logs focused: {entry} missing: {bar}");
    }
    h.state.focus = Pane::Services;
    let bar = key_bar(&h.state, 100);
    assert!(bar.contains("j/k move"), "{bar}");
    assert!(bar.contains("p promote") && bar.contains("b roll back"), "{bar}");
    assert!(!bar.contains("scroll") && !bar.contains("level"), "{bar}");
    h.state.focus = Pane::Canary;
    let bar = key_bar(&h.state, 80);
    for entry in ["p promote", "P full", "b roll back"] {
        assert!(bar.contains(entry), "canary focused at 80: {entry} missing: {bar}");
    }
}

#[test]
fn help_on_the_team_screen_lists_only_what_applies_there() {
    let mut h = settled(Scenario::BadCanary);
    h.send(Msg::Key(Key::char('T')));
    h.send(Msg::Key(Key::char('?')));
    let screen = h.screen(120, 36);
    let rows: Vec<String> = screen.lines().map(str::to_owned).collect();
    let top = rows.iter().position(|r| r.contains("┌ Keys ")).unwrap_or_else(|| panic!("no help:\n{screen}"));
    let left = rows[top].chars().position(|c| c == '┌').unwrap();
    let right = left + rows[top].chars().skip(left).position(|c| c == '┐').unwrap();
    let help = words_in_box(&rows, top + 1, left, right).join(" ");
    for absent in ["deploy", "promote", "roll back", "rebuild", "search the logs"] {
        assert!(!help.contains(absent), "team help lists {absent}:\n{help}");
    }
    for present in ["main screen", "quit", "ctrl-c"] {
        assert!(help.contains(present), "team help lacks {present}:\n{help}");
    }
}

#[test]
fn revision_columns_never_touch() {
    let mut h = settled(Scenario::Calm);
    h.select("notify-proto");
    let images: Vec<String> =
        h.service("notify-proto").rollout.as_ref().unwrap().revisions.iter().map(|r| r.image.clone()).collect();
    assert!(!images.is_empty());
    for width in 24..=70 {
        let rows = pane(&h.state, ui::rollout::draw, width, 12);
        let table: Vec<&String> = rows.iter().filter(|r| r.contains("shop/")).collect();
        assert!(!table.is_empty(), "no revision rows at {width}:\n{}", rows.join("\n"));
        for row in table {
            let inner = row.trim_start_matches('│').trim_end_matches('│');
            let cells: Vec<&str> = inner.split_whitespace().collect();
            assert_eq!(cells.len(), 3, "rev, image, age at {width}: `{row}`");
            let image = cells[1];
            assert!(
                images.iter().any(|i| i == image) || image.ends_with('…'),
                "an image cut without a mark at {width}: `{row}`"
            );
        }
    }
}

/// The words inside a box drawn over the screen: `rows[top..]` between
/// columns `left` and `right` (its borders), down to its bottom border.
fn words_in_box(rows: &[String], top: usize, left: usize, right: usize) -> Vec<String> {
    let mut words = Vec::new();
    for row in &rows[top..] {
        let inner: String = row.chars().skip(left + 1).take(right.saturating_sub(left + 1)).collect();
        if inner.starts_with('─') {
            break;
        }
        words.extend(inner.split_whitespace().map(str::to_owned));
    }
    words
}

#[test]
fn messages_hide_nothing_and_are_not_cut_mid_word() {
    let long = "checkout promote refused: canary failing (canary success 93.9 % < 99 %) and SLO is paging. \
                Type checkout to force it.";
    for (width, height) in [(80, 24), (160, 45)] {
        let mut h = settled(Scenario::BadCanary);
        let before = h.screen(width, height);
        h.send(Msg::Problem(long.into()));
        let after = h.screen(width, height);
        let (before, after): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
        let changed: Vec<usize> = (0..after.len()).filter(|&y| before[y] != after[y]).collect();
        assert_eq!(changed.len(), 1, "a message changes one row, its own, at {width}x{height}:\n{}", after.join("\n"));
        let row = after[changed[0]].trim();
        assert!(row.starts_with("checkout promote refused"), "{row}");
        assert!(changed[0] < after.len() - 1, "the key bar stays the last row");
        // Cut at a word, marked, with the way to the full text.
        let shown = match row.find('…') {
            Some(cut) => row[..cut].trim_end(),
            None => row,
        };
        assert!(long.starts_with(shown), "`{shown}`");
        let next = long[shown.len()..].chars().next();
        assert!(next.is_none() || next == Some(' '), "cut mid-word at {width}: `{row}`");
        if shown.len() < long.len() {
            assert!(row.contains(":messages"), "{row}");
        }
    }
}

#[tokio::test]
async fn the_messages_command_lists_recent_messages_in_full() {
    let mut h = settled(Scenario::BadCanary);
    let texts = [
        "first: the context prod-eu is not in the kubeconfig (known: staging, dev, kind-local, minikube)",
        "second: checkout promote refused: canary failing (canary success 93.9 % < 99 %) and SLO is paging",
    ];
    for text in texts {
        h.send(Msg::Problem(text.into()));
    }
    h.press(Key::plain(cockpit::action::KeyCode::Esc)).await;
    assert!(h.state.toasts.is_empty(), "esc dismisses the live messages");
    h.press(Key::char(':')).await;
    h.type_text("messages").await;
    h.press(Key::plain(cockpit::action::KeyCode::Enter)).await;
    let screen = h.screen(80, 24);
    let rows: Vec<String> = screen.lines().map(str::to_owned).collect();
    let top = rows.iter().position(|r| r.contains("┌ Messages")).unwrap_or_else(|| panic!("no messages:\n{screen}"));
    let left = rows[top].chars().position(|c| c == '┌').unwrap();
    let right = left + rows[top].chars().skip(left).position(|c| c == '┐').unwrap();
    let words = words_in_box(&rows, top + 1, left, right).join(" ");
    for text in texts {
        assert!(words.contains(text), "`{text}` not in full:\n{screen}");
    }
    assert!(words.find(texts[1]) < words.find(texts[0]), "newest first:\n{screen}");
    // Any key closes it.
    h.press(Key::char('j')).await;
    assert!(h.state.modal.is_none());
}

#[test]
fn a_canary_without_requests_shows_no_rate() {
    let mut h = settled(Scenario::BadCanary);
    let none = TrackMetrics { requests: 0.0, success_pct: 100.0, p99_ms: 0.0 };
    let some = TrackMetrics { requests: 5000.0, success_pct: 99.95, p99_ms: 180.0 };
    for (primary, canary) in [(some, none), (none, none)] {
        h.send(Msg::Source(SourceEvent::Analysis { service: "checkout".into(), primary, canary }));
        let rows = pane(&h.state, ui::canary::draw, 70, 10);
        // The comparison's rows, not the split's bars.
        let track = |label: &str| {
            rows.iter().find(|r| r.starts_with(&format!("│{label} ")) && !r.contains('░') && !r.contains('█')).cloned()
        };
        for (label, metrics) in [("primary", primary), ("canary", canary)] {
            let row = track(label).unwrap_or_else(|| panic!("no {label} row:\n{}", rows.join("\n")));
            if metrics.requests == 0.0 {
                assert!(row.contains("no requests"), "{row}\n{}", rows.join("\n"));
                assert!(!row.contains('%') && !row.contains("ms"), "{row}");
            }
        }
    }
}
