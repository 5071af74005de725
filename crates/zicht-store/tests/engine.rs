//! The in-memory engine gives the same counts as the templates' plain SQL (the definitions
//! as they ran in the database before the engine), on both backends, for generated queries
//! over generated regions plus rows made to hit the definitions' edges; and it never answers
//! from data older than the database's.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use zicht_model::{Dimension, Filter, NaiveDate, Region, Template};
use zicht_store::import::{import_file, ImportOptions, RegionCheck};
use zicht_store::{CountQuery, CountRow, CountScope, RecordKeys, Store};
use zicht_testkit::both_backends;

/// Rows at the definitions' edges: ties on start date and care type (two providers), a
/// transfer exactly at and one day past the transfer window, open and same-day stays.
const EDGES: &str = "\
youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile
T1,2008-02-29,drenthe,Assen,Zeta Zorg,Assen,drenthe,pleegzorg,,ots,2023-03-01,2024-02-29,thuis,1
T1,2008-02-29,drenthe,Assen,Alpha Zorg,Emmen,groningen,pleegzorg,,ots,2023-03-01,2024-02-29,zelfstandig_wonen,2
T2,2010-01-01,onbekend,,P1,Assen,drenthe,gezinshuis,,vrijwillig,2022-01-01,2024-01-31,thuis,
T2,2010-01-01,onbekend,,P2,Assen,friesland,jeugdhulp_plus,,machtiging_gesloten,2024-03-01,,,
T3,2006-06-15,friesland,Leeuwarden,P1,Assen,drenthe,pleegzorg,,ots,2021-01-01,2024-05-31,thuis,3
T3,2006-06-15,friesland,Leeuwarden,P3,Assen,drenthe,gezinshuis,,ots,2024-07-01,2024-07-01,thuis,4
T4,2007-12-31,groningen,Groningen,P1,Assen,buiten_federatie,crisisopvang,,vrijwillig,2024-12-31,2024-12-31,thuis,
";

const EDGE_CHECKS: &str = "\
youth_id,check_date,toekomstplan,lokaal_team,clientondersteuner,after18_funding,big5_support,big5_wonen,big5_werk_school,big5_inkomen_schulden,big5_zorg_ondersteuning,uit_beeld
T1,2024-06-30,ja,ja,nee,wmo,op_orde,wankel,niet_op_orde,onbekend,op_orde,nee
T1,2024-12-31,nee,ja,nee,geen,wankel,wankel,wankel,wankel,wankel,nee
T3,2024-01-01,ja,nee,nee,onbekend,op_orde,op_orde,op_orde,op_orde,op_orde,ja
";

async fn import_text(store: &Store, name: &str, text: &str, replace: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    // The engine is tested on rows of several regions in one store.
    let options = ImportOptions {
        replace,
        region: RegionCheck::Off,
        ..Default::default()
    };
    import_file(store, &path, None, options, &mut ())
        .await
        .unwrap();
}

async fn import_region(store: &Store, region: Region, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    zicht_synth::generate_to_dir(&zicht_synth::Config::new(region, seed), dir.path()).unwrap();
    for name in [
        "placements.csv",
        "capacity.csv",
        "transition18.csv",
        "measures.csv",
    ] {
        import_file(
            store,
            &dir.path().join(name),
            None,
            ImportOptions {
                region: RegionCheck::Off,
                ..Default::default()
            },
            &mut (),
        )
        .await
        .unwrap();
    }
}

/// A generated query: template, scope and its dimensions' uses.
#[derive(Debug, Clone)]
struct Case {
    template: Template,
    scope: CountScope,
    group_by: Vec<Dimension>,
    filters: Vec<Filter>,
}

fn date(days_after_2019: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2019, 1, 1).unwrap() + chrono::Duration::days(days_after_2019)
}

fn case() -> impl Strategy<Value = Case> {
    let templates = prop_oneof![
        Just(Template::YouthInCare),
        Just(Template::Flows),
        Just(Template::LengthOfStay),
        Just(Template::Transition18),
        Just(Template::Measures),
    ];
    (templates, 0i64..2600, 0i64..800, any::<u64>()).prop_map(|(template, start, length, seed)| {
        let mut rng = seed;
        let mut next = |n: u64| {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 33) % n.max(1)
        };
        let scope = if template == Template::Transition18 {
            CountScope::Peildatum(date(start))
        } else {
            CountScope::Period {
                from: date(start),
                to: date(start + length),
            }
        };
        let dimensions = template.dimensions();
        let mut group_by = Vec::new();
        let mut filters = Vec::new();
        for &dimension in dimensions {
            match next(6) {
                0 | 1 => group_by.push(dimension),
                2 => {
                    // Providers and facilities are open: a few the synthetic data names.
                    let domain = dimension.domain().unwrap_or(vec![
                        "JeugdhulpPlus Noord",
                        "JeugdhulpPlus Oost",
                        "JeugdhulpPlus Noord Groningen",
                        "JeugdhulpPlus Oost Hengelo",
                    ]);
                    let mut values: Vec<String> = domain
                        .iter()
                        .filter(|_| next(3) == 0)
                        .map(|v| v.to_string())
                        .collect();
                    if next(8) == 0 {
                        values.push("no-such-value".to_owned());
                    }
                    filters.push(Filter {
                        dimension,
                        values,
                        exclude: next(3) == 0,
                    });
                }
                _ => {}
            }
        }
        // BIG5 statuses need a domain: group by it when they are used.
        let uses_status = group_by.contains(&Dimension::Big5Status)
            || filters.iter().any(|f| f.dimension == Dimension::Big5Status);
        if uses_status && !group_by.contains(&Dimension::Big5Domain) {
            filters.retain(|f| f.dimension != Dimension::Big5Domain);
            group_by.push(Dimension::Big5Domain);
        }
        Case {
            template,
            scope,
            group_by,
            filters,
        }
    })
}

fn sorted(mut rows: Vec<CountRow>) -> Vec<CountRow> {
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows
}

/// A record-key function that differs between pseudonyms.
fn keys() -> RecordKeys {
    RecordKeys::new("test", |youth: &str| {
        youth.bytes().fold(2_166_136_261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16_777_619)
        })
    })
}

/// Both paths' rows for one query, sorted by key (PostgreSQL's SQL orders by its collation).
async fn both(store: &Store, case: &Case) -> (Vec<CountRow>, Vec<CountRow>) {
    let query = CountQuery {
        template: case.template,
        scope: case.scope,
        filters: &case.filters,
        group_by: &case.group_by,
    };
    let keys = keys();
    let engine = store.person_counts(&query, Some(&keys)).await.unwrap();
    let sql = store.person_counts_sql(&query, Some(&keys)).await.unwrap();
    match (engine, sql) {
        (Ok(engine), Ok(sql)) => (sorted(engine), sorted(sql)),
        (engine, sql) => {
            assert_eq!(engine.err(), sql.err(), "{case:?}");
            (Vec::new(), Vec::new())
        }
    }
}

both_backends!(the_engine_counts_as_the_sql_does, |db| async move {
    import_region(&db.store, Region::Drenthe, 3).await;
    import_region(&db.store, Region::Twente, 4).await;
    import_text(&db.store, "placements-edges.csv", EDGES, false).await;
    import_text(&db.store, "transition18-edges.csv", EDGE_CHECKS, false).await;
    import_region(&db.store, Region::Drenthe, 5).await;

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = case();
    let mut nonempty = 0;
    let mut counted = std::collections::HashSet::new();
    // The first store builds the snapshot from the rows and stores it; a second one (a fresh
    // process) reads the stored one. Both must count as the SQL does.
    let fresh = Store::open(&db.url).await.unwrap();
    for i in 0..120 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let store = if i % 2 == 0 { &db.store } else { &fresh };
        let (engine, sql) = both(store, &case).await;
        assert_eq!(engine, sql, "{case:?}");
        nonempty += usize::from(!engine.is_empty());
        if !engine.is_empty() {
            counted.insert(case.template);
        }
    }
    assert_eq!(
        counted.len(),
        5,
        "every template counted someone: {counted:?}"
    );
    assert!(
        nonempty >= 60,
        "only {nonempty} of 120 queries counted anyone"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM count_snapshot").await,
        1,
        "the snapshot is stored"
    );
});

both_backends!(
    a_count_after_a_reimport_sees_the_new_data,
    |db| async move {
        import_text(&db.store, "placements.csv", EDGES, false).await;
        let group_by = [Dimension::PlacementRegion];
        let query = CountQuery {
            template: Template::YouthInCare,
            scope: CountScope::Period {
                from: date(365 * 5),
                to: date(365 * 6),
            },
            filters: &[],
            group_by: &group_by,
        };
        let keys = keys();
        let before = db
            .store
            .person_counts(&query, Some(&keys))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            before,
            db.store
                .person_counts_sql(&query, Some(&keys))
                .await
                .unwrap()
                .unwrap()
        );

        // T2 moves to groningen; T4 leaves the file, replaced (a full export).
        let changed: String = EDGES
            .lines()
            .filter(|l| !l.starts_with("T4,"))
            .map(|l| {
                if l.starts_with("T2,") && l.contains(",P2,") {
                    format!("{}\n", l.replace(",friesland,", ",groningen,"))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_eq!(db.scalar("SELECT COUNT(*) FROM count_snapshot").await, 1);
        db.execute("CREATE TABLE old_snapshot AS SELECT * FROM count_snapshot")
            .await;
        import_text(&db.store, "placements.csv", &changed, true).await;
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM count_snapshot").await,
            0,
            "an import drops the stored snapshot"
        );
        // Even when a stale one is there (put back as a writer that raised the generation
        // without dropping it would leave it), a fresh process does not use it.
        db.execute("INSERT INTO count_snapshot SELECT * FROM old_snapshot")
            .await;
        let fresh = Store::open(&db.url).await.unwrap();
        let seen = fresh
            .person_counts(&query, Some(&keys))
            .await
            .unwrap()
            .unwrap();
        let after = db
            .store
            .person_counts(&query, Some(&keys))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, after);
        assert_ne!(before, after);
        assert_eq!(
            after,
            db.store
                .person_counts_sql(&query, Some(&keys))
                .await
                .unwrap()
                .unwrap()
        );
        let regions: Vec<&str> = after.iter().map(|r| r.key[0].as_str()).collect();
        assert!(regions.contains(&"groningen") && !regions.contains(&"buiten_federatie"));

        // Another key function (a new secret) gives its own sums without an import; counted
        // without one, the sums are 0 and the counts the same.
        let other = RecordKeys::new("other", |_: &str| 1_000);
        let rekeyed = db
            .store
            .person_counts(&query, Some(&other))
            .await
            .unwrap()
            .unwrap();
        assert!(rekeyed.iter().all(|r| r.record_key_sum == 1_000 * r.youths));
        assert_eq!(
            rekeyed,
            db.store
                .person_counts_sql(&query, Some(&other))
                .await
                .unwrap()
                .unwrap()
        );
        let unkeyed = db.store.person_counts(&query, None).await.unwrap().unwrap();
        assert!(unkeyed.iter().all(|r| r.record_key_sum == 0));
        let youths = |rows: &[zicht_store::CountRow]| -> Vec<i64> {
            rows.iter().map(|r| r.youths).collect()
        };
        assert_eq!(youths(&unkeyed), youths(&after));
        // And the first function again, here and in a fresh process (the snapshot stored
        // last holds the other function's keys).
        assert_eq!(
            db.store
                .person_counts(&query, Some(&keys))
                .await
                .unwrap()
                .unwrap(),
            after
        );
        let fresh = Store::open(&db.url).await.unwrap();
        assert_eq!(
            fresh
                .person_counts(&query, Some(&other))
                .await
                .unwrap()
                .unwrap(),
            rekeyed
        );
        assert_eq!(
            fresh
                .person_counts(&query, Some(&keys))
                .await
                .unwrap()
                .unwrap(),
            after
        );
    }
);
