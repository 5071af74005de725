//! The `zicht` binary against real files and databases (SQLite and PostgreSQL).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

use zicht_testkit::both_backends;

fn zicht(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args(args)
        .env_remove("ZICHT_DATABASE_URL")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn generate(out: &Path, seed: &str) {
    let output = zicht(&[
        "generate",
        "--region",
        "IJmond",
        "--region",
        "twente",
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn generate_is_deterministic_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    generate(&a, "7");
    generate(&b, "7");
    generate(&c, "8");
    for region in ["ijmond", "twente"] {
        for file in zicht_synth_files() {
            let read = |root: &Path| std::fs::read(root.join(region).join(file)).unwrap();
            assert_eq!(read(&a), read(&b), "{region}/{file}");
            if file == "placements.csv" {
                assert_ne!(read(&a), read(&c), "{region}/{file}");
            }
        }
    }
}

fn zicht_synth_files() -> [&'static str; 4] {
    [
        "placements.csv",
        "capacity.csv",
        "transition18.csv",
        "consents.csv",
    ]
}

both_backends!(import_then_summary, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "3");
    let region = dir.path().join("ijmond");
    let files: Vec<String> = zicht_synth_files()
        .iter()
        .map(|f| region.join(f).display().to_string())
        .collect();
    let mut args = vec!["import", "--database", &db.url];
    args.extend(files.iter().map(String::as_str));
    let output = zicht(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.matches(": imported ").count(), 4, "{stdout}");
    let placements = db.scalar("SELECT COUNT(*) FROM placements").await;
    assert!(
        stdout.contains(&format!("imported {placements} placements rows")),
        "{stdout}"
    );

    let summary = zicht(&["summary", "--database", &db.url]);
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    assert!(text(&summary.stdout).contains(&format!("placements           {placements:>9}")));
});

both_backends!(
    rejected_file_exits_nonzero_names_the_place_and_stores_nothing,
    |db| async move {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("placements.csv");
        std::fs::write(
        &path,
        "youth_id,birth_date,origin_region,origin_municipality,provider,location_municipality,placement_region,care_type,setting,legal_basis,start_date,end_date,outflow_destination,outflow_profile\n\
         SECRETYOUTH1,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,pleegzorg,,ots,2022-01-01,,,\n\
         SECRETYOUTH2,2008-03-01,drenthe,Assen,Yorneo,Assen,drenthe,pleegzrg,,ots,2022-01-01,,,\n",
    )
    .unwrap();
        let output = zicht(&["import", "--database", &db.url, path.to_str().unwrap()]);
        assert!(!output.status.success());
        let stderr = text(&output.stderr);
        let expected = format!(
            "{}:3:8: care_type: unknown care_type code; closest valid code is `pleegzorg`",
            path.display()
        );
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains("1 of 1 file(s) not imported"), "{stderr}");
        assert!(!stderr.contains("SECRETYOUTH"), "{stderr}");
        assert_eq!(db.scalar("SELECT COUNT(*) FROM placements").await, 0);
    }
);

#[test]
fn unknown_table_and_bad_database_url_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.csv");
    std::fs::write(&path, "a,b\n").unwrap();
    let database = dir.path().join("r.db");
    let output = zicht(&[
        "import",
        "--database",
        database.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("cannot tell the table from the file name"));

    let output = zicht(&["summary", "--database", "mysql://user:hunter2@127.0.0.1/x"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("database URL must start with sqlite:, postgres:"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn unknown_region_suggests_the_closest() {
    let output = zicht(&["generate", "--region", "Frieslnd"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("closest valid code is `friesland`"));
}

/// Generates Twente's files (`seed`) in `dir` and imports them into `dir/twente.db`.
fn twente_database(dir: &Path, seed: &str) -> String {
    generate(dir, seed);
    let database = dir.join("twente.db").display().to_string();
    let files: Vec<String> = zicht_synth_files()
        .iter()
        .map(|f| dir.join("twente").join(f).display().to_string())
        .collect();
    let mut import = vec!["import", "--database", database.as_str()];
    import.extend(files.iter().map(String::as_str));
    assert!(zicht(&import).status.success());
    database
}

#[test]
fn query_prints_protected_results_as_table_json_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let database = twente_database(dir.path(), "3");
    let database = database.as_str();

    let query_output = |format: &str| {
        let output = zicht(&[
            "query",
            "youth_in_care",
            "--database",
            database,
            "--region",
            "twente",
            "--purpose",
            "bovenregionale-sturing",
            "--period",
            "2024",
            "--by",
            "origin_region",
            "--by",
            "stay_group",
            "--format",
            format,
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        output
    };
    let query = |format: &str| text(&query_output(format).stdout);
    let table = query("table");
    assert!(
        table.starts_with("youth_in_care (v1)\norigin_region  stay_group"),
        "{table}"
    );
    // The region's own database: its data team owns it, so counts are exact.
    assert!(
        table.contains("\nrules: exact counts: for the data's owner"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&query("json")).unwrap();
    let total = json["total"]["value"].as_u64().unwrap();
    assert!(table.contains(&format!("\ntotal: {total}\n")), "{table}");
    assert_eq!(json["rows"].as_array().unwrap().len(), 8);
    let csv_output = query_output("csv");
    assert!(text(&csv_output.stderr).contains("rules: exact counts"));
    let csv = text(&csv_output.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("origin_region,stay_group,youths,max_deviation")
    );
    assert_eq!(lines.count(), 8);
    // For tools: the count is a number, its bound a column of its own (0: exact).
    let mut sum = 0;
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        sum += fields[2].parse::<u64>().unwrap();
        assert_eq!(fields[3], "0", "{line}");
    }
    assert_eq!(sum, total, "exact cells add up to the total");

    // An empty population is an empty answer for its owner, not a refusal.
    let empty = zicht(&[
        "query",
        "transition18",
        "--database",
        database,
        "--purpose",
        "18plus-monitoring",
        "--peildatum",
        "1990-01-01",
    ]);
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert!(text(&empty.stdout).contains("\ntotal: 0\n"));
    let wrong = zicht(&[
        "query",
        "flows",
        "--database",
        database,
        "--purpose",
        "bovenregionale-sturing",
        "--period",
        "2024",
        "--by",
        "stay_group",
    ]);
    assert!(text(&wrong.stderr).contains("--by stay_group: flows cannot use stay_group; it allows flow_kind, care_type, origin_region, outflow_destination, outflow_profile"), "{}", text(&wrong.stderr));

    let settings = zicht(&["privacy", "settings"]);
    assert!(settings.status.success());
    let shown = text(&settings.stdout);
    assert!(
        shown.contains("max_deviation (D)                       4          4\n"),
        "{shown}"
    );
    assert!(
        shown.contains("period_granularity                  month      month\n"),
        "{shown}"
    );

    // The perturbation table and its checks; parameters that cannot be unbiased are named.
    let ptable = zicht(&[
        "privacy",
        "ptable",
        "--max-deviation",
        "3",
        "--variance",
        "2",
        "--js",
        "2",
    ]);
    assert!(ptable.status.success());
    let shown = text(&ptable.stdout);
    assert!(
        shown.starts_with(
            "i,j,v,p,p_int_lb,p_int_ub\n0,0,0,1.0000000000,0.0000000000,1.0000000000\n"
        ),
        "{shown}"
    );
    assert!(shown.contains("a node accepts this table"), "{shown}");
    let out = dir.path().join("ptable.csv");
    let written = zicht(&[
        "privacy",
        "ptable",
        "--max-deviation",
        "3",
        "--variance",
        "2",
        "--js",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(written.status.success());
    let shown = text(&written.stdout);
    assert!(
        shown.contains("problem: row 1: every allowed target lies on one side"),
        "{shown}"
    );
    assert!(shown.contains("a node refuses this table"), "{shown}");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("i,j,v,p"));
}

#[test]
fn a_demo_runs_logs_are_structured_and_hold_no_youth_data() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let output = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args([
            "demo",
            "--once",
            "--seed",
            "3",
            "--log-format",
            "json",
            "--dir",
        ])
        .arg(&demo)
        .env("RUST_LOG", "info,zicht_node=debug,zicht_store=debug")
        .env_remove("ZICHT_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let logs = text(&output.stderr);
    let mut listening = 0;
    let mut requests = 0;
    for line in logs.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        match event["message"].as_str() {
            Some(m) if m.starts_with("listening") => listening += 1,
            Some("request") => requests += 1,
            _ => {}
        }
    }
    assert_eq!(listening, 17, "one line per node started\n{logs}");
    assert!(requests > 20, "{requests} request events");
    // No youth id, birth date or municipality of origin of any youth appears in a log line.
    let mut personal = std::collections::HashSet::new();
    for region in std::fs::read_dir(&demo).unwrap() {
        let path = region.unwrap().path().join("placements.csv");
        let Ok(csv) = std::fs::read_to_string(&path) else {
            continue;
        };
        for row in csv.lines().skip(1) {
            let fields: Vec<&str> = row.split(',').collect();
            personal.insert(fields[0].to_owned());
            personal.insert(fields[1].to_owned());
        }
    }
    assert!(personal.len() > 1000, "the demo's placements were read");
    for token in logs.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        assert!(!personal.contains(token), "youth data in the logs: {token}");
    }
}

// Usage mistakes are caught before anything is asked (exit 2, a message that says what to
// write), every period form the messages suggest is taken, a code with a `+` is a code, and a
// completion script piped into `head` ends quietly.
#[test]
fn usage_mistakes_exit_2_and_every_suggested_form_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let database = twente_database(dir.path(), "5");
    let database = database.as_str();
    let ask = |template: &str, extra: &[&str]| {
        let mut args = vec![
            "query",
            template,
            "--database",
            database,
            "--purpose",
            "bovenregionale-sturing",
        ];
        args.extend(extra);
        zicht(&args)
    };
    for (template, extra, says) in [
        (
            "youth_in_care",
            &["--peildatum", "2024-06-30"][..],
            "youth_in_care is counted over a period: give --period",
        ),
        (
            "capacity",
            &["--period", "2024"][..],
            "capacity is counted on a reference date: give --peildatum",
        ),
        (
            "youth_in_care",
            &["--period", "2024", "--by", "care_type", "--by", "care_type"][..],
            "--by care_type: given twice",
        ),
        (
            "youth_in_care",
            &["--period", "2024-06..2024-01"][..],
            "--period: the period ends before it starts",
        ),
        (
            "youth_in_care",
            &["--period", "2024-Q5"][..],
            "--period: give a year (2025), a half year (2025-H1)",
        ),
        (
            "youth_in_care",
            &["--period", "2024", "--filter", "age_band=16-18"][..],
            "valid codes are 0-5, 6-11, 12-15, 16-17, 18+",
        ),
    ] {
        let output = ask(template, extra);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{extra:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(says),
            "{extra:?}: {}",
            text(&output.stderr)
        );
    }
    for period in ["2024", "2024-H1", "2024-Q2", "2024-03", "2024-01..2024-06"] {
        let output = ask(
            "youth_in_care",
            &[
                "--period",
                period,
                "--filter",
                "age_band=18+",
                "--by",
                "stay_group",
            ],
        );
        assert!(
            output.status.success(),
            "{period}: {}",
            text(&output.stderr)
        );
    }

    // Flows leave out the cells that can never hold anyone (instroom has no destination),
    // unless --zeros.
    let flows = |extra: &[&str]| {
        let mut args = vec![
            "--period",
            "2024",
            "--by",
            "flow_kind",
            "--by",
            "outflow_destination",
        ];
        args.extend(extra);
        let output = ask("flows", &args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
    };
    let lean = flows(&[]);
    assert!(lean.contains("\ninstroom       nvt"), "{lean}");
    assert!(!lean.contains("\ninstroom       thuis"), "{lean}");
    assert!(!lean.contains("\nuitstroom      nvt"), "{lean}");
    assert!(lean.contains("left out (instroom has no outflow destination); --zeros shows them"));
    let full = flows(&["--zeros"]);
    assert!(full.contains("\ninstroom       thuis"), "{full}");
    assert!(full.lines().count() > lean.lines().count());

    // `zicht completions bash | head -1`: the reader stops early, zicht ends quietly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("panicked"));
}

#[test]
fn an_ijw_exchange_goes_in_through_the_cli_and_no_bsn_reaches_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synthetic");
    let output = zicht(&[
        "generate",
        "--region",
        "drenthe",
        "--format",
        "ijw",
        "--placements",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let region = out.join("drenthe");
    let batch = region.join("berichten.zip");
    let mapping = region.join("mapping.toml");
    let key = dir.path().join("drenthe.key");
    let database = dir.path().join("drenthe.db");
    let import = |files: &[&Path], extra: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_zicht"));
        command
            .args(["import", "--database"])
            .arg(&database)
            .arg("--pseudonym-key")
            .arg(&key)
            .arg("--mapping")
            .arg(&mapping)
            .args(extra)
            .args(files)
            .env("RUST_LOG", "debug")
            .env_remove("ZICHT_DATABASE_URL");
        command.output().unwrap()
    };

    // Without the key the messages are refused before anything is created.
    let refused = zicht(&[
        "import",
        "--database",
        database.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
        batch.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("pseudonymisation key"));
    assert!(!database.exists());

    let first = import(&[&batch], &[]);
    let csvs: Vec<std::path::PathBuf> = [
        "capacity.csv",
        "transition18.csv",
        "consents.csv",
        "measures.csv",
    ]
    .iter()
    .map(|name| region.join(name))
    .collect();
    let csv_refs: Vec<&Path> = csvs.iter().map(|p| p.as_path()).collect();
    let tables = import(&csv_refs, &["--pseudonymise"]);
    // A broken message: its BSN must not show in the error.
    let broken = dir.path().join("broken.xml");
    let bsn = zicht_synth::synthetic_bsn(0);
    std::fs::write(
        &broken,
        format!(
            "<Bericht xmlns=\"http://www.istandaarden.nl/ijw/3_2/jw305/schema\"><Header><BerichtCode>438</BerichtCode></Header><Client><Bsn>{bsn}</Bsn><Bsn>{bsn}</Bsn></Client></Bericht>"
        ),
    )
    .unwrap();
    let failed = import(&[&broken], &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(tables.status.success(), "{}", text(&tables.stderr));
    assert!(!failed.status.success());
    let said = text(&first.stdout);
    assert!(
        said.contains("imported 300 placements from iJw messages"),
        "{said}"
    );
    assert!(
        text(&failed.stderr).contains("broken.xml:1:"),
        "{}",
        text(&failed.stderr)
    );
    let everything = [&first, &tables, &failed]
        .iter()
        .map(|o| text(&o.stdout) + &text(&o.stderr))
        .collect::<String>();
    for index in 0..300 {
        let bsn = zicht_synth::synthetic_bsn(index);
        assert!(!everything.contains(&bsn), "a BSN in the output");
    }
    let stored = std::fs::read(&database).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&bsn));
}
