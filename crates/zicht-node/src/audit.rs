//! The audit side of every release: one processing record (Logboek Dataverwerkingen) and one
//! access record per logged request, appended to the node's hash chains in the same
//! transaction as the release log, before anything leaves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::propagation::TraceContextPropagator;
use zicht_audit::{body, sha256_hex, AccessRecord, ForeignOperation, ProcessingRecord};
use zicht_model::{CodeList, NodeName, Purpose, Role, Table};
use zicht_store::{AccessEntry, AuditEntries, ProcessingEntry, ReleasedPopulation};

use crate::convert::RequestText;

/// The `tracing` target of operation spans: every logged operation runs in one, and only
/// these become OpenTelemetry spans (`telemetry::traces`).
pub const SPAN_TARGET: &str = "zicht::operation";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh id of `N` bytes (8 or more), in time order: 4 bytes of seconds since the Unix
/// epoch, 4 bytes of a per-process counter (starting at a random point), then random bytes.
/// Unique within a process for 2^32 ids a second; ids of different processes differ by their
/// counters' random starts. Time order keeps the log's indexes on these ids append-mostly,
/// where random ids made every append touch random index pages. W3C trace context asks
/// randomness only of a trace id's right-most 7 bytes, which a 16-byte id has. Not a secret:
/// ids only link records. Operation spans get their ids from here too
/// ([`crate::telemetry::traces`]), so a span's ids are its operation's.
pub(crate) fn new_id<const N: usize>() -> [u8; N] {
    static COUNTER: std::sync::OnceLock<AtomicU64> = std::sync::OnceLock::new();
    let counter = COUNTER.get_or_init(|| {
        let mut start = [0u8; 4];
        random(&mut start);
        AtomicU64::new(u64::from(u32::from_be_bytes(start)))
    });
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let count = counter.fetch_add(1, Ordering::Relaxed) as u32;
    let seconds = u32::try_from(since_epoch.as_secs()).unwrap_or(u32::MAX);
    let mut id = [0u8; N];
    let (time, rest) = id.split_at_mut(N.min(4));
    time.copy_from_slice(&seconds.to_be_bytes()[..time.len()]);
    let (counted, tail) = rest.split_at_mut(rest.len().min(4));
    counted.copy_from_slice(&count.to_be_bytes()[..counted.len()]);
    random(tail);
    id
}

/// A fresh trace id (16 bytes) and operation id (8 bytes), as hex.
fn fresh_trace_id() -> String {
    hex::encode(new_id::<16>())
}

pub(crate) fn fresh_operation_id() -> String {
    hex::encode(new_id::<8>())
}

/// Fills `bytes` from the operating system's random source.
fn random(bytes: &mut [u8]) {
    // No entropy source is a broken machine; ids would collide, so stop loudly.
    getrandom::fill(bytes).unwrap_or_else(|e| panic!("no random source: {e}"));
}

/// The entity URI of a node (its role URI).
pub fn node_uri(node: NodeName) -> String {
    match node {
        NodeName::Region(region) => Role::Region(region).uri(),
        NodeName::Network(network) => Role::Network(network).uri(),
    }
}

/// One processing operation: what it is, where it runs, and the trace it belongs to. It runs
/// in a `tracing` span (target [`SPAN_TARGET`]); where the process's
/// subscriber makes that an OpenTelemetry span, the operation's ids are the span's.
#[derive(Debug, Clone)]
pub struct Operation {
    /// 16 bytes, hex.
    pub trace_id: String,
    /// 8 bytes, hex.
    pub operation_id: String,
    /// The operation on this node that started this one.
    pub parent_operation_id: Option<String>,
    /// The caller's operation on another node.
    pub foreign: Option<ForeignOperation>,
    /// What is done, e.g. `zicht.v1.Inway/Query`.
    pub name: &'static str,
    /// The node processing (its entity URI), or `local` for `zicht query` on a database.
    pub resource: String,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: i64,
    /// The span it runs in.
    pub span: tracing::Span,
}

/// The kind of an operation's span, as OpenTelemetry names it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Server,
    Client,
    Internal,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Internal => "internal",
        }
    }
}

/// The span of an operation `name` of the node `resource`: a root span, or a child of
/// `parent`. Outcome fields stay empty until the operation is logged.
fn operation_span(
    name: &'static str,
    resource: &str,
    kind: Kind,
    parent: Option<&tracing::Span>,
) -> tracing::Span {
    macro_rules! span {
        ($parent:expr) => {
            tracing::info_span!(
                target: SPAN_TARGET,
                parent: $parent,
                "operation",
                otel.name = name,
                otel.kind = kind.as_str(),
                zicht.node = resource,
                dpl.core.processing_activity_id = tracing::field::Empty,
                zicht.template = tracing::field::Empty,
                zicht.template_version = tracing::field::Empty,
                zicht.outcome = tracing::field::Empty,
                zicht.foreign_entity = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                otel.status_description = tracing::field::Empty,
            )
        };
    }
    match parent {
        Some(parent) => span!(parent),
        None => span!(None),
    }
}

/// The trace and span id of `span`'s OpenTelemetry span, as hex, when the process makes
/// operation spans OpenTelemetry spans.
fn span_ids(span: &tracing::Span) -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

/// The caller's trace context from a W3C `traceparent`, read by OpenTelemetry's own
/// propagator: `None` when the header is invalid (the operation then starts a new trace).
fn extract(traceparent: &str) -> Option<opentelemetry::Context> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Whether `text` is a trace id as W3C trace context writes it: 32 lower-case hex digits,
/// not all zero.
pub fn is_trace_id(text: &str) -> bool {
    use opentelemetry::trace::TraceId;
    text.len() == 32
        && !text.bytes().any(|b| b.is_ascii_uppercase())
        && TraceId::from_hex(text).is_ok_and(|id| id != TraceId::INVALID)
}

impl Operation {
    /// A new operation in a new trace.
    pub fn start(name: &'static str, resource: &str) -> Operation {
        Operation::rooted(name, resource, Kind::Server, None)
    }

    /// A root operation, under a remote parent (a caller's trace context) if given.
    fn rooted(
        name: &'static str,
        resource: &str,
        kind: Kind,
        remote: Option<opentelemetry::Context>,
    ) -> Operation {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let span = operation_span(name, resource, kind, None);
        let remote_trace = remote
            .as_ref()
            .map(|context| context.span().span_context().trace_id().to_string());
        if let Some(parent) = remote {
            // Only fails when no OpenTelemetry layer is installed: the ids are then our own.
            let _ = span.set_parent(parent);
        }
        let (trace_id, operation_id) = span_ids(&span).unwrap_or_else(|| {
            (
                remote_trace.unwrap_or_else(fresh_trace_id),
                fresh_operation_id(),
            )
        });
        Operation {
            trace_id,
            operation_id,
            parent_operation_id: None,
            foreign: None,
            name,
            resource: resource.to_owned(),
            started_ms: now_ms(),
            span,
        }
    }

    /// An operation caused by another node's call: in the caller's trace when the call
    /// carried a valid W3C `traceparent`, with the caller's operation as `foreign_operation`;
    /// otherwise in a new trace.
    pub fn called(
        name: &'static str,
        resource: &str,
        traceparent: Option<&str>,
        caller: &str,
    ) -> Operation {
        use opentelemetry::trace::TraceContextExt;
        let Some(context) = traceparent.and_then(extract) else {
            return Operation::start(name, resource);
        };
        let parent = context.span().span_context().span_id().to_string();
        let mut operation = Operation::rooted(name, resource, Kind::Server, Some(context));
        let entity: String = caller.chars().take(200).collect();
        operation
            .span
            .record("zicht.foreign_entity", entity.as_str());
        operation.foreign = Some(ForeignOperation {
            trace_id: operation.trace_id.clone(),
            operation_id: parent,
            entity,
            on_behalf_of: None,
        });
        operation
    }

    /// The same operation, recording that the calling node asked on behalf of `person` (kept
    /// only with a foreign operation: a call without trace context names no other operation).
    pub fn on_behalf_of(mut self, person: Option<zicht_model::PeerId>) -> Operation {
        if let (Some(foreign), Some(person)) = (&mut self.foreign, person) {
            foreign.on_behalf_of = Some(person.to_string());
        }
        self
    }

    /// This operation as a W3C `traceparent` header (sampled), written by OpenTelemetry's own
    /// propagator, for the calls it makes to other nodes.
    pub fn traceparent(&self) -> String {
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
        let span = SpanContext::new(
            TraceId::from_hex(&self.trace_id).unwrap_or(TraceId::INVALID),
            SpanId::from_hex(&self.operation_id).unwrap_or(SpanId::INVALID),
            TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        let context = opentelemetry::Context::new().with_remote_span_context(span);
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        carrier.remove("traceparent").unwrap_or_default()
    }

    /// An operation started by this one, in the same trace: a call to other nodes
    /// (`.../Forward`) or work of its own.
    pub fn child(&self, name: &'static str) -> Operation {
        let kind = if name.ends_with("/Forward") {
            Kind::Client
        } else {
            Kind::Internal
        };
        let span = operation_span(name, &self.resource, kind, Some(&self.span));
        let operation_id = span_ids(&span).map_or_else(fresh_operation_id, |(_, op)| op);
        Operation {
            operation_id,
            parent_operation_id: Some(self.operation_id.clone()),
            foreign: None,
            name,
            started_ms: now_ms(),
            span,
            ..self.clone()
        }
    }

    /// Records on the operation's span what its log entry says: the processing activity,
    /// template and version, the outcome (or the refusing rule) and whether it went well.
    /// Called once the entry is durable, so a span never says more than the log.
    pub(crate) fn logged(&self, record: &ProcessingRecord) {
        let outcome = record.decisions.split(';').next().unwrap_or("").trim();
        let span = &self.span;
        span.record(
            "dpl.core.processing_activity_id",
            record.processing_activity_id.as_str(),
        );
        span.record("zicht.template", record.template.as_str());
        span.record("zicht.template_version", i64::from(record.template_version));
        span.record("zicht.outcome", outcome);
        if record.status_code == "OK" {
            span.record("otel.status_code", "ok");
        } else {
            span.record("otel.status_code", "error");
            span.record("otel.status_description", outcome);
        }
    }
}

/// What one logged request puts in the audit chains.
pub struct Logged<'a> {
    /// The operation.
    pub operation: &'a Operation,
    /// The caller's PeerID (or `local`).
    pub requester: &'a str,
    /// The caller's role URI.
    pub role: &'a str,
    /// What the operation processed: a template call (as asked) or an activity of its own.
    pub subject: Subject<'a>,
    /// `released`, `refused: <rule>`, `forwarded to ...`.
    pub outcome: &'a str,
    /// The table that leaves, if any.
    pub result: Option<&'a Table>,
    /// The population released with it (perturbed person counts), for the per-day limit.
    pub population: Option<&'a ReleasedPopulation>,
    /// The population's total as it was published (perturbed unless exact for its owner):
    /// the log never holds a count that did not leave, so reading it tells an auditor no
    /// more than the answer did.
    pub population_published: Option<u64>,
}

impl<'a> Logged<'a> {
    /// An entry with no result and no population (a refusal, a forward, an activity); set
    /// `result` and the population with struct update syntax where something leaves.
    pub fn new(
        operation: &'a Operation,
        requester: &'a str,
        role: &'a str,
        subject: Subject<'a>,
        outcome: &'a str,
    ) -> Logged<'a> {
        Logged {
            operation,
            requester,
            role,
            subject,
            outcome,
            result: None,
            population: None,
            population_published: None,
        }
    }
}

/// What a logged operation processed.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A template call, valid or not, as the log keeps its text (its hash is the record's
    /// parameter hash).
    Request(&'a RequestText),
    /// An operation that is not a template call (reading or checkpointing the audit logs),
    /// under its processing activity's URI.
    Activity(&'a str),
}

impl Subject<'_> {
    /// The template code as logged (shortened: it is the caller's text), or `audit`.
    pub fn template(&self) -> String {
        match self {
            Subject::Request(request) => request.template.clone(),
            Subject::Activity(_) => "audit".to_owned(),
        }
    }

    /// The purpose code as logged (shortened), empty for an activity.
    pub fn purpose(&self) -> String {
        match self {
            Subject::Request(request) => request.purpose.clone(),
            Subject::Activity(_) => String::new(),
        }
    }

    /// The group-by dimensions as logged (shortened), empty for an activity.
    pub fn group_by(&self) -> String {
        match self {
            Subject::Request(request) => request.group_by.clone(),
            Subject::Activity(_) => String::new(),
        }
    }
}

/// The processing activity URI of a registered purpose's code.
pub fn purpose_uri(code: &str) -> Option<String> {
    Purpose::from_code(code).map(|p| p.uri())
}

/// The processing and access records of one logged request, as the chains hold them, and the
/// processing record itself.
pub fn entries(logged: &Logged<'_>) -> (AuditEntries, ProcessingRecord) {
    let operation = logged.operation;
    let end = now_ms();
    let ok = logged.outcome.starts_with("released") || logged.outcome.starts_with("forwarded");
    let mut decisions = logged.outcome.chars().take(200).collect::<String>();
    if let Some(result) = logged.result {
        decisions.push_str("; ");
        decisions.push_str(&result.rules.join("; "));
    }
    let (purpose, template_version, parameter_hash) = match logged.subject {
        Subject::Activity(activity) => (activity.to_owned(), 0, sha256_hex(activity.as_bytes())),
        Subject::Request(request) => (
            purpose_uri(&request.purpose).unwrap_or_else(|| "unregistered".to_owned()),
            request.template_version,
            request.parameter_hash.clone(),
        ),
    };
    let processing = ProcessingRecord {
        trace_id: operation.trace_id.clone(),
        operation_id: operation.operation_id.clone(),
        parent_operation_id: operation.parent_operation_id.clone(),
        status_code: if ok { "OK" } else { "ERROR" }.to_owned(),
        name: operation.name.to_owned(),
        start_time: operation.started_ms,
        end_time: end,
        foreign_operation: operation.foreign.clone(),
        resource: operation.resource.clone(),
        processing_activity_id: purpose,
        template: logged.subject.template(),
        template_version,
        parameter_hash,
        population: logged.result.and(logged.population_published),
        decisions,
        // The hash of the table as it left, in its wire form.
        result_hash: logged.result.map(|table| {
            sha256_hex(&prost::Message::encode_to_vec(
                &zicht_proto::domain::result(table),
            ))
        }),
        data_subject_id: None,
        consented: None,
    };
    let access = AccessRecord {
        operation_id: operation.operation_id.clone(),
        peer_id: logged.requester.to_owned(),
        role: logged.role.chars().take(200).collect(),
        action: operation.name.to_owned(),
        outcome: logged.outcome.chars().take(200).collect(),
        time: end,
    };
    let entries = AuditEntries {
        processing: vec![processing_entry(&processing)],
        access: AccessEntry {
            operation_id: access.operation_id.clone(),
            body: body(&access),
            peer_id: access.peer_id,
            recorded_at: access.time,
        },
    };
    (entries, processing)
}

/// A processing record as its chain holds it.
pub(crate) fn processing_entry(record: &ProcessingRecord) -> ProcessingEntry {
    ProcessingEntry {
        trace_id: record.trace_id.clone(),
        operation_id: record.operation_id.clone(),
        body: body(record),
        template: record.template.clone(),
        activity: record.processing_activity_id.clone(),
        recorded_at: record.end_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_and_bad_ones_start_a_new_trace() {
        let outway = Operation::start("zicht.v1.Outway/FederatedQuery", "urn:zicht:network:jenn");
        let header = outway.traceparent();
        let inway = Operation::called(
            "zicht.v1.Inway/Query",
            "urn:zicht:region:drenthe",
            Some(&header),
            "urn:zicht:network:jenn",
        );
        assert_eq!(inway.trace_id, outway.trace_id);
        let foreign = inway.foreign.unwrap();
        assert_eq!(foreign.operation_id, outway.operation_id);
        assert_eq!(foreign.entity, "urn:zicht:network:jenn");
        assert_ne!(inway.operation_id, outway.operation_id);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            let fresh = Operation::called("x", "y", Some(bad), "z");
            assert!(fresh.foreign.is_none(), "{bad}");
        }
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "",
            "00000000000000000000000000000000",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            "4bf92f3577b34da6a3ce929d0e0e473",
            "4bf92f3577b34da6a3ce929d0e0e47zz",
        ] {
            assert!(!is_trace_id(bad), "{bad}");
        }
    }
}
