//! The connection to an OpenTelemetry collector (OTLP over gRPC, with `opentelemetry-otlp`):
//! plain HTTP/2 for a collector on the same host, or TLS checked against the node's trust
//! bundle (or `otlp_ca`), optionally presenting the node's own certificate.

use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::Resource;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::settings::{OtlpSettings, TlsFiles};

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The resource a node's telemetry is about: the service, the node's code and entity URI.
pub(crate) fn resource(node: &str, entity: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            opentelemetry::KeyValue::new("service.name", "zicht-node"),
            opentelemetry::KeyValue::new("service.instance.id", node.to_owned()),
            opentelemetry::KeyValue::new("zicht.node", entity.to_owned()),
        ])
        .build()
}

/// The span and metric exporters to the collector of `settings`; the channel connects
/// lazily, so a collector that is down costs exports, never the node's start.
pub(crate) fn exporters(
    settings: &OtlpSettings,
    tls: &TlsFiles,
) -> Result<
    (
        opentelemetry_otlp::SpanExporter,
        opentelemetry_otlp::MetricExporter,
    ),
    String,
> {
    let channel = channel(settings, tls)?;
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    Ok((spans, metrics))
}

/// The gRPC channel to the collector, over TLS for an `https://` endpoint.
fn channel(settings: &OtlpSettings, tls: &TlsFiles) -> Result<Channel, String> {
    let mut endpoint = Endpoint::from_shared(settings.endpoint.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(EXPORT_TIMEOUT);
    if settings.endpoint.starts_with("https://") {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let ca = settings.ca.as_deref().unwrap_or(&tls.ca);
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        if settings.client_certificate {
            config = config.identity(Identity::from_pem(read(&tls.cert)?, read(&tls.key)?));
        }
        endpoint = endpoint.tls_config(config).map_err(|e| e.to_string())?;
    }
    Ok(endpoint.connect_lazy())
}
