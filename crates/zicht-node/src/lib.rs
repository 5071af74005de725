//! The zicht node: gRPC over mutual TLS, peer identity from certificates, a default-deny policy
//! with purpose binding, quotas and limits.

pub mod policy;
