//! Writing checked rows in one transaction as they arrive, then one `imports` log row; or
//! nothing, when the rows' source fails.
//!
//! How the rows reach the table:
//! - Into an empty table (a first import, or `--replace`), a youth table loads in bulk: the
//!   unique index of its key is dropped, the rows appended, and the index built once at the
//!   end (a sort, instead of a million keys inserted in random order). The check lets a file
//!   hold each key once, so the build cannot fail on the file's rows; if it failed anyway,
//!   the transaction would roll back with it.
//! - Otherwise the rows are upserted on the table's key (see [`updated`]), so importing the
//!   same file twice leaves the same rows.
//! - PostgreSQL receives the rows with one `COPY ... FROM STDIN` (into the table, or for an
//!   upsert into a temporary table, then one `INSERT ... SELECT ... ON CONFLICT`); SQLite
//!   with multi-row INSERTs of [`BATCH`] rows.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;

use chrono::{Datelike, NaiveDate};
use sqlx::QueryBuilder;
use tokio::sync::mpsc;
use zicht_model::{Capacity, CodeList, Consent, Measure, Placement, Timestamp, Transition18Check};

use super::{ImportOptions, Phase, Progress, Rows, Table};
use crate::{query_error, Pool, Store, StoreError};

/// Rows per SQLite INSERT statement: 1,000 x 14 placement columns stays well under SQLite's
/// bind-parameter limit (32,766); also the size of the batches the check sends.
pub(crate) const BATCH: usize = 1000;

/// Bytes of `COPY` text sent to PostgreSQL at a time, at most one row over.
const COPY_PIECE: usize = 1 << 20;

/// What a finished source of rows tells the writer.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Rows in the file.
    pub rows: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// What the file turned out to be (`None` for rows handed in checked).
    pub sniffed: Option<super::Sniffed>,
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

/// ` ON CONFLICT (key) DO UPDATE SET` every other column of `table`, for rows that differ in
/// one: a row the file repeats unchanged is not written again.
fn on_conflict(table: Table) -> String {
    let (name, key) = (table.name(), table.key_columns());
    let others: Vec<&str> = table
        .columns()
        .iter()
        .copied()
        .filter(|c| !key.contains(c))
        .collect();
    let update: Vec<String> = others.iter().map(|c| updated(name, c)).collect();
    let differs: Vec<String> = others
        .iter()
        .map(|c| format!("{name}.{c} IS DISTINCT FROM excluded.{c}"))
        .collect();
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
        key.join(", "),
        update.join(", "),
        differs.join(" OR ")
    )
}

/// The unique index of the table's key, for the tables that load in bulk (migration 0011).
fn key_index(table: Table) -> Option<&'static str> {
    match table {
        Table::Placements => Some("placements_key"),
        Table::Transition18 => Some("transition18_key"),
        Table::Capacity | Table::Consents | Table::Measures => None,
    }
}

/// One column value of a stored row, as both backends store it: dates as ISO text on SQLite
/// (DATE on PostgreSQL), booleans as 0/1 (BOOLEAN), moments as milliseconds.
enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    Date(NaiveDate),
}

fn text(value: &str) -> Value<'_> {
    Value::Text(Cow::Borrowed(value))
}

fn or_null<'a, T>(value: Option<T>, f: impl FnOnce(T) -> Value<'a>) -> Value<'a> {
    value.map_or(Value::Null, f)
}

/// `YYYY-MM-DD` (the checked dates have four-digit years).
fn iso_date(date: NaiveDate, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month(),
        date.day()
    );
}

fn placement(p: &Placement) -> [Value<'_>; 14] {
    [
        text(p.youth_id.as_str()),
        Value::Date(p.birth_date),
        text(p.origin_region.code()),
        or_null(p.origin_municipality.as_ref(), |n| text(n.as_str())),
        text(p.provider.as_str()),
        or_null(p.location_municipality.as_ref(), |n| text(n.as_str())),
        text(p.placement_region.code()),
        text(p.care_type.code()),
        or_null(p.setting, |s| text(s.code())),
        text(p.legal_basis.code()),
        Value::Date(p.start_date),
        or_null(p.end_date, Value::Date),
        or_null(p.outflow_destination, |d| text(d.code())),
        or_null(p.outflow_profile, |o| Value::Int(o.number().into())),
    ]
}

fn capacity(c: &Capacity) -> [Value<'_>; 10] {
    [
        text(c.provider.as_str()),
        text(c.facility.as_str()),
        text(c.location_municipality.as_str()),
        text(c.placement_region.code()),
        text(c.care_type.code()),
        or_null(c.setting, |s| text(s.code())),
        Value::Date(c.peildatum),
        Value::Int(c.places.into()),
        Value::Int(c.occupied.into()),
        or_null(c.financing, |f| text(f.code())),
    ]
}

fn check(t: &Transition18Check) -> [Value<'_>; 12] {
    [
        text(t.youth_id.as_str()),
        Value::Date(t.check_date),
        Value::Bool(t.toekomstplan),
        Value::Bool(t.lokaal_team),
        Value::Bool(t.clientondersteuner),
        text(t.after18_funding.code()),
        text(t.big5_support.code()),
        text(t.big5_wonen.code()),
        text(t.big5_werk_school.code()),
        text(t.big5_inkomen_schulden.code()),
        text(t.big5_zorg_ondersteuning.code()),
        Value::Bool(t.uit_beeld),
    ]
}

fn consent(c: &Consent) -> [Value<'_>; 9] {
    [
        text(c.consent_id.as_str()),
        text(c.youth_id.as_str()),
        text(c.purpose.code()),
        Value::Text(Cow::Owned(c.recipient.to_code())),
        Value::Text(Cow::Owned(c.fields.join("|"))),
        Value::Int(c.granted_at.millis()),
        or_null(c.expires_at, |t| Value::Int(Timestamp::millis(t))),
        or_null(c.revoked_at, |t| Value::Int(Timestamp::millis(t))),
        or_null(c.evidence_ref.as_ref(), |n| text(n.as_str())),
    ]
}

fn measure(m: &Measure) -> [Value<'_>; 8] {
    [
        text(m.youth_id.as_str()),
        text(m.provider.as_str()),
        text(m.facility.as_str()),
        text(m.placement_region.code()),
        Value::Date(m.start_date),
        Value::Text(Cow::Owned(format!(
            "{:02}:{:02}",
            m.start_minute / 60,
            m.start_minute % 60
        ))),
        Value::Int(m.duration_minutes.into()),
        text(m.kind.code()),
    ]
}

/// Runs `$body` with `$values` bound to an iterator over the rows' values (one array per
/// row, in [`Table::columns`] order): once per table, written once.
macro_rules! with_values {
    ($rows:expr, |$values:ident| $body:expr) => {
        match $rows {
            Rows::Placements(rows) => {
                let $values = rows.iter().map(placement);
                $body
            }
            Rows::Capacity(rows) => {
                let $values = rows.iter().map(capacity);
                $body
            }
            Rows::Transition18(rows) => {
                let $values = rows.iter().map(check);
                $body
            }
            Rows::Consents(rows) => {
                let $values = rows.iter().map(consent);
                $body
            }
            Rows::Measures(rows) => {
                let $values = rows.iter().map(measure);
                $body
            }
        }
    };
}

/// Appends one row to `out` in `COPY` text format: tab-separated, `\N` for NULL, and
/// backslash, tab, newline and carriage return escaped.
fn copy_line(values: &[Value<'_>], out: &mut String) {
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match value {
            Value::Null => out.push_str("\\N"),
            Value::Text(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
            Value::Date(date) => iso_date(*date, out),
        }
    }
    out.push('\n');
}

/// Sends `text` (whole `COPY` lines) to PostgreSQL and empties it.
async fn send_piece(
    copy: &mut sqlx::postgres::PgCopyIn<&mut sqlx::PgConnection>,
    text: &mut String,
) -> Result<(), StoreError> {
    copy.send(text.as_bytes())
        .await
        .map_err(query_error("insert rows"))?;
    text.clear();
    Ok(())
}

/// Binds one value for SQLite.
fn bind<'a>(
    builder: &mut sqlx::query_builder::Separated<'_, 'a, sqlx::Sqlite, &'static str>,
    value: Value<'a>,
) {
    match value {
        Value::Null => builder.push_bind(None::<i64>),
        Value::Text(text) => builder.push_bind(text),
        Value::Int(n) => builder.push_bind(n),
        Value::Bool(b) => builder.push_bind(b),
        Value::Date(date) => {
            let mut text = String::with_capacity(10);
            iso_date(date, &mut text);
            builder.push_bind(text)
        }
    };
}

/// Stores checked rows in one transaction: all of them, or (on any error) none. Rows of
/// `measures` are taken as checked: only [`super::import_file`] checks them against the
/// placements and facilities they name.
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
        sniffed: None,
    };
    let (sender, mut receiver) = mpsc::channel(1);
    // Cannot fail: the channel is new, has room for one, and its receiver is here.
    let _ = sender.try_send((rows, 0));
    drop(sender);
    let source = async { Ok::<_, std::convert::Infallible>(finished) };
    store_stream(
        store,
        table,
        options.replace,
        file_name,
        &mut receiver,
        0,
        source,
        progress,
    )
    .await
    .map(|_| ())
}

/// Opens the import in `$tx`: clears the table for `--replace`, and for a youth table that is
/// empty now drops its key index for a bulk load. Gives that index (`Some` when loading in
/// bulk).
macro_rules! begin_import {
    ($tx:expr, $table:expr, $replace:expr) => {{
        let name = $table.name();
        if $replace {
            sqlx::query(&format!("DELETE FROM {name}"))
                .execute(&mut *$tx)
                .await
                .map_err(query_error("clear table for replace"))?;
        }
        match key_index($table) {
            Some(index) => {
                let empty = $replace
                    || !sqlx::query_scalar::<_, bool>(&format!(
                        "SELECT EXISTS (SELECT 1 FROM {name})"
                    ))
                    .fetch_one(&mut *$tx)
                    .await
                    .map_err(query_error("look for stored rows"))?;
                if empty {
                    sqlx::query(&format!("DROP INDEX {index}"))
                        .execute(&mut *$tx)
                        .await
                        .map_err(query_error("drop the key index for a bulk load"))?;
                }
                empty.then_some(index)
            }
            None => None,
        }
    }};
}

/// Closes the import in `$tx`: builds the key index again after a bulk load, logs the import,
/// raises the data generation (dropping the stored snapshot) and commits.
macro_rules! finish_import {
    ($tx:expr, $table:expr, $replace:expr, $bulk:expr, $file_name:expr, $finished:expr) => {{
        let name = $table.name();
        if let Some(index) = $bulk {
            let key = $table.key_columns().join(", ");
            sqlx::query(&format!("CREATE UNIQUE INDEX {index} ON {name} ({key})"))
                .execute(&mut *$tx)
                .await
                .map_err(query_error("build the key index"))?;
        }
        sqlx::query(
            "INSERT INTO imports (table_name, file_name, sha256, row_count, replaced, imported_at) \
             VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP)",
        )
        .bind(name)
        .bind($file_name)
        .bind(&$finished.sha256)
        .bind(i64::try_from($finished.rows).unwrap_or(i64::MAX))
        .bind($replace)
        .execute(&mut *$tx)
        .await
        .map_err(query_error("log import"))?;
        // The raised generation makes the stored snapshot stale: drop it now.
        for (sql, action) in [
            (crate::BUMP_GENERATION, "raise the data generation"),
            ("DELETE FROM count_snapshot", "drop the stale snapshot"),
        ] {
            sqlx::query(sql)
                .execute(&mut *$tx)
                .await
                .map_err(query_error(action))?;
        }
        $tx.commit().await.map_err(query_error("commit import"))?;
    }};
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
    replace: bool,
    file_name: &str,
    batches: &mut mpsc::Receiver<(Rows, u64)>,
    total: u64,
    source: impl Future<Output = Result<Finished, E>>,
    progress: &mut dyn Progress,
) -> Result<Result<Finished, E>, StoreError> {
    let (name, columns) = (table.name(), table.columns().join(", "));
    let finished = match &store.pool {
        Pool::Sqlite(pool) => {
            let mut tx = pool.begin().await.map_err(query_error("begin import"))?;
            let bulk = begin_import!(tx, table, replace);
            let insert = format!("INSERT INTO {name} ({columns}) ");
            let conflict = on_conflict(table);
            while let Some((rows, at)) = batches.recv().await {
                with_values!(&rows, |values| {
                    let mut values = values.peekable();
                    while values.peek().is_some() {
                        let mut query = QueryBuilder::new(&insert);
                        query.push_values(values.by_ref().take(BATCH), |mut b, row| {
                            row.into_iter().for_each(|value| bind(&mut b, value));
                        });
                        if bulk.is_none() {
                            query.push(&conflict);
                        }
                        query
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(query_error("insert rows"))?;
                    }
                });
                progress.advance(Phase::Store, at, total);
            }
            let finished = match source.await {
                Ok(finished) => finished,
                Err(error) => {
                    // Rolled back now, not when the connection is next used: the next import
                    // may take another connection of the pool, and SQLite has one writer.
                    tx.rollback()
                        .await
                        .map_err(query_error("roll back the import"))?;
                    return Ok(Err(error));
                }
            };
            finish_import!(tx, table, replace, bulk, file_name, finished);
            finished
        }
        Pool::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(query_error("begin import"))?;
            // One import of a table at a time, so the table stays empty between the look
            // and the load; readers go on.
            sqlx::query(&format!("LOCK TABLE {name} IN EXCLUSIVE MODE"))
                .execute(&mut *tx)
                .await
                .map_err(query_error("lock the table for the import"))?;
            let bulk = begin_import!(tx, table, replace);
            let target = match bulk {
                Some(_) => name,
                None => {
                    sqlx::query(&format!(
                        "CREATE TEMPORARY TABLE zicht_import (LIKE {name}) ON COMMIT DROP"
                    ))
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("stage rows"))?;
                    "zicht_import"
                }
            };
            let mut copy = tx
                .copy_in_raw(&format!("COPY {target} ({columns}) FROM STDIN"))
                .await
                .map_err(query_error("insert rows"))?;
            let mut text = String::new();
            while let Some((rows, at)) = batches.recv().await {
                // A large batch goes out in pieces, so the server stores while the rest is
                // written.
                with_values!(&rows, |values| for row in values {
                    copy_line(&row, &mut text);
                    if text.len() >= COPY_PIECE {
                        send_piece(&mut copy, &mut text).await?;
                    }
                });
                if !text.is_empty() {
                    send_piece(&mut copy, &mut text).await?;
                }
                progress.advance(Phase::Store, at, total);
            }
            let finished = match source.await {
                Ok(finished) => finished,
                Err(error) => {
                    // The abort ends the COPY cleanly, then the transaction is rolled back
                    // at once (not when the connection is next used).
                    let _ = copy.abort("the file was rejected").await;
                    tx.rollback()
                        .await
                        .map_err(query_error("roll back the import"))?;
                    return Ok(Err(error));
                }
            };
            copy.finish().await.map_err(query_error("insert rows"))?;
            if bulk.is_none() {
                sqlx::query(&format!(
                    "INSERT INTO {name} ({columns}) SELECT {columns} FROM zicht_import{}",
                    on_conflict(table)
                ))
                .execute(&mut *tx)
                .await
                .map_err(query_error("insert rows"))?;
                sqlx::query("DROP TABLE zicht_import")
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("stage rows"))?;
            }
            finish_import!(tx, table, replace, bulk, file_name, finished);
            finished
        }
    };
    progress.advance(Phase::Store, total, total);
    Ok(Ok(finished))
}
