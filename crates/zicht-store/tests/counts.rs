//! The person-count templates on hand-built fixtures with known answers, on both backends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use zicht_model::{Dimension, Filter, NaiveDate, Template};
use zicht_store::import::{import_file, ImportOptions};
use zicht_store::{CountQuery, CountScope, InvalidCountQuery, StayFigures, Store};
use zicht_testkit::both_backends;

const PLACEMENTS: &str = "\
youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile
A,2005-06-15,drenthe,Assen,P1,Assen,drenthe,pleegzorg,,ots,2020-03-01,2021-02-10,thuis,1
A,2005-06-15,drenthe,Assen,P2,Assen,drenthe,gezinshuis,,ots,2021-02-20,,,
B,2010-01-01,drenthe,Emmen,P3,Groningen,groningen,jeugdhulp_plus,,machtiging_gesloten,2021-05-01,2021-08-01,open_residentieel,2
C,2003-12-31,onbekend,,P1,Apeldoorn,buiten_federatie,pleegzorg,,voogdij,2019-01-01,,,
D,2008-01-01,drenthe,Assen,P4,Amsterdam,amsterdam_amstelland,kleinschalig_wonen,in_de_wijk,vrijwillig,2021-12-31,,,
E,2008-01-01,drenthe,Assen,P1,Assen,drenthe,pleegzorg,,ots,2018-01-01,2020-12-31,thuis,1
F,2007-01-01,drenthe,Assen,P1,Assen,drenthe,pleegzorg,,ots,2022-01-01,,,
G,2012-05-05,drenthe,Assen,P1,Leeuwarden,friesland,pleegzorg,,ots,2020-06-01,2021-01-01,thuis,
";

const CHECKS: &str = "\
youth_id,check_date,toekomstplan,lokaal_team,clientondersteuner,after18_funding,big5_support,big5_wonen,big5_werk_school,big5_inkomen_schulden,big5_zorg_ondersteuning,uit_beeld
A,2021-07-01,nee,ja,nee,wmo,wankel,wankel,wankel,wankel,wankel,nee
A,2022-01-01,ja,ja,ja,verlengde_jeugdhulp,op_orde,wankel,op_orde,niet_op_orde,onbekend,nee
C,2021-10-01,nee,nee,nee,onbekend,wankel,wankel,wankel,wankel,wankel,ja
X,2021-03-01,ja,ja,ja,wmo,op_orde,op_orde,op_orde,op_orde,op_orde,nee
";

async fn fixture(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("placements.csv", PLACEMENTS), ("transition18.csv", CHECKS)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        import_file(store, &path, None, ImportOptions::default(), &mut ())
            .await
            .unwrap();
    }
}

fn date(text: &str) -> NaiveDate {
    zicht_model::parse_date(text).unwrap()
}

fn year_2021() -> CountScope {
    CountScope::Period {
        from: date("2021-01-01"),
        to: date("2021-12-31"),
    }
}

/// Runs a query and gives `key values joined by / => youths`, sorted.
async fn counts(
    store: &Store,
    template: Template,
    scope: CountScope,
    filters: &[Filter],
    group_by: &[Dimension],
) -> Vec<(String, i64)> {
    let query = CountQuery {
        template,
        scope,
        filters,
        group_by,
    };
    let mut rows: Vec<(String, i64)> = store
        .person_counts(&query, None)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|r| (r.key.join("/"), r.youths))
        .collect();
    rows.sort();
    rows
}

fn expect(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

both_backends!(youth_in_care_counts_distinct_youths_once, |db| async move {
    fixture(&db.store).await;
    let store = &db.store;
    let t = Template::YouthInCare;
    // A (twice placed), B, C (ongoing since 2019), D (starts on the last day), G (ends on
    // the first day); not E (ended the day before) nor F (starts after).
    assert_eq!(
        counts(store, t, year_2021(), &[], &[]).await,
        expect(&[("", 5)])
    );
    assert_eq!(
        counts(store, t, year_2021(), &[], &[Dimension::StayGroup]).await,
        expect(&[
            ("andere_verblijfzorg", 2),
            ("jeugdhulp_plus", 1),
            ("pleegzorg", 2)
        ]),
        "A counts once, with the latest placement (gezinshuis)"
    );
    assert_eq!(
        counts(store, t, year_2021(), &[], &[Dimension::AgeBand]).await,
        expect(&[("12-15", 1), ("16-17", 1), ("18+", 1), ("6-11", 2)]),
        "age on 2021-12-31; C turns 18 that day"
    );
    assert_eq!(
        counts(store, t, year_2021(), &[], &[Dimension::LandsdeelInside]).await,
        expect(&[("binnen", 3), ("buiten", 1), ("onbekend", 1)])
    );
    assert_eq!(
        counts(
            store,
            t,
            year_2021(),
            &[],
            &[Dimension::OriginRegion, Dimension::PlacementRegion]
        )
        .await,
        expect(&[
            ("drenthe/amsterdam-amstelland", 1),
            ("drenthe/drenthe", 1),
            ("drenthe/friesland", 1),
            ("drenthe/groningen", 1),
            ("onbekend/buiten_federatie", 1),
        ])
    );
    // Filters select on the counted unit, after it is picked: A counts with its latest
    // placement (gezinshuis), so a pleegzorg filter leaves A out, as the grouped table does.
    let pleegzorg = [Filter {
        dimension: Dimension::CareType,
        values: vec!["pleegzorg".to_owned()],
        exclude: false,
    }];
    assert_eq!(
        counts(store, t, year_2021(), &pleegzorg, &[Dimension::LegalBasis]).await,
        expect(&[("ots", 1), ("voogdij", 1)])
    );
    let one_day = CountScope::Period {
        from: date("2021-12-31"),
        to: date("2021-12-31"),
    };
    assert_eq!(
        counts(store, t, one_day, &[], &[]).await,
        expect(&[("", 3)])
    );
});

both_backends!(
    flows_tell_instroom_doorplaatsing_and_uitstroom_apart,
    |db| async move {
        fixture(&db.store).await;
        let store = &db.store;
        let t = Template::Flows;
        assert_eq!(
            counts(store, t, year_2021(), &[], &[Dimension::FlowKind]).await,
            expect(&[("doorplaatsing", 1), ("instroom", 2), ("uitstroom", 2)])
        );
        assert_eq!(
            counts(
                store,
                t,
                year_2021(),
                &[],
                &[Dimension::FlowKind, Dimension::OutflowDestination]
            )
            .await,
            expect(&[
                ("doorplaatsing/thuis", 1),
                ("instroom/nvt", 2),
                ("uitstroom/open_residentieel", 1),
                ("uitstroom/thuis", 1),
            ])
        );
        let uitstroom = [Filter {
            dimension: Dimension::FlowKind,
            values: vec!["uitstroom".to_owned()],
            exclude: false,
        }];
        assert_eq!(
            counts(
                store,
                t,
                year_2021(),
                &uitstroom,
                &[Dimension::OutflowProfile]
            )
            .await,
            expect(&[("2", 1), ("onbekend", 1)])
        );
        // 2020: E leaves care on its last day, A and G are already in care.
        let year_2020 = CountScope::Period {
            from: date("2020-01-01"),
            to: date("2020-12-31"),
        };
        assert_eq!(
            counts(store, t, year_2020, &[], &[Dimension::FlowKind]).await,
            expect(&[("instroom", 2), ("uitstroom", 1)])
        );
    }
);

both_backends!(length_of_stay_gives_order_statistics, |db| async move {
    fixture(&db.store).await;
    let query = CountQuery {
        template: Template::LengthOfStay,
        scope: year_2021(),
        filters: &[],
        group_by: &[Dimension::CareType],
    };
    let rows = db.store.person_counts(&query, None).await.unwrap().unwrap();
    let figures: Vec<(String, i64, StayFigures)> = rows
        .into_iter()
        .map(|r| (r.key.join("/"), r.youths, r.stay.unwrap()))
        .collect();
    // A: 2020-03-01..2021-02-10 = 346 days; G: 2020-06-01..2021-01-01 = 214; B: 92.
    assert_eq!(
        figures,
        vec![
            (
                "jeugdhulp_plus".to_owned(),
                1,
                StayFigures {
                    sum_days: 92,
                    max_days: 92,
                    median_days: 92,
                    p90_days: 92
                }
            ),
            (
                "pleegzorg".to_owned(),
                2,
                StayFigures {
                    sum_days: 560,
                    max_days: 346,
                    median_days: 214,
                    p90_days: 346
                }
            ),
        ]
    );
    let all = CountQuery {
        group_by: &[],
        ..query
    };
    let rows = db.store.person_counts(&all, None).await.unwrap().unwrap();
    assert_eq!(
        rows[0].stay,
        Some(StayFigures {
            sum_days: 652,
            max_days: 346,
            median_days: 214,
            p90_days: 346
        })
    );
});

both_backends!(
    transition18_takes_each_youths_latest_check,
    |db| async move {
        fixture(&db.store).await;
        let store = &db.store;
        let t = Template::Transition18;
        let peildatum = CountScope::Peildatum(date("2022-01-01"));
        // A's check of that day and C's of October; X's check is older than half a year.
        assert_eq!(
            counts(store, t, peildatum, &[], &[Dimension::Toekomstplan]).await,
            expect(&[("ja", 1), ("nee", 1)])
        );
        let wonen = [Filter {
            dimension: Dimension::Big5Domain,
            values: vec!["wonen".to_owned()],
            exclude: false,
        }];
        assert_eq!(
            counts(store, t, peildatum, &wonen, &[Dimension::Big5Status]).await,
            expect(&[("wankel", 2)])
        );
        let grid = counts(
            store,
            t,
            peildatum,
            &[],
            &[Dimension::Big5Domain, Dimension::Big5Status],
        )
        .await;
        assert_eq!(grid.iter().map(|(_, n)| n).sum::<i64>(), 10, "{grid:?}");
        assert!(grid.contains(&("inkomen_schulden/niet_op_orde".to_owned(), 1)));
        let invalid = CountQuery {
            template: t,
            scope: peildatum,
            filters: &[],
            group_by: &[Dimension::Big5Status],
        };
        assert_eq!(
            store.person_counts(&invalid, None).await.unwrap(),
            Err(InvalidCountQuery::Big5StatusWithoutDomain)
        );
        let wrong_scope = CountQuery {
            template: Template::YouthInCare,
            ..invalid
        };
        assert!(matches!(
            store.person_counts(&wrong_scope, None).await.unwrap(),
            Err(InvalidCountQuery::Scope { .. })
        ));
    }
);

both_backends!(
    an_excluding_filter_keeps_exactly_the_other_units,
    |db| async move {
        fixture(&db.store).await;
        let store = &db.store;
        let t = Template::YouthInCare;
        // Outside the north (drenthe, friesland, groningen): B's JeugdhulpPlus placement is in
        // groningen, so only C (buiten_federatie) and D (amsterdam) are placed outside.
        let outside_north = [Filter {
            dimension: Dimension::PlacementRegion,
            values: vec!["drenthe".into(), "friesland".into(), "groningen".into()],
            exclude: true,
        }];
        assert_eq!(
            counts(
                store,
                t,
                year_2021(),
                &outside_north,
                &[Dimension::PlacementRegion]
            )
            .await,
            expect(&[("amsterdam-amstelland", 1), ("buiten_federatie", 1)])
        );
        // For every template and dimension value: kept plus left out is the whole, cell by cell.
        let cases = [
            (
                Template::YouthInCare,
                year_2021(),
                Dimension::CareType,
                Dimension::LegalBasis,
            ),
            (
                Template::Flows,
                year_2021(),
                Dimension::FlowKind,
                Dimension::CareType,
            ),
            (
                Template::Transition18,
                CountScope::Peildatum(date("2022-01-01")),
                Dimension::Toekomstplan,
                Dimension::After18Funding,
            ),
        ];
        for (template, scope, filtered, grouped) in cases {
            let whole = counts(store, template, scope, &[], &[grouped]).await;
            for value in filtered.domain().unwrap() {
                let filter = |exclude| Filter {
                    dimension: filtered,
                    values: vec![value.to_owned()],
                    exclude,
                };
                let kept = counts(store, template, scope, &[filter(false)], &[grouped]).await;
                let left = counts(store, template, scope, &[filter(true)], &[grouped]).await;
                let mut sum: std::collections::BTreeMap<String, i64> = Default::default();
                for (key, n) in kept.into_iter().chain(left) {
                    *sum.entry(key).or_default() += n;
                }
                assert_eq!(
                    sum.into_iter().collect::<Vec<_>>(),
                    whole,
                    "{template} {filtered}!={value}"
                );
            }
        }
    }
);
