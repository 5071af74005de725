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
}
