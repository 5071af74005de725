//! The release log and the populations released. One row per peer request the node answered
//! or refused, and one row per distinct population a requester was given that day, written
//! together in one transaction before the answer leaves (fail-closed). Neither holds data
//! values.

use chrono::NaiveDate;

use crate::{on_pool, query_error, Store, StoreError};

/// What to log about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Caller's PeerID.
    pub peer_id: String,
    /// Caller's role URI.
    pub role: String,
    /// Template asked.
    pub template: String,
    /// Purpose given.
    pub purpose: String,
    /// Group-by dimensions, comma separated.
    pub group_by: String,
    /// `released` or `refused: <rule>`.
    pub outcome: String,
    /// Rows released (0 when refused).
    pub result_rows: i64,
}

/// A population released on a day to the budgets it spends: the hash of what defines it
/// (template, scope, filters, grouping), never its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedPopulation {
    /// Whose budgets it spends (PeerIDs: the caller, and the person a node asks for); a
    /// budget it was given to within the year before is not listed (it does not count again).
    pub requesters: Vec<String>,
    /// The day it was released.
    pub released_on: NaiveDate,
    /// What defines it, hashed.
    pub population: String,
    /// Its template and period, hashed: what the decompositions of one set share.
    pub family: String,
}

/// The audit entries of one request (see `zicht_audit`): its processing records and its
/// access record as canonical bodies, with the columns the auditor searches by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntries {
    /// The request's processing record, then those of the operations it caused (one per
    /// youth whose records a consented release carries).
    pub processing: Vec<ProcessingEntry>,
    /// The access record: who asked.
    pub access: AccessEntry,
}

/// One processing record as the chain holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingEntry {
    /// Its trace id (a search column).
    pub trace_id: String,
    /// Its operation id (the access record links to the request's).
    pub operation_id: String,
    /// Its canonical body.
    pub body: String,
    /// Its template (a search column).
    pub template: String,
    /// Its processing activity, the purpose's URI (a search column).
    pub activity: String,
    /// When, ms since the Unix epoch: the body's `end_time` (a search column).
    pub recorded_at: i64,
}

/// One access record as the chain holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The operation it links to.
    pub operation_id: String,
    /// Its canonical body.
    pub body: String,
    /// The caller's PeerID (a search column).
    pub peer_id: String,
    /// When, ms since the Unix epoch: the body's `time` (a search column).
    pub recorded_at: i64,
}

/// Which audit entries an auditor asks for; every field left empty or zero matches any.
/// Filters select operations: the processing log by its records, the access log by the
/// records of the same operation, and the other way round for `peer_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// One trace (32 hex digits).
    pub trace_id: String,
    /// The caller's PeerID (access records).
    pub peer_id: String,
    /// The processing activity, the purpose's URI (processing records).
    pub activity: String,
    /// The template code (processing records).
    pub template: String,
    /// Recorded at or after, ms since the Unix epoch (0: any).
    pub since: i64,
    /// Recorded before, ms since the Unix epoch (0: any).
    pub until: i64,
    /// Only entries after this position (0: from the start), for paging.
    pub after_seq: i64,
    /// At most this many entries.
    pub limit: i64,
}

/// The error of a release whose batch ended without an outcome (its writer was cancelled).
fn lost() -> StoreError {
    StoreError::Query {
        action: "write release",
        source: sqlx::Error::PoolClosed,
    }
}

/// Makes a release of what was found: its release log entry and audit entries (or why it
/// cannot, which fails that release alone). It runs inside the write's transaction, on the
/// writer's task.
pub type BuildRelease = Box<
    dyn FnOnce(crate::consented::ConsentedRows) -> Result<(ReleaseEntry, AuditEntries), String>
        + Send,
>;

/// A release waiting for the next group commit.
pub(crate) struct Pending {
    write: Write,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// What a queued release writes.
enum Write {
    /// Entries made before the write.
    Ready(Box<Ready>),
    /// A consented release: its records are read, and its entries made, inside the write's
    /// transaction, so a revocation committed before the write is never overtaken.
    Consented(crate::consented::ConsentedRequest, BuildRelease),
}

/// One release's rows: its release log entry, the population released, its audit entries.
struct Ready {
    entry: ReleaseEntry,
    population: Option<ReleasedPopulation>,
    audit: AuditEntries,
}

// The statements of a batch write.
const HEAD_PROCESSING: &str = "SELECT seq, hash FROM processing_log ORDER BY seq DESC LIMIT 1";
const HEAD_ACCESS: &str = "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1";
const PROCESSING_ROWS: &str = "INSERT INTO processing_log (seq, trace_id, \
     operation_id, recorded_at, body, prev_hash, hash, template, activity) ";
const ACCESS_ROWS: &str = "INSERT INTO access_log (seq, operation_id, recorded_at, \
     body, prev_hash, hash, peer_id) ";
const LOG_ROWS: &str = "INSERT INTO release_log (logged_at, peer_id, role, template, \
     purpose, group_by, outcome, result_rows) ";
/// Bind parameters per statement stay far below both engines' limits (9 per row).
const ROWS_PER_STATEMENT: usize = 200;
const POPULATION: &str = "INSERT INTO released_populations (requester, released_on, \
     population, family) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// One link of a chain as it is inserted: (seq, previous hash, hash, entry).
type Link<'a, E> = (i64, String, String, &'a E);

/// The chain links of a batch, in batch order, after the heads `processing` and `access`
/// (each its last seq and hash).
fn link(
    ready: &[Ready],
    mut processing: (i64, String),
    mut access: (i64, String),
) -> (Vec<Link<'_, ProcessingEntry>>, Vec<Link<'_, AccessEntry>>) {
    let mut processing_rows = Vec::with_capacity(ready.len());
    let mut access_rows = Vec::with_capacity(ready.len());
    for one in ready {
        for entry in &one.audit.processing {
            let hash = zicht_audit::chain_hash(&processing.1, &entry.body);
            processing.0 += 1;
            let prev = std::mem::replace(&mut processing.1, hash.clone());
            processing_rows.push((processing.0, prev, hash, entry));
        }
        let entry = &one.audit.access;
        let hash = zicht_audit::chain_hash(&access.1, &entry.body);
        access.0 += 1;
        let prev = std::mem::replace(&mut access.1, hash.clone());
        access_rows.push((access.0, prev, hash, entry));
    }
    (processing_rows, access_rows)
}

/// A checkpoint as a node holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The entity URI of the node that signed it.
    pub node: String,
    /// When it arrived, ms since the Unix epoch.
    pub received_at: i64,
    /// The signed body (`zicht_audit::Checkpoint` as canonical JSON).
    pub body: String,
    /// The signature, hex.
    pub signature: String,
    /// The signer's certificate (DER), hex.
    pub certificate: String,
    /// The signer's processing log position it names (from the signed body).
    pub processing_seq: i64,
    /// The signer's access log position it names (from the signed body).
    pub access_seq: i64,
}

impl StoredCheckpoint {
    /// Whether it names a later point of the signer's history than `held`: no chain behind,
    /// one ahead. A replay of an older checkpoint, or one of a history cut since, is not.
    pub fn is_newer_than(&self, held: &StoredCheckpoint) -> bool {
        self.processing_seq >= held.processing_seq
            && self.access_seq >= held.access_seq
            && (self.processing_seq, self.access_seq) != (held.processing_seq, held.access_seq)
    }
}

/// Which of a signer's held checkpoints (`(id, position)`, position the sum of both chains'
/// sequence numbers) to delete so at most `keep` remain: the newest half by position, and of
/// the older ones the oldest in each band of exponentially growing distance from the newest
/// (1, 2-3, 4-7, ...), the oldest bands first. So the newest is never removed, the very first
/// stays while any band is kept, and a rewrite long ago stays provable.
pub fn checkpoints_to_prune(held: &[(i64, i64)], keep: usize) -> Vec<i64> {
    let keep = keep.max(1);
    let mut by_position = held.to_vec();
    by_position.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
    let Some(&(_, newest)) = by_position.first() else {
        return Vec::new();
    };
    let recent = keep.div_ceil(2).min(by_position.len());
    let mut kept: Vec<i64> = by_position[..recent].iter().map(|c| c.0).collect();
    // Older ones, oldest first: the first seen in a band is its oldest.
    let mut bands: Vec<(u32, i64)> = Vec::new();
    for &(id, position) in by_position[recent..].iter().rev() {
        let band = u64::try_from(newest - position).unwrap_or(0).max(1).ilog2();
        if !bands.iter().any(|(b, _)| *b == band) {
            bands.push((band, id));
        }
    }
    bands.sort_by_key(|band| std::cmp::Reverse(band.0));
    kept.extend(bands.iter().take(keep - recent).map(|(_, id)| *id));
    held.iter()
        .map(|c| c.0)
        .filter(|id| !kept.contains(id))
        .collect()
}

/// Which audit chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// The processing log (Logboek Dataverwerkingen records).
    Processing,
    /// The access log.
    Access,
}

impl AuditLog {
    fn table(self) -> &'static str {
        match self {
            AuditLog::Processing => "processing_log",
            AuditLog::Access => "access_log",
        }
    }

    /// `processing log` or `access log`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            AuditLog::Processing => "processing log",
            AuditLog::Access => "access log",
        }
    }
}

/// The body field a chain's `recorded_at` column is copied from.
fn time_field(log: AuditLog) -> &'static str {
    match log {
        AuditLog::Processing => "end_time",
        AuditLog::Access => "time",
    }
}

/// Whether an entry's body agrees with the filter's fields that apply to its own log (the
/// other log's fields were matched through the operation id) and with its time window.
fn body_matches(log: AuditLog, filter: &AuditFilter, body: &str) -> bool {
    let unfiltered = match log {
        AuditLog::Processing => {
            filter.trace_id.is_empty() && filter.template.is_empty() && filter.activity.is_empty()
        }
        AuditLog::Access => filter.peer_id.is_empty(),
    } && filter.since == 0
        && filter.until == 0;
    // Nothing to compare (the whole chain for `verify`, say): no need to parse the body.
    if unfiltered {
        return true;
    }
    let Ok(record) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let field = |name: &str, wanted: &str| {
        wanted.is_empty() || record.get(name).and_then(|v| v.as_str()) == Some(wanted)
    };
    let time = record
        .get(time_field(log))
        .and_then(serde_json::Value::as_i64);
    let in_window =
        time.is_some_and(|t| t >= filter.since && (filter.until == 0 || t < filter.until));
    in_window
        && match log {
            AuditLog::Processing => {
                field("trace_id", &filter.trace_id)
                    && field("template", &filter.template)
                    && field("processing_activity_id", &filter.activity)
            }
            AuditLog::Access => field("peer_id", &filter.peer_id),
        }
}

/// Whether every search column of an entry (empty: not one of this log's) and its
/// `recorded_at` equal the values its body holds: every stored column is the hashed body's.
fn columns_match(log: AuditLog, body: &str, columns: &[(&str, String)], recorded_at: i64) -> bool {
    let Ok(record) = serde_json::from_str::<serde_json::Value>(body) else {
        return false;
    };
    let time = record
        .get(time_field(log))
        .and_then(serde_json::Value::as_i64);
    time == Some(recorded_at)
        && columns.iter().all(|(name, stored)| {
            let relevant = match log {
                AuditLog::Processing => *name != "peer_id",
                AuditLog::Access => *name == "operation_id" || *name == "peer_id",
            };
            !relevant || record.get(*name).and_then(|v| v.as_str()) == Some(stored.as_str())
        })
}

impl Store {
    /// Appends one release log entry, the populations released with it, and its processing
    /// and access records to their hash chains, durably; an error means the answer must not
    /// leave.
    ///
    /// Group commit: each call queues its release, then whoever holds the chain lock writes
    /// everything queued so far in one transaction (one sync for many releases) and tells
    /// each caller the outcome. A failed transaction fails every release in it.
    pub async fn record_release(
        &self,
        entry: &ReleaseEntry,
        population: Option<&ReleasedPopulation>,
        audit: &AuditEntries,
    ) -> Result<(), StoreError> {
        let ready = Ready {
            entry: entry.clone(),
            population: population.cloned(),
            audit: audit.clone(),
        };
        self.queue_and_write(Write::Ready(Box::new(ready))).await
    }

    /// Reads the records consented to `request`'s recipients and, in the same transaction,
    /// appends the release `build` makes of them to the log, durably (group-committed like
    /// [`Store::record_release`]); an error means nothing may leave. `build` runs once, on the
    /// writer's task, and keeps what leaves where its caller can take it after this returns.
    pub async fn release_consented(
        &self,
        request: crate::consented::ConsentedRequest,
        build: BuildRelease,
    ) -> Result<(), StoreError> {
        self.queue_and_write(Write::Consented(request, build)).await
    }

    /// Queues `write`, then waits until a leader (this call, or another) has written it.
    async fn queue_and_write(&self, write: Write) -> Result<(), StoreError> {
        let (done, mut outcome) = tokio::sync::oneshot::channel();
        self.lock_queue().push(Pending { write, done });
        // Either a leader writes this release with its batch, or this call becomes the leader.
        let written = tokio::select! {
            biased;
            written = &mut outcome => written,
            chains = self.audit_lock.clone().lock_owned() => {
                self.write_queued(chains).await;
                outcome.await
            }
        };
        written.unwrap_or_else(|_| Err(lost()))
    }

    /// As the leader holding the chain lock: writes every queued release in one batch and
    /// tells each caller the outcome.
    async fn write_queued(&self, chains: tokio::sync::OwnedMutexGuard<()>) {
        let batch = std::mem::take(&mut *self.lock_queue());
        if batch.is_empty() {
            return;
        }
        // The write runs on its own task holding the chain lock, so a leader whose request is
        // cancelled (a caller's deadline) neither aborts the others' releases nor lets a
        // second writer start before this batch is committed.
        let store = self.clone();
        let write = tokio::spawn(async move {
            let (writes, dones): (Vec<Write>, Vec<_>) =
                batch.into_iter().map(|p| (p.write, p.done)).unzip();
            let written = store.write_batch(writes).await;
            if let Err(error) = &written {
                tracing::error!(releases = dones.len(), %error, "a batch of releases failed");
            }
            let outcomes: Vec<Result<(), String>> = match written {
                Ok(outcomes) => outcomes,
                Err(error) => vec![Err(error.to_string()); dones.len()],
            };
            for (done, outcome) in dones.into_iter().zip(outcomes) {
                let result = outcome.map_err(|text| StoreError::Query {
                    action: "write release",
                    source: sqlx::Error::Protocol(text),
                });
                let _ = done.send(result);
            }
            drop(chains);
        });
        let _ = write.await;
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        self.release_queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes queued releases in one transaction, chaining their audit records in order, and
    /// returns each release's own outcome (a consented release whose entries could not be
    /// made fails alone). Consented releases read their records first, in the transaction.
    /// Longer than most functions on purpose: its steps (resolve, read both heads, chain,
    /// insert per table, populations, commit) share one transaction whose type differs per
    /// backend (`on_pool!`), so they cannot be handed to helpers without boxing it.
    async fn write_batch(&self, writes: Vec<Write>) -> Result<Vec<Result<(), String>>, StoreError> {
        // SQLite: take the write lock at once, so what a consented release reads is what is
        // current when it is written (no other process commits between).
        let begin = match self.backend() {
            crate::Backend::Sqlite => "BEGIN IMMEDIATE",
            crate::Backend::Postgres => "BEGIN",
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await.map_err(query_error("begin release"))?;
            let mut outcomes = Vec::with_capacity(writes.len());
            let mut ready: Vec<Ready> = Vec::with_capacity(writes.len());
            for write in writes {
                match write {
                    Write::Ready(one) => {
                        ready.push(*one);
                        outcomes.push(Ok(()));
                    }
                    Write::Consented(request, build) => {
                        let rows = crate::consented::read_rows!(tx, request);
                        match build(rows) {
                            Ok((entry, audit)) => {
                                ready.push(Ready { entry, population: None, audit });
                                outcomes.push(Ok(()));
                            }
                            Err(reason) => outcomes.push(Err(reason)),
                        }
                    }
                }
            }
            let head: Option<(i64, String)> = sqlx::query_as(HEAD_PROCESSING)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error("read processing log head"))?;
            let processing = head.unwrap_or((0, zicht_audit::GENESIS.to_owned()));
            let head: Option<(i64, String)> = sqlx::query_as(HEAD_ACCESS)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error("read access log head"))?;
            let access = head.unwrap_or((0, zicht_audit::GENESIS.to_owned()));
            let (processing_rows, access_rows) = link(&ready, processing, access);
            // Many rows per statement: one round trip per table and chunk, not per release.
            for chunk in ready.chunks(ROWS_PER_STATEMENT) {
                let mut log = sqlx::QueryBuilder::new(LOG_ROWS);
                log.push_values(chunk, |mut row, Ready { entry, .. }| {
                    row.push("CURRENT_TIMESTAMP")
                        .push_bind(entry.peer_id.clone())
                        .push_bind(entry.role.clone())
                        .push_bind(entry.template.clone())
                        .push_bind(entry.purpose.clone())
                        .push_bind(entry.group_by.clone())
                        .push_bind(entry.outcome.clone())
                        .push_bind(entry.result_rows);
                });
                log.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("write release log"))?;
            }
            for chunk in processing_rows.chunks(ROWS_PER_STATEMENT) {
                let mut chain = sqlx::QueryBuilder::new(PROCESSING_ROWS);
                chain.push_values(chunk, |mut row, (seq, prev, hash, entry)| {
                    row.push_bind(*seq)
                        .push_bind(entry.trace_id.clone())
                        .push_bind(entry.operation_id.clone())
                        .push_bind(entry.recorded_at)
                        .push_bind(entry.body.clone())
                        .push_bind(prev.clone())
                        .push_bind(hash.clone())
                        .push_bind(entry.template.clone())
                        .push_bind(entry.activity.clone());
                });
                chain
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("write processing log"))?;
            }
            for chunk in access_rows.chunks(ROWS_PER_STATEMENT) {
                let mut chain = sqlx::QueryBuilder::new(ACCESS_ROWS);
                chain.push_values(chunk, |mut row, (seq, prev, hash, entry)| {
                    row.push_bind(*seq)
                        .push_bind(entry.operation_id.clone())
                        .push_bind(entry.recorded_at)
                        .push_bind(entry.body.clone())
                        .push_bind(prev.clone())
                        .push_bind(hash.clone())
                        .push_bind(entry.peer_id.clone());
                });
                chain
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("write access log"))?;
            }
            for released in ready.iter().filter_map(|one| one.population.as_ref()) {
                for requester in &released.requesters {
                    sqlx::query(POPULATION)
                        .bind(requester)
                        .bind(released.released_on)
                        .bind(&released.population)
                        .bind(&released.family)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("write released population"))?;
                }
            }
            tx.commit().await.map_err(query_error("commit release"))?;
            Ok(outcomes)
        })
    }

    /// Entries of an audit chain in order, for auditors, as `filter` selects them (see
    /// [`AuditFilter`]). Every entry returned is checked against its body, the part the chain
    /// hashes cover: a search column that disagrees with its body is an error naming the entry.
    pub async fn audit_entries(
        &self,
        log: AuditLog,
        filter: &AuditFilter,
    ) -> Result<Vec<zicht_audit::Entry>, StoreError> {
        // $1 trace, $2 template, $3 activity, $4 peer; the same operation in the other log.
        const PROCESSING: &str = "SELECT seq, body, prev_hash, hash FROM processing_log \
             WHERE ($1 = '' OR trace_id = $1) AND ($2 = '' OR template = $2) \
             AND ($3 = '' OR activity = $3) AND ($4 = '' OR operation_id IN \
             (SELECT operation_id FROM access_log WHERE peer_id = $4)) \
             AND recorded_at >= $5 AND ($6 = 0 OR recorded_at < $6) AND seq > $7 \
             ORDER BY seq LIMIT $8";
        const ACCESS: &str = "SELECT seq, body, prev_hash, hash FROM access_log \
             WHERE ($4 = '' OR peer_id = $4) AND (($1 = '' AND $2 = '' AND $3 = '') OR \
             operation_id IN (SELECT operation_id FROM processing_log WHERE \
             ($1 = '' OR trace_id = $1) AND ($2 = '' OR template = $2) \
             AND ($3 = '' OR activity = $3))) \
             AND recorded_at >= $5 AND ($6 = 0 OR recorded_at < $6) AND seq > $7 \
             ORDER BY seq LIMIT $8";
        let sql = match log {
            AuditLog::Processing => PROCESSING,
            AuditLog::Access => ACCESS,
        };
        let rows: Vec<(i64, String, String, String)> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(&filter.trace_id)
                .bind(&filter.template)
                .bind(&filter.activity)
                .bind(&filter.peer_id)
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.after_seq)
                .bind(filter.limit)
                .fetch_all(pool)
                .await
                .map_err(query_error("read audit entries"))?
        });
        let entries: Vec<zicht_audit::Entry> = rows
            .into_iter()
            .map(|(seq, body, prev_hash, hash)| zicht_audit::Entry {
                seq,
                body,
                prev_hash,
                hash,
            })
            .collect();
        if let Some(entry) = entries.iter().find(|e| !body_matches(log, filter, &e.body)) {
            return Err(StoreError::Tampered {
                log: log.name(),
                seq: entry.seq,
            });
        }
        Ok(entries)
    }

    /// The head of an audit chain: its last entry's seq and hash.
    pub async fn chain_head(&self, log: AuditLog) -> Result<zicht_audit::ChainHead, StoreError> {
        let sql = format!(
            "SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1",
            log.table()
        );
        on_pool!(self, pool => {
            let head: Option<(i64, String)> = sqlx::query_as(&sql)
                .fetch_optional(pool)
                .await
                .map_err(query_error("read audit chain head"))?;
            let (seq, head) = head.unwrap_or((0, zicht_audit::GENESIS.to_owned()));
            Ok(zicht_audit::ChainHead { seq, head })
        })
    }

    /// Keeps a checkpoint another node sent (its body, signature and certificate, hex) when it
    /// is newer than every one held of that node ([`StoredCheckpoint::is_newer_than`]), and
    /// prunes that node's held checkpoints to at most `keep` (at least one) by position, in
    /// one transaction ([`checkpoints_to_prune`]). Returns whether it was kept. The newest
    /// checkpoint covers every entry before it: a rewrite of any earlier entry changes the
    /// hash it names.
    pub async fn store_checkpoint(
        &self,
        checkpoint: &StoredCheckpoint,
        keep: usize,
    ) -> Result<bool, StoreError> {
        const NEWEST: &str = "SELECT processing_seq, access_seq FROM checkpoints WHERE node = $1 \
             ORDER BY processing_seq + access_seq DESC, id DESC LIMIT 1";
        const INSERT: &str = "INSERT INTO checkpoints (node, received_at, body, signature, \
             certificate, processing_seq, access_seq) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        const HELD: &str =
            "SELECT id, processing_seq + access_seq FROM checkpoints WHERE node = $1";
        const DELETE: &str = "DELETE FROM checkpoints WHERE id = $1";
        // SQLite: the write lock first, so two pushes cannot both pass the newest check (the
        // node's Checkpoints service also takes pushes one at a time).
        let begin = match self.backend() {
            crate::Backend::Sqlite => "BEGIN IMMEDIATE",
            crate::Backend::Postgres => "BEGIN",
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin).await.map_err(query_error("store checkpoint"))?;
            let newest: Option<(i64, i64)> = sqlx::query_as(NEWEST)
                .bind(&checkpoint.node)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error("read checkpoints"))?;
            if let Some((processing_seq, access_seq)) = newest {
                let held = StoredCheckpoint { processing_seq, access_seq, ..checkpoint.clone() };
                if !checkpoint.is_newer_than(&held) {
                    return Ok(false);
                }
            }
            sqlx::query(INSERT)
                .bind(&checkpoint.node)
                .bind(checkpoint.received_at)
                .bind(&checkpoint.body)
                .bind(&checkpoint.signature)
                .bind(&checkpoint.certificate)
                .bind(checkpoint.processing_seq)
                .bind(checkpoint.access_seq)
                .execute(&mut *tx)
                .await
                .map_err(query_error("store checkpoint"))?;
            let held: Vec<(i64, i64)> = sqlx::query_as(HELD)
                .bind(&checkpoint.node)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("read checkpoints"))?;
            for id in checkpoints_to_prune(&held, keep) {
                sqlx::query(DELETE)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("prune checkpoints"))?;
            }
            tx.commit().await.map_err(query_error("store checkpoint"))?;
            Ok(true)
        })
    }

    /// The checkpoints this node holds of `node` (an entity URI), oldest position first.
    pub async fn checkpoints_of(&self, node: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
        const SQL: &str = "SELECT node, received_at, body, signature, certificate, \
             processing_seq, access_seq FROM checkpoints WHERE node = $1 \
             ORDER BY processing_seq + access_seq, id";
        type Row = (String, i64, String, String, String, i64, i64);
        on_pool!(self, pool => {
            let rows: Vec<Row> = sqlx::query_as(SQL)
                .bind(node)
                .fetch_all(pool)
                .await
                .map_err(query_error("read checkpoints"))?;
            Ok(rows
                .into_iter()
                .map(|(node, received_at, body, signature, certificate, processing_seq, access_seq)| {
                    StoredCheckpoint {
                        node,
                        received_at,
                        body,
                        signature,
                        certificate,
                        processing_seq,
                        access_seq,
                    }
                })
                .collect())
        })
    }

    /// Every entry of an audit chain in order, for verification.
    pub async fn audit_chain(&self, log: AuditLog) -> Result<Vec<zicht_audit::Entry>, StoreError> {
        // Every search column beside its entry, each re-derived from the hashed body: a column
        // edited to hide an entry from a search is tampering like an edited body.
        const PROCESSING: &str = "SELECT seq, body, prev_hash, hash, trace_id, operation_id, \
             template, activity, '', recorded_at FROM processing_log ORDER BY seq";
        const ACCESS: &str = "SELECT seq, body, prev_hash, hash, '', operation_id, '', '', \
             peer_id, recorded_at FROM access_log ORDER BY seq";
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
        );
        let sql = match log {
            AuditLog::Processing => PROCESSING,
            AuditLog::Access => ACCESS,
        };
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(sql)
                .fetch_all(pool)
                .await
                .map_err(query_error("read audit chain"))?
        });
        let mut entries = Vec::with_capacity(rows.len());
        for (seq, body, prev_hash, hash, trace, operation, template, activity, peer, at) in rows {
            let columns = [
                ("trace_id", trace),
                ("operation_id", operation),
                ("template", template),
                ("processing_activity_id", activity),
                ("peer_id", peer),
            ];
            if !columns_match(log, &body, &columns, at) {
                return Err(StoreError::Tampered {
                    log: log.name(),
                    seq,
                });
            }
            entries.push(zicht_audit::Entry {
                seq,
                body,
                prev_hash,
                hash,
            });
        }
        Ok(entries)
    }

    /// The outcome of every logged request, oldest first (`released`, `refused: <rule>`,
    /// `forwarded to ...`, `released merged: ...`).
    pub async fn release_outcomes(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT outcome FROM release_log ORDER BY entry_id";
        on_pool!(self, pool => {
            sqlx::query_scalar(SQL)
                .fetch_all(pool)
                .await
                .map_err(query_error("read release log"))
        })
    }

    /// What `requester` was given of its budget of distinct populations as of `day`: how
    /// many today, in the 365 days up to today and of `population`'s `family` in those days,
    /// and whether `population` is one of those of the year (then it does not count again).
    pub async fn populations_given(
        &self,
        requester: &str,
        day: NaiveDate,
        population: &str,
        family: &str,
    ) -> Result<PopulationsGiven, StoreError> {
        const SQL: &str = "SELECT \
             COUNT(DISTINCT CASE WHEN released_on = $2 THEN population END), \
             COUNT(DISTINCT population), \
             COALESCE(SUM(CASE WHEN population = $3 THEN 1 ELSE 0 END), 0), \
             COUNT(DISTINCT CASE WHEN family = $5 THEN population END) \
             FROM released_populations WHERE requester = $1 AND released_on > $4 \
             AND released_on <= $2";
        let year_before = day - chrono::Days::new(365);
        on_pool!(self, pool => {
            let (today, year, again, of_family): (i64, i64, i64, i64) = sqlx::query_as(SQL)
                .bind(requester)
                .bind(day)
                .bind(population)
                .bind(year_before)
                .bind(family)
                .fetch_one(pool)
                .await
                .map_err(query_error("read released populations"))?;
            Ok(PopulationsGiven { today, year, again: again > 0, of_family })
        })
    }
}

/// What a requester was given of its budget of distinct populations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PopulationsGiven {
    /// Distinct populations given today.
    pub today: i64,
    /// Distinct populations given in the 365 days up to today.
    pub year: i64,
    /// Whether the population asked is one of those: a repeat, which does not count again.
    pub again: bool,
    /// Distinct populations of the family of the one asked, in the 365 days.
    pub of_family: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_and_a_spread_of_older_checkpoints() {
        // 100 checkpoints, ids 1..=100, one position apart.
        let held: Vec<(i64, i64)> = (1..=100).map(|n| (n, n * 10)).collect();
        let pruned = checkpoints_to_prune(&held, 8);
        let kept: Vec<i64> = (1..=100).filter(|id| !pruned.contains(id)).collect();
        assert_eq!(kept.len(), 8, "{kept:?}");
        // The newest four, and the oldest of the farthest bands: the very first among them.
        assert!(kept.ends_with(&[97, 98, 99, 100]), "{kept:?}");
        assert_eq!(kept[0], 1, "{kept:?}");
        // Never the newest, whatever `keep` says.
        assert_eq!(checkpoints_to_prune(&held, 0).len(), 99);
        assert!(!checkpoints_to_prune(&held, 0).contains(&100));
        // Arrival order does not matter: position does.
        let shuffled: Vec<(i64, i64)> = held.iter().rev().copied().collect();
        let mut again = checkpoints_to_prune(&shuffled, 8);
        again.sort();
        let mut first = pruned.clone();
        first.sort();
        assert_eq!(again, first);
        assert!(checkpoints_to_prune(&[], 3).is_empty());
    }

    #[test]
    fn only_a_later_point_of_the_chains_is_newer() {
        let at = |processing_seq, access_seq| StoredCheckpoint {
            node: "urn:zicht:region:drenthe".to_owned(),
            received_at: 0,
            body: String::new(),
            signature: String::new(),
            certificate: String::new(),
            processing_seq,
            access_seq,
        };
        assert!(at(10, 5).is_newer_than(&at(9, 5)));
        assert!(!at(10, 5).is_newer_than(&at(10, 5)), "a replay");
        assert!(!at(3, 2).is_newer_than(&at(10, 5)), "an older one");
        assert!(
            !at(11, 4).is_newer_than(&at(10, 5)),
            "a chain that went back"
        );
    }
}
