//! What a node runs with, as validated values: addresses, TLS files, policy, limits,
//! disclosure control, telemetry. A leaf of the node's module tree: `config` builds these
//! from files and the environment, everything else reads them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use zicht_model::{NodeName, PeerId};

use crate::disclosure::Disclosure;
use crate::policy::Policy;

/// Everything a node needs to serve, as validated values.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Which node this is (an aggregator's `Inway` answers no template: it holds no youth
    /// data; its `Outway` asks its network's members).
    pub node: NodeName,
    /// The federation manifest: every node's address and PeerID, for the `Outway`.
    pub manifest: Vec<ManifestPeer>,
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Optional plaintext port that serves only `grpc.health.v1` (no data, so no client
    /// certificate): for Kubernetes probes, which cannot present one.
    pub health_listen: Option<SocketAddr>,
    /// TLS files.
    pub tls: TlsFiles,
    /// How often to look for changed certificate/CRL files.
    pub tls_reload_interval: Duration,
    /// How long past its nextUpdate the CRL is still trusted; after that the node refuses
    /// every handshake (fail closed) until a fresh CRL is in place.
    pub crl_grace: Duration,
    /// The policy.
    pub policy: Policy,
    /// Request limits.
    pub limits: Limits,
    /// Disclosure control for person counts.
    pub disclosure: Disclosure,
    /// How often the node signs its chain heads and hands them to its peers (it also does so
    /// at start, and after every `checkpoint_entries` new entries).
    pub checkpoint_interval: Duration,
    /// After how many new entries of its chains the node signs and hands out its heads
    /// before the interval is up.
    pub checkpoint_entries: u64,
    /// Optional plaintext port serving Prometheus metrics at `/metrics` (no data).
    pub metrics_listen: Option<SocketAddr>,
    /// Optional OpenTelemetry export (spans of logged operations, metrics) over OTLP/gRPC.
    pub otlp: Option<OtlpSettings>,
}

/// After how many new chain entries a node hands out a checkpoint before its interval is up.
pub const DEFAULT_CHECKPOINT_ENTRIES: u64 = 100;

impl NodeSettings {
    /// The settings of `node` in a dev federation (`zicht pki dev-federation`): its own
    /// certificate, the federation's trust bundle and CRL, `policy`, default limits and
    /// disclosure, on 127.0.0.1 (a free port), no probe port.
    pub fn dev(
        pki: &zicht_pki::DevFederation,
        node: NodeName,
        policy: Policy,
        manifest: Vec<ManifestPeer>,
    ) -> NodeSettings {
        let (cert, key) = pki.node(node);
        NodeSettings {
            node,
            manifest,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            health_listen: None,
            tls: TlsFiles {
                ca: pki.ca_cert(),
                cert,
                key,
                crl: Some(pki.crl()),
            },
            tls_reload_interval: Duration::from_secs(3600),
            crl_grace: DEFAULT_CRL_GRACE,
            policy,
            limits: Limits::default(),
            checkpoint_interval: Duration::from_secs(300),
            checkpoint_entries: DEFAULT_CHECKPOINT_ENTRIES,
            metrics_listen: None,
            otlp: None,
            disclosure: match node {
                // A dev node's database lives for one run: its secret lives in memory.
                zicht_model::NodeName::Region(region) => Disclosure::default()
                    .for_region(Some(region))
                    .with_secret(crate::secret::ephemeral())
                    .with_subject_key(crate::secret::ephemeral_subject_key()),
                zicht_model::NodeName::Network(_) => Disclosure::default(),
            },
        }
    }
}

/// How long past its nextUpdate a CRL is trusted by default.
pub const DEFAULT_CRL_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Request limits a node enforces before it does any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded request, in bytes.
    pub max_request_bytes: usize,
    /// Longest deadline a caller may set; a request must set one.
    pub max_deadline: Duration,
    /// Most group-by dimensions in one request.
    pub max_group_by: usize,
    /// Most filters in one request, and most values in one filter.
    pub max_filters: usize,
    /// Most result cells a request may ask for (product of the dimensions' sizes).
    pub max_cells: u64,
    /// A connection older than this is closed, so a long-lived channel handshakes again (and
    /// meets the current CRL).
    pub max_connection_age: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Refused requests (no grant, malformed) a caller may have per minute before its requests
    /// are turned away unlogged for a while (one summary entry instead).
    pub refusals_per_minute: u32,
    /// Most connections open at once (handshaking or verified); more are closed at once. The
    /// node lowers it further to fit its file-descriptor limit, keeping descriptors for its
    /// database and log.
    pub max_connections: usize,
    /// Most TLS handshakes under way at once; more connections are closed at once.
    pub max_handshakes: usize,
    /// A connection that has not finished its TLS handshake by then is closed.
    pub handshake_timeout: Duration,
    /// Largest checkpoint (body and signature) a peer may hand in, in bytes.
    pub checkpoint_max_bytes: usize,
    /// Checkpoints a peer may hand in per minute (burst up to the same number).
    pub checkpoints_per_minute: u32,
    /// How many of each peer's latest checkpoints the node keeps; older ones are pruned (the
    /// latest covers every entry before it).
    pub checkpoints_kept: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 16 * 1024,
            max_deadline: Duration::from_secs(30),
            max_group_by: 3,
            max_filters: 8,
            max_cells: 5_000,
            max_connection_age: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(300),
            refusals_per_minute: 60,
            max_connections: 1024,
            max_handshakes: 128,
            handshake_timeout: Duration::from_secs(10),
            checkpoint_max_bytes: 4096,
            checkpoints_per_minute: 6,
            checkpoints_kept: 24,
        }
    }
}

/// One peer of the federation manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPeer {
    /// The node.
    pub node: NodeName,
    /// Where it listens.
    pub address: PeerAddress,
    /// Its PeerID (certificate serialNumber).
    pub peer_id: PeerId,
}

/// Where a peer listens: a host (a DNS name, or an IP address) and a port. A node dials the
/// host and checks that the peer's certificate names it (a DNS or IP subject alternative
/// name), as well as the PeerID the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    host: String,
    port: u16,
}

/// A manifest address that is not `host:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be host:port, such as zicht-drenthe.example.nl:7401 or 127.0.0.1:7401")]
pub struct InvalidPeerAddress;

impl PeerAddress {
    /// Parses `host:port` (`[v6]:port` for an IPv6 address); the host is a DNS name of
    /// letters, digits, `-` and `.`, or an IP address.
    pub fn parse(text: &str) -> Result<PeerAddress, InvalidPeerAddress> {
        if let Ok(socket) = text.parse::<SocketAddr>() {
            return Ok(socket.into());
        }
        let (host, port) = text.rsplit_once(':').ok_or(InvalidPeerAddress)?;
        let port: u16 = port.parse().map_err(|_| InvalidPeerAddress)?;
        let valid = rustls::pki_types::DnsName::try_from(host).is_ok()
            && host.bytes().any(|b| b.is_ascii_alphabetic());
        if !valid || port == 0 {
            return Err(InvalidPeerAddress);
        }
        Ok(PeerAddress {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host, as dialled and as the certificate must name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address as a socket address, if the host is an IP address.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: std::net::IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// The name the peer's certificate must carry.
    pub(crate) fn server_name(&self) -> Option<rustls::pki_types::ServerName<'static>> {
        rustls::pki_types::ServerName::try_from(self.host.clone()).ok()
    }
}

impl From<SocketAddr> for PeerAddress {
    fn from(address: SocketAddr) -> PeerAddress {
        PeerAddress {
            host: address.ip().to_string(),
            port: address.port(),
        }
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The files a node's TLS is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Trust bundle: the federation root(s), PEM.
    pub ca: PathBuf,
    /// The node's certificate (chain), PEM.
    pub cert: PathBuf,
    /// The node's private key, PEM.
    pub key: PathBuf,
    /// The federation's CRL, PEM (optional).
    pub crl: Option<PathBuf>,
}

/// Where, how and how often to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector's OTLP/gRPC address: `https://host:port` (TLS), or `http://host:port`
    /// for a collector on the same host.
    pub endpoint: String,
    /// How often spans and metrics are sent.
    pub interval: Duration,
    /// The trust bundle the collector's certificate must chain to (`https`); the node's own
    /// trust bundle when unset.
    pub ca: Option<PathBuf>,
    /// Whether the node presents its own certificate to the collector (mutual TLS).
    pub client_certificate: bool,
}

impl OtlpSettings {
    /// Export to `endpoint` every `interval`, checking a TLS collector against the node's
    /// trust bundle, without a client certificate.
    pub fn new(endpoint: String, interval: Duration) -> OtlpSettings {
        OtlpSettings {
            endpoint,
            interval,
            ca: None,
            client_certificate: false,
        }
    }
}

/// Benchmarks only (feature `unaudited`, which the zicht binary never enables): while set, the
/// refusal guard admits everyone unchecked and the accept loop applies no connection or
/// handshake cap, so a benchmark can measure what they cost in one run.
#[cfg(feature = "unaudited")]
pub static UNGUARDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the refusal guard and connection caps are switched off (benchmarks only).
pub(crate) fn unguarded() -> bool {
    #[cfg(feature = "unaudited")]
    if UNGUARDED.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_dns_names_or_ip_addresses_with_a_port() {
        let dns = PeerAddress::parse("Zicht-Drenthe.example.nl:7401").unwrap();
        assert_eq!((dns.host(), dns.port()), ("zicht-drenthe.example.nl", 7401));
        assert_eq!(dns.socket_addr(), None);
        let ip = PeerAddress::parse("127.0.0.1:7401").unwrap();
        assert_eq!(ip.socket_addr(), Some("127.0.0.1:7401".parse().unwrap()));
        assert_eq!(
            PeerAddress::parse("[::1]:7401").unwrap().to_string(),
            "[::1]:7401"
        );
        for bad in [
            "drenthe",
            "drenthe:",
            "drenthe:0",
            "dren the:7401",
            "1.2.3:7401",
            ":7401",
        ] {
            assert_eq!(PeerAddress::parse(bad), Err(InvalidPeerAddress), "{bad}");
        }
    }
}
