//! Printing consented records: one table per kind (placements, transition checks) with only
//! the columns released, the source region of each record, and the youth as the recipient
//! may see them (their id where the consent lists it, otherwise a pseudonym for the
//! recipient); CSV with a `table` column; JSON with one object per record.

use std::fmt::Write as _;

use zicht_model::{Consent, Record, RecordKind, Table, Template};
use zicht_proto::v1 as pb;

use crate::format::{csv_field, Format};

/// The records of a `consented_records` result, as the node's edge reads them.
pub fn records(result: &pb::ProtectedResult) -> Vec<Record> {
    zicht_proto::domain::table(result.clone(), Template::ConsentedRecords, &[])
        .map(|table: Table| table.records)
        .unwrap_or_default()
}

fn kind_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Placement => "placements",
        RecordKind::Transition18 => "transition18",
    }
}

/// The released columns of `records`, in field-list order.
fn columns(records: &[&Record]) -> Vec<&'static str> {
    Consent::field_list()
        .into_iter()
        .filter(|field| {
            records
                .iter()
                .any(|r| r.fields.iter().any(|(f, _)| f == field))
        })
        .collect()
}

fn cell(record: &Record, field: &str) -> String {
    record
        .fields
        .iter()
        .find(|(f, _)| *f == field)
        .map_or_else(String::new, |(_, value)| value.to_string())
}

/// Renders the records of `result` in `format`, with the result's rules.
pub fn render(result: &pb::ProtectedResult, format: Format) -> String {
    let records = records(result);
    match format {
        Format::Table => table(&records, &result.rules_applied),
        Format::Csv => csv(&records),
        Format::Json => json(result, &records).to_string(),
    }
}

fn table(records: &[Record], rules: &[String]) -> String {
    let mut out = "consented_records (v1)\n".to_owned();
    for kind in [RecordKind::Placement, RecordKind::Transition18] {
        let of_kind: Vec<&Record> = records.iter().filter(|r| r.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let fields = columns(&of_kind);
        let mut head = vec!["source".to_owned(), "youth".to_owned()];
        head.extend(fields.iter().map(|f| (*f).to_owned()));
        let lines: Vec<Vec<String>> = of_kind
            .iter()
            .map(|record| {
                let mut line = vec![record.source.clone(), record.subject.clone()];
                line.extend(fields.iter().map(|f| cell(record, f)));
                line
            })
            .collect();
        let mut widths: Vec<usize> = head.iter().map(String::len).collect();
        for line in &lines {
            for (width, text) in widths.iter_mut().zip(line) {
                *width = (*width).max(text.chars().count());
            }
        }
        let _ = writeln!(out, "{} ({})", kind_name(kind), of_kind.len());
        for line in std::iter::once(&head).chain(&lines) {
            let text: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(text, width)| format!("{text:<width$}"))
                .collect();
            let _ = writeln!(out, "  {}", text.join("  ").trim_end());
        }
    }
    let _ = writeln!(out, "total: {} records", records.len());
    if records.is_empty() {
        out.push_str("no records: no youth's consent names you for this purpose now\n");
    }
    let _ = writeln!(out, "rules: {}", rules.join("; "));
    out
}

fn csv(records: &[Record]) -> String {
    let all: Vec<&Record> = records.iter().collect();
    let fields = columns(&all);
    let mut out = String::from("table,source,youth");
    for field in &fields {
        out.push(',');
        out.push_str(field);
    }
    out.push('\n');
    for record in records {
        let mut line = vec![
            kind_name(record.kind).to_owned(),
            record.source.clone(),
            record.subject.clone(),
        ];
        line.extend(fields.iter().map(|f| cell(record, f)));
        let quoted: Vec<String> = line.iter().map(|text| csv_field(text)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    out
}

fn json(result: &pb::ProtectedResult, records: &[Record]) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut fields = Map::new();
            for (name, value) in &record.fields {
                let value = match value {
                    zicht_model::FieldValue::Flag(flag) => Value::Bool(*flag),
                    zicht_model::FieldValue::Number(n) => json!(n),
                    other => Value::String(other.to_string()),
                };
                fields.insert((*name).to_owned(), value);
            }
            json!({
                "table": kind_name(record.kind),
                "source": record.source,
                "youth": record.subject,
                "fields": fields,
            })
        })
        .collect();
    json!({
        "template": result.template,
        "template_version": result.template_version,
        "records": records,
        "total": records.len(),
        "rules_applied": result.rules_applied,
    })
}
