//! Import throughput for generated placements on SQLite and PostgreSQL, each next to a baseline
//! measured in the same run on the same machine:
//! - parse + check only (no database): the floor any import pays;
//! - SQLite: a hand-written loop of single-row prepared INSERTs in one transaction;
//! - PostgreSQL: the server's own `COPY ... FROM STDIN (FORMAT csv)` of the very same file.
//!
//! `cargo bench -p zicht-store --bench import`; `ZICHT_BENCH_PLACEMENTS` sets the size (default
//! 1,000,000); PostgreSQL runs when `ZICHT_TEST_POSTGRES_URL` is set (`bash .ci/postgres`).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sqlx::Connection;
use zicht_model::{CodeList, Placement, Region};
use zicht_store::import::{import_file, parse, store_rows, ImportOptions, Rows, Table};
use zicht_store::Backend;
use zicht_testkit::TestDb;

fn line(label: &str, elapsed: Duration, rows: u64, baseline: Option<Duration>) {
    let rate = rows as f64 / elapsed.as_secs_f64();
    let ratio = baseline.map_or(String::new(), |b| {
        format!(
            "  {:.2}x the baseline's time",
            elapsed.as_secs_f64() / b.as_secs_f64()
        )
    });
    println!(
        "{label:<46} {:>7.2} s {rate:>11.0} rows/s{ratio}",
        elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let size = zicht_testkit::bench_region(dir.path());
    let csv = dir.path().join("placements.csv");
    let bytes = std::fs::metadata(&csv).unwrap().len();
    println!(
        "import benchmark: {size} placements, {:.1} MB CSV (synthetic {}, seed 1)\n",
        bytes as f64 / 1e6,
        Region::AmsterdamAmstelland.code()
    );

    let started = Instant::now();
    let Rows::Placements(rows) =
        parse(Table::Placements, std::fs::File::open(&csv).unwrap()).unwrap()
    else {
        unreachable!("placements parse to placements")
    };
    let parse_only = started.elapsed();
    line("parse + check only (no database)", parse_only, size, None);

    // SQLite.
    let baseline_db = TestDb::new(Backend::Sqlite).await;
    let started = Instant::now();
    sqlite_insert_loop(&baseline_db.url, &rows).await;
    let sqlite_baseline = started.elapsed();
    line(
        "sqlite: hand-written INSERT loop (baseline)",
        sqlite_baseline,
        size,
        None,
    );
    drop(baseline_db);
    let parsed = Rows::Placements(rows);
    measure_zicht(Backend::Sqlite, &csv, &parsed, size, sqlite_baseline).await;

    // PostgreSQL.
    if std::env::var(zicht_testkit::POSTGRES_URL_VAR).is_err() {
        println!(
            "postgres: skipped; set {} (bash .ci/postgres prints it)",
            zicht_testkit::POSTGRES_URL_VAR
        );
        return;
    }
    let baseline_db = TestDb::new(Backend::Postgres).await;
    let started = Instant::now();
    postgres_copy(&baseline_db.url, &csv).await;
    let postgres_baseline = started.elapsed();
    line(
        "postgres: COPY FROM STDIN csv (baseline)",
        postgres_baseline,
        size,
        None,
    );
    drop(baseline_db);
    measure_zicht(Backend::Postgres, &csv, &parsed, size, postgres_baseline).await;
}

/// zicht's own paths on `backend`, each on a fresh database, against that backend's baseline:
/// storing already checked rows, and the whole import of the file.
async fn measure_zicht(
    backend: Backend,
    csv: &std::path::Path,
    parsed: &Rows,
    size: u64,
    baseline: Duration,
) {
    let db = TestDb::new(backend).await;
    let started = Instant::now();
    store_rows(
        &db.store,
        parsed.clone(),
        ImportOptions::default(),
        "placements.csv",
        "-",
        &mut (),
    )
    .await
    .unwrap();
    line(
        &format!("{backend}: zicht store only (checked rows)"),
        started.elapsed(),
        size,
        Some(baseline),
    );
    drop(db);
    let db = TestDb::new(backend).await;
    let started = Instant::now();
    import_file(&db.store, csv, None, ImportOptions::default(), &mut ())
        .await
        .unwrap();
    line(
        &format!("{backend}: zicht import (read, check, store)"),
        started.elapsed(),
        size,
        Some(baseline),
    );
}

/// The plainest correct way: one prepared single-row INSERT per placement, one transaction.
async fn sqlite_insert_loop(url: &str, rows: &[Placement]) {
    // The same connection settings as the store's own (cache size included).
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut conn = sqlx::SqliteConnection::connect_with(&options.pragma("cache_size", "-65536"))
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    let insert = format!(
        "INSERT INTO placements ({}) VALUES ({})",
        Placement::COLUMNS.join(", "),
        (1..=Placement::COLUMNS.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for p in rows {
        sqlx::query(&insert)
            .bind(p.youth_id.as_str())
            .bind(p.birth_date)
            .bind(p.origin_region.code())
            .bind(p.origin_municipality.as_ref().map(|n| n.as_str()))
            .bind(p.provider.as_str())
            .bind(p.location_municipality.as_ref().map(|n| n.as_str()))
            .bind(p.placement_region.code())
            .bind(p.care_type.code())
            .bind(p.setting.map(|s| s.code()))
            .bind(p.legal_basis.code())
            .bind(p.start_date)
            .bind(p.end_date)
            .bind(p.outflow_destination.map(|d| d.code()))
            .bind(p.outflow_profile.map(|o| o.number()))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// PostgreSQL's own CSV loader on the same file.
async fn postgres_copy(url: &str, csv: &std::path::Path) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let statement = format!(
        "COPY placements ({}) FROM STDIN WITH (FORMAT csv, HEADER true)",
        Placement::COLUMNS.join(", ")
    );
    let mut copy = conn.copy_in_raw(&statement).await.unwrap();
    let data = std::fs::read(csv).unwrap();
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    copy.finish().await.unwrap();
}
