//! A node's metrics, through the OpenTelemetry metrics API: requests by RPC and outcome
//! (refusals by rule), request latency, audit write latency, connection caps and CRL age.
//! Every node has its own meter provider (one process may run several nodes), read by a
//! Prometheus exporter served as text (by axum) on an optional plaintext port that carries
//! nothing else (no data, so no client certificate), and, when `otlp_endpoint` is set, by a
//! periodic OTLP export. Names follow Prometheus conventions once exported
//! (`zicht.requests` is scraped as `zicht_requests_total`, a histogram in seconds gets
//! `_seconds`).

use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry::metrics::{Counter, Gauge as OtelGauge, Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;
use tokio::net::TcpListener;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

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

/// A node's metrics.
pub struct Metrics {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    requests: Counter<u64>,
    latency: Histogram<f64>,
    audit_write: Histogram<f64>,
    connections_refused: Counter<u64>,
    decomposition_watch: Counter<u64>,
    gauges: [OtelGauge<f64>; 4],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    /// Metrics read only by the Prometheus exporter, under a resource naming no node.
    fn default() -> Self {
        Metrics::new(Resource::builder_empty().build(), None)
    }
}

/// Where metrics go besides the Prometheus exporter: an OTLP exporter, read every interval.
pub(crate) type OtlpReader = (opentelemetry_otlp::MetricExporter, Duration);

impl Metrics {
    /// A node's metrics under `resource`, also exported over OTLP when `otlp` is given.
    pub(crate) fn new(resource: Resource, otlp: Option<OtlpReader>) -> Metrics {
        let registry = prometheus::Registry::new();
        let mut builder = SdkMeterProvider::builder().with_resource(resource);
        match opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()
        {
            Ok(prometheus) => builder = builder.with_reader(prometheus),
            Err(error) => tracing::error!(%error, "no Prometheus metrics"),
        }
        if let Some((exporter, interval)) = otlp {
            builder = builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(interval)
                    .build(),
            );
        }
        let provider = builder.build();
        let meter = provider.meter("zicht");
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_description(description)
                .with_unit("s")
                .with_boundaries(BUCKETS.to_vec())
                .build()
        };
        let gauge = |name: &'static str, unit: &'static str, description: &'static str| {
            let builder = meter.f64_gauge(name).with_description(description);
            if unit.is_empty() {
                builder.build()
            } else {
                builder.with_unit(unit).build()
            }
        };
        Metrics {
            requests: meter
                .u64_counter("zicht.requests")
                .with_description("Requests by RPC and outcome (released, or the refusing rule).")
                .build(),
            latency: seconds("zicht.request.duration", "Request latency by RPC."),
            audit_write: seconds(
                "zicht.audit.write.duration",
                "Durable audit write latency (group commit included).",
            ),
            connections_refused: meter
                .u64_counter("zicht.connections.refused")
                .with_description("Connections closed at once because a cap was reached.")
                .build(),
            decomposition_watch: meter
                .u64_counter("zicht.decomposition.watch")
                .with_description(format!(
                    "Releases after which a requester had been given a multiple of {} distinct \
                     populations of one template and period in 365 days (logged for the auditor).",
                    crate::query::execute::DECOMPOSITION_WATCH
                ))
                .build(),
            gauges: [
                gauge("zicht.connections.open", "", "Verified connections open."),
                gauge(
                    "zicht.connections.max",
                    "",
                    "Most connections accepted at once (fitted to the descriptor limit).",
                ),
                gauge(
                    "zicht.crl.age",
                    "s",
                    "Seconds since the CRL in force was issued.",
                ),
                gauge(
                    "zicht.crl.overdue",
                    "s",
                    "Seconds the CRL in force is past its nextUpdate.",
                ),
            ],
            provider,
            registry,
        }
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
        self.requests.add(
            1,
            &[
                KeyValue::new("rpc", rpc),
                KeyValue::new("outcome", outcome.to_owned()),
            ],
        );
        self.latency
            .record(elapsed.as_secs_f64(), &[KeyValue::new("rpc", rpc)]);
    }

    /// Records how long one durable audit write took.
    pub fn audit_write(&self, elapsed: Duration) {
        self.audit_write.record(elapsed.as_secs_f64(), &[]);
    }

    /// Counts one connection closed at once for `reason` (`connections` or `handshakes`: the
    /// cap was reached).
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .add(1, &[KeyValue::new("reason", reason)]);
    }

    /// Counts one release that reached the decomposition watch for its requester.
    pub fn decomposition_watch(&self) {
        self.decomposition_watch.add(1, &[]);
    }

    /// Sets `gauge` to `value`.
    pub fn set(&self, gauge: Gauge, value: f64) {
        let index = match gauge {
            Gauge::ConnectionsOpen => 0,
            Gauge::ConnectionsMax => 1,
            Gauge::CrlAgeSeconds => 2,
            Gauge::CrlOverdueSeconds => 3,
        };
        self.gauges[index].record(value, &[]);
    }

    /// The Prometheus text exposition of the figures so far.
    pub fn render(&self) -> String {
        use prometheus::Encoder as _;
        let mut text = Vec::new();
        if let Err(error) =
            prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut text)
        {
            tracing::error!(%error, "render metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }

    /// Sends what the OTLP reader holds one last time and stops the readers (within `grace`).
    pub(crate) async fn stop(&self, grace: Duration) {
        let provider = self.provider.clone();
        // The periodic reader's worker is a thread; waiting for it is blocking work.
        let _ = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(grace)).await;
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
                    [(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
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
