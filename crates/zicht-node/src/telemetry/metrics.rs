//! Prometheus metrics of a node: requests by RPC and outcome (refusals by rule), request
//! latency, audit write latency, connection caps and CRL age, served as text (by axum) on an
//! optional plaintext port that carries nothing else (no data, so no client certificate).
//! Counting costs a lock and a few additions per request; with no metrics port nothing reads
//! them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpListener;

/// Upper bounds of the latency buckets, in milliseconds.
pub(crate) const BUCKETS_MS: [f64; 11] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0, 5000.0,
];

/// A latency histogram: cumulative counts per bucket bound (as Prometheus has them).
#[derive(Debug, Default, Clone)]
pub(crate) struct Histogram {
    pub(crate) counts: [u64; BUCKETS_MS.len()],
    pub(crate) count: u64,
    pub(crate) sum_ms: f64,
}

impl Histogram {
    pub(crate) fn observe(&mut self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        for (bound, count) in BUCKETS_MS.iter().zip(self.counts.iter_mut()) {
            if ms <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum_ms += ms;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS_MS.iter().zip(self.counts) {
            let le = bound / 1000.0;
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_ms / 1000.0);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<(&'static str, String), u64>,
    latency: BTreeMap<&'static str, Histogram>,
    audit_write: Histogram,
    connections_refused: BTreeMap<&'static str, u64>,
    gauges: BTreeMap<Gauge, f64>,
}

/// A figure of the node's state at the last check (not a count of events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gauge {
    /// Verified connections open.
    ConnectionsOpen,
    /// Most connections the node accepts at once (after fitting its descriptor limit).
    ConnectionsMax,
    /// Seconds since the CRL in force was issued.
    CrlAgeSeconds,
    /// Seconds the CRL in force is past its nextUpdate (0 while it is not).
    CrlOverdueSeconds,
}

impl Gauge {
    fn name_and_help(self) -> (&'static str, &'static str) {
        match self {
            Gauge::ConnectionsOpen => ("zicht_connections_open", "Verified connections open."),
            Gauge::ConnectionsMax => (
                "zicht_connections_max",
                "Most connections accepted at once (fitted to the descriptor limit).",
            ),
            Gauge::CrlAgeSeconds => (
                "zicht_crl_age_seconds",
                "Seconds since the CRL in force was issued.",
            ),
            Gauge::CrlOverdueSeconds => (
                "zicht_crl_overdue_seconds",
                "Seconds the CRL in force is past its nextUpdate.",
            ),
        }
    }
}

/// The figures at one moment: requests by RPC and outcome, latency by RPC, audit writes.
pub(crate) struct Snapshot {
    pub(crate) requests: Vec<(&'static str, String, u64)>,
    pub(crate) latency: Vec<(&'static str, Histogram)>,
    pub(crate) audit_write: Histogram,
}

/// A node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one request of `rpc` with `outcome` (`released` or the refusing rule) that took
    /// `elapsed`.
    pub fn request(&self, rpc: &'static str, outcome: &str, elapsed: Duration) {
        tracing::debug!(
            rpc,
            outcome,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "request"
        );
        let mut state = self.state();
        *state.requests.entry((rpc, outcome.to_owned())).or_default() += 1;
        state.latency.entry(rpc).or_default().observe(elapsed);
    }

    /// Records how long one durable audit write took.
    pub fn audit_write(&self, elapsed: Duration) {
        self.state().audit_write.observe(elapsed);
    }

    /// Counts one connection closed at once for `reason` (`connections` or `handshakes`: the
    /// cap was reached).
    pub fn connection_refused(&self, reason: &'static str) {
        *self.state().connections_refused.entry(reason).or_default() += 1;
    }

    /// Sets `gauge` to `value`.
    pub fn set(&self, gauge: Gauge, value: f64) {
        self.state().gauges.insert(gauge, value);
    }

    /// A copy of the figures so far (for the OTLP exporter).
    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            requests: state
                .requests
                .iter()
                .map(|((rpc, outcome), count)| (*rpc, outcome.clone(), *count))
                .collect(),
            latency: state
                .latency
                .iter()
                .map(|(rpc, histogram)| (*rpc, histogram.clone()))
                .collect(),
            audit_write: state.audit_write.clone(),
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        out.push_str("# HELP zicht_requests_total Requests by RPC and outcome (released, or the refusing rule).\n");
        out.push_str("# TYPE zicht_requests_total counter\n");
        for ((rpc, outcome), count) in &state.requests {
            let _ = writeln!(
                out,
                "zicht_requests_total{{rpc=\"{rpc}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        out.push_str("# HELP zicht_request_duration_seconds Request latency by RPC.\n");
        out.push_str("# TYPE zicht_request_duration_seconds histogram\n");
        for (rpc, histogram) in &state.latency {
            histogram.render(
                &mut out,
                "zicht_request_duration_seconds",
                &format!("rpc=\"{rpc}\""),
            );
        }
        out.push_str("# HELP zicht_audit_write_duration_seconds Durable audit write latency (group commit included).\n");
        out.push_str("# TYPE zicht_audit_write_duration_seconds histogram\n");
        state
            .audit_write
            .render(&mut out, "zicht_audit_write_duration_seconds", "");
        out.push_str("# HELP zicht_connections_refused_total Connections closed at once because a cap was reached.\n");
        out.push_str("# TYPE zicht_connections_refused_total counter\n");
        for (reason, count) in &state.connections_refused {
            let _ = writeln!(
                out,
                "zicht_connections_refused_total{{reason=\"{reason}\"}} {count}"
            );
        }
        for (gauge, value) in &state.gauges {
            let (name, help) = gauge.name_and_help();
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` (axum over hyper) until the task is aborted; every
/// other path is 404.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "metrics port ended");
    }
}

/// Binds the metrics port.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
