//! Averaging attacks on disclosure control, as someone who is not the data's owner runs them:
//! over mutual TLS, a person of another region asks drenthe's node through the network node
//! jenn (with their own delegation), under the grant the shipped policy gives jenn. On both
//! backends.
//!
//! A perturbed count is the true count plus noise that depends only on the youths counted
//! (the cell key), so the same youths publish the same number everywhere. What an attacker can
//! still do is write one small cell as a sum of other cells, each perturbed independently,
//! and average those estimates. The vocabulary bounds how many such decompositions exist:
//! filters keep one value or one group (never leave values out), and a question constrains
//! at most two dimensions. Each attack below takes every decomposition the vocabulary allows
//! (the budgets of distinct populations allow far more questions than that) and must be right
//! about a small cell (1-9 youths) at most 10 points more often than the table lets the cell's
//! own published value be right, and never 60% of the time. The figures are printed for
//! `docs/privacy.md`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, HashMap};

use zicht_model::{
    CodeList, Dimension, Network, NodeName, PeerId, PeerIdentity, Region, Role, Template,
};
use zicht_node::identity::Delegator;
use zicht_node::Disclosure;
use zicht_privacy::{PerturbationTable, RecordKeySecret, Settings};
use zicht_proto::v1 as pb;
use zicht_testkit::both_backends;
use zicht_testkit::node::{spawn_node_on, NodeFixture};
use zicht_testkit::queries::Ask;

/// Published (or true) counts by cell key.
type Cells = BTreeMap<Vec<String>, u64>;

const JENN: NodeName = NodeName::Network(Network::Jenn);

/// How far the attacker may beat the cell's own published value, and what it may never reach.
const MARGIN: f64 = 0.10;
const NEVER: f64 = 0.60;

/// The attack runs against nodes with this many secrets: each a new draw of every cell's noise.
const SECRETS: u8 = 5;

/// Drenthe's node with the shipped policy, and the people who ask it through jenn.
struct Drenthe {
    f: NodeFixture,
    channel: tonic::transport::Channel,
    people: HashMap<&'static str, Delegator>,
    ptable: PerturbationTable,
}

impl Drenthe {
    async fn start(backend: zicht_store::Backend, secret: u8) -> Drenthe {
        let policy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/policies/drenthe.toml"
        ))
        .unwrap()
        // The shipped grants; a quota that leaves the attack its questions within the test.
        .replace("quota_per_minute = 120", "quota_per_minute = 100000");
        let f = spawn_node_on(
            backend,
            &policy,
            zicht_node::Limits::default(),
            |settings, _| {
                settings.disclosure = Disclosure::new(
                    Settings::default(),
                    Some(Region::Drenthe),
                    Some(RecordKeySecret::from_bytes([secret; 32])),
                )
                .unwrap();
            },
        )
        .await;
        let mut people = HashMap::new();
        for name in ["analyst-groningen", "analyst-friesland"] {
            let (cert, key) = f.pki.person(name);
            people.insert(name, Delegator::from_files(&cert, &key).unwrap());
        }
        // A second analyst of Groningen, with a certificate of their own.
        let (cert, key) = f.issue(
            "second-analyst-groningen",
            PeerIdentity {
                peer_id: PeerId::parse("00000098000000000777").unwrap(),
                organisation: "Jeugdhulpregio Groningen".to_owned(),
                role: Role::Analyst {
                    region: Region::Groningen,
                    name: "tweede-analist".to_owned(),
                },
            },
        );
        people.insert(
            "second-analyst-groningen",
            Delegator::from_files(&cert, &key).unwrap(),
        );
        let channel = f.channel_as_node(JENN).await;
        Drenthe {
            f,
            channel,
            people,
            ptable: PerturbationTable::new(Settings::default().ptable_params()).unwrap(),
        }
    }

    /// What `person` is given for `ask` through jenn; `None` when the population floor
    /// refuses it (decided on the published total, so it tells no more than the total).
    async fn ask(&self, person: &str, ask: &Ask) -> Option<Cells> {
        let mut request = ask.request();
        let query = request.get_ref().clone();
        self.people[person]
            .attach(JENN, &query, request.metadata_mut())
            .unwrap();
        let mut client = pb::inway_client::InwayClient::new(self.channel.clone());
        match client.query(request).await {
            Ok(answer) => Some(
                answer
                    .into_inner()
                    .rows
                    .into_iter()
                    .map(|row| (row.key, value(row.count)))
                    .collect(),
            ),
            Err(status) if status.message().contains("population-floor") => None,
            Err(status) => panic!("{:?}: {status:?}", ask.wire()),
        }
    }

    /// The true counts of `ask` (the owner's exact path on the node's database).
    async fn truth(&self, ask: &Ask) -> Cells {
        zicht_testkit::queries::truth(&self.f.db.store, Region::Drenthe, &ask.wire()).await
    }

    /// The probability that the table publishes `n` youths as exactly `n`: how often the
    /// cell's own published value is right.
    fn own_exact(&self, n: u64) -> f64 {
        let rows = self.ptable.rows();
        let row = &rows[(n as usize).min(rows.len() - 1)];
        row.deviations
            .iter()
            .filter(|d| d.value == 0)
            .map(|d| d.probability())
            .sum()
    }

    /// The distribution of a published value `p` around its true count, as an attacker who
    /// knows the table reads it: a published 0 is exact (or hides 1-`js`, which the attacker
    /// cannot tell), any other value moves by the symmetric row.
    fn deviations_of(&self, published: u64) -> Vec<(i64, f64)> {
        if published == 0 {
            return vec![(0, 1.0)];
        }
        let rows = self.ptable.rows();
        let row = &rows[rows.len() - 1];
        row.deviations
            .iter()
            .map(|d| (i64::from(d.value), d.probability()))
            .collect()
    }
}

fn value(count: Option<pb::CellValue>) -> u64 {
    match count.and_then(|c| c.value) {
        Some(pb::cell_value::Value::Exact(n)) => n,
        Some(pb::cell_value::Value::Perturbed(p)) => p.value,
        None => panic!("a cell without a value"),
    }
}

/// Youth in care in month `month` of 2024 (one calendar unit: one family of populations).
fn month(month: u32) -> Ask {
    use chrono::Datelike;
    let first = chrono::NaiveDate::from_ymd_opt(2024, month, 1).unwrap();
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap();
    Ask::new(Template::YouthInCare).period(
        (2024, month as i32, 1),
        (2024, month as i32, last.day() as i32),
    )
}

/// Every decomposition of the cells `care_type = X` of one month the vocabulary and jenn's
/// grant allow: grouped by a second dimension (each value a part), and, for the region
/// dimensions, filtered on each landsdeel in turn (the landsdelen and the values outside them
/// partition the youths). Networks overlap landsdelen without partitioning; leaving a value
/// out is not in the vocabulary.
fn decompositions(month_: u32) -> Vec<Vec<Ask>> {
    use Dimension::*;
    let mut all = Vec::new();
    for d in [
        PlacementRegion,
        OriginRegion,
        LandsdeelInside,
        StayGroup,
        AgeBand,
        LegalBasis,
    ] {
        all.push(vec![month(month_).by(CareType).by(d)]);
    }
    let on = zicht_model::NaiveDate::from_ymd_opt(2024, month_, 1).unwrap();
    for d in [PlacementRegion, OriginRegion] {
        let landsdelen: Vec<Vec<&str>> = zicht_model::Landsdeel::ALL
            .iter()
            .map(|l| {
                Region::ALL
                    .iter()
                    .filter(|r| r.landsdeel() == *l)
                    .map(|r| r.code())
                    .collect()
            })
            .collect();
        assert!(landsdelen
            .iter()
            .all(|g| zicht_model::filter_groups(d, on).iter().any(|h| {
                let (mut a, mut b) = (g.clone(), h.clone());
                a.sort_unstable();
                b.sort_unstable();
                a == b
            })));
        let mut questions: Vec<Ask> = landsdelen
            .iter()
            .map(|g| month(month_).filter(d, g).by(CareType))
            .collect();
        let inside: Vec<&str> = landsdelen.concat();
        for value in d.domain().unwrap_or_default() {
            if !inside.contains(&value) {
                questions.push(month(month_).filter(d, &[value]).by(CareType));
            }
        }
        all.push(questions);
    }
    all
}

/// A small cell, what its own table published, and its estimates (one per decomposition, each
/// with the published parts it summed).
#[derive(Debug, Clone)]
struct Target {
    truth: u64,
    own: u64,
    estimates: Vec<Vec<u64>>,
}

impl Target {
    fn same(&self, other: &Target) -> bool {
        (self.truth, self.own, &self.estimates) == (other.truth, other.own, &other.estimates)
    }

    fn estimate(parts: &[u64]) -> f64 {
        parts.iter().sum::<u64>() as f64
    }

    /// The mean of the first `k` estimates.
    fn mean(&self, k: usize) -> u64 {
        let k = k.min(self.estimates.len());
        let sum: f64 = self.estimates[..k]
            .iter()
            .map(|p| Target::estimate(p))
            .sum();
        (sum / k as f64).round() as u64
    }

    /// The mean of the own cell and the first `k` estimates, each weighted by the inverse of
    /// its variance (a sum of m perturbed parts varies m times as much).
    fn weighted(&self, k: usize) -> u64 {
        let k = k.min(self.estimates.len());
        let (mut sum, mut weights) = (self.own as f64, 1.0);
        for parts in &self.estimates[..k] {
            let m = parts.iter().filter(|p| **p > 0).count().max(1) as f64;
            sum += Target::estimate(parts) / m;
            weights += 1.0 / m;
        }
        (sum / weights).round() as u64
    }

    /// The most likely count given the own cell (read through its exact row) and the first
    /// `k` estimates (each the sum of its parts' deviations), the table known: the strongest
    /// estimator here, and what the key-offset estimator becomes once every cell's noise is
    /// drawn independently.
    fn likely(&self, k: usize, d: &Drenthe) -> u64 {
        let k = k.min(self.estimates.len());
        let spreads: Vec<HashMap<i64, f64>> = self.estimates[..k]
            .iter()
            .map(|parts| {
                let mut distribution = HashMap::from([(0i64, 1.0f64)]);
                for part in parts {
                    let mut next = HashMap::new();
                    for (sum, p) in &distribution {
                        for (v, q) in d.deviations_of(*part) {
                            *next.entry(sum + v).or_insert(0.0) += p * q;
                        }
                    }
                    distribution = next;
                }
                distribution
            })
            .collect();
        let rows = d.ptable.rows();
        (0..=40u64)
            .map(|n| {
                let row = &rows[(n as usize).min(rows.len() - 1)];
                let own = row
                    .deviations
                    .iter()
                    .filter(|dv| n as i64 + i64::from(dv.value) == self.own as i64)
                    .map(|dv| dv.probability())
                    .sum::<f64>();
                let mut log = own.max(1e-12).ln();
                for (parts, spread) in self.estimates[..k].iter().zip(&spreads) {
                    let deviation = Target::estimate(parts) as i64 - n as i64;
                    log += spread
                        .get(&deviation)
                        .copied()
                        .unwrap_or(0.0)
                        .max(1e-12)
                        .ln();
                }
                (n, log)
            })
            .fold((0, f64::NEG_INFINITY), |best, (n, log)| {
                if log > best.1 {
                    (n, log)
                } else {
                    best
                }
            })
            .0
    }
}

/// Asks every decomposition of every month in `months`, each question by the next of
/// `persons` in turn, and returns the small targets (1-9 youths) with their estimates, and
/// every published value by question (to compare what different persons were given).
async fn attack(
    d: &Drenthe,
    months: &[u32],
    persons: &[&str],
) -> (Vec<Target>, Vec<Cells>, Vec<(u64, u64, bool)>) {
    let mut targets = Vec::new();
    let mut published = Vec::new();
    let mut zeros = Vec::new();
    let mut turn = 0usize;
    let mut next = || {
        turn += 1;
        persons[turn % persons.len()]
    };
    for &m in months {
        let own_ask = month(m).by(Dimension::CareType);
        let truth = d.truth(&own_ask).await;
        let own = d.ask(next(), &own_ask).await.unwrap();
        published.push(own.clone());
        let mut found: BTreeMap<String, Target> = BTreeMap::new();
        let mut probe: BTreeMap<String, bool> = BTreeMap::new();
        for (key, n) in &truth {
            let care = key[0].clone();
            let shown = own.get(key).copied().unwrap_or(0);
            if (1..=9).contains(n) {
                found.insert(
                    care.clone(),
                    Target {
                        truth: *n,
                        own: shown,
                        estimates: Vec::new(),
                    },
                );
            }
            if shown == 0 {
                probe.insert(care, false);
            }
        }
        for decomposition in decompositions(m) {
            let mut parts: HashMap<String, Vec<u64>> = HashMap::new();
            for question in &decomposition {
                let Some(cells) = d.ask(next(), question).await else {
                    continue;
                };
                published.push(cells.clone());
                for (key, value) in cells {
                    parts.entry(key[0].clone()).or_default().push(value);
                }
            }
            for (care, target) in &mut found {
                if let Some(p) = parts.get(care) {
                    target.estimates.push(p.clone());
                }
            }
            // The zero probe: a published 0 with a part above 0 has someone in it.
            for (care, seen) in &mut probe {
                *seen |= parts.get(care).is_some_and(|p| p.iter().any(|v| *v > 0));
            }
        }
        // Youths in care over several months make the same cell again: one target.
        for target in found.into_values() {
            if !targets.iter().any(|t: &Target| t.same(&target)) {
                targets.push(target);
            }
        }
        for (care, seen) in probe {
            let n = truth.get(&vec![care]).copied().unwrap_or(0);
            zeros.push((n, 0, seen));
        }
    }
    (targets, published, zeros)
}

/// Prints and checks one estimator's record: right at most `MARGIN` more often than the own
/// cell may be, and never `NEVER`.
fn check(name: &str, right: usize, of: usize, chance: f64) {
    let rate = right as f64 / of as f64;
    eprintln!(
        "{name}: right {right} of {of} ({:.0}%; the own cell may be right {:.0}%)",
        rate * 100.0,
        chance * 100.0
    );
    assert!(
        rate <= chance + MARGIN && rate < NEVER,
        "{name}: right {right} of {of} ({rate:.2}), chance {chance:.2}"
    );
}

/// Runs every estimator for k = 1 up to every decomposition the vocabulary allows.
fn estimators(d: &Drenthe, label: &str, targets: &[Target]) {
    assert!(targets.len() >= 20, "only {} small targets", targets.len());
    let chance = targets.iter().map(|t| d.own_exact(t.truth)).sum::<f64>() / targets.len() as f64;
    let own = targets.iter().filter(|t| t.own == t.truth).count();
    eprintln!(
        "{label}: {} targets of 1-9 youths; the own cell was right {own} times (the table expects {:.0})",
        targets.len(),
        chance * targets.len() as f64
    );
    let most = targets.iter().map(|t| t.estimates.len()).max().unwrap_or(0);
    assert!(most >= 4, "the decompositions ran ({most})");
    for k in 1..=most {
        let with: Vec<&Target> = targets.iter().filter(|t| t.estimates.len() >= k).collect();
        let chance_k = with.iter().map(|t| d.own_exact(t.truth)).sum::<f64>() / with.len() as f64;
        let count = |f: &dyn Fn(&Target) -> u64| with.iter().filter(|t| f(t) == t.truth).count();
        check(
            &format!("{label}, plain mean of {k}"),
            count(&|t| t.mean(k)),
            with.len(),
            chance_k,
        );
        check(
            &format!("{label}, weighted with the own cell, {k}"),
            count(&|t| t.weighted(k)),
            with.len(),
            chance_k,
        );
        check(
            &format!("{label}, most likely given the table, {k}"),
            count(&|t| t.likely(k, d)),
            with.len(),
            chance_k,
        );
    }
}

// One person averages every decomposition of the small care-type cells of twelve months; a
// published 0 is probed with every part. The auditor is warned at every 10th distinct
// population of one month (decomposition-watch).
both_backends!(
    averaging_over_decompositions_does_not_beat_chance,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let months: Vec<u32> = (1..=12).collect();
        let mut targets = Vec::new();
        let mut zeros = Vec::new();
        let mut d = None;
        for secret in 1..=SECRETS {
            let node = Drenthe::start(backend, secret).await;
            let (found, _, probed) = attack(&node, &months, &["analyst-groningen"]).await;
            targets.extend(found);
            zeros.extend(probed);
            d = Some(node);
        }
        let d = d.unwrap();
        estimators(&d, "one person", &targets);

        // The zero probe: decide "someone is there" when a part shows someone.
        let hidden = zeros.iter().filter(|(n, _, _)| *n > 0).count();
        let right = zeros
            .iter()
            .filter(|(n, _, seen)| (*n > 0) == *seen)
            .count();
        // Without the probe the best guess is the more common answer.
        let base = hidden.max(zeros.len() - hidden);
        eprintln!(
        "zero probe: {} published zeros, {hidden} of them hide 1-3 youths; the probe is right {right} times, the more common answer {base} times",
        zeros.len()
    );
        assert!(zeros.len() >= 20, "{} published zeros", zeros.len());
        assert!(
            (right as f64) <= base as f64 + MARGIN * zeros.len() as f64,
            "the zero probe: right {right} of {}, {base} by the more common answer",
            zeros.len()
        );

        // The auditor sees it: a warning at the release that makes a holder's distinct
        // populations of one month a multiple of 20.
        let counts =
            d.f.db
                .strings(
                    "SELECT CAST(COUNT(DISTINCT population) AS TEXT) FROM released_populations \
             GROUP BY requester, family",
                )
                .await;
        let expected: i64 = counts
            .iter()
            .map(|n| n.parse::<i64>().unwrap() / zicht_node::DECOMPOSITION_WATCH)
            .max()
            .unwrap_or(0)
            * months.len() as i64;
        let warned = d
            .f
            .db
            .scalar("SELECT COUNT(*) FROM release_log WHERE outcome LIKE '%decomposition-watch%'")
            .await;
        eprintln!("decomposition-watch: {warned} warnings; distinct populations per holder and month: {counts:?}");
        assert!(counts.iter().all(|n| n == &counts[0]), "{counts:?}");
        assert_eq!(warned, expected);
    }
);

// Colluding persons of one region, and of two regions, share out the same questions: every
// question gives each of them the numbers it gives one person alone, so together they know no
// more, and their estimates are as weak.
both_backends!(
    colluding_persons_learn_what_one_person_does,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let d = Drenthe::start(backend, 1).await;
        let months = [3, 9];
        let (alone, seen_alone, _) = attack(&d, &months, &["analyst-groningen"]).await;
        for persons in [
            ["second-analyst-groningen", "analyst-groningen"],
            ["analyst-friesland", "second-analyst-groningen"],
        ] {
            let (together, seen, _) = attack(&d, &months, &persons).await;
            assert_eq!(seen, seen_alone, "{persons:?} were given other numbers");
            assert_eq!(
                together.iter().map(|t| &t.estimates).collect::<Vec<_>>(),
                alone.iter().map(|t| &t.estimates).collect::<Vec<_>>()
            );
        }
    }
);

/// One observation of a least-squares fit: a published value, the unknown cells it sums, and
/// its weight (the inverse of its variance in units of V).
struct Observation {
    value: f64,
    cells: Vec<usize>,
    weight: f64,
}

/// The weighted least-squares fit of `unknowns` cells to `observations`, by conjugate
/// gradients on the normal equations.
fn least_squares(unknowns: usize, observations: &[Observation]) -> Vec<f64> {
    let apply = |x: &[f64]| -> Vec<f64> {
        // AᵀWA x
        let mut out = vec![0.0; unknowns];
        for o in observations {
            let sum: f64 = o.cells.iter().map(|&c| x[c]).sum();
            for &c in &o.cells {
                out[c] += o.weight * sum;
            }
        }
        out
    };
    let mut b = vec![0.0; unknowns];
    for o in observations {
        for &c in &o.cells {
            b[c] += o.weight * o.value;
        }
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut x = vec![0.0; unknowns];
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    for _ in 0..2 * unknowns {
        if rr < 1e-12 {
            break;
        }
        let ap = apply(&p);
        let alpha = rr / dot(&p, &ap).max(1e-300);
        for i in 0..unknowns {
            x[i] += alpha * p[i];
            r[i] -= alpha * ap[i];
        }
        let next = dot(&r, &r);
        for i in 0..unknowns {
            p[i] = r[i] + next / rr * p[i];
        }
        rr = next;
    }
    x
}

// Linked ordinary tables: the cells of care type by placement region of a month, fitted by
// least squares to that table and to every margin the other two-dimension tables of the
// month give (care type by origin and by inside/outside the landsdeel; placement region by
// origin, by inside/outside and by stay group), each margin weighted by how many perturbed
// parts it sums.
both_backends!(
    linked_tables_fitted_by_least_squares_do_not_beat_chance,
    |db| async move {
        use Dimension::*;
        let backend = db.store.backend();
        drop(db);
        let (mut right, mut own_right, mut tried, mut chance) = (0usize, 0usize, 0usize, 0.0f64);
        for secret in 1..=SECRETS {
            let d = Drenthe::start(backend, secret).await;
            for m in 1..=12 {
                let grid = month(m).by(CareType).by(PlacementRegion);
                let (truth, cells) = (
                    d.truth(&grid).await,
                    d.ask("analyst-groningen", &grid).await.unwrap(),
                );
                let keys: Vec<&Vec<String>> = cells.keys().collect();
                let index = |care: &str, placement: &str| {
                    keys.iter()
                        .position(|k| k[0] == care && k[1] == placement)
                        .unwrap()
                };
                let mut observations: Vec<Observation> = keys
                    .iter()
                    .enumerate()
                    .map(|(i, key)| Observation {
                        value: cells[*key] as f64,
                        cells: vec![i],
                        weight: 1.0,
                    })
                    .collect();
                // Margins: (the table, whether its first dimension is care type).
                let margins = [
                    (month(m).by(CareType), true),
                    (month(m).by(CareType).by(OriginRegion), true),
                    (month(m).by(CareType).by(LandsdeelInside), true),
                    (month(m).by(PlacementRegion), false),
                    (month(m).by(PlacementRegion).by(OriginRegion), false),
                    (month(m).by(PlacementRegion).by(LandsdeelInside), false),
                    (month(m).by(PlacementRegion).by(StayGroup), false),
                ];
                for (ask, care_first) in margins {
                    let Some(published) = d.ask("analyst-groningen", &ask).await else {
                        continue;
                    };
                    let mut sums: BTreeMap<String, (u64, usize)> = BTreeMap::new();
                    for (key, value) in published {
                        let entry = sums.entry(key[0].clone()).or_default();
                        entry.0 += value;
                        entry.1 += usize::from(value > 0);
                    }
                    for (value_of, (sum, parts)) in sums {
                        let members: Vec<usize> = keys
                            .iter()
                            .enumerate()
                            .filter(|(_, k)| {
                                if care_first {
                                    k[0] == value_of
                                } else {
                                    k[1] == value_of
                                }
                            })
                            .map(|(i, _)| i)
                            .collect();
                        observations.push(Observation {
                            value: sum as f64,
                            cells: members,
                            weight: 1.0 / parts.max(1) as f64,
                        });
                    }
                }
                let fit = least_squares(keys.len(), &observations);
                for (key, n) in &truth {
                    if !(1..=9).contains(n) {
                        continue;
                    }
                    let i = index(&key[0], &key[1]);
                    tried += 1;
                    chance += d.own_exact(*n);
                    right += usize::from(fit[i].round().max(0.0) as u64 == *n);
                    own_right += usize::from(cells[key] == *n);
                }
            }
        }
        assert!(tried >= 20, "only {tried} small cells");
        eprintln!("linked tables: the own cell was right {own_right} of {tried} times");
        check(
            "linked tables, least squares",
            right,
            tried,
            chance / tried as f64,
        );
    }
);
