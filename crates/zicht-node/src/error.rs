//! The node's one error type and its one mapping to gRPC statuses. Every refusal and failure a
//! handler can meet is a variant; messages name the rule, the missing grant or what the node
//! could not do, never data and never internals. The cause chain of an internal failure goes to
//! the node's log once, where a handler turns the error into its answer ([`respond`]).

use tonic::{Code, Status};
use zicht_model::Template;
use zicht_store::StoreError;

use crate::policy::Denied;

/// Why a request was refused or could not be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection carried no verified identity (cannot happen behind the TLS acceptor).
    #[error("no verified peer identity on this connection")]
    NoIdentity,
    /// A request limit was exceeded or a parameter is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The policy refused.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The caller's role may not use this service at all.
    #[error("missing grant: {0}")]
    Role(String),
    /// A node certificate whose PeerID is not the one the federation manifest lists for that
    /// node: served nothing.
    #[error("{0} is not the PeerID this node's federation manifest lists for {1}; a node certificate is served only when it is the manifest's")]
    Unlisted(zicht_model::PeerId, zicht_model::NodeName),
    /// A node asked on behalf of a person without a delegation that verifies.
    #[error("delegation: {0}")]
    Delegation(String),
    /// The caller's quota is used up.
    #[error("quota of {per_minute} requests per minute exceeded; retry after {retry_after_ms} ms")]
    Quota {
        /// The grant's quota.
        per_minute: u32,
        /// When the next request will be allowed.
        retry_after_ms: u64,
    },
    /// The caller was refused too often: turned away before anything is checked or logged.
    #[error(
        "too many refused requests ({per_minute} per minute); retry after {retry_after_ms} ms"
    )]
    RefusalFlood {
        /// The caller's refusal budget.
        per_minute: u32,
        /// When the caller is heard again.
        retry_after_ms: u64,
    },
    /// The node is a network aggregator: it holds no youth data.
    #[error("this node is a network aggregator and holds no youth data; analysts ask its Outway")]
    NoData,
    /// A capacity question to a region that imported no capacity data: refused rather than
    /// answered with zero facilities.
    #[error("this region has loaded no capacity data (its data team imports it with zicht import --table capacity)")]
    NoCapacityData,
    /// The template is registered but this node cannot run it yet.
    #[error("template {0} is registered but not executable on this node yet")]
    NotExecutable(Template),
    /// Disclosure control refused the result; the message names the rule, never a cell.
    #[error("refused by disclosure control: {0}")]
    Disclosure(#[from] zicht_privacy::Refusal),
    /// The node has no record-key secret, so it releases no perturbed counts.
    #[error("this node has no record-key secret (record_key_secret in its config), so it releases no person counts")]
    NoSecret,
    /// The node has no data-subject key, so it releases no consented records (it could not
    /// log whose records left).
    #[error("this node has no data-subject key (privacy.subject_key in its config), so it releases no consented records")]
    NoSubjectKey,
    /// The data changed while the answer was being made (an import beside the node).
    #[error("the node's data changed while the query ran (an import); ask again")]
    Importing,
    /// The node has no database (for its logs, or its data).
    #[error("this node has no database{0}")]
    NoDatabase(&'static str),
    /// A log write failed, so nothing left (fail-closed).
    #[error("the node could not write its {log}; nothing was {withheld}")]
    Unlogged {
        /// Which log.
        log: &'static str,
        /// What was withheld (`released`, `asked`, `read`).
        withheld: &'static str,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// An audit entry no longer matches what its chain hashes cover.
    #[error("{0}")]
    Tampered(#[source] StoreError),
    /// The store failed.
    #[error("the node could not {action}")]
    Store {
        /// What the node was doing, e.g. `run the query`.
        action: &'static str,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// A checkpoint a peer handed in is not acceptable.
    #[error("{0}")]
    BadCheckpoint(&'static str),
    /// The node could not make its own checkpoint.
    #[error("the node could not {0}; no checkpoint was sent")]
    NoCheckpoint(&'static str),
}

impl Error {
    /// The short name of the rule or failure, for the release log and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            Error::NoIdentity => "no-identity",
            Error::Invalid(_) => "limit-or-invalid",
            Error::Denied(_) | Error::Role(_) => "policy",
            Error::Unlisted(..) => "unlisted-node",
            Error::Delegation(_) => "delegation",
            Error::Quota { .. } => "quota",
            Error::RefusalFlood { .. } => "refusal-flood",
            Error::NoData => "no-data",
            Error::NoCapacityData => "no-capacity-data",
            Error::NotExecutable(_) => "not-executable",
            Error::Disclosure(refusal) => refusal.rule(),
            Error::NoSecret => "no-record-key-secret",
            Error::NoSubjectKey => "no-subject-key",
            Error::Importing => "importing",
            Error::NoDatabase(_) => "no-database",
            Error::Unlogged { .. } => "unlogged",
            Error::Tampered(_) => "tampered",
            Error::Store { .. } => "store-error",
            Error::BadCheckpoint(_) => "bad-checkpoint",
            Error::NoCheckpoint(_) => "no-checkpoint",
        }
    }

    /// A store failure while doing `action`.
    pub fn store(action: &'static str) -> impl FnOnce(StoreError) -> Error {
        move |source| Error::Store { action, source }
    }

    /// A failed write to `log`: nothing was `withheld`.
    pub fn unlogged(log: &'static str, withheld: &'static str) -> impl FnOnce(StoreError) -> Error {
        move |source| Error::Unlogged {
            log,
            withheld,
            source,
        }
    }
}

impl Error {
    /// The gRPC code this error answers with: the one place a refusal or failure is sorted.
    pub fn code(&self) -> Code {
        match self {
            Error::NoIdentity => Code::Unauthenticated,
            Error::Invalid(_) | Error::BadCheckpoint(_) => Code::InvalidArgument,
            Error::Denied(_) | Error::Role(_) | Error::Unlisted(..) | Error::Delegation(_) => {
                Code::PermissionDenied
            }
            Error::Quota { .. } | Error::RefusalFlood { .. } => Code::ResourceExhausted,
            Error::NoData | Error::NotExecutable(_) | Error::NoSubjectKey => Code::Unimplemented,
            Error::Disclosure(_) | Error::NoSecret | Error::NoCapacityData => {
                Code::FailedPrecondition
            }
            Error::Importing
            | Error::NoDatabase(_)
            | Error::Unlogged { .. }
            | Error::NoCheckpoint(_) => Code::Unavailable,
            Error::Tampered(_) => Code::DataLoss,
            Error::Store { .. } => Code::Internal,
        }
    }

    /// Writes the cause chain of an internal failure to the node's log, once, where the error
    /// becomes an answer (a status, or a coverage line for the node's own part).
    pub(crate) fn log_cause(&self) {
        if matches!(self, Error::Unlogged { .. } | Error::Store { .. }) {
            tracing::error!(rule = self.rule(), cause = %chain(self), "request failed");
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let mut status = Status::new(error.code(), error.to_string());
        if let Error::Quota { retry_after_ms, .. } | Error::RefusalFlood { retry_after_ms, .. } =
            error
        {
            if let Ok(value) = retry_after_ms.to_string().parse() {
                status.metadata_mut().insert("retry-after-ms", value);
            }
        }
        status
    }
}

/// The answer to `error`, where a handler meets it: an internal failure's cause chain goes to
/// the node's log (once, here), the caller gets the status.
pub fn respond(error: Error) -> Status {
    error.log_cause();
    Status::from(error)
}

/// An error and its causes on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: Error, code: tonic::Code, message: &str) {
        let status = Status::from(error);
        assert_eq!((status.code(), status.message()), (code, message));
    }

    #[test]
    fn each_error_has_one_status_and_names_no_data() {
        use tonic::Code;
        check(
            Error::Quota {
                per_minute: 2,
                retry_after_ms: 30_000,
            },
            Code::ResourceExhausted,
            "quota of 2 requests per minute exceeded; retry after 30000 ms",
        );
        check(
            Error::Disclosure(zicht_privacy::Refusal::PopulationFloor { floor: 10 }),
            Code::FailedPrecondition,
            "refused by disclosure control: population-floor: the published total is below 10; ask with a wider scope or fewer filters",
        );
        check(
            Error::NoDatabase(""),
            Code::Unavailable,
            "this node has no database",
        );
        check(
            Error::Role("only nodes hand in checkpoints".to_owned()),
            Code::PermissionDenied,
            "missing grant: only nodes hand in checkpoints",
        );
        let status = Status::from(Error::Quota {
            per_minute: 1,
            retry_after_ms: 5,
        });
        assert_eq!(
            status
                .metadata()
                .get("retry-after-ms")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
    }
}
