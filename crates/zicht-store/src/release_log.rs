//! The release log and the privacy ledger. One row per peer request the node answered or
//! refused, and one ledger row per population it released, written together in one
//! transaction before the answer leaves (fail-closed). Neither holds data values beyond the
//! released counts.

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

/// One population released to a requester: a total or a released cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Who was given it (PeerID, or `local` for `zicht query` on the node itself).
    pub requester: String,
    /// The day it was released.
    pub recorded_on: NaiveDate,
    /// Template code.
    pub template: String,
    /// First day of the scope.
    pub period_from: NaiveDate,
    /// Last day of the scope (the peildatum for one-day scopes).
    pub period_to: NaiveDate,
    /// The scope's filters in the ledger's text form (`dimension=v1|v2;...`).
    pub filters: String,
    /// The count released (unrounded).
    pub population: i64,
}

impl Store {
    /// Appends one release log entry and the populations released with it, atomically; an
    /// error means the answer must not leave.
    pub async fn record_release(
        &self,
        entry: &ReleaseEntry,
        ledger: &[LedgerEntry],
    ) -> Result<(), StoreError> {
        const LOG: &str = "INSERT INTO release_log (logged_at, peer_id, role, template, purpose, \
             group_by, outcome, result_rows) VALUES (CURRENT_TIMESTAMP, $1, $2, $3, $4, $5, $6, $7)";
        // A population released before is refreshed, not added again.
        const REFRESH: &str = "UPDATE privacy_ledger SET recorded_on = $2 WHERE requester = $1 \
             AND template = $3 AND period_from = $4 AND period_to = $5 AND filters = $6 \
             AND population = $7";
        const LEDGER: &str = "INSERT INTO privacy_ledger (requester, recorded_on, template, \
             period_from, period_to, filters, population) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(query_error("begin release"))?;
            sqlx::query(LOG)
                .bind(&entry.peer_id)
                .bind(&entry.role)
                .bind(&entry.template)
                .bind(&entry.purpose)
                .bind(&entry.group_by)
                .bind(&entry.outcome)
                .bind(entry.result_rows)
                .execute(&mut *tx)
                .await
                .map_err(query_error("write release log"))?;
            for row in ledger {
                // Refresh first; insert only when the population was never released before.
                for sql in [REFRESH, LEDGER] {
                    let written = sqlx::query(sql)
                        .bind(&row.requester)
                        .bind(row.recorded_on)
                        .bind(&row.template)
                        .bind(row.period_from)
                        .bind(row.period_to)
                        .bind(&row.filters)
                        .bind(row.population)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("write privacy ledger"))?;
                    if written.rows_affected() > 0 {
                        break;
                    }
                }
            }
            tx.commit().await.map_err(query_error("commit release"))
        })
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

    /// What `requester` was given of `template` on or after `since`.
    pub async fn ledger(
        &self,
        requester: &str,
        template: &str,
        since: NaiveDate,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        const SQL: &str = "SELECT recorded_on, period_from, period_to, filters, population \
             FROM privacy_ledger WHERE requester = $1 AND template = $2 AND recorded_on >= $3";
        on_pool!(self, pool => {
            use sqlx::Row;
            sqlx::query(SQL)
                .bind(requester)
                .bind(template)
                .bind(since)
                .fetch_all(pool)
                .await
                .map_err(query_error("read privacy ledger"))?
                .into_iter()
                .map(|row| -> Result<LedgerEntry, sqlx::Error> {
                    Ok(LedgerEntry {
                        requester: requester.to_owned(),
                        recorded_on: row.try_get(0)?,
                        template: template.to_owned(),
                        period_from: row.try_get(1)?,
                        period_to: row.try_get(2)?,
                        filters: row.try_get(3)?,
                        population: row.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("read privacy ledger"))
        })
    }
}
