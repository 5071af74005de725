//! The node's gRPC edge, the one place where wire types and domain types meet: a wire
//! `QueryRequest` becomes a domain [`Query`] here, once, with one error that names the field;
//! a domain [`Table`] becomes a `ProtectedResult` here, and a peer's `ProtectedResult` is read
//! back into a [`Table`] only if it answers what was asked. Nothing behind this module reads a
//! wire message (the audit log keeps the request's own text, shortened, and its hash as it
//! came: [`RequestText`]).

use chrono::Datelike;
use zicht_model::{
    CodeList, Dimension, Filter, NaiveDate, Published, Purpose, Query, Row, Scope, Statistic,
    Table, Template, DATE_RANGE,
};
use zicht_proto::v1 as pb;

use crate::error::Error;
use crate::policy::Denied;

/// What policy judges a request by: its template, purpose, and the dimensions it groups and
/// filters by. Checked before the rest of the request ([`complete`]), so a caller without a
/// grant learns only that.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    pub(crate) template: Template,
    pub(crate) purpose: Purpose,
    pub(crate) group_by: Vec<Dimension>,
    pub(crate) filters: Vec<Filter>,
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
    Ok(Asked {
        template,
        purpose,
        group_by: group_by(template, request)?,
        filters: filters(template, request)?,
    })
}

/// The whole query, once policy let `asked` through: its scope, and the template's own rules.
pub(crate) fn complete(asked: Asked, request: &pb::QueryRequest) -> Result<Query, Error> {
    if asked.template == Template::Capacity && !asked.filters.is_empty() {
        return Err(Error::Invalid(
            "capacity takes no filters; group by the dimension instead".to_owned(),
        ));
    }
    Ok(Query {
        scope: scope(asked.template, request)?,
        template: asked.template,
        purpose: asked.purpose,
        filters: asked.filters,
        group_by: asked.group_by,
    })
}

/// The template (at the asked version) and the purpose, from the catalogue and the register.
fn template_and_purpose(request: &pb::QueryRequest) -> Result<(Template, Purpose), Error> {
    let template =
        Template::from_code(&request.template).ok_or_else(|| Denied::UnknownTemplate {
            closest: Template::parse(&request.template)
                .map(|t| t.code())
                .unwrap_or_else(|e| e.closest),
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
        closest: Purpose::parse(&request.purpose)
            .map(|p| p.code())
            .unwrap_or_else(|e| e.closest),
    })?;
    Ok((template, purpose))
}

/// The group-by dimensions: the template's, each once, in order.
fn group_by(template: Template, request: &pb::QueryRequest) -> Result<Vec<Dimension>, Error> {
    let mut group_by = Vec::with_capacity(request.group_by.len());
    for name in &request.group_by {
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
    Ok(group_by)
}

/// The filters: dimensions of the template, each once, values from the dimension's code list.
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
        let domain = dimension.domain().unwrap_or_default();
        let mut values: Vec<String> = Vec::with_capacity(filter.values.len());
        for value in &filter.values {
            if !domain.contains(&value.as_str()) {
                return Err(invalid(&format!("a value is not a {dimension} code")));
            }
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        if values.is_empty() {
            return Err(invalid("no values"));
        }
        checked.push(Filter { dimension, values });
    }
    Ok(checked)
}

/// The scope the template needs: a peildatum for `capacity` and `transition18`, an ordered
/// period for the others.
fn scope(template: Template, request: &pb::QueryRequest) -> Result<Scope, Error> {
    use pb::query_request::Scope as S;
    let needs = |what: &str| Error::Invalid(format!("template {template} needs {what}"));
    match (template, &request.scope) {
        (Template::Capacity | Template::Transition18, Some(S::Peildatum(date))) => {
            Ok(Scope::Peildatum(to_date(date, "peildatum")?))
        }
        (Template::Capacity | Template::Transition18, _) => Err(needs("a peildatum")),
        // Not executable yet (issue 14 gives it its scope): any scope, or none, is taken.
        (Template::ConsentedRecords, _) => Ok(Scope::Peildatum(DATE_RANGE.0)),
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
            parameter_hash: zicht_audit::sha256_hex(&prost::Message::encode_to_vec(request)),
        }
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
        ..Default::default()
    }
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
    Ok(Table {
        template,
        dimensions: dimensions.to_vec(),
        rows,
        total,
        rules: result.rules_applied,
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
                count: Published {
                    value: 12,
                    max_deviation: 3,
                },
                statistics: vec![],
            }],
            total: Published {
                value: 12,
                max_deviation: 3,
            },
            rules: vec![],
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
