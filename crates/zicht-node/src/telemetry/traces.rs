//! Spans of a node's operations: every logged operation ([`crate::audit::Operation`]) runs in
//! a `tracing` span, and `tracing-opentelemetry` makes it an OpenTelemetry span whose trace
//! and span ids are the operation's trace and operation ids, with the W3C trace context of
//! the calling node as its parent. Export over OTLP/gRPC is off unless a node configures
//! `otlp_endpoint`.
//!
//! One process may run several nodes (the demo, tests), so there is one tracer provider per
//! process and spans are routed to the exporter of the node that made them (the `zicht.node`
//! field of the span); a node that exports nothing samples nothing. What leaves is filtered
//! at the exporter's door: only the attributes in [`ALLOWED`] (names and rules; no figures,
//! no PeerIDs), no events, no links. Outcome attributes are set once the operation's log
//! entry is written, so a span says no more than the log holds.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use opentelemetry::trace::{Link, SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator, SamplingDecision, SamplingResult,
    SdkTracerProvider, ShouldSample, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The `tracing` target of operation spans: the only spans that become OpenTelemetry spans
/// (the audit layer opens them, see [`crate::audit::Operation`]).
pub use crate::audit::SPAN_TARGET as TARGET;

/// The span field naming the node whose operation it is (its entity URI); used to route the
/// span, never exported as an attribute.
pub(crate) const NODE_FIELD: &str = "zicht.node";

/// The attributes a span may carry out of the node.
pub const ALLOWED: [&str; 5] = [
    "dpl.core.processing_activity_id",
    "zicht.template",
    "zicht.template_version",
    "zicht.outcome",
    "zicht.foreign_entity",
];

/// The exporters of the nodes of this process that export, by entity URI.
type Routes = RwLock<HashMap<String, Arc<BatchSpanProcessor>>>;

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(Routes::default)
}

fn route(node: &str) -> Option<Arc<BatchSpanProcessor>> {
    routes()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(node)
        .cloned()
}

/// The node a span's attributes name.
fn node_of(attributes: &[KeyValue]) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == NODE_FIELD)
        .map(|kv| kv.value.as_str().into_owned())
}

/// Samples the spans of nodes that export, and only those.
#[derive(Debug, Clone)]
struct ExportingNodes;

impl ShouldSample for ExportingNodes {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        use opentelemetry::trace::TraceContextExt;
        let exporting = node_of(attributes).is_some_and(|node| route(&node).is_some());
        SamplingResult {
            decision: if exporting {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state: parent_context
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}

/// Hands each ended span to its node's exporter, stripped to what may leave.
#[derive(Debug)]
struct Router;

impl SpanProcessor for Router {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        let Some(processor) = node_of(&span.attributes).and_then(|node| route(&node)) else {
            return;
        };
        // Only operations whose log entry is durable leave (the outcome is recorded then).
        if !span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "zicht.outcome")
        {
            return;
        }
        span.attributes
            .retain(|kv| ALLOWED.contains(&kv.key.as_str()));
        span.attributes.sort_by_key(|kv| {
            ALLOWED
                .iter()
                .position(|allowed| *allowed == kv.key.as_str())
        });
        span.events = Default::default();
        span.links = Default::default();
        processor.on_end(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

/// Trace and span ids in time order (see [`crate::audit::new_id`]): the audit log indexes
/// them, and time-ordered ids keep its indexes append-mostly.
#[derive(Debug)]
struct TimeOrdered;

impl IdGenerator for TimeOrdered {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from_bytes(crate::audit::new_id())
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from_bytes(crate::audit::new_id())
    }
}

/// The process's tracer provider.
fn provider() -> &'static SdkTracerProvider {
    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        SdkTracerProvider::builder()
            .with_id_generator(TimeOrdered)
            .with_sampler(ExportingNodes)
            .with_span_processor(Router)
            .build()
    })
}

/// The layer that makes operation spans OpenTelemetry spans: add it to the process's
/// `tracing` subscriber (the `zicht` binary does). Without it operations make their own ids
/// and nothing is exported.
pub fn layer<S>() -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    let operations: FilterFn = filter_fn(|metadata| metadata.target() == TARGET);
    tracing_opentelemetry::layer()
        .with_tracer(provider().tracer("zicht"))
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(operations)
}

/// One node's span export: its spans go to `exporter` in batches every `interval`, under its
/// own resource, until [`SpanExport::stop`].
pub(crate) struct SpanExport {
    node: String,
    processor: Arc<BatchSpanProcessor>,
}

impl SpanExport {
    /// Starts exporting the spans of the node with entity URI `node` and `resource`.
    pub(crate) fn start(
        node: &str,
        resource: &Resource,
        exporter: impl SpanExporter + 'static,
        interval: Duration,
    ) -> SpanExport {
        let config = BatchConfigBuilder::default()
            .with_scheduled_delay(interval)
            .with_max_queue_size(8192)
            .with_max_export_batch_size(512)
            .build();
        let mut processor = BatchSpanProcessor::new(exporter, config);
        processor.set_resource(resource);
        let processor = Arc::new(processor);
        routes()
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_owned(), processor.clone());
        // The provider exists once any node exports, even before a span was made.
        let _ = provider();
        SpanExport {
            node: node.to_owned(),
            processor,
        }
    }

    /// Stops routing the node's spans and sends what is queued (within `grace`).
    pub(crate) async fn stop(self, grace: Duration) {
        routes()
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.node);
        let processor = self.processor;
        // The processor's worker is a thread; waiting for it is blocking work.
        let _ = tokio::task::spawn_blocking(move || processor.shutdown_with_timeout(grace)).await;
    }
}
