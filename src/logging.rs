//! cockpit's own diagnostics: `tracing` events and spans (watches,
//! requests, actions) written to a log file, never to the terminal the TUI
//! owns. `--log-file PATH` chooses the file, default
//! `$XDG_STATE_HOME/cockpit/cockpit.log`; `RUST_LOG` the filter, default
//! `cockpit=info,kube=warn`. Secrets never reach it: cockpit logs names,
//! outcomes and reasons, not requests' bodies or headers.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "cockpit=info,kube=warn";

/// Where the log goes without `--log-file`.
pub fn default_path() -> Option<PathBuf> {
    crate::audit::AuditLog::default_dir().map(|dir| dir.join("cockpit.log"))
}

/// Sends this process's `tracing` output to `path` (appended). A log that
/// cannot be opened is not a reason to refuse to start: the error says so
/// and cockpit runs without one.
pub fn init(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
}
