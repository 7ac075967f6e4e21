//! The team screen: worst first, victims marked impacted, the bad change at
//! the head of the timeline, no action keys; and the cascade logic.

mod common;

use cockpit::action::Key;
use cockpit::config::Scenario;
use cockpit::domain::Millis;
use cockpit::state::{Effect, Msg};
use common::{Harness, masked};

fn team(scenario: Scenario) -> Harness {
    let mut h = Harness::new(scenario);
    h.advance(Millis(10_000));
    h.send(Msg::Key(Key::char('T')));
    assert!(h.state.team_screen);
    h
}

/// The service names of the board's first group, in order.
fn first_group(h: &Harness) -> Vec<String> {
    let board = h.state.board();
    board[0].1.iter().map(|&i| h.state.services[i].info.name.clone()).collect()
}

#[test]
fn bad_canary_team_screen() {
    let h = team(Scenario::BadCanary);
    assert_eq!(first_group(&h)[0], "checkout", "the failing service is on top");
    let head = h.state.timeline.front().unwrap();
    assert_eq!((head.service.as_str(), head.action.as_str()), ("checkout", "promote"), "{head:?}");
    let screen = h.screen(160, 45);
    assert!(screen.contains("web-frontend       impacted by checkout"), "{screen}");
    assert!(screen.contains("1 paging · 1 impacted · 11 ok"), "{screen}");
    insta::assert_snapshot!(masked(&screen));
}

#[test]
fn dependency_failure_team_screen() {
    let h = team(Scenario::DependencyFailure);
    assert_eq!(first_group(&h)[0], "ledger", "the root cause outranks its victims");
    let head = h.state.timeline.front().unwrap();
    assert_eq!((head.service.as_str(), head.summary.as_str()), ("ledger", "2.2.0 → 2.3.0"));
    let screen = h.screen(160, 45);
    assert!(screen.contains("ledger ✗ root cause ←"), "{screen}");
    for victim in ["payments", "checkout", "web-frontend"] {
        assert!(h.state.impacted_by(victim) == Some("ledger"), "{victim}");
    }
    insta::assert_snapshot!(masked(&screen));
}

#[test]
fn team_screen_at_80x24_keeps_the_worst_news() {
    let h = team(Scenario::DependencyFailure);
    let screen = h.screen(80, 24);
    assert!(screen.contains("TEAM SCREEN"), "{screen}");
    assert!(screen.contains("ledger"), "{screen}");
    assert!(screen.contains("paging"), "{screen}");
    insta::assert_snapshot!(masked(&screen));
}

#[tokio::test]
async fn the_board_offers_no_actions_and_t_returns_to_the_session_as_it_was() {
    let mut h = team(Scenario::BadCanary);
    for key in ['r', 'd', 'p', 'P', 'b', 'j', '/'] {
        h.press(Key::char(key)).await;
    }
    assert!(h.effects.iter().all(|e| !matches!(e, Effect::Execute(_))), "{:?}", h.effects);
    assert!(h.state.modal.is_none());
    assert!(h.screen(160, 45).contains("no actions here"));
    h.press(Key::char('T')).await;
    assert!(!h.state.team_screen);
    assert!(!h.state.read_only, "a normal session keeps its own mode");
    // Back on the main screen, keys act again.
    h.press(Key::char('p')).await;
    assert!(h.effects.iter().any(|e| matches!(e, Effect::Execute(_))));
}

#[test]
fn cascades_group_victims_under_their_deepest_paging_dependency() {
    let h = team(Scenario::DependencyFailure);
    let cascades = h.state.cascades();
    assert_eq!(cascades.len(), 1, "one root cause");
    let (root, victims) = &cascades[0];
    assert_eq!(h.state.services[*root].info.name, "ledger");
    let mut names: Vec<&str> = victims.iter().map(|&v| h.state.services[v].info.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["checkout", "payments", "web-frontend"]);
    // Calm: nobody pages, nothing is impacted.
    let calm = team(Scenario::Calm);
    assert!(calm.state.cascades().is_empty());
    assert!(calm.state.services.iter().all(|s| calm.state.impacted_by(&s.info.name).is_none()));
}
