//! A running node: binds, assembles transport, services, telemetry and background tasks, and
//! serves until stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use zicht_proto::v1::audit_server::AuditServer;
use zicht_proto::v1::checkpoints_server::CheckpointsServer;
use zicht_proto::v1::inway_server::InwayServer;
use zicht_proto::v1::outway_server::OutwayServer;
use zicht_store::Store;

use crate::services::auditor::{Auditor, Checkpoints};
use crate::services::inway::Inway;
use crate::services::outway::Outway;
use crate::settings::NodeSettings;
use crate::transport::accept::{accept_loop, PeerStream};
use crate::transport::peers::Peers;
use crate::transport::tls::{ReloadingTls, TlsError};

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
    ) -> Result<Vec<(zicht_model::NodeName, Result<(), String>)>, crate::Error> {
        crate::services::auditor::push_checkpoint(&self.inway, &self.key, &self.peers).await
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
                crate::error::chain(&error)
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
            let (hook, exporter) = crate::telemetry::otlp::start(
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
            let listener = crate::telemetry::metrics::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| StartError::Bind { address, source })?;
            let task = tokio::spawn(crate::telemetry::metrics::serve(
                listener,
                inway.metrics.clone(),
            ));
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
                if let Err(status) =
                    crate::services::auditor::push_checkpoint(&inway, &key, &peers).await
                {
                    eprintln!("zicht node: checkpoint: {status}");
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
