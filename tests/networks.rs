//! The networks' own questions, asked as their coordinators ask them: over mutual TLS at the
//! network node's Outway, with the coordinator's delegation, under the shipped policies
//! (`deploy/policies`), on the members' synthetic data. The published cells are checked
//! against the truth read from the members' own databases.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use zicht_model::{CodeList, Network, NodeName, Region};
use zicht_proto::v1 as pb;
use zicht_store::Backend;
use zicht_testkit::federation::{Behaviour, Federation, JENN};
use zicht_testkit::queries::Ask;

const JENN_NODE: NodeName = NodeName::Network(Network::Jenn);

/// The shipped policy of `node`.
fn shipped(node: NodeName) -> String {
    std::fs::read_to_string(format!(
        "{}/../deploy/policies/{}.toml",
        env!("CARGO_MANIFEST_DIR"),
        node.code()
    ))
    .unwrap()
}

/// jenn and its three members, each with its shipped policy, their stores on `backend`.
async fn jenn_on(backend: Backend) -> Federation {
    let mut nodes = vec![(JENN_NODE, Behaviour::Serve(shipped(JENN_NODE)))];
    for member in JENN {
        let node = NodeName::Region(member);
        nodes.push((node, Behaviour::Serve(shipped(node))));
    }
    Federation::start_on(backend, &nodes).await
}

/// jenn and its members on SQLite.
async fn jenn() -> Federation {
    jenn_on(Backend::Sqlite).await
}

/// The cells of a result: key -> (value, bound).
fn cells(result: &pb::ProtectedResult) -> BTreeMap<Vec<String>, (u64, u32)> {
    result
        .rows
        .iter()
        .map(|row| {
            let value = match row.count.as_ref().and_then(|c| c.value.as_ref()) {
                Some(pb::cell_value::Value::Exact(n)) => (*n, 0),
                Some(pb::cell_value::Value::Perturbed(p)) => (p.value, p.max_deviation),
                None => panic!("a cell without a value"),
            };
            (row.key.clone(), value)
        })
        .collect()
}

/// The true cells of `ask` summed over jenn's members (their owners' exact path).
async fn truth(f: &Federation, ask: &Ask) -> BTreeMap<Vec<String>, u64> {
    let mut sum = BTreeMap::new();
    for member in JENN {
        let store = &f.dbs[&NodeName::Region(member)].store;
        for (key, n) in zicht_testkit::queries::truth(store, member, &ask.wire()).await {
            *sum.entry(key).or_insert(0) += n;
        }
    }
    sum
}

/// Asks `ask` as jenn's coordinator; every member must answer.
async fn coordinator(f: &Federation, ask: &Ask) -> pb::ProtectedResult {
    let mut asker = f.analyst("coordinator-jenn", JENN_NODE).await;
    let answer = asker.ask(ask.wire()).await.unwrap();
    let answered = answer
        .coverage
        .iter()
        .filter(|p| p.status == pb::peer_status::Status::Answered as i32)
        .count();
    assert_eq!(answered, 3, "{:?}: {:?}", ask.wire(), answer.coverage);
    answer.result.unwrap()
}

/// Every published cell is within its bound of the truth, and the bound is D per member.
fn within_bounds(result: &pb::ProtectedResult, truth: &BTreeMap<Vec<String>, u64>, exact: bool) {
    let shown = cells(result);
    assert!(!shown.is_empty());
    for (key, (value, bound)) in &shown {
        let true_value = truth.get(key).copied().unwrap_or(0);
        if exact {
            assert_eq!((*value, *bound), (true_value, 0), "{key:?}");
        } else {
            assert_eq!(*bound, 4 * 3, "{key:?}: D per member");
            assert!(value.abs_diff(true_value) <= u64::from(*bound), "{key:?}");
        }
    }
    for (key, value) in truth {
        assert!(shown.contains_key(key) || *value == 0, "{key:?} is missing");
    }
}

// The plans' questions through jenn as its coordinator: capacity per provider and care type
// (facility data, exact; and per facility and financing), JeugdhulpPlus by legal basis,
// uitstroom profiles, the BIG5 domains of the 16+ check, separaties per facility and the share
// of JeugdhulpPlus youths with one. Each member's log names the coordinator; a coordinator of another network
// cannot ask through jenn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_asks_the_plans_questions_through_the_network() {
    the_plans_questions(Backend::Sqlite).await;
}

// The same on PostgreSQL stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_asks_the_plans_questions_through_the_network_on_postgres() {
    the_plans_questions(Backend::Postgres).await;
}

async fn the_plans_questions(backend: Backend) {
    let f = jenn_on(backend).await;

    let capacity = Ask::capacity()
        .peildatum(2025, 7, 1)
        .by("provider")
        .by("care_type");
    let result = coordinator(&f, &capacity).await;
    within_bounds(&result, &truth(&f, &capacity).await, true);
    for by in ["facility", "financing"] {
        let capacity = Ask::capacity().peildatum(2025, 7, 1).by(by);
        let result = coordinator(&f, &capacity).await;
        within_bounds(&result, &truth(&f, &capacity).await, true);
    }

    let jeugdhulp_plus = Ask::youth_in_care(2024)
        .filter("stay_group", &["jeugdhulp_plus"])
        .by("legal_basis");
    let result = coordinator(&f, &jeugdhulp_plus).await;
    within_bounds(&result, &truth(&f, &jeugdhulp_plus).await, false);

    let uitstroom = Ask::new("flows")
        .year(2024)
        .filter("flow_kind", &["uitstroom"])
        .by("outflow_profile");
    let result = coordinator(&f, &uitstroom).await;
    within_bounds(&result, &truth(&f, &uitstroom).await, false);

    let big5 = Ask::new("transition18")
        .purpose("18plus-monitoring")
        .peildatum(2025, 6, 30)
        .by("big5_domain")
        .by("big5_status");
    let result = coordinator(&f, &big5).await;
    within_bounds(&result, &truth(&f, &big5).await, false);

    // The 16+ check by age on the peildatum (16, 17) and by when youths turn 18.
    let by_age = Ask::new("transition18")
        .purpose("18plus-monitoring")
        .peildatum(2025, 6, 30)
        .by("age")
        .by("toekomstplan");
    let result = coordinator(&f, &by_age).await;
    let truth_by_age = truth(&f, &by_age).await;
    within_bounds(&result, &truth_by_age, false);
    let sixteen: u64 = ["ja", "nee"]
        .iter()
        .map(|plan| {
            truth_by_age
                .get(&vec!["16".to_owned(), (*plan).to_owned()])
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert!(sixteen > 0, "16-year-olds were checked: {truth_by_age:?}");
    let turning = Ask::new("transition18")
        .purpose("18plus-monitoring")
        .peildatum(2025, 6, 30)
        .filter("toekomstplan", &["nee"])
        .by("turns_18");
    let result = coordinator(&f, &turning).await;
    within_bounds(&result, &truth(&f, &turning).await, false);

    // Length of stay of JeugdhulpPlus through the network: counts per stay-length band,
    // which add (medians do not).
    let stays = Ask::new("length_of_stay")
        .year(2024)
        .filter("stay_group", &["jeugdhulp_plus"])
        .by("stay_length");
    let result = coordinator(&f, &stays).await;
    let truth_stays = truth(&f, &stays).await;
    within_bounds(&result, &truth_stays, false);
    assert_eq!(result.rows.len(), zicht_model::STAY_LENGTHS.len());
    // The network states where the median and p90 lie, read from the merged bands, with the
    // bands the counts' bounds allow; the true median and p90 lie within them.
    let bands: Vec<&str> = zicht_model::STAY_LENGTHS.iter().map(|(b, _)| *b).collect();
    let line = result
        .rules_applied
        .iter()
        .find(|r| r.starts_with("all stays: median in "))
        .unwrap_or_else(|| panic!("{:?}", result.rules_applied));
    let true_counts: Vec<u64> = bands
        .iter()
        .map(|b| {
            truth_stays
                .get(&vec![(*b).to_owned()])
                .copied()
                .unwrap_or(0)
        })
        .collect();
    let total: u64 = true_counts.iter().sum();
    for (label, share) in [("median", 0.5), ("p90", 0.9)] {
        let wanted = ((total as f64 * share).ceil() as u64).max(1);
        let mut seen = 0;
        let true_band = true_counts
            .iter()
            .position(|n| {
                seen += n;
                seen >= wanted
            })
            .unwrap();
        let stated = line.split(&format!("{label} in ")).nth(1).unwrap();
        let stated = stated.split(", p90 in ").next().unwrap();
        let named = bands.iter().position(|b| stated.starts_with(b)).unwrap();
        let (from, to) = match stated.split_once("(within the bounds: ") {
            Some((_, range)) => {
                let (from, rest) = range.split_once(" to ").unwrap();
                let to = bands.iter().position(|b| rest.starts_with(b)).unwrap();
                (bands.iter().position(|b| *b == from).unwrap(), to)
            }
            _ => (named, named),
        };
        assert!(
            (from..=to).contains(&true_band) && (from..=to).contains(&named),
            "{label}: true band {true_band} not within {line}"
        );
    }

    // Vrijheidsbeperkende maatregelen per facility: youths with at least one measure in
    // 2024. A facility only some members list counts 0 (and adds no bound) at the others.
    // (Separaties alone are too few in Drenthe's year: its total is below the floor.)
    let separaties = Ask::new("measures").year(2024).by("facility");
    let result = coordinator(&f, &separaties).await;
    let truth_separaties = truth(&f, &separaties).await;
    assert!(
        truth_separaties.values().sum::<u64>() > 0,
        "someone was separated: {truth_separaties:?}"
    );
    for (key, (value, bound)) in cells(&result) {
        let true_value = truth_separaties.get(&key).copied().unwrap_or(0);
        assert!(bound > 0 && bound <= 4 * 3, "{key:?}: {bound}");
        assert!(value.abs_diff(true_value) <= u64::from(bound), "{key:?}");
    }
    for (key, value) in &truth_separaties {
        assert!(
            *value == 0 || result.rows.iter().any(|r| &r.key == key),
            "{key:?} is missing"
        );
    }
    // The KPI: the share of JeugdhulpPlus youths with at least one separatie.
    let share = Ask::youth_in_care(2024)
        .filter("stay_group", &["jeugdhulp_plus"])
        .by("separatie");
    let result = coordinator(&f, &share).await;
    let truth_share = truth(&f, &share).await;
    within_bounds(&result, &truth_share, false);
    assert!(truth_share[&vec!["ja".to_owned()]] > 0, "{truth_share:?}");
    assert!(
        truth_share[&vec!["nee".to_owned()]] > truth_share[&vec!["ja".to_owned()]],
        "{truth_share:?}"
    );

    // Every member logged the coordinator as the person jenn asked for.
    let coordinator_id = {
        let (cert, _) = f.pki.person("coordinator-jenn");
        let pem = std::fs::read(cert).unwrap();
        let der = zicht_pki::pem_to_der(&pem).unwrap();
        zicht_pki::identity_of(&der).unwrap().peer_id.to_string()
    };
    for member in JENN {
        let bodies = f.dbs[&NodeName::Region(member)]
            .strings("SELECT body FROM processing_log")
            .await;
        let named = bodies
            .iter()
            .filter(|b| b.contains(&format!("\"on_behalf_of\":\"{coordinator_id}\"")))
            .count();
        assert_eq!(named, 11, "{member}: {bodies:?}");
    }

    // BEN-NH's coordinator has no grant at jenn.
    let mut stranger = f.analyst("coordinator-ben-nh", JENN_NODE).await;
    let refused = stranger.ask(capacity.wire()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(
        refused.message().contains("coordinator:ben-nh") || refused.message().contains("no grant"),
        "{refused:?}"
    );
}

// Every region's capacity is open to every other region and network by provider (facility
// data), so a region's data team sees another landsdeel's providers in one question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_by_provider_is_open_to_every_region() {
    let f = jenn().await;
    let capacity = Ask::capacity().peildatum(2025, 7, 1).by("provider");
    for member in [Region::Friesland, Region::Groningen] {
        let released = f
            .ask_as_node(NodeName::Region(Region::Drenthe), member, &capacity.wire())
            .await
            .unwrap();
        assert!(!released.rows.is_empty(), "{member}");
    }
}

// Per member in one answer: `member_region` first lists each member's own published cells
// (the numbers it releases to the network) and then their sum (`totaal`), which is the network
// answer without it. The members need no grant for it: it is no grouping of their data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_answer_lists_each_member_beside_the_sum() {
    let f = jenn().await;
    let plain = Ask::youth_in_care(2024).by("stay_group");
    let listed = Ask::youth_in_care(2024)
        .by("member_region")
        .by("stay_group");
    let sum = coordinator(&f, &plain).await;
    let result = coordinator(&f, &listed).await;
    assert_eq!(result.dimensions, ["member_region", "stay_group"]);
    let shown = cells(&result);
    for member in JENN {
        let own = f
            .ask_as_node(JENN_NODE, member, &plain.wire())
            .await
            .unwrap();
        for (key, value) in cells(&own) {
            let mut listed_key = vec![member.code().to_owned()];
            listed_key.extend(key.clone());
            assert_eq!(shown[&listed_key], value, "{member}: {key:?}");
        }
    }
    for (key, value) in cells(&sum) {
        let mut listed_key = vec![zicht_model::MEMBER_TOTAL.to_owned()];
        listed_key.extend(key.clone());
        assert_eq!(shown[&listed_key], value, "totaal: {key:?}");
    }
    assert_eq!(shown.len(), 4 * cells(&sum).len());
    assert!(result.rules_applied[1].starts_with("member_region: each member's own"));
}
