//! Verifying an audit chain of 1,000,000 processing records (realistic bodies), next to a
//! baseline measured in the same run: SHA-256 over the same bytes with nothing else.
//!
//! `cargo bench -p zicht-audit --bench verify`; `ZICHT_BENCH_ENTRIES` changes the size.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use sha2::{Digest, Sha256};
use zicht_audit::{body, chain_hash, verify, Entry, ProcessingRecord, GENESIS};

fn main() {
    let n: i64 = std::env::var("ZICHT_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut entries = Vec::with_capacity(n as usize);
    let mut prev = GENESIS.to_owned();
    for seq in 1..=n {
        let record = ProcessingRecord {
            trace_id: format!("{seq:032x}"),
            operation_id: format!("{seq:016x}"),
            parent_operation_id: Some(format!("{:016x}", seq - 1)),
            status_code: "OK".to_owned(),
            name: "zicht.v1.Inway/Query".to_owned(),
            start_time: 1_790_000_000_000 + seq,
            end_time: 1_790_000_000_003 + seq,
            foreign_operation: None,
            resource: "urn:zicht:region:drenthe".to_owned(),
            processing_activity_id: "urn:zicht:purpose:bovenregionale-sturing".to_owned(),
            template: "youth_in_care".to_owned(),
            template_version: 1,
            parameter_hash: format!("{seq:064x}"),
            population: Some(1838),
            decisions:
                "released; cell-key perturbation (D=3 V=2 js=2); population-floor 5 (published total)"
                    .to_owned(),
            result_hash: Some(format!("{seq:064x}")),
            data_subject_id: None,
            consented: None,
        };
        let body = body(&record);
        let hash = chain_hash(&prev, &body);
        entries.push(Entry {
            seq,
            body,
            prev_hash: prev,
            hash: hash.clone(),
        });
        prev = hash;
    }
    let bytes: usize = entries.iter().map(|e| e.body.len() + 64).sum();

    let started = Instant::now();
    let mut digest = [0u8; 32];
    for entry in &entries {
        let mut hasher = Sha256::new();
        hasher.update(entry.prev_hash.as_bytes());
        hasher.update(entry.body.as_bytes());
        digest = hasher.finalize().into();
    }
    let baseline = started.elapsed();
    std::hint::black_box(digest);

    let started = Instant::now();
    let verified = verify(entries).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(verified.entries, n as u64);
    println!(
        "verify {n} entries ({:.0} MB): {:.3} s; SHA-256 alone over the same bytes: {:.3} s; ratio {:.2}x",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        baseline.as_secs_f64(),
        elapsed.as_secs_f64() / baseline.as_secs_f64()
    );
}
