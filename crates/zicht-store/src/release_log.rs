//! The release log: one row per peer request the node answered or refused, written before the
//! answer leaves (fail-closed). Never holds data values.

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

impl Store {
    /// Appends one entry; an error means the answer must not leave.
    pub async fn log_release(&self, entry: &ReleaseEntry) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO release_log (logged_at, peer_id, role, template, purpose, \
             group_by, outcome, result_rows) VALUES (CURRENT_TIMESTAMP, $1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => sqlx::query(SQL)
            .bind(&entry.peer_id)
            .bind(&entry.role)
            .bind(&entry.template)
            .bind(&entry.purpose)
            .bind(&entry.group_by)
            .bind(&entry.outcome)
            .bind(entry.result_rows)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(query_error("write release log")))
    }
}
