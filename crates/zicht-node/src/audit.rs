//! The audit side of every release: one processing record (Logboek Dataverwerkingen) and one
//! access record per logged request, appended to the node's hash chains in the same
//! transaction as the release log, before anything leaves.

use std::sync::atomic::{AtomicU64, Ordering};

use zicht_audit::{body, sha256_hex, AccessRecord, ForeignOperation, ProcessingRecord};
use zicht_model::{CodeList, NodeName, Purpose, Role};
use zicht_proto::v1 as pb;
use zicht_store::{AuditEntries, LedgerEntry};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A fresh id of `bytes` bytes as hex: unique per process and time (SHA-256 of the clock, the
/// process id and a counter). Not a secret: ids only link records.
fn new_id(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sha256_hex(seed.as_bytes())[..bytes * 2].to_owned()
}

/// The entity URI of a node (its role URI).
pub fn node_uri(node: NodeName) -> String {
    match node {
        NodeName::Region(region) => Role::Region(region).uri(),
        NodeName::Network(network) => Role::Network(network).uri(),
    }
}

/// One processing operation: what it is, where it runs, and the trace it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Operation {
    /// A new operation in a new trace.
    pub fn start(name: &'static str, resource: &str) -> Operation {
        Operation {
            trace_id: new_id(16),
            operation_id: new_id(8),
            parent_operation_id: None,
            foreign: None,
            name,
            resource: resource.to_owned(),
            started_ms: now_ms(),
        }
    }

    /// An operation started by this one, in the same trace.
    pub fn child(&self, name: &'static str) -> Operation {
        Operation {
            operation_id: new_id(8),
            parent_operation_id: Some(self.operation_id.clone()),
            foreign: None,
            name,
            started_ms: now_ms(),
            ..self.clone()
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
    /// The request.
    pub query: &'a pb::QueryRequest,
    /// `released`, `refused: <rule>`, `forwarded to ...`.
    pub outcome: &'a str,
    /// The result that leaves, if any.
    pub result: Option<&'a pb::ProtectedResult>,
    /// The populations released with it (the first is the total).
    pub ledger: &'a [LedgerEntry],
}

/// The processing and access records of one logged request.
pub fn entries(logged: &Logged<'_>) -> AuditEntries {
    let operation = logged.operation;
    let end = now_ms();
    let ok = logged.outcome.starts_with("released") || logged.outcome.starts_with("forwarded");
    let mut decisions = logged.outcome.chars().take(200).collect::<String>();
    if let Some(result) = logged.result {
        decisions.push_str("; ");
        decisions.push_str(&result.rules_applied.join("; "));
    }
    let purpose = Purpose::ALL
        .iter()
        .find(|p| p.code() == logged.query.purpose)
        .map_or_else(|| "unregistered".to_owned(), |p| p.uri());
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
        template: logged.query.template.chars().take(64).collect(),
        template_version: logged.query.template_version,
        parameter_hash: sha256_hex(&prost::Message::encode_to_vec(logged.query)),
        population: logged
            .result
            .and(logged.ledger.first())
            .map(|entry| entry.population.max(0) as u64),
        decisions,
        result_hash: logged
            .result
            .map(|result| sha256_hex(&prost::Message::encode_to_vec(result))),
    };
    let access = AccessRecord {
        operation_id: operation.operation_id.clone(),
        peer_id: logged.requester.to_owned(),
        role: logged.role.chars().take(200).collect(),
        action: operation.name.to_owned(),
        outcome: logged.outcome.chars().take(200).collect(),
        time: end,
    };
    AuditEntries {
        trace_id: operation.trace_id.clone(),
        operation_id: operation.operation_id.clone(),
        recorded_at: end,
        processing: body(&processing),
        access: body(&access),
    }
}
