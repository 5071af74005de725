//! Consented records over mutual TLS, on both backends: a node releases a youth's records
//! only under a consent that names the caller, for the purpose, holding at that moment, and
//! only the fields consent, grant and request share; youths are pseudonyms per recipient
//! unless the consent lists `youth_id`; a revocation that commits is honoured by every request
//! that starts after it; the processing log names no youth in the clear; and the youth's own
//! report lists exactly the releases made.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tonic::Code;
use zicht_model::{NodeName, PeerId, Region, Timestamp};
use zicht_node::Limits;
use zicht_privacy::{RecordKeySecret, SubjectKey};
use zicht_proto::v1 as pb;
use zicht_store::Backend;
use zicht_testkit::node::{spawn_node_on, NodeFixture};
use zicht_testkit::queries::Ask;

const POLICY: &str = r#"
[[grant]]
role = "region:*"
templates = ["consented_records"]
purposes = ["warme-overdracht", "triage-plaatsing"]
fields = ["youth_id", "care_type", "legal_basis", "start_date", "toekomstplan", "after18_funding"]
quota_per_minute = 100000
"#;

/// The fields every request of these tests asks for.
const ASKED: &[&str] = &[
    "youth_id",
    "care_type",
    "legal_basis",
    "toekomstplan",
    "after18_funding",
];

const DAY: i64 = 86_400_000;

/// The drenthe node over its synthetic data, with consents written for the test, a known
/// record-key secret and a data-subject key in a file.
struct Consents {
    f: NodeFixture,
    secret: RecordKeySecret,
    key: SubjectKey,
    /// Nine youths with both placements and transition checks.
    youths: Vec<String>,
}

fn peer_id_of(f: &NodeFixture, person: &str) -> PeerId {
    let pem = std::fs::read(f.pki.person(person).0).unwrap();
    zicht_pki::identity_of(&zicht_pki::pem_to_der(&pem).unwrap())
        .unwrap()
        .peer_id
}

fn team(f: &NodeFixture) -> PeerId {
    peer_id_of(f, "team-ijsselland")
}

fn twente() -> PeerId {
    NodeName::Region(Region::Twente).dev_peer_id()
}

async fn consents(backend: Backend) -> Consents {
    let secret = RecordKeySecret::from_bytes([5; 32]);
    let key = SubjectKey::from_bytes([6; 32]);
    let (node_secret, node_key) = (secret.clone(), key.clone());
    let f = spawn_node_on(backend, POLICY, Limits::default(), move |settings, _| {
        settings.disclosure = settings
            .disclosure
            .clone()
            .with_secret(node_secret)
            .with_subject_key(node_key);
    })
    .await;
    let youths =
        f.db.strings(
            "SELECT youth_id FROM transition18 WHERE youth_id IN (SELECT youth_id FROM \
             placements) GROUP BY youth_id ORDER BY youth_id LIMIT 9",
        )
        .await;
    assert_eq!(youths.len(), 9);
    let fixture = Consents {
        f,
        secret,
        key,
        youths,
    };
    fixture.write_consents().await;
    fixture
}

impl Consents {
    /// Every combination, one youth each (see the assertions for what each should give).
    async fn write_consents(&self) {
        let now = zicht_node::audit::now_ms();
        let at = |offset: i64| Timestamp::from_millis(now + offset).to_string();
        let y = &self.youths;
        let team = team(&self.f);
        let twente = twente();
        let rows = [
            format!(
                "CV,{},warme-overdracht,{team},youth_id|care_type|toekomstplan,{},,,",
                y[0],
                at(-30 * DAY)
            ),
            format!(
                "CX,{},warme-overdracht,{team},care_type,{},{},,",
                y[1],
                at(-400 * DAY),
                at(-35 * DAY)
            ),
            format!(
                "CF,{},warme-overdracht,{team},care_type,{},,,",
                y[2],
                at(30 * DAY)
            ),
            format!(
                "CR,{},warme-overdracht,{team},care_type,{},,{},",
                y[3],
                at(-30 * DAY),
                at(-DAY)
            ),
            format!(
                "CP,{},triage-plaatsing,{team},care_type,{},,,",
                y[4],
                at(-30 * DAY)
            ),
            format!(
                "CO,{},warme-overdracht,{twente},care_type|toekomstplan,{},,,",
                y[5],
                at(-30 * DAY)
            ),
            format!(
                "CG,{},warme-overdracht,region:ijsselland,legal_basis|birth_date,{},,,",
                y[6],
                at(-30 * DAY)
            ),
            format!(
                "CL,{},warme-overdracht,{team},toekomstplan|after18_funding,{},,{},",
                y[7],
                at(-30 * DAY),
                at(30 * DAY)
            ),
            format!(
                "C2A,{},warme-overdracht,{team},care_type,{},,,",
                y[8],
                at(-30 * DAY)
            ),
            format!(
                "C2B,{},warme-overdracht,{twente},care_type,{},,,",
                y[8],
                at(-30 * DAY)
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consents.csv");
        std::fs::write(
            &path,
            format!(
                "{}\n{}\n",
                zicht_model::Consent::COLUMNS.join(","),
                rows.join("\n")
            ),
        )
        .unwrap();
        let options = zicht_store::import::ImportOptions {
            replace: true,
            ..Default::default()
        };
        zicht_store::import::import_file(&self.f.db.store, &path, None, options, &mut ())
            .await
            .unwrap();
    }

    /// Asks the node as node `asker` (on behalf of `person` of the dev PKI, with their
    /// delegation, if any) for the records
    /// consented for `purpose`, with `fields`, in trace `trace`.
    async fn ask_as(
        &self,
        asker: NodeName,
        person: Option<&str>,
        purpose: &str,
        fields: &[&str],
        trace: Option<&str>,
    ) -> Result<pb::ProtectedResult, tonic::Status> {
        let mut client = self.f.inway_as_node(asker).await;
        let mut request = Ask::new("consented_records")
            .purpose(purpose)
            .no_scope()
            .request();
        request.get_mut().fields = fields.iter().map(|f| (*f).to_owned()).collect();
        if let Some(person) = person {
            // The person's own signed delegation, as their client makes it.
            let (cert, key) = self.f.pki.person(person);
            let query = request.get_ref().clone();
            zicht_node::identity::Delegator::from_files(&cert, &key)
                .unwrap()
                .attach(asker, &query, request.metadata_mut())
                .unwrap();
        }
        if let Some(trace) = trace {
            let parent = format!("00-{trace}-00f067aa0ba902b7-01");
            request
                .metadata_mut()
                .insert("traceparent", parent.parse().unwrap());
        }
        client.query(request).await.map(tonic::Response::into_inner)
    }

    /// The team of IJsselland, through its node, for warme overdracht.
    async fn ask_team(&self, trace: Option<&str>) -> pb::ProtectedResult {
        self.ask_as(
            NodeName::Region(Region::Ijsselland),
            Some("team-ijsselland"),
            "warme-overdracht",
            ASKED,
            trace,
        )
        .await
        .unwrap()
    }

    /// What `youth` gives as `subject` with `fields`: every placement and check of theirs
    /// that has one of the fields, read from the database, as [`released`] shows records.
    async fn expected(&self, youth: &str, subject: &str, fields: &[&str]) -> Vec<Shown> {
        let mut shown = Vec::new();
        let placement: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| ["care_type", "legal_basis"].contains(f))
            .collect();
        if !placement.is_empty() {
            let columns = placement
                .iter()
                .map(|c| format!("'{c}=' || {c}"))
                .collect::<Vec<_>>()
                .join(" || ';' || ");
            let sql = format!(
                "SELECT {columns} FROM placements WHERE youth_id = '{youth}' \
                 ORDER BY start_date, care_type, provider"
            );
            for line in self.f.db.strings(&sql).await {
                shown.push(("placements", subject.to_owned(), line));
            }
        }
        let check: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| ["toekomstplan", "after18_funding"].contains(f))
            .collect();
        if !check.is_empty() {
            let columns = check
                .iter()
                .map(|c| match *c {
                    "toekomstplan" => {
                        "'toekomstplan=' || CASE WHEN toekomstplan THEN 'ja' ELSE 'nee' END"
                            .to_owned()
                    }
                    other => format!("'{other}=' || {other}"),
                })
                .collect::<Vec<_>>()
                .join(" || ';' || ");
            let sql = format!(
                "SELECT {columns} FROM transition18 WHERE youth_id = '{youth}' ORDER BY check_date"
            );
            for line in self.f.db.strings(&sql).await {
                shown.push(("transition18", subject.to_owned(), line));
            }
        }
        shown
    }
}

/// A released record as the tests compare them: table, youth as shown, `field=value;...`.
type Shown = (&'static str, String, String);

fn released(result: &pb::ProtectedResult) -> Vec<Shown> {
    let mut shown = Vec::new();
    for p in &result.placements {
        let mut fields = Vec::new();
        if let Some(v) = &p.care_type {
            fields.push(format!("care_type={v}"));
        }
        if let Some(v) = &p.legal_basis {
            fields.push(format!("legal_basis={v}"));
        }
        assert!(p.birth_date.is_none() && p.provider.is_none() && p.start_date.is_none());
        shown.push(("placements", p.youth_id.clone(), fields.join(";")));
    }
    for c in &result.transition18 {
        let mut fields = Vec::new();
        if let Some(v) = c.toekomstplan {
            fields.push(format!("toekomstplan={}", if v { "ja" } else { "nee" }));
        }
        if let Some(v) = &c.after18_funding {
            fields.push(format!("after18_funding={v}"));
        }
        assert!(c.check_date.is_none() && c.uit_beeld.is_none() && c.big5_wonen.is_none());
        shown.push(("transition18", c.youth_id.clone(), fields.join(";")));
    }
    shown.sort();
    shown
}

fn sorted(mut shown: Vec<Shown>) -> Vec<Shown> {
    shown.sort();
    shown
}

zicht_testkit::both_backends!(
    every_kind_of_consent_releases_exactly_what_it_should,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let c = consents(backend).await;
        check_combinations(&c).await;
    }
);

/// Valid, expired, not yet granted, revoked, revoked only later, wrong purpose, wrong
/// recipient, region recipient, fields the consent does not list, two recipients.
async fn check_combinations(c: &Consents) {
    let y = &c.youths;
    let team = team(&c.f).to_string();
    let twente = twente().to_string();
    let team_answer = c.ask_team(None).await;
    let mut expected = c
        .expected(&y[0], &y[0], &["care_type", "toekomstplan"])
        .await;
    expected.extend(
        c.expected(
            &y[6],
            &c.secret.pseudonym(&y[6], "region:ijsselland"),
            &["legal_basis"],
        )
        .await,
    );
    expected.extend(
        c.expected(
            &y[7],
            &c.secret.pseudonym(&y[7], &team),
            &["toekomstplan", "after18_funding"],
        )
        .await,
    );
    expected.extend(
        c.expected(&y[8], &c.secret.pseudonym(&y[8], &team), &["care_type"])
            .await,
    );
    assert_eq!(released(&team_answer), sorted(expected));
    assert_eq!(
        team_answer
            .total
            .as_ref()
            .and_then(zicht_proto::domain::published),
        Some(zicht_model::Published::exact(
            (team_answer.placements.len() + team_answer.transition18.len()) as u64
        ))
    );

    // Twente's node: its own consents, under its own pseudonyms (Y8 differs from the team's).
    let twente_answer = c
        .ask_as(
            NodeName::Region(Region::Twente),
            None,
            "warme-overdracht",
            ASKED,
            None,
        )
        .await
        .unwrap();
    let mut expected = c
        .expected(
            &y[5],
            &c.secret.pseudonym(&y[5], &twente),
            &["care_type", "toekomstplan"],
        )
        .await;
    expected.extend(
        c.expected(&y[8], &c.secret.pseudonym(&y[8], &twente), &["care_type"])
            .await,
    );
    assert_eq!(released(&twente_answer), sorted(expected));
    assert_ne!(
        c.secret.pseudonym(&y[8], &twente),
        c.secret.pseudonym(&y[8], &team)
    );

    // The same request again: the same pseudonyms (stable for a recipient).
    assert_eq!(released(&c.ask_team(None).await), released(&team_answer));

    // Triage: only Y4's consent; it lists care_type, which the request asks.
    let triage = c
        .ask_as(
            NodeName::Region(Region::Ijsselland),
            Some("team-ijsselland"),
            "triage-plaatsing",
            &["care_type"],
            None,
        )
        .await
        .unwrap();
    let expected = c
        .expected(&y[4], &c.secret.pseudonym(&y[4], &team), &["care_type"])
        .await;
    assert_eq!(released(&triage), sorted(expected));

    // Nobody consented to friesland: an empty answer, no error (refusals would tell who is in care).
    let none = c
        .ask_as(
            NodeName::Region(Region::Friesland),
            None,
            "warme-overdracht",
            ASKED,
            None,
        )
        .await
        .unwrap();
    assert!(none.placements.is_empty() && none.transition18.is_empty());

    // A field outside the list is named; a field the grant does not list is a missing grant.
    let refused = |fields: &'static [&'static str]| async move {
        c.ask_as(
            NodeName::Region(Region::Ijsselland),
            None,
            "warme-overdracht",
            fields,
            None,
        )
        .await
        .unwrap_err()
    };
    let status = refused(&["bsn"]).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("fields: `bsn` is not a field of placements or transition18"),
        "{status:?}"
    );
    let status = refused(&["birth_date"]).await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "missing grant: 00000099000000000005 (urn:zicht:region:ijsselland) may not receive field birth_date of consented_records for purpose warme-overdracht"
    );
}

zicht_testkit::both_backends!(
    a_revocation_committed_during_a_burst_is_honoured_by_every_later_request,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let c = consents(backend).await;
        let revoked_youth = c.youths[0].clone();
        let mut burst = tokio::task::JoinSet::new();
        let started_all = Instant::now();
        let c = std::sync::Arc::new(c);
        for i in 0..24u64 {
            let c = c.clone();
            let youth = revoked_youth.clone();
            burst.spawn(async move {
                tokio::time::sleep(Duration::from_millis(i * 15)).await;
                let started = Instant::now();
                let answer = c.ask_team(None).await;
                let released = answer.placements.iter().any(|p| p.youth_id == youth)
                    || answer.transition18.iter().any(|t| t.youth_id == youth);
                (started, released)
            });
        }
        // Another process revokes meanwhile (its own connection).
        tokio::time::sleep(Duration::from_millis(120)).await;
        let other = zicht_store::Store::connect(&c.f.db.url).await.unwrap();
        let revoked = other
            .revoke_consent("CV", zicht_node::audit::now_ms())
            .await
            .unwrap();
        assert_eq!(revoked, zicht_store::Revoked::Now);
        let committed = Instant::now();
        let mut after = 0;
        while let Some(done) = burst.join_next().await {
            let (started, released) = done.unwrap();
            if started > committed {
                after += 1;
                assert!(
                    !released,
                    "a request that started after the revocation released the youth"
                );
            }
        }
        assert!(
            after > 0,
            "no request started after the revocation ({:?} in)",
            committed - started_all
        );
        // The youth's report shows the releases before the revocation only, each once.
        let report = zicht_cli::consent::Report::read(&c.f.db.store, &revoked_youth, &c.key)
            .await
            .unwrap()
            .json();
        assert!(report["consents"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("revoked at "));
    }
);

zicht_testkit::both_backends!(
    the_log_names_no_youth_and_the_report_lists_exactly_the_releases,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let c = consents(backend).await;
        let traces = [
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "5cf92f3577b34da6a3ce929d0e0e4737",
        ];
        for trace in traces {
            c.ask_team(Some(trace)).await;
        }
        // Twente's request releases Y8 too, to another recipient.
        c.ask_as(
            NodeName::Region(Region::Twente),
            None,
            "warme-overdracht",
            ASKED,
            None,
        )
        .await
        .unwrap();

        // No log table holds any youth id in the clear.
        let ids: BTreeSet<String> = c
            .f
            .db
            .strings(
                "SELECT DISTINCT youth_id FROM placements UNION SELECT youth_id FROM transition18",
            )
            .await
            .into_iter()
            .collect();
        let mut logged = c.f.db.strings("SELECT body FROM processing_log").await;
        logged.extend(c.f.db.strings("SELECT body FROM access_log").await);
        logged.extend(
            c.f.db
                .strings("SELECT peer_id || role || template || purpose || group_by || outcome FROM release_log")
                .await,
        );
        logged.extend(
            c.f.db
                .strings("SELECT requester || population FROM released_populations")
                .await,
        );
        for text in &logged {
            for id in &ids {
                assert!(!text.contains(id.as_str()), "a log entry names a youth");
            }
        }
        // One processing record per released youth, its subject decryptable by the node only.
        let subjects =
            c.f.db
                .strings("SELECT body FROM processing_log WHERE body LIKE '%data_subject_id%'")
                .await;
        assert_eq!(
            subjects.len(),
            2 * 4 + 2,
            "four youths twice for the team, two for twente"
        );

        // Y0's report: its one consent, holding, and the two releases to the team, in their traces.
        let report = zicht_cli::consent::Report::read(&c.f.db.store, &c.youths[0], &c.key)
            .await
            .unwrap()
            .json();
        assert_eq!(report["consents"].as_array().unwrap().len(), 1);
        assert_eq!(report["consents"][0]["status"], "holds");
        let releases = report["releases"].as_array().unwrap();
        let seen: Vec<&str> = releases
            .iter()
            .map(|r| r["trace_id"].as_str().unwrap())
            .collect();
        assert_eq!(seen, traces);
        for release in releases {
            assert_eq!(release["given_to"], team(&c.f).to_string());
            assert_eq!(release["organisation"], "Jeugdhulpregio IJsselland");
            assert_eq!(release["purpose"], "warme-overdracht");
            assert_eq!(release["consent_ids"], serde_json::json!(["CV"]));
            assert_eq!(
                release["fields"],
                serde_json::json!(["youth_id", "care_type", "toekomstplan"])
            );
        }
        // Y8's report: one release each to the team and to twente.
        let report = zicht_cli::consent::Report::read(&c.f.db.store, &c.youths[8], &c.key)
            .await
            .unwrap()
            .json();
        assert_eq!(report["releases"].as_array().unwrap().len(), 3);
        // Y1 (expired) was never released.
        let report = zicht_cli::consent::Report::read(&c.f.db.store, &c.youths[1], &c.key)
            .await
            .unwrap()
            .json();
        assert_eq!(report["releases"].as_array().unwrap().len(), 0);
        assert!(report["consents"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("expired at "));
        // Another key decrypts nothing.
        let other = SubjectKey::from_bytes([9; 32]);
        let report = zicht_cli::consent::Report::read(&c.f.db.store, &c.youths[0], &other)
            .await
            .unwrap()
            .json();
        assert_eq!(report["releases"].as_array().unwrap().len(), 0);
    }
);

/// Writes one consent of `youth` for `recipient` (warme overdracht) into `store`.
async fn consent_of(store: &zicht_store::Store, id: &str, youth: &str, recipient: &str) {
    let granted = Timestamp::from_millis(zicht_node::audit::now_ms() - DAY);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("consents.csv");
    std::fs::write(
        &path,
        format!(
            "{}\n{id},{youth},warme-overdracht,{recipient},care_type|toekomstplan,{granted},,,\n",
            zicht_model::Consent::COLUMNS.join(",")
        ),
    )
    .unwrap();
    zicht_store::import::import_file(store, &path, None, Default::default(), &mut ())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_gets_its_records_from_two_regions_through_its_own_outway_and_another_none() {
    use zicht_testkit::federation::{Behaviour, Federation};
    let (drenthe, twente, ijsselland) = (
        NodeName::Region(Region::Drenthe),
        NodeName::Region(Region::Twente),
        NodeName::Region(Region::Ijsselland),
    );
    let own_teams = |region: &str| {
        format!(
            "[[grant]]\nrole = \"team:{region}\"\ntemplates = [\"consented_records\"]\npurposes = [\"warme-overdracht\"]\nfields = [\"care_type\", \"toekomstplan\"]\nquota_per_minute = 100\n"
        )
    };
    let f = Federation::start(&[
        (drenthe, Behaviour::Serve(POLICY.to_owned())),
        (
            twente,
            Behaviour::Serve(format!("{POLICY}\n{}", own_teams("twente"))),
        ),
        (ijsselland, Behaviour::Serve(own_teams("ijsselland"))),
    ])
    .await;
    let team_of = |person: &str| {
        let pem = std::fs::read(f.pki.person(person).0).unwrap();
        zicht_pki::identity_of(&zicht_pki::pem_to_der(&pem).unwrap())
            .unwrap()
            .peer_id
            .to_string()
    };
    let team = team_of("team-ijsselland");
    let youth_in = |node: NodeName| {
        let db = &f.dbs[&node];
        async move {
            db.strings("SELECT MIN(youth_id) FROM transition18 WHERE youth_id IN (SELECT youth_id FROM placements)")
                .await
                .remove(0)
        }
    };
    consent_of(
        &f.dbs[&drenthe].store,
        "D1",
        &youth_in(drenthe).await,
        &team,
    )
    .await;
    consent_of(&f.dbs[&twente].store, "T1", &youth_in(twente).await, &team).await;

    let query = Ask::new("consented_records")
        .purpose("warme-overdracht")
        .no_scope()
        .wire();
    let peers = ["drenthe", "twente"];
    let mut team_client = f.analyst("team-ijsselland", ijsselland).await;
    let answer = team_client
        .request(query.clone(), &peers, Duration::from_secs(10))
        .await
        .unwrap();
    let result = answer.result.unwrap();
    let sources: BTreeSet<&str> = result
        .placements
        .iter()
        .map(|p| p.source.as_str())
        .chain(result.transition18.iter().map(|t| t.source.as_str()))
        .collect();
    assert_eq!(sources, BTreeSet::from(["drenthe", "twente"]), "{result:?}");
    assert!(result
        .placements
        .iter()
        .all(|p| p.care_type.is_some() && p.legal_basis.is_none()));
    assert!(answer
        .coverage
        .iter()
        .all(|c| c.status == pb::peer_status::Status::Answered as i32));
    // The records are logged at each data node, per youth, with the team as recipient.
    for node in [drenthe, twente] {
        let bodies = f.dbs[&node]
            .strings("SELECT body FROM processing_log WHERE body LIKE '%data_subject_id%'")
            .await;
        assert_eq!(bodies.len(), 1, "{node}");
        assert!(
            bodies[0].contains(&format!("\"given_to\":\"{team}\"")),
            "{}",
            bodies[0]
        );
    }

    // Twente's own lokaal team asks the same: nobody consented to it, so nothing, no error.
    let mut other = f.analyst("team-twente", twente).await;
    let answer = other
        .request(query, &peers, Duration::from_secs(10))
        .await
        .unwrap();
    let result = answer.result.unwrap();
    assert!(result.placements.is_empty() && result.transition18.is_empty());
    assert_eq!(answer.coverage.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_subject_key_refuses_consented_records_and_says_why() {
    let f = spawn_node_on(Backend::Sqlite, POLICY, Limits::default(), |settings, _| {
        settings.disclosure = zicht_node::Disclosure::default()
            .for_region(Some(Region::Drenthe))
            .with_secret(RecordKeySecret::from_bytes([5; 32]));
    })
    .await;
    let mut client = f.inway_as_node(NodeName::Region(Region::Ijsselland)).await;
    let request = Ask::new("consented_records")
        .purpose("warme-overdracht")
        .no_scope()
        .request();
    let status = client.query(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        status.message(),
        "this node has no data-subject key (privacy.subject_key in its config), so it releases no consented records"
    );
    // The refusal is logged like any other.
    assert_eq!(
        f.db.strings("SELECT outcome FROM release_log").await,
        ["refused: no-subject-key"]
    );
}

/// A delegation as any client would make one from the wire format: `claims` signed with
/// `key_pem`, carrying the certificate in `cert_pem`.
fn delegation(claims: &pb::DelegationClaims, key_pem: &[u8], cert_pem: &[u8]) -> Vec<u8> {
    use prost::Message as _;
    let claims = claims.encode_to_vec();
    let mut signed = b"zicht-delegation-v1\n".to_vec();
    signed.extend_from_slice(&claims);
    pb::Delegation {
        signature: zicht_pki::sign(key_pem, &signed).unwrap(),
        claims,
        chain: vec![zicht_pki::pem_to_der(cert_pem).unwrap()],
    }
    .encode_to_vec()
}

/// What a node carries to name a person: a delegation, or a PeerID in the old header.
enum Carried {
    Delegation(Vec<u8>),
    Named(PeerId),
}

/// What `holder` (certificate and key files of the dev PKI, a person's or a node's) delegates: `request` through
/// `forwarder`, valid from `from_ms` for `for_ms`.
fn delegated(
    holder: (std::path::PathBuf, std::path::PathBuf),
    forwarder: &str,
    request: &pb::QueryRequest,
    from_ms: i64,
    for_ms: i64,
) -> Vec<u8> {
    let claims = pb::DelegationClaims {
        forwarder: forwarder.to_owned(),
        request_sha256: zicht_node::convert::request_digest(request).to_vec(),
        not_before_ms: from_ms,
        not_after_ms: from_ms + for_ms,
    };
    let cert = std::fs::read(holder.0).unwrap();
    let key = std::fs::read(holder.1).unwrap();
    delegation(&claims, &key, &cert)
}

zicht_testkit::both_backends!(
    a_node_gets_records_only_for_a_person_of_its_own_who_delegated_this_request_to_it,
    |db| async move {
        let backend = db.store.backend();
        drop(db);
        let c = consents(backend).await;
        let (friesland, ijsselland) = (
            NodeName::Region(Region::Friesland),
            NodeName::Region(Region::Ijsselland),
        );
        let request = || {
            let mut request = Ask::new("consented_records")
                .purpose("warme-overdracht")
                .no_scope()
                .request();
            request.get_mut().fields = ASKED.iter().map(|f| (*f).to_owned()).collect();
            request
        };
        let query = request().into_inner();
        let mut other = query.clone();
        other.fields = vec!["care_type".to_owned()];
        let now = zicht_node::audit::now_ms();
        let minute = 60_000;
        let team_files = c.f.pki.person("team-ijsselland");
        // (who asks, the delegation it forwards or the person it names, why it must fail)
        let attempts: Vec<(NodeName, Carried, &str)> = vec![
            (
                friesland,
                Carried::Named(team(&c.f)),
                "a node naming another region's team",
            ),
            (
                friesland,
                Carried::Named(twente()),
                "a node naming another region's node",
            ),
            (
                friesland,
                Carried::Delegation(delegated(
                    team_files.clone(),
                    "ijsselland",
                    &query,
                    now,
                    5 * minute,
                )),
                "the team's delegation to its own node, replayed by another node",
            ),
            (
                friesland,
                Carried::Delegation(delegated(
                    team_files.clone(),
                    "friesland",
                    &query,
                    now,
                    5 * minute,
                )),
                "a delegation made out to a node the person does not belong to",
            ),
            (
                ijsselland,
                Carried::Delegation(delegated(
                    team_files.clone(),
                    "ijsselland",
                    &other,
                    now,
                    5 * minute,
                )),
                "a delegation of another request",
            ),
            (
                ijsselland,
                Carried::Delegation(delegated(
                    team_files.clone(),
                    "ijsselland",
                    &query,
                    now - 20 * minute,
                    5 * minute,
                )),
                "an expired delegation",
            ),
            (
                ijsselland,
                Carried::Delegation(delegated(
                    team_files.clone(),
                    "ijsselland",
                    &query,
                    now,
                    60 * minute,
                )),
                "a delegation valid for longer than 15 minutes",
            ),
            (
                ijsselland,
                Carried::Delegation({
                    // Signed with another key than the team certificate's.
                    let claims = pb::DelegationClaims {
                        forwarder: "ijsselland".to_owned(),
                        request_sha256: zicht_node::convert::request_digest(&query).to_vec(),
                        not_before_ms: now,
                        not_after_ms: now + 5 * minute,
                    };
                    let key = std::fs::read(c.f.pki.node(ijsselland).1).unwrap();
                    let cert = std::fs::read(&team_files.0).unwrap();
                    delegation(&claims, &key, &cert)
                }),
                "a forged signature",
            ),
            (
                ijsselland,
                Carried::Delegation(delegated(
                    c.f.pki.person("team-friesland"),
                    "ijsselland",
                    &query,
                    now,
                    5 * minute,
                )),
                "a person of another region",
            ),
            (
                NodeName::Region(Region::Twente),
                Carried::Delegation(delegated(
                    c.f.pki.node(NodeName::Region(Region::Twente)),
                    "twente",
                    &query,
                    now,
                    5 * minute,
                )),
                "a node certificate delegating as if it were a person",
            ),
        ];
        for (asker, carried, what) in attempts {
            let mut client = c.f.inway_as_node(asker).await;
            let mut call = request();
            match carried {
                Carried::Delegation(encoded) => {
                    call.metadata_mut().insert_bin(
                        zicht_node::identity::DELEGATION,
                        tonic::metadata::BinaryMetadataValue::from_bytes(&encoded),
                    );
                }
                Carried::Named(named) => {
                    call.metadata_mut()
                        .insert("zicht-on-behalf-of", named.as_str().parse().unwrap());
                }
            }
            let status = client.query(call).await.unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
            assert!(
                status.message().starts_with("delegation: "),
                "{what}: {status:?}"
            );
            let outcome =
                c.f.db
                    .strings("SELECT outcome FROM release_log ORDER BY entry_id DESC LIMIT 1")
                    .await;
            assert_eq!(outcome, ["refused: delegation"], "{what}");
        }
        // Nothing left: no youth's record was released to anyone.
        assert_eq!(
            c.f.db
                .scalar("SELECT COUNT(*) FROM processing_log WHERE body LIKE '%data_subject_id%'")
                .await,
            0
        );
        // The team's own delegation through its own node: its records, logged as given to it.
        let answer = c.ask_team(None).await;
        assert!(!answer.placements.is_empty());
        let given: Vec<String> =
            c.f.db
                .strings("SELECT body FROM processing_log WHERE body LIKE '%data_subject_id%'")
                .await;
        assert!(!given.is_empty());
        let team_id = team(&c.f).to_string();
        assert!(given
            .iter()
            .all(|body| body.contains(&format!("\"given_to\":\"{team_id}\""))));
    }
);
