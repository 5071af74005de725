//! The monitor's federated capacity page (capacity on 2025-07-01 by placement region and care
//! type, over the 14 regional nodes, rendered as three figures with their tables) as drenthe's
//! analyst sees it: server-side latency of `GET /capacity`, warm, next to the same federated
//! question asked of the Outway directly in the same run, so what the page adds (the HTTP
//! round trip, aggregation and HTML) is the ratio of the two.
//!
//! `cargo bench -p zicht-cli --bench monitor`; `ZICHT_BENCH_ROUNDS` (default 100) timed
//! requests per measurement, one after another (latency, not load). Target: page p50 <= 100 ms.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zicht_model::{CodeList, NodeName, Region};
use zicht_proto::v1 as pb;
use zicht_testkit::federation::{open_policy, Behaviour, Federation};

fn percentiles(mut latencies: Vec<Duration>) -> (f64, f64) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
    )
}

/// One `GET path` over a fresh HTTP/1.1 connection, as a browser's first request; the whole
/// answer is read.
fn get(address: SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn main() {
    let rounds = zicht_testkit::env_number("ZICHT_BENCH_ROUNDS", 100) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let nodes: Vec<(NodeName, Behaviour)> = Region::ALL
            .iter()
            .map(|&region| {
                let policy = open_policy(
                    &["analyst:drenthe", "region:*"],
                    &["placement_region", "care_type"],
                );
                (NodeName::Region(region), Behaviour::Serve(policy))
            })
            .collect();
        let f = Federation::start(&nodes).await;
        let dir = tempfile::tempdir().unwrap();
        let drenthe = NodeName::Region(Region::Drenthe);
        let path = f.write_profile("analyst-drenthe", drenthe, dir.path());
        let profile = zicht_node::config::load_client(&path, &|_: &str| None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let monitor = zicht_cli::web::start(profile.clone(), listener).unwrap();
        let address = monitor.address;

        // The same question the page asks, straight to the Outway.
        let request = || pb::FederatedQueryRequest {
            query: Some(
                zicht_testkit::queries::Ask::capacity()
                    .peildatum(2025, 7, 1)
                    .by_all(&["placement_region", "care_type"])
                    .wire(),
            ),
            ..Default::default()
        };
        let mut direct = Vec::with_capacity(rounds);
        for round in 0..rounds + rounds / 10 {
            let started = Instant::now();
            let answer = zicht_cli::ask(&profile, drenthe, request(), Duration::from_secs(10))
                .await
                .unwrap();
            let elapsed = started.elapsed();
            assert_eq!(answer.coverage.iter().filter(|c| c.status == 1).count(), 14);
            if round >= rounds / 10 {
                direct.push(elapsed);
            }
        }
        let mut page = Vec::with_capacity(rounds);
        for round in 0..rounds + rounds / 10 {
            let started = Instant::now();
            let answer = tokio::task::spawn_blocking(move || get(address, "/capacity?peildatum=2025-07-01"))
                .await
                .unwrap();
            let elapsed = started.elapsed();
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.contains("14 of 14 regions answered"));
            if round >= rounds / 10 {
                page.push(elapsed);
            }
        }
        let (direct_p50, direct_p99) = percentiles(direct);
        let (page_p50, page_p99) = percentiles(page);
        println!("\nmonitor capacity page, 14 regional nodes on one machine, {rounds} timed requests, sequential");
        println!("{:<40} {:>9} {:>9}", "", "p50 ms", "p99 ms");
        println!("{:<40} {:>9.2} {:>9.2}", "federated capacity query (Outway)", direct_p50, direct_p99);
        println!("{:<40} {:>9.2} {:>9.2}", "GET /capacity (page, three figures)", page_p50, page_p99);
        println!(
            "page p50 / query p50 = {:.2}x; page p50 {} the 100 ms target",
            page_p50 / direct_p50,
            if page_p50 <= 100.0 { "meets" } else { "misses" }
        );
        monitor.stop().await;
    });
}
