//! A node over mutual TLS on 127.0.0.1 with a PKI made in the test: who gets in, who is
//! refused in the handshake, what the policy and limits refuse, and reloads without restart.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use zicht_model::{NodeName, PeerIdentity, Region, Role};
use zicht_node::Limits;
use zicht_pki::{CertificateAuthority, Subject, Validity};
use zicht_proto::v1 as pb;
use zicht_testkit::node::{channel, now, spawn_node, NodeFixture};
use zicht_testkit::queries::Ask;

const POLICY: &str = r#"
[[grant]]
role = "analyst:drenthe"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring"]
group_by = ["care_type", "placement_region", "provider", "setting", "location_municipality"]
quota_per_minute = 1000

[[grant]]
role = "network:jenn"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring", "bovenregionale-sturing"]
group_by = ["care_type", "placement_region"]
quota_per_minute = 3
"#;

async fn fixture(limits: Limits) -> NodeFixture {
    spawn_node(POLICY, limits).await
}

/// An `Inway` client of the fixture's node as drenthe's analyst.
async fn analyst_client(
    f: &NodeFixture,
) -> pb::inway_client::InwayClient<tonic::transport::Channel> {
    f.inway_as_person("analyst-drenthe").await
}

/// A question drenthe's analyst has no grant for.
fn no_grant_for_youth_in_care() -> tonic::Request<pb::QueryRequest> {
    Ask::new("youth_in_care")
        .purpose("capaciteitsmonitoring")
        .request()
}

/// A raw TLS 1.3 handshake as `client` (cert and key PEM, or none). Returns the server's
/// certificate, or the error the client saw. In TLS 1.3 the server judges the client
/// certificate after the client's Finished, so its verdict arrives on the first read.
async fn handshake(
    address: SocketAddr,
    ca_pem: &[u8],
    client: Option<(&[u8], &[u8])>,
) -> Result<CertificateDer<'static>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key).unwrap())
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut byte)).await {
        Ok(Ok(n)) if n > 0 => Ok(server_cert),
        Ok(Ok(_)) => Err("closed".to_owned()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer".to_owned()),
    }
}

fn read_pair(paths: (std::path::PathBuf, std::path::PathBuf)) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(paths.0).unwrap(),
        std::fs::read(paths.1).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_peer_is_served_exact_capacity() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    let result = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(result.dimensions, vec!["care_type"]);
    let places: f64 = result
        .rows
        .iter()
        .flat_map(|r| &r.statistics)
        .filter(|s| s.name == "places")
        .filter_map(|s| s.value)
        .sum();
    // The same figure straight from the database: latest count per facility on 2025-07-01.
    let expected =
        f.db.scalar("SELECT SUM(places) FROM capacity WHERE peildatum = '2025-07-01'")
            .await;
    assert_eq!(places as i64, expected);
    assert!(result.rows.len() >= 3, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_logged_first_and_no_log_means_no_answer() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    let released = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap()
        .into_inner();
    client
        .query(no_grant_for_youth_in_care())
        .await
        .unwrap_err();
    assert_eq!(
        f.db.strings("SELECT peer_id || ' ' || template || ' ' || group_by || ' ' || outcome || ' ' || CAST(result_rows AS TEXT) FROM release_log ORDER BY entry_id").await,
        vec![
            format!("00000098000000000001 capacity care_type released {}", released.rows.len()),
            "00000098000000000001 youth_in_care  refused: policy 0".to_owned(),
        ]
    );

    f.db.execute("DROP TABLE release_log").await;
    let status = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the node could not write its release log; nothing was released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_refuse_missing_foreign_expired_revoked_and_identityless_certificates() {
    let f = fixture(Limits::default()).await;
    let ca_pem = std::fs::read(f.pki.ca_cert()).unwrap();
    let address = f.node.address;
    let (cert, key) = read_pair(f.pki.person("analyst-drenthe"));
    assert!(handshake(address, &ca_pem, Some((&cert, &key)))
        .await
        .is_ok());

    let error = handshake(address, &ca_pem, None).await.unwrap_err();
    assert!(error.contains("CertificateRequired"), "{error}");

    let analyst = Subject {
        identity: PeerIdentity {
            peer_id: zicht_model::PeerId::parse("00000098000000000777").unwrap(),
            organisation: "Jeugdhulpregio Drenthe".to_owned(),
            role: Role::Analyst {
                region: Region::Drenthe,
                name: "mallory".to_owned(),
            },
        },
        dns_names: Vec::new(),
        ips: Vec::new(),
    };
    let foreign =
        CertificateAuthority::create("foreign root", Validity::days_from(now(), 10)).unwrap();
    let issued = foreign
        .issue(&analyst, Validity::days_from(now(), 1))
        .unwrap();
    let error = handshake(address, &ca_pem, Some((&issued.cert_pem, &issued.key_pem)))
        .await
        .unwrap_err();
    assert!(error.contains("UnknownCA"), "{error}");

    let ca = f.pki.authority().unwrap();
    let expired = ca
        .issue(
            &analyst,
            Validity {
                not_before: now() - 10 * 86_400,
                not_after: now() - 86_400,
            },
        )
        .unwrap();
    let error = handshake(
        address,
        &ca_pem,
        Some((&expired.cert_pem, &expired.key_pem)),
    )
    .await
    .unwrap_err();
    assert!(error.contains("CertificateExpired"), "{error}");

    let not_yet = ca
        .issue(
            &analyst,
            Validity {
                not_before: now() + 86_400,
                not_after: now() + 10 * 86_400,
            },
        )
        .unwrap();
    let error = handshake(
        address,
        &ca_pem,
        Some((&not_yet.cert_pem, &not_yet.key_pem)),
    )
    .await
    .unwrap_err();
    assert!(
        error.contains("CertificateExpired") || error.contains("BadCertificate"),
        "{error}"
    );

    let plain = ca
        .issue_without_identity("some tls client", Validity::days_from(now(), 1))
        .unwrap();
    let error = handshake(address, &ca_pem, Some((&plain.cert_pem, &plain.key_pem)))
        .await
        .unwrap_err();
    assert!(error.contains("fatal alert"), "{error}");

    // Revocation takes effect on the running node once it sees the new CRL.
    f.pki
        .revoke(&f.pki.person("analyst-drenthe").0, now())
        .unwrap();
    assert!(f.node.tls.reload_if_changed().unwrap());
    let error = handshake(address, &ca_pem, Some((&cert, &key)))
        .await
        .unwrap_err();
    assert!(error.contains("CertificateRevoked"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_ends_a_connection_opened_before_it() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();
    assert_eq!(f.node.tls.open_connections(), 1);

    f.pki
        .revoke(&f.pki.person("analyst-drenthe").0, now())
        .unwrap();
    // The reload that sees the new CRL closes the live connection of the revoked certificate.
    assert!(f.node.tls.reload_if_changed().unwrap());
    assert_eq!(f.node.tls.open_connections(), 0);
    // The channel opened before the revocation answers no more: its connection is gone and
    // a new handshake is refused. (Which code says so depends on where the client was when the
    // connection closed: Cancelled when it noticed before sending.)
    let status = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
        ),
        "{status:?}"
    );
    assert!(client
        .query(Ask::capacity().by("care_type").request())
        .await
        .is_err());
}

/// How many of `refused` were refused by policy and how many turned away by the refusal guard
/// (each with when to retry); anything else fails the test.
fn tally(refused: &[tonic::Status]) -> (usize, usize) {
    let (mut denied, mut turned_away) = (0, 0);
    for status in refused {
        match status.code() {
            Code::PermissionDenied => denied += 1,
            Code::ResourceExhausted => {
                assert!(status.metadata().get("retry-after-ms").is_some());
                turned_away += 1;
            }
            other => panic!("{other:?}: {status:?}"),
        }
    }
    (denied, turned_away)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_requests_writes_a_bounded_log() {
    let limits = Limits {
        refusals_per_minute: 5,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    // twente's node has no grant at this node.
    let mut client = f.inway_as_node(NodeName::Region(Region::Twente)).await;
    let mut refused = Vec::new();
    for _ in 0..300 {
        let status = client.query(Ask::capacity().request()).await.unwrap_err();
        refused.push(status);
    }
    let (denied, turned_away) = tally(&refused);
    assert_eq!(
        (denied, turned_away),
        (6, 294),
        "five refusals, one over, then muted"
    );
    let logged = f.db.scalar("SELECT COUNT(*) FROM processing_log").await;
    assert!(logged <= 6, "{logged} entries for 300 refused requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_audit_reads_writes_a_bounded_log() {
    let limits = Limits {
        refusals_per_minute: 5,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    // The analyst may not read audit logs.
    let channel = f.channel_as_person("analyst-drenthe").await;
    let mut audit = pb::audit_client::AuditClient::new(channel);
    let mut refused = Vec::new();
    for _ in 0..200 {
        refused.push(audit.verify(pb::VerifyRequest {}).await.unwrap_err());
    }
    assert_eq!(tally(&refused), (6, 194));
    let logged = f.db.scalar("SELECT COUNT(*) FROM processing_log").await;
    assert!(logged <= 6, "{logged} entries for 200 refused reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disclosure_settings_are_for_peers_and_grantees_and_logged() {
    let f = fixture(Limits::default()).await;
    let ask = |holder| {
        let (pki, address) = (&f.pki, f.node.address);
        async move {
            let channel = channel(pki, holder, address).await;
            pb::inway_client::InwayClient::new(channel)
                .get_disclosure_settings(pb::DisclosureSettingsRequest {})
                .await
        }
    };
    // A node of the federation, with or without a grant here, reads them.
    let settings = ask(f.pki.node(NodeName::Region(Region::Twente)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.max_deviation, 4);
    // The auditor has no grant at this node.
    let status = ask(f.pki.person("auditor")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().starts_with("missing grant: "),
        "{status:?}"
    );
    assert_eq!(
        f.db.strings("SELECT outcome FROM release_log ORDER BY entry_id")
            .await,
        vec![
            "released disclosure settings".to_owned(),
            "refused: policy".to_owned()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_node_certificate_is_served_without_restart() {
    let f = fixture(Limits::default()).await;
    let ca_pem = std::fs::read(f.pki.ca_cert()).unwrap();
    let (analyst_cert, analyst_key) = read_pair(f.pki.person("analyst-drenthe"));
    let before = handshake(f.node.address, &ca_pem, Some((&analyst_cert, &analyst_key)))
        .await
        .unwrap();

    let drenthe = NodeName::Region(Region::Drenthe);
    let subject = Subject {
        identity: PeerIdentity {
            peer_id: drenthe.dev_peer_id(),
            organisation: "Jeugdhulpregio Drenthe".to_owned(),
            role: Role::Region(Region::Drenthe),
        },
        dns_names: vec!["localhost".to_owned()],
        ips: vec![[127, 0, 0, 1].into()],
    };
    let rotated = f
        .pki
        .authority()
        .unwrap()
        .issue(&subject, Validity::days_from(now(), 30))
        .unwrap();
    let (cert_path, key_path) = f.pki.node(drenthe);
    zicht_pki::write_private(&key_path, &rotated.key_pem).unwrap();
    std::fs::write(&cert_path, &rotated.cert_pem).unwrap();
    assert!(f.node.tls.reload_if_changed().unwrap());

    let after = handshake(f.node.address, &ca_pem, Some((&analyst_cert, &analyst_key)))
        .await
        .unwrap();
    assert_ne!(before, after);
    assert_eq!(
        after.as_ref(),
        zicht_pki::pem_to_der(&rotated.cert_pem).unwrap().as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_refusals_are_permission_denied_and_name_the_grant() {
    let f = fixture(Limits::default()).await;
    let mut client = f
        .inway_as_node(NodeName::Network(zicht_model::Network::Jenn))
        .await;
    let check = |status: tonic::Status, expect: &str| {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(status.message(), expect);
    };
    check(
        client
            .query(Ask::capacity().purpose("").request())
            .await
            .unwrap_err(),
        "a purpose (processing activity) is required",
    );
    check(
        client
            .query(Ask::capacity().purpose("nieuwsgierigheid").request())
            .await
            .unwrap_err(),
        "unknown purpose; registered purposes are capaciteitsmonitoring, bovenregionale-sturing, 18plus-monitoring, triage-plaatsing, warme-overdracht",
    );
    check(
        client.query(Ask::new("youth_in_care").peildatum(2025, 7, 1).request()).await.unwrap_err(),
        "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not call template youth_in_care",
    );
    check(
        client.query(Ask::capacity().purpose("triage-plaatsing").request()).await.unwrap_err(),
        "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not call capacity for purpose triage-plaatsing",
    );
    check(
        client.query(Ask::capacity().by_all(&["care_type", "provider"]).request()).await.unwrap_err(),
        "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not group capacity by provider for purpose capaciteitsmonitoring",
    );
    // A node without any grant is refused by name too.
    let status = f
        .inway_as_node(NodeName::Region(Region::Twente))
        .await
        .query(Ask::capacity().request())
        .await
        .unwrap_err();
    check(
        status,
        "no grant for 00000099000000000004 (urn:zicht:region:twente)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_is_resource_exhausted_with_retry_information() {
    let f = fixture(Limits::default()).await;
    let mut client = f
        .inway_as_node(NodeName::Network(zicht_model::Network::Jenn))
        .await;
    for _ in 0..3 {
        client
            .query(Ask::capacity().by("care_type").request())
            .await
            .unwrap();
    }
    let status = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with("quota of 3 requests per minute exceeded; retry after "),
        "{}",
        status.message()
    );
    let retry: u64 = status
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 20_000, "{retry}");
    // Another caller's quota is its own.
    analyst_client(&f)
        .await
        .query(Ask::capacity().request())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_over_complex_and_deadline_less_requests_are_invalid_argument() {
    let limits = Limits {
        max_request_bytes: 1024,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    let mut client = analyst_client(&f).await;
    let check = |status: tonic::Status, expect: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(expect), "{}", status.message());
    };
    let mut big = Ask::capacity().request();
    big.get_mut().filters.push(pb::Filter {
        dimension: "provider".to_owned(),
        values: vec!["x".repeat(1500)],
        exclude: false,
    });
    check(
        client.query(big).await.unwrap_err(),
        "the limit max_request_bytes is 1024",
    );
    check(
        client
            .query(
                Ask::capacity()
                    .by_all(&["care_type", "provider", "setting", "placement_region"])
                    .request(),
            )
            .await
            .unwrap_err(),
        "group_by has 4 dimensions; the limit max_group_by is 3",
    );
    check(
        client
            .query(
                Ask::capacity()
                    .by_all(&["provider", "location_municipality", "care_type"])
                    .request(),
            )
            .await
            .unwrap_err(),
        "the limit max_cells is 5000",
    );
    let mut no_deadline = Ask::capacity().request();
    no_deadline.metadata_mut().remove("grpc-timeout");
    check(
        client.query(no_deadline).await.unwrap_err(),
        "a deadline is required",
    );
    let mut long = Ask::capacity().request();
    long.set_timeout(Duration::from_secs(3600));
    check(
        client.query(long).await.unwrap_err(),
        "the limit max_deadline of 30000 ms",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer() {
    let f = fixture(Limits::default()).await;
    let channel = f.channel_as_person("analyst-drenthe").await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "zicht.v1.Inway".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        ServerReflectionRequest,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"zicht.v1.Inway".to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_counts_leave_only_after_disclosure_control() {
    let policy = format!(
        "{POLICY}\n[[grant]]\nrole = \"analyst:drenthe\"\ntemplates = [\"youth_in_care\", \"transition18\"]\npurposes = [\"bovenregionale-sturing\"]\ngroup_by = [\"stay_group\", \"origin_region\", \"toekomstplan\"]\nquota_per_minute = 1000\n"
    );
    let f = spawn_node(&policy, Limits::default()).await;
    let mut client = analyst_client(&f).await;

    let request = || {
        Ask::youth_in_care(2024)
            .by_all(&["origin_region", "stay_group"])
            .request()
    };
    let result = client.query(request()).await.unwrap().into_inner();
    // Every combination is listed (drenthe and onbekend x four stay groups), zeros too.
    assert_eq!(result.rows.len(), 8, "{result:?}");
    let youths = youths_in_care_2024(&f).await;
    let published = |cell: &Option<pb::CellValue>| match cell.as_ref().unwrap().value.as_ref() {
        Some(pb::cell_value::Value::Perturbed(p)) => {
            assert_eq!(p.max_deviation, 4);
            assert!(p.value == 0 || p.value > 2, "never 1..js");
            p.value
        }
        other => panic!("not perturbed: {other:?}"),
    };
    let total = published(&result.total);
    assert!(total.abs_diff(youths) <= 3, "{total} vs {youths}");
    for row in &result.rows {
        published(&row.count);
    }
    assert!(result
        .rules_applied
        .iter()
        .any(|r| r.starts_with("cell-key perturbation (D=4 V=2 js=3)")));
    // The same question again publishes the same numbers.
    let again = client.query(request()).await.unwrap().into_inner();
    assert_eq!(again, result);

    // No checks at all on that day: refused by the population floor, naming only the rule.
    let request = Ask::new("transition18")
        .by("toekomstplan")
        .peildatum(1990, 1, 1)
        .request();
    let status = client.query(request).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.message(),
        "refused by disclosure control: population-floor: the published total is below 5; ask with a wider scope or fewer filters"
    );
    assert_eq!(
        f.db.strings("SELECT template || ' ' || outcome FROM release_log ORDER BY entry_id")
            .await,
        vec![
            "youth_in_care released".to_owned(),
            "youth_in_care released".to_owned(),
            "transition18 refused: population-floor".to_owned()
        ]
    );
    let populations =
        f.db.scalar(
            "SELECT COUNT(*) FROM released_populations WHERE requester = '00000098000000000001'",
        )
        .await;
    assert_eq!(populations, 1, "one population, asked twice");

    let settings = client
        .get_disclosure_settings(pb::DisclosureSettingsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(settings.max_deviation, 4);
    assert_eq!(settings.js, 3);
    assert_eq!(settings.max_dimensions, 2);
    assert_eq!(settings.period_granularity, "month");
    assert_eq!(settings.floor.as_ref().unwrap().max_deviation, 4);
    assert_eq!(settings.floor.as_ref().unwrap().max_dimensions, 3);
    assert!(settings.ptable_problems.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regions_own_analysts_see_exact_counts_under_an_owner_grant() {
    let policy = format!(
        "{POLICY}\n[[grant]]\nrole = \"analyst:drenthe\"\nowner = true\ntemplates = [\"youth_in_care\"]\npurposes = [\"bovenregionale-sturing\"]\ngroup_by = [\"stay_group\"]\nquota_per_minute = 1000\n"
    );
    let f = spawn_node(&policy, Limits::default()).await;
    let mut client = analyst_client(&f).await;
    let request = Ask::youth_in_care(2024).by("stay_group").request();
    let result = client.query(request).await.unwrap().into_inner();
    let youths = youths_in_care_2024(&f).await;
    assert_eq!(
        result.total.unwrap().value,
        Some(pb::cell_value::Value::Exact(youths))
    );
    assert_eq!(
        result.rules_applied,
        vec![
            "exact counts: for the data's owner (the region's own analysts and database)"
                .to_owned()
        ]
    );
    let populations =
        f.db.scalar("SELECT COUNT(*) FROM released_populations")
            .await;
    assert_eq!(populations, 0, "the owner's questions are not limited");
}

/// Distinct youths with a placement overlapping 2024, read from the node's database.
async fn youths_in_care_2024(f: &NodeFixture) -> u64 {
    f.db.scalar("SELECT COUNT(DISTINCT youth_id) FROM placements WHERE start_date <= '2024-12-31' AND (end_date IS NULL OR end_date >= '2024-01-01')")
        .await as u64
}

/// `GET path` on a plaintext port with an HTTP/1.1 client: the status and the body.
async fn http_get(address: SocketAddr, path: &str) -> (http::StatusCode, String) {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<&'static [u8]>>();
    let uri: http::Uri = format!("http://{address}{path}").parse().unwrap();
    let response = client.get(uri).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_count_requests_refusals_and_audit_writes() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();
    client
        .query(no_grant_for_youth_in_care())
        .await
        .unwrap_err();
    let address = f.node.metrics_address.unwrap();
    let (status, text) = http_get(address, "/metrics").await;
    assert_eq!(status, http::StatusCode::OK);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                other => panic!("{name}: {other:?}"),
            })
    };
    let rpc = ("rpc", "zicht.v1.Inway/Query");
    assert_eq!(
        value("zicht_requests_total", &[rpc, ("outcome", "released")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("zicht_requests_total", &[rpc, ("outcome", "policy")]),
        Some(1.0)
    );
    // Histograms: every observation falls in the +Inf bucket.
    assert_eq!(value("zicht_request_duration_seconds", &[rpc]), Some(2.0));
    assert_eq!(value("zicht_audit_write_duration_seconds", &[]), Some(2.0));
    // The cap as fitted to the descriptor limit: at most the configured 1024.
    assert!(value("zicht_connections_max", &[]).is_some_and(|cap| (1.0..=1024.0).contains(&cap)));
    assert_eq!(
        http_get(address, "/other").await.0,
        http::StatusCode::NOT_FOUND
    );
}

/// A checkpoint body naming `node` at position `seq` of both chains, padded with `pad`
/// spaces, signed with `key` (a PEM file).
fn checkpoint_signed_by(
    key: &std::path::Path,
    node: NodeName,
    seq: i64,
    pad: usize,
) -> pb::SignedCheckpoint {
    let head = zicht_audit::ChainHead {
        seq,
        head: "ab".repeat(32),
    };
    let checkpoint = zicht_audit::Checkpoint {
        node: match node {
            NodeName::Region(region) => Role::Region(region),
            NodeName::Network(network) => Role::Network(network),
        }
        .uri(),
        processing: head.clone(),
        access: head,
        time: now() * 1000 + pad as i64,
    };
    let mut body = zicht_audit::body(&checkpoint);
    body.push_str(&" ".repeat(pad));
    let key = std::fs::read(key).unwrap();
    pb::SignedCheckpoint {
        signature: zicht_pki::sign(&key, body.as_bytes()).unwrap(),
        body,
        certificate: Vec::new(),
    }
}

/// A checkpoint of `node` at `seq`, padded with `pad` spaces, signed with its dev key.
fn signed_checkpoint(
    f: &NodeFixture,
    node: NodeName,
    seq: i64,
    pad: usize,
) -> pb::SignedCheckpoint {
    checkpoint_signed_by(&f.pki.node(node).1, node, seq, pad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_pushes_are_size_capped_rate_limited_logged_and_pruned() {
    let limits = Limits {
        checkpoint_max_bytes: 4096,
        checkpoints_per_minute: 4,
        checkpoints_kept: 2,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    let twente = NodeName::Region(Region::Twente);
    let channel = f.channel_as_node(twente).await;
    let mut client = pb::checkpoints_client::CheckpointsClient::new(channel);

    // 100 KB: refused by the decoder before the handler (nothing stored, nothing to log).
    let status = client
        .push(signed_checkpoint(&f, twente, 1, 100_000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    // Over the cap but within what is decoded: refused by the handler, named, logged.
    let status = client
        .push(signed_checkpoint(&f, twente, 1, 6_000))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains("the limit checkpoint_max_bytes is 4096"),
        "{status:?}"
    );
    // Signed by someone else (its own key, another node's name): refused.
    let mut forged = signed_checkpoint(&f, NodeName::Region(Region::Drenthe), 1, 0);
    forged.body = forged.body.replace("drenthe", "twente");
    let status = client.push(forged).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Three good ones fill the rate of four a minute; the fifth push is over it.
    for pad in 1..=3 {
        client
            .push(signed_checkpoint(&f, twente, pad as i64, pad))
            .await
            .unwrap();
    }
    let status = client
        .push(signed_checkpoint(&f, twente, 4, 4))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Two are kept.
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM checkpoints").await, 2);
    let kept =
        f.db.strings("SELECT body FROM checkpoints ORDER BY id")
            .await;
    // The newest, and of the older ones the oldest (a spread by position, not the latest).
    assert!(
        kept[0].ends_with(' ') && !kept[0].ends_with("  "),
        "{kept:?}"
    );
    assert!(
        kept[1].ends_with("   ") && !kept[1].ends_with("    "),
        "{kept:?}"
    );
    // Every push the handler saw is logged with its outcome.
    assert_eq!(
        f.db.strings("SELECT outcome FROM release_log ORDER BY entry_id")
            .await,
        [
            "refused: limit-or-invalid",
            "refused: bad-checkpoint",
            "kept checkpoint",
            "kept checkpoint",
            "kept checkpoint",
            "refused: quota",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_sockets_is_capped_and_the_node_keeps_answering_and_logging() {
    let limits = Limits {
        max_connections: 6,
        max_handshakes: 3,
        handshake_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let f = fixture(limits).await;
    let mut client = analyst_client(&f).await;
    client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();

    // 50 connections that never start TLS.
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(
            tokio::net::TcpStream::connect(f.node.address)
                .await
                .unwrap(),
        );
    }
    // The connection opened before the flood is still served, and its answers still logged.
    let logged = f.db.scalar("SELECT COUNT(*) FROM release_log").await;
    for _ in 0..5 {
        client
            .query(Ask::capacity().by("care_type").request())
            .await
            .unwrap();
    }
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM release_log").await,
        logged + 5
    );
    let (_, metrics) = http_get(f.node.metrics_address.unwrap(), "/metrics").await;
    let refused: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("zicht_connections_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(refused >= 45, "{refused} refused of 50\n{metrics}");
    assert!(metrics.contains("zicht_connections_max 6"), "{metrics}");

    // Once the idle sockets are gone (or their handshake time is up), new callers get in.
    drop(idle);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut fresh = analyst_client(&f).await;
    fresh
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_long_past_its_next_update_fails_closed() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();

    // A CRL issued 40 days ago, due 30 days after: 10 days past its nextUpdate, more than
    // the default grace of 7 days. It revokes the auditor only.
    f.pki
        .revoke(&f.pki.person("auditor").0, now() - 40 * 86_400)
        .unwrap();
    assert!(f.node.tls.reload_if_changed().unwrap());
    assert!(f.node.tls.crl_overdue(now()));
    // The live connection is closed and no certificate gets a new handshake.
    assert_eq!(f.node.tls.open_connections(), 0);
    assert!(client
        .query(Ask::capacity().by("care_type").request())
        .await
        .is_err());
    let ca_pem = std::fs::read(f.pki.ca_cert()).unwrap();
    let (cert, key) = read_pair(f.pki.person("analyst-drenthe"));
    let error = handshake(f.node.address, &ca_pem, Some((&cert, &key)))
        .await
        .unwrap_err();
    // rustls sends an expired-CRL refusal as the UnknownCA alert; the node's log says why.
    assert!(error.contains("UnknownCA"), "{error}");

    // A CRL 2 days past its nextUpdate is within the grace.
    f.pki
        .revoke(&f.pki.person("auditor").0, now() - 32 * 86_400)
        .unwrap();
    assert!(f.node.tls.reload_if_changed().unwrap());
    assert!(!f.node.tls.crl_overdue(now()));
    assert!(handshake(f.node.address, &ca_pem, Some((&cert, &key)))
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_outside_the_calendar_range_are_refused_with_the_field() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    let at = |year, month, day| {
        Ask::capacity()
            .by("care_type")
            .peildatum(year, month, day)
            .request()
    };
    for (request, expect) in [
        (
            at(10000, 1, 1),
            "peildatum: dates run from 1900-01-01 to 2100-12-31",
        ),
        (
            at(1899, 12, 31),
            "peildatum: dates run from 1900-01-01 to 2100-12-31",
        ),
        (at(2024, 2, 30), "peildatum: not a valid calendar date"),
    ] {
        let status = client.query(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), expect);
    }
    // The last day of the range is a date like any other.
    client.query(at(2100, 12, 31)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answering_in_another_nodes_name_is_not_believed() {
    let f = fixture(Limits::default()).await;
    let (cert, key) = f.pki.person("analyst-drenthe");
    let tls = zicht_node::TlsFiles {
        ca: f.pki.ca_cert(),
        cert,
        key,
        crl: Some(f.pki.crl()),
    };
    let at_drenthe = |node: NodeName| zicht_node::ManifestPeer {
        node,
        address: f.node.address.into(),
        peer_id: node.dev_peer_id(),
    };
    // The manifest says drenthe listens here: answered.
    let drenthe = zicht_node::channel_to(&at_drenthe(NodeName::Region(Region::Drenthe)), &tls);
    pb::inway_client::InwayClient::new(drenthe)
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();
    // A manifest naming twente at this address: drenthe's valid certificate does not pass.
    let twente = zicht_node::channel_to(&at_drenthe(NodeName::Region(Region::Twente)), &tls);
    let status = pb::inway_client::InwayClient::new(twente)
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_search_column_is_tampering_to_the_audit_service() {
    let f = fixture(Limits::default()).await;
    let mut client = analyst_client(&f).await;
    client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap();
    // Hide the entry from a search by its trace id, leaving the hashed body as it was.
    f.db.execute(
        "UPDATE processing_log SET trace_id = '00000000000000000000000000000000' WHERE seq = 1",
    )
    .await;

    let auditor = f.channel_as_person("auditor").await;
    let mut audit = pb::audit_client::AuditClient::new(auditor);
    let verified = audit
        .verify(pb::VerifyRequest {})
        .await
        .unwrap()
        .into_inner();
    let processing = verified
        .chains
        .iter()
        .find(|c| c.log == pb::AuditLogKind::Processing as i32)
        .unwrap();
    assert_eq!(
        processing.broken,
        "entry 1: its search columns do not match its contents"
    );
}

/// A certificate of the fixture's own CA for `peer_id` and `role` (the CA issues what it is
/// asked: a mis-issued or compromised certificate), written next to the dev PKI; its files.
fn issued(
    f: &NodeFixture,
    name: &str,
    peer_id: &str,
    role: Role,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let identity = PeerIdentity {
        peer_id: zicht_model::PeerId::parse(peer_id).unwrap(),
        organisation: "Mis-issued".to_owned(),
        role,
    };
    f.issue(name, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_unknown_signer_checkpoints_never_evict_the_newest_genuine_one() {
    let limits = Limits {
        checkpoints_kept: 3,
        checkpoints_per_minute: 1000,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    let friesland = NodeName::Region(Region::Friesland);
    let mut genuine =
        pb::checkpoints_client::CheckpointsClient::new(f.channel_as_node(friesland).await);
    genuine
        .push(signed_checkpoint(&f, friesland, 30, 0))
        .await
        .unwrap();
    genuine
        .push(signed_checkpoint(&f, friesland, 289, 0))
        .await
        .unwrap();
    // Its oldest, three times again: refused, never kept in the newest's place.
    for _ in 0..3 {
        let status = genuine
            .push(signed_checkpoint(&f, friesland, 30, 1))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("not newer"), "{status:?}");
    }
    // A CA-issued region:friesland certificate whose PeerID is not the manifest's: refused,
    // whatever position it claims.
    let rogue = issued(
        &f,
        "rogue-friesland",
        "00000098000000000999",
        Role::Region(Region::Friesland),
    );
    let mut impostor = pb::checkpoints_client::CheckpointsClient::new(
        channel(&f.pki, rogue.clone(), f.node.address).await,
    );
    for seq in [1_000, 2_000, 3_000] {
        let status = impostor
            .push(checkpoint_signed_by(&rogue.1, friesland, seq, 0))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(
            status
                .message()
                .contains("is not the PeerID this node's federation manifest lists for friesland"),
            "{status:?}"
        );
    }
    assert_eq!(
        f.db.strings(
            "SELECT CAST(processing_seq AS TEXT) FROM checkpoints ORDER BY processing_seq"
        )
        .await,
        ["30", "289"]
    );
    let outcomes =
        f.db.strings("SELECT outcome FROM release_log ORDER BY entry_id")
            .await;
    assert_eq!(
        outcomes,
        [
            "kept checkpoint",
            "kept checkpoint",
            "refused: bad-checkpoint",
            "refused: bad-checkpoint",
            "refused: bad-checkpoint",
            "refused: unlisted-node",
            "refused: unlisted-node",
            "refused: unlisted-node",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_outside_the_manifest_is_served_nothing_and_mutes_no_one_else() {
    let limits = Limits {
        refusals_per_minute: 3,
        ..Limits::default()
    };
    let f = fixture(limits).await;
    let jenn = NodeName::Network(zicht_model::Network::Jenn);
    // A network:jenn certificate with another PeerID: the Inway serves it nothing.
    let rogue = issued(
        &f,
        "rogue-jenn",
        "00000098000000000998",
        Role::Network(zicht_model::Network::Jenn),
    );
    let mut client =
        pb::inway_client::InwayClient::new(channel(&f.pki, rogue, f.node.address).await);
    let status = client
        .query(Ask::capacity().by("care_type").request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("is not the PeerID this node's federation manifest lists for jenn"),
        "{status:?}"
    );
    let mut settings = tonic::Request::new(pb::DisclosureSettingsRequest {});
    settings.set_timeout(Duration::from_secs(5));
    let status = client.get_disclosure_settings(settings).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A person's certificate mis-issued with jenn's PeerID: its refusals mute it, not jenn.
    let mallory = issued(
        &f,
        "mallory",
        jenn.dev_peer_id().as_str(),
        Role::Analyst {
            region: Region::Drenthe,
            name: "mallory".to_owned(),
        },
    );
    let mut mallory =
        pb::inway_client::InwayClient::new(channel(&f.pki, mallory, f.node.address).await);
    let mut refused = Vec::new();
    for _ in 0..10 {
        refused.push(
            mallory
                .query(no_grant_for_youth_in_care())
                .await
                .unwrap_err(),
        );
    }
    let (_, turned_away) = tally(&refused);
    assert!(turned_away > 0, "mallory is muted");
    let mut real = f.inway_as_node(jenn).await;
    real.query(Ask::capacity().by("care_type").request())
        .await
        .expect("jenn's own certificate is still heard");
}

/// A channel over mutual TLS as `person` of the dev PKI, or the error of trying within 2 s.
async fn try_channel(f: &NodeFixture, person: &str) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let (cert, key) = f.pki.person(person);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(
            std::fs::read(f.pki.ca_cert()).unwrap(),
        ))
        .identity(Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ))
        .domain_name("localhost");
    tonic::transport::Channel::from_shared(format!("https://{}", f.node.address))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_and_slow_handshakes_from_one_address_do_not_lock_new_clients_out() {
    let f = fixture(Limits::default()).await;
    let address = f.node.address;
    // One address opens 500 sockets that never speak, and 200 that start a handshake (a
    // record header announcing a ClientHello) and stall; it opens them again as they are
    // closed, every 200 ms, for as long as the test runs (at most 40 s).
    const ATTACKER: [u8; 4] = [127, 0, 0, 2];
    let attack = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..200 {
            // Those the node closed (or that broke) are opened again.
            held.retain(|(socket, _): &(tokio::net::TcpStream, bool)| {
                let mut probe = [0u8; 1];
                matches!(socket.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            });
            let idle = held.iter().filter(|(_, slow)| !slow).count();
            let slow = held.len() - idle;
            for _ in idle..500 {
                if let Ok(socket) = connect_from(ATTACKER, address).await {
                    held.push((socket, false));
                }
            }
            for _ in slow..200 {
                if let Ok(mut socket) = connect_from(ATTACKER, address).await {
                    let _ = socket.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await;
                    held.push((socket, true));
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut served = 0;
    for _ in 0..20 {
        let attempt = tokio::time::timeout(Duration::from_secs(2), async {
            let channel = try_channel(&f, "analyst-drenthe").await?;
            let mut client = pb::inway_client::InwayClient::new(channel);
            client
                .query(Ask::capacity().by("care_type").request())
                .await
                .map_err(|status| status.to_string())
        })
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            served += 1;
        }
    }
    attack.abort();
    assert!(served >= 19, "{served} of 20 new clients served within 2 s");
    let (_, metrics) = http_get(f.node.metrics_address.unwrap(), "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("zicht_connections_refused_total{")
                && line.contains("reason=\"handshakes\"")),
        "pending handshakes were shed\n{metrics}"
    );
}
