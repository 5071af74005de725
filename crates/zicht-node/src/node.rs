//! A running node: binds, assembles transport, services, telemetry and background tasks, and
//! serves until stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Router;
use tonic_health::pb::health_server::{Health, HealthServer};
use zicht_model::NodeName;
use zicht_proto::v1::audit_server::AuditServer;
use zicht_proto::v1::checkpoints_server::CheckpointsServer;
use zicht_proto::v1::inway_server::InwayServer;
use zicht_proto::v1::outway_server::OutwayServer;
use zicht_store::Store;

use crate::services::auditor::{Auditor, CheckpointSchedule, Checkpoints};
use crate::services::inway::Inway;
use crate::services::outway::Outway;
use crate::services::state::NodeState;
use crate::settings::NodeSettings;
use crate::telemetry::metrics::{Gauge, Metrics};
use crate::transport::accept::{accept_loop, fit_descriptors, Caps, PeerStream};
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
    state: Arc<NodeState>,
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
        let targets: Vec<NodeName> = self.peers.nodes().collect();
        crate::services::auditor::push_checkpoint(&self.state, &self.key, &self.peers, &targets)
            .await
            .map(|pushed| pushed.outcomes)
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
    let tls = Arc::new(ReloadingTls::new(settings.tls.clone(), settings.crl_grace)?);
    let address = listener.local_addr().map_err(|source| StartError::Bind {
        address: settings.listen,
        source,
    })?;
    let (metrics, spans) = telemetry(&settings)?;
    let callers = crate::identity::Callers::new(&settings.manifest, tls.clone());
    let state = Arc::new(
        node_state(&settings, store, metrics.clone())
            .await
            .with_callers(callers),
    );
    // Every background task lives in one set, stopped together when the server ends.
    let mut tasks = JoinSet::new();
    let metrics_address = serve_metrics(&settings, &state, &mut tasks).await?;
    let peers = Peers::new(settings.node, &settings.manifest, &settings.tls);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<InwayServer<Inway>>().await;
    let health_address = serve_probe(&settings, health.clone(), &mut tasks).await?;
    let router = services(&settings, &state, &peers, health)?;

    let (connections, incoming) = mpsc::channel::<Result<PeerStream, io::Error>>(64);
    let caps = Caps {
        connections: fit_descriptors(
            settings.limits.max_connections,
            settings.limits.max_handshakes,
        ),
        handshakes: settings.limits.max_handshakes,
        handshake_timeout: settings.limits.handshake_timeout,
    };
    state
        .metrics
        .set(Gauge::ConnectionsMax, caps.connections as f64);
    tasks.spawn(accept_loop(
        listener,
        tls.clone(),
        caps,
        state.metrics.clone(),
        connections,
    ));
    tasks.spawn(reload_tls(
        tls.clone(),
        settings.tls_reload_interval,
        settings.limits,
        state.metrics.clone(),
    ));
    // Where the chains stand as the node starts, before it answers anything.
    let started = (
        chain_position(&state).await.unwrap_or(0),
        tokio::time::Instant::now(),
    );
    tasks.spawn(push_checkpoints(
        state.clone(),
        settings.tls.key.clone(),
        peers.clone(),
        settings.checkpoint_interval,
        settings.checkpoint_entries,
        settings.limits.checkpoints_per_minute,
        started,
    ));
    announce(&settings, address, &caps);
    let (shutdown, shutdown_signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(ReceiverStream::new(incoming), async {
                let _ = shutdown_signal.await;
            })
            .await;
        tasks.shutdown().await;
        // What the exporters still hold goes out first.
        if let Some(spans) = spans {
            spans.stop(Duration::from_secs(2)).await;
        }
        metrics.stop(Duration::from_secs(2)).await;
        if let Err(error) = served {
            tracing::error!(%error, "server ended");
        }
    });
    Ok(RunningNode {
        address,
        health_address,
        metrics_address,
        tls,
        state,
        key: settings.tls.key.clone(),
        peers,
        shutdown: Some(shutdown),
        task,
    })
}

/// The start's log lines: what the node lacks, then where it listens.
fn announce(settings: &NodeSettings, address: std::net::SocketAddr, caps: &Caps) {
    if let NodeName::Region(_) = settings.node {
        if !settings.disclosure.has_subject_key() {
            tracing::warn!(
                node = settings.node.code(),
                "no privacy.subject_key: this node refuses consented_records (it could not log whose records left)"
            );
        }
    }
    tracing::info!(
        node = settings.node.code(),
        %address,
        grants = settings.policy.grants.len(),
        max_connections = caps.connections,
        "listening (mutual TLS 1.3, default deny)"
    );
}

/// The node's shared state over its store, with its snapshot of the counted tables (and their
/// record keys) built first (so its first answers do not wait): an aggregator's runs no template.
async fn node_state(
    settings: &NodeSettings,
    store: Option<Store>,
    metrics: Arc<Metrics>,
) -> NodeState {
    if let (Some(store), NodeName::Region(_)) = (&store, settings.node) {
        let keys = settings.disclosure.record_keys();
        if let Err(error) = store.prepare_counts(keys.as_ref()).await {
            tracing::warn!(
                cause = %crate::error::chain(&error),
                "could not read the counted tables at start (queries will retry)"
            );
        }
    }
    let state = NodeState::new(settings.policy.clone(), settings.limits, store)
        .with_disclosure(settings.disclosure.clone())
        .with_resource(crate::audit::node_uri(settings.node))
        .with_metrics(metrics);
    match settings.node {
        NodeName::Network(_) => state.without_data(),
        NodeName::Region(_) => state,
    }
}

/// The node's metrics (read by Prometheus, and over OTLP when configured) and, when
/// configured, the export of its operation spans.
fn telemetry(
    settings: &NodeSettings,
) -> Result<(Arc<Metrics>, Option<crate::telemetry::traces::SpanExport>), StartError> {
    let entity = crate::audit::node_uri(settings.node);
    let resource = crate::telemetry::otlp::resource(settings.node.code(), &entity);
    let Some(otlp) = &settings.otlp else {
        return Ok((Arc::new(Metrics::new(resource, None)), None));
    };
    let (span_exporter, metric_exporter) =
        crate::telemetry::otlp::exporters(otlp, &settings.tls).map_err(StartError::Otlp)?;
    let metrics = Metrics::new(resource.clone(), Some((metric_exporter, otlp.interval)));
    let spans = crate::telemetry::traces::SpanExport::start(
        &entity,
        &resource,
        span_exporter,
        otlp.interval,
    );
    Ok((Arc::new(metrics), Some(spans)))
}

/// Prometheus metrics on their plaintext port, when configured; returns the bound address.
async fn serve_metrics(
    settings: &NodeSettings,
    state: &NodeState,
    tasks: &mut JoinSet<()>,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(address) = settings.metrics_listen else {
        return Ok(None);
    };
    let bind = |source| StartError::Bind { address, source };
    let listener = crate::telemetry::metrics::bind(address)
        .await
        .map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    tasks.spawn(crate::telemetry::metrics::serve(
        listener,
        state.metrics.clone(),
    ));
    Ok(Some(bound))
}

/// The plaintext health-only probe port, when configured; returns the bound address.
async fn serve_probe(
    settings: &NodeSettings,
    health: HealthServer<impl Health>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<SocketAddr>, StartError> {
    let Some(address) = settings.health_listen else {
        return Ok(None);
    };
    let bind = |source| StartError::Bind { address, source };
    let listener = TcpListener::bind(address).await.map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let probe_only = tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tasks.spawn(async move {
        if let Err(error) = probe_only.await {
            tracing::error!(%error, "health port ended");
        }
    });
    Ok(Some(bound))
}

/// Every gRPC service of the node behind one router: health, reflection, `Inway`, `Outway`,
/// `Audit` and `Checkpoints`.
fn services(
    settings: &NodeSettings,
    state: &Arc<NodeState>,
    peers: &Peers,
    health: HealthServer<impl Health>,
) -> Result<Router, StartError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(zicht_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Reflection(e.to_string()))?;
    // tonic refuses far larger messages itself; up to twice the limit reaches the handler,
    // which refuses with INVALID_ARGUMENT naming the limit.
    let largest = settings.limits.max_request_bytes * 2;
    let inway_server =
        InwayServer::new(Inway::on(state.clone())).max_decoding_message_size(largest);
    let outway = OutwayServer::new(Outway::new(state.clone(), settings.node, peers.clone()))
        .max_decoding_message_size(largest);
    Ok(tonic::transport::Server::builder()
        .timeout(settings.limits.max_deadline)
        .add_service(health)
        .add_service(reflection)
        .add_service(inway_server)
        .add_service(outway)
        .add_service(AuditServer::new(Auditor::new(state.clone())))
        .add_service(
            CheckpointsServer::new(Checkpoints::new(state.clone()))
                .max_decoding_message_size(settings.limits.checkpoint_max_bytes * 2),
        ))
}

/// Every `interval` (at most a tenth of the idle timeout): looks for changed certificate and
/// CRL files (a reload closes the connections the new files refuse), re-checks live
/// connections against the current files (a certificate that expired since, a CRL past its
/// grace), closes connections past their maximum age or idle timeout, and updates the
/// connection and CRL gauges. An overdue CRL is reported once when it becomes overdue.
async fn reload_tls(
    tls: Arc<ReloadingTls>,
    interval: Duration,
    limits: crate::Limits,
    metrics: Arc<Metrics>,
) {
    let interval = interval
        .min(limits.idle_timeout / 10)
        .max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(interval);
    let mut overdue = false;
    loop {
        ticker.tick().await;
        match tls.reload_if_changed() {
            Ok(true) => tracing::info!("reloaded certificates and CRL"),
            Ok(false) => {
                tls.close_refused();
            }
            Err(error) => tracing::error!(%error, "keeping current TLS"),
        }
        tls.connections()
            .close_stale(limits.max_connection_age, limits.idle_timeout);
        let now = chrono::Utc::now().timestamp();
        if let Some((age, past)) = tls.crl_age(now) {
            metrics.set(Gauge::CrlAgeSeconds, age as f64);
            metrics.set(Gauge::CrlOverdueSeconds, past as f64);
        }
        metrics.set(Gauge::ConnectionsOpen, tls.open_connections() as f64);
        let now_overdue = tls.crl_overdue(now);
        if now_overdue && !overdue {
            tracing::error!(
                "the CRL is past its nextUpdate by more than tls.crl_grace_days; every \
                 handshake is refused until a fresh CRL is in place"
            );
        }
        overdue = now_overdue;
    }
}

/// Signed chain heads to the peers, as [`CheckpointSchedule`] says: at start, every
/// `interval`, after every `entries` new log entries (at most `gap_divisor` a minute), and
/// again to peers a push missed. The chains' position is looked at every 2 s at most.
async fn push_checkpoints(
    state: Arc<NodeState>,
    key: std::path::PathBuf,
    peers: Peers,
    interval: Duration,
    entries: u64,
    gap_divisor: u32,
    started: (i64, tokio::time::Instant),
) {
    use crate::services::auditor::{push_checkpoint, Due};
    let poll = interval.min(Duration::from_secs(2));
    // Peers take `checkpoints_per_minute` (this node's own setting is the federation's guess).
    let gap = Duration::from_secs(60) / gap_divisor.max(1);
    let mut schedule = CheckpointSchedule::new(interval, entries, gap, started);
    let mut ticker = tokio::time::interval(poll);
    let everyone: Vec<NodeName> = peers.nodes().collect();
    loop {
        ticker.tick().await;
        let Some(position) = chain_position(&state).await else {
            continue;
        };
        let now = tokio::time::Instant::now();
        let (all, targets) = match schedule.due(now, position) {
            Due::Wait => continue,
            Due::All => (true, everyone.clone()),
            Due::Missed(missed) => (false, missed),
        };
        match push_checkpoint(&state, &key, &peers, &targets).await {
            Ok(pushed) => schedule.pushed(now, all, &pushed, poll),
            Err(error) => tracing::warn!(%error, "checkpoint"),
        }
    }
}

/// Both chains' sequence numbers added (none without a store or when it cannot be read).
async fn chain_position(state: &NodeState) -> Option<i64> {
    let store = state.store.as_ref()?;
    let processing = store
        .chain_head(zicht_store::AuditLog::Processing)
        .await
        .ok()?;
    let access = store.chain_head(zicht_store::AuditLog::Access).await.ok()?;
    Some(processing.seq + access.seq)
}
