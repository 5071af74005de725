//! `zicht demo --once`, the README's main command, run to completion: 17 nodes over mutual TLS
//! on loopback, real SQLite files, the headline queries and their logs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use zicht_model::{CodeList, Region};
use zicht_store::Store;

async fn outcomes(database: &std::path::Path) -> Vec<String> {
    let store = Store::open(database.to_str().unwrap()).await.unwrap();
    let rows = store.release_outcomes().await.unwrap();
    store.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_a_federation_and_its_headline_queries() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let args = [
        "zicht",
        "demo",
        "--once",
        "--dir",
        demo_dir.to_str().unwrap(),
        "--seed",
        "5",
    ];
    zicht_cli::run_from(args).await.unwrap();

    for &region in Region::ALL {
        let database = demo_dir.join(region.code()).join("region.db");
        let store = Store::open(database.to_str().unwrap()).await.unwrap();
        let summary = store.summary().await.unwrap();
        store.close().await;
        // What the importer stored is what the generator wrote, row for row.
        let counts = zicht_synth::generate_to_dir(
            &zicht_synth::Config::new(region, 5),
            &dir.path().join("check").join(region.code()),
        )
        .unwrap();
        assert_eq!(summary.placements as u64, counts.placements, "{region}");
        assert_eq!(summary.capacity_rows as u64, counts.capacity, "{region}");
        assert_eq!(
            summary.transition18_checks as u64, counts.transition18,
            "{region}"
        );
        // Twente holds the consents of question 12 too.
        let added = if region == Region::Twente {
            zicht_cli::demo::CONSENTING_YOUTHS as u64
        } else {
            0
        };
        assert_eq!(summary.consents as u64, counts.consents + added, "{region}");
    }

    // Question 12: Twente released the team's records twice, one fewer after the revocation,
    // and logged one processing record per youth each time.
    let twente = outcomes(&demo_dir.join("twente").join("region.db")).await;
    let released: Vec<u64> = twente
        .iter()
        .filter_map(|o| o.strip_prefix("released "))
        .filter_map(|o| o.split_once(" records of ")?.0.parse().ok())
        .collect();
    assert_eq!(released.len(), 2, "{twente:?}");
    assert_eq!(released[1] + 1, released[0], "{twente:?}");

    // Every region answered the capacity question over mutual TLS.
    let drenthe = outcomes(&demo_dir.join("drenthe").join("region.db")).await;
    assert!(
        drenthe
            .iter()
            .any(|o| o == "released merged: 14 of 14 answered"),
        "{drenthe:?}"
    );
    // jenn forwarded to its members and released merged answers; the last one without
    // friesland, which the demo stopped.
    let jenn = outcomes(&demo_dir.join("jenn").join("log.db")).await;
    assert!(
        jenn.iter()
            .any(|o| o == "forwarded to drenthe,friesland,groningen"),
        "{jenn:?}"
    );
    // Question 10 ran without friesland, which the demo stopped; then an auditor followed that
    // query: its reads (entries and the chain check) are in the log after it, like every other
    // access.
    let last_merge = jenn
        .iter()
        .rposition(|o| o.starts_with("released merged"))
        .unwrap();
    assert_eq!(
        jenn[last_merge], "released merged: 2 of 3 answered",
        "{jenn:?}"
    );
    assert_eq!(
        jenn[last_merge + 1..],
        ["released audit entries", "released audit entries"],
        "{jenn:?}"
    );
    // The JENN coordinator's herkomst from the placing side (question 6) went to every region
    // (a region with fewer than 5 published youths placed there refuses by rule);
    // BEN-NH's coordinator asked ben-nh (questions 7 and 8).
    let placing = jenn
        .iter()
        .position(|o| o.starts_with("forwarded to") && o.split(',').count() == 14)
        .unwrap_or_else(|| panic!("{jenn:?}"));
    assert!(
        jenn[placing + 1].starts_with("released merged: 1")
            && jenn[placing + 1].ends_with(" of 14 answered"),
        "{jenn:?}"
    );
    let ben_nh = outcomes(&demo_dir.join("ben-nh").join("log.db")).await;
    assert!(
        ben_nh
            .iter()
            .filter(|o| o.starts_with("released merged: 9 of 9 answered"))
            .count()
            >= 3,
        "{ben_nh:?}"
    );
    // Every member refused the period one day short of whole months, and logged why.
    for region in ["drenthe", "friesland", "groningen"] {
        let log = outcomes(&demo_dir.join(region).join("region.db")).await;
        assert!(
            log.iter().any(|o| o == "refused: period-granularity"),
            "{region}: {log:?}"
        );
    }
}
