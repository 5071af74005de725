//! Writing checked rows in one transaction as they arrive: multi-row upserts, then one
//! `imports` log row; or nothing, when the rows' source fails.

use std::future::Future;

use sqlx::QueryBuilder;
use tokio::sync::mpsc;
use zicht_model::{CodeList, Timestamp};

use super::{ImportOptions, Phase, Progress, Rows, Table};
use crate::{on_pool, query_error, Store, StoreError};

/// Rows per INSERT statement: 1,000 x 14 placement columns stays well under both SQLite's
/// (32,766) and PostgreSQL's (65,535) bind-parameter limits.
pub(crate) const BATCH: usize = 1000;

/// What a finished source of rows tells the writer.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Rows in the file.
    pub rows: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// How a re-import updates `column` of a stored row: with the file's value, except that a
/// consent's revocation is never undone or moved later (an older export without it, say):
/// the earlier of the two moments stays.
fn updated(table: &str, column: &str) -> String {
    if table == "consents" && column == "revoked_at" {
        return "revoked_at = CASE WHEN consents.revoked_at IS NULL OR \
             (excluded.revoked_at IS NOT NULL AND excluded.revoked_at < consents.revoked_at) \
             THEN excluded.revoked_at ELSE consents.revoked_at END"
            .to_owned();
    }
    format!("{column} = excluded.{column}")
}

/// `INSERT ... VALUES` for `$rows` in batches, with `ON CONFLICT (key) DO UPDATE` of every
/// other column (see [`updated`]), so the same file stored twice leaves the same rows.
macro_rules! upsert {
    ($tx:expr, $table:literal, [$($column:literal),+], key [$($key:literal),+],
     $rows:expr, |$builder:ident, $row:ident| $push:block) => {{
        const COLUMNS: &[&str] = &[$($column),+];
        const KEY: &[&str] = &[$($key),+];
        let insert = format!("INSERT INTO {} ({}) ", $table, COLUMNS.join(", "));
        let update: Vec<String> = COLUMNS
            .iter()
            .filter(|c| !KEY.contains(c))
            .map(|c| updated($table, c))
            .collect();
        let conflict = format!(" ON CONFLICT ({}) DO UPDATE SET {}", KEY.join(", "), update.join(", "));
        for chunk in $rows.chunks(BATCH) {
            let mut query = QueryBuilder::new(&insert);
            query.push_values(chunk, |mut $builder, $row| $push);
            query.push(&conflict);
            query
                .build()
                .execute(&mut *$tx)
                .await
                .map_err(query_error(concat!("insert ", $table)))?;
        }
    }};
}

/// Upserts one batch of rows in the open transaction `$tx`: one arm per table, each its
/// column list and binds.
macro_rules! store_batch {
    ($tx:expr, $rows:expr) => {
        match $rows {
            Rows::Placements(rows) => upsert!($tx, "placements",
                ["youth_id", "birth_date", "origin_region", "origin_municipality", "provider",
                 "location_municipality", "placement_region", "care_type", "setting",
                 "legal_basis", "start_date", "end_date", "outflow_destination", "outflow_profile"],
                key ["youth_id", "start_date", "care_type", "provider"],
                rows, |b, p| {
                    b.push_bind(p.youth_id.as_str())
                        .push_bind(p.birth_date)
                        .push_bind(p.origin_region.code())
                        .push_bind(p.origin_municipality.as_ref().map(|n| n.as_str()))
                        .push_bind(p.provider.as_str())
                        .push_bind(p.location_municipality.as_ref().map(|n| n.as_str()))
                        .push_bind(p.placement_region.code())
                        .push_bind(p.care_type.code())
                        .push_bind(p.setting.map(|s| s.code()))
                        .push_bind(p.legal_basis.code())
                        .push_bind(p.start_date)
                        .push_bind(p.end_date)
                        .push_bind(p.outflow_destination.map(|d| d.code()))
                        .push_bind(p.outflow_profile.map(|o| o.number()));
                }),
            Rows::Capacity(rows) => upsert!($tx, "capacity",
                ["provider", "facility", "location_municipality", "placement_region", "care_type",
                 "setting", "peildatum", "places", "occupied", "financing"],
                key ["provider", "facility", "care_type", "peildatum"],
                rows, |b, c| {
                    // `count` in the parser keeps both within i32.
                    b.push_bind(c.provider.as_str())
                        .push_bind(c.facility.as_str())
                        .push_bind(c.location_municipality.as_str())
                        .push_bind(c.placement_region.code())
                        .push_bind(c.care_type.code())
                        .push_bind(c.setting.map(|s| s.code()))
                        .push_bind(c.peildatum)
                        .push_bind(i32::try_from(c.places).unwrap_or(i32::MAX))
                        .push_bind(i32::try_from(c.occupied).unwrap_or(i32::MAX))
                        .push_bind(c.financing.map(|f| f.code()));
                }),
            Rows::Transition18(rows) => upsert!($tx, "transition18",
                ["youth_id", "check_date", "toekomstplan", "lokaal_team", "clientondersteuner",
                 "after18_funding", "big5_support", "big5_wonen", "big5_werk_school",
                 "big5_inkomen_schulden", "big5_zorg_ondersteuning", "uit_beeld"],
                key ["youth_id", "check_date"],
                rows, |b, t| {
                    b.push_bind(t.youth_id.as_str())
                        .push_bind(t.check_date)
                        .push_bind(t.toekomstplan)
                        .push_bind(t.lokaal_team)
                        .push_bind(t.clientondersteuner)
                        .push_bind(t.after18_funding.code())
                        .push_bind(t.big5_support.code())
                        .push_bind(t.big5_wonen.code())
                        .push_bind(t.big5_werk_school.code())
                        .push_bind(t.big5_inkomen_schulden.code())
                        .push_bind(t.big5_zorg_ondersteuning.code())
                        .push_bind(t.uit_beeld);
                }),
            Rows::Consents(rows) => upsert!($tx, "consents",
                ["consent_id", "youth_id", "purpose", "recipient", "fields", "granted_at",
                 "expires_at", "revoked_at", "evidence_ref"],
                key ["consent_id"],
                rows, |b, c| {
                    b.push_bind(c.consent_id.as_str())
                        .push_bind(c.youth_id.as_str())
                        .push_bind(c.purpose.code())
                        .push_bind(c.recipient.to_code())
                        .push_bind(c.fields.join("|"))
                        .push_bind(c.granted_at.millis())
                        .push_bind(c.expires_at.map(Timestamp::millis))
                        .push_bind(c.revoked_at.map(Timestamp::millis))
                        .push_bind(c.evidence_ref.as_ref().map(|n| n.as_str()));
                }),
        }
    };
}

/// Stores checked rows in one transaction: all of them, or (on any error) none.
pub async fn store_rows(
    store: &Store,
    rows: Rows,
    options: ImportOptions,
    file_name: &str,
    sha256: &str,
    progress: &mut dyn Progress,
) -> Result<(), StoreError> {
    let table = rows.table();
    let finished = Finished {
        rows: rows.len() as u64,
        sha256: sha256.to_owned(),
    };
    let (sender, mut receiver) = mpsc::channel(1);
    // Cannot fail: the channel is new, has room for one, and its receiver is here.
    let _ = sender.try_send((rows, 0));
    drop(sender);
    let source = async { Ok::<_, std::convert::Infallible>(finished) };
    store_stream(
        store,
        table,
        options,
        file_name,
        &mut receiver,
        0,
        source,
        progress,
    )
    .await
    .map(|_| ())
}

/// Stores batches of checked rows of `table` as they arrive, in one transaction. When the
/// channel closes, `source` says how the file ended: its rows and hash, then the import is
/// logged and committed; or its error, then everything is rolled back (inner `Err`). An
/// outer `Err` is the database failing (also rolled back). Progress counts the file's bytes
/// (`total`) up to each stored batch.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_stream<E>(
    store: &Store,
    table: Table,
    options: ImportOptions,
    file_name: &str,
    batches: &mut mpsc::Receiver<(Rows, u64)>,
    total: u64,
    source: impl Future<Output = Result<Finished, E>>,
    progress: &mut dyn Progress,
) -> Result<Result<Finished, E>, StoreError> {
    let table = table.name();
    on_pool!(store, pool => {
        let mut tx = pool.begin().await.map_err(query_error("begin import"))?;
        if options.replace {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(query_error("clear table for replace"))?;
        }
        while let Some((rows, at)) = batches.recv().await {
            store_batch!(tx, &rows);
            progress.advance(Phase::Store, at, total);
        }
        let finished = match source.await {
            Ok(finished) => finished,
            // Dropping the transaction rolls it back.
            Err(error) => return Ok(Err(error)),
        };
        sqlx::query(
            "INSERT INTO imports (table_name, file_name, sha256, row_count, replaced, imported_at) \
             VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP)",
        )
        .bind(table)
        .bind(file_name)
        .bind(&finished.sha256)
        .bind(i64::try_from(finished.rows).unwrap_or(i64::MAX))
        .bind(options.replace)
        .execute(&mut *tx)
        .await
        .map_err(query_error("log import"))?;
        sqlx::query(crate::BUMP_GENERATION)
            .execute(&mut *tx)
            .await
            .map_err(query_error("raise the data generation"))?;
        tx.commit().await.map_err(query_error("commit import"))?;
        progress.advance(Phase::Store, total, total);
        Ok(Ok(finished))
    })
}
