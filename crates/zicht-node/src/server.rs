//! The node's listener: TLS handshakes (identity checked there), one verified [`PeerInfo`] per
//! connection handed to every handler, gRPC services, health and reflection.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use zicht_model::PeerIdentity;
use zicht_proto::v1::audit_server::AuditServer;
use zicht_proto::v1::checkpoints_server::CheckpointsServer;
use zicht_proto::v1::inway_server::InwayServer;
use zicht_proto::v1::outway_server::OutwayServer;
use zicht_store::Store;

use crate::auditor::{Auditor, Checkpoints};
use crate::outway::Outway;
use crate::peers::Peers;
use crate::policy::Policy;
use crate::service::{Inway, Limits};
use crate::tls::{ReloadingTls, TlsError, TlsFiles};

/// What a handler knows about the caller: derived once per connection from the verified
/// certificate. Handlers never read raw certificates.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The caller's identity.
    pub identity: PeerIdentity,
    /// The caller's address.
    pub remote: SocketAddr,
    /// The caller's certificate (DER), as verified in the handshake: checkpoints a peer signs
    /// are checked against it.
    pub certificate: Vec<u8>,
}

/// A TLS connection whose client certificate was verified and carries a zicht identity.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Everything a node needs to serve, as validated values.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Which node this is (an aggregator's `Inway` answers no template: it holds no youth
    /// data; its `Outway` asks its network's members).
    pub node: zicht_model::NodeName,
    /// The federation manifest: every node's address and PeerID, for the `Outway`.
    pub manifest: Vec<crate::config::ManifestPeer>,
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Optional plaintext port that serves only `grpc.health.v1` (no data, so no client
    /// certificate): for Kubernetes probes, which cannot present one.
    pub health_listen: Option<SocketAddr>,
    /// TLS files.
    pub tls: TlsFiles,
    /// How often to look for changed certificate/CRL files.
    pub tls_reload_interval: Duration,
    /// The policy.
    pub policy: Policy,
    /// Request limits.
    pub limits: Limits,
    /// Disclosure control for person counts.
    pub disclosure: crate::Disclosure,
    /// How often the node signs its chain heads and hands them to its peers.
    pub checkpoint_interval: Duration,
    /// Optional plaintext port serving Prometheus metrics at `/metrics` (no data).
    pub metrics_listen: Option<SocketAddr>,
    /// Optional OpenTelemetry export (spans of logged operations, metrics) over OTLP/gRPC.
    pub otlp: Option<crate::otlp::OtlpSettings>,
}

impl NodeSettings {
    /// The settings of `node` in a dev federation (`zicht pki dev-federation`): its own
    /// certificate, the federation's trust bundle and CRL, `policy`, default limits and
    /// disclosure, on 127.0.0.1 (a free port), no probe port.
    pub fn dev(
        pki: &zicht_pki::DevFederation,
        node: zicht_model::NodeName,
        policy: Policy,
        manifest: Vec<crate::config::ManifestPeer>,
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
            policy,
            limits: Limits::default(),
            checkpoint_interval: Duration::from_secs(300),
            metrics_listen: None,
            otlp: None,
            disclosure: match node {
                // A dev node's database lives for one run: its secret lives in memory.
                zicht_model::NodeName::Region(region) => crate::Disclosure::default()
                    .for_region(Some(region))
                    .with_secret(crate::secret::ephemeral()),
                zicht_model::NodeName::Network(_) => crate::Disclosure::default(),
            },
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// TLS files are missing or wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("listen on {address}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The reflection service could not be built from the descriptors.
    #[error("build reflection service: {0}")]
    Reflection(String),
    /// The OTLP endpoint is not usable.
    #[error("otlp_endpoint: {0}")]
    Otlp(String),
}

/// A running node.
pub struct RunningNode {
    /// The address it listens on.
    pub address: SocketAddr,
    /// The health-only plaintext address, if configured.
    pub health_address: Option<SocketAddr>,
    /// The metrics address, if configured.
    pub metrics_address: Option<SocketAddr>,
    /// The TLS state (to force a reload check).
    pub tls: Arc<ReloadingTls>,
    inway: Arc<Inway>,
    key: std::path::PathBuf,
    peers: Peers,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningNode {
    /// Signs the node's chain heads now and hands them to every peer (as the periodic task
    /// does); returns each peer's outcome.
    pub async fn checkpoint_now(
        &self,
    ) -> Result<Vec<(zicht_model::NodeName, Result<(), String>)>, tonic::Status> {
        crate::auditor::push_checkpoint(&self.inway, &self.key, &self.peers).await
    }

    /// Stops accepting, drains open connections and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a node: binds, then serves until stopped.
pub async fn start(
    settings: NodeSettings,
    store: Option<Store>,
) -> Result<RunningNode, StartError> {
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|source| StartError::Bind {
            address: settings.listen,
            source,
        })?;
    start_on(settings, listener, store).await
}

/// Starts a node on a listener bound beforehand (so a whole federation can learn its
/// addresses before any node starts).
pub async fn start_on(
    settings: NodeSettings,
    listener: TcpListener,
    store: Option<Store>,
) -> Result<RunningNode, StartError> {
    let tls = Arc::new(ReloadingTls::new(settings.tls.clone())?);
    let address = listener.local_addr().map_err(|source| StartError::Bind {
        address: settings.listen,
        source,
    })?;

    // Key rows imported since the node last ran now, so its first answers do not wait.
    if let (Some(store), zicht_model::NodeName::Region(_)) = (&store, settings.node) {
        if let Err(error) = settings.disclosure.key_rows(store).await {
            eprintln!(
                "zicht node: could not key rows at start (queries will retry): {}",
                crate::service::anyhow_chain(&error)
            );
        }
    }
    let mut inway = Inway::new(settings.policy, settings.limits, store)
        .with_disclosure(settings.disclosure)
        .with_resource(crate::audit::node_uri(settings.node));
    if let zicht_model::NodeName::Network(_) = settings.node {
        inway = inway.without_data();
    }
    let inway = Arc::new(inway);
    // OpenTelemetry: each release becomes a span once it is durable in the log.
    let exporter = match (&settings.otlp, &inway.store) {
        (Some(otlp), Some(store)) => {
            let (hook, exporter) = crate::otlp::start(
                otlp,
                settings.node.code(),
                &inway.resource,
                inway.metrics.clone(),
            )
            .map_err(StartError::Otlp)?;
            store.on_committed(hook);
            Some(exporter)
        }
        _ => None,
    };
    let (metrics_address, metrics_task) = match settings.metrics_listen {
        Some(address) => {
            let listener = crate::metrics::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { address, source })?;
            let task = tokio::spawn(crate::metrics::serve(listener, inway.metrics.clone()));
            (Some(bound), Some(task))
        }
        None => (None, None),
    };
    let peers = Peers::new(settings.node, &settings.manifest, &settings.tls);
    let auditor = AuditServer::new(Auditor::new(inway.clone()));
    let checkpoints = CheckpointsServer::new(Checkpoints::new(inway.clone()));
    let outway = OutwayServer::new(Outway::new(inway.clone(), settings.node, peers.clone()))
        .max_decoding_message_size(settings.limits.max_request_bytes * 2);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<InwayServer<Inway>>().await;
    let (health_address, health_task) = match settings.health_listen {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { address, source })?;
            let probe_only = tonic::transport::Server::builder()
                .add_service(health.clone())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
            (Some(bound), Some(tokio::spawn(probe_only)))
        }
        None => (None, None),
    };
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zicht_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    // tonic refuses far larger messages itself; up to twice the limit reaches the handler,
    // which refuses with INVALID_ARGUMENT naming the limit.
    let inway_server = InwayServer::from_arc(inway.clone())
        .max_decoding_message_size(settings.limits.max_request_bytes * 2);

    let (connections, incoming) = mpsc::channel::<Result<PeerStream, io::Error>>(64);
    let accept_tls = tls.clone();
    let accept_task = tokio::spawn(accept_loop(listener, accept_tls, connections));
    let reload_tls = tls.clone();
    let interval = settings.tls_reload_interval;
    let reload_task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match reload_tls.reload_if_changed() {
                Ok(true) => eprintln!("zicht node: reloaded certificates and CRL"),
                Ok(false) => {}
                Err(error) => eprintln!("zicht node: keeping current TLS; {error}"),
            }
        }
    });

    // Signed chain heads to every peer, now and then; a peer that is down misses one.
    let checkpoint_task = {
        let (inway, key, peers) = (inway.clone(), settings.tls.key.clone(), peers.clone());
        let interval = settings.checkpoint_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(status) = crate::auditor::push_checkpoint(&inway, &key, &peers).await {
                    eprintln!("zicht node: checkpoint: {}", status.message());
                }
            }
        })
    };
    let (shutdown, shutdown_signal) = oneshot::channel::<()>();
    let max_deadline = settings.limits.max_deadline;
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .timeout(max_deadline)
            .add_service(health)
            .add_service(reflection)
            .add_service(inway_server)
            .add_service(outway)
            .add_service(auditor)
            .add_service(checkpoints)
            .serve_with_incoming_shutdown(ReceiverStream::new(incoming), async {
                let _ = shutdown_signal.await;
            })
            .await;
        accept_task.abort();
        reload_task.abort();
        checkpoint_task.abort();
        if let Some(task) = metrics_task {
            task.abort();
        }
        if let Some(task) = health_task {
            task.abort();
        }
        if let Some(exporter) = exporter {
            exporter.stop(Duration::from_secs(2)).await;
        }
        if let Err(error) = served {
            eprintln!("zicht node: server ended: {error}");
        }
    });
    Ok(RunningNode {
        address,
        health_address,
        metrics_address,
        tls,
        inway,
        key: settings.tls.key.clone(),
        peers,
        shutdown: Some(shutdown),
        task,
    })
}

/// Accepts TCP connections and completes TLS handshakes concurrently; only connections with a
/// verified zicht identity reach the gRPC server.
async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    connections: mpsc::Sender<Result<PeerStream, io::Error>>,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("zicht node: accept: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(tls.current());
        let connections = connections.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    // Refused handshakes (no/foreign/expired/revoked certificate, no identity) end
                    // here; the client sees the TLS alert.
                    Ok(Err(_)) | Err(_) => return,
                };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.as_ref().to_vec());
            let Some((identity, certificate)) =
                certificate.and_then(|cert| Some((zicht_pki::identity_of(&cert).ok()?, cert)))
            else {
                return;
            };
            let _ = connections
                .send(Ok(PeerStream {
                    inner: stream,
                    info: PeerInfo {
                        identity,
                        remote,
                        certificate,
                    },
                }))
                .await;
        });
    }
}
