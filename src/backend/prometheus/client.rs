//! The HTTP side of Prometheus: instant and range queries over the HTTP API,
//! and the one error type that tells "Prometheus is not there" apart from
//! "Prometheus refused this query" (with its own `errorType` and `error`).

use crate::domain::{Millis, Timestamp};
use prometheus_http_query::response::Data;
use std::fmt;
use std::time::Duration;

/// Why a query gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromError {
    /// Prometheus could not be reached, or did not answer as Prometheus
    /// does (wrong URL, not ready, a proxy's error page). Concerns every
    /// service alike.
    Unreachable(String),
    /// Prometheus answered and refused or failed this query, e.g. bad PromQL.
    /// Concerns the query's service only.
    Query { error_type: String, message: String },
}

impl fmt::Display for PromError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromError::Unreachable(why) => f.write_str(why),
            PromError::Query { error_type, message } => write!(f, "{error_type}: {message}"),
        }
    }
}

impl std::error::Error for PromError {}

/// One point of a range query's series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub at: Timestamp,
    pub value: f64,
}

/// A Prometheus HTTP API client.
#[derive(Clone)]
pub struct Client {
    inner: prometheus_http_query::Client,
    url: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("url", &self.url).finish()
    }
}

impl Client {
    /// A client for the Prometheus at `url` (e.g. `http://127.0.0.1:9090`);
    /// every request gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Client, PromError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .build()
            .map_err(|e| PromError::Unreachable(format!("cannot build an HTTP client: {}", root_cause(&e))))?;
        let inner = prometheus_http_query::Client::from(http, url)
            .map_err(|e| PromError::Unreachable(format!("`{url}` is not a usable Prometheus URL: {e}")))?;
        Ok(Client { inner, url: url.to_owned() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The value of every series an instant query returns at `at` (a
    /// scalar is one value); an empty vector when nothing matched.
    pub async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<f64>, PromError> {
        let result = self.inner.query(query).at(at.0.div_euclid(1000)).get().await.map_err(|e| self.error(e))?;
        Ok(match result.into_inner().0 {
            Data::Vector(series) => series.iter().map(|s| s.sample().value()).collect(),
            Data::Scalar(sample) => vec![sample.value()],
            Data::Matrix(series) => series.iter().filter_map(|s| s.samples().last().map(|p| p.value())).collect(),
        })
    }

    /// Every series a range query returns from `start` to `end` (whole
    /// seconds) every `step`.
    pub async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Millis,
    ) -> Result<Vec<Vec<Point>>, PromError> {
        let (start, end) = (start.0.div_euclid(1000), end.0.div_euclid(1000));
        let result =
            self.inner.query_range(query, start, end, step.as_secs_f64()).get().await.map_err(|e| self.error(e))?;
        let point = |s: &prometheus_http_query::response::Sample| Point {
            at: Timestamp((s.timestamp() * 1000.0).round() as i64),
            value: s.value(),
        };
        Ok(match result.into_inner().0 {
            Data::Matrix(series) => series.iter().map(|s| s.samples().iter().map(point).collect()).collect(),
            Data::Vector(series) => series.iter().map(|s| vec![point(s.sample())]).collect(),
            Data::Scalar(sample) => vec![vec![point(&sample)]],
        })
    }

    fn error(&self, error: prometheus_http_query::Error) -> PromError {
        use prometheus_http_query::Error as E;
        match error {
            E::Prometheus(e) => {
                let error_type = e.error_type().to_string();
                // `unavailable` is the server's state, not the query's fault.
                if e.is_unavailable() {
                    PromError::Unreachable(format!("{}: {}", self.url, e.message()))
                } else {
                    PromError::Query { error_type, message: e.message().to_owned() }
                }
            }
            E::Client(e) => {
                let why = match e.inner() {
                    Some(inner) if inner.is_timeout() => "timed out".to_owned(),
                    Some(inner) => match inner.status() {
                        Some(status) => format!("HTTP {status}"),
                        None => root_cause(inner),
                    },
                    None => e.to_string(),
                };
                PromError::Unreachable(format!("{}: {why}", self.url))
            }
            other => PromError::Unreachable(format!("{}: {other}", self.url)),
        }
    }
}

/// The innermost cause of an error, e.g. "Connection refused (os error 111)"
/// rather than "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
