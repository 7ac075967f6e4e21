//! Loop tests: the real state, fleet and executor driven by scripted keys.
//! They assert what the user sees, what changed in the fleet, and what the
//! audit log holds.

mod common;

use cockpit::action::{Key, KeyCode};
use cockpit::config::Scenario;
use cockpit::domain::{Millis, RolloutPhase};
use cockpit::state::Modal;
use common::Harness;

fn enter() -> Key {
    Key::plain(KeyCode::Enter)
}

#[tokio::test]
async fn deploy_promote_to_the_end_and_roll_back_a_production_service() {
    let mut h = Harness::new(Scenario::Calm);
    h.select("catalog");

    // d asks for the image, prefilled with the running one.
    h.press(Key::char('d')).await;
    let Some(Modal::Prompt { input, .. }) = &h.state.modal else { panic!("{:?}", h.state.modal) };
    assert_eq!(input, "shop/catalog:5.2.0");
    assert!(h.screen(160, 45).contains("Deploy catalog"));
    h.press(Key::ctrl('u')).await;
    h.type_text("shop/catalog:5.3.0").await;
    h.press(enter()).await;
    assert_eq!(h.service("catalog").canary_weight(), 5);
    assert!(h.screen(160, 45).contains("step 1 of 4"), "{}", h.screen(160, 45));

    // Let the canary come up and collect data, then step through the plan.
    h.advance(Millis(30_000));
    for expected in [25, 50] {
        h.press(Key::char('p')).await;
        assert_eq!(h.service("catalog").canary_weight(), expected);
    }
    // p after the last step is the full promotion: it asks y/n.
    h.press(Key::char('p')).await;
    let Some(Modal::Confirm { question, .. }) = &h.state.modal else { panic!("{:?}", h.state.modal) };
    assert!(question.contains("Promote catalog fully"), "{question}");
    h.press(Key::char('y')).await;
    assert_eq!(h.service("catalog").rollout.as_ref().unwrap().image, "shop/catalog:5.3.0");
    assert_eq!(h.service("catalog").rollout.as_ref().unwrap().phase, RolloutPhase::Progressing);

    // Traffic returns to the primary once it has rolled out.
    h.advance(Millis(30_000));
    let catalog = h.service("catalog");
    assert_eq!(catalog.rollout.as_ref().unwrap().phase, RolloutPhase::Complete);
    assert_eq!(catalog.canary_weight(), 0);
    assert!(h.screen(160, 45).contains("no canary in flight"));

    // Roll back: no canary, so the primary's last revision is undone (y/n).
    h.press(Key::char('b')).await;
    assert!(matches!(h.state.modal, Some(Modal::Confirm { .. })));
    h.press(Key::char('y')).await;
    h.advance(Millis(20_000));
    let rollout = h.service("catalog").rollout.clone().unwrap();
    assert_eq!(rollout.image, "shop/catalog:5.2.0");
    assert_eq!(rollout.phase, RolloutPhase::Complete);

    let audit = h.audit();
    let actions: Vec<(&str, &str)> = audit.iter().map(|e| (e.action.as_str(), e.outcome.as_str())).collect();
    assert_eq!(
        actions,
        [("deploy", "ok"), ("promote", "ok"), ("promote", "ok"), ("promote", "ok"), ("rollback", "ok")]
    );
    assert!(audit.iter().all(|e| e.user == "tester" && e.service == "catalog" && e.backend == "sim"));
    assert_eq!(audit[0].after.as_ref().unwrap().canary_image.as_deref(), Some("shop/catalog:5.3.0"));
    assert_eq!(audit[3].after.as_ref().unwrap().image, "shop/catalog:5.3.0");
    // The timeline shows every change, newest first.
    assert_eq!(h.state.timeline.front().unwrap().action, "rollback");
}

#[tokio::test]
async fn the_gate_refuses_a_failing_mission_critical_canary_until_the_name_is_typed() {
    let mut h = Harness::new(Scenario::BadCanary);
    // With nothing chosen yet, the selection follows the worst service.
    assert_eq!(h.state.selected_service().unwrap().info.name, "checkout");
    h.press(Key::char('p')).await;
    let screen = h.screen(160, 45);
    assert!(screen.contains("Type checkout to force it"), "{screen}");
    assert!(screen.contains("canary failing"), "{screen}");
    h.type_text("checkout").await;
    h.press(enter()).await;
    assert_eq!(h.service("checkout").canary_weight(), 50);
    assert!(h.screen(160, 45).contains("forced past the gate"));
    assert!(h.audit().last().unwrap().forced);
}

#[tokio::test]
async fn escape_at_the_gate_changes_nothing() {
    let mut h = Harness::new(Scenario::BadCanary);
    h.press(Key::char('P')).await;
    assert!(matches!(h.state.modal, Some(Modal::Prompt { .. })));
    h.press(Key::plain(KeyCode::Esc)).await;
    assert_eq!(h.service("checkout").canary_weight(), 25);
    assert!(h.screen(160, 45).contains("checkout promote-full cancelled"));
    assert!(h.audit().is_empty(), "nothing was executed");
}

#[tokio::test]
async fn a_prototype_rebuild_then_deploy_replaces_its_primary() {
    let mut h = Harness::new(Scenario::Calm);
    h.select("recs-proto");
    h.press(Key::char('r')).await;
    assert!(h.screen(160, 45).contains("building step"), "{}", h.screen(160, 45));
    h.advance(Millis(8_000));
    assert!(h.screen(160, 45).contains("built shop/recs-proto:0.4.1"));
    // d offers the build's tag.
    h.press(Key::char('d')).await;
    let Some(Modal::Prompt { input, .. }) = &h.state.modal else { panic!() };
    assert_eq!(input, "shop/recs-proto:0.4.1");
    h.press(enter()).await;
    h.advance(Millis(10_000));
    let rollout = h.service("recs-proto").rollout.clone().unwrap();
    assert_eq!((rollout.image.as_str(), rollout.phase), ("shop/recs-proto:0.4.1", RolloutPhase::Complete));
    assert_eq!(rollout.revisions[0].image, "shop/recs-proto:0.4.1");
}

#[tokio::test]
async fn a_broken_image_fails_its_rollout_on_screen() {
    let mut h = Harness::new(Scenario::Calm);
    h.select("pricing-lab");
    h.press(Key::char('d')).await;
    h.press(Key::ctrl('u')).await;
    h.type_text("shop/pricing-lab:broken").await;
    h.press(enter()).await;
    h.advance(Millis(75_000));
    let screen = h.screen(160, 45);
    assert!(screen.contains("✗ Failed"), "{screen}");
    assert!(screen.contains("ProgressDeadlineExceeded"), "{screen}");
}

#[tokio::test]
async fn read_only_keys_do_nothing_and_say_why() {
    let mut h = Harness::with(common::options(Scenario::Calm), true);
    h.select("cart");
    for key in ['r', 'd', 'p', 'P', 'b'] {
        h.press(Key::char(key)).await;
        assert!(h.state.modal.is_none());
    }
    assert!(h.effects.iter().all(|e| !matches!(e, cockpit::state::Effect::Execute(_))));
    let screen = h.screen(160, 45);
    assert!(screen.contains("read-only"), "{screen}");
    assert_eq!(h.service("cart").canary_weight(), 25);
}

#[tokio::test]
async fn logs_search_pause_and_filter() {
    let mut h = Harness::new(Scenario::BadCanary);
    h.advance(Millis(20_000));
    h.press(Key::char('/')).await;
    h.type_text("request failed").await;
    h.press(enter()).await;
    let search = h.state.log_view.search.clone().expect("a search");
    assert!(!search.matches.is_empty(), "the failing canary logs failed requests");
    assert!(!h.state.log_view.following(), "a search jumps to the newest match and pauses");
    let screen = h.screen(160, 45);
    assert!(
        screen.contains(&format!("/request failed  {} of {}", search.matches.len(), search.matches.len())),
        "{screen}"
    );
    h.press(Key::char('n')).await;
    assert_eq!(
        h.state.log_view.search.as_ref().unwrap().position(),
        Some(search.matches.len().saturating_sub(1).max(1))
    );

    // The level filter hides lines below it.
    for _ in 0..3 {
        h.press(Key::char('l')).await;
    }
    let screen = h.screen(160, 45);
    assert!(screen.contains("≥ERROR"), "{screen}");
    let log_rows: Vec<&str> = screen.lines().filter(|l| l.contains("◆ ") || l.contains("  INFO ")).collect();
    assert!(log_rows.iter().all(|l| !l.contains(" INFO ")), "{log_rows:?}");

    // f resumes following.
    h.press(Key::char('f')).await;
    assert!(h.state.log_view.following());
}

#[tokio::test]
async fn ctrl_r_rebuilds_and_deploys_a_prototype_in_one_key() {
    let mut h = Harness::new(Scenario::Calm);
    h.select("recs-proto");
    h.press(Key::ctrl('r')).await;
    h.advance(Millis(8_000));
    // The finished build asks the executor to deploy its tag, as the loop would send it.
    let deploys: Vec<_> = h
        .effects
        .iter()
        .filter_map(|e| match e {
            cockpit::state::Effect::Execute(r)
                if r.op == cockpit::event::Op::Deploy { image: "shop/recs-proto:0.4.1".into() } =>
            {
                Some(cockpit::state::Effect::Execute(r.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(deploys.len(), 1, "{:?}", h.effects);
    h.execute_all(deploys).await;
    h.advance(Millis(10_000));
    let rollout = h.service("recs-proto").rollout.clone().unwrap();
    assert_eq!((rollout.image.as_str(), rollout.phase), ("shop/recs-proto:0.4.1", RolloutPhase::Complete));
    let actions: Vec<String> = h.audit().iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions, ["rebuild", "deploy"]);
}
