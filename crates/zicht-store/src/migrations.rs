//! Versioned schema migrations, embedded in the binary (one folder per backend).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

use crate::Backend;

/// `(version, description, sql)` per migration, in order. A new migration gets the next version
/// in both lists; an applied migration is never edited (sqlx refuses a changed checksum).
const SQLITE: &[(i64, &str, &str)] = &[
    (
        1,
        "regional store",
        include_str!("../migrations/sqlite/0001_regional_store.sql"),
    ),
    (
        2,
        "release log",
        include_str!("../migrations/sqlite/0002_release_log.sql"),
    ),
    (
        3,
        "privacy ledger",
        include_str!("../migrations/sqlite/0003_privacy_ledger.sql"),
    ),
    (
        4,
        "privacy ledger scope index",
        include_str!("../migrations/sqlite/0004_privacy_ledger_scope.sql"),
    ),
    (
        5,
        "audit chains",
        include_str!("../migrations/sqlite/0005_audit_chains.sql"),
    ),
    (
        6,
        "checkpoints",
        include_str!("../migrations/sqlite/0006_checkpoints.sql"),
    ),
    (
        7,
        "audit search",
        include_str!("../migrations/sqlite/0007_audit_search.sql"),
    ),
    (
        8,
        "cell keys",
        include_str!("../migrations/sqlite/0008_cell_keys.sql"),
    ),
    (
        9,
        "consent moments",
        include_str!("../migrations/sqlite/0009_consent_moments.sql"),
    ),
    (
        10,
        "data generation",
        include_str!("../migrations/sqlite/0010_data_generation.sql"),
    ),
    (
        11,
        "record keys in memory, bulk loads",
        include_str!("../migrations/sqlite/0011_bulk_loads.sql"),
    ),
    (
        12,
        "hashed columns",
        include_str!("../migrations/sqlite/0012_hashed_columns.sql"),
    ),
    (
        13,
        "population families",
        include_str!("../migrations/sqlite/0013_population_families.sql"),
    ),
    (
        14,
        "measures",
        include_str!("../migrations/sqlite/0014_measures.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (
        1,
        "regional store",
        include_str!("../migrations/postgres/0001_regional_store.sql"),
    ),
    (
        2,
        "release log",
        include_str!("../migrations/postgres/0002_release_log.sql"),
    ),
    (
        3,
        "privacy ledger",
        include_str!("../migrations/postgres/0003_privacy_ledger.sql"),
    ),
    (
        4,
        "privacy ledger scope index",
        include_str!("../migrations/postgres/0004_privacy_ledger_scope.sql"),
    ),
    (
        5,
        "audit chains",
        include_str!("../migrations/postgres/0005_audit_chains.sql"),
    ),
    (
        6,
        "checkpoints",
        include_str!("../migrations/postgres/0006_checkpoints.sql"),
    ),
    (
        7,
        "audit search",
        include_str!("../migrations/postgres/0007_audit_search.sql"),
    ),
    (
        8,
        "cell keys",
        include_str!("../migrations/postgres/0008_cell_keys.sql"),
    ),
    (
        9,
        "consent moments",
        include_str!("../migrations/postgres/0009_consent_moments.sql"),
    ),
    (
        10,
        "data generation",
        include_str!("../migrations/postgres/0010_data_generation.sql"),
    ),
    (
        11,
        "record keys in memory, bulk loads",
        include_str!("../migrations/postgres/0011_bulk_loads.sql"),
    ),
    (
        12,
        "hashed columns",
        include_str!("../migrations/postgres/0012_hashed_columns.sql"),
    ),
    (
        13,
        "population families",
        include_str!("../migrations/postgres/0013_population_families.sql"),
    ),
    (
        14,
        "measures",
        include_str!("../migrations/postgres/0014_measures.sql"),
    ),
];

/// The version the migrations reach (the same on both backends).
pub(crate) const LATEST: i64 = SQLITE[SQLITE.len() - 1].0;

#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator for a backend.
pub(crate) async fn migrator(backend: Backend) -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded(match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_versions() {
        fn versions(list: &[(i64, &'static str, &str)]) -> Vec<(i64, &'static str)> {
            list.iter().map(|m| (m.0, m.1)).collect()
        }
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }

    /// Version 11 copies SQLite's youth tables to change their key: a database of version 10
    /// keeps its rows, loses the stored record keys, and still refuses a second row per key.
    #[tokio::test]
    async fn the_youth_tables_keep_their_rows_through_version_11() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("v10.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let run = |list: &'static [(i64, &'static str, &'static str)]| {
            let pool = pool.clone();
            async move {
                let migrator = Migrator::new(Embedded(list)).await.unwrap();
                migrator.run(&pool).await.unwrap();
            }
        };
        run(&SQLITE[..10]).await;
        const PLACEMENT: &str = "INSERT INTO placements (youth_id, birth_date, origin_region, \
             provider, placement_region, care_type, legal_basis, start_date, record_key) \
             VALUES ('Y1', '2010-01-01', 'drenthe', 'P', 'drenthe', 'pleegzorg', 'ots', \
             '2024-01-01', 7)";
        const CHECK: &str = "INSERT INTO transition18 VALUES ('Y1', '2025-01-01', 1, 0, 1, \
             'geregeld', 'op_orde', 'op_orde', 'op_orde', 'op_orde', 'op_orde', 0, 7)";
        for sql in [PLACEMENT, CHECK] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        run(SQLITE).await;
        for table in ["placements", "transition18"] {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(rows, 1, "{table}");
            let keyed = sqlx::query(&format!("SELECT record_key FROM {table}"))
                .fetch_all(&pool)
                .await;
            assert!(keyed.is_err(), "{table} holds no record keys");
        }
        let again = PLACEMENT.replace(", record_key)", ")").replace(", 7)", ")");
        let duplicate = sqlx::query(&again).execute(&pool).await.unwrap_err();
        assert!(duplicate.to_string().contains("UNIQUE"), "{duplicate}");
    }
}
