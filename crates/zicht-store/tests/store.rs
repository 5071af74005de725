//! The store on both backends: migrations, imports of every table, idempotence, all-or-nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use zicht_model::{CodeList, Region};
use zicht_store::import::{
    import_file, parse, store_rows, ImportError, ImportOptions, Rows, Table,
};
use zicht_store::Store;
use zicht_synth::{generate_to_dir, Config, FILE_NAMES};
use zicht_testkit::{both_backends, TestDb};

/// Writes a synthetic region's four CSV files into `dir`.
fn synthetic_region(dir: &Path, region: Region, seed: u64) -> [PathBuf; 5] {
    generate_to_dir(&Config::new(region, seed), dir).unwrap();
    FILE_NAMES.map(|name| dir.join(name))
}

async fn import(store: &Store, path: &Path, options: ImportOptions) -> Result<u64, ImportError> {
    import_file(store, path, None, options, &mut ())
        .await
        .map(|r| r.rows)
}

/// Every placement as one portable text line, sorted, for comparing contents.
async fn placement_lines(db: &TestDb) -> Vec<String> {
    db.strings(
        "SELECT youth_id || '|' || CAST(birth_date AS TEXT) || '|' || origin_region || '|' \
         || COALESCE(origin_municipality, '') || '|' || provider || '|' || care_type || '|' \
         || CAST(start_date AS TEXT) || '|' || COALESCE(CAST(end_date AS TEXT), '') || '|' \
         || COALESCE(outflow_destination, '') || '|' || COALESCE(CAST(outflow_profile AS TEXT), '') \
         FROM placements ORDER BY 1",
    )
    .await
}

both_backends!(migrations_are_idempotent, |db| async move {
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
});

both_backends!(
    synthetic_region_imports_and_reimport_is_idempotent,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let files = synthetic_region(dir.path(), Region::Ijmond, 11);
        let mut counts = Vec::new();
        for file in &files {
            counts.push(
                import(&db.store, file, ImportOptions::default())
                    .await
                    .unwrap(),
            );
        }
        let summary = db.store.summary().await.unwrap();
        assert_eq!(summary.placements as u64, counts[0]);
        assert_eq!(summary.capacity_rows as u64, counts[1]);
        assert_eq!(summary.transition18_checks as u64, counts[2]);
        assert_eq!(summary.consents as u64, counts[3]);
        assert!(summary.youths > 0 && summary.youths < summary.placements);
        assert!(summary.occupied <= summary.places && summary.places > 0);
        let before = placement_lines(&db).await;

        for file in &files {
            import(&db.store, file, ImportOptions::default())
                .await
                .unwrap();
        }
        assert_eq!(db.store.summary().await.unwrap(), summary);
        assert_eq!(placement_lines(&db).await, before);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM imports").await, 10);
    }
);

const CAPACITY_HEADER: &str = "provider,facility,location_municipality,placement_region,care_type,setting,peildatum,places,occupied,financing";
const MEASURES_HEADER: &str =
    "youth_id,provider,facility,placement_region,start_date,start_time,duration_minutes,kind";

both_backends!(
    a_measure_names_a_stored_placement_and_facility,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        // Y1 stays with Provider A in IJmond through 2022; Y2 is placed elsewhere.
        let placements = write(
            dir.path(),
            "placements.csv",
            &[
                row(1, "2022-12-31", "thuis"),
                "Y2,2008-03-01,ijmond,Velsen,JeugdhulpPlus Noord,Groningen,groningen,jeugdhulp_plus,,machtiging_gesloten,2022-01-01,,,".to_owned(),
            ],
        );
        import(&db.store, &placements, ImportOptions::default())
            .await
            .unwrap();
        let capacity = dir.path().join("capacity.csv");
        std::fs::write(
            &capacity,
            format!("{CAPACITY_HEADER}\nProvider A,De Kust,Velsen,ijmond,jeugdhulp_plus,,2022-01-01,10,8,\n"),
        )
        .unwrap();
        import(&db.store, &capacity, ImportOptions::default())
            .await
            .unwrap();
        let measures = |rows: &[&str]| {
            let path = dir.path().join("measures.csv");
            std::fs::write(&path, format!("{MEASURES_HEADER}\n{}\n", rows.join("\n"))).unwrap();
            path
        };
        let good = "Y1,Provider A,De Kust,ijmond,2022-03-01,14:05,45,separatie";
        // Groningen's facilities are not in this node's capacity: not checked, but the
        // placement is.
        let elsewhere = "Y2,JeugdhulpPlus Noord,JeugdhulpPlus Noord Groningen,groningen,2023-02-01,09:00,30,fixatie";
        for (bad, expect) in [
            (
                "Y1,Provider A,De Kust,ijmond,2022-03-02,14:05,30,opsluiten",
                "measures.csv:3:8: kind: unknown measure_kind code",
            ),
            (
                "Y1,Provider A,De Kust,ijmond,2022-03-02,14:05,-30,separatie",
                "measures.csv:3:7: duration_minutes: a duration cannot be below zero",
            ),
            (
                "Y1,Provider A,De Kust,ijmond,2023-01-05,14:05,30,separatie",
                "measures.csv:3:5: start_date: no placement of this youth with this provider and placement_region covers start_date",
            ),
            (
                "Y1,Provider A,Het Duin,ijmond,2022-03-02,14:05,30,separatie",
                "measures.csv:3:3: facility: not a facility of this provider in this placement_region in capacity.csv",
            ),
            (
                "Y1,Provider A,De Kust,ijmond,2022-03-02,25:00,30,separatie",
                "measures.csv:3:6: start_time: must be a time HH:MM",
            ),
        ] {
            let error = import(&db.store, &measures(&[good, bad]), ImportOptions::default())
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains(expect), "{error}");
            assert!(error.contains("nothing was stored"), "{error}");
            assert_eq!(db.scalar("SELECT COUNT(*) FROM measures").await, 0);
        }
        let rows = import(
            &db.store,
            &measures(&[good, elsewhere]),
            ImportOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(rows, 2);
        assert_eq!(db.store.summary().await.unwrap().measures, 2);
    }
);

const HEADER: &str = "youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile";

fn write(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut content = format!("{HEADER}\n");
    for row in rows {
        content.push_str(row);
        content.push('\n');
    }
    std::fs::write(&path, content).unwrap();
    path
}

fn row(youth: usize, end: &str, destination: &str) -> String {
    format!("Y{youth},2008-03-01,Midden-Kennemerland,Velsen,Provider A,Velsen,ijmond,pleegzorg,,ots,2022-01-01,{end},{destination},")
}

both_backends!(
    a_bad_row_late_in_a_big_file_stores_nothing,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut rows: Vec<String> = (0..2500).map(|i| row(i, "", "")).collect();
        rows[2400] = row(2400, "2021-01-01", "thuis"); // ends before it starts
        let path = write(dir.path(), "placements.csv", &rows);
        let error = import(&db.store, &path, ImportOptions::default())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("placements.csv:2402:12: end_date: end_date is before start_date"),
            "{message}"
        );
        assert!(message.contains("nothing was stored"), "{message}");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM imports").await, 0);
    }
);

both_backends!(a_database_failure_rolls_back_every_batch, |db| async move {
    // Rows that bypass the parser's checks: the database's own CHECK refuses the last one,
    // after several batches were sent. Nothing may remain.
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..2500).map(|i| row(i, "", "")).collect();
    let path = write(dir.path(), "placements.csv", &rows);
    let Rows::Placements(mut parsed) =
        parse(Table::Placements, std::fs::File::open(&path).unwrap()).unwrap()
    else {
        panic!("placements expected");
    };
    parsed[2499].end_date = Some(zicht_model::parse_date("2000-01-01").unwrap());
    parsed[2499].outflow_destination = Some(zicht_model::OutflowDestination::Thuis);
    let result = store_rows(
        &db.store,
        Rows::Placements(parsed),
        ImportOptions::default(),
        "x.csv",
        "00",
        &mut (),
    )
    .await;
    assert!(result.is_err());
    assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM imports").await, 0);
});

// One batch larger than a COPY piece (1 MiB) reaches PostgreSQL in pieces; its rows arrive
// whole and equal to the same file imported in batches of 1,000.
both_backends!(
    a_batch_larger_than_one_piece_arrives_whole,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<String> = (0..12_000)
            .map(|i| match i % 3 {
                0 => row(i, "", ""),
                1 => row(i, "2023-05-01", "thuis"),
                _ => row(i, "2024-02-29", "pleegzorg"),
            })
            .collect();
        let path = write(dir.path(), "placements.csv", &rows);
        let one_batch = parsed(dir.path(), &rows);
        store_rows(
            &db.store,
            Rows::Placements(one_batch),
            ImportOptions::default(),
            "placements.csv",
            "00",
            &mut (),
        )
        .await
        .unwrap();
        let streamed = TestDb::new(db.store.backend()).await;
        import(&streamed.store, &path, ImportOptions::default())
            .await
            .unwrap();
        let lines = placement_lines(&db).await;
        assert_eq!(lines.len(), 12_000);
        assert_eq!(lines, placement_lines(&streamed).await);
    }
);

// A load into an empty table drops the key index and builds it after the rows: when the load
// fails (a rejected file, or a key twice, which only a caller bypassing the check can send),
// nothing is stored and the index is back, so later imports still upsert on the key.
both_backends!(
    a_failed_bulk_load_stores_nothing_and_keeps_the_key,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let mut rows: Vec<String> = (0..2500).map(|i| row(i, "", "")).collect();
        rows[2400] = row(2400, "2021-01-01", "thuis");
        let bad = write(dir.path(), "placements.csv", &rows);
        import(&db.store, &bad, ImportOptions::default())
            .await
            .unwrap_err();
        let twice = vec![parsed(dir.path(), &[row(1, "", "")])[0].clone(); 2];
        let result = store_rows(
            &db.store,
            Rows::Placements(twice),
            ImportOptions {
                replace: true,
                ..Default::default()
            },
            "x.csv",
            "00",
            &mut (),
        )
        .await;
        assert!(result.is_err(), "a key twice fails the index build");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
        assert_eq!(db.scalar("SELECT COUNT(*) FROM imports").await, 0);

        let good = write(
            dir.path(),
            "placements-1.csv",
            &[row(1, "", ""), row(2, "", "")],
        );
        import(&db.store, &good, ImportOptions::default())
            .await
            .unwrap();
        // Into a table with rows: an upsert on the key (which needs the index).
        let again = write(
            dir.path(),
            "placements-2.csv",
            &[row(1, "2023-05-01", "thuis")],
        );
        import(&db.store, &again, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 2);
        let twice = vec![parsed(dir.path(), &[row(3, "", "")])[0].clone(); 2];
        // PostgreSQL refuses the second; SQLite upserts it onto the first. Either way the key
        // stays unique.
        let _ = store_rows(
            &db.store,
            Rows::Placements(twice),
            ImportOptions::default(),
            "x.csv",
            "00",
            &mut (),
        )
        .await;
        assert!(
            db.scalar("SELECT COUNT(*) FROM placements WHERE youth_id = 'Y3'")
                .await
                <= 1
        );
    }
);

/// The placements of `rows`, checked.
fn parsed(dir: &Path, rows: &[String]) -> Vec<zicht_model::Placement> {
    let path = write(dir, "parsed.csv", rows);
    match parse(Table::Placements, std::fs::File::open(&path).unwrap()).unwrap() {
        Rows::Placements(parsed) => parsed,
        _ => panic!("placements expected"),
    }
}

both_backends!(upsert_updates_and_replace_replaces, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "placements.csv",
        &[row(1, "", ""), row(2, "", "")],
    );
    assert_eq!(
        import(&db.store, &first, ImportOptions::default())
            .await
            .unwrap(),
        2
    );
    // Same keys, placement 1 has now ended: upsert changes it in place.
    let second = write(
        dir.path(),
        "placements-2.csv",
        &[row(1, "2023-05-01", "thuis"), row(3, "", "")],
    );
    import(&db.store, &second, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 3);
    assert_eq!(
        db.strings("SELECT outflow_destination FROM placements WHERE youth_id = 'Y1'")
            .await,
        vec!["thuis".to_owned()]
    );
    // A full export replaces the table.
    import(
        &db.store,
        &second,
        ImportOptions {
            replace: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        db.strings("SELECT youth_id FROM placements ORDER BY youth_id")
            .await,
        vec!["Y1".to_owned(), "Y3".to_owned()]
    );
});

both_backends!(values_round_trip_on_every_table, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let placements = write(dir.path(), "placements.csv", &[
        "Y9,2007-02-28,Noord-Kennemerland,,\"Fier, Leeuwarden\",,buiten_federatie,open_residentieel,op_terrein,voogdij,2023-03-01,2024-02-29,begeleid_wonen,3".to_owned(),
    ]);
    import(&db.store, &placements, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(
        placement_lines(&db).await,
        vec!["Y9|2007-02-28|alkmaar||Fier, Leeuwarden|open_residentieel|2023-03-01|2024-02-29|begeleid_wonen|3".to_owned()]
    );
    let transition = dir.path().join("transition18.csv");
    std::fs::write(&transition, "youth_id,check_date,toekomstplan,lokaal_team,clientondersteuner,after18_funding,big5_support,big5_wonen,big5_werk_school,big5_inkomen_schulden,big5_zorg_ondersteuning,uit_beeld\nY9,2024-01-01,ja,nee,Nee,Verlengde-Jeugdhulp,op_orde,wankel,niet_op_orde,onbekend,op_orde,nee\n").unwrap();
    import(&db.store, &transition, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(
        db.strings("SELECT CASE WHEN toekomstplan THEN 'ja' ELSE 'nee' END || CASE WHEN lokaal_team THEN 'ja' ELSE 'nee' END || '|' || after18_funding || '|' || big5_wonen FROM transition18").await,
        vec!["janee|verlengde_jeugdhulp|wankel".to_owned()]
    );
    let capacity = dir.path().join("capacity.csv");
    std::fs::write(&capacity, "provider,facility,location_municipality,placement_region,care_type,setting,peildatum,places,occupied,financing\nElker,Elker Groningen,Groningen,RIGG,open_residentieel,op_terrein,2024-01-01,41,39,capaciteit\n").unwrap();
    import(&db.store, &capacity, ImportOptions::default())
        .await
        .unwrap();
    let summary = db.store.summary().await.unwrap();
    assert_eq!((summary.places, summary.occupied), (41, 39));
    let consents = dir.path().join("consents.csv");
    std::fs::write(&consents, format!("consent_id,youth_id,purpose,recipient,fields,granted_at,expires_at,revoked_at,evidence_ref\nC1,Y9,warme-overdracht,{},care_type|toekomstplan,2024-01-01,2024-12-31,,dossier 1\n", zicht_model::NodeName::Region(Region::Twente).dev_peer_id())).unwrap();
    import(&db.store, &consents, ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(
        db.strings(
            "SELECT recipient || '|' || fields || '|' || CAST(expires_at AS TEXT) FROM consents"
        )
        .await,
        vec![format!(
            // A date is the start of that day, 00:00 UTC, in ms since the Unix epoch.
            "{}|care_type|toekomstplan|1735603200000",
            zicht_model::NodeName::Region(Region::Twente).dev_peer_id()
        )]
    );
});

both_backends!(
    a_revocation_is_never_undone_or_moved_later_by_a_reimport,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("consents.csv");
        let write = |revoked: &str| {
            std::fs::write(&file, format!("consent_id,youth_id,purpose,recipient,fields,granted_at,expires_at,revoked_at,evidence_ref\nC1,Y9,warme-overdracht,jenn,care_type,2024-01-01,,{revoked},\n")).unwrap();
        };
        let revoked = || async {
            db.strings("SELECT COALESCE(CAST(revoked_at AS TEXT), '-') FROM consents")
                .await
        };
        write("");
        import(&db.store, &file, ImportOptions::default())
            .await
            .unwrap();
        let june = zicht_model::Timestamp::parse("2024-06-01T12:00:00Z")
            .unwrap()
            .millis();
        assert_eq!(
            db.store.revoke_consent("C1", june).await.unwrap(),
            zicht_store::Revoked::Now
        );
        // The export of before the revocation, imported again: still revoked.
        import(&db.store, &file, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(revoked().await, [june.to_string()]);
        // A later revocation moves nothing; an earlier one does.
        write("2024-09-01");
        import(&db.store, &file, ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(revoked().await, [june.to_string()]);
        write("2024-03-01");
        import(&db.store, &file, ImportOptions::default())
            .await
            .unwrap();
        let march = zicht_model::Timestamp::parse("2024-03-01")
            .unwrap()
            .millis();
        assert_eq!(revoked().await, [march.to_string()]);
        assert_eq!(
            db.store.revoke_consent("C1", june).await.unwrap(),
            zicht_store::Revoked::Already(march)
        );
        assert_eq!(
            db.store.revoke_consent("C9", june).await.unwrap(),
            zicht_store::Revoked::Unknown
        );
        let before = zicht_model::Timestamp::parse("2023-01-01")
            .unwrap()
            .millis();
        assert!(matches!(
            db.store.revoke_consent("C1", before).await.unwrap(),
            zicht_store::Revoked::BeforeGrant(_)
        ));
    }
);

#[test]
fn every_synthetic_region_passes_the_importer() {
    let dir = tempfile::tempdir().unwrap();
    for (seed, &region) in Region::ALL.iter().enumerate() {
        let region_dir = dir.path().join(region.code());
        std::fs::create_dir(&region_dir).unwrap();
        let files = synthetic_region(&region_dir, region, seed as u64);
        for (table, file) in Table::ALL.iter().zip(&files) {
            let rows = parse(*table, std::fs::File::open(file).unwrap())
                .unwrap_or_else(|e| panic!("{region} {table}: {e:?}"));
            assert!(!rows.is_empty(), "{region} {table}");
        }
    }
}

/// Every example in docs/import-format.md is a file the importer accepts.
#[test]
fn documented_examples_import_cleanly() {
    let doc = include_str!("../../../docs/import-format.md");
    let mut examples = 0;
    for block in doc.split("```csv\n").skip(1) {
        let csv = block.split("```").next().unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let table = Table::ALL
            .into_iter()
            .find(|t| t.columns() == header.as_slice())
            .unwrap_or_else(|| panic!("no table has header {header:?}"));
        let rows = parse(table, csv.as_bytes()).unwrap_or_else(|e| panic!("{table}: {e:?}"));
        assert_eq!(rows.len(), csv.lines().count() - 1);
        examples += 1;
    }
    assert_eq!(examples, 5);
}

// After a clean close the SQLite file is complete on its own: its write-ahead log is empty
// (or gone), and a copy of the file alone holds every imported row. Without the checkpoint at
// close, SQLite empties the log only when one connection closes last, which the pool's
// closing all at once sometimes leaves to nobody.
#[tokio::test]
async fn a_closed_sqlite_database_is_complete_without_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let files = synthetic_region(dir.path(), Region::Drenthe, 5);
    for round in 0..5 {
        let path = dir.path().join(format!("region-{round}.db"));
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url).await.unwrap();
        let mut placements = 0;
        for file in &files {
            let rows = import(&store, file, ImportOptions::default())
                .await
                .unwrap();
            if file.ends_with("placements.csv") {
                placements = rows;
            }
        }
        store.close().await;
        let log = dir.path().join(format!("region-{round}.db-wal"));
        let log_bytes = std::fs::metadata(&log).map_or(0, |m| m.len());
        assert_eq!(log_bytes, 0, "round {round}: the log still holds pages");
        let copy = dir.path().join(format!("copy-{round}.db"));
        std::fs::copy(&path, &copy).unwrap();
        let copy = Store::connect(&format!("sqlite://{}", copy.display()))
            .await
            .unwrap();
        assert_eq!(
            copy.summary().await.unwrap().placements as u64,
            placements,
            "round {round}"
        );
        copy.close().await;
    }
}
