//! The zicht node: gRPC over mutual TLS, peer identity from certificates, a default-deny policy
//! with purpose binding, quotas and limits, and templates run under disclosure control.
//!
//! Layers (see ARCHITECTURE.md): `settings` (what a node runs with; a leaf) and `config`
//! (reads it from files and the environment); `transport` (TLS in and out); `services` (the
//! gRPC services); `query` (admission, execution, merging); `audit` (the log records of every
//! operation); `telemetry`; `node` (starts and stops the whole).

pub mod audit;
pub mod config;
pub mod convert;
mod disclosure;
mod error;
pub mod identity;
mod node;
pub mod policy;
mod query;
pub mod secret;
mod services;
mod settings;
mod telemetry;
mod transport;

pub use disclosure::Disclosure;
pub use error::Error;
pub use node::{start, start_on, RunningNode, StartError};
#[cfg(feature = "unaudited")]
pub use query::execute::UNAUDITED;
pub use query::execute::{
    execute, log_entry, log_outcome, today, Call, Released, DECOMPOSITION_WATCH,
};
pub use services::auditor::AUDIT_ACTIVITY;
pub use services::inway::{settings_message, Inway};
#[cfg(feature = "unaudited")]
pub use settings::UNGUARDED;
pub use settings::{
    InvalidPeerAddress, Limits, ManifestPeer, NodeSettings, OtlpSettings, PeerAddress, TlsFiles,
};
pub use telemetry::traces::layer as tracing_layer;
pub use transport::accept::PeerInfo;
pub use transport::peers::channel_to;
