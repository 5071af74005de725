//! Every mistake a data team makes gets a clear answer, never a silent wrong one: the real
//! `zicht` binary, each slip of issue 16 with its exact message, its exit code (docs/cli.md),
//! and what it left on disk (nothing, unless it says it created something).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use zicht_model::{NodeName, Region};
use zicht_testkit::both_backends;
use zicht_testkit::federation::{open_policy, Behaviour, Federation};

/// `zicht ARGS` in `dir`, with no database from the environment and no log lines (stderr then
/// holds exactly the answer).
fn zicht(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args(args)
        .current_dir(dir)
        .env_remove("ZICHT_DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

/// [`zicht`] from async code (a test federation runs on the same runtime); the future owns
/// its arguments.
fn zicht_async(dir: &Path, args: &[&str]) -> impl std::future::Future<Output = Output> {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    async move {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            zicht(&dir, &args)
        })
        .await
        .unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code and standard error of a command that failed.
fn failure(output: &Output) -> (i32, String) {
    (output.status.code().unwrap(), stderr(output))
}

/// Every file under `dir` with its contents: what a command left on disk.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Generated data of Drenthe (seed 5) and a SQLite database it was imported into, made once
/// for every test of this file; tests that query copy the database.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let made = zicht(
                dir.path(),
                &[
                    "generate", "--region", "drenthe", "--seed", "5", "--out", "data",
                ],
            );
            assert!(made.status.success(), "{}", stderr(&made));
            let mut args = vec!["import", "--database", "drenthe.db"];
            let files = Fixture::files_in(dir.path());
            args.extend(files.iter().map(String::as_str));
            let imported = zicht(dir.path(), &args);
            assert!(imported.status.success(), "{}", stderr(&imported));
            Fixture { dir }
        })
    }

    fn files_in(dir: &Path) -> Vec<String> {
        ["placements", "capacity", "transition18", "consents"]
            .iter()
            .map(|t| {
                dir.join(format!("data/drenthe/{t}.csv"))
                    .display()
                    .to_string()
            })
            .collect()
    }

    fn file(&self, table: &str) -> PathBuf {
        self.dir.path().join(format!("data/drenthe/{table}.csv"))
    }

    /// A copy of the imported database in `dir`, as `drenthe.db`.
    fn database_in(&self, dir: &Path) -> String {
        let copy = dir.join("drenthe.db");
        std::fs::copy(self.dir.path().join("drenthe.db"), &copy).unwrap();
        copy.display().to_string()
    }
}

/// The arguments of `zicht query TEMPLATE` asked of `target` (`--database DB`, `--client
/// PROFILE`, ...) for `purpose` in `scope` (`--period 2024`), then `extra`.
fn question<'a>(
    template: &'a str,
    target: [&'a str; 2],
    purpose: &'a str,
    scope: [&'a str; 2],
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "query",
        template,
        target[0],
        target[1],
        "--purpose",
        purpose,
    ];
    args.extend(scope);
    args.extend(extra);
    args
}

const YEAR: [&str; 2] = ["--period", "2024"];

/// `zicht query youth_in_care` of 2024 on `database` as Drenthe's data team, with `extra`.
fn youth_in_care(dir: &Path, database: &str, extra: &[&str]) -> Output {
    let mut all = vec!["--region", "drenthe", "--format", "json"];
    all.extend(extra);
    let args = question(
        "youth_in_care",
        ["--database", database],
        "bovenregionale-sturing",
        YEAR,
        &all,
    );
    zicht(dir, &args)
}

/// The rows of a JSON answer as (key, count), and its total.
fn counts(output: &Output) -> (Vec<(String, u64)>, u64) {
    assert!(output.status.success(), "{}", stderr(output));
    let json: serde_json::Value = serde_json::from_str(&stdout(output)).unwrap();
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let key = row["key"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>()
                .join("/");
            (key, row["count"]["value"].as_u64().unwrap())
        })
        .collect();
    (rows, json["total"]["value"].as_u64().unwrap())
}

// 1. `DIM!=a,b` is a real negation, on both backends; any other operator or a stray
//    character is a usage error naming the dimension.
both_backends!(a_negated_filter_leaves_the_values_out, |db| async move {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture::get();
    let mut args = vec!["import", "--database", &db.url];
    let files = Fixture::files_in(fixture.dir.path());
    args.extend(files.iter().map(String::as_str));
    assert!(zicht(dir.path(), &args).status.success());

    // Exact counts (the region's own database): the kept and the left-out add up.
    let by = ["--by", "placement_region"];
    let (all, total) = counts(&youth_in_care(dir.path(), &db.url, &by));
    let keep = ["--filter", "placement_region=drenthe,groningen"];
    let (_, kept) = counts(&youth_in_care(dir.path(), &db.url, &keep));
    let leave = ["--filter", "placement_region!=drenthe,groningen"];
    let (_, left) = counts(&youth_in_care(dir.path(), &db.url, &leave));
    assert!(kept > 0 && left > 0, "{kept} {left}");
    assert_eq!(kept + left, total);
    let expected: u64 = all
        .iter()
        .filter(|(key, _)| key != "drenthe" && key != "groningen")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(left, expected, "the other regions' cells, unknown included");
    // Grouped by the negated dimension, the left-out values are not rows.
    let (rows, _) = counts(&youth_in_care(
        dir.path(),
        &db.url,
        &[
            "--filter",
            "placement_region!=drenthe",
            "--by",
            "placement_region",
        ],
    ));
    assert!(rows.iter().all(|(key, _)| key != "drenthe"), "{rows:?}");
});

#[test]
fn other_operators_and_stray_characters_are_errors_naming_the_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let database = Fixture::get().database_in(dir.path());
    let before = snapshot(dir.path());
    let syntax = "error: --filter placement_region: write placement_region=VALUE[,VALUE...] to \
                  keep those values, or placement_region!=VALUE[,VALUE...] to leave them out\n";
    for (filter, message) in [
        ("placement_region<>drenthe", syntax.to_owned()),
        ("placement_region==drenthe", syntax.to_owned()),
        ("placement_region~drenthe", syntax.to_owned()),
        ("placement_region", syntax.to_owned()),
        (
            "placement_region=drenthe;",
            "error: --filter placement_region: a value has a stray `;`; separate values with \
             commas only\n"
                .to_owned(),
        ),
        (
            "placement_region;=drenthe",
            "error: --filter `placement_region;`: a dimension name has letters, digits and _ \
             only\n"
                .to_owned(),
        ),
        (
            "placement_region=drenthe,",
            "error: --filter placement_region: an empty value\n".to_owned(),
        ),
    ] {
        let output = youth_in_care(dir.path(), &database, &["--filter", filter]);
        assert_eq!(failure(&output), (2, message), "{filter}");
        assert_eq!(stdout(&output), "");
    }
    assert!(
        snapshot(dir.path()) == before,
        "a usage error changed nothing"
    );
}

// 2. A read never creates a database; import and migrate do, and say so.
#[test]
fn reads_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = |path: &str| {
        format!(
            "error: no database at {path} (create it with zicht migrate --database {path} or \
             zicht import --database {path})\n"
        )
    };
    let query = question(
        "youth_in_care",
        ["--database", "drenthee.db"],
        "bovenregionale-sturing",
        YEAR,
        &[],
    );
    let reads: [&[&str]; 5] = [
        &query,
        &["summary", "--database", "drenthee.db"],
        &["summary", "--database", "sqlite://drenthee.db"],
        &[
            "audit",
            "verify",
            "--database",
            "sqlite:drenthee.db?mode=rwc",
        ],
        &["consent", "revoke", "C0000001", "--database", "drenthee.db"],
    ];
    for args in reads {
        let output = zicht(dir.path(), args);
        assert_eq!(failure(&output), (1, missing("drenthee.db")), "{args:?}");
    }
    assert!(snapshot(dir.path()).is_empty(), "no file was created");

    // A node with a mistyped database in its config refuses to start and creates nothing.
    let made = zicht(dir.path(), &["pki", "dev-federation", "--dir", "certs/dev"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    for file in [
        "nodes/drenthe.toml",
        "policies/drenthe.toml",
        "federation.toml",
    ] {
        let to = dir.path().join("deploy").join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(deploy.join(file), to).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let before = snapshot(dir.path());
    let output = zicht(
        dir.path(),
        &["node", "--config", "deploy/nodes/drenthe.toml"],
    );
    assert_eq!(
        failure(&output),
        (1, missing("deploy/nodes/../../data/drenthe.db"))
    );
    assert!(snapshot(dir.path()) == before, "the node created nothing");
    // migrate --config creates it (the deployments run it before the node).
    let output = zicht(
        dir.path(),
        &["migrate", "--config", "deploy/nodes/drenthe.toml"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("data/drenthe.db").exists());
    // ZICHT_DATABASE_URL overrides the config's database (as the deployments set it), and
    // does not count as a second --database.
    let output = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args(["migrate", "--config", "deploy/nodes/drenthe.toml"])
        .current_dir(dir.path())
        .env("ZICHT_DATABASE_URL", dir.path().join("data/from-env.db"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("data/from-env.db").exists());
    // A database in a folder that does not exist is named, and nothing is made.
    let output = zicht(dir.path(), &["migrate", "--database", "nofolder/x.db"]);
    assert_eq!(
        failure(&output),
        (
            1,
            "error: cannot create the database nofolder/x.db: there is no folder nofolder\n"
                .to_owned()
        )
    );

    // import needs a database named: no ./zicht.db appears.
    let placements = Fixture::get().file("placements").display().to_string();
    let output = zicht(dir.path(), &["import", &placements]);
    let (code, message) = failure(&output);
    assert_eq!(code, 2);
    assert!(
        message.contains("give --database (or ZICHT_DATABASE_URL) or --config"),
        "{message}"
    );
    assert!(!dir.path().join("zicht.db").exists());
    // Named, it is created, and import says so.
    let output = zicht(dir.path(), &["import", "--database", "new.db", &placements]);
    assert!(output.status.success(), "{}", stderr(&output));
    let version = stdout(&output)
        .lines()
        .next()
        .unwrap()
        .strip_prefix("created new.db with the zicht schema (version ")
        .unwrap()
        .trim_end_matches(')')
        .parse::<u32>()
        .unwrap();
    assert!(version >= 9);

    // The database migrate made holds no placements: the node does not answer with zeros.
    let output = zicht(
        dir.path(),
        &["node", "--config", "deploy/nodes/drenthe.toml"],
    );
    let (code, message) = failure(&output);
    assert_eq!(code, 1);
    assert!(
        message.contains("the database holds no placements") && message.contains("start_empty"),
        "{message}"
    );
    // A drop folder goes in with the node's config; each file moves aside as it is read.
    let drop = dir.path().join("drop");
    std::fs::create_dir_all(&drop).unwrap();
    for table in ["placements", "capacity"] {
        std::fs::copy(
            Fixture::get().file(table),
            drop.join(format!("{table}.csv")),
        )
        .unwrap();
    }
    std::fs::write(drop.join("transition18.csv"), "not,a,header\n").unwrap();
    std::fs::write(drop.join("export.csv"), "a,b\n").unwrap();
    let output = zicht(
        dir.path(),
        &[
            "import",
            "--config",
            "deploy/nodes/drenthe.toml",
            "--folder",
            "drop",
            "--archive",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("imported") && stderr(&output).contains("transition18.csv"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let moved = |outcome: &str| -> Vec<String> {
        let Ok(stamps) = std::fs::read_dir(drop.join(outcome)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = stamps
            .flat_map(|stamp| std::fs::read_dir(stamp.unwrap().path()).unwrap())
            .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(moved("imported"), ["capacity.csv", "placements.csv"]);
    assert_eq!(moved("rejected"), ["export.csv", "transition18.csv"]);
    assert!(
        stderr(&output).contains("2 of 4 file(s) not imported"),
        "{}",
        stderr(&output)
    );
    assert!(!drop.join("placements.csv").exists());
    // Nothing left: the next run imports nothing.
    let output = zicht(
        dir.path(),
        &[
            "import",
            "--config",
            "deploy/nodes/drenthe.toml",
            "--folder",
            "drop",
        ],
    );
    assert!(
        stdout(&output).contains("nothing to import"),
        "{}",
        stdout(&output)
    );
    // Another region's database is refused by the node (before it serves anything).
    let other = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args(["node", "--config", "deploy/nodes/drenthe.toml"])
        .current_dir(dir.path())
        .env("ZICHT_NODE", "friesland")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let (_, message) = failure(&other);
    assert!(
        message.contains("the database holds placements of drenthe, and this node is friesland"),
        "{message}"
    );
}

// 3, 9, 11, 12 and --require-all: a small federation on loopback with the regions' own
// policies from deploy/policies, asked through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_answers_explain_themselves() {
    let policy = |code: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/policies")
            .join(format!("{code}.toml"));
        Behaviour::Serve(std::fs::read_to_string(path).unwrap())
    };
    let nodes = [
        (NodeName::Region(Region::Drenthe), policy("drenthe")),
        (NodeName::Region(Region::Friesland), policy("friesland")),
        (NodeName::Region(Region::Groningen), policy("groningen")),
        (NodeName::Region(Region::Twente), policy("twente")),
        (NodeName::Region(Region::Ijsselland), policy("ijsselland")),
        (
            NodeName::Network(zicht_model::Network::Overijssel),
            policy("overijssel"),
        ),
    ];
    let f = Federation::start(&nodes).await;
    let dir = tempfile::tempdir().unwrap();
    let drenthe = NodeName::Region(Region::Drenthe);
    let analyst = f.write_profile("analyst-drenthe", drenthe, dir.path());
    let analyst = analyst.display().to_string();
    let twente = f.write_profile(
        "analyst-twente",
        NodeName::Region(Region::Twente),
        dir.path(),
    );
    let twente = twente.display().to_string();
    let ask = |profile: &str, extra: &[&str]| {
        let target = ["--client", profile];
        let args = question(
            "youth_in_care",
            target,
            "bovenregionale-sturing",
            YEAR,
            extra,
        );
        zicht_async(dir.path(), &args)
    };
    // Regions grant each other youth_in_care by placement and origin region only (herkomst
    // from the placing side); finer questions are the networks'.
    let refusal = "missing grant: 00000099000000000001 (urn:zicht:region:drenthe) may not group \
                   youth_in_care by stay_group for purpose bovenregionale-sturing";
    let hint = "hint: the regions grant this question to the expertise networks, not to each \
                other's analysts: ask an aggregator with --node jenn, --node ben-nh or --node \
                overijssel";

    // 3 + 11: no region answered: exit 3, the coverage with identical refusals on one line,
    // and the hint to ask a network; nothing on stdout.
    let output = ask(
        &analyst,
        &[
            "--peer",
            "groningen",
            "--peer",
            "twente",
            "--by",
            "stay_group",
        ],
    )
    .await;
    let (code, message) = failure(&output);
    assert_eq!(code, 3, "{message}");
    assert_eq!(stdout(&output), "");
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "coverage: 0 of 2 regions answered");
    assert_eq!(lines[1], format!("  2 regions refused: {refusal}"));
    assert_eq!(lines[2], "    (groningen, twente)");
    assert!(lines[3].starts_with("trace: "), "{message}");
    assert_eq!(
        lines[4],
        "error: no region answered (2 asked); nothing to show"
    );
    assert_eq!(lines[5], hint);
    // For tools, JSON still carries the coverage, with the same exit code.
    let output = ask(
        &analyst,
        &[
            "--peer",
            "groningen",
            "--by",
            "stay_group",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["coverage"][0]["status"], "refused");

    // 11 + 9: asked of every region, the own node answers and says how; the rest refuse on one
    // line, and the hint follows. Exit 0: an answer was shown.
    let output = ask(&analyst, &["--by", "stay_group"]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let shown = stdout(&output);
    assert!(
        shown.contains("coverage: 1 of 5 regions answered\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  drenthe  answered: this node's own data, exact\n"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "  4 regions refused: {refusal}\n    (friesland, groningen, twente, ijsselland)\n"
        )),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("{hint}\n")), "{shown}");
    // --require-all makes the partial answer an error (exit 4) after showing it.
    let output = ask(&analyst, &["--by", "stay_group", "--require-all"]).await;
    let (code, message) = failure(&output);
    assert_eq!(code, 4);
    assert_eq!(
        message,
        "error: partial answer: 4 of 5 regions did not answer (see the coverage) and --require-all was given\n"
    );
    assert!(stdout(&output).contains("coverage: 1 of 5 regions answered"));

    // 9: the own node's exact answer is the database's own (zicht query --database).
    let federated = ask(
        &analyst,
        &[
            "--peer",
            "drenthe",
            "--by",
            "stay_group",
            "--format",
            "json",
        ],
    )
    .await;
    let local = youth_in_care(dir.path(), &f.dbs[&drenthe].url, &["--by", "stay_group"]);
    assert_eq!(counts(&federated), counts(&local));

    // 12: inside or outside Overijssel over the network, by landsdeel; leaving values out
    // (`!=`) is for the data's owner only (a part and its complement are two estimates).
    let output = ask(
        &twente,
        &["--node", "overijssel", "--by", "landsdeel_inside"],
    )
    .await;
    let shown = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        shown.contains("coverage: 2 of 2 regions answered"),
        "{shown}"
    );
    assert!(
        shown.contains("\nbinnen ") && shown.contains("\nbuiten "),
        "{shown}"
    );
    let outside = [
        "--node",
        "overijssel",
        "--filter",
        "placement_region!=twente,ijsselland",
        "--by",
        "stay_group",
    ];
    let output = ask(&twente, &outside).await;
    let shown = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        shown.contains("filter-vocabulary: a filter on placement_region leaves values out (!=)"),
        "{shown}"
    );
}

// 9: a region's analysts without an owner grant see their own node's data perturbed, and the
// coverage says why it differs from the local answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_node_answer_says_why_it_is_perturbed() {
    let policy = open_policy(&["analyst:drenthe"], &["stay_group"]);
    let drenthe = NodeName::Region(Region::Drenthe);
    let f = Federation::start(&[(drenthe, Behaviour::Serve(policy))]).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = f.write_profile("analyst-drenthe", drenthe, dir.path());
    let profile = profile.display().to_string();
    let by = ["--by", "stay_group"];
    let args = question(
        "youth_in_care",
        ["--client", &profile],
        "bovenregionale-sturing",
        YEAR,
        &by,
    );
    let output = zicht_async(dir.path(), &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(
        "  drenthe  answered: this node's own data, perturbed as for any peer: your grant here \
         is not an owner grant (owner = true in the region's policy gives its own analysts \
         exact counts, as `zicht query --config` on the node does)\n"
    ));
}

// 4 + 5: values fold like the import's; unknown ones list the codes or the closest; the
// suggestions come from the template's own dimensions and the purpose register.
#[test]
fn values_fold_like_the_import_and_suggestions_are_close_ones() {
    let dir = tempfile::tempdir().unwrap();
    let database = Fixture::get().database_in(dir.path());
    let same = |a: &str, b: &str| {
        let a = counts(&youth_in_care(dir.path(), &database, &["--filter", a]));
        let b = counts(&youth_in_care(dir.path(), &database, &["--filter", b]));
        assert!(a.1 > 0);
        assert_eq!(a, b);
    };
    same("care_type=Open Residentieel", "care_type=open_residentieel");
    same(
        "stay_group=Jeugdhulp-Plus,PLEEGZORG",
        "stay_group=jeugdhulp_plus,pleegzorg",
    );
    same("Origin Region=Drenthe", "origin_region=drenthe");
    same("placement_region=Fryslân", "placement_region=friesland");

    let before = snapshot(dir.path());
    let usage = |extra: &[&str], message: &str| {
        let output = youth_in_care(dir.path(), &database, extra);
        assert_eq!(
            failure(&output),
            (2, format!("error: {message}\n")),
            "{extra:?}"
        );
    };
    usage(
        &["--filter", "stay_group=jeugdzorg"],
        "--filter stay_group: unknown stay_group code; valid codes are pleegzorg, \
         jeugdhulp_plus, andere_verblijfzorg, ambulant",
    );
    usage(
        &["--filter", "stay_group=pleegzorgg"],
        "--filter stay_group: unknown stay_group code; closest valid code is `pleegzorg`; valid codes are pleegzorg, jeugdhulp_plus, andere_verblijfzorg, ambulant",
    );
    usage(
        &["--by", "origin"],
        "--by origin: youth_in_care has no such dimension; did you mean origin_region? (it \
         allows origin_region, placement_region, care_type, stay_group, landsdeel_inside, \
         age_band, legal_basis, separatie)",
    );
    usage(
        &["--by", "setting"],
        "--by setting: youth_in_care cannot use setting; it allows origin_region, \
         placement_region, care_type, stay_group, landsdeel_inside, age_band, legal_basis, \
         separatie",
    );
    let args = question(
        "youth_in_care",
        ["--database", &database],
        "sturing",
        YEAR,
        &[],
    );
    let output = zicht(dir.path(), &args);
    assert_eq!(
        failure(&output),
        (
            2,
            "error: --purpose: unknown purpose code; closest valid code is `bovenregionale-sturing`; \
             valid codes are capaciteitsmonitoring, bovenregionale-sturing, 18plus-monitoring, \
             triage-plaatsing, warme-overdracht\n"
                .to_owned()
        )
    );
    assert!(snapshot(dir.path()) == before);
}

// 6. A wrong --client path says where profiles are.
#[test]
fn a_missing_client_profile_says_where_profiles_are() {
    let dir = tempfile::tempdir().unwrap();
    let target = ["--client", "clients/analyst-drenthe.toml"];
    let args = question("youth_in_care", target, "bovenregionale-sturing", YEAR, &[]);
    let output = zicht(dir.path(), &args);
    assert_eq!(
        failure(&output),
        (
            1,
            "error: no client profile at clients/analyst-drenthe.toml (profiles are in \
             deploy/clients/; the demo writes its own in zicht-demo/clients/)\n"
                .to_owned()
        )
    );
    assert!(snapshot(dir.path()).is_empty());
}

// 7. An import whose table cannot be told names --table, and creates no database.
#[test]
fn an_unknown_table_names_the_option_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Fixture::get().file("placements"),
        dir.path().join("export.csv"),
    )
    .unwrap();
    let before = snapshot(dir.path());
    let output = zicht(dir.path(), &["import", "--database", "r.db", "export.csv"]);
    assert_eq!(
        failure(&output),
        (
            2,
            "error: export.csv: cannot tell the table from the file name; name it \
             placements.csv, capacity.csv, transition18.csv, consents.csv or measures.csv (a \
             suffix such as placements-2024.csv is fine), or give --table \
             placements|capacity|transition18|consents|measures\n"
                .to_owned()
        )
    );
    let output = zicht(
        dir.path(),
        &["import", "--database", "r.db", "placements-2024.csv"],
    );
    let (code, message) = failure(&output);
    assert_eq!(code, 1);
    assert!(
        message.starts_with("error: cannot read placements-2024.csv: No such file or directory"),
        "{message}"
    );
    assert!(message.ends_with("; nothing was imported\n"), "{message}");
    assert!(snapshot(dir.path()) == before, "no database was created");
    // With --table it imports.
    let output = zicht(
        dir.path(),
        &[
            "import",
            "--database",
            "r.db",
            "--table",
            "placements",
            "export.csv",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

// 8. migrate says what it did.
#[test]
fn migrate_says_whether_it_created_or_found_the_schema_current() {
    let dir = tempfile::tempdir().unwrap();
    let first = zicht(dir.path(), &["migrate", "--database", "m.db"]);
    assert!(first.status.success());
    let latest = stdout(&first);
    assert!(
        latest.starts_with("created m.db with the zicht schema (version "),
        "{latest}"
    );
    let version = latest
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')');
    let again = zicht(dir.path(), &["migrate", "--database", "sqlite://m.db"]);
    assert_eq!(
        stdout(&again),
        format!("schema is up to date (version {version})\n")
    );
    let output = zicht(dir.path(), &["migrate"]);
    assert_eq!(
        failure(&output),
        (
            2,
            "error: give --database (or ZICHT_DATABASE_URL) or --config\n".to_owned()
        )
    );
}

// 10. Capacity with no capacity data says so, locally and as a region's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_without_capacity_data_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let placements = Fixture::get().file("placements").display().to_string();
    let imported = zicht_async(dir.path(), &["import", "--database", "p.db", &placements]).await;
    assert!(imported.status.success());
    let peildatum = ["--peildatum", "2025-07-01"];
    let args = question(
        "capacity",
        ["--database", "p.db"],
        "capaciteitsmonitoring",
        peildatum,
        &[],
    );
    let output = zicht_async(dir.path(), &args).await;
    assert_eq!(
        failure(&output),
        (
            1,
            "error: this database holds no capacity data: import a capacity file first (zicht \
             import --database DATABASE --table capacity FILE)\n"
                .to_owned()
        )
    );
    assert_eq!(stdout(&output), "");

    // Over the network: a region without capacity data refuses, it does not add zero.
    let policy = open_policy(&["analyst:drenthe", "region:*"], &["care_type"]);
    let (drenthe, groningen) = (
        NodeName::Region(Region::Drenthe),
        NodeName::Region(Region::Groningen),
    );
    let f = Federation::start(&[
        (drenthe, Behaviour::Serve(policy.clone())),
        (groningen, Behaviour::Serve(policy)),
    ])
    .await;
    f.dbs[&groningen].execute("DELETE FROM capacity").await;
    let profile = f.write_profile("analyst-drenthe", drenthe, dir.path());
    let profile = profile.display().to_string();
    let target = ["--client", profile.as_str()];
    let args = question("capacity", target, "capaciteitsmonitoring", peildatum, &[]);
    let output = zicht_async(dir.path(), &args).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(
        "  groningen  refused: this region has loaded no capacity data (its data team imports \
         it with zicht import --table capacity)\n"
    ));
}

// Completions and the manual page come from the same clap definitions.
#[test]
fn completions_and_the_manual_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let output = zicht(dir.path(), &["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = stdout(&output);
        for word in ["query", "require-all", "completions", "migrate"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    // bash itself reads the script.
    let bash = zicht(dir.path(), &["completions", "bash"]);
    let script = dir.path().join("zicht.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let checked = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", stderr(&checked));

    let output = zicht(dir.path(), &["completions", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));

    let man = zicht(dir.path(), &["man"]);
    let page = stdout(&man);
    assert!(page.contains(".TH zicht 1"), "{page}");
    assert!(page.contains("Exit codes: 0 an answer was shown"), "{page}");
    let output = zicht(dir.path(), &["man", "--dir", "man"]);
    assert!(output.status.success());
    let query = std::fs::read_to_string(dir.path().join("man/zicht-query.1")).unwrap();
    assert!(query.contains("require\\-all"), "{query}");
}
