//! The gRPC services a node serves: `Inway` (peers ask one template on this node's data),
//! `Outway` (this node's analysts ask the federation), `Audit` and `Checkpoints` (auditors read
//! the logs, peers hand in signed chain heads). Each admits, runs, logs and answers; every
//! failure is an [`crate::error::Error`], answered once through `respond`.

pub(crate) mod auditor;
pub(crate) mod inway;
pub(crate) mod outway;
pub(crate) mod state;
