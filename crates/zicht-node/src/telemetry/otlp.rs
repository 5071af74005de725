//! Optional OpenTelemetry export over OTLP/gRPC (off unless `otlp_endpoint` is configured).
//!
//! - **Traces**: one span per processing record, made from the record after it is durable in
//!   the node's log (never before: a span never describes something that was not logged).
//!   The span id is the record's operation id and its parent is the parent operation, or the
//!   calling node's operation (`foreign_operation`), so a collector shows one federated query
//!   across nodes as one trace. Spans carry only what the processing record holds without the
//!   figures: name, times, status and refusing rule, template, processing activity. No
//!   population, no result hash, no PeerID.
//! - **Metrics**: the node's request counts by RPC and outcome, request latency and audit
//!   write latency, cumulative, every interval.
//!
//! Export never slows a request: records go through a bounded queue that drops (and counts)
//! spans when the collector cannot keep up. When export is off nothing of this runs: the store
//! has no committed-hook and no task is started.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zicht_audit::ProcessingRecord;
use zicht_proto::otlp::collector::metrics::v1 as metrics_service;
use zicht_proto::otlp::collector::trace::v1 as trace_service;
use zicht_proto::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use zicht_proto::otlp::metrics::v1 as otel_metrics;
use zicht_proto::otlp::resource::v1::Resource;
use zicht_proto::otlp::trace::v1 as otel_trace;

use crate::settings::OtlpSettings;
use crate::telemetry::metrics::{Histogram, Metrics, BUCKETS_MS};

/// Spans waiting for the next export at most; beyond this, spans are dropped and counted.
const QUEUE: usize = 8192;
/// Spans per export request at most.
const BATCH: usize = 512;

/// A running exporter.
pub struct Exporter {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Exporter {
    /// Sends what is queued and the metrics one last time (within `grace`), then ends.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts exporting for the node `resource` (its entity URI) named `node`: returns the hook
/// to give the store (each committed release becomes a span) and the exporter.
pub fn start(
    settings: &OtlpSettings,
    node: &str,
    resource: &str,
    metrics: Arc<Metrics>,
) -> Result<(zicht_store::Committed, Exporter), String> {
    let endpoint = tonic::transport::Endpoint::from_shared(settings.endpoint.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let channel = endpoint.connect_lazy();
    // The request's task only queues the committed body; the exporter task parses it.
    let (sender, receiver) = mpsc::channel::<String>(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let hook_dropped = dropped.clone();
    let hook: zicht_store::Committed = Arc::new(move |entries: &zicht_store::AuditEntries| {
        if sender.try_send(entries.processing.clone()).is_err() {
            hook_dropped.fetch_add(1, Ordering::Relaxed);
        }
    });
    let (stop, stopped) = oneshot::channel();
    let run = Run {
        resource: Resource {
            attributes: vec![
                text("service.name", "zicht-node"),
                text("service.instance.id", node),
                text("zicht.node", resource),
            ],
            ..Default::default()
        },
        traces: trace_service::trace_service_client::TraceServiceClient::new(channel.clone()),
        metrics_client: metrics_service::metrics_service_client::MetricsServiceClient::new(channel),
        metrics,
        dropped,
        started_ns: nanos(crate::audit::now_ms()),
    };
    let task = tokio::spawn(run.run(receiver, settings.interval, stopped));
    Ok((
        hook,
        Exporter {
            stop: Some(stop),
            task,
        },
    ))
}

struct Run {
    resource: Resource,
    traces: trace_service::trace_service_client::TraceServiceClient<tonic::transport::Channel>,
    metrics_client:
        metrics_service::metrics_service_client::MetricsServiceClient<tonic::transport::Channel>,
    metrics: Arc<Metrics>,
    dropped: Arc<AtomicU64>,
    started_ns: u64,
}

impl Run {
    async fn run(
        mut self,
        mut records: mpsc::Receiver<String>,
        interval: Duration,
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut spans = Vec::new();
        loop {
            tokio::select! {
                received = records.recv() => match received {
                    Some(body) => {
                        spans.extend(span_of(&body));
                        if spans.len() >= BATCH {
                            self.send_spans(&mut spans).await;
                        }
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    self.send_spans(&mut spans).await;
                    self.send_metrics().await;
                }
                _ = &mut stopped => break,
            }
        }
        // Last export: what is queued, and the final figures.
        while let Ok(body) = records.try_recv() {
            spans.extend(span_of(&body));
        }
        self.send_spans(&mut spans).await;
        self.send_metrics().await;
    }

    /// Sends `spans` (emptying it); a failed export loses them, counted as dropped.
    async fn send_spans(&mut self, spans: &mut Vec<otel_trace::Span>) {
        if spans.is_empty() {
            return;
        }
        let batch = std::mem::take(spans);
        let count = batch.len() as u64;
        let request = trace_service::ExportTraceServiceRequest {
            resource_spans: vec![otel_trace::ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![otel_trace::ScopeSpans {
                    scope: Some(scope()),
                    spans: batch,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        if let Err(status) = self.traces.export(request).await {
            self.dropped.fetch_add(count, Ordering::Relaxed);
            tracing::warn!(
                spans_lost = count,
                reason = status.message(),
                "OTLP trace export failed"
            );
        }
    }

    async fn send_metrics(&mut self) {
        let now = nanos(crate::audit::now_ms());
        let request = metrics_service::ExportMetricsServiceRequest {
            resource_metrics: vec![otel_metrics::ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![otel_metrics::ScopeMetrics {
                    scope: Some(scope()),
                    metrics: self.figures(now),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        if let Err(status) = self.metrics_client.export(request).await {
            tracing::warn!(reason = status.message(), "OTLP metrics export failed");
        }
    }

    /// The node's metrics as OTLP: cumulative since the exporter started.
    fn figures(&self, now: u64) -> Vec<otel_metrics::Metric> {
        let snapshot = self.metrics.snapshot();
        let point = |attributes: Vec<KeyValue>, value: u64| otel_metrics::NumberDataPoint {
            attributes,
            start_time_unix_nano: self.started_ns,
            time_unix_nano: now,
            value: Some(otel_metrics::number_data_point::Value::AsInt(
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
            ..Default::default()
        };
        let sum = |points| {
            Some(otel_metrics::metric::Data::Sum(otel_metrics::Sum {
                data_points: points,
                aggregation_temporality: otel_metrics::AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            }))
        };
        let histogram = |points| {
            Some(otel_metrics::metric::Data::Histogram(
                otel_metrics::Histogram {
                    data_points: points,
                    aggregation_temporality: otel_metrics::AggregationTemporality::Cumulative
                        as i32,
                },
            ))
        };
        let requests = snapshot
            .requests
            .iter()
            .map(|(rpc, outcome, count)| {
                point(vec![text("rpc", rpc), text("outcome", outcome)], *count)
            })
            .collect();
        let latency = snapshot
            .latency
            .iter()
            .map(|(rpc, h)| histogram_point(h, vec![text("rpc", rpc)], self.started_ns, now))
            .collect();
        vec![
            otel_metrics::Metric {
                name: "zicht.requests".to_owned(),
                description: "Requests by RPC and outcome (released, or the refusing rule)."
                    .to_owned(),
                unit: "{request}".to_owned(),
                data: sum(requests),
                ..Default::default()
            },
            otel_metrics::Metric {
                name: "zicht.request.duration".to_owned(),
                description: "Request latency by RPC.".to_owned(),
                unit: "ms".to_owned(),
                data: histogram(latency),
                ..Default::default()
            },
            otel_metrics::Metric {
                name: "zicht.audit.write.duration".to_owned(),
                description: "Durable audit write latency (group commit included).".to_owned(),
                unit: "ms".to_owned(),
                data: histogram(vec![histogram_point(
                    &snapshot.audit_write,
                    Vec::new(),
                    self.started_ns,
                    now,
                )]),
                ..Default::default()
            },
            otel_metrics::Metric {
                name: "zicht.otlp.dropped_spans".to_owned(),
                description: "Spans not exported (queue full or export failed).".to_owned(),
                unit: "{span}".to_owned(),
                data: sum(vec![point(
                    Vec::new(),
                    self.dropped.load(Ordering::Relaxed),
                )]),
                ..Default::default()
            },
        ]
    }
}

/// An OTLP histogram point from cumulative bucket counts: OTLP counts each bucket on its own.
fn histogram_point(
    histogram: &Histogram,
    attributes: Vec<KeyValue>,
    start: u64,
    now: u64,
) -> otel_metrics::HistogramDataPoint {
    let mut bucket_counts = Vec::with_capacity(BUCKETS_MS.len() + 1);
    let mut below = 0;
    for cumulative in histogram.counts {
        bucket_counts.push(cumulative - below);
        below = cumulative;
    }
    bucket_counts.push(histogram.count - below);
    otel_metrics::HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: histogram.count,
        sum: Some(histogram.sum_ms),
        bucket_counts,
        explicit_bounds: BUCKETS_MS.to_vec(),
        ..Default::default()
    }
}

/// The span of a processing record's committed body (none if it is not one: the node wrote
/// it, so that would be a bug, and telemetry is not the place to fail for it).
fn span_of(body: &str) -> Option<otel_trace::Span> {
    serde_json::from_str::<ProcessingRecord>(body)
        .ok()
        .map(|record| span(&record))
}

/// The span of one processing record.
fn span(record: &ProcessingRecord) -> otel_trace::Span {
    let id = |hex: &str| zicht_audit::unhex(hex).unwrap_or_default();
    let (parent, kind) = match (&record.parent_operation_id, &record.foreign_operation) {
        (Some(parent), _) => (id(parent), otel_trace::span::SpanKind::Internal),
        (None, Some(foreign)) if foreign.trace_id == record.trace_id => (
            id(&foreign.operation_id),
            otel_trace::span::SpanKind::Server,
        ),
        (None, _) => (Vec::new(), otel_trace::span::SpanKind::Server),
    };
    let kind = if record.name.ends_with("/Forward") {
        otel_trace::span::SpanKind::Client
    } else {
        kind
    };
    let outcome = record.decisions.split(';').next().unwrap_or("").trim();
    let (code, message) = if record.status_code == "OK" {
        (otel_trace::status::StatusCode::Ok, String::new())
    } else {
        (otel_trace::status::StatusCode::Error, outcome.to_owned())
    };
    let mut attributes = vec![
        text(
            "dpl.core.processing_activity_id",
            &record.processing_activity_id,
        ),
        text("zicht.template", &record.template),
        int("zicht.template_version", i64::from(record.template_version)),
        text("zicht.outcome", outcome),
    ];
    if let Some(foreign) = &record.foreign_operation {
        attributes.push(text("zicht.foreign_entity", &foreign.entity));
    }
    otel_trace::Span {
        trace_id: id(&record.trace_id),
        span_id: id(&record.operation_id),
        parent_span_id: parent,
        name: record.name.clone(),
        kind: kind as i32,
        start_time_unix_nano: nanos(record.start_time),
        end_time_unix_nano: nanos(record.end_time),
        attributes,
        status: Some(otel_trace::Status {
            message,
            code: code as i32,
        }),
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "zicht".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

fn nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_become_per_bucket_counts() {
        let mut histogram = Histogram::default();
        for ms in [0.2, 0.7, 3.0, 3.0, 9000.0] {
            histogram.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let point = histogram_point(&histogram, Vec::new(), 1, 2);
        assert_eq!(point.count, 5);
        assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), 5);
        // <=0.5, <=1, <=2.5, <=5 ..., and the overflow bucket past 5000 ms.
        assert_eq!(&point.bucket_counts[..4], &[1, 1, 0, 2]);
        assert_eq!(point.bucket_counts.last(), Some(&1));
    }

    #[test]
    fn a_called_operation_is_a_server_span_under_the_callers_operation() {
        let record = ProcessingRecord {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
            operation_id: "00f067aa0ba902b7".to_owned(),
            parent_operation_id: None,
            status_code: "ERROR".to_owned(),
            name: "zicht.v1.Inway/Query".to_owned(),
            start_time: 1_700_000_000_000,
            end_time: 1_700_000_000_004,
            foreign_operation: Some(zicht_audit::ForeignOperation {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
                operation_id: "1111111111111111".to_owned(),
                entity: "urn:zicht:network:jenn".to_owned(),
                on_behalf_of: None,
            }),
            resource: "urn:zicht:region:drenthe".to_owned(),
            processing_activity_id: "urn:zicht:purpose:bovenregionale-sturing".to_owned(),
            template: "youth_in_care".to_owned(),
            template_version: 1,
            parameter_hash: "ab".to_owned(),
            population: Some(1234),
            decisions: "refused: period-granularity; x".to_owned(),
            result_hash: Some("cd".to_owned()),
        };
        let span = span(&record);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.parent_span_id, vec![0x11; 8]);
        assert_eq!(span.kind, otel_trace::span::SpanKind::Server as i32);
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            4_000_000
        );
        let status = span.status.unwrap();
        assert_eq!(status.code, otel_trace::status::StatusCode::Error as i32);
        assert_eq!(status.message, "refused: period-granularity");
        // No figures leave in telemetry.
        let encoded = format!("{:?}", span.attributes);
        assert!(!encoded.contains("1234") && !encoded.contains("population"));
    }
}
