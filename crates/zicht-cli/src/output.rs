//! Printing protected results: a table for people, JSON and CSV for tools. Suppressed cells
//! are marked, never left blank, and a footer names the rules that shaped the numbers.

use std::fmt::Write as _;

use zicht_proto::v1 as pb;

/// Output format of `zicht query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a footer.
    Table,
    /// One JSON object.
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// How a cell reads: a number, `<10`, `x` (suppressed to protect another cell) or an
/// interval.
pub fn cell_text(cell: Option<&pb::CellValue>) -> String {
    use pb::cell_value::Value;
    match cell.and_then(|c| c.value.as_ref()) {
        Some(Value::Exact(n)) => n.to_string(),
        Some(Value::Small(small)) => format!("<{}", small.threshold),
        Some(Value::Interval(interval)) => format!("[{}, {}]", interval.low, interval.high),
        Some(Value::Suppressed(_)) => "x".to_owned(),
        None => "?".to_owned(),
    }
}

fn statistic_text(statistic: &pb::Statistic) -> String {
    match statistic.value {
        Some(value) if value.fract() == 0.0 => format!("{value:.0}"),
        Some(value) => format!("{value:.1}"),
        None => "-".to_owned(),
    }
}

/// The column names: the dimensions, the count, then the statistics of the first row.
fn header(result: &pb::ProtectedResult) -> Vec<String> {
    let mut columns = result.dimensions.clone();
    columns.push(if result.template == "capacity" {
        "facilities".to_owned()
    } else {
        "youths".to_owned()
    });
    if let Some(row) = result.rows.first() {
        columns.extend(row.statistics.iter().map(|s| s.name.clone()));
    }
    columns
}

fn lines(result: &pb::ProtectedResult) -> Vec<Vec<String>> {
    result
        .rows
        .iter()
        .map(|row| {
            let mut line = row.key.clone();
            line.push(cell_text(row.count.as_ref()));
            line.extend(row.statistics.iter().map(statistic_text));
            line
        })
        .collect()
}

/// The footer lines: the total, what the marks mean, and the rules.
pub fn footer(result: &pb::ProtectedResult) -> Vec<String> {
    let mut footer = vec![format!("total: {}", cell_text(result.total.as_ref()))];
    let marks: Vec<&str> = result
        .rows
        .iter()
        .filter_map(|r| r.count.as_ref().and_then(|c| c.value.as_ref()))
        .filter_map(|value| match value {
            pb::cell_value::Value::Small(_) => Some("<n = fewer than n youths (zeros too)"),
            pb::cell_value::Value::Suppressed(_) => Some("x = suppressed to protect another cell"),
            _ => None,
        })
        .collect();
    let interval = "[a, b] = between a and b: a region's contribution was small or suppressed";
    if result
        .rows
        .iter()
        .chain(std::iter::once(&pb::ResultRow {
            count: result.total,
            ..Default::default()
        }))
        .any(|r| {
            matches!(
                r.count.and_then(|c| c.value),
                Some(pb::cell_value::Value::Interval(_))
            )
        })
    {
        footer.push(interval.to_owned());
    }
    for mark in [
        "<n = fewer than n youths (zeros too)",
        "x = suppressed to protect another cell",
    ] {
        if marks.contains(&mark) {
            footer.push(mark.to_owned());
        }
    }
    if result
        .rows
        .iter()
        .any(|r| r.statistics.iter().any(|s| s.value.is_none()))
    {
        footer.push("- = withheld (too few youths, or one youth dominates)".to_owned());
    }
    footer.push(format!("rules: {}", result.rules_applied.join("; ")));
    footer
}

/// The coverage of a federated answer (every targeted node, whether it answered, and why not)
/// and its trace id, which an auditor follows with `zicht audit trace`.
pub fn coverage_lines(answer: &pb::FederatedResult) -> Vec<String> {
    let mut lines = peer_lines(&answer.coverage);
    if !answer.trace_id.is_empty() {
        lines.push(format!("trace: {}", answer.trace_id));
    }
    lines
}

/// Every targeted node, whether it answered, and why not.
fn peer_lines(coverage: &[pb::PeerStatus]) -> Vec<String> {
    let answered = coverage
        .iter()
        .filter(|c| c.status == pb::peer_status::Status::Answered as i32)
        .count();
    let width = coverage.iter().map(|c| c.node.len()).max().unwrap_or(0);
    let mut lines = vec![format!(
        "coverage: {answered} of {} regions answered",
        coverage.len()
    )];
    for peer in coverage {
        let status = status_name(peer.status);
        let line = if peer.reason.is_empty() {
            format!("  {:<width$}  {status}", peer.node)
        } else {
            format!("  {:<width$}  {status}: {}", peer.node, peer.reason)
        };
        lines.push(line);
    }
    lines
}

fn status_name(status: i32) -> &'static str {
    use pb::peer_status::Status;
    match Status::try_from(status) {
        Ok(Status::Answered) => "answered",
        Ok(Status::Refused) => "refused",
        Ok(Status::Unreachable) => "unreachable",
        Ok(Status::TimedOut) => "timed out",
        _ => "unknown",
    }
}

/// A federated answer as JSON: the result plus its coverage.
pub fn federated_json(answer: &pb::FederatedResult) -> serde_json::Value {
    let mut value = answer.result.as_ref().map_or(serde_json::json!({}), json);
    let coverage: Vec<serde_json::Value> = answer
        .coverage
        .iter()
        .map(|c| serde_json::json!({"node": c.node, "status": status_name(c.status), "reason": c.reason}))
        .collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("coverage".to_owned(), serde_json::Value::Array(coverage));
        object.insert("trace_id".to_owned(), answer.trace_id.clone().into());
    }
    value
}

/// Renders a federated answer in `format`: the merged result, then its coverage (for CSV the
/// coverage goes with the footer to stderr, see [`footer`]).
pub fn render_federated(answer: &pb::FederatedResult, format: Format) -> String {
    let result = answer.result.clone().unwrap_or_default();
    match format {
        Format::Json => federated_json(answer).to_string(),
        Format::Csv => render(&result, format),
        Format::Table => {
            let mut out = render(&result, format);
            for line in coverage_lines(answer) {
                out.push_str(&line);
                out.push('\n');
            }
            out
        }
    }
}

/// Renders `result` in `format`.
pub fn render(result: &pb::ProtectedResult, format: Format) -> String {
    match format {
        Format::Table => table(result),
        Format::Csv => csv(result),
        Format::Json => json(result).to_string(),
    }
}

fn table(result: &pb::ProtectedResult) -> String {
    let header = header(result);
    let lines = lines(result);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &lines {
        for (i, cell) in line.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let dimensions = result.dimensions.len();
    let format_line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i > 0 {
                text.push_str("  ");
            }
            // Keys left-aligned, figures right-aligned.
            if i < dimensions {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "{cell:>width$}");
            }
        }
        text.trim_end().to_owned()
    };
    let mut out = format!("{} (v{})\n", result.template, result.template_version);
    out.push_str(&format_line(&header));
    out.push('\n');
    for line in &lines {
        out.push_str(&format_line(line));
        out.push('\n');
    }
    for line in footer(result) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv(result: &pb::ProtectedResult) -> String {
    let mut out = String::new();
    for line in std::iter::once(header(result)).chain(lines(result)) {
        let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

fn cell_json(cell: Option<&pb::CellValue>) -> serde_json::Value {
    use pb::cell_value::Value;
    use serde_json::json;
    let Some(cell) = cell else {
        return serde_json::Value::Null;
    };
    match &cell.value {
        Some(Value::Exact(n)) if cell.rounding_base > 0 => {
            json!({"value": n, "rounded_to": cell.rounding_base})
        }
        Some(Value::Exact(n)) => json!({"value": n}),
        Some(Value::Small(small)) => json!({"below": small.threshold}),
        Some(Value::Interval(interval)) => json!({"low": interval.low, "high": interval.high}),
        Some(Value::Suppressed(_)) => json!({"suppressed": true}),
        None => serde_json::Value::Null,
    }
}

/// The result as JSON: rows with their keys by dimension, cells as objects.
pub fn json(result: &pb::ProtectedResult) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|row| {
            let mut key = Map::new();
            for (dimension, value) in result.dimensions.iter().zip(&row.key) {
                key.insert(dimension.clone(), Value::String(value.clone()));
            }
            let mut statistics = Map::new();
            for statistic in &row.statistics {
                statistics.insert(
                    statistic.name.clone(),
                    statistic.value.map_or(Value::Null, |v| json!(v)),
                );
            }
            json!({"key": key, "count": cell_json(row.count.as_ref()), "statistics": statistics})
        })
        .collect();
    json!({
        "template": result.template,
        "template_version": result.template_version,
        "dimensions": result.dimensions,
        "rows": rows,
        "total": cell_json(result.total.as_ref()),
        "rules_applied": result.rules_applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: pb::cell_value::Value) -> Option<pb::CellValue> {
        Some(pb::CellValue {
            value: Some(value),
            rounding_base: 0,
        })
    }

    fn sample() -> pb::ProtectedResult {
        use pb::cell_value::Value;
        let row = |key: &str, value| pb::ResultRow {
            key: vec![key.to_owned()],
            count: cell(value),
            statistics: Vec::new(),
        };
        pb::ProtectedResult {
            template: "youth_in_care".to_owned(),
            template_version: 1,
            dimensions: vec!["stay_group".to_owned()],
            rows: vec![
                row("pleegzorg", Value::Exact(120)),
                row(
                    "jeugdhulp_plus",
                    Value::Small(pb::SmallCell { threshold: 10 }),
                ),
                row("andere_verblijfzorg", Value::Suppressed(pb::Suppressed {})),
            ],
            total: cell(Value::Exact(163)),
            rules_applied: vec!["min-cell-count 10".to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn table_marks_suppressed_cells_and_names_the_rules() {
        let text = render(&sample(), Format::Table);
        assert_eq!(
            text,
            "youth_in_care (v1)\n\
             stay_group           youths\n\
             pleegzorg               120\n\
             jeugdhulp_plus          <10\n\
             andere_verblijfzorg       x\n\
             total: 163\n\
             <n = fewer than n youths (zeros too)\n\
             x = suppressed to protect another cell\n\
             rules: min-cell-count 10\n"
        );
    }

    #[test]
    fn csv_and_json_carry_the_same_cells() {
        assert_eq!(
            render(&sample(), Format::Csv),
            "stay_group,youths\npleegzorg,120\njeugdhulp_plus,<10\nandere_verblijfzorg,x\n"
        );
        let value = json(&sample());
        assert_eq!(value["rows"][1]["count"]["below"], 10);
        assert_eq!(value["rows"][2]["count"]["suppressed"], true);
        assert_eq!(value["total"]["value"], 163);
    }
}
