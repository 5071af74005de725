//! A running node for tests and benchmarks: a dev federation made for the occasion, the drenthe
//! node on 127.0.0.1 (ephemeral port) serving synthetic data from a fresh SQLite database.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use zicht_model::{NodeName, Region};
use zicht_node::{Limits, NodeSettings, RunningNode};
use zicht_pki::DevFederation;
use zicht_store::Backend;

use crate::TestDb;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A dev federation and the drenthe node running with `policy`.
pub struct NodeFixture {
    /// The PKI (certificates of every node and person).
    pub pki: DevFederation,
    /// The running node.
    pub node: RunningNode,
    /// Its database.
    pub db: TestDb,
    /// What it was started with, to start it again.
    settings: NodeSettings,
    _dir: tempfile::TempDir,
}

impl NodeFixture {
    /// Stops the node and starts it again with the same settings on the same database, as
    /// after a restart (on a new port: `node.address` follows).
    pub async fn restart(&mut self) {
        let again = zicht_node::start(self.settings.clone(), Some(self.db.store.clone()))
            .await
            .unwrap();
        std::mem::replace(&mut self.node, again).stop().await;
    }

    /// Issues a certificate of the dev federation's CA to `identity` (valid a day), beside
    /// the dev PKI as `<name>.pem` and `<name>.key`: another person, or a mis-issued one.
    pub fn issue(&self, name: &str, identity: zicht_model::PeerIdentity) -> (PathBuf, PathBuf) {
        let subject = zicht_pki::Subject {
            identity,
            dns_names: Vec::new(),
            ips: Vec::new(),
        };
        let issued = self
            .pki
            .authority()
            .unwrap()
            .issue(&subject, zicht_pki::Validity::days_from(now(), 1))
            .unwrap();
        let dir = self.pki.ca_cert().parent().unwrap().join("issued");
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, &issued.cert_pem).unwrap();
        zicht_pki::write_private(&key, &issued.key_pem).unwrap();
        (cert, key)
    }

    /// A channel to the node over mutual TLS as `person` of the dev federation
    /// (`analyst-drenthe`, `auditor`).
    pub async fn channel_as_person(&self, person: &str) -> Channel {
        channel(&self.pki, self.pki.person(person), self.node.address).await
    }

    /// A channel to the node over mutual TLS as the node `node`.
    pub async fn channel_as_node(&self, node: NodeName) -> Channel {
        channel(&self.pki, self.pki.node(node), self.node.address).await
    }

    /// An `Inway` client of the node as `person`.
    pub async fn inway_as_person(
        &self,
        person: &str,
    ) -> zicht_proto::v1::inway_client::InwayClient<Channel> {
        zicht_proto::v1::inway_client::InwayClient::new(self.channel_as_person(person).await)
    }

    /// An `Inway` client of the node as the node `node`.
    pub async fn inway_as_node(
        &self,
        node: NodeName,
    ) -> zicht_proto::v1::inway_client::InwayClient<Channel> {
        zicht_proto::v1::inway_client::InwayClient::new(self.channel_as_node(node).await)
    }
}

/// Starts the drenthe node with the policy text and limits, over its synthetic data.
pub async fn spawn_node(policy: &str, limits: Limits) -> NodeFixture {
    spawn_node_on(Backend::Sqlite, policy, limits, |_, _| {}).await
}

/// Starts the drenthe node as [`spawn_node`] does, on `backend`, with its settings passed
/// through `adjust` (with a folder of the fixture's own) first.
pub async fn spawn_node_on(
    backend: Backend,
    policy: &str,
    limits: Limits,
    adjust: impl FnOnce(&mut NodeSettings, &std::path::Path),
) -> NodeFixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = zicht_pki::write_dev_federation(&dir.path().join("pki"), now()).unwrap();
    let db = TestDb::new(backend).await;
    import_synthetic(&db, Region::Drenthe, &dir.path().join("data")).await;
    let mut settings = NodeSettings {
        health_listen: Some("127.0.0.1:0".parse().unwrap()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        limits,
        // No peer runs: checkpoints only when a test asks for them.
        checkpoint_entries: u64::MAX,
        ..settings(
            &pki,
            NodeName::Region(Region::Drenthe),
            policy,
            dev_manifest(NodeName::Region(Region::Drenthe)),
        )
    };
    adjust(&mut settings, dir.path());
    let node = zicht_node::start(settings.clone(), Some(db.store.clone()))
        .await
        .unwrap();
    NodeFixture {
        pki,
        node,
        db,
        settings,
        _dir: dir,
    }
}

/// The manifest of the dev federation as `own` holds it: every other node with its dev PeerID
/// (so the node serves their certificates), at an address where nothing listens.
pub fn dev_manifest(own: NodeName) -> Vec<zicht_node::ManifestPeer> {
    NodeName::all()
        .filter(|node| *node != own)
        .map(|node| zicht_node::ManifestPeer {
            node,
            address: SocketAddr::from(([127, 0, 0, 1], 9)).into(),
            peer_id: node.dev_peer_id(),
        })
        .collect()
}

/// Generates `region`'s synthetic files (seed 1) in `dir` and imports them into `db`.
pub async fn import_synthetic(db: &TestDb, region: Region, dir: &std::path::Path) {
    zicht_synth::generate_to_dir(&zicht_synth::Config::new(region, 1), dir).unwrap();
    for name in zicht_synth::FILE_NAMES {
        zicht_store::import::import_file(
            &db.store,
            &dir.join(name),
            None,
            Default::default(),
            &mut (),
        )
        .await
        .unwrap();
    }
}

/// A node's settings for tests: its dev certificate, `policy`, default limits and disclosure,
/// listening on 127.0.0.1.
pub fn settings(
    pki: &DevFederation,
    node: NodeName,
    policy: &str,
    manifest: Vec<zicht_node::ManifestPeer>,
) -> NodeSettings {
    NodeSettings::dev(
        pki,
        node,
        zicht_node::policy::parse_policy(policy, None).unwrap(),
        manifest,
    )
}

/// A gRPC channel to `address` over mutual TLS as the holder of `(cert, key)`.
pub async fn channel(
    pki: &DevFederation,
    holder: (PathBuf, PathBuf),
    address: SocketAddr,
) -> Channel {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(pki.ca_cert()).unwrap()))
        .identity(Identity::from_pem(
            std::fs::read(holder.0).unwrap(),
            std::fs::read(holder.1).unwrap(),
        ))
        .domain_name("localhost");
    Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}
