//! An OTLP/gRPC collector on loopback for tests: keeps every trace and metrics export it is
//! sent, so a test can check what a node exported.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use zicht_proto::otlp::collector::metrics::v1 as metrics_service;
use zicht_proto::otlp::collector::trace::v1 as trace_service;

/// What the collector received.
#[derive(Debug, Default)]
pub struct Received {
    /// Trace exports, in arrival order.
    pub traces: Vec<trace_service::ExportTraceServiceRequest>,
    /// Metrics exports, in arrival order.
    pub metrics: Vec<metrics_service::ExportMetricsServiceRequest>,
}

/// A running collector.
pub struct Collector {
    /// Where it listens (`http://` + this is the endpoint).
    pub address: SocketAddr,
    /// What it received so far.
    pub received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
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
    /// Starts a collector on 127.0.0.1 (a free port).
    pub async fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Received::default()));
        let service = Service(received.clone());
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(
                    trace_service::trace_service_server::TraceServiceServer::new(service.clone()),
                )
                .add_service(
                    metrics_service::metrics_service_server::MetricsServiceServer::new(service),
                )
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        Collector {
            address,
            received,
            task,
        }
    }

    /// The OTLP endpoint to configure.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every span received, with the `service.instance.id` of the node that sent it.
    pub fn spans(&self) -> Vec<(String, zicht_proto::otlp::trace::v1::Span)> {
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
        self.task.abort();
    }
}

/// The string value of attribute `key`.
pub fn attribute(
    attributes: &[zicht_proto::otlp::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    use zicht_proto::otlp::common::v1::any_value::Value;
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
