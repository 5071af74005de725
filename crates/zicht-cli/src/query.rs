//! `zicht query`: run a template on the node's own database, under the same disclosure control
//! a peer gets, and print the protected result. `zicht privacy settings`: what a node enforces.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use zicht_model::{parse_date, CodeList, Dimension, Network, NodeName, Purpose, Region, Template};
use zicht_node::identity::Delegator;
use zicht_node::{execute, log_outcome, Call, Disclosure};
use zicht_proto::v1 as pb;

use crate::exit::usage;
use crate::format::Format;
use crate::output::render;

/// Where a local query runs and what it enforces.
#[derive(Debug, Args)]
pub struct Target {
    /// A node configuration file: its database, its region and its [privacy] settings.
    #[arg(long, conflicts_with_all = ["database", "region"])]
    config: Option<PathBuf>,
    /// Database (SQLite path, sqlite://PATH or postgres://...; never printed), with the
    /// default privacy settings; without --database and --config, ZICHT_DATABASE_URL.
    #[arg(long)]
    database: Option<String>,
    /// The region whose data the database holds (origin_region then lists it and onbekend).
    #[arg(long, value_parser = crate::parse_region)]
    region: Option<Region>,
}

impl Target {
    /// The database URL, read before anything else of a node's config (whose loading creates
    /// the node's keys).
    fn database(&self) -> anyhow::Result<String> {
        let environment = |name: &str| std::env::var(name).ok();
        match (&self.config, &self.database) {
            (Some(path), _) => Ok(zicht_node::config::data_target(path, &environment)?.database),
            (None, Some(database)) => Ok(database.clone()),
            // From the environment only when no option names one: a node config's database
            // honours ZICHT_DATABASE_URL itself, and --client asks no database.
            (None, None) => environment(crate::DATABASE_VARIABLE).ok_or_else(|| {
                usage("give --database (or ZICHT_DATABASE_URL) or --config of a regional node")
            }),
        }
    }

    /// The disclosure rules: a node config's, or the defaults for `--region`.
    fn disclosure(&self) -> anyhow::Result<Disclosure> {
        match &self.config {
            Some(path) => {
                let environment = |name: &str| std::env::var(name).ok();
                let config = zicht_node::config::load(path, &environment)?;
                Ok(config.settings.disclosure)
            }
            None => Ok(Disclosure::default().for_region(self.region)),
        }
    }
}

/// Where a federated query goes: a node asked over mutual TLS as the person of a client
/// profile, and which regions it asks.
#[derive(Debug, Args)]
pub struct Remote {
    /// Ask over the network as the person of this client profile (see deploy/clients/): the
    /// node's Outway asks the targeted regions and merges their protected answers.
    #[arg(long, conflicts_with_all = ["config", "database", "region"])]
    client: Option<PathBuf>,
    /// The node to ask instead of the profile's own, e.g. an aggregator: jenn, ben-nh,
    /// overijssel.
    #[arg(long, requires = "client")]
    node: Option<String>,
    /// Ask this region (repeatable); default: every region (an aggregator: its members).
    #[arg(long = "peer", value_name = "REGION", requires = "client", value_parser = crate::parse_region)]
    peers: Vec<Region>,
    /// Ask the members of this network on the query's last day or peildatum.
    #[arg(long, requires = "client", conflicts_with = "peers")]
    network: Option<String>,
    /// How long the federated query may take, in milliseconds.
    #[arg(long, default_value_t = 10_000, requires = "client")]
    deadline_ms: u64,
    /// Treat a partial answer (some regions did not answer) as an error: exit 4.
    #[arg(long, requires = "client")]
    require_all: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Template: capacity, youth_in_care, flows, length_of_stay, transition18 or
    /// consented_records (over the network, with --client).
    template: String,
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    remote: Remote,
    /// Purpose from the register (doelbinding), e.g. capaciteitsmonitoring.
    #[arg(long)]
    purpose: String,
    /// Period (youth_in_care, flows, length_of_stay): a year (2024), half year (2024-H1),
    /// quarter (2024-Q2) or month (2024-03), or FROM..TO of those or of ISO dates.
    #[arg(long)]
    period: Option<String>,
    /// Reference date YYYY-MM-DD (capacity, transition18).
    #[arg(long)]
    peildatum: Option<String>,
    /// Keep only DIMENSION=VALUE[,VALUE...], or leave out DIMENSION!=VALUE[,VALUE...];
    /// repeatable (all hold). Values fold like imported codes. See docs/cli.md.
    #[arg(long = "filter", value_name = "DIMENSION[!]=VALUES")]
    filters: Vec<String>,
    /// Group by a dimension; repeat for more, in order.
    #[arg(long = "by", value_name = "DIMENSION")]
    group_by: Vec<String>,
    /// consented_records: the fields wanted, comma separated (default: every field your
    /// grant allows); only what the youth's consent lists leaves.
    #[arg(long, value_name = "FIELD,...", value_delimiter = ',')]
    fields: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Show cells that can never hold anyone too (structural zeros, such as instroom by
    /// outflow destination); left out by default.
    #[arg(long)]
    zeros: bool,
}

pub(crate) fn date(text: &str, what: &str) -> anyhow::Result<pb::Date> {
    let date = parse_date(text).map_err(|e| usage(format!("{what}: {e}")))?;
    Ok(zicht_proto::domain::from_date(date))
}

/// The first and last day of a `--period` (see [`zicht_model::parse_period`]).
pub(crate) fn period_days(
    text: &str,
) -> anyhow::Result<(zicht_model::NaiveDate, zicht_model::NaiveDate)> {
    zicht_model::parse_period(text).map_err(|e| usage(format!("--period: {e}")))
}

/// A period as the wire takes it.
pub(crate) fn wire_period(from: zicht_model::NaiveDate, to: zicht_model::NaiveDate) -> pb::Period {
    pb::Period {
        from: Some(zicht_proto::domain::from_date(from)),
        to: Some(zicht_proto::domain::from_date(to)),
    }
}

/// A dimension of `template` named on the command line (folded like codes): the closest of
/// the template's own dimensions is suggested only when one is close, otherwise they are
/// listed.
pub(crate) fn dimension(template: Template, text: &str, option: &str) -> anyhow::Result<Dimension> {
    let allowed: Vec<&'static str> = template.dimensions().iter().map(|d| d.code()).collect();
    if allowed.is_empty() {
        return Err(usage(format!("{option}: {template} has no dimensions")));
    }
    let code = zicht_model::codes::parse_among("dimension", &allowed, text).map_err(|unknown| {
        let known = Dimension::parse(text)
            .ok()
            .filter(|_| unknown.closest.is_none());
        match known {
            Some(other) => usage(format!(
                "{option} {other}: {template} cannot use {other}; it allows {}",
                allowed.join(", ")
            )),
            None => usage(format!(
                "{option} {text}: {template} has no such dimension; {}",
                match unknown.closest {
                    Some(closest) =>
                        format!("did you mean {closest}? (it allows {})", allowed.join(", ")),
                    None => format!("it allows {}", allowed.join(", ")),
                }
            )),
        }
    })?;
    Dimension::from_code(code).ok_or_else(|| usage(format!("{option}: not a dimension")))
}

/// One `--filter`: `DIMENSION=VALUE[,VALUE...]` keeps those values, `DIMENSION!=VALUE[,...]`
/// leaves them out; values are folded like imported codes (`Open Residentieel`). Any other
/// operator or a stray character is an error naming the dimension.
pub(crate) fn filter(template: Template, text: &str) -> anyhow::Result<pb::Filter> {
    let syntax = |name: &str| {
        let name = if name.is_empty() { "DIMENSION" } else { name };
        usage(format!(
            "--filter {name}: write {name}=VALUE[,VALUE...] to keep those values, or {name}!=VALUE[,VALUE...] to leave them out"
        ))
    };
    const OPERATORS: [char; 5] = ['=', '!', '<', '>', '~'];
    let end = text.find(OPERATORS).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    let name = name.trim();
    if name.is_empty() {
        return Err(syntax(name));
    }
    // The dimension is folded like a code (`Placement Region`); anything else is not a name.
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
    {
        return Err(usage(format!(
            "--filter `{name}`: a dimension name has letters, digits and _ only"
        )));
    }
    let dimension = dimension(template, name, "--filter")?;
    let (exclude, values) = match (rest.strip_prefix("!="), rest.strip_prefix('=')) {
        (Some(values), _) => (true, values),
        (None, Some(values)) => (false, values),
        _ => return Err(syntax(dimension.code())),
    };
    if values.contains(OPERATORS) {
        return Err(syntax(dimension.code()));
    }
    let mut checked = Vec::new();
    for value in values.split(',').map(str::trim) {
        if value.is_empty() {
            return Err(usage(format!("--filter {dimension}: an empty value")));
        }
        // Codes and names have letters, digits, spaces and - _ . ' & ( ) /; anything else
        // is a typing slip, never silently folded away.
        // A code of the list as written (`18+`) is never a slip.
        let allowed = |c: char| c.is_alphanumeric() || " -_.'&()/".contains(c);
        let listed = dimension
            .domain()
            .is_some_and(|codes| codes.contains(&value));
        if let Some(stray) = value.chars().find(|c| !listed && !allowed(*c)) {
            return Err(usage(format!(
                "--filter {dimension}: a value has a stray `{stray}`; separate values with commas only"
            )));
        }
        let value = dimension
            .value(value)
            .map_err(|unknown| usage(format!("--filter {dimension}: {unknown}")))?;
        if !checked.contains(&value) {
            checked.push(value);
        }
    }
    Ok(pb::Filter {
        dimension: dimension.code().to_owned(),
        values: checked,
        exclude,
    })
}

/// Runs `zicht query`.
pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let (_, _, request) = request(&args)?;
    match &args.remote.client {
        Some(path) => remote(&args, path, request).await,
        None => local(&args, request).await,
    }
}

/// Asks `node` as the person of `profile` for a federated answer within `deadline`.
pub async fn ask(
    profile: &zicht_node::config::ClientProfile,
    node: NodeName,
    request: pb::FederatedQueryRequest,
    deadline: std::time::Duration,
) -> anyhow::Result<pb::FederatedResult> {
    let peer = profile
        .manifest
        .iter()
        .find(|p| p.node == node)
        .with_context(|| format!("the manifest does not list {node}"))?;
    let channel = zicht_node::channel_to(peer, &profile.tls);
    let mut client = pb::outway_client::OutwayClient::new(channel);
    // The person's own signed word that they ask this, through this node: peers then know
    // whom the node asks for (records consented to them, their quota), and no node can claim
    // to ask for them without it.
    let delegator = Delegator::from_files(&profile.tls.cert, &profile.tls.key)?;
    let query = request.query.clone().unwrap_or_default();
    let mut call = tonic::Request::new(request);
    delegator.attach(node, &query, call.metadata_mut())?;
    call.set_timeout(deadline);
    match client.federated_query(call).await {
        Ok(answer) => Ok(answer.into_inner()),
        Err(status) if status.code() == tonic::Code::Unavailable => bail!(
            "could not reach {node} at {}: {}",
            peer.address,
            status.message()
        ),
        Err(status) => bail!("{node} refused: {}", status.message()),
    }
}

async fn remote(
    args: &QueryArgs,
    path: &std::path::Path,
    query: pb::QueryRequest,
) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    let profile = zicht_node::config::load_client(path, &environment)?;
    let node = match &args.remote.node {
        Some(text) => NodeName::parse(text).map_err(|e| anyhow::anyhow!("--node: {e}"))?,
        None => profile.node,
    };
    let network = match &args.remote.network {
        Some(text) => Network::parse(text)
            .map_err(|e| anyhow::anyhow!("--network: {e}"))?
            .code()
            .to_owned(),
        None => String::new(),
    };
    let request = pb::FederatedQueryRequest {
        query: Some(query),
        peers: args
            .remote
            .peers
            .iter()
            .map(|r| r.code().to_owned())
            .collect(),
        network,
    };
    let deadline = std::time::Duration::from_millis(args.remote.deadline_ms);
    let mut answer = ask(&profile, node, request.clone(), deadline).await?;
    if let (Some(result), Some(query)) = (answer.result.as_mut(), request.query.as_ref()) {
        if !args.zeros {
            omit_structural_zeros(result, query);
        }
    }
    show(args, &answer, node)
}

/// Leaves out the cells of `result` that can never hold anyone (see
/// [`Template::structural_zero`]); they are 0 wherever they are published.
fn omit_structural_zeros(result: &mut pb::ProtectedResult, query: &pb::QueryRequest) {
    let Some(template) = Template::from_code(&result.template) else {
        return;
    };
    let dimensions: Vec<Dimension> = result
        .dimensions
        .iter()
        .filter_map(|d| Dimension::from_code(d))
        .collect();
    let kind = query
        .filters
        .iter()
        .find(|f| f.dimension == Dimension::FlowKind.code() && !f.exclude && f.values.len() == 1)
        .map(|f| f.values[0].as_str());
    let before = result.rows.len();
    result
        .rows
        .retain(|row| !template.structural_zero(&dimensions, &row.key, kind));
    if result.rows.len() < before {
        result.rules_applied.push(format!(
            "{} cell(s) that can never hold anyone left out (instroom has no outflow destination); --zeros shows them",
            before - result.rows.len()
        ));
    }
}

/// Prints a federated answer asked of `node` with its coverage and hint, and ends with the
/// exit code docs/cli.md gives it: 3 when no region answered, 4 when partial under
/// `--require-all`.
fn show(args: &QueryArgs, answer: &pb::FederatedResult, node: NodeName) -> anyhow::Result<()> {
    let targeted = answer.coverage.len();
    let answered = answer
        .coverage
        .iter()
        .filter(|c| c.status == pb::peer_status::Status::Answered as i32)
        .count();
    if answered == 0 {
        // No answer to show: JSON still carries the coverage for tools; people get it on
        // stderr with what to do.
        if args.format == Format::Json {
            print!("{}", crate::output::render_federated(answer, args.format));
        } else {
            for line in crate::output::coverage_lines(answer) {
                eprintln!("{line}");
            }
        }
        let mut message = format!("no region answered ({targeted} asked); nothing to show");
        if let Some(hint) = network_hint(&answer.coverage, node) {
            message.push_str("\nhint: ");
            message.push_str(&hint);
        }
        return Err(crate::exit::with(crate::exit::NONE_ANSWERED, message));
    }
    print!("{}", crate::output::render_federated(answer, args.format));
    let hint = network_hint(&answer.coverage, node).map(|hint| format!("hint: {hint}"));
    match args.format {
        Format::Table => {
            if let Some(hint) = &hint {
                println!("{hint}");
            }
        }
        Format::Csv => {
            let result = answer.result.clone().unwrap_or_default();
            for line in crate::output::footer(&result)
                .into_iter()
                .chain(crate::output::coverage_lines(answer))
                .chain(hint)
            {
                eprintln!("{line}");
            }
        }
        Format::Json => {
            if let Some(hint) = &hint {
                eprintln!("{hint}");
            }
        }
    }
    if args.remote.require_all && answered < targeted {
        return Err(crate::exit::with(
            crate::exit::PARTIAL,
            format!(
                "partial answer: {} of {targeted} regions did not answer (see the coverage) and --require-all was given",
                targeted - answered
            ),
        ));
    }
    Ok(())
}

/// What to do when regions refused for a missing grant (and none for another reason; a
/// region that was down does not change the advice): asked through a region's own node, the
/// question is one for an expertise network's aggregator; asked through an aggregator, it is
/// one its grants do not cover.
fn network_hint(coverage: &[pb::PeerStatus], asked: NodeName) -> Option<String> {
    let refused = pb::peer_status::Status::Refused as i32;
    let mut refusals = coverage.iter().filter(|c| c.status == refused).peekable();
    refusals.peek()?;
    if !refusals.all(|c| c.reason.contains("missing grant")) {
        return None;
    }
    match asked {
        NodeName::Region(_) => Some(
            "the regions grant this question to the expertise networks, not to each other's \
             analysts: ask an aggregator with --node jenn, --node ben-nh or --node overijssel"
                .to_owned(),
        ),
        NodeName::Network(_) => Some(
            "ask with a purpose, template and grouping the network's grants allow (see docs/queries.md)"
                .to_owned(),
        ),
    }
}

/// The request `args` describe, checked against the code lists.
fn request(args: &QueryArgs) -> anyhow::Result<(Template, Vec<Dimension>, pb::QueryRequest)> {
    let template = Template::parse(&args.template).map_err(|e| usage(format!("template: {e}")))?;
    let purpose = Purpose::parse(&args.purpose).map_err(|e| usage(format!("--purpose: {e}")))?;
    // `--by member_region` first: each member's published cells beside their sum, listed by
    // the node asked (not a grouping of the data).
    let member = Dimension::MemberRegion.code();
    let by_member = args.group_by.first().is_some_and(|d| d == member);
    if by_member && args.remote.client.is_none() {
        return Err(usage(
            "--by member_region lists the members of a federated answer (--client); a database answers for its own region",
        ));
    }
    let group_by = args.group_by[usize::from(by_member)..]
        .iter()
        .map(|d| match d == member {
            true => Err(usage("--by member_region comes first, once")),
            false => dimension(template, d, "--by"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(twice) = group_by
        .iter()
        .enumerate()
        .find_map(|(i, d)| group_by[..i].contains(d).then_some(d))
    {
        return Err(usage(format!(
            "--by {twice}: given twice; name each dimension once"
        )));
    }
    let limits = zicht_node::Limits::default();
    if group_by.len() > limits.max_group_by {
        return Err(usage(format!(
            "--by: at most {} dimensions, as a node allows",
            limits.max_group_by
        )));
    }
    let filters = args
        .filters
        .iter()
        .map(|text| filter(template, text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if template == Template::ConsentedRecords {
        return records_request(args, purpose);
    }
    if !args.fields.is_empty() {
        return Err(usage(format!(
            "--fields: {template} takes no fields; fields are for consented_records"
        )));
    }
    let on_a_day = template.takes_peildatum();
    let scope = match (&args.period, &args.peildatum) {
        (Some(_), Some(_)) => return Err(usage("give --period or --peildatum, not both")),
        (Some(_), None) if on_a_day => {
            return Err(usage(format!(
                "{template} is counted on a reference date: give --peildatum YYYY-MM-DD, not --period"
            )))
        }
        (None, Some(_)) if !on_a_day => {
            return Err(usage(format!(
                "{template} is counted over a period: give --period (2024, 2024-H1, 2024-Q2, 2024-03 or FROM..TO), not --peildatum"
            )))
        }
        (Some(text), None) => {
            let (from, to) = period_days(text)?;
            Some(pb::query_request::Scope::Period(wire_period(from, to)))
        }
        (None, Some(text)) => Some(pb::query_request::Scope::Peildatum(date(
            text,
            "--peildatum",
        )?)),
        (None, None) if on_a_day => {
            return Err(usage(format!("{template} needs --peildatum YYYY-MM-DD")))
        }
        (None, None) => {
            return Err(usage(format!(
                "{template} needs --period (2024, 2024-H1, 2024-Q2, 2024-03 or FROM..TO)"
            )))
        }
    };
    let request = pb::QueryRequest {
        template: template.code().to_owned(),
        template_version: template.version(),
        purpose: purpose.code().to_owned(),
        scope,
        filters,
        group_by: by_member
            .then_some(member)
            .into_iter()
            .chain(group_by.iter().map(|d| d.code()))
            .map(str::to_owned)
            .collect(),
        fields: Vec::new(),
    };
    Ok((template, group_by, request))
}

/// The request for consented records: no scope, no grouping, the fields asked for.
fn records_request(
    args: &QueryArgs,
    purpose: Purpose,
) -> anyhow::Result<(Template, Vec<Dimension>, pb::QueryRequest)> {
    let template = Template::ConsentedRecords;
    if !args.group_by.is_empty() || !args.filters.is_empty() {
        return Err(usage("consented_records takes no --by or --filter: it gives every record consented to you for the purpose"));
    }
    if args.period.is_some() || args.peildatum.is_some() {
        return Err(usage("consented_records takes no --period or --peildatum: consents are checked as they hold now"));
    }
    let known = zicht_model::Consent::field_list();
    let mut fields = Vec::with_capacity(args.fields.len());
    for field in &args.fields {
        let field = field.trim();
        if !known.contains(&field) {
            return Err(usage(format!(
                "--fields: `{field}` is not a field of placements or transition18; the fields are {}",
                known.join(", ")
            )));
        }
        fields.push(field.to_owned());
    }
    let request = pb::QueryRequest {
        template: template.code().to_owned(),
        template_version: template.version(),
        purpose: purpose.code().to_owned(),
        fields,
        ..Default::default()
    };
    Ok((template, Vec::new(), request))
}

async fn local(args: &QueryArgs, request: pb::QueryRequest) -> anyhow::Result<()> {
    let store = crate::database::existing(&args.target.database()?).await?;
    let disclosure = args.target.disclosure()?;
    const REQUESTER: &str = "local";
    let outcome = match zicht_node::convert::query(&request) {
        Ok(query) => {
            let call = Call {
                store: &store,
                disclosure: &disclosure,
                query: &query,
                // The region's own database on its own host: its data team owns it.
                exact: true,
                requester: REQUESTER,
                person: None,
                today: zicht_node::today(),
            };
            execute(&call).await
        }
        Err(error) => Err(error),
    };
    // The same log as a peer's query: the printed result may be passed on.
    log_outcome(
        &store,
        &zicht_node::audit::Operation::start("zicht query", REQUESTER),
        REQUESTER,
        REQUESTER,
        &zicht_node::convert::RequestText::of(&request),
        outcome.as_ref().map_err(|e| e.rule()),
    )
    .await
    .context("write the release log; nothing is shown")?;
    store.close().await;
    match outcome {
        Ok(released) => {
            let mut result = zicht_proto::domain::result(&released.table);
            if !args.zeros {
                omit_structural_zeros(&mut result, &request);
            }
            print!("{}", render(&result, args.format));
            if args.format == Format::Csv {
                // CSV stays machine-readable; the footer goes to the terminal.
                for line in crate::output::footer(&result) {
                    eprintln!("{line}");
                }
            }
            Ok(())
        }
        Err(zicht_node::Error::Store { action, source }) => {
            Err(anyhow::Error::new(source).context(action))
        }
        Err(zicht_node::Error::NoCapacityData) => bail!(
            "this database holds no capacity data: import a capacity file first \
             (zicht import --database DATABASE --table capacity FILE)"
        ),
        Err(zicht_node::Error::Disclosure(refusal)) => bail!("refused: {refusal}"),
        Err(error) => bail!("refused: {error}"),
    }
}

/// Runs `zicht privacy settings`.
pub fn settings(target: &Target) -> anyhow::Result<()> {
    let disclosure = target.disclosure()?;
    print!(
        "{}",
        settings_text(&zicht_node::settings_message(&disclosure))
    );
    Ok(())
}

/// The settings a node enforces next to the network floor, as `zicht privacy settings` prints
/// them (locally or as a node's `GetDisclosureSettings` answered).
pub fn settings_text(settings: &pb::DisclosureSettings) -> String {
    let floor = settings.floor.as_deref().cloned().unwrap_or_default();
    let rows = [
        (
            "max_deviation (D)",
            settings.max_deviation.to_string(),
            floor.max_deviation.to_string(),
        ),
        (
            "variance (V)",
            settings.variance.to_string(),
            floor.variance.to_string(),
        ),
        ("js", settings.js.to_string(), floor.js.to_string()),
        (
            "population_floor",
            settings.population_floor.to_string(),
            floor.population_floor.to_string(),
        ),
        (
            "period_granularity",
            settings.period_granularity.clone(),
            floor.period_granularity.clone(),
        ),
        (
            "period_ranges",
            settings.period_ranges.to_string(),
            floor.period_ranges.to_string(),
        ),
        (
            "max_dimensions",
            settings.max_dimensions.to_string(),
            format!("<= {}", floor.max_dimensions),
        ),
        (
            "max_populations_per_day",
            settings.max_populations_per_day.to_string(),
            format!("<= {}", floor.max_populations_per_day),
        ),
        (
            "max_populations_per_year",
            settings.max_populations_per_year.to_string(),
            format!("<= {}", floor.max_populations_per_year),
        ),
        (
            "magnitude_min_youths",
            settings.magnitude_min_youths.to_string(),
            floor.magnitude_min_youths.to_string(),
        ),
        (
            "dominance_max_share_percent",
            settings.dominance_max_share_percent.to_string(),
            format!("<= {}", floor.dominance_max_share_percent),
        ),
    ];
    let mut text = format!("{:<30} {:>10} {:>10}\n", "setting", "enforced", "floor");
    for (name, value, floor) in rows {
        text.push_str(&format!("{name:<30} {value:>10} {floor:>10}\n"));
    }
    text.push_str(&format!(
        "person counts: cell key method, each published count within ±{} of the true count and \
         none in 1..{}; the same youths always give the same count; tables are not additive\n",
        settings.max_deviation, settings.js
    ));
    text.push_str(
        "exact: capacity (facility data), and a region's own analysts under an owner grant\n",
    );
    for problem in &settings.ptable_problems {
        text.push_str(&format!("perturbation table: {problem}\n"));
    }
    text
}

/// `zicht privacy ptable`: a perturbation table from its parameters, with its checks.
#[derive(Debug, Args)]
pub struct PtableArgs {
    /// D: the largest deviation of a published count.
    #[arg(long, default_value_t = zicht_privacy::Settings::default().max_deviation)]
    max_deviation: u32,
    /// V: the variance of the deviation.
    #[arg(long, default_value_t = zicht_privacy::Settings::default().variance)]
    variance: f64,
    /// js: no published count in 1..js.
    #[arg(long, default_value_t = zicht_privacy::Settings::default().js)]
    js: u32,
    /// Write the table as CSV (i,j,v,p,p_int_lb,p_int_ub) to this file instead of printing it.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `zicht privacy ptable`: prints (or writes) the table and, per row, its checks: the
/// probabilities sum to 1, mean deviation, variance, and the published values it can give.
pub fn ptable(args: &PtableArgs) -> anyhow::Result<()> {
    let params = zicht_privacy::PtableParams {
        max_deviation: args.max_deviation,
        variance: args.variance,
        js: args.js,
    };
    let table = zicht_privacy::PerturbationTable::new(params)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, table.to_csv())
                .with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        None => print!("{}", table.to_csv()),
    }
    println!("\nchecks ({params}):");
    println!(
        "{:>4} {:>8} {:>10} {:>10}  published",
        "i", "sum p", "mean", "variance"
    );
    for row in table.rows() {
        let sum: f64 = row.deviations.iter().map(|d| d.probability()).sum();
        let published: Vec<String> = row
            .deviations
            .iter()
            .map(|d| (i64::from(row.count) + i64::from(d.value)).to_string())
            .collect();
        let last = if row.count == table.rows().len() as u32 - 1 {
            " (and every larger count, shifted)"
        } else {
            ""
        };
        println!(
            "{:>4} {:>8.6} {:>10.6} {:>10.6}  {}{last}",
            row.count,
            sum,
            row.mean(),
            row.variance(),
            published.join(" ")
        );
    }
    if table.problems().is_empty() {
        println!(
            "every row: probabilities sum to 1, mean 0, variance at most {} (blocked rows may \
             exceed it, as in ptable), no published count in 1..{}; a node accepts this table",
            args.variance, args.js
        );
    } else {
        for problem in table.problems() {
            println!("problem: {problem}");
        }
        println!("a node refuses this table: choose a larger max_deviation or a smaller js");
    }
    Ok(())
}
