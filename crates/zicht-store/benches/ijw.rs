//! iJw import against CSV import of the same placements, same run, fresh SQLite databases: a
//! synthetic region generated twice from one config, once as canonical CSV with BSNs (imported
//! with `--pseudonymise`, so both pay for the keyed hash) and once as a gemeente's iJw
//! exchange (`berichten.zip`: a JW301, a JW305 and, once ended, a JW307 per placement). The
//! target (issue 30): iJw within 2x the CSV import. Peak RSS of each import is read from
//! `/proc/self/status` (VmHWM, reset through `/proc/self/clear_refs` before each). Two more
//! lines time the floor under any reader of these messages, on one thread: inflating every
//! entry (one reused inflate state), and tokenizing the XML it holds (quick-xml, no checks).
//!
//! `cargo bench -p zicht-store --bench ijw`; `ZICHT_BENCH_PLACEMENTS` sets the size (default
//! 1,000,000).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use zicht_model::Region;
use zicht_privacy::PseudonymKey;
use zicht_store::import::{import_file, import_messages, ImportOptions, Mapping, RegionCheck};
use zicht_store::Backend;
use zicht_synth::{Config, YouthIds};
use zicht_testkit::TestDb;

/// Peak resident memory since the last reset, in MiB (`None` where /proc does not say).
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size: u64 = std::env::var("ZICHT_BENCH_PLACEMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config = Config {
        placements: Some(size),
        youth_ids: YouthIds::Bsn,
        ..Config::new(Region::AmsterdamAmstelland, 1)
    };
    let csv = tempfile::tempdir().unwrap();
    let exchange = tempfile::tempdir().unwrap();
    zicht_synth::generate_to_dir(&config, csv.path()).unwrap();
    zicht_synth::generate_ijw_to_dir(&config, exchange.path()).unwrap();
    let placements = csv.path().join("placements.csv");
    let batch = exchange.path().join("berichten.zip");
    let mb = |path: &std::path::Path| std::fs::metadata(path).unwrap().len() as f64 / 1e6;
    println!(
        "iJw import benchmark: {size} placements; CSV {:.0} MB, iJw batch {:.0} MB (zip)\n",
        mb(&placements),
        mb(&batch)
    );
    let key = Arc::new(PseudonymKey::from_bytes([7; 32]));
    let options = ImportOptions {
        pseudonymise: Some(key),
        region: RegionCheck::Off,
        ..Default::default()
    };

    let db = TestDb::new(Backend::Sqlite).await;
    reset_peak();
    let started = Instant::now();
    let report = import_file(&db.store, &placements, None, options.clone(), &mut ())
        .await
        .unwrap();
    let csv_time = started.elapsed();
    let csv_peak = peak_mib();
    assert_eq!(report.rows, size);
    drop(db);

    let db = TestDb::new(Backend::Sqlite).await;
    let mapping = Mapping::load(&exchange.path().join("mapping.toml")).unwrap();
    reset_peak();
    let started = Instant::now();
    let report = import_messages(
        &db.store,
        std::slice::from_ref(&batch),
        ImportOptions {
            mapping: Some(Arc::new(mapping)),
            ..options
        },
        &mut (),
    )
    .await
    .unwrap();
    let ijw_time = started.elapsed();
    let ijw_peak = peak_mib();
    assert_eq!(report.rows, size);

    // The floor no reader of these messages gets under: every entry inflated with one reused
    // inflate state, then its XML only tokenized (no names, no checks), on one thread.
    let bytes = std::fs::read(&batch).unwrap();
    let archive = rawzip::ZipArchive::from_slice(&bytes).unwrap();
    let mut entries = archive.entries();
    let mut inflate = flate2::Decompress::new(false);
    let mut messages = Vec::new();
    let started = Instant::now();
    while let Some(record) = entries.next_entry().unwrap() {
        let entry = archive.get_entry(record.wayfinder()).unwrap();
        let mut out = Vec::with_capacity(record.uncompressed_size_hint() as usize);
        inflate.reset(false);
        inflate
            .decompress_vec(entry.data(), &mut out, flate2::FlushDecompress::Finish)
            .unwrap();
        messages.push(out);
    }
    let inflate_time = started.elapsed();
    let started = Instant::now();
    let mut events = 0u64;
    for message in &messages {
        let mut reader = quick_xml::Reader::from_reader(message.as_slice());
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Eof => break,
                _ => events += 1,
            }
        }
    }
    let tokenize_time = started.elapsed();
    let inflated: usize = messages.iter().map(Vec::len).sum();
    drop(messages);

    let peak = |p: Option<f64>| p.map_or("-".to_owned(), |p| format!("{p:.0} MiB"));
    println!(
        "csv: import placements.csv (--pseudonymise)   {:>7.2} s  peak RSS {}",
        csv_time.as_secs_f64(),
        peak(csv_peak)
    );
    println!(
        "ijw: import berichten.zip ({})   {:>7.2} s  peak RSS {}  {:.2}x CSV (target: within 2x)",
        report.counts,
        ijw_time.as_secs_f64(),
        peak(ijw_peak),
        ijw_time.as_secs_f64() / csv_time.as_secs_f64()
    );
    let share = |t: std::time::Duration| t.as_secs_f64() / csv_time.as_secs_f64();
    println!(
        "floor, one thread: inflating the entries alone ({:.0} MB of XML)   {:>7.2} s  {:.2}x CSV",
        inflated as f64 / 1e6,
        inflate_time.as_secs_f64(),
        share(inflate_time)
    );
    println!(
        "floor, one thread: tokenizing that XML alone ({events} events)   {:>7.2} s  {:.2}x CSV",
        tokenize_time.as_secs_f64(),
        share(tokenize_time)
    );
}
