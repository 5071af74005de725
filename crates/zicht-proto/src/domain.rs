//! The wire and the domain, once, beside the generated types: a released [`Table`] as the
//! `ProtectedResult` that leaves a node, and a `ProtectedResult` read back into a [`Table`]
//! only if it answers what was asked; published counts as cells; dates. The node and every
//! client convert through here.

use chrono::Datelike;
use zicht_model::{
    CodeList, Dimension, FieldValue, NaiveDate, Published, Record, RecordKind, Row, Statistic,
    Table, Template, DATE_RANGE,
};

use crate::v1 as pb;

/// Why a wire date is no date zicht takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadDate {
    /// No such day.
    #[error("not a valid calendar date")]
    NoSuchDay,
    /// A real day outside [`DATE_RANGE`].
    #[error("dates run from {} to {}", DATE_RANGE.0, DATE_RANGE.1)]
    OutOfRange,
}

/// A real calendar date from the wire, within [`DATE_RANGE`].
pub fn to_date(date: &pb::Date) -> Result<NaiveDate, BadDate> {
    let month = u32::try_from(date.month).unwrap_or(0);
    let day = u32::try_from(date.day).unwrap_or(0);
    let date = NaiveDate::from_ymd_opt(date.year, month, day).ok_or(BadDate::NoSuchDay)?;
    let (first, last) = DATE_RANGE;
    if date < first || date > last {
        return Err(BadDate::OutOfRange);
    }
    Ok(date)
}

/// A date for the wire.
pub fn from_date(date: NaiveDate) -> pb::Date {
    pb::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// A calendar year as a wire period.
pub fn calendar_year(year: i32) -> pb::Period {
    pb::Period {
        from: Some(pb::Date {
            year,
            month: 1,
            day: 1,
        }),
        to: Some(pb::Date {
            year,
            month: 12,
            day: 31,
        }),
    }
}

/// What a wire cell says about its count; `None` for a cell with no value.
pub fn published(cell: &pb::CellValue) -> Option<Published> {
    use pb::cell_value::Value;
    match cell.value.as_ref()? {
        Value::Exact(n) => Some(Published::exact(*n)),
        Value::Perturbed(p) => Some(Published {
            value: p.value,
            max_deviation: p.max_deviation,
            variance_centi: p.variance_centi,
        }),
    }
}

/// A published count as a wire cell: exact when its bound is 0.
fn cell(count: Published) -> pb::CellValue {
    use pb::cell_value::Value;
    pb::CellValue {
        value: Some(if count.is_exact() {
            Value::Exact(count.value)
        } else {
            Value::Perturbed(pb::Perturbed {
                value: count.value,
                max_deviation: count.max_deviation,
                variance_centi: count.variance_centi,
            })
        }),
    }
}

/// A table as it leaves the node.
pub fn result(table: &Table) -> pb::ProtectedResult {
    pb::ProtectedResult {
        template: table.template.code().to_owned(),
        template_version: table.template.version(),
        dimensions: codes(&table.dimensions),
        rows: table
            .rows
            .iter()
            .map(|row| pb::ResultRow {
                key: row.key.clone(),
                count: Some(cell(row.count)),
                statistics: row
                    .statistics
                    .iter()
                    .map(|s| pb::Statistic {
                        name: s.name.clone(),
                        value: s.value,
                    })
                    .collect(),
            })
            .collect(),
        total: Some(cell(table.total)),
        rules_applied: table.rules.clone(),
        placements: table
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Placement)
            .map(placement_message)
            .collect(),
        transition18: table
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::Transition18)
            .map(check_message)
            .collect(),
        capacity: Vec::new(),
    }
}

/// The value of `field` in `record`, if it was released.
fn value<'a>(record: &'a Record, field: &str) -> Option<&'a FieldValue> {
    record
        .fields
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, value)| value)
}

fn text(record: &Record, field: &str) -> Option<String> {
    value(record, field).map(ToString::to_string)
}

fn day(record: &Record, field: &str) -> Option<pb::Date> {
    match value(record, field)? {
        FieldValue::Date(date) => Some(from_date(*date)),
        _ => None,
    }
}

fn flag(record: &Record, field: &str) -> Option<bool> {
    match value(record, field)? {
        FieldValue::Flag(flag) => Some(*flag),
        _ => None,
    }
}

/// A released placement as it leaves: only its released fields are set.
fn placement_message(record: &Record) -> pb::Placement {
    pb::Placement {
        youth_id: record.subject.clone(),
        birth_date: day(record, "birth_date"),
        origin_region: text(record, "origin_region"),
        origin_municipality: text(record, "origin_municipality"),
        provider: text(record, "provider"),
        location_municipality: text(record, "location_municipality"),
        placement_region: text(record, "placement_region"),
        care_type: text(record, "care_type"),
        setting: text(record, "setting"),
        legal_basis: text(record, "legal_basis"),
        start_date: day(record, "start_date"),
        end_date: day(record, "end_date"),
        outflow_destination: text(record, "outflow_destination"),
        outflow_profile: match value(record, "outflow_profile") {
            Some(FieldValue::Number(n)) => Some(*n),
            _ => None,
        },
        source: record.source.clone(),
    }
}

/// A released transition check as it leaves: only its released fields are set.
fn check_message(record: &Record) -> pb::Transition18Check {
    pb::Transition18Check {
        youth_id: record.subject.clone(),
        check_date: day(record, "check_date"),
        toekomstplan: flag(record, "toekomstplan"),
        lokaal_team: flag(record, "lokaal_team"),
        clientondersteuner: flag(record, "clientondersteuner"),
        after18_funding: text(record, "after18_funding"),
        big5_support: text(record, "big5_support"),
        big5_wonen: text(record, "big5_wonen"),
        big5_werk_school: text(record, "big5_werk_school"),
        big5_inkomen_schulden: text(record, "big5_inkomen_schulden"),
        big5_zorg_ondersteuning: text(record, "big5_zorg_ondersteuning"),
        uit_beeld: flag(record, "uit_beeld"),
        source: record.source.clone(),
    }
}

/// The fields a peer's record sets, in column order; a date that is no real date, or a
/// subject that is no id or pseudonym, makes it no answer.
struct Fields {
    fields: Vec<(&'static str, FieldValue)>,
}

impl Fields {
    fn text(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.fields
                .push((name, FieldValue::Text(value.chars().take(200).collect())));
        }
        self
    }

    fn day(mut self, name: &'static str, value: Option<pb::Date>) -> Result<Self, Mismatch> {
        if let Some(date) = value {
            let date = to_date(&date).map_err(|_| Mismatch("a record date that is no date"))?;
            self.fields.push((name, FieldValue::Date(date)));
        }
        Ok(self)
    }

    fn flag(mut self, name: &'static str, value: Option<bool>) -> Self {
        if let Some(value) = value {
            self.fields.push((name, FieldValue::Flag(value)));
        }
        self
    }
}

fn subject(youth_id: String) -> Result<String, Mismatch> {
    zicht_model::YouthId::parse(&youth_id)
        .map(|_| youth_id)
        .map_err(|_| Mismatch("a record without a valid youth id or pseudonym"))
}

/// A peer's placement as a record (the Outway sets its source to the node it asked, whatever
/// the node says).
fn placement_record(p: pb::Placement) -> Result<Record, Mismatch> {
    let fields = Fields { fields: Vec::new() }.day("birth_date", p.birth_date)?;
    let fields = fields
        .text("origin_region", p.origin_region)
        .text("origin_municipality", p.origin_municipality)
        .text("provider", p.provider)
        .text("location_municipality", p.location_municipality)
        .text("placement_region", p.placement_region)
        .text("care_type", p.care_type)
        .text("setting", p.setting)
        .text("legal_basis", p.legal_basis)
        .day("start_date", p.start_date)?
        .day("end_date", p.end_date)?
        .text("outflow_destination", p.outflow_destination);
    let mut fields = fields.fields;
    if let Some(profile) = p.outflow_profile {
        fields.push(("outflow_profile", FieldValue::Number(profile)));
    }
    Ok(Record {
        kind: RecordKind::Placement,
        subject: subject(p.youth_id)?,
        source: p.source.chars().take(64).collect(),
        fields,
    })
}

/// A peer's transition check as a record.
fn check_record(c: pb::Transition18Check) -> Result<Record, Mismatch> {
    let fields = Fields { fields: Vec::new() }
        .day("check_date", c.check_date)?
        .flag("toekomstplan", c.toekomstplan)
        .flag("lokaal_team", c.lokaal_team)
        .flag("clientondersteuner", c.clientondersteuner)
        .text("after18_funding", c.after18_funding)
        .text("big5_support", c.big5_support)
        .text("big5_wonen", c.big5_wonen)
        .text("big5_werk_school", c.big5_werk_school)
        .text("big5_inkomen_schulden", c.big5_inkomen_schulden)
        .text("big5_zorg_ondersteuning", c.big5_zorg_ondersteuning)
        .flag("uit_beeld", c.uit_beeld);
    Ok(Record {
        kind: RecordKind::Transition18,
        subject: subject(c.youth_id)?,
        source: c.source.chars().take(64).collect(),
        fields: fields.fields,
    })
}

/// The wire result of a federated query no targeted node answered: no rows and no total
/// (never a total of 0), and the rule that says why.
pub fn unanswered(template: Template, dimensions: &[Dimension]) -> pb::ProtectedResult {
    pb::ProtectedResult {
        template: template.code().to_owned(),
        template_version: template.version(),
        dimensions: codes(dimensions),
        rules_applied: vec!["no targeted node answered".to_owned()],
        ..Default::default()
    }
}

fn codes(dimensions: &[Dimension]) -> Vec<String> {
    dimensions.iter().map(|d| d.code().to_owned()).collect()
}

/// Why a node's answer cannot be merged (a wrong or tampered answer). Never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its answer does not match the request: {0}")]
pub struct Mismatch(pub &'static str);

/// A peer's answer as a table, if it answers `template` grouped by `dimensions` with known
/// codes, a value in every cell and a total.
pub fn table(
    result: pb::ProtectedResult,
    template: Template,
    dimensions: &[Dimension],
) -> Result<Table, Mismatch> {
    if result.template != template.code() {
        return Err(Mismatch("another template"));
    }
    if result.dimensions != codes(dimensions) {
        return Err(Mismatch("other dimensions"));
    }
    let total = result
        .total
        .as_ref()
        .and_then(published)
        .ok_or(Mismatch("no total"))?;
    let rows = result
        .rows
        .into_iter()
        .map(|row| answer_row(row, dimensions))
        .collect::<Result<Vec<Row>, Mismatch>>()?;
    let has_records = !result.placements.is_empty() || !result.transition18.is_empty();
    if has_records && template != Template::ConsentedRecords {
        return Err(Mismatch("records in an answer of counts"));
    }
    let mut records = result
        .placements
        .into_iter()
        .map(placement_record)
        .collect::<Result<Vec<Record>, Mismatch>>()?;
    for check in result.transition18 {
        records.push(check_record(check)?);
    }
    Ok(Table {
        template,
        dimensions: dimensions.to_vec(),
        rows,
        total,
        rules: result.rules_applied,
        records,
    })
}

/// One row of a peer's answer, if it has the table's shape.
fn answer_row(row: pb::ResultRow, dimensions: &[Dimension]) -> Result<Row, Mismatch> {
    let shape = Mismatch("a row of another shape");
    let count = row
        .count
        .as_ref()
        .and_then(published)
        .ok_or(shape.clone())?;
    if row.key.len() != dimensions.len() {
        return Err(shape);
    }
    for (value, dimension) in row.key.iter().zip(dimensions) {
        if let Some(domain) = dimension.domain() {
            if !domain.contains(&value.as_str()) {
                return Err(Mismatch("a value outside the code list"));
            }
        }
    }
    Ok(Row {
        key: row.key,
        count,
        statistics: row
            .statistics
            .into_iter()
            .map(|s| Statistic {
                name: s.name,
                value: s.value,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> pb::ProtectedResult {
        result(&Table {
            template: Template::YouthInCare,
            dimensions: vec![Dimension::CareType],
            rows: vec![Row {
                key: vec!["pleegzorg".to_owned()],
                count: Published::perturbed(12, 3, 2.0),
                statistics: vec![],
            }],
            total: Published::perturbed(12, 3, 2.0),
            rules: vec![],
            records: vec![],
        })
    }

    #[test]
    fn a_table_round_trips_and_answers_of_another_shape_are_refused() {
        let good = answer();
        let read = table(good.clone(), Template::YouthInCare, &[Dimension::CareType]).unwrap();
        assert_eq!(result(&read), good);
        assert!(table(good.clone(), Template::Flows, &[Dimension::CareType]).is_err());
        assert!(table(good.clone(), Template::YouthInCare, &[]).is_err());
        let mut bad = good.clone();
        bad.rows[0].key[0] = "nonsense".to_owned();
        assert!(table(bad, Template::YouthInCare, &[Dimension::CareType]).is_err());
        let mut empty = good.clone();
        empty.rows[0].count = Some(pb::CellValue { value: None });
        assert!(table(empty, Template::YouthInCare, &[Dimension::CareType]).is_err());
        let mut no_total = good;
        no_total.total = None;
        assert_eq!(
            table(no_total, Template::YouthInCare, &[Dimension::CareType]),
            Err(Mismatch("no total"))
        );
    }
}
