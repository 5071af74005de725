//! Record keys beside the rows they key (the cell key method): the node fills the keys of rows
//! that have none, under its secret, and clears them all when its secret changes. The store
//! never sees the secret: the node passes the key function and the secret's fingerprint.

use crate::{on_pool, query_error, Store, StoreError};

/// Youths staged per statement (two bind parameters each).
const YOUTHS_PER_STATEMENT: usize = 1000;

impl Store {
    /// Makes sure every placement and transition18 row has its youth's record key under the
    /// secret whose fingerprint is `fingerprint`: keys made under another secret are cleared
    /// first, then every row without a key gets `record_key(youth_id)`. One transaction;
    /// returns how many youths were keyed.
    pub async fn fill_record_keys(
        &self,
        fingerprint: &str,
        record_key: &(dyn Fn(&str) -> u32 + Sync),
    ) -> Result<u64, StoreError> {
        const FINGERPRINT: &str = "SELECT fingerprint FROM record_key_secret";
        const CLEAR: [&str; 4] = [
            "UPDATE placements SET record_key = NULL",
            "UPDATE transition18 SET record_key = NULL",
            "DELETE FROM record_key_secret",
            "INSERT INTO record_key_secret (fingerprint) VALUES ($1)",
        ];
        const MISSING: &str = "SELECT youth_id FROM placements WHERE record_key IS NULL \
             UNION SELECT youth_id FROM transition18 WHERE record_key IS NULL";
        const DROP_STAGING: &str = "DROP TABLE IF EXISTS zicht_record_keys";
        const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE zicht_record_keys \
             (youth_id TEXT PRIMARY KEY, record_key BIGINT NOT NULL)";
        const UPDATE_PLACEMENTS: &str = "UPDATE placements SET record_key = k.record_key \
             FROM zicht_record_keys k WHERE placements.youth_id = k.youth_id \
             AND placements.record_key IS NULL";
        const UPDATE_TRANSITION18: &str = "UPDATE transition18 SET record_key = k.record_key \
             FROM zicht_record_keys k WHERE transition18.youth_id = k.youth_id \
             AND transition18.record_key IS NULL";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(query_error("begin keying"))?;
            let stored: Option<String> = sqlx::query_scalar(FINGERPRINT)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_error("read record key fingerprint"))?;
            if stored.as_deref() != Some(fingerprint) {
                for sql in CLEAR {
                    sqlx::query(sql)
                        .bind(fingerprint)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("clear record keys"))?;
                }
            }
            let youths: Vec<String> = sqlx::query_scalar(MISSING)
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("find rows without a record key"))?;
            if !youths.is_empty() {
                // The keys go into a temporary table first, then one joined UPDATE per table:
                // a batch of row-by-row updates would scan the table once per batch.
                for sql in [DROP_STAGING, CREATE_STAGING] {
                    sqlx::query(sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("stage record keys"))?;
                }
                for chunk in youths.chunks(YOUTHS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO zicht_record_keys (youth_id, record_key) ",
                    );
                    insert.push_values(chunk, |mut row, youth| {
                        row.push_bind(youth.clone())
                            .push_bind(i64::from(record_key(youth)));
                    });
                    insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("stage record keys"))?;
                }
                for sql in [UPDATE_PLACEMENTS, UPDATE_TRANSITION18, DROP_STAGING] {
                    sqlx::query(sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("write record keys"))?;
                }
            }
            if stored.as_deref() != Some(fingerprint) || !youths.is_empty() {
                sqlx::query(crate::BUMP_GENERATION)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_error("raise the data generation"))?;
            }
            tx.commit().await.map_err(query_error("commit record keys"))?;
            Ok(youths.len() as u64)
        })
    }
}
