//! The zicht node: gRPC over mutual TLS, peer identity from certificates, a default-deny policy
//! with purpose binding, quotas and limits.

pub mod config;
pub mod policy;
pub mod server;
pub mod service;
pub mod tls;

pub use server::{start, NodeSettings, PeerInfo, RunningNode, StartError};
pub use service::Limits;
