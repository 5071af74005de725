//! The person-count templates as plain SQL, run by the database: the definitions the
//! in-memory engine is tested against (the oracle of `tests/engine.rs`), on both backends.
//! Ties the definitions leave open are broken the same way as the engine does (bytewise, by
//! the rest of the table's key), so both give one answer.

use chrono::{Months, NaiveDate};
use zicht_model::{
    AgeBand, Big5Domain, CareType, CodeList, Dimension, Filter, FlowKind, Region, Template,
    NOT_APPLICABLE, STAY_LENGTHS, UNKNOWN,
};

use super::{
    validate, CountQuery, CountRow, CountScope, InvalidCountQuery, MeasureFigures, StayFigures,
};
use crate::{on_pool, query_error, Backend, RecordKeys, Store, StoreError};

#[derive(Debug, Clone)]
enum Param {
    Date(NaiveDate),
    Text(String),
}

/// SQL text with its parameters, numbered `$1..` in the order they were added.
struct Sql {
    backend: Backend,
    params: Vec<Param>,
}

impl Sql {
    fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn date(&mut self, date: NaiveDate) -> String {
        self.param(Param::Date(date))
    }

    /// `column` moved by `days` days, as a date.
    fn shifted(&self, column: &str, days: i64) -> String {
        match self.backend {
            Backend::Sqlite => format!("date({column}, '{days:+} days')"),
            Backend::Postgres => format!("({column} + ({days}))"),
        }
    }

    /// `column` compared bytewise (PostgreSQL's collation may not be), for tie-breaks.
    fn bytewise(&self, column: &str) -> String {
        match self.backend {
            Backend::Sqlite => column.to_owned(),
            Backend::Postgres => format!("{column} COLLATE \"C\""),
        }
    }

    /// Days from `from` to `to` (two date columns).
    fn days_between(&self, from: &str, to: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("CAST(julianday({to}) - julianday({from}) AS INTEGER)"),
            Backend::Postgres => format!("({to} - {from})"),
        }
    }
}

fn quoted(code: &str) -> String {
    // Codes come from the code lists (letters, digits, `_`, `-`, `+`), never from a request.
    format!("'{code}'")
}

/// `CASE column WHEN 'a' THEN 'x' ... ELSE fallback END` over a mapping of codes.
fn case<'a>(
    column: &str,
    pairs: impl IntoIterator<Item = (&'a str, String)>,
    fallback: &str,
) -> String {
    let arms: String = pairs
        .into_iter()
        .map(|(code, value)| format!(" WHEN {} THEN {value}", quoted(code)))
        .collect();
    format!("CASE {column}{arms} ELSE {fallback} END")
}

fn landsdeel_number(column: &str) -> String {
    case(
        column,
        Region::ALL.iter().map(|r| {
            let number = zicht_model::Landsdeel::ALL
                .iter()
                .position(|l| *l == r.landsdeel())
                .unwrap_or(0)
                + 1;
            (r.code(), number.to_string())
        }),
        "0",
    )
}

/// The SQL expression of `dimension` over the template's unit row.
fn expression(
    template: Template,
    dimension: Dimension,
    reference: NaiveDate,
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    if !template.dimensions().contains(&dimension) {
        return Err(InvalidCountQuery::Dimension {
            template: template.code(),
            dimension: dimension.code(),
        });
    }
    Ok(match dimension {
        Dimension::StayGroup => case(
            "care_type",
            CareType::ALL
                .iter()
                .map(|c| (c.code(), quoted(c.stay_group().code()))),
            "''",
        ),
        Dimension::LandsdeelInside => format!(
            "CASE WHEN origin_region = 'onbekend' THEN 'onbekend' WHEN {} = {} THEN 'binnen' ELSE 'buiten' END",
            landsdeel_number("origin_region"),
            landsdeel_number("placement_region")
        ),
        Dimension::AgeBand => {
            // Born after the day the band's lower age was reached on the reference date:
            // younger than that age.
            let mut arms = String::new();
            let bands = AgeBand::ALL;
            for window in bands.windows(2) {
                let (band, next) = (window[0], window[1]);
                let cutoff = reference
                    .checked_sub_months(Months::new(12 * next.min_age()))
                    .unwrap_or(NaiveDate::MIN);
                let cutoff = sql.date(cutoff);
                arms.push_str(&format!(
                    " WHEN birth_date > {cutoff} THEN {}",
                    quoted(band.code())
                ));
            }
            let oldest = bands.last().map_or("", |b| b.code());
            format!("CASE{arms} ELSE {} END", quoted(oldest))
        }
        Dimension::Toekomstplan => "CASE WHEN toekomstplan THEN 'ja' ELSE 'nee' END".to_owned(),
        // `days` is the stay's length, which only `length_of_stay` computes.
        Dimension::StayLength => {
            let mut arms = String::new();
            let (last, _) = STAY_LENGTHS[STAY_LENGTHS.len() - 1];
            for (band, below) in &STAY_LENGTHS[..STAY_LENGTHS.len() - 1] {
                arms.push_str(&format!(" WHEN days < {below} THEN {}", quoted(band)));
            }
            format!("CASE{arms} ELSE {} END", quoted(last))
        }
        Dimension::AgeOnPeildatum | Dimension::Turns18 => {
            let (cutoffs, last) =
                zicht_model::birth_cutoffs(dimension, reference).unwrap_or_default();
            let mut arms = format!(" WHEN birth_date IS NULL THEN {}", quoted(UNKNOWN));
            for (cutoff, value) in cutoffs {
                let cutoff = sql.date(cutoff);
                arms.push_str(&format!(" WHEN birth_date > {cutoff} THEN {}", quoted(value)));
            }
            format!("CASE{arms} ELSE {} END", quoted(last))
        }
        Dimension::Big5Status => case(
            "big5_domain",
            Big5Domain::ALL
                .iter()
                .map(|d| (d.code(), format!("big5_{}", d.code()))),
            "''",
        ),
        Dimension::MeasureKind => "kind".to_owned(),
        other => other.code().to_owned(),
    })
}

/// `AND expr IN (...)` for every filter (`NOT IN` for one that excludes: a unit whose value
/// is absent is kept by it, as it is listed under no excluded value).
fn filter_clauses(
    template: Template,
    filters: &[Filter],
    reference: NaiveDate,
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let mut text = String::new();
    for Filter {
        dimension,
        values,
        exclude,
    } in filters
    {
        let expr = expression(template, *dimension, reference, sql)?;
        if values.is_empty() {
            if !exclude {
                text.push_str(" AND 1 = 0");
            }
            continue;
        }
        let list: Vec<String> = values
            .iter()
            .map(|v| sql.param(Param::Text(v.clone())))
            .collect();
        let list = list.join(", ");
        if *exclude {
            text.push_str(&format!(" AND ({expr} IS NULL OR {expr} NOT IN ({list}))"));
        } else {
            text.push_str(&format!(" AND {expr} IN ({list})"));
        }
    }
    Ok(text)
}

/// The clauses every template puts on its counted unit: the group-by keys (select list and
/// names) and the filters, with ages taken on `reference`.
fn unit_clauses(
    query: &CountQuery<'_>,
    reference: NaiveDate,
    sql: &mut Sql,
) -> Result<(String, Vec<String>, String), InvalidCountQuery> {
    let (select, names) = keys(query, reference, sql)?;
    let filters = filter_clauses(query.template, query.filters, reference, sql)?;
    Ok((select, names, filters))
}

/// `expr AS k0, expr AS k1, ` for the group-by dimensions, and the key list `k0, k1`.
fn keys(
    query: &CountQuery<'_>,
    reference: NaiveDate,
    sql: &mut Sql,
) -> Result<(String, Vec<String>), InvalidCountQuery> {
    let mut select = String::new();
    let mut names = Vec::new();
    for (i, &dimension) in query.group_by.iter().enumerate() {
        let expr = expression(query.template, dimension, reference, sql)?;
        select.push_str(&format!("{expr} AS k{i}, "));
        names.push(format!("k{i}"));
    }
    Ok((select, names))
}

fn group_clause(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {0} ORDER BY {0}", names.join(", "))
    }
}

fn key_prefix(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}, ")).collect()
}

/// Every aggregate ends with the group's units and the sum of their record keys.
const UNITS: &str = "COUNT(*), CAST(COALESCE(SUM(record_key), 0) AS BIGINT)";

/// The placements with their youths' record keys, which [`Store::person_counts_sql`] stages
/// in a temporary table for the query (the database holds no keys).
const KEYED_PLACEMENTS: &str = "(SELECT pl.*, k.record_key FROM placements pl \
     LEFT JOIN zicht_record_keys k ON k.youth_id = pl.youth_id)";
/// The transition checks with their youths' record keys and birth dates (from their
/// placements, the latest; none for a youth without a placement).
const KEYED_TRANSITION18: &str = "(SELECT tr.*, k.record_key, b.birth_date FROM transition18 tr \
     LEFT JOIN zicht_record_keys k ON k.youth_id = tr.youth_id \
     LEFT JOIN (SELECT youth_id, MAX(birth_date) AS birth_date FROM placements GROUP BY youth_id) b \
     ON b.youth_id = tr.youth_id)";
/// The placement columns a unit's dimensions read (not `p.*`: the window sort carries every
/// selected column).
const UNIT_COLUMNS: &str = "youth_id, record_key, origin_region, placement_region, \
     care_type, birth_date, legal_basis";

/// The SQL of `youth_in_care`.
fn youth_in_care_sql(
    query: &CountQuery<'_>,
    (from, to): (NaiveDate, NaiveDate),
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let (to_p, from_p) = (sql.date(to), sql.date(from));
    let (select, names, filters) = unit_clauses(query, to, sql)?;
    let (care, provider) = (sql.bytewise("care_type"), sql.bytewise("provider"));
    Ok(format!(
        "SELECT {select}{UNITS} FROM (SELECT {UNIT_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY youth_id \
         ORDER BY start_date DESC, {care} DESC, {provider} DESC) AS rn, \
         CASE WHEN EXISTS (SELECT 1 FROM measures s WHERE s.youth_id = p.youth_id \
         AND s.kind = 'separatie' AND s.start_date >= {from_p} AND s.start_date <= {to_p}) \
         THEN 'ja' ELSE 'nee' END AS separatie FROM {KEYED_PLACEMENTS} p \
         WHERE start_date <= {to_p} AND (end_date IS NULL OR end_date >= {from_p})) u \
         WHERE rn = 1{filters}{group}",
        group = group_clause(&names),
    ))
}

/// The SQL of `flows`.
fn flows_sql(
    query: &CountQuery<'_>,
    (from, to): (NaiveDate, NaiveDate),
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let (from_p, to_p) = (sql.date(from), sql.date(to));
    let days = FlowKind::TRANSFER_DAYS;
    let before = sql.shifted("p.start_date", -days);
    let after = sql.shifted("p.end_date", days);
    let (select, names, filters) = unit_clauses(query, to, sql)?;
    let (care, provider) = (sql.bytewise("care_type"), sql.bytewise("provider"));
    Ok(format!(
        "SELECT {select}{UNITS} FROM (SELECT e.*, ROW_NUMBER() OVER (PARTITION BY youth_id, flow_kind \
         ORDER BY event_date DESC, {care} DESC, {provider} DESC, started DESC) AS rn FROM (\
         SELECT p.youth_id, p.record_key, 'instroom' AS flow_kind, p.start_date AS event_date, p.care_type, \
         p.provider, p.start_date AS started, \
         p.origin_region, '{na}' AS outflow_destination, '{na}' AS outflow_profile \
         FROM {KEYED_PLACEMENTS} p WHERE p.start_date >= {from_p} AND p.start_date <= {to_p} \
         AND NOT EXISTS (SELECT 1 FROM placements q WHERE q.youth_id = p.youth_id \
         AND q.start_date < p.start_date AND (q.end_date IS NULL OR q.end_date >= {before})) \
         UNION ALL \
         SELECT p.youth_id, p.record_key, CASE WHEN EXISTS (SELECT 1 FROM placements q \
         WHERE q.youth_id = p.youth_id AND q.start_date > p.start_date AND q.start_date <= {after}) \
         THEN 'doorplaatsing' ELSE 'uitstroom' END, p.end_date, p.care_type, p.provider, \
         p.start_date, p.origin_region, \
         p.outflow_destination, COALESCE(CAST(p.outflow_profile AS TEXT), '{unknown}') \
         FROM {KEYED_PLACEMENTS} p WHERE p.end_date >= {from_p} AND p.end_date <= {to_p}\
         ) e) u WHERE rn = 1{filters}{group}",
        group = group_clause(&names),
        na = NOT_APPLICABLE,
        unknown = UNKNOWN,
    ))
}

/// The SQL of `length_of_stay`.
fn length_of_stay_sql(
    query: &CountQuery<'_>,
    (from, to): (NaiveDate, NaiveDate),
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let (from_p, to_p) = (sql.date(from), sql.date(to));
    let days = sql.days_between("start_date", "end_date");
    let (select, names, filters) = unit_clauses(query, to, sql)?;
    let (care, provider) = (sql.bytewise("care_type"), sql.bytewise("provider"));
    let partition = if names.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {} ", names.join(", "))
    };
    Ok(format!(
        "SELECT {keys}{UNITS}, CAST(COALESCE(SUM(days), 0) AS BIGINT), \
         CAST(COALESCE(MAX(days), 0) AS BIGINT), \
         CAST(COALESCE(MAX(CASE WHEN pos = (n + 1) / 2 THEN days END), 0) AS BIGINT), \
         CAST(COALESCE(MAX(CASE WHEN pos = (n * 9 + 9) / 10 THEN days END), 0) AS BIGINT) FROM (\
         SELECT {keys}days, record_key, ROW_NUMBER() OVER ({partition}ORDER BY days) AS pos, \
         COUNT(*) OVER ({partition_all}) AS n FROM (\
         SELECT {select}days, record_key FROM (SELECT {UNIT_COLUMNS}, {days} AS days, \
         ROW_NUMBER() OVER (PARTITION BY youth_id ORDER BY end_date DESC, start_date DESC, \
         {care} DESC, {provider} DESC) AS rn FROM {KEYED_PLACEMENTS} p \
         WHERE end_date >= {from_p} AND end_date <= {to_p}) s WHERE rn = 1{filters}) w) v{group}",
        keys = key_prefix(&names),
        partition_all = partition.trim_end(),
        group = group_clause(&names),
    ))
}

/// The SQL of `transition18`.
fn transition18_sql(
    query: &CountQuery<'_>,
    peildatum: NaiveDate,
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let since = peildatum
        .checked_sub_months(Months::new(6))
        .unwrap_or(NaiveDate::MIN);
    let (peil_p, since_p) = (sql.date(peildatum), sql.date(since));
    let (select, names, filters) = unit_clauses(query, peildatum, sql)?;
    let domains = if query.uses(Dimension::Big5Domain) || query.uses(Dimension::Big5Status) {
        let rows: Vec<String> = Big5Domain::ALL
            .iter()
            .map(|d| format!("SELECT {} AS big5_domain", quoted(d.code())))
            .collect();
        format!(" CROSS JOIN ({}) d", rows.join(" UNION ALL "))
    } else {
        String::new()
    };
    Ok(format!(
        "SELECT {select}{UNITS} FROM (SELECT t.*, \
         ROW_NUMBER() OVER (PARTITION BY youth_id ORDER BY check_date DESC) AS rn \
         FROM {KEYED_TRANSITION18} t WHERE check_date <= {peil_p} AND check_date > {since_p}) c\
         {domains} WHERE rn = 1{filters}{group}",
        group = group_clause(&names),
    ))
}

/// The SQL of `measures`: per youth (and kind, when asked per kind) the latest measure in the
/// period, with how many measures it stands for.
fn measures_sql(
    query: &CountQuery<'_>,
    (from, to): (NaiveDate, NaiveDate),
    sql: &mut Sql,
) -> Result<String, InvalidCountQuery> {
    let (from_p, to_p) = (sql.date(from), sql.date(to));
    let (select, names, filters) = unit_clauses(query, to, sql)?;
    let unit = if query.uses(Dimension::MeasureKind) {
        "youth_id, kind"
    } else {
        "youth_id"
    };
    let (provider, facility) = (sql.bytewise("provider"), sql.bytewise("facility"));
    Ok(format!(
        "SELECT {select}{UNITS}, CAST(COALESCE(SUM(n), 0) AS BIGINT), \
         CAST(COALESCE(MAX(n), 0) AS BIGINT) FROM (\
         SELECT m.*, COUNT(*) OVER (PARTITION BY {unit}) AS n, ROW_NUMBER() OVER (\
         PARTITION BY {unit} ORDER BY start_date DESC, {provider} DESC, {facility} DESC) AS rn \
         FROM (SELECT ms.*, k.record_key FROM measures ms \
         LEFT JOIN zicht_record_keys k ON k.youth_id = ms.youth_id) m \
         WHERE start_date >= {from_p} AND start_date <= {to_p}) u WHERE rn = 1{filters}{group}",
        group = group_clause(&names),
    ))
}

/// Builds the SQL of a person-count query.
fn build(
    query: &CountQuery<'_>,
    backend: Backend,
) -> Result<(String, Vec<Param>), InvalidCountQuery> {
    validate(query)?;
    let mut sql = Sql {
        backend,
        params: Vec::new(),
    };
    let text = match (query.template, query.scope) {
        (Template::Transition18, CountScope::Peildatum(peildatum)) => {
            transition18_sql(query, peildatum, &mut sql)?
        }
        (Template::YouthInCare, CountScope::Period { from, to }) => {
            youth_in_care_sql(query, (from, to), &mut sql)?
        }
        (Template::Flows, CountScope::Period { from, to }) => {
            flows_sql(query, (from, to), &mut sql)?
        }
        (Template::LengthOfStay, CountScope::Period { from, to }) => {
            length_of_stay_sql(query, (from, to), &mut sql)?
        }
        (Template::Measures, CountScope::Period { from, to }) => {
            measures_sql(query, (from, to), &mut sql)?
        }
        // `validate` lets no other pair through.
        _ => return Err(InvalidCountQuery::NotCounting(query.template.code())),
    };
    Ok((text, sql.params))
}

/// Youths staged per statement (two bind parameters each).
const YOUTHS_PER_STATEMENT: usize = 1000;

impl Store {
    /// Runs a person-count template as plain SQL in the database (the engine's oracle), with
    /// record keys from `keys` staged in a temporary table for the query (without, the sums
    /// are 0). Reads only: the transaction is rolled back. The outer `Result` is the store
    /// failing; the inner one a query the template cannot answer. Only non-empty groups are
    /// returned.
    pub async fn person_counts_sql(
        &self,
        query: &CountQuery<'_>,
        keys: Option<&RecordKeys>,
    ) -> Result<Result<Vec<CountRow>, InvalidCountQuery>, StoreError> {
        const STAGING: &str = "CREATE TEMPORARY TABLE zicht_record_keys \
             (youth_id TEXT PRIMARY KEY, record_key BIGINT NOT NULL)";
        const YOUTHS: &str =
            "SELECT youth_id FROM placements UNION SELECT youth_id FROM transition18 \
             UNION SELECT youth_id FROM measures";
        let (text, params) = match build(query, self.backend()) {
            Ok(built) => built,
            Err(invalid) => return Ok(Err(invalid)),
        };
        let width = query.group_by.len();
        let stays = query.template == Template::LengthOfStay;
        let measures = query.template == Template::Measures;
        let rows = on_pool!(self, pool => {
            use sqlx::Row;
            let mut tx = pool.begin().await.map_err(query_error("begin person counts"))?;
            sqlx::query(STAGING)
                .execute(&mut *tx)
                .await
                .map_err(query_error("stage record keys"))?;
            if let Some(keys) = keys {
                let youths: Vec<String> = sqlx::query_scalar(YOUTHS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(query_error("stage record keys"))?;
                for chunk in youths.chunks(YOUTHS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO zicht_record_keys (youth_id, record_key) ",
                    );
                    insert.push_values(chunk, |mut row, youth| {
                        row.push_bind(youth.as_str()).push_bind(i64::from(keys.key(youth)));
                    });
                    insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(query_error("stage record keys"))?;
                }
            }
            let mut statement = sqlx::query(&text);
            for param in params {
                statement = match param {
                    Param::Date(date) => statement.bind(date),
                    Param::Text(text) => statement.bind(text),
                };
            }
            let rows = statement
                .fetch_all(&mut *tx)
                .await
                .map_err(query_error("query person counts"))?
                .into_iter()
                .map(|row| -> Result<CountRow, sqlx::Error> {
                    let key = crate::read_key(&row, width)?;
                    let stay = if stays {
                        Some(StayFigures {
                            sum_days: row.try_get(width + 2)?,
                            max_days: row.try_get(width + 3)?,
                            median_days: row.try_get(width + 4)?,
                            p90_days: row.try_get(width + 5)?,
                        })
                    } else {
                        None
                    };
                    let measures = if measures {
                        Some(MeasureFigures {
                            measures: row.try_get(width + 2)?,
                            max_per_youth: row.try_get(width + 3)?,
                        })
                    } else {
                        None
                    };
                    Ok(CountRow {
                        key,
                        youths: row.try_get(width)?,
                        record_key_sum: row.try_get(width + 1)?,
                        stay,
                        measures,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(query_error("read person counts"))?;
            tx.rollback().await.map_err(query_error("end person counts"))?;
            rows
        });
        // Without groups, an empty population gives one row of zeros; say "nothing" instead.
        Ok(Ok(rows.into_iter().filter(|r| r.youths > 0).collect()))
    }
}
