//! The audit chains on both backends: every logged request appends one processing record and
//! one access record, hash-chained, in the release's transaction; `zicht audit verify` finds
//! an edited, deleted or reordered entry and names it; a failed audit write writes nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use zicht_node::audit::{Logged, Operation, Subject};
use zicht_node::convert::RequestText;
use zicht_node::log_entry;
use zicht_proto::v1 as pb;
use zicht_testkit::{both_backends, TestDb};

/// Logs `n` requests the way a node does.
async fn fill(db: &TestDb, n: usize) {
    let query = pb::QueryRequest {
        template: "youth_in_care".to_owned(),
        template_version: 1,
        purpose: "bovenregionale-sturing".to_owned(),
        ..Default::default()
    };
    for i in 0..n {
        let operation = Operation::start("zicht.v1.Inway/Query", "urn:zicht:region:drenthe");
        let outcome = if i % 2 == 0 {
            "released"
        } else {
            "refused: population-floor"
        };
        let logged = Logged {
            operation: &operation,
            requester: "00000099000000000002",
            role: "urn:zicht:region:friesland",
            subject: Subject::Request(&RequestText::of(&query)),
            outcome,
            result: None,
            population: None,
            population_published: None,
        };
        log_entry(&db.store, &logged).await.unwrap();
    }
}

/// Logs one released request, as a node does.
async fn release(store: &zicht_store::Store) -> Result<(), zicht_store::StoreError> {
    let query = pb::QueryRequest::default();
    let operation = Operation::start("zicht.v1.Inway/Query", "urn:zicht:region:twente");
    let logged = Logged {
        operation: &operation,
        requester: "a",
        role: "b",
        subject: Subject::Request(&RequestText::of(&query)),
        outcome: "released",
        result: None,
        population: None,
        population_published: None,
    };
    log_entry(store, &logged).await
}

async fn verify(db: &TestDb) -> Result<(), String> {
    zicht_cli::run_from(["zicht", "audit", "verify", "--database", db.url.as_str()])
        .await
        .map_err(|e| e.to_string())
}

both_backends!(intact_chains_verify, |db| async move {
    fill(&db, 5).await;
    assert_eq!(verify(&db).await, Ok(()));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM processing_log").await, 5);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM access_log").await, 5);
    // Linked by operation id, and never a data value or a person's name in the processing log.
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM processing_log p JOIN access_log a ON a.operation_id = p.operation_id"
        )
        .await,
        5
    );
    let bodies = db.strings("SELECT body FROM processing_log").await;
    assert!(
        bodies.iter().all(|b| !b.contains("00000099000000000002")),
        "{bodies:?}"
    );
    assert!(bodies[0]
        .contains("\"processing_activity_id\":\"urn:zicht:purpose:bovenregionale-sturing\""));
});

both_backends!(an_edited_entry_is_named, |db| async move {
    fill(&db, 5).await;
    db.execute(
        "UPDATE processing_log SET body = REPLACE(body, 'refused', 'released') WHERE seq = 4",
    )
    .await;
    assert_eq!(
        verify(&db).await,
        Err(
            "audit chain broken: processing log: entry 4: its hash does not match its contents"
                .to_owned()
        )
    );
});

both_backends!(an_edited_search_column_is_named, |db| async move {
    fill(&db, 5).await;
    for (table, column, log) in [
        ("processing_log", "trace_id", "processing log"),
        ("processing_log", "operation_id", "processing log"),
        ("processing_log", "template", "processing log"),
        ("processing_log", "activity", "processing log"),
        ("access_log", "operation_id", "access log"),
        ("access_log", "peer_id", "access log"),
    ] {
        let before = db
            .strings(&format!("SELECT {column} FROM {table} WHERE seq = 3"))
            .await;
        db.execute(&format!("UPDATE {table} SET {column} = 'x' WHERE seq = 3"))
            .await;
        assert_eq!(
            verify(&db).await,
            Err(format!("audit chain broken: {log}: entry 3: its search columns do not match its contents (the row was altered)")),
            "{table}.{column}"
        );
        db.execute(&format!(
            "UPDATE {table} SET {column} = '{}' WHERE seq = 3",
            before[0]
        ))
        .await;
        assert_eq!(verify(&db).await, Ok(()), "{table}.{column} restored");
    }
});

both_backends!(an_edited_recorded_at_is_named, |db| async move {
    fill(&db, 5).await;
    // Shifted by a day or ten: the column `zicht audit export --since/--until` filters on.
    for (table, log) in [
        ("processing_log", "processing log"),
        ("access_log", "access log"),
    ] {
        for days in [1, 10] {
            let shift = days * 86_400_000;
            db.execute(&format!(
                "UPDATE {table} SET recorded_at = recorded_at + {shift} WHERE seq = 2"
            ))
            .await;
            assert_eq!(
                verify(&db).await,
                Err(format!("audit chain broken: {log}: entry 2: its search columns do not match its contents (the row was altered)")),
                "{table} shifted by {days} days"
            );
            db.execute(&format!(
                "UPDATE {table} SET recorded_at = recorded_at - {shift} WHERE seq = 2"
            ))
            .await;
            assert_eq!(verify(&db).await, Ok(()), "{table} restored");
        }
    }
});

both_backends!(a_deleted_entry_is_named, |db| async move {
    fill(&db, 5).await;
    db.execute("DELETE FROM access_log WHERE seq = 2").await;
    assert_eq!(
        verify(&db).await,
        Err("audit chain broken: access log: entry 3: an entry before it is missing".to_owned())
    );
});

both_backends!(reordered_entries_are_named, |db| async move {
    fill(&db, 5).await;
    db.execute("UPDATE processing_log SET seq = -seq WHERE seq IN (2, 3)")
        .await;
    db.execute("UPDATE processing_log SET seq = 5 + seq WHERE seq < 0")
        .await;
    assert_eq!(
        verify(&db).await,
        Err(
            "audit chain broken: processing log: entry 2: does not follow the entry before it"
                .to_owned()
        )
    );
});

both_backends!(a_failed_audit_write_writes_nothing, |db| async move {
    fill(&db, 2).await;
    db.execute("DROP TABLE access_log").await;
    assert!(release(&db.store).await.is_err());
    assert_eq!(db.scalar("SELECT COUNT(*) FROM release_log").await, 2);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM processing_log").await, 2);
});

both_backends!(concurrent_releases_chain_in_one_order, |db| async move {
    // Many releases at once are group-committed; each is durable and chained exactly once.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                release(&store).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(verify(&db).await, Ok(()));
    for table in ["release_log", "processing_log", "access_log"] {
        assert_eq!(
            db.scalar(&format!("SELECT COUNT(*) FROM {table}")).await,
            200,
            "{table}"
        );
    }
});

both_backends!(cancelled_callers_do_not_fail_the_others, |db| async move {
    // Callers whose requests are cancelled (a deadline) while others' releases wait in the
    // same group commit: the others are still written, and the chain stays whole.
    let mut tasks = Vec::new();
    for _ in 0..60 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move { release(&store).await }));
    }
    for (i, task) in tasks.iter().enumerate() {
        if i % 3 == 0 {
            task.abort();
        }
    }
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(written) => assert!(written.is_ok(), "{i}: {written:?}"),
            Err(error) => assert!(error.is_cancelled() && i % 3 == 0, "{i}"),
        }
    }
    assert_eq!(verify(&db).await, Ok(()));
    let logged = db.scalar("SELECT COUNT(*) FROM processing_log").await;
    assert!((40..=60).contains(&logged), "{logged}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM access_log").await, logged);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM release_log").await, logged);
});

/// Logs one request of `requester` for `template` under `purpose`.
async fn release_of(store: &zicht_store::Store, requester: &str, template: &str, purpose: &str) {
    let query = pb::QueryRequest {
        template: template.to_owned(),
        template_version: 1,
        purpose: purpose.to_owned(),
        ..Default::default()
    };
    let operation = Operation::start("zicht.v1.Inway/Query", "urn:zicht:region:twente");
    let logged = Logged {
        operation: &operation,
        requester,
        role: "urn:zicht:region:ijsselland",
        subject: Subject::Request(&RequestText::of(&query)),
        outcome: "released",
        result: None,
        population: None,
        population_published: None,
    };
    log_entry(store, &logged).await.unwrap();
}

both_backends!(
    auditors_search_by_caller_purpose_template_and_page,
    |db| async move {
        use zicht_store::{AuditFilter, AuditLog, StoreError};
        for i in 0..12 {
            let requester = if i % 3 == 0 { "peer-a" } else { "peer-b" };
            let template = if i % 2 == 0 {
                "capacity"
            } else {
                "youth_in_care"
            };
            let purpose = if i < 6 {
                "capaciteitsmonitoring"
            } else {
                "bovenregionale-sturing"
            };
            release_of(&db.store, requester, template, purpose).await;
        }
        let find = |log, filter: AuditFilter| {
            let store = db.store.clone();
            async move {
                let filter = AuditFilter {
                    limit: 1000,
                    ..filter
                };
                store.audit_entries(log, &filter).await
            }
        };
        let seqs =
            |entries: Vec<zicht_audit::Entry>| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
        // The caller is in the access log; the processing log finds that caller's operations.
        let peer_a = AuditFilter {
            peer_id: "peer-a".to_owned(),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(find(AuditLog::Access, peer_a.clone()).await.unwrap()),
            [1, 4, 7, 10]
        );
        assert_eq!(
            seqs(find(AuditLog::Processing, peer_a).await.unwrap()),
            [1, 4, 7, 10]
        );
        // Template and purpose (as its processing activity URI) in the processing log; the access
        // log finds the same operations.
        let capacity_monitoring = AuditFilter {
            template: "capacity".to_owned(),
            activity: "urn:zicht:purpose:capaciteitsmonitoring".to_owned(),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(
                find(AuditLog::Processing, capacity_monitoring.clone())
                    .await
                    .unwrap()
            ),
            [1, 3, 5]
        );
        assert_eq!(
            seqs(find(AuditLog::Access, capacity_monitoring).await.unwrap()),
            [1, 3, 5]
        );
        // Paging: after a position, at most a limit.
        let page = AuditFilter {
            after_seq: 4,
            limit: 3,
            ..AuditFilter::default()
        };
        let page = db
            .store
            .audit_entries(AuditLog::Processing, &page)
            .await
            .unwrap();
        assert_eq!(seqs(page), [5, 6, 7]);
        // A search column edited to hide or plant an entry disagrees with the hashed body: the
        // search names the entry instead of answering.
        db.execute("UPDATE access_log SET peer_id = 'peer-c' WHERE seq = 2")
            .await;
        let planted = AuditFilter {
            peer_id: "peer-c".to_owned(),
            ..AuditFilter::default()
        };
        match find(AuditLog::Access, planted).await {
            Err(StoreError::Tampered { log, seq }) => assert_eq!((log, seq), ("access log", 2)),
            other => panic!("{other:?}"),
        }
        // And verification re-derives every search column from the hashed body.
        assert_eq!(
            verify(&db).await,
            Err("audit chain broken: access log: entry 2: its search columns do not match its contents (the row was altered)".to_owned())
        );
    }
);

both_backends!(two_processes_never_fork_a_chain, |db| async move {
    // Two stores on one database stand for two processes (say a node and `zicht query`):
    // each has its own chain lock, so their appends race. An append that lost the race fails
    // (nothing released) instead of forking the chain.
    let other = zicht_store::Store::open(&db.url).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..80 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move { release(&store).await.is_ok() }));
    }
    let mut written = 0;
    for task in tasks {
        written += i64::from(task.await.unwrap());
    }
    assert!(written > 0);
    assert_eq!(verify(&db).await, Ok(()));
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM processing_log").await,
        written
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM access_log").await, written);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM release_log").await, written);
});
