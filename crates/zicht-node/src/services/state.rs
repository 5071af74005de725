//! What the services of one node share ([`NodeState`]), and the steps every service takes
//! with it: guard against refusal floods, admit (limits, policy, quota), run on the node's
//! own data, and log before anything leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::DefaultClock;
use zicht_model::{CodeList, PeerId, PeerIdentity, Template};
use zicht_proto::v1 as pb;
use zicht_store::Store;

use crate::audit::Operation;
use crate::convert::{complete, RequestText};
use crate::disclosure::Disclosure;
use crate::error::Error;
use crate::identity::Callers;
use crate::policy::Policy;
use crate::query::admission::{check_query, principal, Checked, Guarded, Quotas, RefusalGuard};
use crate::query::execute::{execute, log_outcome, today, Call, Released};
use crate::settings::Limits;
use crate::telemetry::metrics::Metrics;

/// What every service of one node shares: its policy, quotas, refusal guard, limits, store,
/// disclosure control, entity URI and metrics, and the per-requester release locks. The
/// `Inway`, `Outway`, `Audit` and `Checkpoints` services each hold it behind one `Arc`.
pub struct NodeState {
    pub(crate) policy: Arc<Policy>,
    pub(crate) quotas: Arc<Quotas>,
    /// Refusals per caller before its requests are turned away unlogged.
    pub(crate) refusals: Arc<RefusalGuard>,
    pub(crate) limits: Limits,
    pub(crate) store: Option<Store>,
    pub(crate) disclosure: Disclosure,
    /// Whether the store holds youth data (an aggregator's holds only its log).
    holds_data: bool,
    /// The node's entity URI, as its audit records name it.
    pub(crate) resource: String,
    /// Request and audit-write metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Who calls: the manifest's node PeerIDs and the check of persons' delegations.
    pub(crate) callers: Callers,
    /// Held from counting a requester's populations of the day until the release is
    /// recorded, so two concurrent queries cannot both pass the per-day limit.
    release_locks: std::sync::Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<()>>>>,
}

impl NodeState {
    /// The state of a node with `policy`, `limits` and (regional nodes) `store`, with the
    /// default disclosure settings.
    pub fn new(policy: Policy, limits: Limits, store: Option<Store>) -> NodeState {
        let policy = Arc::new(policy);
        NodeState {
            quotas: Arc::new(Quotas::new(&policy, DefaultClock::default())),
            refusals: Arc::new(RefusalGuard::new(
                limits.refusals_per_minute,
                DefaultClock::default(),
            )),
            policy,
            limits,
            store,
            disclosure: Disclosure::default(),
            holds_data: true,
            resource: "urn:zicht:node".to_owned(),
            metrics: Arc::default(),
            callers: Callers::default(),
            release_locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The same service checking its callers with `callers` (a node without: no node
    /// certificate is served, and no delegation verifies).
    pub(crate) fn with_callers(self, callers: Callers) -> NodeState {
        NodeState { callers, ..self }
    }

    /// The same service enforcing `disclosure`.
    pub fn with_disclosure(self, disclosure: Disclosure) -> NodeState {
        NodeState { disclosure, ..self }
    }

    /// The same service counting its requests in `metrics`.
    pub(crate) fn with_metrics(self, metrics: Arc<Metrics>) -> NodeState {
        NodeState { metrics, ..self }
    }

    /// The same service naming itself `resource` (its entity URI) in its audit records.
    pub fn with_resource(self, resource: String) -> NodeState {
        NodeState { resource, ..self }
    }

    /// The same service for an aggregator: its store holds only its log, so it runs no
    /// template.
    pub fn without_data(self) -> NodeState {
        NodeState {
            holds_data: false,
            ..self
        }
    }
}

impl NodeState {
    /// Logs one call of `rpc` by `identity` on the node's own `activity` (not a template call)
    /// with its `outcome`, as a new operation of this node.
    pub(crate) async fn log_call(
        &self,
        store: &Store,
        rpc: &'static str,
        identity: &PeerIdentity,
        activity: &'static str,
        outcome: &str,
    ) -> Result<(), zicht_store::StoreError> {
        let operation = Operation::start(rpc, &self.resource);
        let requester = identity.peer_id.to_string();
        let role = identity.role.uri();
        crate::query::execute::log_activity(store, &operation, &requester, &role, activity, outcome)
            .await
    }

    /// The store of the node's youth data (an aggregator's holds only its log: none).
    pub(crate) fn data_store(&self) -> Option<&Store> {
        self.store.as_ref().filter(|_| self.holds_data)
    }

    /// The lock of one requester's populations (other requesters' queries run beside it).
    pub(crate) fn release_lock(&self, requester: PeerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .release_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(requester).or_default().clone()
    }
}

impl NodeState {
    /// Counts a refusal against `identity`'s refusal budget.
    pub(crate) fn refused(&self, identity: &PeerIdentity) {
        self.refusals.refused(principal(identity));
    }

    /// Limits, policy and quota for one call of `identity` (for `person`, proven by their
    /// delegation); returns the checked query and the caller's deadline.
    pub(crate) fn admit(
        &self,
        identity: &PeerIdentity,
        person: Option<&PeerIdentity>,
        query: &pb::QueryRequest,
        size: usize,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(Checked, Duration), Error> {
        let (asked, deadline) = check_query(&self.limits, query, size, metadata)?;
        let (index, grant) = self.policy.authorize(
            identity,
            asked.template,
            asked.purpose,
            &asked.group_by,
            &asked.filter_dimensions(),
            &asked.fields,
        )?;
        let exact = grant.owner;
        let fields = if asked.fields.is_empty() {
            grant.fields.iter().copied().collect()
        } else {
            asked.fields.clone()
        };
        self.quotas
            .check(index, (principal(identity), person.map(principal)))?;
        let checked = Checked {
            query: complete(asked, query)?,
            exact,
            fields,
            on_behalf_of: person.map(|p| p.peer_id),
        };
        Ok((checked, deadline))
    }

    /// Runs an admitted query on the node's own data, with the requester's populations locked
    /// for person counts, and logs the outcome (answer or refusal) before returning it: no
    /// log, no answer.
    pub(crate) async fn run_logged(
        &self,
        operation: &Operation,
        identity: &PeerIdentity,
        request: &RequestText,
        admitted: Result<Checked, Error>,
    ) -> Result<Released, Error> {
        // Person counts consult and extend the requester's populations: one release at a time.
        let counts = Template::from_code(&request.template)
            .is_some_and(|t| t != Template::Capacity && t != Template::ConsentedRecords);
        let _serial = if counts {
            Some(self.release_lock(identity.peer_id).lock_owned().await)
        } else {
            None
        };
        let started = std::time::Instant::now();
        let outcome = match admitted {
            Ok(checked) if checked.query.template == Template::ConsentedRecords => {
                // Read and logged in one transaction: the log is already written.
                let released = crate::query::consented::release(
                    self.data_store(),
                    &self.disclosure,
                    operation,
                    identity,
                    request,
                    &checked,
                )
                .await;
                match released {
                    Ok(released) => {
                        self.metrics
                            .request(operation.name, "released", started.elapsed());
                        return Ok(released);
                    }
                    Err(error @ Error::Unlogged { .. }) => {
                        self.metrics
                            .request(operation.name, error.rule(), started.elapsed());
                        return Err(error);
                    }
                    Err(refusal) => Err(refusal),
                }
            }
            Ok(checked) => self.execute_checked(identity, &checked).await,
            Err(refusal) => Err(refusal),
        };
        self.metrics.request(
            operation.name,
            outcome.as_ref().map_or_else(Error::rule, |_| "released"),
            started.elapsed(),
        );
        if outcome
            .as_ref()
            .is_ok_and(|released| released.watch.is_some())
        {
            self.metrics.decomposition_watch();
        }
        if let Some(store) = &self.store {
            let write = std::time::Instant::now();
            let logged = log_outcome(
                store,
                operation,
                &identity.peer_id.to_string(),
                &identity.role.uri(),
                request,
                outcome.as_ref().map_err(Error::rule),
            )
            .await;
            self.metrics.audit_write(write.elapsed());
            logged.map_err(Error::unlogged("release log", "released"))?;
        }
        outcome
    }

    async fn execute_checked(
        &self,
        identity: &PeerIdentity,
        checked: &Checked,
    ) -> Result<Released, Error> {
        let Some(store) = self.data_store() else {
            return Err(Error::NoData);
        };
        let requester = identity.peer_id.to_string();
        let person = checked.on_behalf_of.map(|p| p.to_string());
        let call = Call {
            store,
            disclosure: &self.disclosure,
            query: &checked.query,
            exact: checked.exact,
            requester: &requester,
            person: person.as_deref(),
            today: today(),
        };
        execute(&call).await
    }
}

impl NodeState {
    /// Turns a caller away (unlogged) while it is muted for too many refusals of any service;
    /// when its mute ends, logs once (as a call of `rpc`) how many requests were turned away.
    pub(crate) async fn guard(
        &self,
        rpc: &'static str,
        identity: &PeerIdentity,
    ) -> Result<(), Error> {
        if crate::settings::unguarded() {
            return Ok(());
        }
        match self.refusals.before(&principal(identity)) {
            Guarded::Admit | Guarded::AdmitAfter(0) => Ok(()),
            Guarded::TurnAway(retry_after_ms) => {
                self.metrics
                    .request(rpc, "refusal-flood", std::time::Duration::ZERO);
                Err(Error::RefusalFlood {
                    per_minute: self.refusals.per_minute(),
                    retry_after_ms,
                })
            }
            Guarded::AdmitAfter(turned_away) => {
                let Some(store) = &self.store else {
                    return Ok(());
                };
                let outcome =
                    format!("refused: refusal-flood: {turned_away} requests turned away unlogged");
                self.log_call(store, rpc, identity, REFUSAL_FLOOD_ACTIVITY, &outcome)
                    .await
                    .map_err(Error::unlogged("release log", "released"))
            }
        }
    }
}

/// The processing activity of a summary of requests turned away unlogged.
pub const REFUSAL_FLOOD_ACTIVITY: &str = "urn:zicht:activity:refusal-flood";
