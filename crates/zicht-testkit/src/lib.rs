//! Test helpers (dev-dependency only): a fresh, migrated database per test on SQLite and on
//! PostgreSQL, and [`both_backends!`] to run one test body on each.
//!
//! PostgreSQL tests need `ZICHT_TEST_POSTGRES_URL` (a role with CREATEDB). They fail, never
//! skip, without it: `bash .ci/test` starts a local server and sets it.

#![allow(clippy::unwrap_used)]

pub mod federation;
pub mod node;
pub mod otlp;
pub mod queries;
pub mod xlsx;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};
use zicht_store::{Backend, Store};

/// Environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "ZICHT_TEST_POSTGRES_URL";

/// A whole number from the environment variable `name`, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// DuckDB's load of a placements CSV (the file's path is the one parameter), as the benchmarks
/// run it beside zicht: the dates and the outflow profile typed, everything else as read.
pub const DUCKDB_LOAD: &str = "CREATE TABLE placements AS SELECT * FROM read_csv(?, \
     header = true, types = {'birth_date': 'DATE', 'start_date': 'DATE', 'end_date': 'DATE', \
     'outflow_profile': 'INTEGER'})";

/// Runs a Python program (`python3 -c`) with `args`: its standard output, or `None` when
/// Python or a package it imports is missing (a benchmark then skips that reference).
pub fn python(program: &str, args: &[&std::ffi::OsStr]) -> Option<String> {
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// Writes the benchmarks' synthetic region into `dir`: Amsterdam-Amstelland, seed 1, with
/// `ZICHT_BENCH_PLACEMENTS` placements (default 1,000,000). Returns that number.
pub fn bench_region(dir: &std::path::Path) -> u64 {
    let size = env_number("ZICHT_BENCH_PLACEMENTS", 1_000_000);
    let config = zicht_synth::Config {
        placements: Some(size),
        ..zicht_synth::Config::new(zicht_model::Region::AmsterdamAmstelland, 1)
    };
    zicht_synth::generate_to_dir(&config, dir).unwrap();
    size
}

/// The admin URL of the test PostgreSQL server; panics with what to do when it is not set.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: PostgreSQL tests need a server; \
             run `bash .ci/test`, which starts one and sets it"
        )
    })
}

/// A fresh database that is removed when dropped.
pub struct TestDb {
    /// The migrated store.
    pub store: Store,
    /// URL of the database, for passing to the `zicht` binary.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "zicht_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Replaces the database name (the path) of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], database);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl TestDb {
    /// Creates and migrates a fresh database on `backend`.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("region.db").display());
                let store = Store::open(&url).await.unwrap();
                TestDb {
                    store,
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = unique_name();
                let mut conn = PgConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                let url = with_database(&admin, &name);
                let store = Store::open(&url).await.unwrap();
                TestDb {
                    store,
                    url,
                    _dir: None,
                    postgres: Some((admin, name)),
                }
            }
        }
    }
}

impl TestDb {
    /// Runs a query returning one integer (counts in assertions).
    pub async fn scalar(&self, sql: &str) -> i64 {
        if let Some((_, _)) = &self.postgres {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }

    /// Runs a statement (for tests that break the database on purpose).
    pub async fn execute(&self, sql: &str) {
        if let Some((_, _)) = &self.postgres {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }

    /// Runs a query returning one text column (write it portably: `||`, `CAST(x AS TEXT)`,
    /// `CASE WHEN flag THEN 'ja' ELSE 'nee' END`).
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        if let Some((_, _)) = &self.postgres {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        let store = self.store.clone();
        // Drop runs inside the test's runtime; a helper thread with its own runtime does the
        // async clean-up. A failed drop only leaves a stray database behind.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                store.close().await;
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Declares a module with one `#[tokio::test]` per backend that runs `$body` with a fresh,
/// migrated [`TestDb`] bound to `$db`, for example
/// `both_backends!(imports_are_idempotent, |db| async move { /* use db.store */ });`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$db:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $db = $crate::TestDb::new(::zicht_store::Backend::Sqlite).await;
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $db = $crate::TestDb::new(::zicht_store::Backend::Postgres).await;
                $body.await
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/zicht_test", "x"),
            "postgres://u:p@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@localhost/db?sslmode=disable", "x"),
            "postgres://u@localhost/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@localhost", "x"),
            "postgres://u@localhost/x"
        );
    }
}
