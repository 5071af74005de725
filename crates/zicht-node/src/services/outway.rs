//! The `Outway` service: a node's own analysts ask it for a federated answer. It admits the
//! request under the node's policy, logs what it forwards, asks the targeted nodes in
//! parallel under one deadline (its own data through the same disclosure control a peer
//! gets), merges what came back honestly, protects the merged table again, logs the answer,
//! and states for every targeted node whether it answered and, if not, why.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::metadata::BinaryMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use zicht_model::{
    CodeList, Dimension, NaiveDate, Network, NodeName, PeerIdentity, Region, Table, Template,
};
use zicht_proto::v1 as pb;
use zicht_proto::v1::inway_client::InwayClient;
use zicht_store::Store;

use crate::audit::{Logged, Operation, Subject};
use crate::convert::RequestText;
use crate::error::{respond, Error};
use crate::identity::identity;
use crate::query::admission::Checked;
use crate::query::execute::{log_entry, log_outcome};
use crate::query::merge::merge;
use crate::services::state::NodeState;
use crate::transport::peers::Peers;

/// What one targeted node did with the query.
#[derive(Debug, Clone)]
pub enum PeerOutcome {
    /// It released a protected table that answers the request.
    Answered(Table),
    /// This node answered for its own data; the note says how (perturbed like a peer's
    /// answer, or exact under an owner grant), which explains why it may differ from the
    /// region's local `zicht query`.
    AnsweredOwn(Table, String),
    /// It refused; the reason names the rule or the missing grant.
    Refused(String),
    /// It could not be reached (or its answer could not be used).
    Unreachable(String),
    /// It did not answer before the deadline; the call was cancelled.
    TimedOut,
}

impl PeerOutcome {
    fn status(&self, node: NodeName) -> pb::PeerStatus {
        use pb::peer_status::Status as S;
        let (status, reason) = match self {
            PeerOutcome::Answered(_) => (S::Answered, String::new()),
            PeerOutcome::AnsweredOwn(_, note) => (S::Answered, note.clone()),
            PeerOutcome::Refused(reason) => (S::Refused, reason.clone()),
            PeerOutcome::Unreachable(reason) => (S::Unreachable, reason.clone()),
            PeerOutcome::TimedOut => (S::TimedOut, "no answer before the deadline".to_owned()),
        };
        pb::PeerStatus {
            node: node.code().to_owned(),
            status: status as i32,
            reason,
        }
    }
}

/// How this node's answer for its own data was published, for its coverage line: a region's
/// data team sees exact counts on its own database (`zicht query --database`), an analyst
/// asking through the node sees what its grant allows.
fn own_note(template: Template, table: &Table) -> String {
    if template == Template::ConsentedRecords {
        String::new()
    } else if table.is_perturbed() {
        "this node's own data, perturbed as for any peer: your grant here is not an owner grant \
         (owner = true in the region's policy gives its own analysts exact counts, as \
         `zicht query --config` on the node does)"
            .to_owned()
    } else {
        "this node's own data, exact".to_owned()
    }
}

/// Sorts an error into the coverage statuses by its gRPC code: a peer's status as it came, or
/// this node's own error for its own part (sorted by the same codes, never through a status).
/// The message is shortened: it names a rule or grant, but for a peer it is the peer's text.
fn classify(code: Code, message: &str) -> PeerOutcome {
    let reason: String = message.chars().take(300).collect();
    match code {
        Code::DeadlineExceeded | Code::Cancelled => PeerOutcome::TimedOut,
        Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::ResourceExhausted
        | Code::InvalidArgument
        | Code::Unimplemented
        | Code::Unauthenticated
        | Code::OutOfRange => PeerOutcome::Refused(reason),
        Code::Unavailable => PeerOutcome::Unreachable(match reason.as_str() {
            "" => "unavailable".to_owned(),
            _ => format!("unavailable: {reason}"),
        }),
        code => PeerOutcome::Unreachable(format!("{code:?}: {reason}")),
    }
}

impl From<&Status> for PeerOutcome {
    fn from(status: &Status) -> PeerOutcome {
        classify(status.code(), status.message())
    }
}

impl From<Error> for PeerOutcome {
    fn from(error: Error) -> PeerOutcome {
        error.log_cause();
        classify(error.code(), &error.to_string())
    }
}

/// What a peer is asked: the request as it goes on the wire, and the template and grouping
/// its answer must have.
#[derive(Debug, Clone)]
pub struct PeerQuery {
    /// The wire request.
    pub request: pb::QueryRequest,
    /// The template asked.
    pub template: Template,
    /// The grouping asked.
    pub dimensions: Vec<Dimension>,
}

/// Asks one peer under `deadline` (with the person's `delegation`, when they gave one),
/// retrying once when the call failed
/// before the peer could act on it (UNAVAILABLE: refused or reset connection). A query is
/// idempotent: a repeat releases the same populations. Past the deadline the call is dropped,
/// which cancels it. An answer that does not fit the request counts as unreachable, never as
/// zero.
pub async fn ask_peer(
    channel: Channel,
    query: &PeerQuery,
    deadline: Instant,
    traceparent: &str,
    delegation: Option<&BinaryMetadataValue>,
) -> PeerOutcome {
    let mut client = InwayClient::new(channel);
    let mut last = None;
    for attempt in 0..2 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return PeerOutcome::TimedOut;
        }
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(25).min(remaining / 4)).await;
        }
        let mut request = Request::new(query.request.clone());
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        // W3C trace context: the peer logs this node's operation as its foreign operation.
        if let Ok(value) = traceparent.parse() {
            request.metadata_mut().insert("traceparent", value);
        }
        // The person, in their own signed words: the peer checks it, logs them and keeps
        // their quota apart from their colleagues'.
        if let Some(delegation) = delegation {
            request
                .metadata_mut()
                .insert_bin(crate::identity::DELEGATION, delegation.clone());
        }
        match tokio::time::timeout_at(deadline, client.query(request)).await {
            Err(_) => return PeerOutcome::TimedOut,
            Ok(Ok(response)) => {
                return match zicht_proto::domain::table(
                    response.into_inner(),
                    query.template,
                    &query.dimensions,
                ) {
                    Ok(table) => PeerOutcome::Answered(table),
                    Err(mismatch) => PeerOutcome::Unreachable(mismatch.to_string()),
                }
            }
            Ok(Err(status)) if status.code() == Code::Unavailable => last = Some(status),
            Ok(Err(status)) => return PeerOutcome::from(&status),
        }
    }
    last.map_or(PeerOutcome::TimedOut, |status| PeerOutcome::from(&status))
}

/// The merged table of the targets' answers (none when no target answered), the coverage line
/// of each target, and how many answered.
fn merged(
    checked: &Checked,
    outcomes: &[(NodeName, PeerOutcome)],
) -> (Option<Table>, Vec<pb::PeerStatus>, usize) {
    let coverage = outcomes
        .iter()
        .map(|(node, outcome)| outcome.status(*node))
        .collect();
    let named: Vec<(&str, &Table)> = outcomes
        .iter()
        .filter_map(|(node, outcome)| match outcome {
            PeerOutcome::Answered(table) | PeerOutcome::AnsweredOwn(table, _) => {
                Some((node.code(), table))
            }
            _ => None,
        })
        .collect();
    let parts: Vec<&Table> = named.iter().map(|(_, table)| *table).collect();
    let answered = parts.len();
    let merged = (!parts.is_empty()).then(|| {
        let sum = merge(checked.query.template, &checked.query.group_by, &parts);
        match checked.query.by_member {
            true => crate::query::merge::per_member(sum, &named),
            false => sum,
        }
    });
    (merged, coverage, answered)
}

/// One federated call as the fan-out needs it: the logged forward operation the targets'
/// operations continue, the person and their delegation (if they gave one), the request as
/// logged and as admitted, and the deadline.
struct FanOut<'a> {
    forward: &'a Operation,
    identity: &'a PeerIdentity,
    delegation: Option<BinaryMetadataValue>,
    text: &'a RequestText,
    checked: &'a Checked,
    deadline: Instant,
}

/// What an Outway admitted: the checked query, the caller's deadline, the targets and the
/// person's delegation to forward.
struct Admitted {
    checked: Checked,
    deadline: Duration,
    targets: Vec<NodeName>,
    delegation: Option<BinaryMetadataValue>,
}

/// The Outway's one RPC, as logs and metrics name it.
const RPC: &str = "zicht.v1.Outway/FederatedQuery";

/// The `Outway` service of one node.
pub struct Outway {
    state: Arc<NodeState>,
    node: NodeName,
    peers: Peers,
}

impl Outway {
    /// The outway of `node`, answering for its own data on its shared `state`.
    pub fn new(state: Arc<NodeState>, node: NodeName, peers: Peers) -> Outway {
        Outway { state, node, peers }
    }

    /// The regional nodes a request targets, in federation order.
    fn targets(
        &self,
        request: &pb::FederatedQueryRequest,
        on: NaiveDate,
    ) -> Result<Vec<NodeName>, Error> {
        let invalid = |text: String| Error::Invalid(text);
        let network =
            match request.network.as_str() {
                "" => None,
                code => Some(Network::from_code(code).ok_or_else(|| {
                    invalid("network is not one of jenn, ben-nh, overijssel".into())
                })?),
            };
        let mut peers = Vec::with_capacity(request.peers.len());
        for code in &request.peers {
            let region = Region::from_code(code)
                .ok_or_else(|| invalid("a peer is not a regional node of the federation".into()))?;
            if !peers.contains(&region) {
                peers.push(region);
            }
        }
        if network.is_some() && !peers.is_empty() {
            return Err(invalid("give peers or a network, not both".to_owned()));
        }
        let members = |network: Network| network.members_on(on).collect::<Vec<Region>>();
        let mut regions: Vec<Region> = match self.node {
            // An aggregator asks its own network's members, or the regions named: a
            // question from the placing side (whose youths are in our facilities) goes to
            // every origin region, each answering under its own grant to the network.
            NodeName::Network(own) => {
                if network.is_some_and(|n| n != own) {
                    return Err(invalid(format!("this node aggregates {own} only")));
                }
                if peers.is_empty() {
                    members(own)
                } else {
                    peers
                }
            }
            NodeName::Region(own) => match network {
                Some(network) => members(network),
                // All: every regional node of the manifest, this one included.
                None if peers.is_empty() => std::iter::once(own)
                    .chain(self.peers.nodes().filter_map(|node| match node {
                        NodeName::Region(region) => Some(region),
                        NodeName::Network(_) => None,
                    }))
                    .collect(),
                None => peers,
            },
        };
        regions.sort();
        Ok(regions.into_iter().map(NodeName::Region).collect())
    }

    /// Admits an analyst's request: the role, the node's limits, policy and quota, the
    /// targets. A refusal is logged like the Inway's (fail-closed) and spends the caller's
    /// refusal budget.
    async fn admit(
        &self,
        identity: &PeerIdentity,
        request: &Request<pb::FederatedQueryRequest>,
        query: &pb::QueryRequest,
        text: &RequestText,
    ) -> Result<(Admitted, Store), Error> {
        let Some(store) = self.state.store.clone() else {
            return Err(Error::NoDatabase(" for its release log; nothing was asked"));
        };
        let admitted = self.check(identity, request, query, text);
        if let Err(refusal) = &admitted {
            let operation = Operation::start(RPC, &self.state.resource);
            log_outcome(
                &store,
                &operation,
                &identity.peer_id.to_string(),
                &identity.role.uri(),
                text,
                Err(refusal.rule()),
            )
            .await
            .map_err(Error::unlogged("release log", "asked"))?;
            if matches!(
                refusal,
                Error::Invalid(_) | Error::Denied(_) | Error::Role(_) | Error::Delegation(_)
            ) {
                self.state.refused(identity);
            }
        }
        Ok((admitted?, store))
    }

    /// The checks of [`Outway::admit`], before anything is written.
    fn check(
        &self,
        identity: &PeerIdentity,
        request: &Request<pb::FederatedQueryRequest>,
        query: &pb::QueryRequest,
        text: &RequestText,
    ) -> Result<Admitted, Error> {
        // The outway serves people of this node; nodes ask each other through Inway.Query.
        if !identity.role.is_person() {
            return Err(Error::Role(format!(
                "the outway serves analysts, teams and coordinators; {} asks peers through Inway.Query",
                identity.role.uri()
            )));
        }
        let size = prost::Message::encoded_len(request.get_ref());
        let (checked, deadline) =
            self.state
                .admit(identity, None, query, size, request.metadata())?;
        let on = checked.query.scope.reference_date();
        let targets = self.targets(request.get_ref(), on)?;
        // The person's delegation, if they gave one, must be theirs, for this node and this
        // question: peers would refuse it otherwise.
        let delegation =
            self.state
                .callers
                .own_delegation(identity, self.node, request.metadata(), text)?;
        Ok(Admitted {
            checked,
            deadline,
            targets,
            delegation,
        })
    }

    async fn answer(
        &self,
        request: Request<pb::FederatedQueryRequest>,
    ) -> Result<pb::FederatedResult, Error> {
        let identity = identity(&request)?;
        self.state.guard(RPC, &identity).await?;
        let query = request.get_ref().query.clone().unwrap_or_default();
        let text = RequestText::of(&query);
        let (admitted, store) = self.admit(&identity, &request, &query, &text).await?;
        let Admitted {
            checked,
            deadline,
            targets,
            delegation,
        } = admitted;
        // Leave a tenth of the caller's deadline (at least 20 ms) to merge and log.
        let budget = deadline.saturating_sub((deadline / 10).max(Duration::from_millis(20)));
        let fan_out_deadline = Instant::now() + budget;

        let requester = identity.peer_id.to_string();
        let role = identity.role.uri();
        let operation = Operation::start(RPC, &self.state.resource);
        let names: Vec<&str> = targets.iter().map(|n| n.code()).collect();
        // What leaves: the query to each target. Logged first; no log, nothing asked.
        let forwarded = format!("forwarded to {}", names.join(","));
        let forward = operation.child("zicht.v1.Outway/Forward");
        let logged = Logged::new(
            &forward,
            &requester,
            &role,
            Subject::Request(&text),
            &forwarded,
        );
        log_entry(&store, &logged)
            .await
            .map_err(Error::unlogged("release log", "asked"))?;

        let asked = PeerQuery {
            request: query,
            template: checked.query.template,
            dimensions: checked.query.group_by.clone(),
        };
        let call = FanOut {
            forward: &forward,
            identity: &identity,
            delegation,
            text: &text,
            checked: &checked,
            deadline: fan_out_deadline,
        };
        let outcomes = self.fan_out(&call, &asked, &targets).await;
        let (merged, coverage, answered) = merged(&checked, &outcomes);
        let outcome = format!("released merged: {answered} of {} answered", targets.len());
        let logged = Logged {
            result: merged.as_ref(),
            ..Logged::new(
                &operation,
                &requester,
                &role,
                Subject::Request(&text),
                &outcome,
            )
        };
        log_entry(&store, &logged)
            .await
            .map_err(Error::unlogged("release log", "released"))?;
        let result = match &merged {
            Some(table) => zicht_proto::domain::result(table),
            None => zicht_proto::domain::unanswered(asked.template, &asked.dimensions),
        };
        Ok(pb::FederatedResult {
            result: Some(result),
            coverage,
            trace_id: operation.trace_id.clone(),
        })
    }

    /// Asks every target at once under `call.forward` (the logged operation whose trace the
    /// peers continue); returns their outcomes in target order.
    async fn fan_out(
        &self,
        call: &FanOut<'_>,
        query: &PeerQuery,
        targets: &[NodeName],
    ) -> Vec<(NodeName, PeerOutcome)> {
        let deadline = call.deadline;
        let mut calls = JoinSet::new();
        for (position, &node) in targets.iter().enumerate() {
            if node == self.node {
                // Its own data: the same policy, disclosure control and log as a peer's query
                // (exact for the region's own analysts under an owner grant).
                let state = self.state.clone();
                let identity = call.identity.clone();
                let local = call.forward.child("zicht.v1.Inway/Query");
                let checked = call.checked.clone();
                let text = call.text.clone();
                let template = query.template;
                calls.spawn(async move {
                    let released = tokio::time::timeout_at(
                        deadline,
                        state.run_logged(&local, &identity, &text, Ok(checked)),
                    )
                    .await;
                    let outcome = match released {
                        Err(_) => PeerOutcome::TimedOut,
                        Ok(Ok(released)) => {
                            let note = own_note(template, &released.table);
                            PeerOutcome::AnsweredOwn(released.table, note)
                        }
                        Ok(Err(error)) => PeerOutcome::from(error),
                    };
                    (position, outcome)
                });
            } else if let Some(channel) = self.peers.channel(node) {
                let traceparent = call.forward.traceparent();
                let delegation = call.delegation.clone();
                let query = query.clone();
                calls.spawn(async move {
                    let delegation = delegation.as_ref();
                    let outcome =
                        match ask_peer(channel, &query, deadline, &traceparent, delegation).await {
                            // Its records are the records of the node asked, whatever it says.
                            PeerOutcome::Answered(mut table) => {
                                for record in &mut table.records {
                                    record.source = node.code().to_owned();
                                }
                                PeerOutcome::Answered(table)
                            }
                            other => other,
                        };
                    (position, outcome)
                });
            } else {
                calls.spawn(async move {
                    let missing = "not in this node's federation manifest".to_owned();
                    (position, PeerOutcome::Unreachable(missing))
                });
            }
        }
        let mut outcomes: Vec<Option<PeerOutcome>> = vec![None; targets.len()];
        while let Some(joined) = calls.join_next().await {
            if let Ok((position, outcome)) = joined {
                outcomes[position] = Some(outcome);
            }
        }
        targets
            .iter()
            .zip(outcomes)
            .map(|(&node, outcome)| {
                let lost = || PeerOutcome::Unreachable("the call ended without an outcome".into());
                (node, outcome.unwrap_or_else(lost))
            })
            .collect()
    }
}

/// The Outway's grants RPC, as logs and metrics name it.
const GRANTS_RPC: &str = "zicht.v1.Outway/Grants";

/// The processing activity of telling a caller its grants.
pub const GRANTS_ACTIVITY: &str = "urn:zicht:activity:grants";

impl Outway {
    /// The grants of this node's policy that apply to the caller, logged before they leave.
    async fn caller_grants(
        &self,
        request: &Request<pb::GrantsRequest>,
    ) -> Result<pb::CallerGrants, Error> {
        let identity = identity(request)?;
        self.state.guard(GRANTS_RPC, &identity).await?;
        self.state.callers.listed(&identity)?;
        let Some(store) = self.state.store.as_ref() else {
            return Err(Error::NoDatabase(" for its release log; nothing was told"));
        };
        let grants: Vec<pb::CallerGrant> = self
            .state
            .policy
            .grants
            .iter()
            .filter(|grant| grant.who.matches(&identity))
            .map(|grant| pb::CallerGrant {
                templates: grant
                    .templates
                    .iter()
                    .map(|t| t.code().to_owned())
                    .collect(),
                purposes: grant.purposes.iter().map(|p| p.code().to_owned()).collect(),
                group_by: grant.group_by.iter().map(|d| d.code().to_owned()).collect(),
                fields: grant.fields.iter().map(|f| (*f).to_owned()).collect(),
                owner: grant.owner,
                quota_per_minute: grant.quota_per_minute,
            })
            .collect();
        let outcome = format!("told {} grant(s)", grants.len());
        self.state
            .log_call(store, GRANTS_RPC, &identity, GRANTS_ACTIVITY, &outcome)
            .await
            .map_err(Error::unlogged("release log", "told"))?;
        Ok(pb::CallerGrants {
            role: identity.role.uri(),
            grants,
        })
    }
}

#[tonic::async_trait]
impl pb::outway_server::Outway for Outway {
    async fn grants(
        &self,
        request: Request<pb::GrantsRequest>,
    ) -> Result<Response<pb::CallerGrants>, Status> {
        let started = std::time::Instant::now();
        let answer = self.caller_grants(&request).await.map_err(respond);
        let outcome = match &answer {
            Ok(_) => "told".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        self.state
            .metrics
            .request(GRANTS_RPC, &outcome, started.elapsed());
        answer.map(Response::new)
    }

    async fn federated_query(
        &self,
        request: Request<pb::FederatedQueryRequest>,
    ) -> Result<Response<pb::FederatedResult>, Status> {
        let started = std::time::Instant::now();
        let answer = self.answer(request).await.map_err(respond);
        let outcome = match &answer {
            Ok(_) => "released".to_owned(),
            Err(status) => format!("{:?}", status.code()),
        };
        self.state.metrics.request(RPC, &outcome, started.elapsed());
        answer.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The own part's error reads in the coverage as the same error does from a peer.
    #[test]
    fn an_own_error_is_sorted_as_a_peers_status_of_it() {
        let errors: Vec<fn() -> Error> = vec![
            || Error::NoIdentity,
            || Error::Invalid("group_by has 9 dimensions".to_owned()),
            || Error::Role("only nodes hand in checkpoints".to_owned()),
            || Error::Quota {
                per_minute: 2,
                retry_after_ms: 30_000,
            },
            || Error::NoCapacityData,
            || Error::NoSubjectKey,
            || Error::Importing,
            || Error::NoDatabase(""),
        ];
        for error in errors {
            let own = PeerOutcome::from(error());
            let peer = PeerOutcome::from(&Status::from(error()));
            assert_eq!(format!("{own:?}"), format!("{peer:?}"));
        }
        assert!(matches!(
            PeerOutcome::from(Error::NoCapacityData),
            PeerOutcome::Refused(_)
        ));
        assert!(matches!(
            PeerOutcome::from(Error::Importing),
            PeerOutcome::Unreachable(reason) if reason.starts_with("unavailable: ")
        ));
    }
}
