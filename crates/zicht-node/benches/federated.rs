//! Latency of a federated `youth_in_care` query (2024, by stay group) over the 14 regional
//! nodes on loopback, mutual TLS, warm connections, each node over its own synthetic SQLite
//! database. In the same run: the same query through the outway to one peer, and each peer
//! asked alone, so the fan-out can be compared with the slowest single peer and with the sum.
//!
//! `cargo bench -p zicht-node --bench federated`; `ZICHT_BENCH_ROUNDS` (default 200) sets the
//! number of timed queries per measurement. Queries run one after another (latency, not load).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use zicht_model::{CodeList, NodeName, Region};
use zicht_proto::v1 as pb;
use zicht_testkit::federation::{open_policy, Behaviour, Federation};

fn query(capacity: bool) -> pb::QueryRequest {
    if capacity {
        zicht_testkit::queries::Ask::capacity()
            .by("care_type")
            .wire()
    } else {
        zicht_testkit::queries::Ask::youth_in_care(2024)
            .by_all(&["stay_group"])
            .wire()
    }
}

/// p50 and p99 of `rounds` federated queries to `peers` (empty: all).
async fn measure(
    channel: &Channel,
    peers: &[Region],
    rounds: usize,
    capacity: bool,
) -> (Duration, Duration) {
    let mut client = pb::outway_client::OutwayClient::new(channel.clone());
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds + rounds / 10 {
        let mut request = tonic::Request::new(pb::FederatedQueryRequest {
            query: Some(query(capacity)),
            peers: peers.iter().map(|r| r.code().to_owned()).collect(),
            network: String::new(),
        });
        request.set_timeout(Duration::from_secs(10));
        let started = Instant::now();
        let answer = client.federated_query(request).await.unwrap().into_inner();
        let elapsed = started.elapsed();
        let answered = answer.coverage.iter().filter(|c| c.status == 1).count();
        assert_eq!(
            answered,
            peers.len().max(if peers.is_empty() { 14 } else { 0 })
        );
        // The first tenth warms connections and caches; it is not timed.
        if round >= rounds / 10 {
            latencies.push(elapsed);
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (at(0.50), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let rounds = zicht_testkit::env_number("ZICHT_BENCH_ROUNDS", 200) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dims = ["stay_group", "care_type"];
        let nodes: Vec<(NodeName, Behaviour)> = Region::ALL
            .iter()
            .map(|&region| {
                let callers = ["analyst:drenthe", "region:*"];
                (
                    NodeName::Region(region),
                    Behaviour::Serve(open_policy(&callers, &dims)),
                )
            })
            .collect();
        let f = Federation::start(&nodes).await;
        let drenthe = NodeName::Region(Region::Drenthe);
        let channel = zicht_testkit::node::channel(
            &f.pki,
            f.pki.person("analyst-drenthe"),
            f.address(drenthe),
        )
        .await;

        // youth_in_care does real SQL work on every node; capacity almost none, which shows
        // what the fan-out itself costs when 14 nodes share 2 cores.
        for (capacity, name) in [(false, "youth_in_care 2024 by stay_group"), (true, "capacity 2025-07-01 by care_type")] {
            println!("\nfederated {name}, 14 regional nodes on one machine, {rounds} timed queries, sequential");
            let mut singles = Vec::new();
            for &region in Region::ALL {
                let (p50, p99) = measure(&channel, &[region], rounds / 4, capacity).await;
                singles.push((region, p50, p99));
            }
            let (all_p50, all_p99) = measure(&channel, &[], rounds, capacity).await;
            let (one_p50, one_p99) = measure(&channel, &[Region::Friesland], rounds, capacity).await;
            println!("{:<24} {:>9} {:>9}", "asked via drenthe", "p50 ms", "p99 ms");
            for (region, p50, p99) in &singles {
                println!("{:<24} {:>9.2} {:>9.2}", region.code(), ms(*p50), ms(*p99));
            }
            let slowest = singles.iter().map(|s| s.1).max().unwrap();
            let sum: Duration = singles.iter().map(|s| s.1).sum();
            println!("{:<24} {:>9.2} {:>9.2}", "one peer (friesland)", ms(one_p50), ms(one_p99));
            println!("{:<24} {:>9.2} {:>9.2}", "all 14 (fan-out)", ms(all_p50), ms(all_p99));
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let per_core = ms(sum) / cores as f64;
            println!(
                "fan-out p50 / one-peer p50 = {:.2}x; / slowest single p50 ({:.2} ms) = {:.2}x; / sum of single p50s ({:.2} ms) = {:.2}x; / that sum over {cores} cores ({per_core:.2} ms) = {:.2}x",
                ms(all_p50) / ms(one_p50),
                ms(slowest),
                ms(all_p50) / ms(slowest),
                ms(sum),
                ms(all_p50) / ms(sum),
                ms(all_p50) / per_core
            );
        }
    });
}
