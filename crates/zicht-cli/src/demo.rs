//! `zicht demo`: synthetic data for all 14 regions, each imported into its own embedded
//! database, and a summary per region and per network.
//!
//! Today this is the data layer of the federation; nodes, mTLS and federated queries join it as
//! they are built.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use zicht_model::{CodeList, Network, Region};
use zicht_store::import::{import_file, ImportOptions};
use zicht_store::{Store, Summary};

/// Runs the demo in `dir`.
pub async fn run(dir: &Path, seed: u64) -> anyhow::Result<()> {
    println!(
        "zicht demo: one embedded SQLite database per jeugdhulpregio, synthetic data (seed {seed})"
    );
    println!("folder: {}\n", dir.display());
    let started = Instant::now();
    let mut summaries = Vec::new();
    let mut rows_imported = 0;
    for &region in Region::ALL {
        let region_dir = dir.join(region.code());
        let config = zicht_synth::Config::new(region, seed);
        let generate_dir = region_dir.clone();
        tokio::task::spawn_blocking(move || zicht_synth::generate_to_dir(&config, &generate_dir))
            .await
            .context("generate synthetic data")?
            .with_context(|| format!("write {}", region_dir.display()))?;
        let database = region_dir.join("region.db");
        let store = Store::open(&database.display().to_string())
            .await
            .with_context(|| format!("open {}", database.display()))?;
        // A re-run replaces what the last one imported, so the demo always shows the same.
        for name in zicht_synth::FILE_NAMES {
            let report = import_file(
                &store,
                &region_dir.join(name),
                None,
                ImportOptions { replace: true },
                &mut (),
            )
            .await?;
            rows_imported += report.rows;
        }
        summaries.push((region, store.summary().await?));
        store.close().await;
    }
    let elapsed = started.elapsed();

    print_regions(&summaries);
    print_networks(&summaries);
    println!(
        "\ngenerated and imported {rows_imported} rows into {} databases in {:.1}s",
        summaries.len(),
        elapsed.as_secs_f64()
    );
    let drenthe = dir.join("drenthe").join("region.db");
    println!(
        "look inside one:  zicht summary --database {}",
        drenthe.display()
    );
    println!(
        "ask it under disclosure control:  zicht query youth_in_care --database {} --region drenthe --purpose bovenregionale-sturing --period 2024 --by origin_region --by stay_group",
        drenthe.display()
    );
    println!("not yet part of the demo: nodes over mutual TLS and federated queries");
    Ok(())
}

fn row(name: &str, landsdeel: &str, s: &Summary) {
    let rate = if s.places > 0 {
        format!("{:.0}%", 100.0 * s.occupied as f64 / s.places as f64)
    } else {
        "-".to_owned()
    };
    println!(
        "{name:<22} {landsdeel:<15} {:>7} {:>10} {:>8} {:>7} {:>9} {:>6} {:>9} {:>6}",
        s.youths,
        s.placements,
        s.ongoing,
        s.transition18_checks,
        s.consents,
        s.places,
        s.occupied,
        rate
    );
}

fn add(total: &mut Summary, s: &Summary) {
    total.placements += s.placements;
    total.youths += s.youths;
    total.ongoing += s.ongoing;
    total.capacity_rows += s.capacity_rows;
    total.places += s.places;
    total.occupied += s.occupied;
    total.transition18_checks += s.transition18_checks;
    total.consents += s.consents;
}

fn print_regions(summaries: &[(Region, Summary)]) {
    println!(
        "{:<22} {:<15} {:>7} {:>10} {:>8} {:>7} {:>9} {:>6} {:>9} {:>6}",
        "region",
        "landsdeel",
        "youths",
        "placements",
        "ongoing",
        "16+chk",
        "consents",
        "places",
        "occupied",
        "bezet%"
    );
    let mut total = Summary::default();
    for (region, summary) in summaries {
        row(region.name_nl(), region.landsdeel().name(), summary);
        add(&mut total, summary);
    }
    row("total", "", &total);
}

fn print_networks(summaries: &[(Region, Summary)]) {
    let today = zicht_model::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default();
    println!(
        "\nnetworks on {today} (members by time-bound membership; youths are per region, summed)"
    );
    for &network in Network::ALL {
        let members: Vec<Region> = network.members_on(today).collect();
        let mut total = Summary::default();
        for (_, summary) in summaries.iter().filter(|(r, _)| members.contains(r)) {
            add(&mut total, summary);
        }
        row(
            network.code(),
            &format!("{} regions", members.len()),
            &total,
        );
    }
}
