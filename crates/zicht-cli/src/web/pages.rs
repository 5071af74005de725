//! The analysts' pages: capacity (and over time), herkomst, flows, 18+ and the query
//! builder. Each asks the federation through the person's Outway exactly as `zicht query
//! --client` does, and shows what came back: the figures, the coverage, the trace id and the
//! rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use zicht_model::{CodeList, Dimension, Network, NodeName, Purpose, Region, Template};
use zicht_proto::v1 as pb;

use super::charts::{self, Bar};
use super::layout::{self, Figure};
use super::Monitor;
use crate::output::{cell_text, published};

/// A page's query string, with repeated keys kept (`by=a&by=b`).
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The parameters of `uri`.
    pub fn of(uri: &Uri) -> Params {
        let pairs = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
            .collect();
        Params { pairs }
    }

    /// The first non-empty value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The query string without `csv` (the page a CSV link belongs to).
    pub fn page_query(&self) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "csv") {
            out.append_pair(k, v);
        }
        out.finish()
    }
}

/// Pages only an analyst opens: anyone else gets a page that says whose they are (the
/// refusal to answer with).
pub(super) fn analysts_only(monitor: &Monitor) -> Option<Response> {
    if monitor.is_analyst() {
        return None;
    }
    Some(layout::error_page(
        monitor,
        StatusCode::FORBIDDEN,
        "For analysts",
        &format!(
            "This page asks the federation for counts, which is for a region's analysts; this \
             monitor acts as {}. {}",
            monitor.person.role.uri(),
            if monitor.is_auditor() {
                "An auditor's pages are Chains, Traces and Access log."
            } else {
                ""
            }
        ),
    ))
}

/// The network of the person's region (the node that answers bovenregionaal questions), or
/// the profile's own node.
fn network_node(monitor: &Monitor) -> NodeName {
    let today = zicht_node::today();
    monitor
        .person
        .role
        .region()
        .and_then(|region| {
            Network::ALL
                .iter()
                .copied()
                .find(|n| n.members_on(today).any(|m| m == region))
        })
        .map_or(monitor.own_node(), NodeName::Network)
}

/// The node a page asks: `node=` if given, else `default`.
fn node_param(params: &Params, default: NodeName) -> Result<NodeName, String> {
    match params.get("node") {
        Some(text) => NodeName::parse(text).map_err(|e| format!("node: {e}")),
        None => Ok(default),
    }
}

/// The query of `template` for `purpose` in `scope`, grouped by `by`.
fn query(
    template: Template,
    purpose: Purpose,
    scope: pb::query_request::Scope,
    by: &[Dimension],
    filters: Vec<pb::Filter>,
) -> pb::QueryRequest {
    pb::QueryRequest {
        template: template.code().to_owned(),
        template_version: template.version(),
        purpose: purpose.code().to_owned(),
        scope: Some(scope),
        filters,
        group_by: by.iter().map(|d| d.code().to_owned()).collect(),
        fields: Vec::new(),
    }
}

fn federated(query: pb::QueryRequest, peers: &[Region]) -> pb::FederatedQueryRequest {
    pb::FederatedQueryRequest {
        query: Some(query),
        peers: peers.iter().map(|r| r.code().to_owned()).collect(),
        network: String::new(),
    }
}

fn peildatum(params: &Params) -> Result<(NaiveDate, pb::query_request::Scope), String> {
    let text = params
        .get("peildatum")
        .map_or_else(|| zicht_node::today().to_string(), str::to_owned);
    let date = zicht_model::parse_date(&text).map_err(|e| format!("peildatum: {e}"))?;
    Ok((
        date,
        pb::query_request::Scope::Peildatum(zicht_proto::domain::from_date(date)),
    ))
}

/// The period asked: `period=` (a year or FROM..TO), default the last whole year; with its
/// last day (network membership is taken then).
fn period(params: &Params) -> Result<(String, pb::query_request::Scope, NaiveDate), String> {
    let text = params.get("period").map_or_else(
        || (zicht_node::today().year() - 1).to_string(),
        str::to_owned,
    );
    let (from, to) = crate::query::period_days(&text).map_err(|e| format!("{e}"))?;
    let scope = pb::query_request::Scope::Period(crate::query::wire_period(from, to));
    Ok((text, scope, to))
}

/// A page with a form of its own parameters, what it found, and (if the asking failed) why.
fn page(
    monitor: &Monitor,
    title: &str,
    form: Markup,
    figures: &[Figure],
    after: Markup,
    params: &Params,
) -> Response {
    if let Some(id) = params.get("csv") {
        if let Some(figure) = figures.iter().find(|f| f.id == id) {
            return layout::csv_response(figure);
        }
    }
    let query = params.page_query();
    let body = html! {
        (form)
        @for figure in figures { (figure.markup(&query)) }
        (after)
    };
    layout::html_response(layout::page(monitor, title, body))
}

/// An error shown in place of figures.
fn problem(message: &str) -> Markup {
    html! { p class="error" role="alert" { (message) } }
}

/// The node choice of a form: the person's own node and the networks.
fn node_select(selected: NodeName) -> Markup {
    let mut nodes: Vec<NodeName> = Network::ALL.iter().map(|&n| NodeName::Network(n)).collect();
    nodes.extend(Region::ALL.iter().map(|&r| NodeName::Region(r)));
    html! {
        label { "Ask node"
            select name="node" {
                @for node in nodes {
                    option value=(node.code()) selected[node == selected] { (node.code()) }
                }
            }
        }
    }
}

/// The start page: what this monitor acts as, and its pages.
pub async fn index(State(monitor): State<Arc<Monitor>>) -> Response {
    let body = html! {
        p { "This monitor asks the federation as " code { (monitor.person.role.uri()) }
            " (PeerID " code { (monitor.person.peer_id.to_string()) } ") through node "
            strong { (monitor.own_node().code()) } ", with that person's certificate: every
            answer passed disclosure control on the node that owns the data, and every
            question is in the nodes' logs under that name." }
        @if monitor.is_auditor() {
            ul {
                li { a href="/audit/chains" { "Chains" } ": every node's audit chains and the checkpoints its peers hold" }
                li { a href="/audit/trace" { "Traces" } ": one question's operations across the nodes" }
                li { a href="/audit/access" { "Access log" } ": who asked what, with filters and JSON lines" }
            }
        } @else {
            ul {
                li { a href="/capacity" { "Capacity" } ": places, occupied and occupancy per landsdeel, region and care type" }
                li { a href="/capacity/trend" { "Capacity over time" } ": occupancy per landsdeel over peildata" }
                li { a href="/herkomst" { "Herkomst" } ": origin region by placement region, inside or outside the own landsdeel" }
                li { a href="/flows" { "Flows" } ": instroom, doorplaatsing and uitstroom by destination" }
                li { a href="/transition18" { "18+" } ": 16- and 17-year-olds with a toekomstplan, funding and BIG5 status" }
                li { a href="/query" { "Query builder" } ": any question the person's grants allow" }
            }
        }
    };
    layout::html_response(layout::page(&monitor, "zicht monitor", body))
}

/// Places and occupancy of a group of facilities.
#[derive(Debug, Clone, Copy, Default)]
struct Occupancy {
    facilities: u64,
    places: f64,
    occupied: f64,
}

impl Occupancy {
    fn add(&mut self, row: &pb::ResultRow) {
        self.facilities += row.count.as_ref().and_then(published).map_or(0, |p| p.0);
        for statistic in &row.statistics {
            match statistic.name.as_str() {
                "places" => self.places += statistic.value.unwrap_or(0.0),
                "occupied" => self.occupied += statistic.value.unwrap_or(0.0),
                _ => {}
            }
        }
    }

    fn percent(&self) -> Option<f64> {
        (self.places > 0.0).then(|| self.occupied / self.places * 100.0)
    }
}

fn percent_text(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}%"))
}

/// The landsdeel of a placement region code (`buiten_federatie`: outside the federation).
fn landsdeel_of(code: &str) -> String {
    Region::from_code(code).map_or_else(
        || "outside the federation".to_owned(),
        |r| r.landsdeel().name().to_owned(),
    )
}

/// Capacity rows grouped by `key` of each row.
fn occupancy_by(
    result: &pb::ProtectedResult,
    key: impl Fn(&[String]) -> String,
) -> Vec<(String, Occupancy)> {
    let mut groups: Vec<(String, Occupancy)> = Vec::new();
    for row in &result.rows {
        let name = key(&row.key);
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, group)) => group.add(row),
            None => {
                let mut group = Occupancy::default();
                group.add(row);
                groups.push((name, group));
            }
        }
    }
    groups
}

fn occupancy_figure(
    id: &'static str,
    title: &str,
    column: &str,
    groups: &[(String, Occupancy)],
) -> Figure {
    let bars: Vec<Bar> = groups
        .iter()
        .map(|(name, o)| Bar {
            label: name.clone(),
            value: o.percent().unwrap_or(0.0),
            text: percent_text(o.percent()),
        })
        .collect();
    Figure {
        id,
        title: title.to_owned(),
        header: [
            column,
            "facilities",
            "places",
            "occupied",
            "available",
            "occupancy",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        rows: groups
            .iter()
            .map(|(name, o)| {
                vec![
                    name.clone(),
                    o.facilities.to_string(),
                    format!("{:.0}", o.places),
                    format!("{:.0}", o.occupied),
                    format!("{:.0}", o.places - o.occupied),
                    percent_text(o.percent()),
                ]
            })
            .collect(),
        chart: Some(charts::bars(id, title, &bars, Some(100.0))),
    }
}

/// Capacity: places, occupied and occupancy per landsdeel, region and care type on a
/// peildatum (facility data: exact).
pub async fn capacity(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = analysts_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let node = node_param(&params, monitor.own_node());
    let asked = match (node, peildatum(&params)) {
        (Ok(node), Ok((date, scope))) => {
            let by = [Dimension::PlacementRegion, Dimension::CareType];
            let request = query(
                Template::Capacity,
                Purpose::Capaciteitsmonitoring,
                scope,
                &by,
                Vec::new(),
            );
            Ok((node, date, monitor.ask(node, federated(request, &[])).await))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let form = |node: NodeName, date: String| {
        html! {
            form class="ask" method="get" action="/capacity" {
                label { "Peildatum" input type="date" name="peildatum" value=(date); }
                (node_select(node))
                button type="submit" { "Show" }
            }
        }
    };
    match asked {
        Err(message) => page(
            &monitor,
            "Capacity",
            form(monitor.own_node(), String::new()),
            &[],
            problem(&message),
            &params,
        ),
        Ok((node, date, Err(message))) => page(
            &monitor,
            "Capacity",
            form(node, date.to_string()),
            &[],
            problem(&message),
            &params,
        ),
        Ok((node, date, Ok(answer))) => {
            let result = answer.result.clone().unwrap_or_default();
            let landsdelen = occupancy_by(&result, |key| landsdeel_of(&key[0]));
            let regions = occupancy_by(&result, |key| key[0].clone());
            let care_types = occupancy_by(&result, |key| key[1].clone());
            let figures = [
                occupancy_figure(
                    "landsdeel",
                    &format!("Occupancy per landsdeel on {date}"),
                    "landsdeel",
                    &landsdelen,
                ),
                occupancy_figure(
                    "region",
                    &format!("Occupancy per placement region on {date}"),
                    "placement_region",
                    &regions,
                ),
                occupancy_figure(
                    "care_type",
                    &format!("Occupancy per care type on {date}"),
                    "care_type",
                    &care_types,
                ),
            ];
            let after = html! {
                p class="note" { "Capacity is facility data: places and occupied are exact. Provider groups are not in the regions' grants to other regions' analysts; a region's own data team sees them with zicht query on its own database." }
                (layout::coverage("capacity", &answer))
            };
            page(
                &monitor,
                "Capacity",
                form(node, date.to_string()),
                &figures,
                after,
                &params,
            )
        }
    }
}

/// The last `count` quarter ends on or before `until`, oldest first.
fn quarter_ends(until: NaiveDate, count: usize) -> Vec<NaiveDate> {
    let mut ends = Vec::with_capacity(count);
    let (mut year, mut quarter) = (until.year(), (until.month0() / 3) as i32);
    while ends.len() < count {
        let month = (quarter as u32 + 1) * 3;
        let end = NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|first| first.checked_add_months(chrono::Months::new(1)))
            .and_then(|next| next.pred_opt());
        match end {
            Some(end) if end <= until => ends.push(end),
            Some(_) => {}
            None => break,
        }
        quarter -= 1;
        if quarter < 0 {
            quarter = 3;
            year -= 1;
        }
    }
    ends.reverse();
    ends
}

/// Capacity over time: occupancy per landsdeel at the last eight quarter ends.
pub async fn capacity_trend(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = analysts_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let (until, node) = match (peildatum(&params), node_param(&params, monitor.own_node())) {
        (Ok((until, _)), Ok(node)) => (until, node),
        (Err(e), _) | (_, Err(e)) => {
            return page(
                &monitor,
                "Capacity over time",
                html! {},
                &[],
                problem(&e),
                &params,
            )
        }
    };
    let dates = quarter_ends(until, 8);
    let mut asks = tokio::task::JoinSet::new();
    for (i, date) in dates.iter().enumerate() {
        let monitor = monitor.clone();
        let request = query(
            Template::Capacity,
            Purpose::Capaciteitsmonitoring,
            pb::query_request::Scope::Peildatum(zicht_proto::domain::from_date(*date)),
            &[Dimension::PlacementRegion],
            Vec::new(),
        );
        asks.spawn(async move { (i, monitor.ask(node, federated(request, &[])).await) });
    }
    let mut answers: Vec<Option<Result<pb::FederatedResult, String>>> = vec![None; dates.len()];
    while let Some(Ok((i, answer))) = asks.join_next().await {
        answers[i] = Some(answer);
    }
    let landsdelen: Vec<String> = zicht_model::Landsdeel::ALL
        .iter()
        .map(|l| l.name().to_owned())
        .collect();
    // Occupancy per landsdeel and date (None: that date was not answered).
    let mut series: Vec<(String, Vec<Option<f64>>)> =
        landsdelen.iter().map(|l| (l.clone(), Vec::new())).collect();
    let mut problems = Vec::new();
    for (date, answer) in dates.iter().zip(&answers) {
        let groups = match answer {
            Some(Ok(answer)) => answer
                .result
                .as_ref()
                .map(|r| occupancy_by(r, |key| landsdeel_of(&key[0])))
                .unwrap_or_default(),
            Some(Err(message)) => {
                problems.push(format!("{date}: {message}"));
                Vec::new()
            }
            None => Vec::new(),
        };
        for (name, values) in &mut series {
            let value = groups
                .iter()
                .find(|(g, _)| g == name)
                .and_then(|(_, o)| o.percent());
            values.push(value);
        }
    }
    // A landsdeel none of whose regions answered has no line (and no column).
    series.retain(|(_, values)| values.iter().any(Option::is_some));
    let landsdelen: Vec<String> = series.iter().map(|(name, _)| name.clone()).collect();
    let x: Vec<String> = dates.iter().map(ToString::to_string).collect();
    // Quarter labels under the chart (2025 Q2); the table keeps the dates.
    let quarters: Vec<String> = dates
        .iter()
        .map(|d| format!("{} Q{}", d.year(), d.month0() / 3 + 1))
        .collect();
    // The y axis: 100% down to a multiple of 10 below the lowest occupancy.
    let lowest = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(100.0_f64, |a, b| a.min(*b));
    let floor = ((lowest - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let mut header = vec!["peildatum".to_owned()];
    header.extend(landsdelen.iter().cloned());
    let rows = x
        .iter()
        .enumerate()
        .map(|(i, date)| {
            let mut row = vec![date.clone()];
            row.extend(series.iter().map(|(_, v)| percent_text(v[i])));
            row
        })
        .collect();
    let title = "Occupancy per landsdeel at quarter ends";
    let figure = Figure {
        id: "trend",
        title: title.to_owned(),
        header,
        rows,
        chart: Some(charts::lines(
            "trend",
            title,
            &quarters,
            &series,
            (floor, 100.0),
        )),
    };
    let latest = answers.iter().rev().flatten().find_map(|a| a.as_ref().ok());
    let form = html! {
        form class="ask" method="get" action="/capacity/trend" {
            label { "Last peildatum" input type="date" name="peildatum" value=(until.to_string()); }
            (node_select(node))
            button type="submit" { "Show" }
        }
    };
    let after = html! {
        @for message in &problems { (problem(message)) }
        @if let Some(answer) = latest {
            (layout::coverage("the latest peildatum", answer))
        }
    };
    page(
        &monitor,
        "Capacity over time",
        form,
        &[figure],
        after,
        &params,
    )
}

/// A published count as a number (its value) and its text (`57 ±9`).
fn count_of(row: &pb::ResultRow) -> (f64, String) {
    let value = row.count.as_ref().and_then(published).map_or(0, |p| p.0);
    (value as f64, cell_text(row.count.as_ref()))
}

/// A figure of one grouped count: a bar per row (its first key) with its published count.
fn count_figure(
    id: &'static str,
    title: String,
    dimension: &str,
    result: &pb::ProtectedResult,
) -> Figure {
    let bars: Vec<Bar> = result
        .rows
        .iter()
        .map(|row| {
            let (value, text) = count_of(row);
            Bar {
                label: row.key.join(" · "),
                value,
                text,
            }
        })
        .collect();
    Figure {
        id,
        chart: (!bars.is_empty()).then(|| charts::bars(id, &title, &bars, None)),
        title,
        header: vec![dimension.to_owned(), "youths".to_owned()],
        rows: bars
            .iter()
            .map(|b| vec![b.label.clone(), b.text.clone()])
            .collect(),
    }
}

/// The start of a page asked over a period of a node: analysts only, then the period and the
/// node (default: the person's network) from the query string, or the page that says what is
/// wrong with them.
fn period_page(
    monitor: &Monitor,
    uri: &Uri,
    title: &str,
) -> Result<
    (
        Params,
        String,
        pb::query_request::Scope,
        NaiveDate,
        NodeName,
    ),
    Box<Response>,
> {
    if let Some(refused) = analysts_only(monitor) {
        return Err(Box::new(refused));
    }
    let params = Params::of(uri);
    match (period(&params), node_param(&params, network_node(monitor))) {
        (Ok((text, scope, last)), Ok(node)) => Ok((params, text, scope, last, node)),
        (Err(e), _) | (_, Err(e)) => Err(Box::new(page(
            monitor,
            title,
            html! {},
            &[],
            problem(&e),
            &params,
        ))),
    }
}

/// The form of a page asked over a period of a node.
fn period_form(action: &str, text: &str, node: NodeName) -> Markup {
    html! {
        form class="ask" method="get" action=(action) {
            label { "Period (a year or FROM..TO)" input type="text" name="period" value=(text); }
            (node_select(node))
            button type="submit" { "Show" }
        }
    }
}

/// Herkomst: where youths of each origin region are placed, and inside or outside their
/// own landsdeel.
pub async fn herkomst(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    let (params, text, scope, last, node) = match period_page(&monitor, &uri, "Herkomst") {
        Ok(asked) => asked,
        Err(page) => return *page,
    };
    let purpose = Purpose::BovenregionaleSturing;
    let grid = query(
        Template::YouthInCare,
        purpose,
        scope,
        &[Dimension::OriginRegion, Dimension::PlacementRegion],
        Vec::new(),
    );
    let inside = query(
        Template::YouthInCare,
        purpose,
        scope,
        &[Dimension::LandsdeelInside],
        Vec::new(),
    );
    // From the placing side: every region is asked how many of its youths are placed in the
    // facilities of this node's region(s) (a network: its members), by origin region.
    let (placing, placed_in) = placing_side(node, last);
    let placing = query(
        Template::YouthInCare,
        purpose,
        scope,
        &[Dimension::OriginRegion],
        vec![placing],
    );
    let (grid, inside, placing) = tokio::join!(
        monitor.ask(node, federated(grid, &[])),
        monitor.ask(node, federated(inside, &[])),
        monitor.ask(node, federated(placing, Region::ALL))
    );
    let mut figures = Vec::new();
    let mut after = Vec::new();
    match &grid {
        Ok(answer) => {
            let result = answer.result.clone().unwrap_or_default();
            let mut rows: Vec<String> = Vec::new();
            let mut columns: Vec<String> = Vec::new();
            let mut cells: BTreeMap<(String, String), (f64, String)> = BTreeMap::new();
            for row in &result.rows {
                let (origin, placed) = (row.key[0].clone(), row.key[1].clone());
                if !rows.contains(&origin) {
                    rows.push(origin.clone());
                }
                if !columns.contains(&placed) {
                    columns.push(placed.clone());
                }
                cells.insert((origin, placed), count_of(row));
            }
            let grid: Vec<Vec<Option<(f64, String)>>> = rows
                .iter()
                .map(|o| {
                    columns
                        .iter()
                        .map(|p| cells.get(&(o.clone(), p.clone())).cloned())
                        .collect()
                })
                .collect();
            let title = format!(
                "Youths in care in {text} by origin region (rows) and placement region (columns)"
            );
            let mut header = vec!["origin_region".to_owned()];
            header.extend(columns.iter().cloned());
            let table = rows
                .iter()
                .zip(&grid)
                .map(|(origin, cells)| {
                    let mut line = vec![origin.clone()];
                    line.extend(
                        cells
                            .iter()
                            .map(|c| c.as_ref().map_or("·".to_owned(), |(_, t)| t.clone())),
                    );
                    line
                })
                .collect();
            figures.push(Figure {
                id: "herkomst",
                chart: Some(charts::heatmap("herkomst", &title, &rows, &columns, &grid)),
                title,
                header,
                rows: table,
            });
            after.push(layout::coverage("origin by placement region", answer));
        }
        Err(message) => after.push(problem(message)),
    }
    match &inside {
        Ok(answer) => {
            let result = answer.result.clone().unwrap_or_default();
            let title =
                format!("Youths in care in {text}: placed inside or outside their own landsdeel");
            after.push(layout::coverage("inside or outside the landsdeel", answer));
            figures.push(count_figure(
                "landsdeel",
                title,
                "landsdeel_inside",
                &result,
            ));
        }
        Err(message) => after.push(problem(message)),
    }
    match &placing {
        Ok(answer) => {
            let result = answer.result.clone().unwrap_or_default();
            let title =
                format!("Youths in care in {text} placed in {placed_in}, by origin region (every region asked)");
            after.push(layout::coverage("placed here, by origin region", answer));
            figures.push(count_figure("placing", title, "origin_region", &result));
        }
        Err(message) => after.push(problem(message)),
    }
    let form = period_form("/herkomst", &text, node);
    let after = html! { (layout::perturbation_note()) @for block in &after { (block) } };
    page(&monitor, "Herkomst", form, &figures, after, &params)
}

/// The filter of the placing side's question for `node` (its own region; a network's member
/// regions on `on`, one code-list group) and how the page names it.
fn placing_side(node: NodeName, on: NaiveDate) -> (pb::Filter, String) {
    let (values, name) = match node {
        NodeName::Region(region) => (vec![region.code().to_owned()], region.name_nl().to_owned()),
        NodeName::Network(network) => (
            network
                .members_on(on)
                .map(|r| r.code().to_owned())
                .collect(),
            format!("the facilities of {}", network.name_nl()),
        ),
    };
    let filter = pb::Filter {
        dimension: Dimension::PlacementRegion.code().to_owned(),
        values,
        exclude: false,
    };
    (filter, name)
}

/// Flows: instroom, doorplaatsing and uitstroom in a period, and where youths went.
pub async fn flows(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    let (params, text, scope, _, node) = match period_page(&monitor, &uri, "Flows") {
        Ok(asked) => asked,
        Err(page) => return *page,
    };
    let purpose = Purpose::BovenregionaleSturing;
    let kinds = query(
        Template::Flows,
        purpose,
        scope,
        &[Dimension::FlowKind],
        Vec::new(),
    );
    let destinations = query(
        Template::Flows,
        purpose,
        scope,
        // Uitstroom and doorplaatsing are read from the rows (a perturbed question cannot
        // leave values out; the cells are the same youths either way).
        &[Dimension::OutflowDestination, Dimension::FlowKind],
        Vec::new(),
    );
    let (kinds, destinations) = tokio::join!(
        monitor.ask(node, federated(kinds, &[])),
        monitor.ask(node, federated(destinations, &[]))
    );
    let mut figures = Vec::new();
    let mut after = Vec::new();
    match &kinds {
        Ok(answer) => {
            let result = answer.result.clone().unwrap_or_default();
            let title = format!("Youths per flow kind in {text}");
            figures.push(count_figure("kinds", title, "flow_kind", &result));
            after.push(layout::coverage("flow kinds", answer));
        }
        Err(message) => after.push(problem(message)),
    }
    match &destinations {
        Ok(answer) => {
            let result = answer.result.clone().unwrap_or_default();
            let series = vec!["doorplaatsing".to_owned(), "uitstroom".to_owned()];
            let mut rows: Vec<(String, Vec<f64>, Vec<String>)> = Vec::new();
            for row in &result.rows {
                let (destination, kind) = (&row.key[0], &row.key[1]);
                let Some(s) = series.iter().position(|k| k == kind) else {
                    continue;
                };
                let (value, text) = count_of(row);
                let at = match rows.iter().position(|(d, _, _)| d == destination) {
                    Some(at) => at,
                    None => {
                        rows.push((destination.clone(), vec![0.0; 2], vec![String::new(); 2]));
                        rows.len() - 1
                    }
                };
                rows[at].1[s] = value;
                rows[at].2[s] = text;
            }
            let title =
                format!("Where youths went in {text}: doorplaatsing and uitstroom by destination");
            let bars: Vec<(String, Vec<f64>)> = rows
                .iter()
                .map(|(d, v, _)| (d.clone(), v.clone()))
                .collect();
            let mut header = vec!["outflow_destination".to_owned()];
            header.extend(series.iter().cloned());
            figures.push(Figure {
                id: "destinations",
                chart: Some(charts::stacked("destinations", &title, &series, &bars)),
                title,
                header,
                rows: rows
                    .iter()
                    .map(|(d, _, texts)| {
                        let mut line = vec![d.clone()];
                        line.extend(texts.iter().cloned());
                        line
                    })
                    .collect(),
            });
            after.push(layout::coverage("destinations", answer));
        }
        Err(message) => after.push(problem(message)),
    }
    let form = period_form("/flows", &text, node);
    let after = html! { (layout::perturbation_note()) @for block in &after { (block) } };
    page(&monitor, "Flows", form, &figures, after, &params)
}

/// One region's answer to one 18+ question.
type RegionAnswer = (Region, &'static str, Result<pb::FederatedResult, String>);

/// The share (percent) of `result`'s published total in rows whose first key is in `keys`.
fn share(result: &pb::ProtectedResult, keep: impl Fn(&str) -> bool) -> Option<f64> {
    let total = result.total.as_ref().and_then(published)?.0 as f64;
    let part: u64 = result
        .rows
        .iter()
        .filter(|r| r.key.first().is_some_and(|k| keep(k)))
        .filter_map(|r| r.count.as_ref().and_then(published))
        .map(|p| p.0)
        .sum();
    (total > 0.0).then(|| (part as f64 / total * 100.0).min(100.0))
}

/// 18+: per region, the share of 16- and 17-year-olds with a toekomstplan and with after-18
/// funding arranged, and each BIG5 domain's share "op orde".
pub async fn transition18(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = analysts_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let (date, scope, node) = match (
        peildatum(&params),
        node_param(&params, network_node(&monitor)),
    ) {
        (Ok((date, scope)), Ok(node)) => (date, scope, node),
        (Err(e), _) | (_, Err(e)) => {
            return page(&monitor, "18+", html! {}, &[], problem(&e), &params)
        }
    };
    let regions: Vec<Region> = match node {
        NodeName::Network(network) => network.members_on(date).collect(),
        NodeName::Region(region) => vec![region],
    };
    let questions: [(&'static str, &[Dimension]); 3] = [
        ("toekomstplan", &[Dimension::Toekomstplan]),
        ("after18_funding", &[Dimension::After18Funding]),
        ("big5", &[Dimension::Big5Domain, Dimension::Big5Status]),
    ];
    let mut asks = tokio::task::JoinSet::new();
    for &region in &regions {
        for (name, by) in questions {
            let monitor = monitor.clone();
            let request = query(
                Template::Transition18,
                Purpose::AchttienPlusMonitoring,
                scope,
                by,
                Vec::new(),
            );
            asks.spawn(async move {
                let answer = monitor.ask(node, federated(request, &[region])).await;
                (region, name, answer)
            });
        }
    }
    let mut answers: Vec<RegionAnswer> = Vec::new();
    while let Some(Ok(answer)) = asks.join_next().await {
        answers.push(answer);
    }
    answers.sort_by_key(|(region, name, _)| (*region, *name));
    let result_of = |region: Region, question: &str| {
        answers
            .iter()
            .find(|(r, n, _)| *r == region && *n == question)
            .and_then(|(_, _, a)| a.as_ref().ok())
            .and_then(|a| a.result.as_ref())
            .filter(|r| r.total.is_some())
    };
    let share_figure =
        |id: &'static str, title: String, question: &str, keep: &dyn Fn(&str) -> bool| {
            let rows: Vec<(Region, Option<f64>, String)> = regions
                .iter()
                .map(|&region| {
                    let result = result_of(region, question);
                    let share = result.and_then(|r| share(r, keep));
                    let total = result.map_or_else(
                        || "not answered".to_owned(),
                        |r| cell_text(r.total.as_ref()),
                    );
                    (region, share, total)
                })
                .collect();
            let bars: Vec<Bar> = rows
                .iter()
                .map(|(r, s, _)| Bar {
                    label: r.code().to_owned(),
                    value: s.unwrap_or(0.0),
                    text: percent_text(*s),
                })
                .collect();
            Figure {
                id,
                chart: Some(charts::bars(id, &title, &bars, Some(100.0))),
                title,
                header: vec![
                    "region".to_owned(),
                    "share".to_owned(),
                    "youths (16-17, checked)".to_owned(),
                ],
                rows: rows
                    .iter()
                    .map(|(r, s, t)| vec![r.code().to_owned(), percent_text(*s), t.clone()])
                    .collect(),
            }
        };
    let mut figures = vec![
        share_figure(
            "toekomstplan",
            format!("Share with a toekomstplan, checks in the half year up to {date}"),
            "toekomstplan",
            &|k| k == "ja",
        ),
        share_figure(
            "funding",
            format!("Share with after-18 funding arranged (anything but onbekend), up to {date}"),
            "after18_funding",
            &|k| k != "onbekend",
        ),
    ];
    // BIG5: per region and domain, the share "op orde" of the domain's published total.
    let domains: Vec<String> = zicht_model::Big5Domain::ALL
        .iter()
        .map(|d| d.code().to_owned())
        .collect();
    let big5: Vec<Vec<Option<(f64, String)>>> = regions
        .iter()
        .map(|&region| {
            domains
                .iter()
                .map(|domain| {
                    let result = result_of(region, "big5")?;
                    let rows: Vec<&pb::ResultRow> =
                        result.rows.iter().filter(|r| &r.key[0] == domain).collect();
                    let count = |row: &&pb::ResultRow| {
                        row.count.as_ref().and_then(published).map_or(0, |p| p.0)
                    };
                    let total: u64 = rows.iter().map(count).sum();
                    let ok: u64 = rows
                        .iter()
                        .filter(|r| r.key[1] == "op_orde")
                        .map(count)
                        .sum();
                    (total > 0).then(|| {
                        let share = ok as f64 / total as f64 * 100.0;
                        (share, format!("{share:.0}%"))
                    })
                })
                .collect()
        })
        .collect();
    let region_codes: Vec<String> = regions.iter().map(|r| r.code().to_owned()).collect();
    let title = format!("Share of each BIG5 domain op orde, up to {date}");
    let mut header = vec!["region".to_owned()];
    header.extend(domains.iter().cloned());
    figures.push(Figure {
        id: "big5",
        chart: Some(charts::heatmap(
            "big5",
            &title,
            &region_codes,
            &domains,
            &big5,
        )),
        title,
        header,
        rows: region_codes
            .iter()
            .zip(&big5)
            .map(|(region, cells)| {
                let mut line = vec![region.clone()];
                line.extend(
                    cells
                        .iter()
                        .map(|c| c.as_ref().map_or("·".to_owned(), |(_, t)| t.clone())),
                );
                line
            })
            .collect(),
    });
    let form = html! {
        form class="ask" method="get" action="/transition18" {
            label { "Peildatum" input type="date" name="peildatum" value=(date.to_string()); }
            (node_select(node))
            button type="submit" { "Show" }
        }
    };
    let after = html! {
        (layout::perturbation_note())
        p class="note" { "Shares are of published (perturbed) counts; · means the region did not answer, or its grants do not cover the question." }
        section class="coverage" aria-label="Coverage" {
            h2 { "Coverage per region and question" }
            table {
                thead { tr { th scope="col" { "Region" } th scope="col" { "Question" } th scope="col" { "Status" } th scope="col" { "Trace" } } }
                tbody {
                    @for (region, question, answer) in &answers {
                        tr {
                            th scope="row" { (region.code()) }
                            td { (question) }
                            @match answer {
                                Ok(answer) => {
                                    td { (answer.coverage.first().map_or_else(String::new, |c| {
                                        if c.reason.is_empty() { "answered".to_owned() } else { c.reason.clone() }
                                    })) }
                                    td { code class="trace" { (answer.trace_id) } }
                                }
                                Err(message) => { td { (message) } td {} }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&monitor, "18+", form, &figures, after, &params)
}

/// The shell-quoted `zicht query` command line of a builder question.
fn command_line(monitor: &Monitor, params: &Params) -> String {
    let quote = |text: &str| {
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/:=+".contains(c))
        {
            text.to_owned()
        } else {
            format!("'{}'", text.replace('\'', "'\\''"))
        }
    };
    let mut words = vec![
        "zicht".to_owned(),
        "query".to_owned(),
        quote(params.get("template").unwrap_or("")),
        "--client".to_owned(),
        "PROFILE".to_owned(),
    ];
    if let Some(node) = params
        .get("node")
        .filter(|n| *n != monitor.own_node().code())
    {
        words.extend(["--node".to_owned(), quote(node)]);
    }
    for (key, option) in [
        ("purpose", "--purpose"),
        ("period", "--period"),
        ("peildatum", "--peildatum"),
    ] {
        if let Some(value) = params.get(key) {
            words.extend([option.to_owned(), quote(value)]);
        }
    }
    for by in params.all("by") {
        words.extend(["--by".to_owned(), quote(by)]);
    }
    for filter in builder_filters(params) {
        words.extend(["--filter".to_owned(), quote(&filter)]);
    }
    for peer in params.all("peer") {
        words.extend(["--peer".to_owned(), quote(peer)]);
    }
    words.join(" ")
}

/// The builder's filters as `DIM=VALUES` / `DIM!=VALUES` texts (rows with a dimension and
/// values).
fn builder_filters(params: &Params) -> Vec<String> {
    (0..3)
        .filter_map(|i| {
            let dimension = params.get(&format!("f{i}"))?;
            let values = params.get(&format!("v{i}"))?;
            let op = if params.get(&format!("o{i}")) == Some("!=") {
                "!="
            } else {
                "="
            };
            Some(format!("{dimension}{op}{values}"))
        })
        .collect()
}

/// The builder's question, checked as `zicht query` checks it.
fn builder_request(params: &Params) -> Result<pb::FederatedQueryRequest, String> {
    let template = Template::parse(params.get("template").unwrap_or(""))
        .map_err(|e| format!("template: {e}"))?;
    let purpose =
        Purpose::parse(params.get("purpose").unwrap_or("")).map_err(|e| format!("purpose: {e}"))?;
    let by = params
        .all("by")
        .iter()
        .map(|d| crate::query::dimension(template, d, "group by"))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| format!("{e}"))?;
    let filters = builder_filters(params)
        .iter()
        .map(|text| crate::query::filter(template, text))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| format!("{e}"))?;
    let scope = match template {
        Template::Capacity | Template::Transition18 => peildatum(params)?.1,
        _ => period(params)?.1,
    };
    let peers = params
        .all("peer")
        .iter()
        .map(|p| Region::parse(p).map_err(|e| format!("peer: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(federated(
        query(template, purpose, scope, &by, filters),
        &peers,
    ))
}

/// The query builder: the templates, purposes and dimensions the node's grants give the
/// person; the answer as table and chart; the same question as a `zicht query` command.
pub async fn builder(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = analysts_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let node = match node_param(&params, monitor.own_node()) {
        Ok(node) => node,
        Err(e) => {
            return page(
                &monitor,
                "Query builder",
                html! {},
                &[],
                problem(&e),
                &params,
            )
        }
    };
    let grants = match monitor.grants(node).await {
        Ok(grants) => grants,
        Err(e) => {
            return page(
                &monitor,
                "Query builder",
                html! {},
                &[],
                problem(&e),
                &params,
            )
        }
    };
    let templates: Vec<&str> = {
        let mut all: Vec<&str> = grants
            .grants
            .iter()
            .flat_map(|g| g.templates.iter().map(String::as_str))
            .filter(|t| *t != Template::ConsentedRecords.code())
            .collect();
        all.sort_by_key(|t| Template::from_code(t).map(|t| t as u8));
        all.dedup();
        all
    };
    let template = params
        .get("template")
        .and_then(Template::from_code)
        .filter(|t| templates.contains(&t.code()))
        .or_else(|| templates.first().and_then(|t| Template::from_code(t)));
    // What the grants of this template give: its purposes and dimensions.
    let (purposes, dimensions) = match template {
        Some(template) => {
            let mut purposes: Vec<&str> = Vec::new();
            let mut dimensions: Vec<Dimension> = Vec::new();
            for grant in grants
                .grants
                .iter()
                .filter(|g| g.templates.iter().any(|t| t == template.code()))
            {
                purposes.extend(grant.purposes.iter().map(String::as_str));
                dimensions.extend(
                    template
                        .dimensions()
                        .iter()
                        .filter(|d| grant.group_by.iter().any(|g| g == d.code())),
                );
            }
            purposes.dedup();
            dimensions.sort_by_key(|d| template.dimensions().iter().position(|x| x == d));
            dimensions.dedup();
            (purposes, dimensions)
        }
        None => (Vec::new(), Vec::new()),
    };
    let asked = params.get("ask").is_some();
    let mut figures = Vec::new();
    let mut after = html! {};
    if asked {
        match builder_request(&params) {
            Err(message) => after = problem(&message),
            Ok(request) => match monitor.ask(node, request).await {
                Err(message) => after = problem(&message),
                Ok(answer) => {
                    let result = answer.result.clone().unwrap_or_default();
                    let mut header = result.dimensions.clone();
                    header.push(
                        if result.template == "capacity" {
                            "facilities"
                        } else {
                            "youths"
                        }
                        .to_owned(),
                    );
                    if let Some(first) = result.rows.first() {
                        header.extend(first.statistics.iter().map(|s| s.name.clone()));
                    }
                    let rows: Vec<Vec<String>> = result
                        .rows
                        .iter()
                        .map(|row| {
                            let mut line = vec![row.key.join(" · ")];
                            if result.dimensions.is_empty() {
                                line.clear();
                            }
                            line.push(cell_text(row.count.as_ref()));
                            line.extend(row.statistics.iter().map(|s| {
                                s.value
                                    .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
                            }));
                            line
                        })
                        .collect();
                    if result.dimensions.len() > 1 {
                        header.splice(0..result.dimensions.len(), [result.dimensions.join(" · ")]);
                    }
                    let mut rows = rows;
                    rows.push({
                        let mut total = vec!["total".to_owned(), cell_text(result.total.as_ref())];
                        total.resize(header.len(), String::new());
                        total
                    });
                    let bars: Vec<Bar> = result
                        .rows
                        .iter()
                        .map(|row| {
                            let (value, text) = count_of(row);
                            Bar {
                                label: row.key.join(" · "),
                                value,
                                text,
                            }
                        })
                        .collect();
                    let title = format!(
                        "{} by {}",
                        result.template,
                        if result.dimensions.is_empty() {
                            "nothing (the total)".to_owned()
                        } else {
                            result.dimensions.join(", ")
                        }
                    );
                    figures.push(Figure {
                        id: "answer",
                        chart: (!bars.is_empty())
                            .then(|| charts::bars("answer", &title, &bars, None)),
                        title,
                        header,
                        rows,
                    });
                    after = html! {
                        (layout::perturbation_note())
                        (layout::coverage("the question", &answer))
                    };
                }
            },
        }
    }
    let chosen_by = params.all("by");
    let period_value = params.get("period").unwrap_or("").to_owned();
    let peildatum_value = params.get("peildatum").unwrap_or("").to_owned();
    let form = html! {
        form class="ask" method="get" action="/query" {
            input type="hidden" name="ask" value="1";
            label { "Template"
                select name="template" {
                    @for t in &templates {
                        option value=(t) selected[template.is_some_and(|x| x.code() == *t)] { (t) }
                    }
                }
            }
            label { "Purpose"
                select name="purpose" {
                    @for p in &purposes {
                        option value=(p) selected[params.get("purpose") == Some(*p)] { (p) }
                    }
                }
            }
            label { "Period (youth_in_care, flows, length_of_stay)" input type="text" name="period" value=(period_value) placeholder="2024"; }
            label { "Peildatum (capacity, transition18)" input type="date" name="peildatum" value=(peildatum_value); }
            fieldset {
                legend { "Group by (granted to you)" }
                @for d in &dimensions {
                    label class="check" { input type="checkbox" name="by" value=(d.code()) checked[chosen_by.contains(&d.code())]; (d.code()) }
                }
            }
            fieldset {
                legend { "Filters" }
                @for i in 0..3 {
                    @let f = format!("f{i}");
                    @let o = format!("o{i}");
                    @let v = format!("v{i}");
                    div class="filter" {
                    label { "Dimension"
                        select name=(f) {
                            option value="" { "(none)" }
                            @for d in &dimensions {
                                option value=(d.code()) selected[params.get(&f) == Some(d.code())] { (d.code()) }
                            }
                        }
                    }
                    label { "Keep or leave out"
                        select name=(o) {
                            option value="=" { "= keep" }
                            option value="!=" selected[params.get(&o) == Some("!=")] { "!= leave out" }
                        }
                    }
                    label { "Values (comma separated)" input type="text" name=(v) value=(params.get(&v).unwrap_or("")); }
                    }
                }
            }
            (node_select(node))
            button type="submit" { "Ask" }
        }
        p class="note" { "Templates, purposes and dimensions are what node " (node.code()) "'s policy grants you (" (grants.role) "); the regions asked apply their own grants too." }
    };
    let command = asked.then(|| command_line(&monitor, &params));
    let after = html! {
        @if let Some(command) = command {
            h2 { "The same question on the command line" }
            code class="command" { (command) }
        }
        (after)
    };
    page(&monitor, "Query builder", form, &figures, after, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_ends_count_back_from_the_last_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            quarter_ends(day(2025, 7, 1), 3),
            vec![day(2024, 12, 31), day(2025, 3, 31), day(2025, 6, 30)]
        );
        assert_eq!(quarter_ends(day(2025, 6, 30), 1), vec![day(2025, 6, 30)]);
    }

    #[test]
    fn repeated_parameters_are_kept_and_csv_leaves_the_page_query() {
        let uri: Uri = "/query?by=a&by=b&csv=answer&period=2024".parse().unwrap();
        let params = Params::of(&uri);
        assert_eq!(params.all("by"), ["a", "b"]);
        assert_eq!(params.page_query(), "by=a&by=b&period=2024");
    }
}
