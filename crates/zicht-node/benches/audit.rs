//! Durable audit appends per second: each append is one release (release log row, processing
//! record and access record, hash-chained) written before it returns. Group commit lets
//! concurrent releases share a transaction; the baseline in the same run is one writer at a
//! time (one transaction per release). SQLite, and PostgreSQL when `ZICHT_TEST_POSTGRES_URL`
//! is set.
//!
//! `cargo bench -p zicht-node --bench audit`; `ZICHT_BENCH_APPENDS` (default 50,000) and
//! `ZICHT_BENCH_CONCURRENCY` (default 64).

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use zicht_node::audit::{Logged, Operation, Subject};
use zicht_node::log_entry;
use zicht_proto::v1 as pb;
use zicht_store::Backend;
use zicht_testkit::TestDb;

/// Appends `total` releases with `concurrency` writers; returns appends per second.
async fn appends(db: &TestDb, total: usize, concurrency: usize) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let store = db.store.clone();
        let per_task = total / concurrency;
        tasks.push(tokio::spawn(async move {
            let query = pb::QueryRequest {
                template: "youth_in_care".to_owned(),
                template_version: 1,
                purpose: "bovenregionale-sturing".to_owned(),
                group_by: vec!["stay_group".to_owned()],
                ..Default::default()
            };
            let query = zicht_node::convert::RequestText::of(&query);
            for _ in 0..per_task {
                let operation =
                    Operation::start("zicht.v1.Inway/Query", "urn:zicht:region:drenthe");
                let logged = Logged::new(
                    &operation,
                    "00000099000000000101",
                    "urn:zicht:network:jenn",
                    Subject::Request(&query),
                    "released",
                );
                log_entry(&store, &logged).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (total / concurrency * concurrency) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let total = zicht_testkit::env_number("ZICHT_BENCH_APPENDS", 50_000) as usize;
    let concurrency = zicht_testkit::env_number("ZICHT_BENCH_CONCURRENCY", 64) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut backends = vec![Backend::Sqlite];
        if std::env::var("ZICHT_TEST_POSTGRES_URL").is_ok() {
            backends.push(Backend::Postgres);
        }
        for backend in backends {
            let db = TestDb::new(backend).await;
            let single = appends(&db, (total / 25).max(200), 1).await;
            let grouped = appends(&db, total, concurrency).await;
            let chain = db
                .store
                .audit_chain(zicht_store::AuditLog::Processing)
                .await
                .unwrap();
            let verified = zicht_audit::verify(chain).unwrap();
            println!(
                "{backend:?}: one writer {single:.0} appends/s; {concurrency} writers with group commit {grouped:.0} appends/s ({:.1}x); chain of {} verifies",
                grouped / single,
                verified.entries
            );
        }
    });
}
