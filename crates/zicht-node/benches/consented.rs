//! Consented records released per second, over mutual TLS, with the fail-closed log (one
//! processing record per youth, the youth's id encrypted, in the transaction that reads the
//! consents): one request that releases about 10,000 records, and 1,000 requests of 10
//! records (32 in flight). SQLite, and PostgreSQL when `ZICHT_TEST_POSTGRES_URL` is set.
//!
//! `cargo bench -p zicht-node --bench consented`; `ZICHT_BENCH_RECORDS` (default 10,000) and
//! `ZICHT_BENCH_REQUESTS` (default 1,000) change the sizes. Loopback only.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use zicht_model::{NodeName, Region, Timestamp};
use zicht_node::identity::Delegator;
use zicht_node::Limits;
use zicht_proto::v1 as pb;
use zicht_store::Backend;
use zicht_testkit::node::{spawn_node_on, NodeFixture};

const POLICY: &str = r#"
[[grant]]
role = "region:*"
templates = ["consented_records"]
purposes = ["warme-overdracht"]
fields = ["care_type", "start_date"]
quota_per_minute = 100000000
"#;

/// Consents for youths (the first by id, or the last) whose placements add up to `records`,
/// for `recipient`; returns how many placements they have.
async fn consent(f: &NodeFixture, records: u64, recipient: &str, prefix: &str, last: bool) -> u64 {
    let rows = f
        .db
        .strings("SELECT youth_id || ',' || CAST(COUNT(*) AS TEXT) FROM placements GROUP BY youth_id ORDER BY youth_id")
        .await;
    let granted = Timestamp::from_millis(zicht_node::audit::now_ms() - 86_400_000);
    let mut csv = zicht_model::Consent::COLUMNS.join(",");
    let mut total = 0;
    let ordered: Vec<&String> = if last {
        rows.iter().rev().collect()
    } else {
        rows.iter().collect()
    };
    for (i, row) in ordered.into_iter().enumerate() {
        let (youth, count) = row.split_once(',').unwrap();
        let count: u64 = count.parse().unwrap();
        if total + count > records {
            continue;
        }
        total += count;
        csv.push_str(&format!(
            "\n{prefix}{i},{youth},warme-overdracht,{recipient},care_type|start_date,{granted},,,"
        ));
        if total == records {
            break;
        }
    }
    csv.push('\n');
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("consents.csv");
    std::fs::write(&file, csv).unwrap();
    zicht_store::import::import_file(&f.db.store, &file, None, Default::default(), &mut ())
        .await
        .unwrap();
    total
}

/// One request of `asker` (for the person of `delegator`, through ijsselland, if any);
/// returns the records released.
async fn ask(
    client: &mut pb::inway_client::InwayClient<tonic::transport::Channel>,
    delegator: Option<&Delegator>,
) -> usize {
    let mut request = tonic::Request::new(pb::QueryRequest {
        template: "consented_records".to_owned(),
        template_version: 1,
        purpose: "warme-overdracht".to_owned(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(30));
    if let Some(delegator) = delegator {
        let query = request.get_ref().clone();
        let ijsselland = NodeName::Region(Region::Ijsselland);
        delegator
            .attach(ijsselland, &query, request.metadata_mut())
            .unwrap();
    }
    let answer = client.query(request).await.unwrap().into_inner();
    answer.placements.len() + answer.transition18.len()
}

async fn run(backend: Backend, records: u64, requests: usize) {
    let f = spawn_node_on(backend, POLICY, Limits::default(), |_, _| {}).await;
    // A larger region beside drenthe's own data: enough youths for the big release.
    let dir = tempfile::tempdir().unwrap();
    let config = zicht_synth::Config {
        placements: Some(records * 3),
        ..zicht_synth::Config::new(Region::AmsterdamAmstelland, 2)
    };
    zicht_synth::generate_to_dir(&config, dir.path()).unwrap();
    zicht_store::import::import_file(
        &f.db.store,
        &dir.path().join("placements.csv"),
        None,
        Default::default(),
        &mut (),
    )
    .await
    .unwrap();
    let team = "00000098000000000105";
    let big = consent(&f, records, team, "B", false).await;
    let small = consent(&f, 10, "region:twente", "S", true).await;
    assert_eq!(small, 10);

    let (cert, key) = f.pki.person("team-ijsselland");
    let delegator = Delegator::from_files(&cert, &key).unwrap();
    let mut ijsselland = f.inway_as_node(NodeName::Region(Region::Ijsselland)).await;
    ask(&mut ijsselland, Some(&delegator)).await; // warm the connection and caches
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let released = ask(&mut ijsselland, Some(&delegator)).await;
        times.push(started.elapsed());
        assert_eq!(released as u64, big);
    }
    times.sort();
    let median = times[1].as_secs_f64();
    let youths =
        f.db.scalar("SELECT COUNT(*) FROM consents WHERE consent_id LIKE 'B%'")
            .await;
    println!(
        "{backend}: one request of {big} records ({youths} youths): {:.0} ms, {:.0} records/s, {:.0} log entries/s",
        median * 1e3,
        big as f64 / median,
        (youths + 1) as f64 / median
    );

    let twente = f.inway_as_node(NodeName::Region(Region::Twente)).await;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32 {
        let mut client = twente.clone();
        // The requests spread over 32 callers in flight, the remainder on the first ones.
        let share = requests / 32 + usize::from(task < requests % 32);
        tasks.spawn(async move {
            for _ in 0..share {
                assert_eq!(ask(&mut client, None).await, 10);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let asked = requests;
    println!(
        "{backend}: {asked} requests of 10 records, 32 in flight: {:.0} ms, {:.0} records/s, {:.0} requests/s",
        elapsed * 1e3,
        (asked * 10) as f64 / elapsed,
        asked as f64 / elapsed
    );
}

fn main() {
    let records = zicht_testkit::env_number("ZICHT_BENCH_RECORDS", 10_000);
    let requests = zicht_testkit::env_number("ZICHT_BENCH_REQUESTS", 1_000) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(Backend::Sqlite, records, requests).await;
        if std::env::var(zicht_testkit::POSTGRES_URL_VAR).is_ok() {
            run(Backend::Postgres, records, requests).await;
        } else {
            println!(
                "postgres: skipped (set {})",
                zicht_testkit::POSTGRES_URL_VAR
            );
        }
    });
}
