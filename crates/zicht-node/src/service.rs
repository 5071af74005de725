//! The peer-facing `Inway` service: limits, then policy (who, template, purpose, granularity),
//! then quota, then the template. Every refusal has one status kind, mapped in [`Refusal`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tonic::{Request, Response, Status};
use zicht_model::{CodeList, Dimension, NaiveDate, PeerId, PeerIdentity, Purpose, Template};
use zicht_proto::v1 as pb;
use zicht_store::Store;

use crate::audit::Operation;
use crate::execute::{execute, log_outcome, Call, Disclosure, ExecuteError, Released};
use crate::policy::{Denied, Policy};
use crate::server::PeerInfo;

/// Request limits a node enforces before it does any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded request, in bytes.
    pub max_request_bytes: usize,
    /// Longest deadline a caller may set; a request must set one.
    pub max_deadline: Duration,
    /// Most group-by dimensions in one request.
    pub max_group_by: usize,
    /// Most filters in one request, and most values in one filter.
    pub max_filters: usize,
    /// Most result cells a request may ask for (product of the dimensions' sizes).
    pub max_cells: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 16 * 1024,
            max_deadline: Duration::from_secs(30),
            max_group_by: 3,
            max_filters: 8,
            max_cells: 5_000,
        }
    }
}

/// Why a request is refused, and the one place where that becomes a gRPC status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The connection carried no verified identity (cannot happen behind the TLS acceptor).
    #[error("no verified peer identity on this connection")]
    NoIdentity,
    /// A request limit was exceeded or a parameter is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The policy refused.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The caller's quota is used up.
    #[error("quota of {per_minute} requests per minute exceeded; retry after {retry_after_ms} ms")]
    Quota {
        /// The grant's quota.
        per_minute: u32,
        /// When the next request will be allowed.
        retry_after_ms: u64,
    },
    /// The node is a network aggregator: it holds no youth data.
    #[error("this node is a network aggregator and holds no youth data; analysts ask its Outway")]
    NoData,
    /// The template is registered but this node cannot run it yet.
    #[error("template {0} is registered but not executable on this node yet")]
    NotExecutable(Template),
    /// Disclosure control refused the result; the message names the rule, never a cell.
    #[error("refused by disclosure control: {0}")]
    Disclosure(zicht_privacy::Refusal),
    /// The node has no record-key secret, so it releases no perturbed counts.
    #[error("this node has no record-key secret (record_key_secret in its config), so it releases no person counts")]
    NoSecret,
    /// Rows arrived without record keys while the query ran.
    #[error("the node's data changed while the query ran (an import); ask again")]
    Importing,
    /// The store failed; details go to the node's log, not to the caller.
    #[error("the node could not run the query")]
    Store(#[source] zicht_store::StoreError),
}

impl Refusal {
    /// A short name of the refusing rule, for the release log.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::NoIdentity => "no-identity",
            Refusal::Invalid(_) => "limit-or-invalid",
            Refusal::Denied(_) => "policy",
            Refusal::Quota { .. } => "quota",
            Refusal::NoData => "no-data",
            Refusal::NotExecutable(_) => "not-executable",
            Refusal::Disclosure(refusal) => refusal.rule(),
            Refusal::NoSecret => "no-record-key-secret",
            Refusal::Importing => "importing",
            Refusal::Store(_) => "store-error",
        }
    }
}

impl From<ExecuteError> for Refusal {
    fn from(error: ExecuteError) -> Refusal {
        match error {
            ExecuteError::Invalid(text) => Refusal::Invalid(text),
            ExecuteError::Refused(refusal) => Refusal::Disclosure(refusal),
            ExecuteError::NotExecutable(template) => Refusal::NotExecutable(template),
            ExecuteError::Store(source) => Refusal::Store(source),
            ExecuteError::NoSecret => Refusal::NoSecret,
            ExecuteError::Importing => Refusal::Importing,
        }
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        let message = refusal.to_string();
        match refusal {
            Refusal::NoIdentity => Status::unauthenticated(message),
            Refusal::Invalid(_) => Status::invalid_argument(message),
            Refusal::Denied(_) => Status::permission_denied(message),
            Refusal::Quota { retry_after_ms, .. } => {
                let mut status = Status::resource_exhausted(message);
                if let Ok(value) = retry_after_ms.to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", value);
                }
                status
            }
            Refusal::NoData | Refusal::NotExecutable(_) => Status::unimplemented(message),
            Refusal::Disclosure(_) => Status::failed_precondition(message),
            Refusal::NoSecret => Status::failed_precondition(message),
            Refusal::Importing => Status::unavailable(message),
            Refusal::Store(source) => {
                eprintln!("zicht node: query failed: {:#}", anyhow_chain(&source));
                Status::internal(message)
            }
        }
    }
}

pub(crate) fn anyhow_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The answer when a log write failed (fail-closed): the cause goes to the node's own error
/// output, the caller learns only which log failed and what was `withheld`.
pub(crate) fn unlogged(error: &zicht_store::StoreError, log: &str, withheld: &str) -> Status {
    eprintln!("zicht node: {}", anyhow_chain(error));
    Status::unavailable(format!(
        "the node could not write its {log}; nothing was {withheld}"
    ))
}

type PeerLimiter<C> = RateLimiter<
    PeerId,
    HashMapStateStore<PeerId>,
    C,
    governor::middleware::NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Per-grant, per-caller rate limits (governor's GCRA), burst up to the per-minute quota.
pub struct Quotas<C: Clock = DefaultClock> {
    limiters: Vec<(u32, PeerLimiter<C>)>,
    clock: C,
}

impl<C: Clock + Clone> Quotas<C> {
    /// One limiter per grant of `policy`.
    pub fn new(policy: &Policy, clock: C) -> Quotas<C> {
        let limiters = policy
            .grants
            .iter()
            .map(|grant| {
                let per_minute = std::num::NonZeroU32::new(grant.quota_per_minute)
                    .unwrap_or(std::num::NonZeroU32::MIN);
                (
                    grant.quota_per_minute,
                    RateLimiter::hashmap_with_clock(Quota::per_minute(per_minute), clock.clone()),
                )
            })
            .collect();
        Quotas { limiters, clock }
    }

    /// Takes one request from `peer`'s quota under grant `grant`.
    pub fn check(&self, grant: usize, peer: PeerId) -> Result<(), Refusal> {
        let Some((per_minute, limiter)) = self.limiters.get(grant) else {
            return Ok(());
        };
        limiter
            .check_key(&peer)
            .map_err(|not_until| Refusal::Quota {
                per_minute: *per_minute,
                retry_after_ms: not_until.wait_time_from(self.clock.now()).as_millis() as u64,
            })
    }
}

/// The `Inway` service of one node.
pub struct Inway {
    pub(crate) policy: Arc<Policy>,
    pub(crate) quotas: Arc<Quotas>,
    pub(crate) limits: Limits,
    pub(crate) store: Option<Store>,
    pub(crate) disclosure: Disclosure,
    /// Whether the store holds youth data (an aggregator's holds only its log).
    holds_data: bool,
    /// The node's entity URI, as its audit records name it.
    pub(crate) resource: String,
    /// Request and audit-write metrics.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
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
    /// The lock of one requester's populations (other requesters' queries run beside it).
    pub(crate) fn release_lock(&self, requester: PeerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .release_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(requester).or_default().clone()
    }
}

/// Today's date (UTC), for the per-day population limit.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Upper bound of distinct values of a dimension (free-text ones are estimated).
fn cardinality(dimension: Dimension) -> u64 {
    match dimension {
        Dimension::OriginRegion | Dimension::PlacementRegion => 16,
        Dimension::CareType => zicht_model::CareType::ALL.len() as u64,
        Dimension::StayGroup => 4,
        Dimension::LandsdeelInside => 2,
        Dimension::AgeBand => 6,
        Dimension::LegalBasis => zicht_model::LegalBasis::ALL.len() as u64,
        Dimension::Provider => 100,
        Dimension::Setting => 3,
        Dimension::LocationMunicipality => 100,
        Dimension::FlowKind => 3,
        Dimension::OutflowDestination => zicht_model::OutflowDestination::ALL.len() as u64,
        Dimension::OutflowProfile => 5,
        Dimension::Toekomstplan => 2,
        Dimension::After18Funding => zicht_model::After18Funding::ALL.len() as u64,
        Dimension::Big5Domain => 5,
        Dimension::Big5Status => 4,
    }
}

/// A checked request.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) template: Template,
    pub(crate) purpose: Purpose,
    pub(crate) group_by: Vec<Dimension>,
    /// The dimensions it filters on (they need a grant like group-by).
    pub(crate) filters: Vec<Dimension>,
    /// Whether the grant makes the caller the data's owner (exact counts).
    pub(crate) exact: bool,
}

impl Inway {
    /// Checks limits and shape of `query` (whose whole request is `size` bytes); never looks
    /// at data. Returns the checked request and the caller's deadline.
    pub(crate) fn check_query(
        &self,
        query: &pb::QueryRequest,
        size: usize,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(Checked, Duration), Refusal> {
        let limits = self.limits;
        let invalid = |text: String| Refusal::Invalid(text);
        if size > limits.max_request_bytes {
            return Err(invalid(format!(
                "request is {size} bytes; the limit max_request_bytes is {}",
                limits.max_request_bytes
            )));
        }
        let deadline = match metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout)
        {
            None => {
                return Err(invalid(
                    "a deadline is required (set a gRPC timeout)".to_owned(),
                ))
            }
            Some(deadline) if deadline > limits.max_deadline => {
                return Err(invalid(format!(
                    "deadline is longer than the limit max_deadline of {} ms",
                    limits.max_deadline.as_millis()
                )))
            }
            Some(deadline) => deadline,
        };
        let template =
            Template::from_code(&query.template).ok_or_else(|| Denied::UnknownTemplate {
                closest: Template::parse(&query.template)
                    .map(|t| t.code())
                    .unwrap_or_else(|e| e.closest),
            })?;
        if query.template_version != 0 && query.template_version != template.version() {
            return Err(invalid(format!(
                "template {template} has version {}, not {}",
                template.version(),
                query.template_version
            )));
        }
        if query.purpose.is_empty() {
            return Err(Denied::NoPurpose.into());
        }
        let purpose = Purpose::from_code(&query.purpose).ok_or_else(|| Denied::UnknownPurpose {
            closest: Purpose::parse(&query.purpose)
                .map(|p| p.code())
                .unwrap_or_else(|e| e.closest),
        })?;
        if query.group_by.len() > limits.max_group_by {
            return Err(invalid(format!(
                "group_by has {} dimensions; the limit max_group_by is {}",
                query.group_by.len(),
                limits.max_group_by
            )));
        }
        if query.filters.len() > limits.max_filters
            || query.filters.iter().any(|f| f.values.len() > 50)
        {
            return Err(invalid(format!(
                "too many filters; the limit max_filters is {} (50 values each)",
                limits.max_filters
            )));
        }
        let mut group_by = Vec::with_capacity(query.group_by.len());
        for name in &query.group_by {
            let dimension = Dimension::from_code(name)
                .filter(|d| template.dimensions().contains(d))
                .ok_or_else(|| {
                    invalid(format!(
                        "template {template} cannot group by this dimension"
                    ))
                })?;
            if group_by.contains(&dimension) {
                return Err(invalid(format!("group_by names {dimension} twice")));
            }
            group_by.push(dimension);
        }
        // The filters' dimensions, checked as execution checks them (a filter needs a grant).
        let filters = crate::execute::filters(template, query)?
            .into_iter()
            .map(|(dimension, _)| dimension)
            .collect();
        let cells: u64 = group_by.iter().map(|&d| cardinality(d)).product();
        if cells > limits.max_cells {
            return Err(invalid(format!(
                "result could have {cells} cells; the limit max_cells is {}",
                limits.max_cells
            )));
        }
        Ok((
            Checked {
                template,
                purpose,
                group_by,
                filters,
                exact: false,
            },
            deadline,
        ))
    }

    /// Limits, policy and quota for one call of `identity`; returns the checked query and
    /// the caller's deadline.
    pub(crate) fn admit(
        &self,
        identity: &PeerIdentity,
        query: &pb::QueryRequest,
        size: usize,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<(Checked, Duration), Refusal> {
        let (mut checked, deadline) = self.check_query(query, size, metadata)?;
        let (index, grant) = self.policy.authorize(
            identity,
            checked.template,
            checked.purpose,
            &checked.group_by,
            &checked.filters,
        )?;
        checked.exact = grant.owner;
        self.quotas.check(index, identity.peer_id)?;
        Ok((checked, deadline))
    }

    /// Runs an admitted query on the node's own data, with the requester's populations locked
    /// for person counts, and logs the outcome (answer or refusal) before returning it: no
    /// log, no answer.
    pub(crate) async fn run_logged(
        &self,
        operation: &Operation,
        identity: &PeerIdentity,
        query: &pb::QueryRequest,
        admitted: Result<Checked, Refusal>,
    ) -> Result<Released, Status> {
        // Person counts consult and extend the requester's populations: one release at a time.
        let _serial = if query.template != Template::Capacity.code() {
            Some(self.release_lock(identity.peer_id).lock_owned().await)
        } else {
            None
        };
        let started = std::time::Instant::now();
        let outcome = match admitted {
            Ok(checked) => self.execute_checked(identity, query, &checked).await,
            Err(refusal) => Err(refusal),
        };
        self.metrics.request(
            operation.name,
            outcome.as_ref().map_or_else(Refusal::rule, |_| "released"),
            started.elapsed(),
        );
        if let Some(store) = &self.store {
            let write = std::time::Instant::now();
            let logged = log_outcome(
                store,
                operation,
                &identity.peer_id.to_string(),
                &identity.role.uri(),
                query,
                outcome.as_ref().map_err(Refusal::rule),
            )
            .await;
            self.metrics.audit_write(write.elapsed());
            if let Err(error) = logged {
                return Err(unlogged(&error, "release log", "released"));
            }
        }
        outcome.map_err(Status::from)
    }

    async fn execute_checked(
        &self,
        identity: &PeerIdentity,
        query: &pb::QueryRequest,
        checked: &Checked,
    ) -> Result<Released, Refusal> {
        let Some(store) = self.store.as_ref().filter(|_| self.holds_data) else {
            return Err(Refusal::NoData);
        };
        let requester = identity.peer_id.to_string();
        let call = Call {
            store,
            disclosure: &self.disclosure,
            template: checked.template,
            query,
            group_by: &checked.group_by,
            exact: checked.exact,
            requester: &requester,
            today: today(),
        };
        Ok(execute(&call).await?)
    }
}

/// Parses a `grpc-timeout` header value (`<digits><unit>`, unit H M S m u n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The caller's verified identity, as the accept loop attached it to the request.
pub(crate) fn identity<T>(request: &Request<T>) -> Result<PeerIdentity, Refusal> {
    request
        .extensions()
        .get::<PeerInfo>()
        .map(|info| info.identity.clone())
        .ok_or(Refusal::NoIdentity)
}

#[tonic::async_trait]
impl pb::inway_server::Inway for Inway {
    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::ProtectedResult>, Status> {
        let identity = identity(&request)?;
        let size = prost::Message::encoded_len(request.get_ref());
        let admitted = self
            .admit(&identity, request.get_ref(), size, request.metadata())
            .map(|(checked, _)| checked);
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok());
        let operation = Operation::called(
            "zicht.v1.Inway/Query",
            &self.resource,
            traceparent,
            &identity.role.uri(),
        );
        let released = self
            .run_logged(&operation, &identity, request.get_ref(), admitted)
            .await?;
        Ok(Response::new(released.result))
    }

    async fn get_disclosure_settings(
        &self,
        _request: Request<pb::DisclosureSettingsRequest>,
    ) -> Result<Response<pb::DisclosureSettings>, Status> {
        Ok(Response::new(settings_message(&self.disclosure)))
    }
}

/// The settings as the `DisclosureSettings` message, with the network floor and the
/// perturbation table's rows that miss a constraint (none on a running node).
pub fn settings_message(disclosure: &crate::Disclosure) -> pb::DisclosureSettings {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[test]
    fn quotas_refill_with_the_clock() {
        let policy = crate::policy::parse_policy(
            "[[grant]]\nrole = \"auditor\"\ntemplates = [\"capacity\"]\npurposes = [\"capaciteitsmonitoring\"]\nquota_per_minute = 2\n",
            None,
        )
        .unwrap();
        let clock = governor::clock::FakeRelativeClock::default();
        let quotas = Quotas::new(&policy, clock.clone());
        let peer = zicht_model::NodeName::Region(zicht_model::Region::Drenthe).dev_peer_id();
        let other = zicht_model::NodeName::Region(zicht_model::Region::Twente).dev_peer_id();
        assert!(quotas.check(0, peer).is_ok());
        assert!(quotas.check(0, peer).is_ok());
        match quotas.check(0, peer) {
            Err(Refusal::Quota {
                per_minute: 2,
                retry_after_ms,
            }) => assert_eq!(retry_after_ms, 30_000),
            other => panic!("{other:?}"),
        }
        assert!(quotas.check(0, other).is_ok(), "quotas are per caller");
        clock.advance(Duration::from_secs(30));
        assert!(quotas.check(0, peer).is_ok());
    }
}
