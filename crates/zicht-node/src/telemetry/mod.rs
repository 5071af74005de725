//! Telemetry: metrics (Prometheus, and OTLP when configured), operation spans (OTLP when
//! configured) and the OTLP connection itself. Nothing here holds data values; a span leaves
//! only once the audit log holds what it describes.

pub(crate) mod metrics;
pub(crate) mod otlp;
pub mod traces;
