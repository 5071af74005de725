//! The node's gRPC edge, the one place where wire types and domain types meet: a wire
//! `QueryRequest` becomes a domain [`Query`] here, once, with one error that names the field;
//! a domain [`Table`] becomes a `ProtectedResult` here, and a peer's `ProtectedResult` is read
//! back into a [`Table`] only if it answers what was asked. Nothing behind this module reads a
//! wire message (the audit log keeps the request's own text, shortened, and its hash as it
//! came: [`RequestText`]).

use chrono::Datelike;
use zicht_model::{
    CodeList, Dimension, FieldValue, Filter, NaiveDate, Published, Purpose, Query, Record,
    RecordKind, Row, Scope, Statistic, Table, Template, DATE_RANGE,
};
use zicht_proto::v1 as pb;

use crate::error::Error;
use crate::policy::Denied;

/// What policy judges a request by: its template, purpose, the dimensions it groups and
/// filters by, and (records) the fields it asks for. Checked before the rest of the request
/// ([`complete`]), so a caller without a grant learns only that.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) template: Template,
    pub(crate) purpose: Purpose,
    pub(crate) group_by: Vec<Dimension>,
    pub(crate) filters: Vec<Filter>,
    pub(crate) fields: Vec<&'static str>,
    pub(crate) by_member: bool,
}

impl Asked {
    /// The dimensions it filters on.
    pub(crate) fn filter_dimensions(&self) -> Vec<Dimension> {
        self.filters.iter().map(|f| f.dimension).collect()
    }
}

/// The domain query of a wire request: a known template (at its version), a registered
/// purpose, the scope the template needs with real dates in [`DATE_RANGE`], filters and
/// group-by dimensions of the template.
pub fn query(request: &pb::QueryRequest) -> Result<Query, Error> {
    complete(asked(request)?, request)
}

/// The parts of a request policy judges.
pub(crate) fn asked(request: &pb::QueryRequest) -> Result<Asked, Error> {
    let (template, purpose) = template_and_purpose(request)?;
    let (by_member, group_by) = group_by(template, request)?;
    Ok(Asked {
        template,
        purpose,
        group_by,
        filters: filters(template, request)?,
        fields: fields(template, request)?,
        by_member,
    })
}

/// The record fields asked for: `consented_records` only, each once, from the consent
/// field list (an unknown one is named: field names are no data).
fn fields(template: Template, request: &pb::QueryRequest) -> Result<Vec<&'static str>, Error> {
    if template != Template::ConsentedRecords {
        if request.fields.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::Invalid(format!(
            "template {template} takes no fields; fields are for consented_records"
        )));
    }
    let known = zicht_model::Consent::field_list();
    let mut fields = Vec::with_capacity(request.fields.len());
    for name in &request.fields {
        let field = known.iter().find(|f| **f == name.as_str()).ok_or_else(|| {
            let shown: String = name.chars().take(64).collect();
            Error::Invalid(format!(
                "fields: `{shown}` is not a field of placements or transition18; the fields are {}",
                known.join(", ")
            ))
        })?;
        if fields.contains(field) {
            return Err(Error::Invalid(format!("fields names {field} twice")));
        }
        fields.push(*field);
    }
    Ok(fields)
}

/// The whole query, once policy let `asked` through: its scope, and the template's own rules.
pub(crate) fn complete(asked: Asked, request: &pb::QueryRequest) -> Result<Query, Error> {
    if asked.template == Template::Capacity && !asked.filters.is_empty() {
        return Err(Error::Invalid(
            "capacity takes no filters; group by the dimension instead".to_owned(),
        ));
    }
    if asked.template == Template::ConsentedRecords
        && (!asked.filters.is_empty() || !asked.group_by.is_empty())
    {
        return Err(Error::Invalid(
            "consented_records takes no group-by or filters: it gives every record consented to you for the purpose".to_owned(),
        ));
    }
    Ok(Query {
        scope: scope(asked.template, request)?,
        template: asked.template,
        purpose: asked.purpose,
        filters: asked.filters,
        group_by: asked.group_by,
        fields: asked.fields,
        by_member: asked.by_member,
    })
}

/// The template (at the asked version) and the purpose, from the catalogue and the register.
fn template_and_purpose(request: &pb::QueryRequest) -> Result<(Template, Purpose), Error> {
    let template =
        Template::from_code(&request.template).ok_or_else(|| Denied::UnknownTemplate {
            hint: crate::policy::hint::<Template>(&request.template, "template"),
        })?;
    if request.template_version != 0 && request.template_version != template.version() {
        return Err(Error::Invalid(format!(
            "template {template} has version {}, not {}",
            template.version(),
            request.template_version
        )));
    }
    if request.purpose.is_empty() {
        return Err(Denied::NoPurpose.into());
    }
    let purpose = Purpose::from_code(&request.purpose).ok_or_else(|| Denied::UnknownPurpose {
        hint: crate::policy::hint::<Purpose>(&request.purpose, "registered purpose"),
    })?;
    Ok((template, purpose))
}

/// The group-by dimensions: the template's, each once, in order; and whether `member_region`
/// came first (a listing per member by the asking node, not a grouping of the data).
fn group_by(
    template: Template,
    request: &pb::QueryRequest,
) -> Result<(bool, Vec<Dimension>), Error> {
    let member = Dimension::MemberRegion.code();
    let by_member = request.group_by.first().is_some_and(|name| name == member);
    let names = &request.group_by[usize::from(by_member)..];
    if names.iter().any(|name| name == member) {
        return Err(Error::Invalid(
            "member_region comes first in the group-by, once".to_owned(),
        ));
    }
    if by_member && template == Template::ConsentedRecords {
        return Err(Error::Invalid(format!(
            "template {template} is not listed per member"
        )));
    }
    let mut group_by = Vec::with_capacity(names.len());
    for name in names {
        let dimension = Dimension::from_code(name)
            .filter(|d| template.dimensions().contains(d))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "template {template} cannot group by this dimension"
                ))
            })?;
        if group_by.contains(&dimension) {
            return Err(Error::Invalid(format!("group_by names {dimension} twice")));
        }
        group_by.push(dimension);
    }
    Ok((by_member, group_by))
}

/// The filters: dimensions of the template, each once, values from the dimension's code list,
/// folded as the import folds codes (`Open Residentieel` is `open_residentieel`).
fn filters(template: Template, request: &pb::QueryRequest) -> Result<Vec<Filter>, Error> {
    let mut checked: Vec<Filter> = Vec::new();
    for (position, filter) in request.filters.iter().enumerate() {
        let invalid = |what: &str| Error::Invalid(format!("filter {}: {what}", position + 1));
        let dimension = Dimension::from_code(&filter.dimension)
            .filter(|d| template.dimensions().contains(d))
            .ok_or_else(|| {
                invalid(&format!(
                    "template {template} cannot filter by this dimension"
                ))
            })?;
        if checked.iter().any(|f| f.dimension == dimension) {
            return Err(invalid(&format!("{dimension} is filtered twice")));
        }
        let mut values: Vec<String> = Vec::with_capacity(filter.values.len());
        for value in &filter.values {
            let value = dimension
                .value(value)
                .map_err(|unknown| invalid(&unknown.to_string()))?;
            if !values.contains(&value) {
                values.push(value);
            }
        }
        if values.is_empty() {
            return Err(invalid("no values"));
        }
        checked.push(Filter {
            dimension,
            values,
            exclude: filter.exclude,
        });
    }
    Ok(checked)
}

/// The scope the template needs: a peildatum for `capacity` and `transition18`, an ordered
/// period for the others.
fn scope(template: Template, request: &pb::QueryRequest) -> Result<Scope, Error> {
    use pb::query_request::Scope as S;
    let needs = |what: &str| Error::Invalid(format!("template {template} needs {what}"));
    match (template, &request.scope) {
        (_, Some(S::Peildatum(date))) if template.takes_peildatum() => {
            Ok(Scope::Peildatum(to_date(date, "peildatum")?))
        }
        (_, _) if template.takes_peildatum() => Err(needs("a peildatum")),
        // Records are released as consents hold at the moment of the request: the scope is
        // today (network membership is taken then), whatever the request says.
        (Template::ConsentedRecords, _) => Ok(Scope::Peildatum(chrono::Utc::now().date_naive())),
        (_, Some(S::Period(period))) => {
            let from = period
                .from
                .as_ref()
                .ok_or_else(|| needs("a period start"))?;
            let to = period.to.as_ref().ok_or_else(|| needs("a period end"))?;
            let (from, to) = (to_date(from, "period.from")?, to_date(to, "period.to")?);
            if from > to {
                return Err(needs("a period whose first day is not after its last"));
            }
            Ok(Scope::Period { from, to })
        }
        _ => Err(needs("a period")),
    }
}

/// A real calendar date from the wire, within [`DATE_RANGE`]; `field` names it in the error.
pub fn to_date(date: &pb::Date, field: &str) -> Result<NaiveDate, Error> {
    let month = u32::try_from(date.month).unwrap_or(0);
    let day = u32::try_from(date.day).unwrap_or(0);
    let date = NaiveDate::from_ymd_opt(date.year, month, day)
        .ok_or_else(|| Error::Invalid(format!("{field}: not a valid calendar date")))?;
    let (first, last) = DATE_RANGE;
    if date < first || date > last {
        return Err(Error::Invalid(format!(
            "{field}: dates run from {first} to {last}"
        )));
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

/// What the audit log keeps of a request as it came, valid or not: the caller's own text for
/// template, purpose and grouping (shortened; it may be anything), the version asked, and the
/// SHA-256 of the whole request as it was encoded (the processing record's parameter hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestText {
    /// The template code as asked.
    pub template: String,
    /// The purpose code as asked.
    pub purpose: String,
    /// The group-by dimensions as asked, comma separated.
    pub group_by: String,
    /// The template version asked (0: the current one).
    pub template_version: u32,
    /// SHA-256 of the encoded request, hex.
    pub parameter_hash: String,
}

impl RequestText {
    /// The log's text of `request`.
    pub fn of(request: &pb::QueryRequest) -> RequestText {
        RequestText {
            template: request.template.chars().take(64).collect(),
            purpose: request.purpose.chars().take(64).collect(),
            group_by: request.group_by.join(",").chars().take(64).collect(),
            template_version: request.template_version,
            parameter_hash: hex::encode(request_digest(request)),
        }
    }
}

/// SHA-256 of a request as it is encoded: the log's parameter hash (in hex), and what a
/// person's delegation names.
pub fn request_digest(request: &pb::QueryRequest) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(prost::Message::encode_to_vec(request)).into()
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
            let date =
                to_date(&date, name).map_err(|_| Mismatch("a record date that is no date"))?;
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

    fn date(year: i32, month: i32, day: i32) -> pb::Date {
        pb::Date { year, month, day }
    }

    fn request(scope: pb::query_request::Scope) -> pb::QueryRequest {
        pb::QueryRequest {
            template: "youth_in_care".to_owned(),
            purpose: "bovenregionale-sturing".to_owned(),
            scope: Some(scope),
            group_by: vec!["stay_group".to_owned()],
            ..Default::default()
        }
    }

    #[test]
    fn a_request_becomes_a_query_once_with_real_dates_in_range() {
        let period = |from, to| {
            pb::query_request::Scope::Period(pb::Period {
                from: Some(from),
                to: Some(to),
            })
        };
        let query = super::query(&request(period(date(2024, 1, 1), date(2024, 12, 31)))).unwrap();
        assert_eq!(query.group_by, vec![Dimension::StayGroup]);
        assert_eq!(
            query.scope.reference_date(),
            NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()
        );
        let message = |scope| super::query(&request(scope)).unwrap_err().to_string();
        assert_eq!(
            message(period(date(2021, 1, 1), date(10000, 1, 1))),
            "period.to: dates run from 1900-01-01 to 2100-12-31"
        );
        assert_eq!(
            message(period(date(2024, 2, 30), date(2024, 12, 31))),
            "period.from: not a valid calendar date"
        );
        assert_eq!(
            message(period(date(2024, 2, 1), date(2024, 1, 31))),
            "template youth_in_care needs a period whose first day is not after its last"
        );
        assert_eq!(
            message(pb::query_request::Scope::Peildatum(date(2024, 1, 1))),
            "template youth_in_care needs a period"
        );
    }

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
