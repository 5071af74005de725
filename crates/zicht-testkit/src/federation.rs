//! A federation on loopback for tests and benchmarks: regional nodes over synthetic data (each
//! its own SQLite database), aggregators with a log-only database, and peers that are down or
//! hang, all in one manifest.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use zicht_model::{CodeList, NodeName, Region};
use zicht_node::ManifestPeer;
use zicht_node::RunningNode;
use zicht_pki::DevFederation;
use zicht_proto::v1 as pb;
use zicht_store::Backend;

use crate::node::{channel, import_synthetic, now, settings};
use crate::TestDb;

/// How a node of the test federation behaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A real node with this policy (regions get their synthetic data).
    Serve(String),
    /// Listed in the manifest, but nothing listens (connections are refused).
    Down,
    /// Accepts TCP connections and never answers (not even the TLS handshake).
    Hang,
}

/// A running test federation.
pub struct Federation {
    /// The PKI.
    pub pki: DevFederation,
    /// The running nodes.
    pub nodes: BTreeMap<NodeName, RunningNode>,
    /// Every node's database (regions: synthetic data; aggregators: only their log).
    pub dbs: BTreeMap<NodeName, TestDb>,
    /// The manifest every node holds.
    pub manifest: Vec<ManifestPeer>,
    hang: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Federation {
    /// Starts `nodes`, each knowing all of them through one manifest.
    pub async fn start(nodes: &[(NodeName, Behaviour)]) -> Federation {
        Federation::start_with(nodes, |_, _| {}).await
    }

    /// Starts `nodes` as [`Federation::start`] does, each serving node's store on `backend`.
    pub async fn start_on(backend: Backend, nodes: &[(NodeName, Behaviour)]) -> Federation {
        Federation::launch(backend, nodes, |_, _| {}).await
    }

    /// Starts `nodes` as [`Federation::start`] does, with each serving node's settings passed
    /// through `adjust` first.
    pub async fn start_with(
        nodes: &[(NodeName, Behaviour)],
        adjust: impl Fn(NodeName, &mut zicht_node::NodeSettings),
    ) -> Federation {
        Federation::launch(Backend::Sqlite, nodes, adjust).await
    }

    async fn launch(
        backend: Backend,
        nodes: &[(NodeName, Behaviour)],
        adjust: impl Fn(NodeName, &mut zicht_node::NodeSettings),
    ) -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let pki = zicht_pki::write_dev_federation(&dir.path().join("pki"), now()).unwrap();
        let mut listeners = Vec::new();
        let mut manifest = Vec::new();
        for (node, _) in nodes {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            manifest.push(ManifestPeer {
                node: *node,
                address: listener.local_addr().unwrap().into(),
                peer_id: node.dev_peer_id(),
            });
            listeners.push(listener);
        }
        let mut running = BTreeMap::new();
        let mut dbs = BTreeMap::new();
        let mut hang = Vec::new();
        for ((node, behaviour), listener) in nodes.iter().zip(listeners) {
            match behaviour {
                Behaviour::Serve(policy) => {
                    let db = TestDb::new(backend).await;
                    if let NodeName::Region(region) = node {
                        import_synthetic(&db, *region, &dir.path().join(region.code())).await;
                    }
                    let mut settings = settings(&pki, *node, policy, manifest.clone());
                    // Checkpoints when a test asks for them (`checkpoint_now`, or its own
                    // `checkpoint_entries`), so no push lands in the middle of a test's log.
                    settings.checkpoint_entries = u64::MAX;
                    adjust(*node, &mut settings);
                    let started = zicht_node::start_on(settings, listener, Some(db.store.clone()))
                        .await
                        .unwrap();
                    running.insert(*node, started);
                    dbs.insert(*node, db);
                }
                Behaviour::Down => drop(listener),
                Behaviour::Hang => hang.push(tokio::spawn(async move {
                    let mut held = Vec::new();
                    while let Ok((socket, _)) = listener.accept().await {
                        held.push(socket);
                    }
                })),
            }
        }
        Federation {
            pki,
            nodes: running,
            dbs,
            manifest,
            hang,
            _dir: dir,
        }
    }

    /// Where `node` listens.
    pub fn address(&self, node: NodeName) -> SocketAddr {
        self.manifest
            .iter()
            .find(|p| p.node == node)
            .and_then(|p| p.address.socket_addr())
            .unwrap()
    }

    /// Stops `node` (its address then refuses connections).
    pub async fn stop(&mut self, node: NodeName) {
        if let Some(running) = self.nodes.remove(&node) {
            running.stop().await;
        }
    }
}

impl Drop for Federation {
    fn drop(&mut self) {
        for task in &self.hang {
            task.abort();
        }
    }
}

/// A region's policy for tests: its own analysts and `callers` (role patterns such as
/// `network:jenn` or `region:*`) may ask every person-count template and capacity for every
/// purpose, grouped by the dimensions listed.
pub fn open_policy(callers: &[&str], group_by: &[&str]) -> String {
    let group_by = group_by
        .iter()
        .map(|d| format!("\"{d}\""))
        .collect::<Vec<_>>()
        .join(", ");
    callers
        .iter()
        .map(|role| {
            format!(
                "[[grant]]\nrole = \"{role}\"\ntemplates = [\"capacity\", \"youth_in_care\", \"flows\", \"length_of_stay\", \"transition18\"]\npurposes = [\"capaciteitsmonitoring\", \"bovenregionale-sturing\", \"18plus-monitoring\"]\ngroup_by = [{group_by}]\nquota_per_minute = 100000\n\n"
            )
        })
        .collect()
}

/// The regions of jenn (Drenthe, Friesland, Groningen).
pub const JENN: [Region; 3] = [Region::Drenthe, Region::Friesland, Region::Groningen];

/// A person asking one node's Outway over mutual TLS.
pub struct Analyst {
    client: zicht_proto::v1::outway_client::OutwayClient<tonic::transport::Channel>,
    /// Signs a delegation of each question for the node asked, as `zicht query` does.
    delegation: Option<(zicht_node::identity::Delegator, NodeName)>,
}

impl Analyst {
    /// A person at the Outway at the other end of `channel` (whose certificate says who),
    /// giving no delegation: peers then treat the node as the caller.
    pub fn on(channel: tonic::transport::Channel) -> Analyst {
        Analyst {
            client: zicht_proto::v1::outway_client::OutwayClient::new(channel),
            delegation: None,
        }
    }

    /// The same person, delegating each question to `node` with their certificate and key.
    pub fn delegating(
        self,
        holder: &(std::path::PathBuf, std::path::PathBuf),
        node: NodeName,
    ) -> Analyst {
        let delegator = zicht_node::identity::Delegator::from_files(&holder.0, &holder.1).unwrap();
        Analyst {
            delegation: Some((delegator, node)),
            ..self
        }
    }

    /// Every target the node chooses, under a 10 s deadline.
    pub async fn ask(
        &mut self,
        query: pb::QueryRequest,
    ) -> Result<pb::FederatedResult, tonic::Status> {
        self.request(query, &[], Duration::from_secs(10)).await
    }

    /// The named peers only (none: every target the node chooses), under `deadline`.
    pub async fn request(
        &mut self,
        query: pb::QueryRequest,
        peers: &[&str],
        deadline: Duration,
    ) -> Result<pb::FederatedResult, tonic::Status> {
        let mut request = tonic::Request::new(pb::FederatedQueryRequest {
            query: Some(query.clone()),
            peers: peers.iter().map(|p| (*p).to_owned()).collect(),
            network: String::new(),
        });
        if let Some((delegator, node)) = &self.delegation {
            delegator
                .attach(*node, &query, request.metadata_mut())
                .unwrap();
        }
        request.set_timeout(deadline);
        self.client
            .federated_query(request)
            .await
            .map(tonic::Response::into_inner)
    }
}

impl Federation {
    /// `person` (a certificate of the dev federation) at `node`'s Outway, delegating each
    /// question as `zicht query` does.
    pub async fn analyst(&self, person: &str, node: NodeName) -> Analyst {
        let holder = self.pki.person(person);
        let channel = channel(&self.pki, holder.clone(), self.address(node)).await;
        Analyst::on(channel).delegating(&holder, node)
    }

    /// Writes the federation's manifest and a client profile of `person` (a certificate of the
    /// dev federation) asking `node` into `dir`, as `zicht query --client` reads it; returns
    /// the profile's path.
    pub fn write_profile(
        &self,
        person: &str,
        node: NodeName,
        dir: &std::path::Path,
    ) -> std::path::PathBuf {
        let manifest = dir.join("federation.toml");
        let text = zicht_node::config::manifest_text("A test federation.", &self.manifest);
        std::fs::write(&manifest, text).unwrap();
        let (cert, key) = self.pki.person(person);
        let tls = zicht_node::TlsFiles {
            ca: self.pki.ca_cert(),
            cert,
            key,
            crl: Some(self.pki.crl()),
        };
        let profile = dir.join(format!("{person}.toml"));
        let text = zicht_node::config::client_profile_text(person, node, &manifest, &tls);
        std::fs::write(&profile, text).unwrap();
        profile
    }

    /// What `target` releases to the node `asker` itself, asked with `asker`'s node
    /// certificate at `target`'s Inway (10 s deadline).
    pub async fn ask_as_node(
        &self,
        asker: NodeName,
        target: Region,
        query: &pb::QueryRequest,
    ) -> Result<pb::ProtectedResult, tonic::Status> {
        let channel = channel(
            &self.pki,
            self.pki.node(asker),
            self.address(NodeName::Region(target)),
        )
        .await;
        let mut client = pb::inway_client::InwayClient::new(channel);
        let mut request = tonic::Request::new(query.clone());
        request.set_timeout(Duration::from_secs(10));
        client.query(request).await.map(tonic::Response::into_inner)
    }
}
