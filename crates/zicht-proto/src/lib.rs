//! Generated protobuf and gRPC types of `proto/zicht/v1` and of OTLP (OpenTelemetry's
//! protocol, `proto/opentelemetry`); nothing else. Domain code converts at
//! the edge.

#![allow(missing_docs, clippy::all)]

/// `zicht.v1`: domain records, query requests, protected results, and the Inway/Outway services.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/zicht.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `zicht.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zicht_descriptor.bin"));

/// OTLP (OpenTelemetry protocol 1.10.0): `opentelemetry.proto.*` messages and the trace and
/// metrics collector services. Modules mirror the packages, as the generated code expects.
/// Their comments are OTLP's own, whose indented JSON examples rustdoc would run as Rust, so
/// doc-tests skip this module.
#[cfg(not(doctest))]
pub mod otlp {
    macro_rules! package {
        ($name:ident, $file:literal) => {
            pub mod $name {
                pub mod v1 {
                    include!(concat!(env!("OUT_DIR"), "/", $file));
                }
            }
        };
    }
    package!(common, "opentelemetry.proto.common.v1.rs");
    package!(resource, "opentelemetry.proto.resource.v1.rs");
    package!(trace, "opentelemetry.proto.trace.v1.rs");
    package!(metrics, "opentelemetry.proto.metrics.v1.rs");
    /// The collector services: `TraceService/Export`, `MetricsService/Export`.
    pub mod collector {
        package!(trace, "opentelemetry.proto.collector.trace.v1.rs");
        package!(metrics, "opentelemetry.proto.collector.metrics.v1.rs");
    }
}
