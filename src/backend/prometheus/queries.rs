//! The PromQL of one service, built from its `[service.slo]` config or the
//! default metric conventions: templates with `{{service}}`, `{{track}}`
//! and `{{window}}` filled in.
//!
//! `{{track}}` is a regex for the `track` label: `primary|canary` for the
//! SLO (the service as its users see it), `primary` or `canary` for the
//! canary analysis. `{{window}}` is a PromQL duration such as `5m` or `30d`.

use crate::config::ServiceConfig;
use crate::domain::logs::Track;
use crate::domain::time::Millis;

pub const DEFAULT_GOOD: &str =
    r#"sum(rate(http_requests_total{service="{{service}}",track=~"{{track}}",code!~"5.."}[{{window}}]))"#;
pub const DEFAULT_TOTAL: &str =
    r#"sum(rate(http_requests_total{service="{{service}}",track=~"{{track}}"}[{{window}}]))"#;
pub const DEFAULT_BUCKETS: &str = r#"http_request_duration_seconds_bucket{service="{{service}}",track=~"{{track}}"}"#;

/// The query templates of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    service: String,
    good: String,
    total: String,
    buckets: String,
}

/// The `{{track}}` regex: both tracks, or one.
pub fn track_regex(track: Option<Track>) -> &'static str {
    match track {
        None => "primary|canary",
        Some(track) => track.as_str(),
    }
}

impl Queries {
    pub fn for_service(service: &ServiceConfig) -> Queries {
        let slo = service.slo.as_ref();
        Queries {
            service: service.name.clone(),
            good: slo.and_then(|s| s.good.clone()).unwrap_or_else(|| DEFAULT_GOOD.into()),
            total: slo.and_then(|s| s.total.clone()).unwrap_or_else(|| DEFAULT_TOTAL.into()),
            buckets: slo
                .and_then(|s| s.latency.as_ref())
                .and_then(|l| l.buckets.clone())
                .unwrap_or_else(|| DEFAULT_BUCKETS.into()),
        }
    }

    /// Good events per second over `window`.
    pub fn good(&self, track: Option<Track>, window: Millis) -> String {
        self.fill(&self.good, track, window)
    }

    /// All events per second over `window`.
    pub fn total(&self, track: Option<Track>, window: Millis) -> String {
        self.fill(&self.total, track, window)
    }

    /// The 99th percentile latency in seconds over `window`.
    pub fn p99(&self, track: Option<Track>, window: Millis) -> String {
        let buckets = self.fill(&self.buckets, track, window);
        format!("histogram_quantile(0.99, sum by (le) (rate({buckets}[{window}])))")
    }

    fn fill(&self, template: &str, track: Option<Track>, window: Millis) -> String {
        // The name lands inside a PromQL string literal.
        let service = self.service.replace('\\', r"\\").replace('"', "\\\"");
        template
            .replace("{{service}}", &service)
            .replace("{{track}}", track_regex(track))
            .replace("{{window}}", &window.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, LatencySli, SloConfig};
    use crate::domain::time::{DAY, MINUTE};

    fn service(toml: &str) -> ServiceConfig {
        let config = Config::parse(toml, std::path::Path::new("cockpit.toml")).unwrap();
        config.services[0].clone()
    }

    #[test]
    fn defaults_follow_the_http_requests_conventions() {
        let q = Queries::for_service(&service("[[service]]\nname = \"checkout\"\nstage = \"production\"\n"));
        assert_eq!(
            q.good(None, Millis(30 * DAY.0)),
            r#"sum(rate(http_requests_total{service="checkout",track=~"primary|canary",code!~"5.."}[30d]))"#
        );
        assert_eq!(
            q.total(Some(Track::Canary), Millis(5 * MINUTE.0)),
            r#"sum(rate(http_requests_total{service="checkout",track=~"canary"}[5m]))"#
        );
        assert_eq!(
            q.p99(Some(Track::Primary), Millis(5 * MINUTE.0)),
            r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="checkout",track=~"primary"}[5m])))"#
        );
    }

    #[test]
    fn configured_queries_are_filled_in() {
        let mut s = service("[[service]]\nname = \"we\\\"ird\"\nstage = \"production\"\n");
        s.slo = Some(SloConfig {
            objective: 99.0,
            window: Millis(7 * DAY.0),
            good: Some("sum(rate(ok{app=\"{{service}}\",t=~\"{{track}}\"}[{{window}}]))".into()),
            total: None,
            latency: Some(LatencySli {
                quantile: 0.99,
                threshold_ms: 300.0,
                buckets: Some("lat_bucket{app=\"{{service}}\"}".into()),
            }),
        });
        let q = Queries::for_service(&s);
        assert_eq!(q.good(None, Millis(HOUR_MS)), r#"sum(rate(ok{app="we\"ird",t=~"primary|canary"}[1h]))"#);
        assert!(q.total(None, Millis(HOUR_MS)).starts_with("sum(rate(http_requests_total{service=\"we\\\"ird\""));
        assert_eq!(
            q.p99(None, Millis(HOUR_MS)),
            r#"histogram_quantile(0.99, sum by (le) (rate(lat_bucket{app="we\"ird"}[1h])))"#
        );
    }

    const HOUR_MS: i64 = 3_600_000;
}
