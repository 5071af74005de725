//! The `Audit` service: read-only access to the node's audit chains for certificates with the
//! `auditor` role, and nothing for anyone else. Each call is itself logged (fail-closed), so
//! the logs record who read them.

use std::pin::Pin;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use zicht_model::{PeerIdentity, Role};
use zicht_proto::v1 as pb;
use zicht_store::{AuditFilter, AuditLog, Store};

use crate::audit::Operation;
use crate::error::{respond, Error};
use crate::identity::identity;
use crate::query::admission::PerPeer;
use crate::query::execute::log_activity;
use crate::services::state::NodeState;
use crate::transport::accept::PeerInfo;
use crate::transport::peers::Peers;

/// Most entries one `Entries` call returns.
const MAX_ENTRIES: u32 = 100_000;

/// The `Audit` service of one node.
pub struct Auditor {
    state: Arc<NodeState>,
}

impl Auditor {
    /// The audit API over the node's store (in its shared state).
    pub fn new(state: Arc<NodeState>) -> Auditor {
        Auditor { state }
    }
}

/// The processing activity of operations on the audit logs themselves.
pub const AUDIT_ACTIVITY: &str = "urn:zicht:activity:audit";

/// Checks that the caller has the auditor role, logs the call either way (fail-closed), and
/// returns the store to read. A caller refused too often is turned away by the refusal guard
/// before anything is written, as at every other service.
async fn admit_auditor(
    state: &NodeState,
    identity: &PeerIdentity,
    action: &'static str,
) -> Result<Store, Error> {
    state.guard(action, identity).await?;
    let allowed = matches!(identity.role, Role::Auditor { .. });
    let Some(store) = state.store.clone() else {
        return Err(Error::NoDatabase(""));
    };
    let outcome = if allowed {
        "released audit entries"
    } else {
        "refused: not-auditor"
    };
    state
        .log_call(&store, action, identity, AUDIT_ACTIVITY, outcome)
        .await
        .map_err(Error::unlogged("access log", "read"))?;
    if !allowed {
        state.refused(identity);
        return Err(Error::Role(format!(
            "{} ({}) may not read audit logs; only the auditor role may",
            identity.peer_id,
            identity.role.uri()
        )));
    }
    Ok(store)
}

/// The processing activity a purpose filter names: a registered purpose's code becomes its
/// URI; anything else (a URI, `urn:zicht:activity:audit`) is taken as given.
fn activity_of(purpose: &str) -> String {
    crate::audit::purpose_uri(purpose).unwrap_or_else(|| purpose.to_owned())
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
        self.read_entries(request).await.map_err(respond)
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResult>, Status> {
        self.verify_chains(request).await.map_err(respond)
    }
}

impl Auditor {
    async fn read_entries(
        &self,
        request: Request<pb::AuditQuery>,
    ) -> Result<Response<EntryStream>, Error> {
        let identity = identity(&request)?;
        let store = admit_auditor(&self.state, &identity, "zicht.v1.Audit/Entries").await?;
        let query = request.into_inner();
        let log = match pb::AuditLogKind::try_from(query.log) {
            Ok(pb::AuditLogKind::Access) => AuditLog::Access,
            _ => AuditLog::Processing,
        };
        let limit = match query.limit {
            0 => MAX_ENTRIES,
            n => n.min(MAX_ENTRIES),
        };
        let filter = AuditFilter {
            activity: activity_of(&query.purpose),
            trace_id: query.trace_id,
            peer_id: query.peer_id,
            template: query.template,
            since: query.since_ms,
            until: query.until_ms,
            after_seq: query.after_seq,
            limit: i64::from(limit),
        };
        let entries = store
            .audit_entries(log, &filter)
            .await
            .map_err(|error| match error {
                zicht_store::StoreError::Tampered { .. } => Error::Tampered(error),
                error => Error::store("read its audit log")(error),
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

    async fn verify_chains(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResult>, Error> {
        let identity = identity(&request)?;
        let store = admit_auditor(&self.state, &identity, "zicht.v1.Audit/Verify").await?;
        let mut chains = Vec::new();
        for log in [AuditLog::Processing, AuditLog::Access] {
            let entries = match store.audit_chain(log).await {
                Ok(entries) => entries,
                Err(zicht_store::StoreError::Tampered { seq, .. }) => {
                    chains.push(pb::ChainStatus {
                        log: kind(log) as i32,
                        entries: 0,
                        head: String::new(),
                        broken: format!(
                            "entry {seq}: its search columns do not match its contents"
                        ),
                    });
                    continue;
                }
                Err(error) => return Err(Error::store("read its audit log")(error)),
            };
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
            node: self.state.resource.clone(),
            chains,
        }))
    }
}

/// The `Checkpoints` service: keeps the signed chain heads peers send (only from the manifest's
/// certificate of each node, size-capped, rate-limited per peer, each push logged, only ones
/// newer than the newest held, a spread of them kept by position), and shows them to
/// auditors.
pub struct Checkpoints {
    state: Arc<NodeState>,
    rate: PerPeer,
    /// Held while a push is checked against the newest held and stored.
    pushes: tokio::sync::Mutex<()>,
}

impl Checkpoints {
    /// The service over the node's store (in its shared state, whose limits it applies).
    pub fn new(state: Arc<NodeState>) -> Checkpoints {
        let rate = PerPeer::new(state.limits.checkpoints_per_minute, Default::default());
        Checkpoints {
            state,
            rate,
            pushes: tokio::sync::Mutex::new(()),
        }
    }
}

type CheckpointStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SignedCheckpoint, Status>> + Send>>;

#[tonic::async_trait]
impl pb::checkpoints_server::Checkpoints for Checkpoints {
    type HeldStream = CheckpointStream;

    async fn push(
        &self,
        request: Request<pb::SignedCheckpoint>,
    ) -> Result<Response<pb::CheckpointAck>, Status> {
        self.keep(request).await.map_err(respond)
    }

    async fn held(
        &self,
        request: Request<pb::CheckpointQuery>,
    ) -> Result<Response<CheckpointStream>, Status> {
        self.show(request).await.map_err(respond)
    }
}

impl Checkpoints {
    /// Keeps a checkpoint a peer handed in, once it comes from the manifest's certificate of
    /// the node it names, its signature matches that certificate, and it is newer than every
    /// one held of that node (a replay, or a checkpoint of a history cut since, never evicts
    /// the newest). Pushes are taken one at a time; every push is logged, kept or refused,
    /// before the answer.
    async fn keep(
        &self,
        request: Request<pb::SignedCheckpoint>,
    ) -> Result<Response<pb::CheckpointAck>, Error> {
        const RPC: &str = "zicht.v1.Checkpoints/Push";
        let info = request
            .extensions()
            .get::<PeerInfo>()
            .cloned()
            .ok_or(Error::NoIdentity)?;
        self.state.guard(RPC, &info.identity).await?;
        let Some(store) = &self.state.store else {
            return Err(Error::NoDatabase(""));
        };
        let _one_at_a_time = self.pushes.lock().await;
        let started = std::time::Instant::now();
        let checked = match self.check(&info, request.into_inner()) {
            Ok(checkpoint) => store
                .store_checkpoint(&checkpoint, self.state.limits.checkpoints_kept)
                .await
                .map_err(Error::store("keep the checkpoint"))
                .and_then(|kept| {
                    kept.then_some(()).ok_or(Error::BadCheckpoint(
                        "it is not newer than the newest checkpoint held of this node (a \
                         replay, or a history cut since)",
                    ))
                }),
            Err(refused) => Err(refused),
        };
        let outcome = match &checked {
            Ok(()) => "kept checkpoint".to_owned(),
            Err(error) => format!("refused: {}", error.rule()),
        };
        self.state
            .log_call(store, RPC, &info.identity, AUDIT_ACTIVITY, &outcome)
            .await
            .map_err(Error::unlogged("access log", "kept"))?;
        self.state.metrics.request(
            RPC,
            checked.as_ref().map_or_else(Error::rule, |_| "kept"),
            started.elapsed(),
        );
        checked.inspect_err(|error| {
            if !matches!(error, Error::Quota { .. } | Error::Store { .. }) {
                self.state.refused(&info.identity);
            }
        })?;
        Ok(Response::new(pb::CheckpointAck {}))
    }

    /// What a push must be, cheapest checks first: from a node the manifest lists with this
    /// certificate's PeerID, within the size limit and the sender's rate, a checkpoint naming
    /// the sender, signed with the sender's certificate.
    fn check(
        &self,
        info: &PeerInfo,
        signed: pb::SignedCheckpoint,
    ) -> Result<zicht_store::StoredCheckpoint, Error> {
        let role = info.identity.role.uri();
        if !matches!(info.identity.role, Role::Region(_) | Role::Network(_)) {
            return Err(Error::Role("only nodes hand in checkpoints".to_owned()));
        }
        self.state.callers.listed(&info.identity)?;
        let size = signed.body.len() + signed.signature.len() + signed.certificate.len();
        let limit = self.state.limits.checkpoint_max_bytes;
        if size > limit {
            return Err(Error::Invalid(format!(
                "checkpoint is {size} bytes; the limit checkpoint_max_bytes is {limit}"
            )));
        }
        self.rate.check(info.identity.peer_id)?;
        let checkpoint: zicht_audit::Checkpoint = serde_json::from_str(&signed.body)
            .map_err(|_| Error::BadCheckpoint("the checkpoint body is not a checkpoint"))?;
        if checkpoint.node != role {
            return Err(Error::BadCheckpoint(
                "a checkpoint must name the node that sends it",
            ));
        }
        if !zicht_pki::signature_valid(&info.certificate, signed.body.as_bytes(), &signed.signature)
        {
            return Err(Error::BadCheckpoint(
                "the signature does not match the sender's certificate",
            ));
        }
        Ok(zicht_store::StoredCheckpoint {
            node: role,
            received_at: crate::audit::now_ms(),
            body: signed.body,
            signature: hex::encode(&signed.signature),
            certificate: hex::encode(&info.certificate),
            processing_seq: checkpoint.processing.seq,
            access_seq: checkpoint.access.seq,
        })
    }

    /// The checkpoints this node holds of another node, for auditors.
    async fn show(
        &self,
        request: Request<pb::CheckpointQuery>,
    ) -> Result<Response<CheckpointStream>, Error> {
        let identity = identity(&request)?;
        let store = admit_auditor(&self.state, &identity, "zicht.v1.Checkpoints/Held").await?;
        let held = store
            .checkpoints_of(&request.get_ref().node)
            .await
            .map_err(Error::store("read its checkpoints"))?;
        let stream = tokio_stream::iter(held.into_iter().map(|checkpoint| {
            Ok(pb::SignedCheckpoint {
                body: checkpoint.body,
                signature: hex::decode(&checkpoint.signature).unwrap_or_default(),
                certificate: hex::decode(&checkpoint.certificate).unwrap_or_default(),
            })
        }));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// What one push of this node's checkpoint did: each peer's outcome, and the chain position
/// (both chains' sequence numbers added) it signed.
#[derive(Debug)]
pub struct Pushed {
    /// Each peer asked, and whether it kept the checkpoint (or why not).
    pub outcomes: Vec<(zicht_model::NodeName, Result<(), String>)>,
    /// The position of the chains the checkpoint names.
    pub position: i64,
}

/// Signs this node's chain heads with its node key and hands them to `targets` (peers of the
/// manifest). Logged before it leaves (no log, nothing sent).
pub async fn push_checkpoint(
    state: &NodeState,
    key: &std::path::Path,
    peers: &Peers,
    targets: &[zicht_model::NodeName],
) -> Result<Pushed, Error> {
    let Some(store) = &state.store else {
        return Err(Error::NoDatabase(""));
    };
    let failed = |error: zicht_store::StoreError| {
        tracing::error!(cause = %crate::error::chain(&error), "checkpoint not made");
        Error::NoCheckpoint("read or log its chains")
    };
    let operation = Operation::start("zicht.v1.Checkpoints/Push", &state.resource);
    let outcome = format!("forwarded checkpoint to {} peers", targets.len());
    log_activity(
        store,
        &operation,
        "self",
        &state.resource,
        AUDIT_ACTIVITY,
        &outcome,
    )
    .await
    .map_err(failed)?;
    // The heads after the log entry of this push, so the checkpoint covers it.
    let checkpoint = zicht_audit::Checkpoint {
        node: state.resource.clone(),
        processing: store
            .chain_head(AuditLog::Processing)
            .await
            .map_err(failed)?,
        access: store.chain_head(AuditLog::Access).await.map_err(failed)?,
        time: crate::audit::now_ms(),
    };
    let position = checkpoint.processing.seq + checkpoint.access.seq;
    let body = zicht_audit::body(&checkpoint);
    let key_pem = std::fs::read(key).map_err(|_| Error::NoCheckpoint("read its key"))?;
    let signature =
        zicht_pki::sign(&key_pem, body.as_bytes()).map_err(|_| Error::NoCheckpoint("sign"))?;
    let mut outcomes = Vec::new();
    for &node in targets {
        let Some(channel) = peers.channel(node) else {
            continue;
        };
        let mut client = pb::checkpoints_client::CheckpointsClient::new(channel);
        let mut request = Request::new(pb::SignedCheckpoint {
            body: body.clone(),
            signature: signature.clone(),
            certificate: Vec::new(),
        });
        request.set_timeout(std::time::Duration::from_secs(5));
        let outcome = client
            .push(request)
            .await
            .map(|_| ())
            .map_err(|status| status.message().chars().take(200).collect());
        outcomes.push((node, outcome));
    }
    Ok(Pushed { outcomes, position })
}

/// When this node hands out its next checkpoint: at start when its chains hold entries (the
/// history before a restart is covered at once); then every `interval`, and as soon as its
/// chains grew by `entries` since the last one, but never sooner than `gap` after it (peers
/// take a few a minute); peers a push missed are asked again with a backoff (from `poll`,
/// doubling up to `interval`), so a peer that starts later still gets one soon.
#[derive(Debug)]
pub(crate) struct CheckpointSchedule {
    interval: std::time::Duration,
    gap: std::time::Duration,
    entries: i64,
    /// The position signed last and when (none before the first look).
    last: Option<(i64, tokio::time::Instant)>,
    /// Peers the last push missed, and when to try them again with what backoff.
    missed: Vec<zicht_model::NodeName>,
    retry: Option<(tokio::time::Instant, std::time::Duration)>,
}

/// What the schedule says to do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing.
    Wait,
    /// A new checkpoint to every peer.
    All,
    /// A new checkpoint to the peers the last one missed.
    Missed(Vec<zicht_model::NodeName>),
}

impl CheckpointSchedule {
    /// Every `interval`, and after `entries` new entries but at most once per `gap`, for a node
    /// whose chains were at `started` (their position) when it started at `now`: a checkpoint
    /// at once if they hold entries (a checkpoint of nothing protects nothing).
    pub(crate) fn new(
        interval: std::time::Duration,
        entries: u64,
        gap: std::time::Duration,
        started: (i64, tokio::time::Instant),
    ) -> CheckpointSchedule {
        CheckpointSchedule {
            interval,
            gap: gap.min(interval),
            entries: i64::try_from(entries).unwrap_or(i64::MAX),
            last: (started.0 == 0).then_some(started),
            missed: Vec::new(),
            retry: None,
        }
    }

    /// What to push at `now`, with the chains at `position`.
    pub(crate) fn due(&self, now: tokio::time::Instant, position: i64) -> Due {
        let Some((signed, at)) = self.last else {
            return Due::All;
        };
        let since = now.duration_since(at);
        if since >= self.interval || (position - signed >= self.entries && since >= self.gap) {
            return Due::All;
        }
        match self.retry {
            Some((when, _)) if now >= when && !self.missed.is_empty() => {
                Due::Missed(self.missed.clone())
            }
            _ => Due::Wait,
        }
    }

    /// Notes a push at `now` (of all peers when `all`) and what it did; `poll` is the first
    /// backoff for the peers it missed.
    pub(crate) fn pushed(
        &mut self,
        now: tokio::time::Instant,
        all: bool,
        pushed: &Pushed,
        poll: std::time::Duration,
    ) {
        let missed: Vec<_> = pushed
            .outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_err())
            .map(|(node, _)| *node)
            .collect();
        let backoff = match (all, self.retry) {
            (false, Some((_, backoff))) => (backoff * 2).min(self.interval),
            _ => poll,
        };
        if all {
            self.last = Some((pushed.position, now));
        }
        self.retry = (!missed.is_empty()).then_some((now + backoff, backoff));
        self.missed = missed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use zicht_model::{NodeName, Region};

    #[test]
    fn checkpoints_go_out_at_start_after_many_entries_and_again_to_peers_that_missed_one() {
        let start = tokio::time::Instant::now();
        let five_minutes = Duration::from_secs(300);
        let fresh = CheckpointSchedule::new(five_minutes, 100, Duration::ZERO, (0, start));
        assert_eq!(
            fresh.due(start, 0),
            Due::Wait,
            "empty chains: nothing to cover"
        );
        assert_eq!(fresh.due(start, 99), Due::Wait);
        assert_eq!(fresh.due(start, 100), Due::All, "until they grew");
        let gap = Duration::from_secs(10);
        let mut schedule = CheckpointSchedule::new(five_minutes, 100, gap, (7, start));
        assert_eq!(
            schedule.due(start, 7),
            Due::All,
            "a restart with history: at once"
        );
        let friesland = NodeName::Region(Region::Friesland);
        let twente = NodeName::Region(Region::Twente);
        let pushed = Pushed {
            outcomes: vec![(friesland, Err("down".to_owned())), (twente, Ok(()))],
            position: 2,
        };
        let poll = Duration::from_secs(2);
        schedule.pushed(start, true, &pushed, poll);
        assert_eq!(schedule.due(start + Duration::from_secs(1), 50), Due::Wait);
        let retry = start + Duration::from_secs(2);
        assert_eq!(schedule.due(retry, 50), Due::Missed(vec![friesland]));
        // Missed again: the next try waits twice as long.
        let again = Pushed {
            outcomes: vec![(friesland, Err("down".to_owned()))],
            position: 3,
        };
        schedule.pushed(retry, false, &again, poll);
        assert_eq!(schedule.due(retry + Duration::from_secs(3), 50), Due::Wait);
        assert_eq!(
            schedule.due(retry + Duration::from_secs(4), 50),
            Due::Missed(vec![friesland])
        );
        // 100 entries after the one signed: a new checkpoint for everyone, once the gap since
        // the last one is over.
        assert_ne!(schedule.due(start + Duration::from_secs(9), 102), Due::All);
        assert_eq!(schedule.due(start + Duration::from_secs(10), 102), Due::All);
        // And once the interval is up.
        assert_eq!(schedule.due(start + Duration::from_secs(300), 3), Due::All);
    }
}
