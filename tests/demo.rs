//! `zicht demo`, the README's main command, run to completion against real SQLite files.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use zicht_model::{CodeList, Region};
use zicht_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_builds_every_region_and_reruns_identically() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let args = [
        "zicht",
        "demo",
        "--dir",
        demo_dir.to_str().unwrap(),
        "--seed",
        "5",
    ];
    zicht_cli::run_from(args).await.unwrap();

    let mut first = Vec::new();
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
        assert_eq!(summary.consents as u64, counts.consents, "{region}");
        first.push(summary);
    }

    // A second run replaces, never adds.
    zicht_cli::run_from(args).await.unwrap();
    for (&region, before) in Region::ALL.iter().zip(&first) {
        let database = demo_dir.join(region.code()).join("region.db");
        let store = Store::open(database.to_str().unwrap()).await.unwrap();
        assert_eq!(&store.summary().await.unwrap(), before, "{region}");
        store.close().await;
    }
}
