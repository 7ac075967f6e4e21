//! Stage policy, sent straight to the executor: every kind of action in
//! every stage, read-only mode, and the mission-critical gate.

mod common;

use cockpit::config::Scenario;
use cockpit::event::{ExecEvent, Op, Question, Request};
use common::{Harness, options};
use std::sync::atomic::Ordering;

fn request(service: &str, op: Op) -> Request {
    Request { id: 1, service: service.into(), op, confirmed: false, typed_name: None, asked_token: None }
}

fn deploy(service: &str, image: &str) -> Request {
    request(service, Op::Deploy { image: image.into() })
}

#[tokio::test]
async fn a_prototype_deploys_straight_to_its_primary_without_a_question() {
    let h = Harness::new(Scenario::Calm);
    let answer = h.executor.execute(deploy("recs-proto", "shop/recs-proto:0.5.0")).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let facts = h.backend.world().facts("recs-proto").unwrap();
    assert_eq!(facts.primary_image, "shop/recs-proto:0.5.0");
    assert_eq!(facts.canary_weight, 0);

    let answer = h.executor.execute(request("recs-proto", Op::Promote { full: false })).await;
    let ExecEvent::Refused { reason, .. } = answer else { panic!("{answer:?}") };
    assert!(reason.contains("nothing to promote"), "{reason}");
}

#[tokio::test]
async fn production_deploys_start_a_canary_at_the_first_step() {
    let h = Harness::new(Scenario::Calm);
    let answer = h.executor.execute(deploy("catalog", "shop/catalog:5.3.0")).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let facts = h.backend.world().facts("catalog").unwrap();
    assert_eq!(facts.primary_image, "shop/catalog:5.2.0", "the primary is untouched");
    assert_eq!(facts.canary_image.as_deref(), Some("shop/catalog:5.3.0"));
    assert_eq!(facts.canary_weight, 5);
}

#[tokio::test]
async fn replacing_a_canary_in_flight_asks_first() {
    let h = Harness::new(Scenario::Calm);
    let answer = h.executor.execute(deploy("cart", "shop/cart:2.9.0")).await;
    let ExecEvent::Ask { question: Question::YesNo(q), request } = answer else { panic!("{answer:?}") };
    assert!(q.contains("2.8.0") && q.contains("2.9.0"), "{q}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_image.as_deref(), Some("shop/cart:2.8.0"));
    let answer = h.executor.execute(Request { confirmed: true, ..request }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_weight, 5);
}

#[tokio::test]
async fn production_steps_promote_without_asking_but_the_full_promotion_asks() {
    let h = Harness::new(Scenario::Calm);
    // cart's canary is at 25 %: the next step is 50 %.
    let answer = h.executor.execute(request("cart", Op::Promote { full: false })).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_weight, 50);

    // After the last step, p is the full promotion, which always asks.
    let answer = h.executor.execute(request("cart", Op::Promote { full: false })).await;
    let ExecEvent::Ask { question: Question::YesNo(q), request } = answer else { panic!("{answer:?}") };
    assert!(q.contains("Promote cart fully"), "{q}");
    assert_eq!(h.backend.world().facts("cart").unwrap().primary_image, "shop/cart:2.7.1");
    let answer = h.executor.execute(Request { confirmed: true, ..request }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("cart").unwrap().primary_image, "shop/cart:2.8.0");
}

#[tokio::test]
async fn mission_critical_promotion_with_a_failing_canary_needs_the_typed_name() {
    let h = Harness::new(Scenario::BadCanary);
    let applied = h.executor.applied_counter();
    let answer = h.executor.execute(request("checkout", Op::Promote { full: false })).await;
    let ExecEvent::Ask { question: Question::TypeName { reason }, request } = answer else { panic!("{answer:?}") };
    assert!(reason.contains("canary failing"), "{reason}");
    assert!(reason.contains("SLO is paging"), "{reason}");
    assert_eq!(applied.load(Ordering::SeqCst), 0);

    // Confirming with y is not enough; a wrong name is refused.
    let answer = h.executor.execute(Request { confirmed: true, ..request.clone() }).await;
    assert!(matches!(answer, ExecEvent::Ask { question: Question::TypeName { .. }, .. }), "{answer:?}");
    let answer = h.executor.execute(Request { typed_name: Some("checkuot".into()), ..request.clone() }).await;
    assert!(matches!(answer, ExecEvent::Refused { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("checkout").unwrap().canary_weight, 25);

    let answer = h.executor.execute(Request { typed_name: Some("checkout".into()), ..request }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("checkout").unwrap().canary_weight, 50);
    let audit = h.audit();
    let forced = audit.iter().find(|e| e.outcome == "ok").expect("an ok entry");
    assert!(forced.forced, "{forced:?}");
    assert_eq!(forced.before.as_ref().map(|b| b.weight), Some(25));
    assert_eq!(forced.after.as_ref().map(|a| a.weight), Some(50));
    assert!(audit.iter().any(|e| e.outcome == "refused" && e.detail.contains("checkuot")));
}

#[tokio::test]
async fn a_healthy_mission_critical_canary_promotes_without_the_gate() {
    let mut h = Harness::new(Scenario::Calm);
    let first = h.executor.execute(deploy("payments", "shop/payments:4.2.0")).await;
    assert!(matches!(first, ExecEvent::Done { .. }), "{first:?}");
    // A fresh canary has not been analysed, or has not served enough
    // requests to be judged: the gate stays shut (fail closed) and says why.
    let early = h.executor.execute(request("payments", Op::Promote { full: false })).await;
    match &early {
        ExecEvent::Ask { question: Question::TypeName { reason }, .. } => {
            assert!(reason.contains("not been analysed yet") || reason.contains("not enough canary data"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Once it has, and it is healthy, the promotion needs no typed name.
    for _ in 0..120 {
        let facts = h.backend.world().facts("payments").unwrap();
        if matches!(facts.verdict, Some(cockpit::domain::canary::Verdict::Healthy(_))) {
            break;
        }
        h.advance(cockpit::domain::Millis(5_000));
    }
    let answer = h.executor.execute(request("payments", Op::Promote { full: false })).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("payments").unwrap().canary_weight, 25);
}

#[tokio::test]
async fn rollback_takes_the_canary_to_zero_or_undoes_the_primary() {
    let h = Harness::new(Scenario::Calm);
    // Production: y/n first.
    let answer = h.executor.execute(request("cart", Op::Rollback)).await;
    let ExecEvent::Ask { question: Question::YesNo(q), request: asked } = answer else { panic!("{answer:?}") };
    assert!(q.contains("25 % to 0 %"), "{q}");
    let answer = h.executor.execute(Request { confirmed: true, ..asked }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    let facts = h.backend.world().facts("cart").unwrap();
    assert_eq!((facts.canary_weight, facts.canary_image), (0, None));

    // Prototype: at once, back to the previous revision.
    let answer = h.executor.execute(request("recs-proto", Op::Rollback)).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("recs-proto").unwrap().primary_image, "shop/recs-proto:0.3.1");
}

#[tokio::test]
async fn a_change_in_between_fails_with_a_clear_message_instead_of_overwriting() {
    let h = Harness::new(Scenario::Calm);
    let facts = h.backend.world().facts("cart").unwrap();
    // Someone else moves the canary after cockpit read the facts.
    h.backend.world().touch("cart").unwrap();
    let context = cockpit::backend::ActionContext { user: "tester".into(), token: facts.token };
    let plan = cockpit::backend::Plan::SetCanaryWeight { from: 25, to: 50 };
    let result = h.backend.world().apply("cart", &plan, &context);
    let error = result.unwrap_err();
    assert!(error.to_string().contains("changed by someone else"), "{error}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_weight, 25);
}

#[tokio::test]
async fn read_only_lets_nothing_reach_the_backend() {
    let ops = |service: &str| {
        vec![
            request(service, Op::Rebuild),
            deploy(service, "shop/x:9.9.9"),
            request(service, Op::Promote { full: false }),
            request(service, Op::Promote { full: true }),
            request(service, Op::Rollback),
            request(service, Op::Restart),
            request(service, Op::Stop),
        ]
    };
    for (read_only, expect_changes) in [(true, false), (false, true)] {
        let h = Harness::with(options(Scenario::BadCanary), read_only);
        let applied = h.executor.applied_counter();
        for service in ["recs-proto", "cart", "checkout"] {
            for mut r in ops(service) {
                // Every answer given, so only read-only can stop it.
                r.confirmed = true;
                r.typed_name = Some(service.into());
                let answer = h.executor.execute(r).await;
                if read_only {
                    let ExecEvent::Refused { reason, .. } = &answer else { panic!("{answer:?}") };
                    assert!(reason.contains("read-only"), "{reason}");
                }
            }
        }
        let count = applied.load(Ordering::SeqCst);
        assert_eq!(count > 0, expect_changes, "read_only={read_only}: {count} calls reached the backend");
    }
}

#[tokio::test]
async fn a_yes_given_to_a_world_that_changed_is_asked_again() {
    let h = Harness::new(Scenario::Calm);
    let answer = h.executor.execute(request("cart", Op::Rollback)).await;
    let ExecEvent::Ask { request: asked, .. } = answer else { panic!("{answer:?}") };
    assert!(asked.asked_token.is_some());
    // Someone else changes cart while the question is on screen.
    h.backend.world().touch("cart").unwrap();
    let answer = h.executor.execute(Request { confirmed: true, ..asked }).await;
    assert!(matches!(answer, ExecEvent::Ask { .. }), "{answer:?}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_weight, 25);
}

#[tokio::test]
async fn redeploying_the_running_canary_is_refused_not_reset() {
    let h = Harness::new(Scenario::Calm);
    let answer = h.executor.execute(deploy("cart", "shop/cart:2.8.0")).await;
    let ExecEvent::Refused { reason, .. } = answer else { panic!("{answer:?}") };
    assert!(reason.contains("already the canary"), "{reason}");
    assert_eq!(h.backend.world().facts("cart").unwrap().canary_weight, 25);
}

#[tokio::test]
async fn rolling_back_during_a_full_promotion_restores_the_primary() {
    let h = Harness::new(Scenario::Calm);
    let full = Request { confirmed: true, ..request("cart", Op::Promote { full: true }) };
    assert!(matches!(h.executor.execute(full).await, ExecEvent::Done { .. }));
    let facts = h.backend.world().facts("cart").unwrap();
    assert!(facts.promoting);
    assert_eq!(facts.primary_image, "shop/cart:2.8.0");
    let answer = h.executor.execute(request("cart", Op::Rollback)).await;
    let ExecEvent::Ask { question: Question::YesNo(q), request: asked } = answer else { panic!("{answer:?}") };
    assert!(q.contains("promotion stops"), "{q}");
    assert!(matches!(h.executor.execute(Request { confirmed: true, ..asked }).await, ExecEvent::Done { .. }));
    let facts = h.backend.world().facts("cart").unwrap();
    assert_eq!((facts.primary_image.as_str(), facts.canary_weight, facts.promoting), ("shop/cart:2.7.1", 0, false));
}

#[tokio::test]
async fn an_image_of_another_repository_asks_first_on_every_stage() {
    let h = Harness::new(Scenario::Calm);
    // payments runs shop/payments; shop/checkout is a slip of the finger.
    let answer = h.executor.execute(deploy("payments", "shop/checkout:1.5.0")).await;
    let ExecEvent::Ask { question: Question::YesNo(q), request } = answer else { panic!("{answer:?}") };
    assert!(q.contains("runs shop/payments") && q.contains("another repository (shop/checkout)"), "{q}");
    assert_eq!(h.backend.world().facts("payments").unwrap().canary_weight, 0, "nothing changed yet");
    let answer = h.executor.execute(Request { confirmed: true, ..request }).await;
    assert!(matches!(answer, ExecEvent::Done { .. }), "a yes deploys it: {answer:?}");
    // A prototype, which otherwise deploys without a question, asks too.
    let answer = h.executor.execute(deploy("recs-proto", "shop/search-ui:0.2.0")).await;
    assert!(matches!(answer, ExecEvent::Ask { question: Question::YesNo(_), .. }), "{answer:?}");
    // With a canary in flight, one question says both: the slip and the replacement.
    let answer = h.executor.execute(deploy("cart", "shop/catalog:9.9.9")).await;
    let ExecEvent::Ask { question: Question::YesNo(q), .. } = answer else { panic!("{answer:?}") };
    assert!(q.contains("another repository") && q.contains("replaces canary shop/cart:2.8.0"), "{q}");
}

#[test]
fn repositories_are_read_without_tag_digest_or_port_confusion() {
    use cockpit::executor::policy::repository;
    assert_eq!(repository("shop/cart:2.8.0"), "shop/cart");
    assert_eq!(repository("registry:5000/shop/cart:2.8.0"), "registry:5000/shop/cart");
    assert_eq!(repository("registry:5000/shop/cart"), "registry:5000/shop/cart");
    assert_eq!(repository("shop/cart@sha256:abc"), "shop/cart");
    assert_eq!(repository("shop/cart:1@sha256:abc"), "shop/cart");
}
