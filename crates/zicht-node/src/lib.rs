//! The zicht node: gRPC over mutual TLS, peer identity from certificates, a default-deny policy
//! with purpose binding, quotas and limits, and templates run under disclosure control.

pub mod audit;
pub mod auditor;
pub mod config;
pub mod execute;
pub mod merge;
pub mod metrics;
pub mod otlp;
pub mod outway;
pub mod peers;
pub mod policy;
pub mod secret;
pub mod server;
pub mod service;
pub mod tls;

pub use execute::{execute, log_outcome, Call, Disclosure, ExecuteError, Released};
pub use server::{start, start_on, NodeSettings, PeerInfo, RunningNode, StartError};
pub use service::{today, Limits};
