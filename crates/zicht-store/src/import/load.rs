//! Writing checked rows in one transaction: multi-row upserts, then one `imports` log row.

use sqlx::QueryBuilder;
use zicht_model::{CodeList, Timestamp};

use super::{ImportOptions, Phase, Progress, Rows};
use crate::{on_pool, query_error, Store, StoreError};

/// Rows per INSERT statement: 1,000 x 14 placement columns stays well under both SQLite's
/// (32,766) and PostgreSQL's (65,535) bind-parameter limits.
const BATCH: usize = 1000;

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
    ($tx:expr, $progress:expr, $table:literal, [$($column:literal),+], key [$($key:literal),+],
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
        let total = $rows.len() as u64;
        let mut done = 0u64;
        for chunk in $rows.chunks(BATCH) {
            let mut query = QueryBuilder::new(&insert);
            query.push_values(chunk, |mut $builder, $row| $push);
            query.push(&conflict);
            query
                .build()
                .execute(&mut *$tx)
                .await
                .map_err(query_error(concat!("insert ", $table)))?;
            done += chunk.len() as u64;
            $progress.advance(Phase::Store, done, total);
        }
    }};
}

/// Stores checked rows in one transaction: all of them, or (on any error) none. Longer than
/// most functions on purpose: one arm per table, each its column list and binds, inside one
/// transaction whose type differs per backend (`on_pool!`).
pub async fn store_rows(
    store: &Store,
    rows: &Rows,
    options: ImportOptions,
    file_name: &str,
    sha256: &str,
    progress: &mut dyn Progress,
) -> Result<(), StoreError> {
    let table = rows.table().name();
    on_pool!(store, pool => {
        let mut tx = pool.begin().await.map_err(query_error("begin import"))?;
        if options.replace {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(query_error("clear table for replace"))?;
        }
        match rows {
            Rows::Placements(rows) => upsert!(tx, progress, "placements",
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
            Rows::Capacity(rows) => upsert!(tx, progress, "capacity",
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
            Rows::Transition18(rows) => upsert!(tx, progress, "transition18",
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
            Rows::Consents(rows) => upsert!(tx, progress, "consents",
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
        sqlx::query(
            "INSERT INTO imports (table_name, file_name, sha256, row_count, replaced, imported_at) \
             VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP)",
        )
        .bind(table)
        .bind(file_name)
        .bind(sha256)
        .bind(i64::try_from(rows.len()).unwrap_or(i64::MAX))
        .bind(options.replace)
        .execute(&mut *tx)
        .await
        .map_err(query_error("log import"))?;
        tx.commit().await.map_err(query_error("commit import"))
    })
}
