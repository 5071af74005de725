//! Strict ISO calendar dates (`YYYY-MM-DD`) as the import format and the proto use them.

use chrono::{Datelike, NaiveDate};

/// A date that is not a real `YYYY-MM-DD` calendar date in [`crate::DATE_RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDate {
    /// Not `YYYY-MM-DD`, or no such day.
    #[error("not a date in YYYY-MM-DD form")]
    Shape,
    /// A real date outside the range zicht takes.
    #[error("not a date from 1900-01-01 to 2100-12-31")]
    OutOfRange,
}

/// Parses exactly `YYYY-MM-DD` (four-digit year, two-digit month and day) into a real date
/// within [`crate::DATE_RANGE`].
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
        NaiveDate::from_ymd_opt(year, number(5..7), number(8..10)).ok_or(InvalidDate::Shape)?;
    let (first, last) = crate::DATE_RANGE;
    if date < first || date > last {
        return Err(InvalidDate::OutOfRange);
    }
    Ok(date)
}

/// Age in whole years on `on` of someone born on `birth_date` (0 before the first birthday).
pub fn age_on(birth_date: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth_date.year();
    if (on.month(), on.day()) < (birth_date.month(), birth_date.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_real_iso_dates() {
        assert_eq!(
            parse_date("2024-02-29"),
            Ok(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
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
}
