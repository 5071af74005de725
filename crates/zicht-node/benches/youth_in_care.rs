//! A region's own question on its own export, zicht next to DuckDB in the same run: 1,000,000
//! generated placements (Amsterdam-Amstelland, seed 1), `youth_in_care` 2024 by origin region x
//! stay group (each youth once, with their latest placement overlapping 2024).
//!
//! - DuckDB (the `duckdb` Python package, `pip install duckdb`): `read_csv` of the same file
//!   into a table (its load), then the same question in SQL, with the stay groups mapped
//!   from zicht's own code list.
//! - zicht, on SQLite and (when `ZICHT_TEST_POSTGRES_URL` is set) PostgreSQL: `import` of the
//!   file; then the node's query path (the in-memory snapshot, cell-key perturbation of every
//!   cell and the durable release-log write before the answer). Cold, each in a fresh process
//!   that opens the database and answers: as `zicht query --database` does (the owner's exact
//!   path), first right after the import (it reads the rows and stores the snapshot in the
//!   database), then again (it reads the stored snapshot); and perturbed, as a node's first
//!   answer (the stored snapshot has no record keys, so it reads the rows with every youth's
//!   key). Warm (a node that answered before): perturbed (each cell's deviation looked up
//!   through the keyed function of its cell key, and the requester's budgets of distinct
//!   populations checked, a repeat: one read of the populations released) and exact (neither:
//!   the baseline disclosure control is measured against). And the templates' plain SQL in
//!   the database (the path before the engine, exact).
//!
//! Each measured step runs in a fresh child process of this benchmark, so its peak RSS
//! (VmHWM) is its own. Figures are medians; the ratios are against DuckDB in the same run.
//! Both give the same cells: the benchmark checks zicht's exact counts against DuckDB's.
//!
//! `cargo bench -p zicht-node --bench youth_in_care`; `ZICHT_BENCH_PLACEMENTS` sets the size
//! (default 1,000,000), `ZICHT_BENCH_ROUNDS` the warm rounds (default 7).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use zicht_model::{CareType, CodeList, Region};
use zicht_node::{execute, log_outcome, Call, Disclosure};
use zicht_proto::v1 as pb;
use zicht_store::{Backend, CountQuery, CountScope, Store};
use zicht_testkit::TestDb;

const PHASE: &str = "ZICHT_BENCH_PHASE";

/// Cells `origin_region/stay_group -> youths`.
type Cells = BTreeMap<String, i64>;

fn request() -> pb::QueryRequest {
    zicht_testkit::queries::Ask::youth_in_care(2024)
        .by_all(&["origin_region", "stay_group"])
        .wire()
}

/// The DuckDB side, as a Python program: prints `load_s query_s rss_kb` and then one
/// `origin/stay count` line per cell.
fn duckdb_program() -> String {
    let arms: String = CareType::ALL
        .iter()
        .map(|c| format!(" WHEN '{}' THEN '{}'", c.code(), c.stay_group().code()))
        .collect();
    format!(
        r#"
import duckdb, resource, sys, time
con = duckdb.connect()
t = time.perf_counter()
con.execute("{load}", [sys.argv[1]])
load = time.perf_counter() - t
q = """SELECT origin_region, CASE care_type{arms} END AS stay_group, COUNT(*) FROM (
  SELECT origin_region, care_type, ROW_NUMBER() OVER (PARTITION BY youth_id
    ORDER BY start_date DESC, care_type DESC, provider DESC) AS rn
  FROM placements WHERE start_date <= DATE '2024-12-31'
    AND (end_date IS NULL OR end_date >= DATE '2024-01-01')) WHERE rn = 1 GROUP BY 1, 2"""
times = []
for _ in range(7):
    t = time.perf_counter(); rows = con.execute(q).fetchall(); times.append(time.perf_counter() - t)
print(load, sorted(times)[3], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, duckdb.__version__)
for origin, stay, n in rows:
    print(f"{{origin}}/{{stay}} {{n}}")
"#,
        load = zicht_testkit::DUCKDB_LOAD
    )
}

struct Duck {
    load: Duration,
    query: Duration,
    rss_kb: u64,
    version: String,
    cells: Cells,
}

fn duckdb(csv: &Path) -> Option<Duck> {
    let text = zicht_testkit::python(&duckdb_program(), &[csv.as_os_str()])?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next()?.split_whitespace().collect();
    let seconds = |s: &str| Duration::from_secs_f64(s.parse().unwrap());
    Some(Duck {
        load: seconds(head[0]),
        query: seconds(head[1]),
        rss_kb: head[2].parse().unwrap(),
        version: head[3].to_owned(),
        cells: cells(lines),
    })
}

fn cells<'a>(lines: impl Iterator<Item = &'a str>) -> Cells {
    lines
        .filter_map(|l| l.split_once(' '))
        .map(|(key, n)| (key.to_owned(), n.parse().unwrap()))
        .collect()
}

/// This process's peak resident set, in KB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn disclosure() -> Disclosure {
    Disclosure::default()
        .for_region(Some(Region::AmsterdamAmstelland))
        .with_secret(zicht_privacy::RecordKeySecret::from_bytes([7; 32]))
}

/// One answer through the node's path, logged before it is returned: its time and total.
async fn answer(store: &Store, disclosure: &Disclosure, exact: bool) -> (Duration, u64) {
    let query = request();
    let domain = zicht_node::convert::query(&query).unwrap();
    let call = Call {
        store,
        disclosure,
        query: &domain,
        exact,
        requester: "bench",
        person: None,
        today: zicht_node::today(),
    };
    let started = Instant::now();
    let released = execute(&call).await.unwrap();
    let operation = zicht_node::audit::Operation::start("bench", "bench");
    log_outcome(
        store,
        &operation,
        "bench",
        "bench",
        &zicht_node::convert::RequestText::of(&query),
        Ok(&released),
    )
    .await
    .unwrap();
    (started.elapsed(), released.table.total.value)
}

/// The question as a store query (the engine's and the plain SQL's input).
fn count_query() -> CountQuery<'static> {
    static GROUP_BY: [zicht_model::Dimension; 2] = [
        zicht_model::Dimension::OriginRegion,
        zicht_model::Dimension::StayGroup,
    ];
    CountQuery {
        template: zicht_model::Template::YouthInCare,
        scope: CountScope::Period {
            from: zicht_model::parse_date("2024-01-01").unwrap(),
            to: zicht_model::parse_date("2024-12-31").unwrap(),
        },
        filters: &[],
        group_by: &GROUP_BY,
    }
}

/// The exact cells, from the engine without disclosure control (to compare with DuckDB).
async fn exact_cells(store: &Store) -> Cells {
    let rows = store
        .person_counts(&count_query(), None)
        .await
        .unwrap()
        .unwrap();
    rows.iter().map(|r| (r.key.join("/"), r.youths)).collect()
}

/// A child's step. Prints `key value` lines; `cell` lines carry the exact cells.
async fn child(phase: &str, url: &str, csv: &Path, rounds: usize) {
    let started = Instant::now();
    match phase {
        "import" => {
            let store = Store::open(url).await.unwrap();
            zicht_store::import::import_file(&store, csv, None, Default::default(), &mut ())
                .await
                .unwrap();
            println!("import {}", started.elapsed().as_secs_f64());
            store.close().await;
        }
        "owner" => {
            let store = Store::open(url).await.unwrap();
            answer(&store, &disclosure(), true).await;
            println!("cold {}", started.elapsed().as_secs_f64());
        }
        "query" => {
            let store = Store::open(url).await.unwrap();
            let disclosure = disclosure();
            answer(&store, &disclosure, false).await;
            println!("cold {}", started.elapsed().as_secs_f64());
            let (mut perturbed, mut exact, mut sql) = (Vec::new(), Vec::new(), Vec::new());
            let mut total = (0, 0);
            for _ in 0..rounds {
                let (t, n) = answer(&store, &disclosure, false).await;
                perturbed.push(t);
                total.0 = n;
                let (t, n) = answer(&store, &disclosure, true).await;
                exact.push(t);
                total.1 = n;
            }
            for _ in 0..3 {
                sql.push(reference_sql(&store).await);
            }
            for (key, value) in [
                ("perturbed", median(perturbed)),
                ("exact", median(exact)),
                ("sql", median(sql)),
            ] {
                println!("{key} {}", value.as_secs_f64());
            }
            println!("totals {} {}", total.0, total.1);
            for (cell, n) in exact_cells(&store).await {
                println!("cell {cell} {n}");
            }
        }
        other => panic!("unknown phase {other}"),
    }
    println!("rss {}", peak_rss_kb());
}

/// The same question as the templates' plain SQL, run by the database.
async fn reference_sql(store: &Store) -> Duration {
    let started = Instant::now();
    store
        .person_counts_sql(&count_query(), None)
        .await
        .unwrap()
        .unwrap();
    started.elapsed()
}

/// Runs `phase` in a fresh process and gives its `key -> values` lines.
fn run_child(phase: &str, url: &str, csv: &Path) -> BTreeMap<String, Vec<String>> {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(PHASE, phase)
        .env("ZICHT_BENCH_URL", url)
        .env("ZICHT_BENCH_CSV", csv)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{phase}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut values = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let mut parts = line.split_whitespace();
        let Some(key) = parts.next() else { continue };
        let rest: Vec<String> = parts.map(str::to_owned).collect();
        if key == "cell" {
            values.insert(format!("cell {}", rest[0]), vec![rest[1].clone()]);
        } else {
            values.insert(key.to_owned(), rest);
        }
    }
    values
}

fn seconds(values: &BTreeMap<String, Vec<String>>, key: &str) -> Duration {
    Duration::from_secs_f64(values[key][0].parse().unwrap())
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

async fn measure(backend: Backend, csv: &Path, duck: Option<&Duck>) {
    let db = TestDb::new(backend).await;
    let import = run_child("import", &db.url, csv);
    let owner = run_child("owner", &db.url, csv);
    let stored = run_child("owner", &db.url, csv);
    let query = run_child("query", &db.url, csv);
    let (import_t, cold) = (seconds(&import, "import"), seconds(&query, "cold"));
    let (owner_cold, stored_cold) = (seconds(&owner, "cold"), seconds(&stored, "cold"));
    let (perturbed, exact, sql) = (
        seconds(&query, "perturbed"),
        seconds(&query, "exact"),
        seconds(&query, "sql"),
    );
    let rss = |v: &BTreeMap<String, Vec<String>>| v["rss"][0].parse::<u64>().unwrap();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{backend}:");
    let against = |what: Duration, base: Option<Duration>, label: &str| {
        base.map_or(String::new(), |b| {
            format!("  {:.2}x {label}", ratio(what, b))
        })
    };
    println!(
        "  import                      {:>9.2} s  peak RSS {:>7}{}",
        import_t.as_secs_f64(),
        mb(rss(&import)),
        against(import_t, duck.map(|d| d.load), "DuckDB's load")
    );
    println!(
        "  zicht query --database, the first after the import (reads the rows, stores the snapshot) {:.2} s  peak RSS {}{}{}",
        owner_cold.as_secs_f64(),
        mb(rss(&owner)),
        against(owner_cold, duck.map(|d| d.query), "DuckDB's query"),
        against(
            owner_cold,
            duck.map(|d| d.load + d.query),
            "DuckDB's load + query"
        )
    );
    println!(
        "  zicht query --database, any later one (reads the stored snapshot) {:.2} s  peak RSS {}{}",
        stored_cold.as_secs_f64(),
        mb(rss(&stored)),
        against(stored_cold, duck.map(|d| d.query), "DuckDB's query"),
    );
    println!(
        "  a node's first perturbed answer (reads the rows with every youth's record key) {:.2} s  peak RSS {}{}",
        cold.as_secs_f64(),
        mb(rss(&query)),
        against(cold, duck.map(|d| d.query), "DuckDB's query")
    );
    println!(
        "  query, warm, perturbed + logged {:>8.1} ms{}",
        ms(perturbed),
        against(perturbed, duck.map(|d| d.query), "DuckDB's query")
    );
    println!(
        "  query, warm, exact + logged  {:>11.1} ms  (perturbed/exact {:.2}x)",
        ms(exact),
        ratio(perturbed, exact)
    );
    println!(
        "  the templates' plain SQL     {:>11.1} ms  ({:.1}x the warm perturbed path)",
        ms(sql),
        ratio(sql, perturbed)
    );
    let zicht: Cells = query
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("cell ")?.to_owned(), v[0].parse().ok()?)))
        .collect();
    if let Some(duck) = duck {
        assert_eq!(zicht, duck.cells, "zicht's exact cells equal DuckDB's");
        println!("  exact cells equal DuckDB's: {} cells", zicht.len());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = zicht_testkit::env_number("ZICHT_BENCH_ROUNDS", 7) as usize;
    if let Ok(phase) = std::env::var(PHASE) {
        let url = std::env::var("ZICHT_BENCH_URL").unwrap();
        let csv = std::env::var("ZICHT_BENCH_CSV").unwrap();
        child(&phase, &url, Path::new(&csv), rounds).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let size = zicht_testkit::bench_region(dir.path());
    let csv = dir.path().join("placements.csv");
    let bytes = std::fs::metadata(&csv).unwrap().len();
    println!(
        "youth_in_care 2024 by origin_region x stay_group: {size} placements ({:.0} MB CSV), \
         warm figures the median of {rounds} rounds\n",
        bytes as f64 / 1e6
    );
    let duck = duckdb(&csv);
    match &duck {
        Some(d) => println!(
            "duckdb {} (python): load {:.2} s, query {:.1} ms, peak RSS {}",
            d.version,
            d.load.as_secs_f64(),
            d.query.as_secs_f64() * 1e3,
            mb(d.rss_kb)
        ),
        None => println!("duckdb: skipped (python3 -m pip install duckdb); no ratios"),
    }
    measure(Backend::Sqlite, &csv, duck.as_ref()).await;
    if std::env::var(zicht_testkit::POSTGRES_URL_VAR).is_ok() {
        measure(Backend::Postgres, &csv, duck.as_ref()).await;
    } else {
        println!(
            "postgres: skipped (set {})",
            zicht_testkit::POSTGRES_URL_VAR
        );
    }
}
