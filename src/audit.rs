//! The audit log: one JSON line per executed (or refused) action, appended
//! to `$XDG_STATE_HOME/cockpit/audit.jsonl` or the platform equivalent.
//! Lines are written whole with a single append, so concurrent cockpits on
//! one machine do not interleave inside a line.

use crate::backend::Snapshot;
use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    pub user: String,
    pub backend: String,
    pub context: String,
    pub service: String,
    pub action: String,
    /// The mission-critical gate was passed by typing the service's name.
    pub forced: bool,
    /// `ok`, `refused`, `conflict` or `failed`.
    pub outcome: String,
    /// The summary of what changed, or why not.
    pub detail: String,
    pub before: Option<Snapshot>,
    pub after: Option<Snapshot>,
}

impl AuditEntry {
    pub fn at(time: Timestamp) -> String {
        time.rfc3339()
    }
}

#[derive(Debug, Clone)]
pub struct AuditLog {
    path: Option<PathBuf>,
}

impl AuditLog {
    pub fn at(path: PathBuf) -> AuditLog {
        AuditLog { path: Some(path) }
    }

    /// Writes nothing; for tests that do not look at the log.
    pub fn disabled() -> AuditLog {
        AuditLog { path: None }
    }

    /// `$XDG_STATE_HOME/cockpit/audit.jsonl`, else the platform's local data dir.
    pub fn default_path() -> Option<PathBuf> {
        AuditLog::default_dir().map(|d| d.join("audit.jsonl"))
    }

    /// `$XDG_STATE_HOME/cockpit`, else the platform's local data dir: where
    /// the real audit log and the demo's own (`demo-audit.jsonl`) live.
    pub fn default_dir() -> Option<PathBuf> {
        dirs::state_dir().or_else(dirs::data_local_dir).map(|d| d.join("cockpit"))
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        file.write_all(&line)
    }

    /// Every entry, oldest first; unreadable lines are skipped.
    pub fn read(path: &Path) -> std::io::Result<Vec<AuditEntry>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
    }
}
