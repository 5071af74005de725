//! An OTLP/gRPC collector on loopback for tests, over TLS: keeps every trace and metrics export
//! it is sent (decoded with the `opentelemetry-proto` types), so a test can check what a node
//! exported, and [`install_operation_spans`], the process subscriber that makes operation
//! spans OpenTelemetry spans (as the `zicht` binary's does).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1 as metrics_service;
use opentelemetry_proto::tonic::collector::trace::v1 as trace_service;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// Makes operation spans OpenTelemetry spans in this process (once; a later call, or another
/// subscriber set before, keeps what is there).
pub fn install_operation_spans() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(zicht_node::tracing_layer())
            .try_init();
    });
}

/// What the collector received.
#[derive(Debug, Default)]
pub struct Received {
    /// Trace exports, in arrival order.
    pub traces: Vec<trace_service::ExportTraceServiceRequest>,
    /// Metrics exports, in arrival order.
    pub metrics: Vec<metrics_service::ExportMetricsServiceRequest>,
}

/// A collector: bound first (so nodes can be configured with its address), then serving.
pub struct Collector {
    /// Where it listens.
    pub address: SocketAddr,
    /// What it received so far.
    pub received: Arc<Mutex<Received>>,
    listener: Option<TcpListener>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Clone)]
struct Service(Arc<Mutex<Received>>);

impl Service {
    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[tonic::async_trait]
impl trace_service::trace_service_server::TraceService for Service {
    async fn export(
        &self,
        request: Request<trace_service::ExportTraceServiceRequest>,
    ) -> Result<Response<trace_service::ExportTraceServiceResponse>, Status> {
        self.lock().traces.push(request.into_inner());
        Ok(Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl metrics_service::metrics_service_server::MetricsService for Service {
    async fn export(
        &self,
        request: Request<metrics_service::ExportMetricsServiceRequest>,
    ) -> Result<Response<metrics_service::ExportMetricsServiceResponse>, Status> {
        self.lock().metrics.push(request.into_inner());
        Ok(Response::new(Default::default()))
    }
}

impl Collector {
    /// Binds a collector on 127.0.0.1 (a free port); it serves once [`Collector::serve`] is
    /// called (connections wait until then).
    pub async fn bind() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Collector {
            address: listener.local_addr().unwrap(),
            received: Arc::default(),
            listener: Some(listener),
            task: None,
        }
    }

    /// Serves TLS as `(cert_pem, key_pem)`, requiring client certificates that chain to
    /// `client_ca_pem`.
    pub fn serve(&mut self, identity: (&[u8], &[u8]), client_ca_pem: &[u8]) {
        let listener = self.listener.take().expect("serve once");
        let service = Service(self.received.clone());
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(identity.0, identity.1))
            .client_ca_root(Certificate::from_pem(client_ca_pem));
        let server = tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(
                trace_service::trace_service_server::TraceServiceServer::new(service.clone()),
            )
            .add_service(
                metrics_service::metrics_service_server::MetricsServiceServer::new(service),
            );
        self.task = Some(tokio::spawn(async move {
            let _ = server
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        }));
    }

    /// The OTLP endpoint to configure.
    pub fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.address.port())
    }

    /// Every span received, with the `service.instance.id` of the node that sent it.
    pub fn spans(&self) -> Vec<(String, Span)> {
        let received = self
            .received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut spans = Vec::new();
        for export in &received.traces {
            for resource_spans in &export.resource_spans {
                let node = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|r| attribute(&r.attributes, "service.instance.id"))
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    spans.extend(scope.spans.iter().map(|s| (node.clone(), s.clone())));
                }
            }
        }
        spans
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The string value of attribute `key`.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            Value::StringValue(text) => text.clone(),
            Value::IntValue(n) => n.to_string(),
            other => format!("{other:?}"),
        })
}
