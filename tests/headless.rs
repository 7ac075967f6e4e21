//! The headless CLI: `status` and its JSON schema and exit codes, and
//! actions through the same executor, policy and audit log as the keys.

use cockpit::audit::AuditLog;
use std::process::{Command, Output};

fn cockpit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .expect("runs")
}

#[test]
fn status_json_has_a_stable_schema_and_exits_1_while_anything_pages() {
    let out = cockpit(&["status", "--json", "--scenario", "bad-canary"]);
    assert_eq!(out.status.code(), Some(1), "paging → exit 1");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(json["schema"], 1);
    assert_eq!(json["backend"]["simulated"], true);
    assert_eq!(json["summary"]["paging"], 1);
    let services = json["services"].as_array().unwrap();
    assert_eq!(services.len(), 13);
    let checkout = services.iter().find(|s| s["name"] == "checkout").unwrap();
    assert_eq!(checkout["stage"], "mission-critical");
    assert_eq!(checkout["slo"]["status"], "page");
    assert_eq!(checkout["canary"]["weight"], 25);
    assert_eq!(checkout["canary"]["step"], 2);
    assert_eq!(checkout["canary"]["verdict"], "failing");
    assert!(checkout["slo"]["burn"]["5m"].as_f64().unwrap() > 14.4);
    assert!(checkout["rollout"]["phase"].is_string());
    let web = services.iter().find(|s| s["name"] == "web-frontend").unwrap();
    assert_eq!(web["impacted_by"], "checkout");
    for s in services {
        for key in ["name", "stage", "owner", "depends_on", "impacted_by", "rollout", "canary", "slo"] {
            assert!(s.get(key).is_some(), "{key} missing in {s}");
        }
    }

    let calm = cockpit(&["status", "--json", "--scenario", "calm"]);
    assert_eq!(calm.status.code(), Some(0));
    let text = cockpit(&["status", "--scenario", "bad-canary"]);
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.starts_with("SIMULATED fleet"), "{table}");
    assert!(table.contains("1 paging, 0 ticket, 1 impacted"), "{table}");
}

#[test]
fn a_headless_promotion_is_refused_by_the_gate_with_yes_and_passes_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_arg = audit.to_str().unwrap();
    let refused = cockpit(&["promote", "checkout", "--yes", "--scenario", "bad-canary", "--audit-log", audit_arg]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--yes does not pass this gate: pass --force checkout"), "{stderr}");
    let entries = AuditLog::read(&audit).expect("a headless refusal is audited");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].action.as_str(), entries[0].outcome.as_str()), ("promote", "refused"));
    assert!(entries[0].detail.contains("canary failing"), "{}", entries[0].detail);

    let wrong =
        cockpit(&["promote", "checkout", "--force", "cart", "--scenario", "bad-canary", "--audit-log", audit_arg]);
    assert_eq!(wrong.status.code(), Some(1));

    let forced =
        cockpit(&["promote", "checkout", "--force", "checkout", "--scenario", "bad-canary", "--audit-log", audit_arg]);
    assert_eq!(forced.status.code(), Some(0), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(String::from_utf8_lossy(&forced.stdout).contains("checkout: canary 25 → 50 % (forced past the gate)"));
    let entries = AuditLog::read(&audit).unwrap();
    let last = entries.last().unwrap();
    assert_eq!((last.action.as_str(), last.outcome.as_str(), last.forced), ("promote", "ok", true));
    assert!(entries.iter().any(|e| e.outcome == "refused"), "the wrong name was refused and audited");
}

#[test]
fn headless_questions_need_yes_and_read_only_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let audit_arg = audit.to_str().unwrap();
    let unconfirmed = cockpit(&["rollback", "cart", "--audit-log", audit_arg]);
    assert_eq!(unconfirmed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("pass --yes"));
    let confirmed = cockpit(&["rollback", "cart", "--yes", "--audit-log", audit_arg]);
    assert_eq!(confirmed.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&confirmed.stdout).contains("canary 25 → 0 %"));
    let deploy = cockpit(&["deploy", "recs-proto", "--image", "shop/recs-proto:0.5.0", "--audit-log", audit_arg]);
    assert_eq!(deploy.status.code(), Some(0), "prototypes deploy without a question");
    let read_only = cockpit(&["promote", "cart", "--yes", "--read-only", "--audit-log", audit_arg]);
    assert_eq!(read_only.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&read_only.stderr).contains("read-only"));
}

#[test]
fn an_unknown_service_is_bad_usage() {
    let out = cockpit(&["deploy", "nosuch", "--image", "shop/nosuch:1", "--audit-log", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no service `nosuch`") && stderr.contains("checkout"), "{stderr}");
}

#[test]
fn a_closed_pipe_is_a_quiet_exit() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["status", "--json", "--scenario", "calm"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    // Close the reading end before cockpit writes, as `| head` does once it has its lines.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "no panic: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn the_demo_keeps_its_own_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cockpit"))
        .args(["rollback", "cart", "--yes", "--demo"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let demo = dir.path().join("cockpit").join("demo-audit.jsonl");
    let entries = AuditLog::read(&demo).expect("the demo's own log");
    assert_eq!(entries.last().map(|e| e.backend.as_str()), Some("sim"));
    assert!(!dir.path().join("cockpit").join("audit.jsonl").exists(), "the real log is untouched");
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = cockpit(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("promote") && script.contains("team-screen"), "{shell}: {script}");
    }
    let man = cockpit(&["man"]);
    assert_eq!(man.status.code(), Some(0));
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH cockpit"), "{page}");
    assert!(page.contains("status") && page.contains("rollback"), "{page}");
}

#[test]
fn diagnostics_go_to_the_log_file_not_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("cockpit.log");
    let out = cockpit(&[
        "rollback",
        "cart",
        "--yes",
        "--demo",
        "--audit-log",
        dir.path().join("audit.jsonl").to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&log).expect("the log file");
    assert!(text.contains("composing mix=Sim") && text.contains("outcome=\"ok\""), "{text}");
    assert!(text.contains("service=cart"), "actions run in a span naming the service: {text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("INFO"), "nothing on the terminal");
}
