//! The real kubectl, with its own kubeconfig and cache directory, against
//! a fake API server. Shared by the test binaries that check the fake
//! server and cockpit's Kubernetes backend against it.
#![allow(dead_code)]

use cockpit::devtools::fake_apiserver::FakeApiServer;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Whether kubectl is installed; under `CI=true` its absence fails the test.
pub fn have_kubectl() -> bool {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "kubectl is required under CI=true but was not found");
        eprintln!("note: kubectl not found; skipping this test");
    }
    found
}

/// kubectl with its own kubeconfig and cache directory.
pub struct Kubectl {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(server: &FakeApiServer) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = server.write_kubeconfig(dir.path()).expect("kubeconfig");
        Self { dir, kubeconfig }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).arg("--cache-dir").arg(self.dir.path().join("cache"));
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl prints JSON")
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("manifest written");
        path
    }
}
