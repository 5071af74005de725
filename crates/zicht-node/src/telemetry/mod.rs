//! Telemetry: Prometheus metrics and the optional OpenTelemetry export. Nothing here holds
//! data values; spans leave only after the audit log holds what they describe.

pub(crate) mod metrics;
pub(crate) mod otlp;
