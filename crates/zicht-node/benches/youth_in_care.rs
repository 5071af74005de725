//! `youth_in_care` grouped by origin region x stay group over generated placements, through
//! zicht's whole local query path (SQL built from the template, the per-day population limit,
//! the durable release log write) twice in the same run: with the cell key method (record-key
//! sums in SQL, every cell and the total perturbed) and exact (the owner's path, no
//! perturbation), next to the same query written by hand and run directly on the same
//! database. The perturbed/exact ratio is the cost of perturbation (target <= 1.2). On SQLite
//! and, when `ZICHT_TEST_POSTGRES_URL` is set, PostgreSQL.
//!
//! `cargo bench -p zicht-node --bench youth_in_care`; `ZICHT_BENCH_PLACEMENTS` sets the size
//! (default 1,000,000), `ZICHT_BENCH_ROUNDS` the measured rounds (default 7).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sqlx::Connection;
use zicht_model::Region;
use zicht_node::{execute, log_outcome, Call, Disclosure};
use zicht_proto::v1 as pb;
use zicht_store::import::import_file;
use zicht_store::Backend;
use zicht_testkit::TestDb;

/// The same semantics by hand: each youth in care in 2024 once, with their most recent
/// placement, counted per origin region and stay group.
const HAND_WRITTEN: &str =
    "SELECT origin_region, CASE care_type WHEN 'pleegzorg' THEN 'pleegzorg' \
    WHEN 'jeugdhulp_plus' THEN 'jeugdhulp_plus' WHEN 'ambulant_intensief' THEN 'ambulant' \
    ELSE 'andere_verblijfzorg' END AS stay_group, COUNT(*) AS youths FROM (\
    SELECT origin_region, care_type, ROW_NUMBER() OVER (PARTITION BY youth_id \
    ORDER BY start_date DESC, care_type DESC, provider DESC) AS rn FROM placements \
    WHERE start_date <= '2024-12-31' AND (end_date IS NULL OR end_date >= '2024-01-01')) u \
    WHERE rn = 1 GROUP BY 1, 2";

fn request() -> pb::QueryRequest {
    zicht_testkit::queries::Ask::youth_in_care(2024)
        .by_all(&["origin_region", "stay_group"])
        .wire()
}

/// The sum of the hand-written query's counts (to check both agree).
async fn hand_written(url: &str, backend: Backend) -> (Duration, i64) {
    macro_rules! run {
        ($connection:ty) => {{
            let mut connection = <$connection>::connect(url).await.unwrap();
            if backend == Backend::Sqlite {
                // The store's page cache, for a like-for-like baseline.
                sqlx::query("PRAGMA cache_size = -65536")
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            let started = Instant::now();
            let rows: Vec<(String, String, i64)> = sqlx::query_as(HAND_WRITTEN)
                .fetch_all(&mut connection)
                .await
                .unwrap();
            (started.elapsed(), rows.iter().map(|r| r.2).sum())
        }};
    }
    match backend {
        Backend::Sqlite => run!(sqlx::SqliteConnection),
        Backend::Postgres => run!(sqlx::PgConnection),
    }
}

async fn through_zicht(db: &TestDb, disclosure: &Disclosure, exact: bool) -> (Duration, u64) {
    let query = request();
    let domain = zicht_node::convert::query(&query).unwrap();
    let call = Call {
        store: &db.store,
        disclosure,
        query: &domain,
        exact,
        requester: "bench",
        today: zicht_node::today(),
    };
    let started = Instant::now();
    let released = execute(&call).await.unwrap();
    let operation = zicht_node::audit::Operation::start("bench", "bench");
    log_outcome(
        &db.store,
        &operation,
        "bench",
        "bench",
        &zicht_node::convert::RequestText::of(&query),
        Ok(&released),
    )
    .await
    .unwrap();
    let elapsed = started.elapsed();
    (elapsed, released.table.total.value)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn measure(backend: Backend, dir: &std::path::Path, rounds: usize) {
    let db = TestDb::new(backend).await;
    import_file(
        &db.store,
        &dir.join("placements.csv"),
        None,
        Default::default(),
        &mut (),
    )
    .await
    .unwrap();
    let disclosure = Disclosure::default()
        .for_region(Some(Region::AmsterdamAmstelland))
        .with_secret(zicht_privacy::RecordKeySecret::from_bytes([7; 32]));
    let keying = Instant::now();
    let keyed = disclosure.key_rows(&db.store).await.unwrap();
    let keying = keying.elapsed();
    // Warm every path once (page cache, statement cache).
    let (_, expected) = hand_written(&db.url, backend).await;
    let (_, total) = through_zicht(&db, &disclosure, true).await;
    assert_eq!(total as i64, expected, "both count the same youths");
    let (_, published) = through_zicht(&db, &disclosure, false).await;
    assert!(published.abs_diff(total) <= 3, "within D of the truth");
    let (mut hand, mut exact, mut perturbed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        hand.push(hand_written(&db.url, backend).await.0);
        exact.push(through_zicht(&db, &disclosure, true).await.0);
        perturbed.push(through_zicht(&db, &disclosure, false).await.0);
    }
    let (hand, exact, perturbed) = (median(hand), median(exact), median(perturbed));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{backend:<8} hand-written SQL {:>8.1} ms   zicht exact {:>8.1} ms   zicht perturbed {:>8.1} ms   \
         perturbed/exact {:.2}x   exact/hand {:.2}x   ({expected} youths; keying {keyed} youths once: {:.1} s)",
        ms(hand),
        ms(exact),
        ms(perturbed),
        perturbed.as_secs_f64() / exact.as_secs_f64(),
        exact.as_secs_f64() / hand.as_secs_f64(),
        keying.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = zicht_testkit::env_number("ZICHT_BENCH_ROUNDS", 7) as usize;
    let dir = tempfile::tempdir().unwrap();
    let size = zicht_testkit::bench_region(dir.path());
    println!(
        "youth_in_care 2024 by origin_region x stay_group: {size} placements, median of {rounds} rounds\n"
    );
    measure(Backend::Sqlite, dir.path(), rounds).await;
    if std::env::var(zicht_testkit::POSTGRES_URL_VAR).is_ok() {
        measure(Backend::Postgres, dir.path(), rounds).await;
    } else {
        println!(
            "postgres: skipped (set {})",
            zicht_testkit::POSTGRES_URL_VAR
        );
    }
}
