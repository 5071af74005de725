//! Strict ISO calendar dates (`YYYY-MM-DD`) as the import format and the proto use them, and
//! moments ([`Timestamp`]) for what happens at a time of day (a consent granted, revoked).

use chrono::{Datelike, NaiveDate};

/// The first and last day a date in a query or an import may be: real calendar dates in this
/// range are compared as dates on every backend.
pub const DATE_RANGE: (NaiveDate, NaiveDate) = (
    match NaiveDate::from_ymd_opt(1900, 1, 1) {
        Some(date) => date,
        None => NaiveDate::MIN,
    },
    match NaiveDate::from_ymd_opt(2100, 12, 31) {
        Some(date) => date,
        None => NaiveDate::MAX,
    },
);

/// A date that is not a real `YYYY-MM-DD` calendar date in [`DATE_RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDate {
    /// Not `YYYY-MM-DD`.
    #[error("not a date in YYYY-MM-DD form")]
    Shape,
    /// `YYYY-MM-DD`, but no such day (a 31st of June, a 29th of February outside a leap year).
    #[error("no such day in the calendar")]
    NoSuchDay,
    /// A real date outside the range zicht takes.
    #[error("not a date from 1900-01-01 to 2100-12-31")]
    OutOfRange,
}

/// Parses exactly `YYYY-MM-DD` (four-digit year, two-digit month and day) into a real date
/// within [`DATE_RANGE`].
pub fn parse_date(text: &str) -> Result<NaiveDate, InvalidDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(InvalidDate::Shape);
    }
    let number = |range: std::ops::Range<usize>| -> u32 {
        bytes[range]
            .iter()
            .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let year = i32::try_from(number(0..4)).map_err(|_| InvalidDate::Shape)?;
    let date =
        NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)).ok_or(InvalidDate::NoSuchDay)?;
    let (first, last) = DATE_RANGE;
    if date < first || date > last {
        return Err(InvalidDate::OutOfRange);
    }
    Ok(date)
}

/// How dates are written in a spreadsheet export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DateFormat {
    /// `YYYY-MM-DD` or `DD-MM-YYYY` (also `D-M-YYYY` and with `/`): the two cannot be
    /// confused, as the year has four digits.
    #[default]
    Either,
    /// `YYYY-MM-DD` only.
    Iso,
    /// `DD-MM-YYYY` (dd-mm-jjjj, as Dutch Excel writes dates; also `D-M-YYYY` and `/`) only.
    DayMonthYear,
}

impl DateFormat {
    /// Parses a date written in this format.
    pub fn parse(self, text: &str) -> Result<NaiveDate, InvalidDate> {
        match self {
            DateFormat::Iso => parse_date(text),
            DateFormat::DayMonthYear => parse_day_month_year(text),
            DateFormat::Either => match parse_date(text) {
                Err(InvalidDate::Shape) => parse_day_month_year(text),
                other => other,
            },
        }
    }
}

/// Parses `DD-MM-YYYY` (or `D-M-YYYY`, or with `/`) into a real date within
/// [`DATE_RANGE`].
fn parse_day_month_year(text: &str) -> Result<NaiveDate, InvalidDate> {
    let separator = if text.contains('/') { '/' } else { '-' };
    let mut parts = text.split(separator);
    let mut number = |digits: std::ops::RangeInclusive<usize>| {
        parts
            .next()
            .filter(|p| digits.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
            .ok_or(InvalidDate::Shape)
    };
    let (day, month, year) = (number(1..=2)?, number(1..=2)?, number(4..=4)?);
    if parts.next().is_some() {
        return Err(InvalidDate::Shape);
    }
    let year = i32::try_from(year).map_err(|_| InvalidDate::Shape)?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or(InvalidDate::NoSuchDay)?;
    let (first, last) = DATE_RANGE;
    if date < first || date > last {
        return Err(InvalidDate::OutOfRange);
    }
    Ok(date)
}

/// A moment, as milliseconds since the Unix epoch (UTC). Written as RFC 3339
/// (`2026-12-01T14:30:00Z`, any offset), or as a date (`2026-12-01`), which means the start
/// of that day, 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A moment that is neither `YYYY-MM-DD` nor RFC 3339 within [`DATE_RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a date (YYYY-MM-DD) or a moment in RFC 3339 (2026-12-01T14:30:00Z) from 1900 to 2100")]
pub struct InvalidTimestamp;

impl Timestamp {
    /// The moment `millis` milliseconds after the Unix epoch.
    pub fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The start (00:00 UTC) of `date`.
    pub fn start_of(date: NaiveDate) -> Timestamp {
        Timestamp(
            date.and_hms_opt(0, 0, 0)
                .map_or(0, |moment| moment.and_utc().timestamp_millis()),
        )
    }

    /// Parses a date or an RFC 3339 moment.
    pub fn parse(text: &str) -> Result<Timestamp, InvalidTimestamp> {
        if let Ok(date) = parse_date(text) {
            return Ok(Timestamp::start_of(date));
        }
        let moment = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| InvalidTimestamp)?;
        let (first, last) = DATE_RANGE;
        let day = moment.naive_utc().date();
        if day < first || day > last {
            return Err(InvalidTimestamp);
        }
        Ok(Timestamp(moment.timestamp_millis()))
    }
}

impl std::fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with milliseconds only when there are any.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(moment) = chrono::DateTime::from_timestamp_millis(self.0) else {
            return write!(f, "{}ms", self.0);
        };
        let format = if self.0 % 1000 == 0 {
            chrono::SecondsFormat::Secs
        } else {
            chrono::SecondsFormat::Millis
        };
        f.write_str(&moment.to_rfc3339_opts(format, true))
    }
}

/// Age in whole years on `on` of someone born on `birth_date` (0 before the first birthday).
pub fn age_on(birth_date: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth_date.year();
    if (on.month(), on.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age
}

/// A period that cannot be read: says which forms are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPeriod {
    /// Not one of the forms.
    #[error("give a year (2025), a half year (2025-H1), a quarter (2025-Q2), a month (2025-03), or FROM..TO of those or of dates (2025-01..2025-06, 2025-01-01..2025-06-30)")]
    Shape,
    /// A date or month that does not exist, or lies outside the range zicht takes.
    #[error("{0}")]
    Date(InvalidDate),
    /// The period ends before it starts.
    #[error("the period ends before it starts")]
    Reversed,
}

/// Reads a period as the CLI and the monitor take it: a calendar unit (`2025`, `2025-H1`,
/// `2025-Q2`, `2025-03`), a date range `FROM..TO` of dates, or a range of units
/// (`2025-01..2025-06`: from the first day of the first to the last day of the last).
/// Returns the first and last day, inclusive.
pub fn parse_period(text: &str) -> Result<(NaiveDate, NaiveDate), InvalidPeriod> {
    let text = text.trim();
    let (first, last) = match text.split_once("..") {
        Some((from, to)) => (unit(from.trim())?.0, unit(to.trim())?.1),
        None => unit(text)?,
    };
    if last < first {
        return Err(InvalidPeriod::Reversed);
    }
    Ok((first, last))
}

/// The first and last day of one calendar unit, or of a date (a day).
fn unit(text: &str) -> Result<(NaiveDate, NaiveDate), InvalidPeriod> {
    if text.len() == 10 {
        let day = parse_date(text).map_err(InvalidPeriod::Date)?;
        return Ok((day, day));
    }
    let (year, rest) = match text.split_once('-') {
        Some((year, rest)) => (year, Some(rest)),
        None => (text, None),
    };
    if year.len() != 4 || !year.chars().all(|c| c.is_ascii_digit()) {
        return Err(InvalidPeriod::Shape);
    }
    let year: i32 = year.parse().map_err(|_| InvalidPeriod::Shape)?;
    let (first_month, months) = match rest.map(str::to_ascii_uppercase).as_deref() {
        None => (1, 12),
        Some("H1") => (1, 6),
        Some("H2") => (7, 6),
        Some(q) if q.len() == 2 && q.starts_with('Q') => match &q[1..] {
            n @ ("1" | "2" | "3" | "4") => ((n.as_bytes()[0] - b'0') as u32 * 3 - 2, 3),
            _ => return Err(InvalidPeriod::Shape),
        },
        Some(m) if m.len() == 2 && m.chars().all(|c| c.is_ascii_digit()) => {
            let month: u32 = m.parse().map_err(|_| InvalidPeriod::Shape)?;
            if !(1..=12).contains(&month) {
                return Err(InvalidPeriod::Date(InvalidDate::NoSuchDay));
            }
            (month, 1)
        }
        Some(_) => return Err(InvalidPeriod::Shape),
    };
    let first = NaiveDate::from_ymd_opt(year, first_month, 1)
        .ok_or(InvalidPeriod::Date(InvalidDate::OutOfRange))?;
    let last = first
        .checked_add_months(chrono::Months::new(months))
        .and_then(|next| next.pred_opt())
        .ok_or(InvalidPeriod::Date(InvalidDate::OutOfRange))?;
    let (earliest, latest) = DATE_RANGE;
    if first < earliest || last > latest {
        return Err(InvalidPeriod::Date(InvalidDate::OutOfRange));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_month_year_as_dutch_excel_writes_it() {
        let day = NaiveDate::from_ymd_opt(2022, 3, 1).unwrap();
        for text in ["01-03-2022", "1-3-2022", "01/03/2022", "2022-03-01"] {
            assert_eq!(DateFormat::Either.parse(text), Ok(day), "{text}");
        }
        assert_eq!(DateFormat::DayMonthYear.parse("01-03-2022"), Ok(day));
        assert_eq!(
            DateFormat::DayMonthYear.parse("2022-03-01"),
            Err(InvalidDate::Shape)
        );
        assert_eq!(DateFormat::Iso.parse("01-03-2022"), Err(InvalidDate::Shape));
        assert_eq!(
            DateFormat::Either.parse("31-06-2022"),
            Err(InvalidDate::NoSuchDay)
        );
        for bad in [
            "01-03-22",
            "1-3-2022-1",
            "01-03/2022",
            "x1-03-2022",
            "001-03-2022",
        ] {
            assert_eq!(
                DateFormat::Either.parse(bad),
                Err(InvalidDate::Shape),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_only_real_iso_dates() {
        assert_eq!(
            parse_date("2024-02-29"),
            Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        for no_such_day in ["2023-02-29", "2024-13-01", "2024-06-31"] {
            assert_eq!(parse_date(no_such_day), Err(InvalidDate::NoSuchDay));
        }
        for bad in [
            "2024-1-01",
            "24-01-01",
            "2024/01/01",
            "2024-01-01 ",
            "",
            "01-02-2024",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_date(bad), Err(InvalidDate::Shape), "{bad}");
        }
        for far in ["1899-12-31", "2101-01-01", "9999-12-31"] {
            assert_eq!(parse_date(far), Err(InvalidDate::OutOfRange), "{far}");
        }
    }

    #[test]
    fn age_counts_whole_years() {
        let born = NaiveDate::from_ymd_opt(2006, 7, 1).unwrap();
        assert_eq!(
            age_on(born, NaiveDate::from_ymd_opt(2024, 6, 30).unwrap()),
            17
        );
        assert_eq!(
            age_on(born, NaiveDate::from_ymd_opt(2024, 7, 1).unwrap()),
            18
        );
    }

    #[test]
    fn timestamps_are_dates_at_midnight_utc_or_rfc3339_moments() {
        let day = Timestamp::parse("2026-12-01").unwrap();
        assert_eq!(day.to_string(), "2026-12-01T00:00:00Z");
        let moment = Timestamp::parse("2026-12-01T15:30:00+01:00").unwrap();
        assert_eq!(moment.to_string(), "2026-12-01T14:30:00Z");
        assert_eq!(moment.millis() - day.millis(), 14 * 3_600_000 + 30 * 60_000);
        assert_eq!(
            Timestamp::parse("2026-12-01T14:30:00.250Z")
                .unwrap()
                .to_string(),
            "2026-12-01T14:30:00.250Z"
        );
        for bad in [
            "",
            "2026-12-1",
            "2026-12-01 14:30",
            "2026-13-01T00:00:00Z",
            "3000-01-01",
        ] {
            assert_eq!(Timestamp::parse(bad), Err(InvalidTimestamp), "{bad}");
        }
    }

    #[test]
    fn periods_are_calendar_units_or_ranges_of_them() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            parse_period("2025"),
            Ok((day(2025, 1, 1), day(2025, 12, 31)))
        );
        assert_eq!(
            parse_period("2025-H2"),
            Ok((day(2025, 7, 1), day(2025, 12, 31)))
        );
        assert_eq!(
            parse_period("2025-q2"),
            Ok((day(2025, 4, 1), day(2025, 6, 30)))
        );
        assert_eq!(
            parse_period("2024-02"),
            Ok((day(2024, 2, 1), day(2024, 2, 29)))
        );
        assert_eq!(
            parse_period("2024-01..2024-06"),
            Ok((day(2024, 1, 1), day(2024, 6, 30)))
        );
        assert_eq!(
            parse_period("2024-01-01..2024-06-30"),
            Ok((day(2024, 1, 1), day(2024, 6, 30)))
        );
        assert_eq!(
            parse_period("2024-Q3..2024"),
            Ok((day(2024, 7, 1), day(2024, 12, 31)))
        );
        assert_eq!(
            parse_period("2025-06..2025-01"),
            Err(InvalidPeriod::Reversed)
        );
        assert_eq!(
            parse_period("2025-13"),
            Err(InvalidPeriod::Date(InvalidDate::NoSuchDay))
        );
        for wrong in [
            "25",
            "2025-Q5",
            "2025-H3",
            "2025-1",
            "next year",
            "2025-02-30..2025-03",
        ] {
            assert!(parse_period(wrong).is_err(), "{wrong}");
        }
    }
}
