//! The monitor's page frame and the blocks every page shares: navigation for the person's
//! role, a figure (chart, its numbers as a table, a CSV link), the coverage of a federated
//! answer with its trace id and rules, and error pages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use zicht_proto::v1 as pb;

use super::Monitor;

/// The stylesheet: system fonts, visible focus, high contrast.
pub const STYLESHEET: &str = include_str!("zicht.css");

/// What one figure shows: a chart and exactly its numbers, as the table under it and as its
/// CSV download.
pub struct Figure {
    /// The figure's id within its page (`?csv=ID` downloads it).
    pub id: &'static str,
    /// Its caption.
    pub title: String,
    /// The table's column names.
    pub header: Vec<String>,
    /// The table's rows, as drawn.
    pub rows: Vec<Vec<String>>,
    /// The chart (SVG), or nothing when the numbers are the figure.
    pub chart: Option<Markup>,
}

impl Figure {
    /// The figure as CSV (RFC 4180), exactly the table's cells.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let fields: Vec<String> = line.iter().map(|f| crate::format::csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// The figure as HTML: the chart, its caption, its table and the CSV link (`query` is the
    /// page's own query string).
    pub fn markup(&self, query: &str) -> Markup {
        let separator = if query.is_empty() { "" } else { "&" };
        let csv = format!("?{query}{separator}csv={}", self.id);
        html! {
            figure id=(self.id) {
                figcaption { (self.title) }
                @if let Some(chart) = &self.chart { (chart) }
                div class="scroll" {
                    table {
                        thead { tr { @for column in &self.header { th scope="col" { (column) } } } }
                        tbody {
                            @for row in &self.rows {
                                tr {
                                    @for (i, cell) in row.iter().enumerate() {
                                        @if i == 0 { th scope="row" { (cell) } }
                                        @else { td class=[numeric(cell).then_some("n")] { (cell) } }
                                    }
                                }
                            }
                        }
                    }
                }
                p { a href=(csv) download=(format!("{}.csv", self.id)) { "Download CSV" } }
            }
        }
    }
}

/// Whether a cell reads as a figure (`57 ±9`, `88.0%`, `-`), right-aligned.
fn numeric(cell: &str) -> bool {
    cell == "-"
        || (cell.chars().any(|c| c.is_ascii_digit())
            && cell
                .chars()
                .all(|c| c.is_ascii_digit() || " ±%.,()–".contains(c)))
}

/// A CSV download.
pub fn csv_response(figure: &Figure) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", figure.id),
            ),
        ],
        figure.csv(),
    )
        .into_response()
}

/// The page frame: navigation for the person's role, then `body`.
pub fn page(monitor: &Monitor, title: &str, body: Markup) -> Markup {
    let links: &[(&str, &str)] = if monitor.is_auditor() {
        &[
            ("/audit/chains", "Chains"),
            ("/audit/trace", "Traces"),
            ("/audit/access", "Access log"),
        ]
    } else {
        &[
            ("/capacity", "Capacity"),
            ("/capacity/trend", "Capacity over time"),
            ("/herkomst", "Herkomst"),
            ("/flows", "Flows"),
            ("/transition18", "18+"),
            ("/query", "Query builder"),
        ]
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · zicht monitor" }
                link rel="stylesheet" href="/zicht.css";
                link rel="icon" href="/favicon.svg" type="image/svg+xml";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Pages" {
                        a href="/" class="home" { "zicht" }
                        ul { @for (href, label) in links { li { a href=(href) { (label) } } } }
                    }
                    p class="who" { "Acting as " code { (monitor.person.role.uri()) } }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page as an HTTP answer.
pub fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An error page with `status`.
pub fn error_page(monitor: &Monitor, status: StatusCode, title: &str, message: &str) -> Response {
    let body = html! { p class="error" role="alert" { (message) } p { a href="/" { "Back to the start" } } };
    (status, html_response(page(monitor, title, body))).into_response()
}

/// The coverage of a federated answer: every region asked, whether it answered and why not
/// (identical reasons on one line, as `zicht query` prints them), the trace id, the rules.
pub fn coverage(label: &str, answer: &pb::FederatedResult) -> Markup {
    let answered = answer
        .coverage
        .iter()
        .filter(|c| c.status == pb::peer_status::Status::Answered as i32)
        .count();
    let rules = answer
        .result
        .as_ref()
        .map(|r| r.rules_applied.clone())
        .unwrap_or_default();
    html! {
        section class="coverage" aria-label=(format!("Coverage of {label}")) {
            h2 { "Coverage of " (label) ": " (answered) " of " (answer.coverage.len()) " regions answered" }
            table {
                thead { tr { th scope="col" { "Region" } th scope="col" { "Status" } th scope="col" { "Why" } } }
                tbody {
                    @for peer in &answer.coverage {
                        tr class=(status_class(peer.status)) {
                            th scope="row" { (peer.node) }
                            td { (crate::output::status_name(peer.status)) }
                            td { (peer.reason) }
                        }
                    }
                }
            }
            @if !answer.trace_id.is_empty() {
                p { "Trace: " code class="trace" { (answer.trace_id) } }
            }
            @if !rules.is_empty() {
                details {
                    summary { "Rules applied" }
                    ul { @for rule in &rules { li { (rule) } } }
                }
            }
        }
    }
}

fn status_class(status: i32) -> &'static str {
    if status == pb::peer_status::Status::Answered as i32 {
        "answered"
    } else {
        "missing"
    }
}

/// A short note on what `n ±b` means, for pages with perturbed counts.
pub fn perturbation_note() -> Markup {
    html! {
        p class="note" {
            "n ±b is a published count within b of the true count (cell key method); each count is
            perturbed on its own, so cells need not add up to the total."
        }
    }
}
