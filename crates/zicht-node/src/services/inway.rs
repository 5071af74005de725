//! The peer-facing `Inway` service: the refusal guard, limits, then policy (who, template,
//! purpose, granularity), then quota, then the template on the node's own data, logged
//! before it leaves; and the node's disclosure settings.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zicht_model::Role;
use zicht_proto::v1 as pb;
use zicht_store::Store;

use crate::audit::Operation;
use crate::convert::RequestText;
use crate::disclosure::Disclosure;
use crate::error::{respond, Error};
use crate::identity::identity;
use crate::policy::Policy;
use crate::services::state::NodeState;
use crate::settings::Limits;

/// The `Inway` service of one node.
pub struct Inway {
    state: Arc<NodeState>,
}

impl Inway {
    /// The service for `policy`, `limits` and (regional nodes) `store`, with the default
    /// disclosure settings, for benchmarks that compare transports; [`crate::start`] builds
    /// every service of a node on one shared state.
    pub fn new(policy: Policy, limits: Limits, store: Option<Store>) -> Inway {
        Inway::on(Arc::new(NodeState::new(policy, limits, store)))
    }

    /// The service over a node's shared state.
    pub(crate) fn on(state: Arc<NodeState>) -> Inway {
        Inway { state }
    }
}

#[tonic::async_trait]
impl pb::inway_server::Inway for Inway {
    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::ProtectedResult>, Status> {
        let identity = identity(&request).map_err(respond)?;
        self.state
            .guard("zicht.v1.Inway/Query", &identity)
            .await
            .map_err(respond)?;
        let size = prost::Message::encoded_len(request.get_ref());
        // What the log keeps of the request, and the hash a delegation must name.
        let text = RequestText::of(request.get_ref());
        // A node is served only as the manifest's; the person it asks for only as proven.
        let callers = &self.state.callers;
        let person = callers
            .listed(&identity)
            .and_then(|()| callers.person(&identity, request.metadata(), &text));
        let for_person = person
            .as_ref()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.peer_id));
        let admitted = person.and_then(|person| {
            self.state
                .admit(
                    &identity,
                    person.as_ref(),
                    request.get_ref(),
                    size,
                    request.metadata(),
                )
                .map(|(checked, _)| checked)
        });
        if let Err(
            Error::Invalid(_) | Error::Denied(_) | Error::Delegation(_) | Error::Unlisted(..),
        ) = &admitted
        {
            self.state.refused(&identity);
        }
        let traceparent = request
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok());
        let operation = Operation::called(
            "zicht.v1.Inway/Query",
            &self.state.resource,
            traceparent,
            &identity.role.uri(),
        )
        .on_behalf_of(for_person);
        let released = self
            .state
            .run_logged(&operation, &identity, &text, admitted)
            .await
            .map_err(respond)?;
        Ok(Response::new(zicht_proto::domain::result(&released.table)))
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
        self.state.guard(RPC, &identity).await?;
        // A node certificate only as the manifest's; then the federation's nodes and grantees.
        let allowed = self.state.callers.listed(&identity).is_ok()
            && (matches!(identity.role, Role::Region(_) | Role::Network(_))
                || self
                    .state
                    .policy
                    .grants
                    .iter()
                    .any(|g| g.who.matches(&identity)));
        if let Some(store) = &self.state.store {
            let outcome = if allowed {
                "released disclosure settings"
            } else {
                "refused: policy"
            };
            self.state
                .log_call(store, RPC, &identity, DISCLOSURE_SETTINGS_ACTIVITY, outcome)
                .await
                .map_err(Error::unlogged("release log", "released"))?;
        }
        if !allowed {
            self.state.refused(&identity);
            return Err(Error::Role(format!(
                "{identity} has no grant at this node; its disclosure settings are for the \
                 federation's nodes and its grantees"
            )));
        }
        Ok(settings_message(&self.state.disclosure))
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
        period_ranges: settings.period_ranges,
        max_dimensions: settings.max_dimensions,
        max_populations_per_day: settings.max_populations_per_day,
        max_populations_per_year: settings.max_populations_per_year,
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
