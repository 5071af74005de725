//! Disclosure control end to end on the node's query path, on both backends: the differencing
//! guard refuses pairs of queries that differ by one youth (by filter, by period edge, by
//! group-by) and lets legitimate repeats through; refusals name the rule, never a cell.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use zicht_model::{Dimension, Region, Template};
use zicht_node::{execute, log_outcome, Call, Disclosure, ExecuteError, Released};
use zicht_privacy::Refusal;
use zicht_proto::v1 as pb;
use zicht_store::import::{import_file, ImportOptions};
use zicht_store::Store;
use zicht_testkit::both_backends;

/// 67 youths in care in 2021, all in drenthe pleegzorg: 25 ots, 11 voogdij, 1 vrijwillig and
/// 30 strafrechtelijk, one of whom left care on 1 January 2021.
async fn fixture(store: &Store) {
    let mut csv = String::from("youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n");
    let mut youth = 0;
    for (legal_basis, count) in [
        ("ots", 25),
        ("voogdij", 11),
        ("vrijwillig", 1),
        ("strafrechtelijk", 30),
    ] {
        for i in 0..count {
            youth += 1;
            let end = if legal_basis == "strafrechtelijk" && i == 0 {
                "2021-01-01,thuis,"
            } else {
                ",,"
            };
            csv.push_str(&format!(
                "Y{youth},2008-01-01,drenthe,Assen,P,Assen,drenthe,pleegzorg,,{legal_basis},2020-06-01,{end}\n"
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("placements.csv");
    std::fs::write(&path, csv).unwrap();
    import_file(store, &path, None, ImportOptions::default(), &mut ())
        .await
        .unwrap();
}

fn date(year: i32, month: i32, day: i32) -> pb::Date {
    pb::Date { year, month, day }
}

fn request(from: pb::Date, filters: &[&str], group_by: &[Dimension]) -> pb::QueryRequest {
    pb::QueryRequest {
        template: "youth_in_care".to_owned(),
        template_version: 1,
        purpose: "bovenregionale-sturing".to_owned(),
        scope: Some(pb::query_request::Scope::Period(pb::Period {
            from: Some(from),
            to: Some(date(2021, 12, 31)),
        })),
        filters: if filters.is_empty() {
            Vec::new()
        } else {
            vec![pb::Filter {
                dimension: "legal_basis".to_owned(),
                values: filters.iter().map(|v| v.to_string()).collect(),
            }]
        },
        group_by: group_by.iter().map(|d| d.to_string()).collect(),
        consent_recipient: String::new(),
    }
}

/// Runs the query for `requester` and records what was released, as the node does.
async fn ask(
    store: &Store,
    requester: &str,
    query: pb::QueryRequest,
) -> Result<Released, ExecuteError> {
    let group_by: Vec<Dimension> = query
        .group_by
        .iter()
        .map(|d| zicht_model::CodeList::parse(d).unwrap())
        .collect();
    let disclosure = Disclosure {
        region: Some(Region::Drenthe),
        ..Disclosure::default()
    };
    let call = Call {
        store,
        disclosure: &disclosure,
        template: Template::YouthInCare,
        query: &query,
        group_by: &group_by,
        requester,
        today: zicht_node::today(),
    };
    let outcome = execute(&call).await;
    log_outcome(
        store,
        &zicht_node::audit::Operation::start("test", "test"),
        requester,
        "test",
        &query,
        outcome.as_ref().map_err(|e| e.rule()),
    )
    .await
    .unwrap();
    outcome
}

fn refused_by(outcome: Result<Released, ExecuteError>) -> Refusal {
    match outcome {
        Err(ExecuteError::Refused(refusal)) => refusal,
        Err(other) => panic!("{other}"),
        Ok(released) => panic!("released {:?}", released.result),
    }
}

fn total(released: &Released) -> u64 {
    match released
        .result
        .total
        .as_ref()
        .and_then(|c| c.value.as_ref())
    {
        Some(pb::cell_value::Value::Exact(n)) => *n,
        other => panic!("{other:?}"),
    }
}

const DIFFERENCING: Refusal = Refusal::Differencing { threshold: 10 };

both_backends!(
    differing_by_one_youth_through_a_filter_is_refused,
    |db| async move {
        fixture(&db.store).await;
        let start = date(2021, 1, 1);
        let both = ask(
            &db.store,
            "a",
            request(start, &["voogdij", "vrijwillig"], &[]),
        )
        .await;
        assert_eq!(total(&both.unwrap()), 12);
        let one = ask(&db.store, "a", request(start, &["voogdij"], &[])).await;
        assert_eq!(refused_by(one), DIFFERENCING);
        // Another requester never saw the first result.
        let other = ask(&db.store, "b", request(start, &["voogdij"], &[])).await;
        assert_eq!(total(&other.unwrap()), 11);
    }
);

both_backends!(
    differing_by_one_youth_at_a_period_edge_is_refused,
    |db| async move {
        fixture(&db.store).await;
        let year = ask(&db.store, "a", request(date(2021, 1, 1), &[], &[])).await;
        assert_eq!(total(&year.unwrap()), 67);
        let later = ask(&db.store, "a", request(date(2021, 1, 2), &[], &[])).await;
        assert_eq!(refused_by(later), DIFFERENCING);
        let error = ask(&db.store, "a", request(date(2021, 1, 2), &[], &[]))
            .await
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
        error,
        "differencing: the result differs from an earlier result released to you by fewer than 10 youths"
    );
    }
);

both_backends!(
    differing_by_one_youth_through_a_grouping_is_refused,
    |db| async move {
        fixture(&db.store).await;
        let start = date(2021, 1, 1);
        // Grouped by legal basis, the lone vrijwillig youth is protected by hiding ots (25, the
        // cheapest cell that can shift by 5); voogdij (11) could only shift by 1 and is released.
        let grouped = ask(
            &db.store,
            "b",
            request(start, &[], &[Dimension::LegalBasis]),
        )
        .await;
        let cells: Vec<String> = grouped
            .unwrap()
            .result
            .rows
            .iter()
            .map(|r| format!("{}={:?}", r.key[0], r.count.as_ref().unwrap().value))
            .collect();
        assert!(
            cells.contains(&"voogdij=Some(Exact(11))".to_owned()),
            "{cells:?}"
        );
        assert!(cells.contains(&"ots=Some(Suppressed(Suppressed))".to_owned()));
        // Having seen voogdij + vrijwillig = 12, the grouped table would give voogdij = 11.
        let both = ask(
            &db.store,
            "a",
            request(start, &["voogdij", "vrijwillig"], &[]),
        )
        .await;
        assert!(both.is_ok());
        let grouped = ask(
            &db.store,
            "a",
            request(start, &[], &[Dimension::LegalBasis]),
        )
        .await;
        assert_eq!(refused_by(grouped), DIFFERENCING);
    }
);

both_backends!(
    legitimate_repeats_and_other_periods_are_answered,
    |db| async move {
        fixture(&db.store).await;
        let start = date(2021, 1, 1);
        let mut rows = Vec::new();
        for _ in 0..3 {
            let again = ask(
                &db.store,
                "a",
                request(start, &[], &[Dimension::LegalBasis]),
            )
            .await;
            assert!(again.is_ok(), "the same query again reveals nothing new");
            rows.push(
                db.scalar("SELECT COUNT(*) FROM privacy_ledger WHERE requester = 'a'")
                    .await,
            );
        }
        assert!(rows[0] > 0);
        assert_eq!(
            rows[0], rows[2],
            "a repeat refreshes its ledger rows, adds none"
        );
        let total_again = ask(&db.store, "a", request(start, &[], &[])).await;
        assert_eq!(total(&total_again.unwrap()), 67);
        // A filter whose complement within the region is 1 to 9 youths is refused on its own.
        let almost_all = ask(
            &db.store,
            "c",
            request(start, &["ots", "voogdij", "strafrechtelijk"], &[]),
        )
        .await;
        assert_eq!(
            refused_by(almost_all),
            Refusal::ComplementFloor { floor: 10 }
        );
        // Grouping by a filtered dimension lists only the values asked for.
        let two = ask(
            &db.store,
            "d",
            request(start, &["strafrechtelijk", "ots"], &[Dimension::LegalBasis]),
        )
        .await
        .unwrap();
        let keys: Vec<&str> = two.result.rows.iter().map(|r| r.key[0].as_str()).collect();
        assert_eq!(keys, ["ots", "strafrechtelijk"]);
        let tiny = ask(&db.store, "c", request(start, &["vrijwillig"], &[])).await;
        assert_eq!(refused_by(tiny), Refusal::PopulationFloor { floor: 10 });
        // A ledger entry that cannot be read back fails closed.
        db.execute("UPDATE privacy_ledger SET filters = 'unreadable' WHERE requester = 'd'")
            .await;
        let unreadable = ask(&db.store, "d", request(start, &[], &[])).await;
        assert!(matches!(unreadable, Err(ExecuteError::CorruptLedger)));
        // The ledger is in the database: a new connection remembers it.
        let reopened = Store::connect(&db.url).await.unwrap();
        let later = ask(&reopened, "a", request(date(2021, 1, 2), &[], &[])).await;
        assert_eq!(refused_by(later), DIFFERENCING);
    }
);

both_backends!(
    length_of_stay_figures_need_enough_youths_and_no_dominant_one,
    |db| async move {
        // Stays ended in 2021: twelve in pleegzorg of 30 days but one of 2,000 (86% of the
        // days); twelve in a gezinshuis of 100 days each.
        let mut csv = String::from("youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n");
        for i in 0..12 {
            let start = if i == 0 { "2015-07-15" } else { "2021-05-01" };
            csv.push_str(&format!("P{i},2008-01-01,drenthe,Assen,P,Assen,drenthe,pleegzorg,,ots,{start},2021-05-31,thuis,\n"));
            csv.push_str(&format!("G{i},2008-01-01,drenthe,Assen,P,Assen,drenthe,gezinshuis,,ots,2021-03-01,2021-06-09,thuis,\n"));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("placements.csv");
        std::fs::write(&path, csv).unwrap();
        import_file(&db.store, &path, None, ImportOptions::default(), &mut ())
            .await
            .unwrap();
        let mut query = request(date(2021, 1, 1), &[], &[Dimension::StayGroup]);
        query.template = "length_of_stay".to_owned();
        let call = Call {
            store: &db.store,
            disclosure: &Disclosure::default(),
            template: Template::LengthOfStay,
            query: &query,
            group_by: &[Dimension::StayGroup],
            requester: "a",
            today: zicht_node::today(),
        };
        let released = execute(&call).await.unwrap().result;
        let figures = |group: &str| -> Vec<Option<f64>> {
            let row = released.rows.iter().find(|r| r.key[0] == group).unwrap();
            row.statistics.iter().map(|s| s.value).collect()
        };
        assert_eq!(
            figures("andere_verblijfzorg"),
            [Some(100.0), Some(100.0), Some(100.0)]
        );
        assert_eq!(
            figures("pleegzorg"),
            [None, None, None],
            "one youth dominates"
        );
        assert!(released
            .rules_applied
            .iter()
            .any(|r| r == "dominance: at least 10 youths, none over 50% of the days"));
    }
);
