//! The three stages of a service's life. Each stage gets its own workflow:
//! prototypes deploy at once, production ships canaries, mission-critical
//! services are guarded by their SLO. One spelling everywhere: TOML, labels,
//! JSON output.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Prototype,
    Production,
    MissionCritical,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Prototype, Stage::Production, Stage::MissionCritical];

    /// The spelling used in config, labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prototype => "prototype",
            Stage::Production => "production",
            Stage::MissionCritical => "mission-critical",
        }
    }

    /// The heading shown on screen.
    pub fn title(self) -> &'static str {
        match self {
            Stage::Prototype => "PROTOTYPE",
            Stage::Production => "PRODUCTION",
            Stage::MissionCritical => "MISSION CRITICAL",
        }
    }

    /// Whether new versions go through a canary before reaching the primary.
    pub fn uses_canary(self) -> bool {
        !matches!(self, Stage::Prototype)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`: expected prototype, production or mission-critical"))
    }
}
