//! Wall-clock instants and spans as plain integers, so that state and the
//! simulated fleet can run on an injected clock and stay deterministic.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

pub const SECOND: Millis = Millis(1_000);
pub const MINUTE: Millis = Millis(60_000);
pub const HOUR: Millis = Millis(3_600_000);
pub const DAY: Millis = Millis(86_400_000);

impl Timestamp {
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(since.as_millis() as i64)
    }

    pub fn plus(self, span: Millis) -> Self {
        Timestamp(self.0 + span.0)
    }

    pub fn since(self, earlier: Timestamp) -> Millis {
        Millis(self.0 - earlier.0)
    }

    /// `HH:MM:SS` in UTC.
    pub fn clock(self) -> String {
        let secs = self.0.div_euclid(1000);
        let day = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", day / 3600, (day / 60) % 60, day % 60)
    }

    /// Reads what `rfc3339` writes (UTC, `Z`, optional milliseconds).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let text = text.strip_suffix('Z')?;
        let (date, time) = text.split_once('T')?;
        let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
        let (y, m, day) = (d.next()??, d.next()??, d.next()??);
        let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
        let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (h, min, s) = (t.next()??, t.next()??, t.next()??);
        let ms: i64 = format!("{ms:0<3}").chars().take(3).collect::<String>().parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
            return None;
        }
        let days = days_from_civil(y, m, day);
        Some(Timestamp(((days * 86_400 + h * 3600 + min * 60 + s) * 1000) + ms))
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, for the audit log.
    pub fn rfc3339(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}T{}.{ms:03}Z", self.clock())
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Millis {
    pub fn from_secs(secs: i64) -> Self {
        Millis(secs * 1000)
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Compact human age: `45s`, `12m`, `3h`, `5d`.
    pub fn age(self) -> String {
        let s = self.0.max(0) / 1000;
        match s {
            0..60 => format!("{s}s"),
            60..3600 => format!("{}m", s / 60),
            3600..86_400 => format!("{}h", s / 3600),
            _ => format!("{}d", s / 86_400),
        }
    }

    /// Parses `500ms`, `15s`, `5m`, `6h`, `30d`, `2w`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{text}` has no unit (use ms, s, m, h, d or w)"))?;
        let (digits, unit) = text.split_at(split);
        let n: i64 = digits.parse().map_err(|_| format!("`{text}` does not start with a whole number"))?;
        let scale = match unit {
            "ms" => 1,
            "s" => SECOND.0,
            "m" => MINUTE.0,
            "h" => HOUR.0,
            "d" => DAY.0,
            "w" => 7 * DAY.0,
            _ => return Err(format!("`{text}` has unknown unit `{unit}` (use ms, s, m, h, d or w)")),
        };
        Ok(Millis(n * scale))
    }
}

impl fmt::Display for Millis {
    /// The shortest exact spelling: `30d`, `6h`, `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, size) in [("d", DAY.0), ("h", HOUR.0), ("m", MINUTE.0), ("s", SECOND.0)] {
            if ms != 0 && ms % size == 0 {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Millis::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_round_trip() {
        for text in ["30d", "6h", "5m", "15s", "250ms", "2w"] {
            let parsed = Millis::parse(text).unwrap();
            let again = Millis::parse(&parsed.to_string()).unwrap();
            assert_eq!(parsed, again, "{text}");
        }
        assert_eq!(Millis::parse("2w").unwrap(), Millis(14 * DAY.0));
        assert!(Millis::parse("30").unwrap_err().contains("no unit"));
        assert!(Millis::parse("3y").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn timestamps_format_in_utc() {
        let t = Timestamp(1_795_676_580_000);
        assert_eq!(t.rfc3339(), "2026-11-26T07:03:00.000Z");
        assert_eq!(t.clock(), "07:03:00");
        for t in [t, Timestamp(0), Timestamp(951_782_400_123), Timestamp(1_709_251_199_999)] {
            assert_eq!(Timestamp::parse_rfc3339(&t.rfc3339()), Some(t), "{}", t.rfc3339());
        }
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Millis::from_secs(125).age(), "2m");
        assert_eq!(Millis(3 * DAY.0 + 5).age(), "3d");
    }
}
