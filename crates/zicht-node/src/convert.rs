//! The node's reading of a request, the one place a wire `QueryRequest` becomes a domain
//! [`Query`], once, with one error that names the field (first what policy judges, then the
//! scope), and [`RequestText`], what the audit log keeps of a request as it came (shortened,
//! and its hash). Results, cells and dates convert in `zicht_proto::domain`, beside the
//! generated types, for the node and every client alike.

use zicht_model::{CodeList, Dimension, Filter, NaiveDate, Purpose, Query, Scope, Template};
use zicht_proto::v1 as pb;

use zicht_proto::domain;

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

/// A real calendar date from the wire, within [`zicht_model::DATE_RANGE`]; `field` names it in
/// the error.
pub fn to_date(date: &pb::Date, field: &str) -> Result<NaiveDate, Error> {
    domain::to_date(date).map_err(|error| Error::Invalid(format!("{field}: {error}")))
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
}
