//! Admission: what a node checks about a request before it touches data. Limits and shape
//! (size, deadline, dimensions, filters, cells), then, in the services, the policy, then the
//! caller's quota under the grant that allowed it.

use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use zicht_model::{CodeList, Dimension, PeerId, PeerIdentity, Query, Role};
use zicht_proto::v1 as pb;

use crate::convert::{asked, Asked};
use crate::error::Error;
use crate::policy::Policy;
use crate::settings::Limits;

type KeyedLimiter<K, C> = RateLimiter<
    K,
    HashMapStateStore<K>,
    C,
    governor::middleware::NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Whom a quota or refusal budget belongs to: a certificate's PeerID with the role it carries,
/// so a mis-issued certificate that repeats another's PeerID under another role cannot spend
/// (or mute) the other's budget.
pub type Principal = (PeerId, Role);

/// The principal of a verified identity.
pub(crate) fn principal(identity: &PeerIdentity) -> Principal {
    (identity.peer_id, identity.role.clone())
}

/// Whose quota a request takes from: the calling certificate, and for a node asking on behalf
/// of a person (proven by the person's delegation), that person; so one analyst cannot use up
/// the share of the others of their region.
pub type Caller = (Principal, Option<Principal>);

/// A rate per caller (governor's GCRA), burst up to the per-minute rate.
pub(crate) struct PerPeer<K: std::hash::Hash + Eq + Clone = PeerId, C: Clock = DefaultClock> {
    limiter: KeyedLimiter<K, C>,
    clock: C,
    per_minute: u32,
}

impl<K: std::hash::Hash + Eq + Clone, C: Clock + Clone> PerPeer<K, C> {
    /// `per_minute` requests per caller (at least one).
    pub(crate) fn new(per_minute: u32, clock: C) -> PerPeer<K, C> {
        let per_minute = per_minute.max(1);
        let quota = Quota::per_minute(
            std::num::NonZeroU32::new(per_minute).unwrap_or(std::num::NonZeroU32::MIN),
        );
        PerPeer {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            clock,
            per_minute,
        }
    }

    /// Takes one request from `peer`'s rate; past it, the quota error with when to retry.
    pub(crate) fn check(&self, peer: K) -> Result<(), Error> {
        self.take(&peer).map_err(|not_until| Error::Quota {
            per_minute: self.per_minute,
            retry_after_ms: not_until.wait_time_from(self.clock.now()).as_millis() as u64,
        })
    }

    /// Takes one request from `peer`'s rate; past it, when the next one fits.
    fn take(&self, peer: &K) -> Result<(), governor::NotUntil<C::Instant>> {
        self.limiter.check_key(peer)
    }
}

/// How many times a grant's quota a node's analysts may use together when the node asks on
/// their behalf: each analyst has the grant's quota, and the node's total is bounded too, so
/// a node naming ever new analysts cannot ask without limit.
pub const ANALYSTS_SHARE: u32 = 4;

/// Per-grant, per-caller rate limits, burst up to the per-minute quota.
pub struct Quotas<C: Clock = DefaultClock> {
    /// Per grant: each caller's quota, and each node's total for calls on behalf of analysts.
    limiters: Vec<(PerPeer<Caller, C>, PerPeer<Principal, C>)>,
}

impl<C: Clock + Clone> Quotas<C> {
    /// One limiter per grant of `policy`.
    pub fn new(policy: &Policy, clock: C) -> Quotas<C> {
        let limiters = policy
            .grants
            .iter()
            .map(|grant| {
                let total = grant.quota_per_minute.saturating_mul(ANALYSTS_SHARE);
                (
                    PerPeer::new(grant.quota_per_minute, clock.clone()),
                    PerPeer::new(total, clock.clone()),
                )
            })
            .collect();
        Quotas { limiters }
    }

    /// Takes one request from `caller`'s quota under grant `grant` (and, for a node asking on
    /// behalf of an analyst, from the node's total).
    pub fn check(&self, grant: usize, caller: Caller) -> Result<(), Error> {
        let Some((each, total)) = self.limiters.get(grant) else {
            return Ok(());
        };
        let node = caller.0.clone();
        let on_behalf = caller.1.is_some();
        each.check(caller)?;
        if on_behalf {
            total.check(node)
        } else {
            Ok(())
        }
    }
}

/// Upper bound of distinct values of a dimension (free-text ones are estimated).
fn cardinality(dimension: Dimension) -> u64 {
    match dimension {
        Dimension::OriginRegion | Dimension::PlacementRegion | Dimension::MemberRegion => 16,
        Dimension::CareType => zicht_model::CareType::ALL.len() as u64,
        Dimension::StayGroup => 4,
        Dimension::LandsdeelInside => 2,
        Dimension::AgeBand => 6,
        Dimension::LegalBasis => zicht_model::LegalBasis::ALL.len() as u64,
        Dimension::Provider => 100,
        Dimension::Setting => 3,
        Dimension::Facility => 1000,
        Dimension::Financing => 10,
        Dimension::LocationMunicipality => 100,
        Dimension::FlowKind => 3,
        Dimension::OutflowDestination => zicht_model::OutflowDestination::ALL.len() as u64,
        Dimension::OutflowProfile => 5,
        Dimension::Toekomstplan | Dimension::Separatie => 2,
        Dimension::MeasureKind => zicht_model::MeasureKind::ALL.len() as u64,
        Dimension::After18Funding => zicht_model::After18Funding::ALL.len() as u64,
        Dimension::Big5Domain => 5,
        Dimension::AgeOnPeildatum | Dimension::Turns18 | Dimension::StayLength => 5,
        Dimension::Big5Status => 4,
    }
}

/// A budget of refused requests per caller, in front of the log: a caller that keeps being
/// refused (no grant, malformed requests) is muted for a while. A muted caller's requests get
/// RESOURCE_EXHAUSTED before anything is checked or written; when the mute ends, one log
/// entry says how many were turned away. So the log stays complete without growing by a
/// record per refused request of a flood.
pub struct RefusalGuard<C: Clock = DefaultClock> {
    budget: PerPeer<Principal, C>,
    muted: std::sync::Mutex<std::collections::HashMap<Principal, Muted<C::Instant>>>,
}

/// A muted caller: until when, and how many requests were turned away meanwhile.
#[derive(Debug, Clone, Copy)]
struct Muted<I> {
    until: I,
    turned_away: u64,
}

/// What the guard says about a caller's next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarded {
    /// Go on.
    Admit,
    /// Go on, but first log that this many requests were turned away unlogged.
    AdmitAfter(u64),
    /// Turn it away (RESOURCE_EXHAUSTED, unlogged), with when to retry.
    TurnAway(u64),
}

impl<C: Clock + Clone> RefusalGuard<C> {
    /// A guard allowing `per_minute` refusals per caller (burst up to the same number).
    pub fn new(per_minute: u32, clock: C) -> RefusalGuard<C> {
        RefusalGuard {
            budget: PerPeer::new(per_minute, clock),
            muted: std::sync::Mutex::default(),
        }
    }

    fn muted(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<Principal, Muted<C::Instant>>> {
        self.muted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Before anything else: is `peer` muted?
    pub(crate) fn before(&self, peer: &Principal) -> Guarded {
        let now = self.budget.clock.now();
        let mut muted = self.muted();
        match muted.get_mut(peer) {
            Some(mute) if now < mute.until => {
                mute.turned_away += 1;
                let wait = mute.until.duration_since(now);
                Guarded::TurnAway(wait.as_u64().div_ceil(1_000_000))
            }
            Some(_) => {
                let turned_away = muted.remove(peer).map_or(0, |m| m.turned_away);
                Guarded::AdmitAfter(turned_away)
            }
            None => Guarded::Admit,
        }
    }

    /// After a refusal of `peer`: spends one of its refusals; past its budget it is muted until
    /// the budget refills.
    pub(crate) fn refused(&self, peer: Principal) {
        if let Err(not_until) = self.budget.take(&peer) {
            let until = not_until.earliest_possible();
            self.muted().entry(peer).or_insert(Muted {
                until,
                turned_away: 0,
            });
        }
    }

    /// Refusals per minute a caller may have.
    pub fn per_minute(&self) -> u32 {
        self.budget.per_minute
    }
}

/// An admitted request: the domain query, whether its caller owns the data, and for records
/// what the caller may receive and for whom it asks.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) query: Query,
    /// Whether the grant makes the caller the data's owner (exact counts).
    pub(crate) exact: bool,
    /// The record fields that may leave (`consented_records`): those asked for, or every
    /// field the grant lists when none were; a youth's consent narrows them further.
    pub(crate) fields: Vec<&'static str>,
    /// The person a node asks for, proven by the person's delegation, if any.
    pub(crate) on_behalf_of: Option<PeerId>,
}

/// Checks limits and shape of `request` (whose whole request is `size` bytes) and reads what
/// policy judges it by; never looks at data. Returns that with the caller's deadline.
pub(crate) fn check_query(
    limits: &Limits,
    request: &pb::QueryRequest,
    size: usize,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<(Asked, Duration), Error> {
    if size > limits.max_request_bytes {
        return Err(Error::Invalid(format!(
            "request is {size} bytes; the limit max_request_bytes is {}",
            limits.max_request_bytes
        )));
    }
    let deadline = deadline(limits, metadata)?;
    within_counts(limits, request)?;
    let asked = asked(request)?;
    let cells: u64 = asked.group_by.iter().map(|&d| cardinality(d)).product();
    if cells > limits.max_cells {
        return Err(Error::Invalid(format!(
            "result could have {cells} cells; the limit max_cells is {}",
            limits.max_cells
        )));
    }
    Ok((asked, deadline))
}

/// The caller's deadline: required, and at most `max_deadline`.
fn deadline(limits: &Limits, metadata: &tonic::metadata::MetadataMap) -> Result<Duration, Error> {
    match metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
    {
        None => Err(Error::Invalid(
            "a deadline is required (set a gRPC timeout)".to_owned(),
        )),
        Some(deadline) if deadline > limits.max_deadline => Err(Error::Invalid(format!(
            "deadline is longer than the limit max_deadline of {} ms",
            limits.max_deadline.as_millis()
        ))),
        Some(deadline) => Ok(deadline),
    }
}

/// At most `max_group_by` dimensions and `max_filters` filters of 50 values each.
fn within_counts(limits: &Limits, query: &pb::QueryRequest) -> Result<(), Error> {
    if query.group_by.len() > limits.max_group_by {
        return Err(Error::Invalid(format!(
            "group_by has {} dimensions; the limit max_group_by is {}",
            query.group_by.len(),
            limits.max_group_by
        )));
    }
    if query.filters.len() > limits.max_filters || query.filters.iter().any(|f| f.values.len() > 50)
    {
        return Err(Error::Invalid(format!(
            "too many filters; the limit max_filters is {} (50 values each)",
            limits.max_filters
        )));
    }
    Ok(())
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

    fn node(region: zicht_model::Region) -> Principal {
        (
            zicht_model::NodeName::Region(region).dev_peer_id(),
            Role::Region(region),
        )
    }

    #[test]
    fn a_caller_refused_too_often_is_muted_then_summarised() {
        let clock = governor::clock::FakeRelativeClock::default();
        let guard = RefusalGuard::new(2, clock.clone());
        let drenthe = zicht_model::Region::Drenthe;
        let peer = node(drenthe);
        let other = node(zicht_model::Region::Twente);
        for _ in 0..2 {
            assert_eq!(guard.before(&peer), Guarded::Admit);
            guard.refused(peer.clone());
        }
        assert_eq!(guard.before(&peer), Guarded::Admit);
        guard.refused(peer.clone()); // over budget: muted until a refusal refills (30 s)
        for _ in 0..5 {
            assert!(matches!(guard.before(&peer), Guarded::TurnAway(ms) if ms <= 30_000));
        }
        assert_eq!(guard.before(&other), Guarded::Admit, "per caller");
        // A certificate repeating drenthe's PeerID under a person's role is another caller:
        // its refusals never mute the node.
        let impostor = (
            peer.0,
            Role::Analyst {
                region: drenthe,
                name: "x".to_owned(),
            },
        );
        assert_eq!(guard.before(&impostor), Guarded::Admit);
        clock.advance(Duration::from_secs(30));
        assert_eq!(guard.before(&peer), Guarded::AdmitAfter(5));
        assert_eq!(guard.before(&peer), Guarded::Admit);
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
        let peer = node(zicht_model::Region::Drenthe);
        let other = node(zicht_model::Region::Twente);
        assert!(quotas.check(0, (peer.clone(), None)).is_ok());
        assert!(quotas.check(0, (peer.clone(), None)).is_ok());
        match quotas.check(0, (peer.clone(), None)) {
            Err(Error::Quota {
                per_minute: 2,
                retry_after_ms,
            }) => assert_eq!(retry_after_ms, 30_000),
            other => panic!("{other:?}"),
        }
        assert!(
            quotas.check(0, (other.clone(), None)).is_ok(),
            "quotas are per caller"
        );
        assert!(
            quotas.check(0, (peer.clone(), Some(other.clone()))).is_ok(),
            "and per person a node asks for"
        );
        // A node asking for ever new analysts is bounded by its total (4 x 2 a minute).
        let asked = (0..20u64)
            .filter(|n| {
                let analyst = (
                    zicht_model::PeerId::parse(&format!("{:020}", 98_000_000_000 + n)).unwrap(),
                    Role::Analyst {
                        region: zicht_model::Region::Twente,
                        name: format!("a{n}"),
                    },
                );
                quotas.check(0, (other.clone(), Some(analyst))).is_ok()
            })
            .count();
        assert_eq!(asked, 8);
        clock.advance(Duration::from_secs(30));
        assert!(quotas.check(0, (peer, None)).is_ok());
    }
}
