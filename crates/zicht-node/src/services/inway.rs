//! The peer-facing `Inway` service: limits, then policy (who, template, purpose, granularity),
//! then quota, then the template on the node's own data, logged before it leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::DefaultClock;
use tonic::{Request, Response, Status};
use zicht_model::{CodeList, PeerId, PeerIdentity, Role, Template};
use zicht_proto::v1 as pb;
use zicht_store::Store;

use crate::audit::Operation;
use crate::convert::{self, complete, RequestText};
use crate::disclosure::Disclosure;
use crate::error::{respond, Error};
use crate::policy::Policy;
use crate::query::admission::{check_query, Checked, Guarded, Quotas, RefusalGuard};
use crate::query::execute::{execute, log_outcome, today, Call, Released};
use crate::settings::Limits;
use crate::telemetry::metrics::Metrics;
use crate::transport::accept::PeerInfo;

/// The `Inway` service of one node.
pub struct Inway {
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
    /// Held from counting a requester's populations of the day until the release is
    /// recorded, so two concurrent queries cannot both pass the per-day limit.
    release_locks: std::sync::Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Inway {
    /// The service for `policy`, `limits` and (regional nodes) `store`, with the default
    /// disclosure settings. [`crate::start`] builds one behind mutual TLS; benchmarks build one
    /// to compare transports.
    pub fn new(policy: Policy, limits: Limits, store: Option<Store>) -> Inway {
        let policy = Arc::new(policy);
        Inway {
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
            release_locks: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The same service enforcing `disclosure`.
    pub fn with_disclosure(self, disclosure: Disclosure) -> Inway {
        Inway { disclosure, ..self }
    }

    /// The same service counting its requests in `metrics`.
    pub(crate) fn with_metrics(self, metrics: Arc<Metrics>) -> Inway {
        Inway { metrics, ..self }
    }

    /// The same service naming itself `resource` (its entity URI) in its audit records.
    pub fn with_resource(self, resource: String) -> Inway {
        Inway { resource, ..self }
    }

    /// The same service for an aggregator: its store holds only its log, so it runs no
    /// template.
    pub fn without_data(self) -> Inway {
        Inway {
            holds_data: false,
            ..self
        }
    }
}

impl Inway {
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

    /// The lock of one requester's populations (other requesters' queries run beside it).
    pub(crate) fn release_lock(&self, requester: PeerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .release_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(requester).or_default().clone()
    }
}

impl Inway {
    /// Limits, policy and quota for one call of `identity`; returns the checked query and
    /// the caller's deadline.
    pub(crate) fn admit(
        &self,
        identity: &PeerIdentity,
        on_behalf_of: Option<PeerId>,
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
        )?;
        let exact = grant.owner;
        self.quotas.check(index, (identity.peer_id, on_behalf_of))?;
        let checked = Checked {
            query: complete(asked, query)?,
            exact,
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
        let _serial = if request.template != Template::Capacity.code() {
            Some(self.release_lock(identity.peer_id).lock_owned().await)
        } else {
            None
        };
        let started = std::time::Instant::now();
        let outcome = match admitted {
            Ok(checked) => self.execute_checked(identity, &checked).await,
            Err(refusal) => Err(refusal),
        };
        self.metrics.request(
            operation.name,
            outcome.as_ref().map_or_else(Error::rule, |_| "released"),
            started.elapsed(),
        );
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
        let Some(store) = self.store.as_ref().filter(|_| self.holds_data) else {
            return Err(Error::NoData);
        };
        let requester = identity.peer_id.to_string();
        let call = Call {
            store,
            disclosure: &self.disclosure,
            query: &checked.query,
            exact: checked.exact,
            requester: &requester,
            today: today(),
        };
        execute(&call).await
    }
}

impl Inway {
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
        match self.refusals.before(identity.peer_id) {
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

/// The header in which a node's Outway names the analyst it asks for.
pub(crate) const ON_BEHALF_OF: &str = "zicht-on-behalf-of";

/// The analyst a node asks on behalf of: read only from nodes (their mutual-TLS identity
/// vouches for it, as it does for everything they send); from anyone else, or malformed, none.
fn on_behalf_of(
    identity: &PeerIdentity,
    metadata: &tonic::metadata::MetadataMap,
) -> Option<PeerId> {
    if !matches!(identity.role, Role::Region(_) | Role::Network(_)) {
        return None;
    }
    let value = metadata.get(ON_BEHALF_OF)?.to_str().ok()?;
    PeerId::parse(value).ok()
}

/// The caller's verified identity, as the accept loop attached it to the request.
pub(crate) fn identity<T>(request: &Request<T>) -> Result<PeerIdentity, Error> {
    request
        .extensions()
        .get::<PeerInfo>()
        .map(|info| info.identity.clone())
        .ok_or(Error::NoIdentity)
}

#[tonic::async_trait]
impl pb::inway_server::Inway for Inway {
    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::ProtectedResult>, Status> {
        let identity = identity(&request).map_err(respond)?;
        self.guard("zicht.v1.Inway/Query", &identity)
            .await
            .map_err(respond)?;
        let size = prost::Message::encoded_len(request.get_ref());
        let for_person = on_behalf_of(&identity, request.metadata());
        let admitted = self
            .admit(
                &identity,
                for_person,
                request.get_ref(),
                size,
                request.metadata(),
            )
            .map(|(checked, _)| checked);
        if let Err(Error::Invalid(_) | Error::Denied(_)) = &admitted {
            self.refusals.refused(identity.peer_id);
        }
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok());
        let operation = Operation::called(
            "zicht.v1.Inway/Query",
            &self.resource,
            traceparent,
            &identity.role.uri(),
        )
        .on_behalf_of(for_person);
        let text = RequestText::of(request.get_ref());
        let released = self
            .run_logged(&operation, &identity, &text, admitted)
            .await
            .map_err(respond)?;
        Ok(Response::new(convert::result(&released.table)))
    }

    async fn get_disclosure_settings(
        &self,
        request: Request<pb::DisclosureSettingsRequest>,
    ) -> Result<Response<pb::DisclosureSettings>, Status> {
        self.disclosure_settings(&request)
            .await
            .map(Response::new)
            .map_err(respond)
    }
}

/// The processing activity of reading a node's disclosure settings.
pub const DISCLOSURE_SETTINGS_ACTIVITY: &str = "urn:zicht:activity:disclosure-settings";

impl Inway {
    /// The disclosure settings, for the federation's nodes and for callers with a grant here;
    /// logged (fail-closed) like every other call, and guarded against floods of refusals.
    async fn disclosure_settings<T>(
        &self,
        request: &Request<T>,
    ) -> Result<pb::DisclosureSettings, Error> {
        let identity = identity(request)?;
        const RPC: &str = "zicht.v1.Inway/GetDisclosureSettings";
        self.guard(RPC, &identity).await?;
        let allowed = matches!(identity.role, Role::Region(_) | Role::Network(_))
            || self.policy.grants.iter().any(|g| g.who.matches(&identity));
        if let Some(store) = &self.store {
            let outcome = if allowed {
                "released disclosure settings"
            } else {
                "refused: policy"
            };
            self.log_call(store, RPC, &identity, DISCLOSURE_SETTINGS_ACTIVITY, outcome)
                .await
                .map_err(Error::unlogged("release log", "released"))?;
        }
        if !allowed {
            self.refusals.refused(identity.peer_id);
            return Err(Error::Role(format!(
                "{identity} has no grant at this node; its disclosure settings are for the \
                 federation's nodes and its grantees"
            )));
        }
        Ok(settings_message(&self.disclosure))
    }
}

/// The settings as the `DisclosureSettings` message, with the network floor and the
/// perturbation table's rows that miss a constraint (none on a running node).
pub fn settings_message(disclosure: &Disclosure) -> pb::DisclosureSettings {
    let message = |settings: &zicht_privacy::Settings| pb::DisclosureSettings {
        max_deviation: settings.max_deviation,
        variance: settings.variance,
        js: settings.js,
        population_floor: settings.population_floor,
        period_granularity: settings.period_granularity.code().to_owned(),
        max_populations_per_day: settings.max_populations_per_day,
        magnitude_min_youths: settings.magnitude_min_youths,
        dominance_max_share_percent: settings.dominance_max_share_percent,
        floor: None,
        ptable_problems: Vec::new(),
    };
    pb::DisclosureSettings {
        floor: Some(Box::new(message(&zicht_privacy::Settings::FLOOR))),
        ptable_problems: disclosure
            .ptable()
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect(),
        ..message(&disclosure.settings)
    }
}
