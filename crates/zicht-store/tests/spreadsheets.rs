//! Exports as municipalities make them: `;` and tab, Windows-1252, BOM and CRLF, dd-mm-jjjj,
//! `.xlsx`, upper-case headers and Excel's trailing empty column, Dutch column names through a
//! mapping; each goes in as the canonical CSV of the same rows does. And what must not go in:
//! a BSN as youth_id, another region's placements.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zicht_model::Region;
use zicht_store::import::{
    import_file, Dialect, ImportError, ImportOptions, Mapping, RegionCheck, TextEncoding,
};
use zicht_synth::{generate_to_dir, Config};
use zicht_testkit::xlsx::{self, Cell};
use zicht_testkit::{both_backends, TestDb};

/// A synthetic region's placements: header and rows as text.
fn placements(dir: &Path, region: Region) -> (Vec<String>, Vec<Vec<String>>) {
    generate_to_dir(&Config::new(region, 5), dir).unwrap();
    let mut reader = csv::Reader::from_path(dir.join("placements.csv")).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Rows joined by `delimiter` and `newline`, no quoting (the synthetic values need none).
fn joined(header: &[String], rows: &[Vec<String>], delimiter: &str, newline: &str) -> String {
    let mut text = header.join(delimiter) + newline;
    for row in rows {
        text.push_str(&row.join(delimiter));
        text.push_str(newline);
    }
    text
}

/// `YYYY-MM-DD` as `DD-MM-YYYY`; other values as they are.
fn day_month_year(value: &str) -> String {
    match zicht_model::parse_date(value) {
        Ok(date) => date.format("%d-%m-%Y").to_string(),
        Err(_) => value.to_owned(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn import(db: &TestDb, path: &Path, options: ImportOptions) -> Result<u64, ImportError> {
    import_file(&db.store, path, None, options, &mut ())
        .await
        .map(|report| report.rows)
}

/// Every placement as one line, sorted.
async fn lines(db: &TestDb) -> Vec<String> {
    db.strings(
        "SELECT youth_id || '|' || CAST(birth_date AS TEXT) || '|' || origin_region || '|' \
         || COALESCE(origin_municipality, '') || '|' || provider || '|' \
         || COALESCE(location_municipality, '') || '|' || care_type || '|' || legal_basis || '|' \
         || CAST(start_date AS TEXT) || '|' || COALESCE(CAST(end_date AS TEXT), '') || '|' \
         || COALESCE(outflow_destination, '') FROM placements ORDER BY 1",
    )
    .await
}

/// Imports the canonical file into `db`, takes its lines, empties the table, imports the
/// export with `options`, and checks both give the same placements.
async fn same_as_canonical(db: &TestDb, dir: &Path, export: &Path, options: ImportOptions) {
    import(db, &dir.join("placements.csv"), ImportOptions::default())
        .await
        .unwrap();
    let canonical = lines(db).await;
    assert!(canonical.len() > 100);
    db.execute("DELETE FROM placements").await;
    let rows = import(db, export, options).await.unwrap();
    assert_eq!(rows as usize, canonical.len());
    let imported = lines(db).await;
    let differ: Vec<_> = imported
        .iter()
        .zip(&canonical)
        .filter(|(a, b)| a != b)
        .take(3)
        .collect();
    assert!(differ.is_empty(), "{differ:?}");
}

both_backends!(semicolons_as_dutch_excel_saves_them, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = placements(dir.path(), Region::Ijmond);
    let export = write(
        dir.path(),
        "placements-excel.csv",
        joined(&header, &rows, ";", "\r\n").as_bytes(),
    );
    same_as_canonical(&db, dir.path(), &export, ImportOptions::default()).await;
});

both_backends!(tabs, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = placements(dir.path(), Region::Ijmond);
    let export = write(
        dir.path(),
        "placements.tsv",
        joined(&header, &rows, "\t", "\n").as_bytes(),
    );
    same_as_canonical(&db, dir.path(), &export, ImportOptions::default()).await;
});

both_backends!(windows_1252_with_accents, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    // Friesland's municipalities have accents: Súdwest-Fryslân, Noardeast-Fryslân.
    let (header, rows) = placements(dir.path(), Region::Friesland);
    let text = joined(&header, &rows, ";", "\r\n");
    assert!(text.contains('â'));
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(!lossy);
    assert!(std::str::from_utf8(&bytes).is_err());
    let export = write(dir.path(), "placements-ansi.csv", &bytes);
    same_as_canonical(&db, dir.path(), &export, ImportOptions::default()).await;
});

both_backends!(
    bom_crlf_day_month_year_upper_case_and_a_trailing_empty_column,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let (header, rows) = placements(dir.path(), Region::Ijmond);
        let header: Vec<String> = header
            .iter()
            .map(|h| h.to_uppercase())
            .chain([String::new()])
            .collect();
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| day_month_year(v))
                    .chain([String::new()])
                    .collect()
            })
            .collect();
        let text = format!("\u{feff}{}", joined(&header, &rows, ";", "\r\n"));
        assert!(text.contains("-20"));
        let export = write(dir.path(), "placements-2025.csv", text.as_bytes());
        same_as_canonical(&db, dir.path(), &export, ImportOptions::default()).await;
    }
);

both_backends!(an_xlsx_workbook, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = placements(dir.path(), Region::Ijmond);
    let cells: Vec<Vec<Cell>> = std::iter::once(header.iter().map(|h| xlsx::text(h)).collect())
        .chain(rows.iter().map(|row| {
            row.iter()
                .map(|v| match (zicht_model::parse_date(v), v.parse::<f64>()) {
                    _ if v.is_empty() => Cell::Empty,
                    (Ok(date), _) => Cell::Date(date),
                    // Profiles 1-4 as number cells; pseudonyms stay text, as a number cell
                    // keeps 15 digits.
                    (_, Ok(n)) if v.len() == 1 => Cell::Number(n),
                    _ => xlsx::text(v),
                })
                .collect()
        }))
        .collect();
    let export = write(
        dir.path(),
        "placements.xlsx",
        &xlsx::workbook("Plaatsingen", &cells),
    );
    same_as_canonical(&db, dir.path(), &export, ImportOptions::default()).await;
    // A sheet that is not there is named with the ones that are.
    let missing = ImportOptions {
        dialect: Dialect {
            sheet: Some("Blad2".to_owned()),
            ..Dialect::default()
        },
        ..ImportOptions::default()
    };
    let error = import(&db, &export, missing).await.unwrap_err().to_string();
    assert!(
        error.contains("no sheet `Blad2`; its sheets are: Plaatsingen"),
        "{error}"
    );
});

const DUTCH_MAPPING: &str = r#"
[columns]
"Pseudoniem" = "youth_id"
"Geboortedatum" = "birth_date"
"Herkomstregio" = "origin_region"
"Gemeente" = "origin_municipality"
"Aanbieder" = "provider"
"Locatie" = "location_municipality"
"Plaatsingsregio" = "placement_region"
"Soort hulp" = "care_type"
"Setting" = "setting"
"Juridische grondslag" = "legal_basis"
"Startdatum" = "start_date"
"Einddatum" = "end_date"
"Uitstroom naar" = "outflow_destination"
"Uitstroomprofiel" = "outflow_profile"

[values.care_type]
"Pleegzorg (bestand)" = "pleegzorg"
"43" = "open_residentieel"
"#;

both_backends!(
    dutch_column_names_and_codes_through_a_mapping,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let (header, rows) = placements(dir.path(), Region::Ijmond);
        let mapping = Mapping::parse(DUTCH_MAPPING).unwrap();
        let dutch: Vec<String> = header
            .iter()
            .map(|h| {
                DUTCH_MAPPING
                    .lines()
                    .find(|l| l.ends_with(&format!("= \"{h}\"")))
                    .and_then(|l| l.split('"').nth(1))
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let care = header.iter().position(|h| h == "care_type").unwrap();
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut row| {
                row[care] = match row[care].as_str() {
                    "pleegzorg" => "Pleegzorg (bestand)".to_owned(),
                    "open_residentieel" => "43".to_owned(),
                    other => other.to_owned(),
                };
                row
            })
            .collect();
        assert!(rows.iter().any(|r| r[care] == "43"));
        let text = joined(&dutch, &rows, ";", "\n");
        let export = write(dir.path(), "placements-gemeente.csv", text.as_bytes());
        let options = ImportOptions {
            mapping: Some(Arc::new(mapping)),
            ..ImportOptions::default()
        };
        same_as_canonical(&db, dir.path(), &export, options.clone()).await;

        // A source value the mapping does not know is named, with how to map it.
        let unknown = text.replacen(";43;", ";46;", 1);
        let export = write(dir.path(), "placements-onbekend.csv", unknown.as_bytes());
        let error = import(&db, &export, options).await.unwrap_err().to_string();
        assert!(
        error.contains(
            "care_type: `46` is neither in the mapping's [values.care_type] nor a care_type code"
        ) && error.contains("add \"46\" = \"<code>\" to [values.care_type]"),
        "{error}"
    );
    }
);

both_backends!(a_bsn_as_youth_id_is_refused, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "placements.csv",
        b"youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n\
          Y1,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,pleegzorg,,ots,2022-01-01,,,\n\
          111222333,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,pleegzorg,,ots,2022-01-01,,,\n",
    );
    let error = import(&db, &file, ImportOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("placements.csv:3:1: youth_id: looks like a BSN"),
        "{error}"
    );
    assert!(!error.contains("111222333"), "{error}");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
});

both_backends!(
    another_regions_placements_are_refused_with_a_count,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let drenthe = dir.path().join("drenthe");
        let friesland = dir.path().join("friesland");
        generate_to_dir(&Config::new(Region::Drenthe, 3), &drenthe).unwrap();
        generate_to_dir(&Config::new(Region::Friesland, 3), &friesland).unwrap();
        let held = drenthe.join("placements.csv");
        let other = friesland.join("placements.csv");
        import(&db, &held, ImportOptions::default()).await.unwrap();
        let before = lines(&db).await;

        // The database holds drenthe: friesland's rows are refused, counted, none named.
        let error = import(&db, &other, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("origin_region: this database holds drenthe, but")
                && error.contains("of friesland)")
                && error.contains("--allow-other-regions"),
            "{error}"
        );
        assert_eq!(lines(&db).await, before);

        // Asked for friesland, the database of drenthe refuses before reading.
        let asked = ImportOptions {
            region: RegionCheck::Region(Region::Friesland),
            ..ImportOptions::default()
        };
        let error = import(&db, &other, asked).await.unwrap_err();
        assert!(
            matches!(
                error,
                ImportError::OtherRegion {
                    held: Region::Drenthe,
                    ..
                }
            ),
            "{error}"
        );

        // A row whose municipality never belonged to this region is caught by it.
        let text = std::fs::read_to_string(&held).unwrap();
        let moved = text.replacen(",drenthe,Assen,", ",drenthe,Leeuwarden,", 1);
        assert_ne!(moved, text);
        let file = write(dir.path(), "placements-moved.csv", moved.as_bytes());
        let error = import(&db, &file, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("1 row(s)") && error.contains("(1 of friesland)"),
            "{error}"
        );

        // Unless the file is meant so.
        let off = ImportOptions {
            region: RegionCheck::Off,
            ..ImportOptions::default()
        };
        import(&db, &file, off).await.unwrap();
    }
);

both_backends!(
    a_header_that_matches_nothing_says_what_the_file_is,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let (header, rows) = placements(dir.path(), Region::Ijmond);
        let semicolons = write(
            dir.path(),
            "placements-a.csv",
            joined(&header, &rows[..3], ";", "\n").as_bytes(),
        );
        let comma = ImportOptions {
            dialect: Dialect {
                delimiter: Some(b','),
                ..Dialect::default()
            },
            ..ImportOptions::default()
        };
        let error = import(&db, &semicolons, comma)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("read as 1 `,`-separated field(s)")
                && error.contains("is the delimiter right"),
            "{error}"
        );
        // A file without its header row: its first line is data, and never repeated.
        let headless = write(
            dir.path(),
            "placements-b.csv",
            joined(&rows[0], &rows[1..3], ",", "\n").as_bytes(),
        );
        let error = import(&db, &headless, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("looks like data: the file needs a header row"),
            "{error}"
        );
        assert!(!error.contains(&rows[0][0]), "{error}");
        // Invalid UTF-8 past the part read ahead hints at the encoding.
        let mut bytes = joined(&header, &rows, ",", "\n").into_bytes();
        while bytes.len() < 70_000 {
            bytes.extend_from_slice(joined(&[], &rows[..50], ",", "\n").as_bytes());
        }
        let at = bytes.len() - 20;
        bytes[at] = 0xE9;
        let late = write(dir.path(), "placements-c.csv", &bytes);
        let explicit = ImportOptions {
            dialect: Dialect {
                encoding: Some(TextEncoding::Utf8),
                ..Dialect::default()
            },
            ..ImportOptions::default()
        };
        let error = import(&db, &late, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("give --encoding cp1252"), "{error}");
        let error = import(&db, &late, explicit).await.unwrap_err().to_string();
        assert!(
            error.contains("invalid UTF-8") && !error.contains("cp1252"),
            "{error}"
        );
        assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
    }
);

/// Nine-digit numbers that pass the elfproef, from 900000000 up (synthetic test numbers).
fn synthetic_bsns() -> impl Iterator<Item = String> {
    (900_000_000u32..)
        .map(|candidate| candidate.to_string())
        .filter(|candidate| zicht_model::is_bsn(candidate))
}

both_backends!(
    a_bsn_export_is_pseudonymised_and_never_stored,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let (header, rows) = placements(dir.path(), Region::Ijmond);
        // The export keys youths by BSN: the same youth, the same BSN, in every row.
        let mut bsns = std::collections::HashMap::new();
        let mut numbers = synthetic_bsns();
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut row| {
                row[0] = bsns
                    .entry(row[0].clone())
                    .or_insert_with(|| numbers.next().unwrap())
                    .clone();
                row
            })
            .collect();
        assert!(bsns.values().all(|b| zicht_model::is_bsn(b)));
        let export = write(
            dir.path(),
            "placements-bsn.csv",
            joined(&header, &rows, ",", "\n").as_bytes(),
        );
        // As it is, the export is refused: a youth_id is never a BSN.
        let error = import(&db, &export, ImportOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("looks like a BSN"), "{error}");
        assert!(
            bsns.values().all(|b| !error.contains(b.as_str())),
            "{error}"
        );

        let key = Arc::new(zicht_privacy::PseudonymKey::from_bytes([42; 32]));
        let options = ImportOptions {
            pseudonymise: Some(key.clone()),
            ..ImportOptions::default()
        };
        let stored = import(&db, &export, options.clone()).await.unwrap();
        assert_eq!(stored as usize, rows.len());
        // Every youth keeps one pseudonym, the keyed hash of its BSN; no BSN is stored.
        let youths = db
            .strings("SELECT DISTINCT youth_id FROM placements ORDER BY 1")
            .await;
        let mut expected: Vec<String> = bsns.values().map(|b| key.pseudonym(b)).collect();
        expected.sort();
        assert_eq!(youths, expected);
        let all = db
            .strings("SELECT youth_id || birth_date || origin_region || provider FROM placements")
            .await
            .join("\n");
        assert!(bsns.values().all(|b| !all.contains(b.as_str())));
        if let Some(file) = zicht_store::sqlite_file(&db.url) {
            // Nor in the database file's bytes (or its write-ahead log).
            let mut bytes = std::fs::read(&file).unwrap();
            bytes.extend(std::fs::read(format!("{}-wal", file.display())).unwrap_or_default());
            let text = String::from_utf8_lossy(&bytes);
            assert!(bsns.values().all(|b| !text.contains(b.as_str())));
        }
        // Again, the same pseudonyms: the import is idempotent.
        import(&db, &export, options).await.unwrap();
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM placements").await as usize,
            rows.len()
        );
    }
);
