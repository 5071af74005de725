//! iJw 3.2 messages in: a synthetic region's exchange imports to the same placements and the
//! same counts per template as the CSV of the same region (as far as iJw carries it), the BSN
//! lands nowhere, a second import changes nothing; and hostile or broken input (a DTD,
//! entities, a huge run of text, broken encodings, a truncated batch, another iJw release, a
//! stop without its start) stores nothing and says where.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zicht_model::{CodeList, Dimension, NaiveDate, OutflowDestination, Region, Template};
use zicht_privacy::PseudonymKey;
use zicht_store::import::{
    import_file, import_messages, ImportError, ImportOptions, Mapping, RegionCheck,
};
use zicht_store::{CountQuery, CountScope};
use zicht_synth::{generate_ijw_to_dir, generate_to_dir, synthetic_bsn, Config, YouthIds};
use zicht_testkit::{both_backends, TestDb};

const SEED: u64 = 11;

fn key() -> Arc<PseudonymKey> {
    Arc::new(PseudonymKey::from_bytes([42; 32]))
}

fn options(mapping: Option<&Path>) -> ImportOptions {
    ImportOptions {
        mapping: mapping.map(|m| Arc::new(Mapping::load(m).unwrap())),
        pseudonymise: Some(key()),
        ..Default::default()
    }
}

/// Imports a generated iJw region: its messages, then its other tables.
async fn import_exchange(db: &TestDb, dir: &Path) -> u64 {
    let mapping = dir.join("mapping.toml");
    let report = import_messages(
        &db.store,
        &[dir.join("berichten.zip")],
        options(Some(&mapping)),
        &mut (),
    )
    .await
    .unwrap();
    for name in [
        "capacity.csv",
        "transition18.csv",
        "consents.csv",
        "measures.csv",
    ] {
        import_file(&db.store, &dir.join(name), None, options(None), &mut ())
            .await
            .unwrap();
    }
    report.rows
}

/// Every placement as one line, sorted.
async fn placements(db: &TestDb) -> Vec<String> {
    db.strings(
        "SELECT youth_id || '|' || CAST(birth_date AS TEXT) || '|' || origin_region || '|' \
         || COALESCE(origin_municipality, '') || '|' || provider || '|' \
         || COALESCE(location_municipality, '') || '|' || placement_region || '|' || care_type \
         || '|' || COALESCE(setting, '') || '|' || legal_basis || '|' \
         || CAST(start_date AS TEXT) || '|' || COALESCE(CAST(end_date AS TEXT), '') || '|' \
         || COALESCE(outflow_destination, '') || '|' \
         || COALESCE(CAST(outflow_profile AS TEXT), '') FROM placements ORDER BY 1",
    )
    .await
}

/// The region as CSV with BSNs, its placements carrying what iJw carries: destinations as
/// the reden beëindiging maps them, no outflow profile.
fn carried_csv(dir: &Path, region: Region) {
    let config = Config {
        youth_ids: YouthIds::Bsn,
        ..Config::new(region, SEED)
    };
    generate_to_dir(&config, dir).unwrap();
    let path = dir.join("placements.csv");
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (destination, profile) = (column("outflow_destination"), column("outflow_profile"));
    let mut rows = Vec::new();
    for record in reader.records() {
        let mut row: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        if !row[destination].is_empty() {
            let carried = zicht_synth::ijw::destination_as_carried(
                OutflowDestination::parse(&row[destination]).unwrap(),
            );
            row[destination] = carried.code().to_owned();
        }
        row[profile] = String::new();
        rows.push(row);
    }
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&header).unwrap();
    for row in rows {
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
}

async fn import_csv(db: &TestDb, dir: &Path) {
    for name in zicht_synth::FILE_NAMES {
        import_file(&db.store, &dir.join(name), None, options(None), &mut ())
            .await
            .unwrap();
    }
}

/// Counts per template, grouped by each of its dimensions in turn.
async fn counts(db: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    for &template in Template::ALL.iter().filter(|t| t.is_person_data()) {
        let scope = if template == Template::Transition18 {
            CountScope::Peildatum(day(2024, 7, 1))
        } else {
            CountScope::Period {
                from: day(2021, 1, 1),
                to: day(2025, 12, 31),
            }
        };
        let mut groupings: Vec<Vec<Dimension>> = vec![Vec::new()];
        for &dimension in template.dimensions() {
            if dimension == Dimension::Big5Status {
                groupings.push(vec![Dimension::Big5Domain, dimension]);
            } else {
                groupings.push(vec![dimension]);
            }
        }
        for group_by in groupings {
            let query = CountQuery {
                template,
                scope,
                filters: &[],
                group_by: &group_by,
            };
            let rows = db.store.person_counts(&query, None).await.unwrap();
            out.push(format!("{template:?} {group_by:?}: {rows:?}"));
        }
    }
    out
}

both_backends!(an_exchange_imports_as_its_csv_does, |db| async move {
    let region = Region::Drenthe;
    let exchange = tempfile::tempdir().unwrap();
    generate_ijw_to_dir(&Config::new(region, SEED), exchange.path()).unwrap();
    let stored = import_exchange(&db, exchange.path()).await;
    assert!(stored > 1000, "{stored}");

    let csv = tempfile::tempdir().unwrap();
    carried_csv(csv.path(), region);
    let other = TestDb::new(db.store.backend()).await;
    import_csv(&other, csv.path()).await;

    let (from_messages, from_csv) = (placements(&db).await, placements(&other).await);
    assert_eq!(from_messages.len(), from_csv.len());
    assert_eq!(from_messages, from_csv);
    let (a, b) = (counts(&db).await, counts(&other).await);
    assert!(a.len() > 20);
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a, b);
    }

    // The same messages again change nothing.
    let again = import_exchange(&db, exchange.path()).await;
    assert_eq!(again, stored);
    assert_eq!(placements(&db).await, from_messages);

    // The same messages twice in one import (a batch exported twice) count once.
    let copy = exchange.path().join("berichten-kopie.zip");
    std::fs::copy(exchange.path().join("berichten.zip"), &copy).unwrap();
    let twice = import_messages(
        &db.store,
        &[exchange.path().join("berichten.zip"), copy],
        options(Some(&exchange.path().join("mapping.toml"))),
        &mut (),
    )
    .await
    .unwrap();
    assert_eq!(twice.rows, stored);
    assert_eq!(twice.counts.jw305, 2 * stored);
    assert_eq!(placements(&db).await, from_messages);

    // No BSN anywhere in what was stored.
    let bsns: Vec<String> = (0..200).map(synthetic_bsn).collect();
    let mut ids = Vec::new();
    for table in ["placements", "transition18", "consents", "measures"] {
        ids.extend(db.strings(&format!("SELECT youth_id FROM {table}")).await);
    }
    assert!(ids.len() > 1000);
    for bsn in &bsns {
        assert!(!ids.contains(bsn), "a BSN was stored");
    }
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap();
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let text = String::from_utf8_lossy(&bytes);
                for bsn in &bsns {
                    assert!(!text.contains(bsn.as_str()), "a BSN in {file}");
                }
            }
        }
    }
});

/// One JW305 message, with `body` in its StartProduct and `client` around it.
fn jw305(bsn: &str, begin: &str, extra_head: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
{extra_head}<Bericht xmlns="http://www.istandaarden.nl/ijw/3_2/jw305/schema" xmlns:ijw="http://www.istandaarden.nl/ijw/3_2/basisschema/schema">
  <Header><BerichtCode>438</BerichtCode><BerichtVersie>3</BerichtVersie><BerichtSubversie>2</BerichtSubversie>
    <Afzender>99000001</Afzender><Ontvanger>0106</Ontvanger>
    <BerichtIdentificatie><ijw:Identificatie>1</ijw:Identificatie><ijw:Dagtekening>2025-01-01</ijw:Dagtekening></BerichtIdentificatie>
    <XsdVersie><ijw:BasisschemaXsdVersie>1.0.0</ijw:BasisschemaXsdVersie><ijw:BerichtXsdVersie>1.0.0</ijw:BerichtXsdVersie></XsdVersie></Header>
  <Client><Bsn>{bsn}</Bsn><Geboortedatum><ijw:Datum>2010-02-03</ijw:Datum></Geboortedatum><Geslacht>1</Geslacht>
    <Naam><ijw:Geslachtsnaam><ijw:Achternaam>Jansen</ijw:Achternaam></ijw:Geslachtsnaam></Naam>
    <StartProducten><StartProduct><Product><ijw:Categorie>43</ijw:Categorie><ijw:Code>43R01</ijw:Code></Product>
      <Begindatum>{begin}</Begindatum><StatusAanlevering>1</StatusAanlevering></StartProduct></StartProducten>
  </Client>
</Bericht>
"#
    )
}

const MAPPING: &str = r#"
[providers."99000001"]
name = "Jeugdhulp Assen"
region = "drenthe"
[values.care_type]
"43R01" = "open_residentieel"
"#;

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn try_import(db: &TestDb, dir: &Path, files: &[PathBuf]) -> Result<u64, ImportError> {
    let mapping = write(dir, "mapping.toml", MAPPING);
    import_messages(&db.store, files, options(Some(&mapping)), &mut ())
        .await
        .map(|r| r.rows)
}

async fn stored(db: &TestDb) -> usize {
    placements(db).await.len()
}

both_backends!(
    a_message_without_a_toewijzing_is_a_start_of_free_care,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let bsn = synthetic_bsn(7);
        let file = write(dir.path(), "start.xml", jw305(&bsn, "2024-03-01", ""));
        assert_eq!(try_import(&db, dir.path(), &[file]).await.unwrap(), 1);
        let rows = placements(&db).await;
        assert!(
            rows[0].contains("Assen") && rows[0].contains("vrijwillig"),
            "{rows:?}"
        );
        assert!(!rows[0].contains(&bsn));

        // A byte order mark and no XML declaration: read the same.
        let message = jw305(&synthetic_bsn(8), "2024-03-01", "");
        let (_, rest) = message.split_once('\n').unwrap();
        let file = write(dir.path(), "bom.xml", format!("\u{feff}{rest}"));
        assert_eq!(try_import(&db, dir.path(), &[file]).await.unwrap(), 1);
    }
);

both_backends!(
    hostile_and_broken_messages_store_nothing_and_say_where,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let bsn = synthetic_bsn(3);
        let good = jw305(&bsn, "2024-03-01", "");
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "dtd.xml",
                jw305(
                    &bsn,
                    "2024-03-01",
                    "<!DOCTYPE Bericht [<!ENTITY x \"xx\">]>\n",
                )
                .into_bytes(),
                "DOCTYPE",
            ),
            (
                "external.xml",
                jw305(
                    &bsn,
                    "2024-03-01",
                    "<!DOCTYPE Bericht SYSTEM \"file:///etc/passwd\">\n",
                )
                .into_bytes(),
                "DOCTYPE",
            ),
            (
                "entity.xml",
                good.replace("Jansen", "&x;").into_bytes(),
                "entity reference",
            ),
            (
                "version.xml",
                good.replace("ijw/3_2/jw305", "ijw/3_1/jw305").into_bytes(),
                "iJw 3.1",
            ),
            (
                "latin1.xml",
                good.replace("Jansen", "J\u{e9}")
                    .replace('\u{e9}', "\u{1}")
                    .into_bytes()
                    .into_iter()
                    .map(|b| if b == 1 { 0xE9 } else { b })
                    .collect(),
                "UTF-8",
            ),
            (
                "bsn.xml",
                good.replace(&bsn, "123456789").into_bytes(),
                "elfproef",
            ),
            (
                "truncated.xml",
                good.as_bytes()[..good.len() / 2].to_vec(),
                "truncated",
            ),
            (
                "unknown.xml",
                good.replace(
                    "<Geslacht>1</Geslacht>",
                    "<Geslacht>1</Geslacht><Wie>x</Wie>",
                )
                .into_bytes(),
                "`Wie` is not an element of `Client`",
            ),
        ];
        for (name, bytes, expected) in cases {
            let file = write(dir.path(), name, &bytes);
            let error = try_import(&db, dir.path(), &[file]).await.unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, ImportError::Messages { .. }),
                "{name}: {message}"
            );
            assert!(message.contains(expected), "{name}: {message}");
            assert!(message.contains(&format!("{name}:")), "{name}: {message}");
            for secret in [bsn.as_str(), "2010-02-03", "Jansen"] {
                assert!(!message.contains(secret), "{name}: {message}");
            }
            assert_eq!(stored(&db).await, 0, "{name}");
        }

        // A gigabyte file: a valid start, then a gigabyte without markup (a sparse file); read
        // in bounded memory, it stops at the bound.
        let huge = dir.path().join("huge.xml");
        {
            let mut file = std::fs::File::create(&huge).unwrap();
            file.write_all(&good.as_bytes()[..good.find("Jansen").unwrap()])
                .unwrap();
            file.set_len(1 << 30).unwrap();
        }
        let error = try_import(&db, dir.path(), std::slice::from_ref(&huge))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("larger than 16 MiB"), "{error}");
        std::fs::remove_file(&huge).unwrap();

        // A truncated batch: nothing of it is stored, not even its complete messages.
        let batch = dir.path().join("batch.zip");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&batch).unwrap());
            for i in 0..50 {
                zip.start_file(
                    format!("jw305/{i}.xml"),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                zip.write_all(jw305(&synthetic_bsn(100 + i), "2024-03-01", "").as_bytes())
                    .unwrap();
            }
            zip.finish().unwrap();
        }
        assert_eq!(
            try_import(&db, dir.path(), std::slice::from_ref(&batch))
                .await
                .unwrap(),
            50
        );
        let whole = std::fs::read(&batch).unwrap();
        let other = TestDb::new(db.store.backend()).await;
        let cut = write(dir.path(), "cut.zip", &whole[..whole.len() / 2]);
        let error = try_import(&other, dir.path(), &[cut]).await.unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
        assert_eq!(stored(&other).await, 0);

        // Entries stored without compression import as deflated ones do; one changed byte in
        // an entry fails its checksum, and nothing of the batch is stored.
        let plain = dir.path().join("plain.zip");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&plain).unwrap());
            let stored = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for i in 0..3 {
                zip.start_file(format!("jw305/{i}.xml"), stored).unwrap();
                zip.write_all(jw305(&synthetic_bsn(200 + i), "2024-03-01", "").as_bytes())
                    .unwrap();
            }
            zip.finish().unwrap();
        }
        assert_eq!(
            try_import(&other, dir.path(), std::slice::from_ref(&plain))
                .await
                .unwrap(),
            3
        );
        let mut bytes = std::fs::read(&plain).unwrap();
        let at = bytes
            .windows(b"<Geslacht>".len())
            .rposition(|w| w == b"<Geslacht>")
            .unwrap();
        bytes[at + 1] = b'g';
        let changed = write(dir.path(), "changed.zip", &bytes);
        let fresh = TestDb::new(db.store.backend()).await;
        let error = try_import(&fresh, dir.path(), &[changed])
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("changed.zip!jw305/2.xml"),
            "{error}"
        );
        assert!(error.to_string().contains("checksum"), "{error}");
        assert_eq!(stored(&fresh).await, 0);

        // A batch written as a stream (sizes in data descriptors after each entry, as a
        // system that zips while it exports writes it) imports like any other.
        let mut streamed = Vec::new();
        {
            let mut zip = zip::ZipWriter::new_stream(&mut streamed);
            for i in 0..3 {
                zip.start_file(
                    format!("jw305/{i}.xml"),
                    zip::write::SimpleFileOptions::default(),
                )
                .unwrap();
                zip.write_all(jw305(&synthetic_bsn(300 + i), "2024-03-01", "").as_bytes())
                    .unwrap();
            }
            zip.finish().unwrap();
        }
        let descriptor = [0x50, 0x4b, 0x07, 0x08];
        assert!(streamed.windows(4).any(|w| w == descriptor));
        let streamed = write(dir.path(), "streamed.zip", &streamed);
        assert_eq!(
            try_import(&fresh, dir.path(), &[streamed]).await.unwrap(),
            3
        );

        // Two directory records that point at the same entry (how a zip bomb overlaps its
        // entries): refused, nothing stored.
        let mut bytes = std::fs::read(&plain).unwrap();
        let records: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == [0x50, 0x4b, 0x01, 0x02])
            .map(|(at, _)| at)
            .collect();
        assert_eq!(records.len(), 3);
        let first = records[0] + 42;
        let offset: [u8; 4] = bytes[first..first + 4].try_into().unwrap();
        let last = records[2] + 42;
        bytes[last..last + 4].copy_from_slice(&offset);
        let overlapping = write(dir.path(), "overlapping.zip", &bytes);
        let other = TestDb::new(db.store.backend()).await;
        let error = try_import(&other, dir.path(), &[overlapping])
            .await
            .unwrap_err();
        assert!(error.to_string().contains("overlap"), "{error}");
        assert_eq!(stored(&other).await, 0);
    }
);

/// Writes the entries of `batch` whose name `keep` takes to a new batch at `to`.
fn part_of(batch: &Path, to: &Path, keep: impl Fn(&str) -> bool) {
    let mut source = zip::ZipArchive::new(std::fs::File::open(batch).unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    for i in 0..source.len() {
        let mut entry = source.by_index(i).unwrap();
        if !keep(entry.name()) {
            continue;
        }
        zip.start_file(
            entry.name().to_owned(),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        std::io::copy(&mut entry, &mut zip).unwrap();
    }
    zip.finish().unwrap();
}

both_backends!(a_stop_without_its_start_is_named, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let exchange = tempfile::tempdir().unwrap();
    generate_ijw_to_dir(
        &Config {
            placements: Some(40),
            ..Config::new(Region::Drenthe, SEED)
        },
        exchange.path(),
    )
    .unwrap();
    // Only the JW301 and JW307 messages of the batch.
    let partial = dir.path().join("zonder-start.zip");
    part_of(&exchange.path().join("berichten.zip"), &partial, |name| {
        !name.starts_with("jw305/")
    });
    let error = import_messages(
        &db.store,
        &[partial],
        ImportOptions {
            region: RegionCheck::Off,
            ..options(Some(&exchange.path().join("mapping.toml")))
        },
        &mut (),
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("JW307 stop without the JW305 start"),
        "{message}"
    );
    assert!(message.contains("zonder-start.zip!jw307/"), "{message}");
    // The generated messages hold their client, and so the StopProduct, on line 4.
    assert!(message.contains(".xml:4:"), "{message}");
    assert_eq!(stored(&db).await, 0);
});

// A gemeente exports month by month: the stop of a placement often comes in a later batch
// than its start. Imported in two parts, the exchange stores what it stores in one.
both_backends!(
    a_stop_ends_the_placement_an_earlier_import_stored,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let exchange = tempfile::tempdir().unwrap();
        generate_ijw_to_dir(
            &Config {
                placements: Some(60),
                ..Config::new(Region::Drenthe, SEED)
            },
            exchange.path(),
        )
        .unwrap();
        let batch = exchange.path().join("berichten.zip");
        let starts = dir.path().join("januari.zip");
        part_of(&batch, &starts, |name| !name.starts_with("jw307/"));
        let stops = dir.path().join("maart.zip");
        part_of(&batch, &stops, |name| name.starts_with("jw307/"));
        let import = |files: Vec<PathBuf>| {
            let store = db.store.clone();
            let options = ImportOptions {
                region: RegionCheck::Off,
                ..options(Some(&exchange.path().join("mapping.toml")))
            };
            async move { import_messages(&store, &files, options, &mut ()).await }
        };
        let opened = import(vec![starts]).await.unwrap().rows;
        let open = placements(&db).await;
        assert_eq!(open.len() as u64, opened);
        assert!(open.iter().all(|row| row.ends_with("|||")), "{open:?}");
        let report = import(vec![stops.clone()]).await.unwrap();
        assert!(report.rows > 0 && report.rows < opened, "{}", report.rows);
        let two_parts = placements(&db).await;

        let whole = TestDb::new(db.store.backend()).await;
        import_messages(
            &whole.store,
            &[batch],
            ImportOptions {
                region: RegionCheck::Off,
                ..options(Some(&exchange.path().join("mapping.toml")))
            },
            &mut (),
        )
        .await
        .unwrap();
        assert_eq!(two_parts, placements(&whole).await);
        let ended = two_parts.iter().filter(|row| !row.ends_with("|||")).count();
        assert_eq!(ended as u64, report.rows);

        // The stops again change nothing.
        import(vec![stops.clone()]).await.unwrap();
        assert_eq!(placements(&db).await, two_parts);
        // With --replace the import is to hold every placement: stops without their start
        // are refused, and nothing is replaced.
        let error = import_messages(
            &db.store,
            &[stops],
            ImportOptions {
                region: RegionCheck::Off,
                replace: true,
                ..options(Some(&exchange.path().join("mapping.toml")))
            },
            &mut (),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("--replace"), "{error}");
        assert_eq!(placements(&db).await, two_parts);
    }
);
