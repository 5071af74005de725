//! The `Audit` service: read-only access to the node's audit chains for certificates with the
//! `auditor` role, and nothing for anyone else. Each call is itself logged (fail-closed), so
//! the logs record who read them.

use std::pin::Pin;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use zicht_model::{PeerIdentity, Role};
use zicht_proto::v1 as pb;
use zicht_store::{AuditLog, Store};

use crate::audit::{Logged, Operation};
use crate::execute::log_entry;
use crate::service::{anyhow_chain, identity, Inway};

/// Most entries one `Entries` call returns.
const MAX_ENTRIES: u32 = 100_000;

/// The `Audit` service of one node.
pub struct Auditor {
    inway: Arc<Inway>,
}

impl Auditor {
    /// The audit API over the node's store (through its `Inway`, which holds it).
    pub fn new(inway: Arc<Inway>) -> Auditor {
        Auditor { inway }
    }

    /// Checks the role, logs the call, and returns the store to read.
    async fn admit(&self, identity: &PeerIdentity, action: &'static str) -> Result<Store, Status> {
        let allowed = matches!(identity.role, Role::Auditor { .. });
        let Some(store) = self.inway.store.clone() else {
            return Err(Status::unavailable("this node has no database"));
        };
        let operation = Operation::start(action, &self.inway.resource);
        let query = zicht_proto::v1::QueryRequest {
            template: "audit".to_owned(),
            ..Default::default()
        };
        let outcome = if allowed {
            "released audit entries"
        } else {
            "refused: not-auditor"
        };
        let logged = Logged {
            operation: &operation,
            requester: &identity.peer_id.to_string(),
            role: &identity.role.uri(),
            query: &query,
            outcome,
            result: None,
            ledger: &[],
        };
        if let Err(error) = log_entry(&store, &logged).await {
            eprintln!("zicht node: {}", anyhow_chain(&error));
            return Err(Status::unavailable(
                "the node could not write its access log; nothing was read",
            ));
        }
        if !allowed {
            return Err(Status::permission_denied(format!(
                "missing grant: {} ({}) may not read audit logs; only the auditor role may",
                identity.peer_id,
                identity.role.uri()
            )));
        }
        Ok(store)
    }
}

fn kind(log: AuditLog) -> pb::AuditLogKind {
    match log {
        AuditLog::Processing => pb::AuditLogKind::Processing,
        AuditLog::Access => pb::AuditLogKind::Access,
    }
}

type EntryStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::AuditEntry, Status>> + Send>>;

#[tonic::async_trait]
impl pb::audit_server::Audit for Auditor {
    type EntriesStream = EntryStream;

    async fn entries(
        &self,
        request: Request<pb::AuditQuery>,
    ) -> Result<Response<EntryStream>, Status> {
        let identity = identity(&request)?;
        let store = self.admit(&identity, "zicht.v1.Audit/Entries").await?;
        let query = request.into_inner();
        let log = match pb::AuditLogKind::try_from(query.log) {
            Ok(pb::AuditLogKind::Access) => AuditLog::Access,
            _ => AuditLog::Processing,
        };
        let trace = (!query.trace_id.is_empty()).then_some(query.trace_id.as_str());
        let limit = match query.limit {
            0 => MAX_ENTRIES,
            n => n.min(MAX_ENTRIES),
        };
        let entries = store
            .audit_entries(log, trace, query.since_ms, query.until_ms, i64::from(limit))
            .await
            .map_err(|error| {
                eprintln!("zicht node: {}", anyhow_chain(&error));
                Status::internal("the node could not read its audit log")
            })?;
        let kind = kind(log) as i32;
        let stream = tokio_stream::iter(entries.into_iter().map(move |entry| {
            Ok(pb::AuditEntry {
                log: kind,
                seq: entry.seq,
                body: entry.body,
                prev_hash: entry.prev_hash,
                hash: entry.hash,
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResult>, Status> {
        let identity = identity(&request)?;
        let store = self.admit(&identity, "zicht.v1.Audit/Verify").await?;
        let mut chains = Vec::new();
        for log in [AuditLog::Processing, AuditLog::Access] {
            let entries = store.audit_chain(log).await.map_err(|error| {
                eprintln!("zicht node: {}", anyhow_chain(&error));
                Status::internal("the node could not read its audit log")
            })?;
            let status = match zicht_audit::verify(entries) {
                Ok(verified) => pb::ChainStatus {
                    log: kind(log) as i32,
                    entries: verified.entries,
                    head: verified.head,
                    broken: String::new(),
                },
                Err(broken) => pb::ChainStatus {
                    log: kind(log) as i32,
                    entries: 0,
                    head: String::new(),
                    broken: broken.to_string(),
                },
            };
            chains.push(status);
        }
        Ok(Response::new(pb::VerifyResult {
            node: self.inway.resource.clone(),
            chains,
        }))
    }
}
