#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Federated queries over mutual TLS on loopback: regional nodes over synthetic data, the jenn
//! aggregator, a peer that is down and one that hangs. Every merged figure is checked against
//! the members' own released answers and against the true counts in their databases.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use zicht_model::Published;
use zicht_model::{CodeList, Dimension, NaiveDate, Network, NodeName, Region, Template};
use zicht_proto::domain::published;
use zicht_proto::v1 as pb;
use zicht_proto::v1::peer_status::Status;
use zicht_store::{CountQuery, CountScope};
use zicht_testkit::federation::Analyst;
use zicht_testkit::federation::{open_policy, Behaviour, Federation, JENN};
use zicht_testkit::node::channel;
use zicht_testkit::queries::Ask;

const DIMS: &[&str] = &[
    "stay_group",
    "origin_region",
    "care_type",
    "placement_region",
];
const JENN_NODE: NodeName = NodeName::Network(Network::Jenn);

fn region(region: Region) -> NodeName {
    NodeName::Region(region)
}

/// drenthe and friesland grant jenn everything; groningen lets jenn group only by
/// stay_group, origin_region and placement_region; twente is down; ijsselland hangs.
async fn federation() -> Federation {
    let groningen = format!(
        "{}{}",
        open_policy(
            &["network:jenn"],
            &["stay_group", "origin_region", "placement_region"]
        ),
        open_policy(&["region:*"], &[])
    );
    Federation::start(&[
        (
            region(Region::Drenthe),
            Behaviour::Serve(open_policy(
                &["analyst:drenthe", "network:jenn", "region:*"],
                DIMS,
            )),
        ),
        (
            region(Region::Friesland),
            Behaviour::Serve(open_policy(&["network:jenn", "region:*"], DIMS)),
        ),
        (region(Region::Groningen), Behaviour::Serve(groningen)),
        (
            JENN_NODE,
            Behaviour::Serve(open_policy(&["analyst:drenthe"], DIMS)),
        ),
        (region(Region::Twente), Behaviour::Down),
        (region(Region::Ijsselland), Behaviour::Hang),
    ])
    .await
}

fn coverage(result: &pb::FederatedResult) -> HashMap<String, (Status, String)> {
    result
        .coverage
        .iter()
        .map(|c| {
            (
                c.node.clone(),
                (Status::try_from(c.status).unwrap(), c.reason.clone()),
            )
        })
        .collect()
}

fn cells(result: &pb::ProtectedResult) -> HashMap<Vec<String>, Published> {
    result
        .rows
        .iter()
        .map(|row| {
            (
                row.key.clone(),
                published(row.count.as_ref().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn total(result: &pb::ProtectedResult) -> Published {
    published(result.total.as_ref().unwrap()).unwrap()
}

/// The true counts of `region`'s database for youth_in_care 2024 grouped by `group_by`.
async fn truth(
    f: &Federation,
    region: Region,
    group_by: &[Dimension],
) -> HashMap<Vec<String>, u64> {
    let store = &f.dbs[&NodeName::Region(region)].store;
    let query = CountQuery {
        template: Template::YouthInCare,
        scope: CountScope::Period {
            from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        },
        filters: &[],
        group_by,
    };
    store
        .person_counts(&query, None)
        .await
        .unwrap()
        .unwrap()
        .into_iter()
        .map(|row| (row.key, row.youths as u64))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_count_is_the_sum_of_its_members_published_counts_within_its_bound() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    let query = Ask::youth_in_care(2024)
        .by_all(&["placement_region"])
        .wire();
    let answer = analyst.ask(query.clone()).await.unwrap();
    let status = coverage(&answer);
    assert_eq!(status.len(), 3, "jenn asks its three members: {status:?}");
    for member in JENN {
        assert_eq!(status[member.code()].0, Status::Answered, "{status:?}");
    }
    let merged = answer.result.unwrap();

    // The members' own releases to jenn, added by hand: every merged cell is their sum, and
    // its bound is ±4 per member.
    let mut expected: HashMap<Vec<String>, u64> = HashMap::new();
    let mut sum = 0;
    for member in JENN {
        let part = f.ask_as_node(JENN_NODE, member, &query).await.unwrap();
        sum += total(&part).value;
        for (key, cell) in cells(&part) {
            assert_eq!(cell.max_deviation, 4, "{member} perturbs with D = 4");
            *expected.entry(key).or_default() += cell.value;
        }
    }
    assert_eq!(
        total(&merged),
        Published::perturbed(sum, 12, 3.0 * 2.0),
        "the network total is the sum of the members' published totals"
    );
    let shown = cells(&merged);
    assert_eq!(shown.len(), expected.len());
    for (key, value) in &expected {
        assert_eq!(
            shown[key],
            Published::perturbed(*value, 12, 3.0 * 2.0),
            "{key:?}"
        );
    }

    // Honest: the true count of every merged cell is within its bound.
    let mut true_counts: HashMap<Vec<String>, u64> = HashMap::new();
    for member in JENN {
        for (key, n) in truth(&f, member, &[Dimension::PlacementRegion]).await {
            *true_counts.entry(key).or_default() += n;
        }
    }
    for (key, cell) in &shown {
        let n = true_counts.get(key).copied().unwrap_or(0);
        assert!(
            cell.value.abs_diff(n) <= u64::from(cell.max_deviation),
            "{key:?}: {n} is not within {cell:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_names_every_peer_that_did_not_answer_and_why() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", region(Region::Drenthe)).await;
    let started = std::time::Instant::now();
    let answer = analyst
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();
    let waited = started.elapsed();
    let status = coverage(&answer);
    assert_eq!(status["drenthe"].0, Status::Answered, "its own data");
    assert_eq!(status["friesland"].0, Status::Answered);
    // groningen grants other regions capacity only.
    assert_eq!(status["groningen"].0, Status::Refused);
    assert!(
        status["groningen"].1.starts_with("missing grant:"),
        "{:?}",
        status["groningen"]
    );
    assert_eq!(
        status["twente"].0,
        Status::Unreachable,
        "{:?}",
        status["twente"]
    );
    assert_eq!(status["ijsselland"].0, Status::TimedOut);
    assert!(
        waited < Duration::from_secs(4),
        "cancelled at the deadline: {waited:?}"
    );
    assert_eq!(status.len(), 5, "jenn is an aggregator, not a target");

    // The total covers only who answered, and says so.
    let mut answered_total = 0;
    for member in [Region::Drenthe, Region::Friesland] {
        answered_total += truth(&f, member, &[]).await.values().sum::<u64>();
    }
    let result = answer.result.unwrap();
    let published = total(&result);
    assert_eq!(published.max_deviation, 8, "two regions answered");
    assert!(published.value.abs_diff(answered_total) <= 8);
    assert!(
        result.rules_applied[0].starts_with("merged over 2 node(s)"),
        "{:?}",
        result.rules_applied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_query_is_logged_before_it_leaves_in_one_trace_on_every_node() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", region(Region::Drenthe)).await;
    analyst
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &[],
            Duration::from_secs(2),
        )
        .await
        .unwrap();

    // Logged before it left: what was forwarded, then what was released.
    let outcomes = f.dbs[&region(Region::Drenthe)]
        .strings("SELECT outcome FROM release_log ORDER BY entry_id")
        .await;
    assert!(
        outcomes
            .iter()
            .any(|o| o == "forwarded to drenthe,friesland,groningen,twente,ijsselland"),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o == "released merged: 2 of 5 answered"),
        "{outcomes:?}"
    );

    // Both sides log the call in one trace: the peers' processing records carry drenthe's
    // trace id and name drenthe's forwarding operation as their foreign operation, and the
    // analyst drenthe asked for, whether they answered (friesland) or refused (groningen).
    let drenthe_db = &f.dbs[&region(Region::Drenthe)];
    let forward = drenthe_db
        .strings("SELECT trace_id || ' ' || operation_id FROM processing_log WHERE body LIKE '%Outway/Forward%'")
        .await;
    let (trace, operation) = forward[0].split_once(' ').unwrap();
    let foreign = format!(
        "\"foreign_operation\":{{\"trace_id\":\"{trace}\",\"operation_id\":\"{operation}\",\"entity\":\"urn:zicht:region:drenthe\",\"on_behalf_of\":\"{}\"}}",
        drenthe_analyst_id(&f)
    );
    for peer in [Region::Friesland, Region::Groningen] {
        let records = f.dbs[&region(peer)]
            .strings(&format!(
                "SELECT body FROM processing_log WHERE trace_id = '{trace}'"
            ))
            .await;
        assert_eq!(records.len(), 1, "{peer}: {records:?}");
        assert!(records[0].contains(&foreign), "{peer}: {}", records[0]);
    }
    let merged = drenthe_db
        .scalar(&format!(
            "SELECT COUNT(*) FROM processing_log WHERE trace_id = '{trace}'"
        ))
        .await;
    assert_eq!(
        merged, 3,
        "forward, drenthe's own part, and the merged answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_can_be_asked_by_name() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", region(Region::Drenthe)).await;
    // One peer, by name.
    let one = analyst
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &["friesland"],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(coverage(&one).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_cannot_get_around_a_members_policy_or_its_own() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    // jenn's policy allows care_type; groningen's grant to jenn does not.
    let answer = analyst
        .ask(Ask::youth_in_care(2024).by_all(&["care_type"]).wire())
        .await
        .unwrap();
    let status = coverage(&answer);
    assert_eq!(status["groningen"].0, Status::Refused);
    assert!(
        status["groningen"].1.contains("missing grant"),
        "{status:?}"
    );
    assert_eq!(status["drenthe"].0, Status::Answered);

    // Members apply their disclosure control to jenn as to anyone: a population too small
    // to release is refused there, not merged here.
    let tiny = Ask::youth_in_care(2024)
        .by_all(&["stay_group"])
        .filter("stay_group", &["jeugdhulp_plus"])
        .filter("placement_region", &["zuid-kennemerland"])
        .wire();
    let answer = analyst.ask(tiny).await.unwrap();
    let status = coverage(&answer);
    for member in ["drenthe", "friesland"] {
        assert_eq!(status[member].0, Status::Refused, "{status:?}");
        assert!(status[member].1.contains("population-floor"), "{status:?}");
    }
    // ... and count the populations they released to jenn (jenn's PeerID) for its daily
    // limit.
    let jenn_id = JENN_NODE.dev_peer_id().to_string();
    let populations = f.dbs[&region(Region::Drenthe)]
        .scalar(&format!(
            "SELECT COUNT(*) FROM released_populations WHERE requester = '{jenn_id}'"
        ))
        .await;
    assert!(populations > 0, "drenthe counts jenn's populations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_member_is_reported_not_hidden_in_the_total() {
    let mut f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    // A member that is stopped is reported, not hidden in the total.
    f.stop(region(Region::Friesland)).await;
    let answer = analyst
        .ask(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire())
        .await
        .unwrap();
    assert_eq!(coverage(&answer)["friesland"].0, Status::Unreachable);
}

// An aggregator asks its own members by default, and the regions named otherwise (each
// answers under its own grant to the network: herkomst from the placing side asks every
// origin region); never another network's members as that network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_asks_its_members_or_the_regions_named() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    let answer = analyst
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &["twente"],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let asked: Vec<&str> = answer.coverage.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(asked, ["twente"], "{answer:?}");
    let mut request = tonic::Request::new(pb::FederatedQueryRequest {
        query: Some(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire()),
        peers: Vec::new(),
        network: "ben-nh".to_owned(),
    });
    request.set_timeout(Duration::from_secs(5));
    let mut client = pb::outway_client::OutwayClient::new(
        zicht_testkit::node::channel(
            &f.pki,
            f.pki.person("analyst-drenthe"),
            f.address(JENN_NODE),
        )
        .await,
    );
    let error = client.federated_query(request).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(
        error.message().contains("this node aggregates jenn only"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_granted_analysts_use_an_outway_and_an_aggregator_holds_no_data() {
    let f = federation().await;
    // Analysts jenn does not grant, and nodes, cannot use its outway.
    let mut other = f.analyst("analyst-twente", JENN_NODE).await;
    let error = other
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
    let node = channel(
        &f.pki,
        f.pki.node(region(Region::Drenthe)),
        f.address(JENN_NODE),
    )
    .await;
    let mut node_at_outway = Analyst::on(node.clone());
    let error = node_at_outway
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
    // And jenn's own Inway answers nothing: it holds no youth data.
    let mut inway = pb::inway_client::InwayClient::new(node);
    let mut request = tonic::Request::new(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire());
    request.set_timeout(Duration::from_secs(5));
    let error = inway.query(request).await.unwrap_err();
    assert_eq!(
        error.code(),
        Code::PermissionDenied,
        "drenthe's node has no grant at jenn: {error:?}"
    );
}

fn profile(f: &Federation, person: &str) -> zicht_node::config::ClientProfile {
    let (cert, key) = f.pki.person(person);
    zicht_node::config::ClientProfile {
        node: region(Region::Drenthe),
        manifest: f.manifest.clone(),
        tls: zicht_node::TlsFiles {
            ca: f.pki.ca_cert(),
            cert,
            key,
            crl: Some(f.pki.crl()),
        },
    }
}

/// jenn and its three members (settings passed through `adjust`), asked once by Drenthe's
/// analyst through jenn; returns the federation, the query's trace id and jenn's forwarding
/// operation id.
async fn jenn_asked_once(
    adjust: impl Fn(NodeName, &mut zicht_node::NodeSettings),
) -> (Federation, String, String) {
    let member = || Behaviour::Serve(open_policy(&["network:jenn"], DIMS));
    let f = Federation::start_with(
        &[
            (region(Region::Drenthe), member()),
            (region(Region::Friesland), member()),
            (region(Region::Groningen), member()),
            (
                JENN_NODE,
                Behaviour::Serve(open_policy(&["analyst:drenthe"], DIMS)),
            ),
        ],
        adjust,
    )
    .await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    let answer = analyst
        .ask(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire())
        .await
        .unwrap();
    let jenn_db = &f.dbs[&JENN_NODE];
    let trace = jenn_db
        .strings("SELECT trace_id FROM processing_log WHERE body LIKE '%Outway/FederatedQuery%'")
        .await
        .remove(0);
    // The analyst was given the same trace id with the answer.
    assert_eq!(answer.trace_id, trace);
    let forward = jenn_db
        .strings("SELECT operation_id FROM processing_log WHERE body LIKE '%Outway/Forward%'")
        .await
        .remove(0);
    (f, trace, forward)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_follows_one_query_across_every_node_it_touched() {
    let (f, trace, forward) = jenn_asked_once(|_, _| {}).await;
    let jenn_db = &f.dbs[&JENN_NODE];

    let traced = zicht_cli::audit::trace(&profile(&f, "auditor"), &trace).await;
    assert_eq!(traced.len(), 4, "every node of the manifest was asked");
    for node in &traced {
        assert!(node.status.starts_with("chains intact"), "{node:?}");
        assert!(node.bad_entries.is_empty());
        match node.node {
            JENN_NODE => {
                let names: Vec<&str> = node.records.iter().map(|r| r.name.as_str()).collect();
                assert_eq!(
                    names,
                    ["zicht.v1.Outway/Forward", "zicht.v1.Outway/FederatedQuery"]
                );
            }
            _ => {
                assert_eq!(node.records.len(), 1, "{node:?}");
                let record = &node.records[0];
                assert_eq!(record.name, "zicht.v1.Inway/Query");
                assert_eq!(record.status_code, "OK");
                let foreign = record.foreign_operation.as_ref().unwrap();
                assert_eq!(foreign.operation_id, forward);
                assert_eq!(foreign.entity, "urn:zicht:network:jenn");
            }
        }
    }

    // An auditor exports a node's entries as JSON lines, filtered by caller, trace, purpose;
    // each line's hash can be recomputed from the line.
    let dir = tempfile::tempdir().unwrap();
    let client = f.write_profile("auditor", NodeName::Region(Region::Drenthe), dir.path());
    let jenn_id = f
        .manifest
        .iter()
        .find(|p| p.node == JENN_NODE)
        .unwrap()
        .peer_id;
    let jenn_id = jenn_id.to_string();
    let export = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        export_lines(client.clone(), dir.path().join("export.jsonl"), args)
    };
    let by_jenn = export(&["--node", "drenthe", "--peer", &jenn_id]).await;
    assert_eq!(by_jenn.len(), 1, "{by_jenn:?}");
    assert_eq!(by_jenn[0]["name"], "zicht.v1.Inway/Query");
    assert_eq!(
        by_jenn[0]["foreign_operation"]["operation_id"],
        forward.as_str()
    );
    let by_jenn = export(&["--node", "drenthe", "--log", "access", "--peer", &jenn_id]).await;
    assert_eq!(by_jenn.len(), 1);
    assert_eq!(by_jenn[0]["peer_id"], jenn_id.as_str());
    let of_trace = export(&["--node", "jenn", "--log", "access", "--trace", &trace]).await;
    assert_eq!(of_trace.len(), 2, "forward and merge: {of_trace:?}");
    let reads = export(&["--node", "drenthe", "--purpose", zicht_node::AUDIT_ACTIVITY]).await;
    assert!(reads.len() >= 3, "{reads:?}");
    assert!(reads
        .iter()
        .all(|r| r["name"].as_str().unwrap().starts_with("zicht.v1.Audit/")));
    let none = export(&["--node", "drenthe", "--template", "capacity"]).await;
    assert!(none.is_empty());

    // An analyst cannot read audit logs (and the refusal is itself logged) ...
    let refused = zicht_cli::audit::trace(&profile(&f, "analyst-drenthe"), &trace).await;
    for node in &refused {
        assert!(node.records.is_empty());
        assert!(node.status.contains("missing grant"), "{node:?}");
    }
    let logged = jenn_db
        .scalar("SELECT COUNT(*) FROM release_log WHERE outcome = 'refused: not-auditor'")
        .await;
    assert_eq!(logged, 1);
    // ... and an auditor cannot query data.
    let auditor = channel(
        &f.pki,
        f.pki.person("auditor"),
        f.address(region(Region::Drenthe)),
    )
    .await;
    let mut request = tonic::Request::new(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire());
    request.set_timeout(Duration::from_secs(5));
    let error = pb::inway_client::InwayClient::new(auditor)
        .query(request)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
}

/// Runs `zicht audit export` with `args` into `out`; checks each line's hash against the line
/// and returns the bodies.
async fn export_lines(
    client: std::path::PathBuf,
    out: std::path::PathBuf,
    args: Vec<String>,
) -> Vec<serde_json::Value> {
    let mut argv: Vec<String> = ["zicht", "audit", "export", "--client"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    argv.push(client.display().to_string());
    argv.extend(args);
    argv.extend(["--output".to_owned(), out.display().to_string()]);
    zicht_cli::run_from(argv).await.unwrap();
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| {
            // The body is the line's last field, as stored: its hash can be recomputed.
            let (head, body) = line.split_once(",\"body\":").unwrap();
            let body = body.strip_suffix('}').unwrap();
            let head: serde_json::Value = serde_json::from_str(&format!("{head}}}")).unwrap();
            let hash = zicht_audit::chain_hash(head["prev_hash"].as_str().unwrap(), body);
            assert_eq!(head["hash"].as_str().unwrap(), hash, "{line}");
            serde_json::from_str(body).unwrap()
        })
        .collect()
}

/// `zicht audit verify` of `db`, on its own or also against the checkpoints the other nodes
/// hold of drenthe (asked as the auditor whose profile is `auditor`).
async fn audit_verify(
    db: &zicht_testkit::TestDb,
    auditor: Option<&std::path::Path>,
) -> Result<(), String> {
    let mut args = vec![
        "zicht".to_owned(),
        "audit".to_owned(),
        "verify".to_owned(),
        "--database".to_owned(),
        db.url.clone(),
    ];
    if let Some(auditor) = auditor {
        args.extend([
            "--client".to_owned(),
            auditor.display().to_string(),
            "--node".to_owned(),
            "drenthe".to_owned(),
        ]);
    }
    zicht_cli::run_from(args).await.map_err(|e| e.to_string())
}

/// Rewrites the first entry of `db`'s processing log and recomputes every hash after it, so
/// the chain is intact on its own.
async fn rewrite_processing_history(db: &zicht_testkit::TestDb) {
    let mut entries = db
        .store
        .audit_chain(zicht_store::AuditLog::Processing)
        .await
        .unwrap();
    entries[0].body = entries[0]
        .body
        .replace("\"requester\"", "\"someone\"")
        .replace("OK", "ERROR");
    let mut prev = zicht_audit::GENESIS.to_owned();
    for entry in &mut entries {
        entry.prev_hash = prev.clone();
        entry.hash = zicht_audit::chain_hash(&prev, &entry.body);
        prev = entry.hash.clone();
    }
    for entry in entries.iter().rev() {
        db.execute(&format!(
            "UPDATE processing_log SET body = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
            entry.body.replace('\'', "''"),
            entry.prev_hash,
            entry.hash,
            entry.seq
        ))
        .await;
    }
}

/// drenthe and friesland, each with settings passed through `adjust`; drenthe hands friesland
/// three checkpoints.
async fn three_checkpoints(adjust: impl Fn(NodeName, &mut zicht_node::NodeSettings)) -> Federation {
    let open = || Behaviour::Serve(open_policy(&["region:*"], DIMS));
    let f = Federation::start_with(
        &[
            (region(Region::Drenthe), open()),
            (region(Region::Friesland), open()),
        ],
        adjust,
    )
    .await;
    let drenthe = &f.nodes[&region(Region::Drenthe)];
    for _ in 0..3 {
        let pushed = drenthe.checkpoint_now().await.unwrap();
        assert_eq!(pushed.len(), 1);
        assert!(pushed[0].1.is_ok(), "{pushed:?}");
    }
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_or_cut_history_is_caught_through_a_peers_checkpoint() {
    let f = three_checkpoints(|_, _| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let auditor = f.write_profile("auditor", NodeName::Region(Region::Drenthe), dir.path());
    let db = &f.dbs[&region(Region::Drenthe)];
    assert_eq!(audit_verify(db, Some(&auditor)).await, Ok(()));

    // drenthe rewrites its first entry and recomputes every hash after it: intact on its own.
    rewrite_processing_history(db).await;
    // ... and cuts its access log short.
    db.execute("DELETE FROM access_log WHERE seq = (SELECT MAX(seq) FROM access_log)")
        .await;
    assert_eq!(
        audit_verify(db, None).await,
        Ok(()),
        "both chains still verify on their own"
    );
    let error = audit_verify(db, Some(&auditor)).await.unwrap_err();
    assert!(
        error.contains("processing log: entry 1: differs from the checkpoint a peer holds (history was rewritten) (checkpoint held by friesland)"),
        "{error}"
    );
    assert!(
        error.contains("access log: entry 3: missing, though a peer holds a checkpoint of it (the log was cut) (checkpoint held by friesland)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_in_the_first_minute_after_start_is_caught_by_a_peers_checkpoint() {
    let (drenthe, friesland) = (region(Region::Drenthe), region(Region::Friesland));
    let f = Federation::start_with(
        &[
            (
                drenthe,
                Behaviour::Serve(open_policy(&["analyst:drenthe"], DIMS)),
            ),
            (
                friesland,
                Behaviour::Serve(open_policy(&["region:*"], DIMS)),
            ),
        ],
        |_, settings| {
            // A checkpoint after every 4 new entries (at most one a second), not only after
            // the interval (5 minutes, as by default).
            settings.checkpoint_entries = 4;
            settings.limits.checkpoints_per_minute = 60;
        },
    )
    .await;
    // Fresh nodes: nothing to cover yet, so nothing is pushed.
    let held_of_drenthe =
        "SELECT COUNT(*) FROM checkpoints WHERE node = 'urn:zicht:region:drenthe'";
    assert_eq!(f.dbs[&friesland].scalar(held_of_drenthe).await, 0);
    let mut analyst = f.analyst("analyst-drenthe", drenthe).await;
    for _ in 0..3 {
        analyst
            .request(
                Ask::capacity().by("care_type").wire(),
                &["drenthe"],
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    // Within seconds of those entries, friesland holds drenthe's checkpoint.
    let waited = std::time::Instant::now();
    while f.dbs[&friesland].scalar(held_of_drenthe).await == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "no checkpoint pushed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let auditor = f.write_profile("auditor", drenthe, dir.path());
    let db = &f.dbs[&drenthe];
    rewrite_processing_history(db).await;
    assert_eq!(audit_verify(db, None).await, Ok(()), "intact on its own");
    let error = audit_verify(db, Some(&auditor)).await.unwrap_err();
    assert!(
        error.contains("differs from the checkpoint a peer holds (history was rewritten) (checkpoint held by friesland)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_keeping_only_the_latest_checkpoint_still_catches_a_rewrite() {
    let f = three_checkpoints(|_, settings| settings.limits.checkpoints_kept = 1).await;
    let friesland = &f.dbs[&region(Region::Friesland)];
    assert_eq!(
        friesland.scalar("SELECT COUNT(*) FROM checkpoints").await,
        1
    );
    let dir = tempfile::tempdir().unwrap();
    let auditor = f.write_profile("auditor", NodeName::Region(Region::Drenthe), dir.path());
    let db = &f.dbs[&region(Region::Drenthe)];
    assert_eq!(audit_verify(db, Some(&auditor)).await, Ok(()));

    rewrite_processing_history(db).await;
    assert_eq!(audit_verify(db, None).await, Ok(()));
    let error = audit_verify(db, Some(&auditor)).await.unwrap_err();
    assert!(
        error.contains(
            "differs from the checkpoint a peer holds (history was rewritten) (checkpoint held by friesland)"
        ),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outway_refusals_are_logged_like_inway_ones() {
    let f = Federation::start(&[(
        region(Region::Drenthe),
        Behaviour::Serve(open_policy(&["analyst:drenthe"], DIMS)),
    )])
    .await;
    let drenthe = region(Region::Drenthe);
    // An analyst of another region.
    let mut foreign = f.analyst("analyst-twente", drenthe).await;
    let error = foreign
        .ask(Ask::youth_in_care(2024).by_all(&["stay_group"]).wire())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
    // Too many dimensions.
    let mut analyst = f.analyst("analyst-drenthe", drenthe).await;
    let error = analyst
        .ask(
            Ask::youth_in_care(2024)
                .by_all(&[
                    "stay_group",
                    "origin_region",
                    "care_type",
                    "placement_region",
                ])
                .wire(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument, "{error:?}");
    assert_eq!(
        f.dbs[&drenthe]
            .strings("SELECT outcome FROM release_log ORDER BY entry_id")
            .await,
        ["refused: policy", "refused: limit-or-invalid"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_keeps_each_analysts_quota_apart_and_logs_whom_a_node_asked_for() {
    let tight = open_policy(&["region:*"], DIMS)
        .replace("quota_per_minute = 100000", "quota_per_minute = 2");
    let (drenthe, friesland) = (region(Region::Drenthe), region(Region::Friesland));
    let f = Federation::start(&[
        (
            drenthe,
            Behaviour::Serve(open_policy(&["analyst:drenthe"], DIMS)),
        ),
        (friesland, Behaviour::Serve(tight)),
    ])
    .await;
    let mut first = f.analyst("analyst-drenthe", drenthe).await;
    assert_eq!(ask_friesland(&mut first).await.0, Status::Answered);
    assert_eq!(ask_friesland(&mut first).await.0, Status::Answered);
    let (status, reason) = ask_friesland(&mut first).await;
    assert_eq!(status, Status::Refused);
    assert!(
        reason.starts_with("quota of 2 requests per minute"),
        "{reason}"
    );

    // A colleague at the same node still has a share of their own.
    let colleague_id = zicht_model::PeerId::parse("00000098000000000555").unwrap();
    let issued = f
        .pki
        .authority()
        .unwrap()
        .issue(
            &zicht_pki::Subject {
                identity: zicht_model::PeerIdentity {
                    peer_id: colleague_id,
                    organisation: "Jeugdhulpregio Drenthe".to_owned(),
                    role: zicht_model::Role::Analyst {
                        region: Region::Drenthe,
                        name: "colleague".to_owned(),
                    },
                },
                dns_names: Vec::new(),
                ips: Vec::new(),
            },
            zicht_pki::Validity::days_from(zicht_testkit::node::now(), 1),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("c.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let holder = (cert, key);
    let mut colleague = Analyst::on(channel(&f.pki, holder.clone(), f.address(drenthe)).await)
        .delegating(&holder, drenthe);
    assert_eq!(ask_friesland(&mut colleague).await.0, Status::Answered);

    // friesland's log names, under drenthe's foreign operation, whom drenthe asked for.
    let bodies = f.dbs[&friesland]
        .strings("SELECT body FROM processing_log")
        .await;
    let first_id = drenthe_analyst_id(&f);
    let named = |id: &str| {
        bodies
            .iter()
            .filter(|body| body.contains(&format!("\"on_behalf_of\":\"{id}\"")))
            .count()
    };
    assert_eq!(named(&first_id), 3, "{bodies:?}");
    assert_eq!(named(colleague_id.as_str()), 1, "{bodies:?}");
}

/// `analyst`'s youth_in_care question to friesland only: friesland's coverage line.
async fn ask_friesland(analyst: &mut Analyst) -> (Status, String) {
    let answer = analyst
        .request(
            Ask::youth_in_care(2024).by_all(&["stay_group"]).wire(),
            &["friesland"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    coverage(&answer)["friesland"].clone()
}

/// The PeerID of drenthe's dev analyst.
fn drenthe_analyst_id(f: &Federation) -> String {
    let pem = std::fs::read(f.pki.person("analyst-drenthe").0).unwrap();
    let der =
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
            &pem,
        )
        .unwrap();
    zicht_pki::identity_of(&der).unwrap().peer_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_as_one_trace_across_nodes_and_only_when_configured() {
    use zicht_testkit::otlp::{attribute, install_operation_spans, Collector};
    install_operation_spans();
    // The collector has a certificate of its own CA (which the nodes are told to trust) and
    // wants client certificates of the federation (the nodes present theirs).
    let collector_ca = zicht_pki::CertificateAuthority::create(
        "collector CA",
        zicht_pki::Validity::days_from(zicht_testkit::node::now(), 2),
    )
    .unwrap();
    let pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pem.path(), collector_ca.cert_pem().unwrap()).unwrap();
    let collector_cert = collector_ca
        .issue(
            &zicht_pki::Subject {
                identity: zicht_model::PeerIdentity {
                    peer_id: zicht_model::PeerId::parse("00000099000000009999").unwrap(),
                    organisation: "Collector".to_owned(),
                    role: zicht_model::Role::Auditor {
                        name: "otel-collector".to_owned(),
                    },
                },
                dns_names: vec!["localhost".to_owned()],
                ips: vec![],
            },
            zicht_pki::Validity::days_from(zicht_testkit::node::now(), 2),
        )
        .unwrap();
    let mut collector = Collector::bind().await;
    // Export is configured on every node but groningen, which keeps the default (off).
    let (mut f, trace, forward) = jenn_asked_once(|node, settings| {
        if node != region(Region::Groningen) {
            settings.otlp = Some(zicht_node::OtlpSettings {
                ca: Some(pem.path().to_owned()),
                client_certificate: true,
                ..zicht_node::OtlpSettings::new(collector.endpoint(), Duration::from_millis(100))
            });
        }
    })
    .await;
    collector.serve(
        (&collector_cert.cert_pem, &collector_cert.key_pem),
        &std::fs::read(f.pki.ca_cert()).unwrap(),
    );
    let trace_bytes = hex::decode(&trace).unwrap();
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector
            .spans()
            .into_iter()
            .filter(|(_, s)| s.trace_id == trace_bytes)
            .collect();
        if spans.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut nodes: Vec<&str> = spans.iter().map(|(node, _)| node.as_str()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, ["drenthe", "friesland", "jenn", "jenn"], "{spans:?}");
    let forward_id = hex::decode(&forward).unwrap();
    for (node, span) in &spans {
        if node == "jenn" {
            continue;
        }
        // A member's span hangs under jenn's forwarding operation: one trace across nodes.
        assert_eq!(span.name, "zicht.v1.Inway/Query");
        assert_eq!(span.parent_span_id, forward_id, "{node}");
        assert_eq!(
            attribute(&span.attributes, "dpl.core.processing_activity_id").as_deref(),
            Some("urn:zicht:purpose:bovenregionale-sturing")
        );
        // Nothing but the record's names and rule: no figures, no PeerIDs.
        let keys: Vec<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "dpl.core.processing_activity_id",
                "zicht.template",
                "zicht.template_version",
                "zicht.outcome",
                "zicht.foreign_entity"
            ]
        );
    }
    // Metrics arrive too: the requests a member answered.
    let requests = |node: &str| {
        let received = collector.received.lock().unwrap();
        received
            .metrics
            .iter()
            .flat_map(|m| &m.resource_metrics)
            .filter(|r| {
                r.resource
                    .as_ref()
                    .and_then(|r| attribute(&r.attributes, "service.instance.id"))
                    .as_deref()
                    == Some(node)
            })
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .any(|m| m.name == "zicht.requests" && format!("{:?}", m.data).contains("AsInt(1)"))
    };
    for _ in 0..100 {
        if requests("friesland") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(requests("friesland"));
    // groningen answered the same query but exports nothing: off unless configured.
    assert_eq!(
        f.dbs[&region(Region::Groningen)]
            .scalar(&format!(
                "SELECT COUNT(*) FROM processing_log WHERE trace_id = '{trace}'"
            ))
            .await,
        1
    );
    assert!(collector
        .spans()
        .iter()
        .all(|(node, _)| node != "groningen"));
    // A node that stops sends what it still holds first.
    f.stop(region(Region::Drenthe)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_youths_publish_the_same_counts_through_every_route() {
    let f = federation().await;
    let query = Ask::youth_in_care(2024).by_all(&["stay_group"]).wire();
    let drenthe = || ["drenthe"];
    // The analyst through drenthe's own Outway (its own data: the local path) ...
    let mut own = f.analyst("analyst-drenthe", region(Region::Drenthe)).await;
    let local = own
        .request(query.clone(), &drenthe(), Duration::from_secs(10))
        .await
        .unwrap();
    // ... through the jenn aggregator (drenthe's Inway, asked with jenn's certificate) ...
    let mut network = f.analyst("analyst-drenthe", JENN_NODE).await;
    let via_jenn = network
        .request(query.clone(), &drenthe(), Duration::from_secs(10))
        .await
        .unwrap();
    // ... and jenn's node asking drenthe's Inway itself.
    let direct = f
        .ask_as_node(JENN_NODE, Region::Drenthe, &query)
        .await
        .unwrap();
    let routes = [
        cells(&local.result.unwrap()),
        cells(&via_jenn.result.unwrap()),
        cells(&direct),
    ];
    assert!(routes[0].values().all(|c| c.max_deviation == 4));
    assert_eq!(routes[0], routes[1], "own node and aggregator");
    assert_eq!(routes[0], routes[2], "aggregator and a direct call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_needs_the_grant_of_its_dimension_at_every_member() {
    let f = federation().await;
    let mut analyst = f.analyst("analyst-drenthe", JENN_NODE).await;
    // groningen lets jenn group by stay_group, origin_region and placement_region only: a
    // filter on care_type is as fine-grained as grouping by it.
    let query = Ask::youth_in_care(2024)
        .by_all(&["stay_group"])
        .filter("care_type", &["pleegzorg"])
        .wire();
    let answer = analyst.ask(query).await.unwrap();
    let status = coverage(&answer);
    assert_eq!(status["groningen"].0, Status::Refused);
    assert_eq!(
        status["groningen"].1,
        "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not filter youth_in_care by care_type for purpose bovenregionale-sturing"
    );
    assert_eq!(status["drenthe"].0, Status::Answered);
}
