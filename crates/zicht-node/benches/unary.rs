//! Unary requests per second of one node: over mutual TLS 1.3 (the real listener), next to the
//! same `Inway` handler served over plaintext HTTP/2 with the caller's identity injected, in the
//! same run. The request is a `capacity` query grouped by care type on SQLite.
//!
//! Then delegations: the jenn node asking the same question on its own, next to asking it for
//! drenthe's analyst with the analyst's signed delegation (one per question, as an Outway
//! forwards it to every member: the node checks it once, then finds it checked), and with a
//! new delegation on every request (every one checked in full: chain, CRL, signature).
//!
//! With `--features unaudited` it also measures the same mutual-TLS node with its audit write
//! switched off, in the same run, and prints fail-closed audit's throughput against it; and the
//! node with its pre-policy refusal guard and connection caps switched off, both for requests
//! on open connections and for a new connection (handshake) per request, and prints the
//! guarded throughput against it.
//!
//! `cargo bench -p zicht-node --bench unary [--features unaudited]`; `ZICHT_BENCH_REQUESTS`
//! (default 20,000) and `ZICHT_BENCH_CONCURRENCY` (default 32) change the load;
//! `ZICHT_BENCH_OPERATION_SPANS=1` installs the subscriber layer that makes operation spans
//! OpenTelemetry spans, as the `zicht` binary does (compare two runs). Loopback only.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prost::Message as _;
use tonic::metadata::BinaryMetadataValue;
use tonic::transport::Channel;
use zicht_model::NodeName;
use zicht_node::identity::Delegator;
use zicht_node::Inway;
use zicht_node::{Limits, PeerInfo};
use zicht_proto::v1 as pb;

const POLICY: &str = r#"
[[grant]]
role = "analyst:drenthe"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring"]
group_by = ["care_type"]
quota_per_minute = 100000000

[[grant]]
role = "network:jenn"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring"]
group_by = ["care_type"]
quota_per_minute = 100000000
"#;

/// How a request of [`load`] names a person.
#[derive(Clone, Copy)]
enum Delegating<'a> {
    /// It does not: the caller asks on its own.
    No,
    /// The same delegation on every request (one question, asked again).
    Once(&'a BinaryMetadataValue),
    /// A new one signed for every request.
    Each(&'a Delegator),
}
fn request() -> tonic::Request<pb::QueryRequest> {
    let mut request = tonic::Request::new(
        zicht_testkit::queries::Ask::capacity()
            .by("care_type")
            .wire(),
    );
    request.set_timeout(Duration::from_secs(10));
    request
}

/// Runs `total` requests with `concurrency` in flight; returns requests/s, p50 and p99.
async fn load(channel: Channel, total: usize, concurrency: usize) -> (f64, Duration, Duration) {
    load_as(channel, total, concurrency, Delegating::No).await
}

/// [`load`], each request naming a person as `delegating` says.
async fn load_as(
    channel: Channel,
    total: usize,
    concurrency: usize,
    delegating: Delegating<'_>,
) -> (f64, Duration, Duration) {
    let per_task = total / concurrency;
    let jenn = NodeName::Network(zicht_model::Network::Jenn);
    // Signed and encoded before the clock starts: what is measured is the node.
    let headers: Vec<Vec<Option<BinaryMetadataValue>>> = (0..concurrency)
        .map(|_| {
            (0..per_task)
                .map(|_| match delegating {
                    Delegating::No => None,
                    Delegating::Once(header) => Some(header.clone()),
                    Delegating::Each(delegator) => {
                        let delegation = delegator.delegate(jenn, request().get_ref()).unwrap();
                        Some(BinaryMetadataValue::from_bytes(&delegation.encode_to_vec()))
                    }
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for delegations in headers {
        let mut client = pb::inway_client::InwayClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for delegation in delegations {
                let mut asked = request();
                if let Some(header) = delegation {
                    asked
                        .metadata_mut()
                        .insert_bin(zicht_node::identity::DELEGATION, header);
                }
                let one = Instant::now();
                client.query(asked).await.unwrap();
                latencies.push(one.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var("ZICHT_BENCH_OPERATION_SPANS").is_ok_and(|v| v == "1") {
        zicht_testkit::otlp::install_operation_spans();
        println!("operation spans: OpenTelemetry layer installed (no node exports)");
    }
    let total: usize = std::env::var("ZICHT_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let concurrency: usize = std::env::var("ZICHT_BENCH_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    // Mutual TLS: the real node, from the testkit.
    let fixture = zicht_testkit::node::spawn_node(POLICY, Limits::default()).await;
    let (pki, db) = (&fixture.pki, &fixture.db);
    let (analyst_cert, analyst_key) = pki.person("analyst-drenthe");

    // Plaintext: the same service, identity added by an interceptor instead of a handshake.
    let identity = zicht_pki::identity_of(
        &zicht_pki::pem_to_der(&std::fs::read(&analyst_cert).unwrap()).unwrap(),
    )
    .unwrap();
    let inway = Inway::new(
        zicht_node::policy::parse_policy(POLICY, None).unwrap(),
        Limits::default(),
        Some(db.store.clone()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_address: SocketAddr = listener.local_addr().unwrap();
    let info = PeerInfo {
        identity,
        remote: plain_address,
        certificate: Vec::new(),
    };
    let service = pb::inway_server::InwayServer::with_interceptor(
        inway,
        move |mut request: tonic::Request<()>| {
            request.extensions_mut().insert(info.clone());
            Ok(request)
        },
    );
    // TCP_NODELAY as on the TLS listener, or Nagle's algorithm dominates the baseline.
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |stream| {
            stream.inspect(|s| {
                let _ = s.set_nodelay(true);
            })
        },
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    let plain = Channel::from_shared(format!("http://{plain_address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mtls =
        zicht_testkit::node::channel(pki, (analyst_cert, analyst_key), fixture.node.address).await;

    println!("unary capacity queries, {total} requests, {concurrency} in flight, one HTTP/2 connection each\n");
    // Warm both up, then alternate so drift on a shared machine hits both alike.
    load(plain.clone(), 1_000, concurrency).await;
    load(mtls.clone(), 1_000, concurrency).await;
    let mut plain_rates = Vec::new();
    let mut mtls_rates = Vec::new();
    for round in 1..=2 {
        let (rate, p50, p99) = load(plain.clone(), total / 2, concurrency).await;
        println!("round {round} plaintext h2 (baseline)  {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
        plain_rates.push(rate);
        let (rate, p50, p99) = load(mtls.clone(), total / 2, concurrency).await;
        println!("round {round} mutual TLS 1.3           {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
        mtls_rates.push(rate);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "\nmutual TLS / plaintext throughput: {:.2}",
        mean(&mtls_rates) / mean(&plain_rates)
    );
    delegations(&fixture, total, concurrency).await;
    #[cfg(feature = "unaudited")]
    {
        use std::sync::atomic::Ordering;
        let logged = db.scalar("SELECT COUNT(*) FROM processing_log").await;
        let (mut unaudited_rates, mut audited_rates) = (Vec::new(), Vec::new());
        for round in 1..=2 {
            zicht_node::UNAUDITED.store(true, Ordering::Relaxed);
            let (rate, p50, p99) = load(mtls.clone(), total / 2, concurrency).await;
            zicht_node::UNAUDITED.store(false, Ordering::Relaxed);
            println!("round {round} mutual TLS, audit off     {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
            unaudited_rates.push(rate);
            let (rate, p50, p99) = load(mtls.clone(), total / 2, concurrency).await;
            println!("round {round} mutual TLS, audit on      {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3);
            audited_rates.push(rate);
        }
        // Only the audited rounds were logged: the switch really was off in between.
        let added = db.scalar("SELECT COUNT(*) FROM processing_log").await - logged;
        assert_eq!(added as usize, 2 * (total / 2 / concurrency * concurrency));
        println!(
            "\nfail-closed audit / audit off throughput: {:.2} (every audited request logged: {added} entries)",
            mean(&audited_rates) / mean(&unaudited_rates)
        );

        // The refusal guard (every request) and the connection caps (every connection).
        let connect = || {
            zicht_testkit::node::channel(pki, pki.person("analyst-drenthe"), fixture.node.address)
        };
        let connections = (total / 40).max(100);
        let (mut guarded, mut unguarded) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        // Four rounds, the order flipped each round, so drift on a shared machine cancels.
        for round in 1..=4 {
            let order = if round % 2 == 1 {
                [true, false]
            } else {
                [false, true]
            };
            for off in order {
                zicht_node::UNGUARDED.store(off, Ordering::Relaxed);
                let (rate, _, _) = load(mtls.clone(), total / 2, concurrency).await;
                let started = Instant::now();
                for _ in 0..connections {
                    let mut client = pb::inway_client::InwayClient::new(connect().await);
                    client.query(request()).await.unwrap();
                }
                let handshakes = connections as f64 / started.elapsed().as_secs_f64();
                let label = if off {
                    "guard and caps off"
                } else {
                    "guard and caps on "
                };
                println!("round {round} mutual TLS, {label}  {rate:>8.0} req/s  {handshakes:>6.0} new connections+query/s");
                let rates = if off { &mut unguarded } else { &mut guarded };
                rates.0.push(rate);
                rates.1.push(handshakes);
            }
        }
        zicht_node::UNGUARDED.store(false, Ordering::Relaxed);
        println!(
            "\nrefusal guard and caps on / off: requests {:.3}, new connections {:.3}",
            mean(&guarded.0) / mean(&unguarded.0),
            mean(&guarded.1) / mean(&unguarded.1)
        );
    }
}

/// The jenn node asking on its own, for drenthe's analyst with one delegation per question,
/// and with a new delegation per request, alternating so drift hits all alike.
async fn delegations(fixture: &zicht_testkit::node::NodeFixture, total: usize, concurrency: usize) {
    let jenn = NodeName::Network(zicht_model::Network::Jenn);
    let node = fixture.channel_as_node(jenn).await;
    let (cert, key) = fixture.pki.person("analyst-drenthe");
    let delegator = Delegator::from_files(&cert, &key).unwrap();
    let once = BinaryMetadataValue::from_bytes(
        &delegator
            .delegate(jenn, request().get_ref())
            .unwrap()
            .encode_to_vec(),
    );
    let kinds = [
        ("node on its own           ", Delegating::No),
        ("for a person, delegated   ", Delegating::Once(&once)),
        ("new delegation per request", Delegating::Each(&delegator)),
    ];
    for (_, delegating) in kinds {
        load_as(node.clone(), 1_000, concurrency, delegating).await;
    }
    let mut rates = [Vec::new(), Vec::new(), Vec::new()];
    // Four rounds, the order turned each round, so drift on a shared machine hits all alike.
    for round in 1..=4 {
        let mut order = [0, 1, 2];
        order.rotate_left(round % 3);
        for index in order {
            let (label, delegating) = kinds[index];
            let (rate, p50, p99) = load_as(node.clone(), total / 4, concurrency, delegating).await;
            println!(
                "round {round} jenn, {label}  {rate:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
            rates[index].push(rate);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "\ndelegated / on its own throughput: {:.3} (one delegation per question), {:.3} (a new one per request)",
        mean(&rates[1]) / mean(&rates[0]),
        mean(&rates[2]) / mean(&rates[0])
    );
}
