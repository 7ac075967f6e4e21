//! `update` on its own: mouse, modals, questions that arrive while typing,
//! and keys that must always work. No terminal, no tasks.

mod common;

use cockpit::action::{Key, KeyCode};
use cockpit::config::Scenario;
use cockpit::event::{ExecEvent, Op, Question, Request};
use cockpit::state::{Effect, Modal, Msg, Pane, PromptPurpose};
use common::Harness;

fn request(service: &str) -> Request {
    Request { id: 42, service: service.into(), op: Op::Rollback, confirmed: false, typed_name: None, asked_token: None }
}

#[test]
fn a_click_on_a_service_row_selects_it() {
    let mut h = Harness::new(Scenario::Calm);
    let screen = h.screen(160, 45);
    let (row, line) = screen.lines().enumerate().find(|(_, l)| l.contains(" inventory ")).expect("inventory is listed");
    let column = line.find("inventory").unwrap() as u16;
    h.send(Msg::Click { column, row: row as u16 });
    assert_eq!(h.state.selected_service().unwrap().info.name, "inventory");
    assert_eq!(h.state.focus, Pane::Services);
    // A click in the logs pane focuses it.
    let logs_row = screen.lines().position(|l| l.contains("┌ Logs")).unwrap() as u16 + 2;
    h.send(Msg::Click { column: 100, row: logs_row });
    assert_eq!(h.state.focus, Pane::Logs);
}

#[test]
fn a_question_never_takes_over_a_prompt_being_typed() {
    let mut h = Harness::new(Scenario::Calm);
    h.send(Msg::Key(Key::char('/')));
    h.send(Msg::Key(Key::char('y')));
    let ask = ExecEvent::Ask { request: request("cart"), question: Question::YesNo("Roll back cart?".into()) };
    h.send(Msg::Exec(ask));
    // The search prompt keeps the keystrokes; the question waits.
    let effects = h.send(Msg::Key(Key::char('y')));
    assert!(effects.is_empty());
    let Some(Modal::Prompt { purpose: PromptPurpose::Search, input }) = &h.state.modal else { panic!() };
    assert_eq!(input, "yy");
    h.send(Msg::Key(Key::plain(KeyCode::Esc)));
    // Now the question shows, and only an explicit y answers it.
    assert!(matches!(h.state.modal, Some(Modal::Confirm { .. })));
    let effects = h.send(Msg::Key(Key::char('y')));
    assert!(matches!(&effects[..], [Effect::Execute(r)] if r.confirmed && r.service == "cart"));
}

#[test]
fn ctrl_c_quits_from_anywhere_and_q_closes_help_first() {
    let mut h = Harness::new(Scenario::Calm);
    h.send(Msg::Key(Key::char('d')));
    assert!(matches!(h.state.modal, Some(Modal::Prompt { .. })));
    let effects = h.send(Msg::Key(Key::ctrl('c')));
    assert_eq!(effects, [Effect::Quit]);

    let mut h = Harness::new(Scenario::Calm);
    h.send(Msg::Key(Key::char('?')));
    assert!(h.send(Msg::Key(Key::char('q'))).is_empty());
    assert_eq!(h.send(Msg::Key(Key::char('q'))), [Effect::Quit]);
}

#[test]
fn a_signal_quits_through_update() {
    let mut h = Harness::new(Scenario::Calm);
    assert_eq!(h.send(Msg::Quit), [Effect::Quit]);
    assert!(h.state.quitting);
}

#[test]
fn esc_clears_the_search_then_the_messages() {
    let mut h = Harness::new(Scenario::Calm);
    h.send(Msg::Key(Key::char('/')));
    for c in "GET".chars() {
        h.send(Msg::Key(Key::char(c)));
    }
    h.send(Msg::Key(Key::plain(KeyCode::Enter)));
    assert!(h.state.log_view.search.is_some());
    h.send(Msg::Key(Key::plain(KeyCode::Esc)));
    assert!(h.state.log_view.search.is_none());
}

#[test]
fn the_selection_follows_the_worst_service_until_the_user_moves() {
    let mut h = Harness::new(Scenario::DependencyFailure);
    assert_eq!(h.state.selected_service().unwrap().info.name, "ledger");
    h.send(Msg::Key(Key::char('k')));
    let chosen = h.state.selected_service().unwrap().info.name.clone();
    h.advance(cockpit::domain::Millis(5_000));
    assert_eq!(h.state.selected_service().unwrap().info.name, chosen, "the user's choice sticks");
}

#[test]
fn colon_ctx_switches_context_only_on_a_cluster_and_lists_the_known_ones() {
    let mut h = Harness::new(Scenario::Calm);
    let type_command = |h: &mut Harness, text: &str| {
        h.send(Msg::Key(Key::char(':')));
        assert!(matches!(h.state.modal, Some(Modal::Prompt { purpose: PromptPurpose::Command, .. })));
        for c in text.chars() {
            h.send(Msg::Key(Key::char(c)));
        }
        h.send(Msg::Key(Key::plain(KeyCode::Enter)))
    };
    assert!(type_command(&mut h, "ctx prod").is_empty(), "the simulated fleet has no contexts");
    assert!(h.screen(160, 45).contains("contexts belong to the Kubernetes backend"));

    h.state.backend.kind = "kubernetes".into();
    h.state.contexts = vec!["prod".into(), "staging".into()];
    assert!(type_command(&mut h, "ctx").is_empty());
    assert!(h.screen(160, 45).contains("contexts: prod, staging"));
    assert_eq!(type_command(&mut h, "ctx staging"), [Effect::SwitchContext("staging".into())]);
    assert!(type_command(&mut h, "frobnicate").is_empty());
    assert!(h.screen(160, 45).contains("unknown command `:frobnicate`"));
}
