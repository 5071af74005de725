//! The regional store: one interface over an embedded SQLite file (the default, zero set-up)
//! and PostgreSQL (production), with versioned migrations and the CSV import.
//!
//! Every statement the node runs is written once and runs on both backends: portable SQL with
//! `$N` placeholders (SQLite reads them by number too), dates bound as `chrono::NaiveDate`
//! (ISO text in SQLite, DATE in PostgreSQL), and `on_pool!` to compile a body per backend.

mod capacity;
mod consented;
mod counts;
pub mod import;
mod migrations;
mod record_keys;
mod release_log;
mod snapshot;

pub use capacity::{CapacityRow, UnsupportedDimension};
pub use consented::{
    ConsentRow, ConsentedRequest, ConsentedRows, Revoked, StoredCheck, StoredConsent,
    StoredPlacement,
};
pub use counts::{
    CountQuery, CountRow, CountScope, InvalidCountQuery, MeasureFigures, StayFigures,
};
pub use record_keys::RecordKeys;
pub use release_log::{
    checkpoints_to_prune, AccessEntry, AuditEntries, AuditFilter, AuditLog, BuildRelease,
    PopulationsGiven, ProcessingEntry, ReleaseEntry, ReleasedPopulation, StoredCheckpoint,
};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Errors of the store. Messages never contain the database URL (it may hold a password) nor
/// any record values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite:`, `postgres:`/`postgresql:` nor a plain file path.
    #[error("database URL must start with sqlite:, postgres: or postgresql:, or be a file path")]
    UnsupportedUrl,
    /// The URL has the right scheme but could not be understood.
    #[error("database URL is not valid")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database could not be reached or opened.
    #[error("connect to {backend} database")]
    Connect {
        /// Engine that was being connected.
        backend: Backend,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("migrate {backend} database")]
    Migrate {
        /// Engine being migrated.
        backend: Backend,
        /// Cause.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed.
    #[error("{action}")]
    Query {
        /// What the store was doing, e.g. `insert placements`.
        action: &'static str,
        /// Cause.
        #[source]
        source: sqlx::Error,
    },
    /// A read named a SQLite file that does not exist (reads never create one).
    #[error("no database at {path} (create it with zicht migrate --database {path} or zicht import --database {path})", path = .0.display())]
    NoDatabase(std::path::PathBuf),
    /// The counted tables could not be held in memory.
    #[error("build the in-memory snapshot: {0}")]
    Snapshot(&'static str),
    /// A stored audit entry's search columns disagree with its body: the row was altered.
    #[error(
        "{log}: entry {seq}: its search columns do not match its contents (the row was altered)"
    )]
    Tampered {
        /// `processing log` or `access log`.
        log: &'static str,
        /// The entry.
        seq: i64,
    },
}

/// The file of a SQLite database URL (`sqlite:PATH`, `sqlite://PATH` or a plain path), if it is
/// one (not PostgreSQL, not in memory).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    // Any other scheme (postgres:, or one zicht does not take) is not a file: opening it
    // says what is wrong without the URL, which may hold a password.
    let scheme = url.split_once(':').map(|(scheme, _)| scheme);
    if scheme.is_some_and(|s| {
        s != "sqlite"
            && !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    }) {
        return None;
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let file = rest.split('?').next().unwrap_or(rest);
    if file.is_empty() || file.starts_with(':') || url.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(file))
}

/// Raises the data generation inside a write's transaction (see `snapshot`): every write to
/// `placements` or `transition18` runs this before it commits.
pub(crate) const BUMP_GENERATION: &str = "UPDATE data_generation SET generation = generation + 1";

/// The first `width` columns of a result row: a grouped result's key, as text.
pub(crate) fn read_key<R>(row: &R, width: usize) -> Result<Vec<String>, sqlx::Error>
where
    R: sqlx::Row,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    (0..width).map(|i| row.try_get::<String, _>(i)).collect()
}

/// Builds a [`StoreError::Query`] for `map_err`.
pub(crate) fn query_error(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool; the body is compiled once per backend,
/// so one piece of SQL-building code serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A connection pool to a region's database on either backend.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Held while appending to the audit chains, so this process never forks them (another
    /// process appending the same `seq` fails on the primary key).
    pub(crate) audit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Releases waiting for the next group commit (see `record_release`).
    pub(crate) release_queue: std::sync::Arc<std::sync::Mutex<Vec<release_log::Pending>>>,
    /// The counted tables in memory, at the data generation they were read at.
    pub(crate) snapshot:
        std::sync::Arc<tokio::sync::Mutex<Option<std::sync::Arc<snapshot::Snapshot>>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

/// Row counts of a store, for summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Placement rows.
    pub placements: i64,
    /// Distinct youths with a placement.
    pub youths: i64,
    /// Placements still going on.
    pub ongoing: i64,
    /// Capacity rows.
    pub capacity_rows: i64,
    /// Sum of places over the latest peildatum per facility and care type.
    pub places: i64,
    /// Sum of occupied places over the same rows.
    pub occupied: i64,
    /// Transition checks of 16- and 17-year-olds.
    pub transition18_checks: i64,
    /// Consent records.
    pub consents: i64,
    /// Vrijheidsbeperkende maatregelen.
    pub measures: i64,
}

impl Store {
    /// Opens (and for SQLite, creates) the database at `url`: `sqlite:PATH`, `sqlite://PATH`,
    /// `postgres://...`, or a plain file path for SQLite. Does not migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(StoreError::InvalidUrl)?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: Backend::Postgres,
                    source,
                })?;
            Pool::Postgres(pool)
        } else {
            let options = if url.starts_with("sqlite:") {
                SqliteConnectOptions::from_str(url).map_err(StoreError::InvalidUrl)?
            } else if url.contains("://") {
                return Err(StoreError::UnsupportedUrl);
            } else {
                SqliteConnectOptions::new().filename(url)
            };
            // WAL lets readers run beside the writer; FULL syncs every commit, because a node
            // must never lose data it acknowledged.
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Imports insert keys in random order; SQLite's default 2 MB page cache makes
                // that spill and re-read constantly. The cache grows only as it is used.
                .pragma("cache_size", "-65536");
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: Backend::Sqlite,
                    source,
                })?;
            Pool::Sqlite(pool)
        };
        Ok(Store {
            pool,
            audit_lock: Default::default(),
            release_queue: Default::default(),
            snapshot: Default::default(),
        })
    }

    /// Opens the database and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a database that exists (a read never makes one: a mistyped path is an error,
    /// not an empty region) and brings its schema up to date.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = sqlite_file(url) {
            if !path.exists() {
                return Err(StoreError::NoDatabase(path));
            }
        }
        Store::open(url).await
    }

    /// The schema version: the last migration applied (0 for a database without one).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations";
        let version: Result<i64, sqlx::Error> =
            on_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool).await);
        // No migration table yet: a database no zicht schema was ever applied to.
        Ok(version.unwrap_or(0))
    }

    /// The schema version the store's migrations reach.
    pub fn latest_schema_version() -> i64 {
        migrations::LATEST
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every migration not yet applied (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        let to_error = |source| StoreError::Migrate { backend, source };
        let migrator = migrations::migrator(backend).await.map_err(to_error)?;
        on_pool!(self, pool => migrator.run(pool).await.map_err(to_error))
    }

    /// Closes every connection. On SQLite the write-ahead log is first copied into the
    /// database file and emptied, so that after a clean exit the file is complete on its own
    /// (a copy of it is a backup). SQLite does that itself only when one connection closes
    /// last; the pool closes its connections at once, and then now and then none is last.
    /// A checkpoint that cannot finish (another process reading) leaves the log to the next
    /// opener, as SQLite would.
    pub async fn close(&self) {
        if let Pool::Sqlite(pool) = &self.pool {
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(pool)
                .await
            {
                tracing::warn!(%error, "could not empty the SQLite write-ahead log at close");
            }
        }
        on_pool!(self, pool => pool.close().await)
    }

    /// Whether any capacity count was imported (a capacity query with no rows then means
    /// "none matched", not "no data").
    pub async fn has_capacity(&self) -> Result<bool, StoreError> {
        const ANY: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM capacity LIMIT 1) AS any_row";
        on_pool!(self, pool => {
            let (rows,): (i64,) = sqlx::query_as(ANY)
                .fetch_one(pool)
                .await
                .map_err(query_error("look for capacity data"))?;
            Ok(rows > 0)
        })
    }

    /// Counts what the store holds.
    pub async fn summary(&self) -> Result<Summary, StoreError> {
        const PLACEMENTS: &str = "SELECT COUNT(*), COUNT(DISTINCT youth_id), \
             COUNT(*) - COUNT(end_date) FROM placements";
        const OTHERS: &str = "SELECT (SELECT COUNT(*) FROM capacity), \
             (SELECT COUNT(*) FROM transition18), (SELECT COUNT(*) FROM consents), \
             (SELECT COUNT(*) FROM measures)";
        // Places and occupancy as the `capacity` template computes them: the latest count per
        // facility and care type (no peildatum in the data lies after 9999-12-31).
        let latest = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or_default();
        let (places, occupied) = match self.capacity(latest, &[]).await? {
            Ok(rows) => rows
                .iter()
                .fold((0, 0), |(p, o), row| (p + row.places, o + row.occupied)),
            Err(_) => (0, 0), // no dimensions asked: cannot happen
        };
        on_pool!(self, pool => {
            let (placements, youths, ongoing): (i64, i64, i64) = sqlx::query_as(PLACEMENTS)
                .fetch_one(pool)
                .await
                .map_err(query_error("count placements"))?;
            let (capacity_rows, transition18_checks, consents, measures): (i64, i64, i64, i64) =
                sqlx::query_as(OTHERS)
                    .fetch_one(pool)
                    .await
                    .map_err(query_error("count capacity, checks, consents and measures"))?;
            Ok(Summary {
                placements,
                youths,
                ongoing,
                capacity_rows,
                places,
                occupied,
                transition18_checks,
                consents,
                measures,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_urls_and_plain_paths_name_a_file() {
        let file = |url: &str| sqlite_file(url).map(|p| p.display().to_string());
        assert_eq!(file("region.db").as_deref(), Some("region.db"));
        assert_eq!(file("sqlite://data/r.db").as_deref(), Some("data/r.db"));
        assert_eq!(file("sqlite:r.db?mode=rwc").as_deref(), Some("r.db"));
        for none in [
            "sqlite::memory:",
            "sqlite://r.db?mode=memory",
            "postgres://u:secret@127.0.0.1/x",
            "mysql://u:secret@127.0.0.1/x",
        ] {
            assert_eq!(file(none), None, "{none}");
        }
    }
}
