//! Import of generated placements on SQLite and PostgreSQL, each next to two references
//! measured in the same run on the same file:
//! - DuckDB's own load of the CSV into a table (the `duckdb` Python package; skipped without
//!   it), the yardstick of issue 19;
//! - the database's own bulk load of the same rows into the same schema, what loading that
//!   database costs before any checking: on SQLite, Python's `sqlite3` handing it the already
//!   parsed rows in its C `executemany` loop (the store's pragmas, the key index built once
//!   after the rows, one transaction; the CSV parse is not timed); on PostgreSQL, the server's
//!   own `COPY ... FROM STDIN (FORMAT csv)` of the file, the key index built once after it, one
//!   transaction. Both have the shape of zicht's own bulk load (see `import/load.rs`).
//!
//! Also parse + check without a database, the part of an import that is zicht's alone.
//!
//! `cargo bench -p zicht-store --bench import`; `ZICHT_BENCH_PLACEMENTS` sets the size (default
//! 1,000,000); PostgreSQL runs when `ZICHT_TEST_POSTGRES_URL` is set (`bash .ci/postgres`).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Connection;
use zicht_model::{CodeList, Placement, Region};
use zicht_store::import::{import_file, parse, store_rows, ImportOptions, Rows, Table};
use zicht_store::Backend;
use zicht_testkit::TestDb;

/// The key index a bulk load drops and builds again (migration 0011).
const KEY_INDEX: &str = "placements_key";

fn create_key_index() -> String {
    format!(
        "CREATE UNIQUE INDEX {KEY_INDEX} ON placements ({})",
        Table::Placements.key_columns().join(", ")
    )
}

/// One line of the table: time, rows/s, and the ratio to each reference there is.
fn line(label: &str, elapsed: Duration, rows: u64, references: &[(&str, Option<Duration>)]) {
    let rate = rows as f64 / elapsed.as_secs_f64();
    let ratios: String = references
        .iter()
        .filter_map(|(name, time)| {
            time.map(|t| format!("  {:.2}x {name}", elapsed.as_secs_f64() / t.as_secs_f64()))
        })
        .collect();
    println!(
        "{label:<54} {:>6.2} s {rate:>9.0} rows/s{ratios}",
        elapsed.as_secs_f64()
    );
}

fn seconds(text: &str) -> Duration {
    Duration::from_secs_f64(text.trim().parse().unwrap())
}

/// DuckDB's load of the CSV into an in-memory table.
fn duckdb_load(csv: &Path) -> Option<Duration> {
    let program = format!(
        r#"
import duckdb, sys, time
con = duckdb.connect()
t = time.perf_counter()
con.execute("{}", [sys.argv[1]])
print(time.perf_counter() - t)
"#,
        zicht_testkit::DUCKDB_LOAD
    );
    zicht_testkit::python(&program, &[csv.as_os_str()]).map(|out| seconds(&out))
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

    let duckdb = duckdb_load(&csv);
    match duckdb {
        Some(load) => line("duckdb: read_csv into a table (reference)", load, size, &[]),
        None => println!("duckdb: skipped (python3 -m pip install duckdb)"),
    }

    let started = Instant::now();
    let Rows::Placements(rows) =
        parse(Table::Placements, std::fs::File::open(&csv).unwrap()).unwrap()
    else {
        unreachable!("placements parse to placements")
    };
    line(
        "parse + check only (no database)",
        started.elapsed(),
        size,
        &[("DuckDB's load", duckdb)],
    );
    let parsed = Rows::Placements(rows);

    // SQLite.
    let own_db = TestDb::new(Backend::Sqlite).await;
    let sqlite_own = sqlite_bulk_load(&own_db.url, &csv);
    drop(own_db);
    match sqlite_own {
        Some(own) => line(
            "sqlite: sqlite3 executemany of parsed rows (own load)",
            own,
            size,
            &[("DuckDB's load", duckdb)],
        ),
        None => println!("sqlite: its own bulk load skipped (no python3)"),
    }
    measure_zicht(Backend::Sqlite, &csv, &parsed, size, sqlite_own, duckdb).await;

    // PostgreSQL.
    if std::env::var(zicht_testkit::POSTGRES_URL_VAR).is_err() {
        println!(
            "postgres: skipped; set {} (bash .ci/postgres prints it)",
            zicht_testkit::POSTGRES_URL_VAR
        );
        return;
    }
    let own_db = TestDb::new(Backend::Postgres).await;
    let started = Instant::now();
    postgres_bulk_load(&own_db.url, &csv).await;
    let postgres_own = started.elapsed();
    drop(own_db);
    line(
        "postgres: COPY csv, then the key index (own load)",
        postgres_own,
        size,
        &[("DuckDB's load", duckdb)],
    );
    measure_zicht(
        Backend::Postgres,
        &csv,
        &parsed,
        size,
        Some(postgres_own),
        duckdb,
    )
    .await;
}

/// zicht's own paths on `backend`, each on a fresh database, against the references: storing
/// already checked rows, and the whole import of the file.
async fn measure_zicht(
    backend: Backend,
    csv: &Path,
    parsed: &Rows,
    size: u64,
    own: Option<Duration>,
    duckdb: Option<Duration>,
) {
    let references = [("its own load", own), ("DuckDB's load", duckdb)];
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
        &references,
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
        &references,
    );
}

/// SQLite's own insert loop over the parsed rows, into the store's migrated database file:
/// the time of the load alone, as Python measures it.
fn sqlite_bulk_load(url: &str, csv: &Path) -> Option<Duration> {
    let program = format!(
        r#"
import csv, sqlite3, sys, time
with open(sys.argv[2], newline="") as f:
    reader = csv.reader(f)
    columns = next(reader)
    rows = [tuple(v if v != "" else None for v in row) for row in reader]
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA synchronous = FULL")
con.execute("PRAGMA cache_size = -65536")
t = time.perf_counter()
con.execute("BEGIN")
con.execute("DROP INDEX {KEY_INDEX}")
con.executemany("INSERT INTO placements (" + ", ".join(columns) + ") VALUES ("
    + ", ".join("?" * len(columns)) + ")", rows)
con.execute("{index}")
con.execute("COMMIT")
print(time.perf_counter() - t)
"#,
        index = create_key_index()
    );
    let path = url.strip_prefix("sqlite://").unwrap();
    zicht_testkit::python(&program, &[path.as_ref(), csv.as_os_str()]).map(|out| seconds(&out))
}

/// PostgreSQL's own CSV loader on the same file, as a bulk load into the empty table.
async fn postgres_bulk_load(url: &str, csv: &Path) {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(&format!("DROP INDEX {KEY_INDEX}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let statement = format!(
        "COPY placements ({}) FROM STDIN WITH (FORMAT csv, HEADER true)",
        Placement::COLUMNS.join(", ")
    );
    let mut copy = tx.copy_in_raw(&statement).await.unwrap();
    let data = std::fs::read(csv).unwrap();
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    copy.finish().await.unwrap();
    sqlx::query(&create_key_index())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
