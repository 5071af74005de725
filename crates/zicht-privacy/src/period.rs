//! Periods that snap to whole calendar units. A period of whole months (or quarters, or years)
//! cannot be shifted by a day to isolate the youths of that day; which unit is the node's
//! setting, raise-only. And unless the node allows ranges, a period is one calendar unit (a
//! month, quarter, half year or year): ranges of units would let one month be written as many
//! differences of longer periods.

use std::fmt;

use chrono::{Datelike, NaiveDate};

/// The finest period a node answers for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeriodGranularity {
    /// Whole months (the default).
    Month,
    /// Whole quarters.
    Quarter,
    /// Whole calendar years.
    Year,
}

impl PeriodGranularity {
    /// Every granularity, finest first.
    pub const ALL: [PeriodGranularity; 3] = [
        PeriodGranularity::Month,
        PeriodGranularity::Quarter,
        PeriodGranularity::Year,
    ];

    /// Its code in configuration and messages.
    pub fn code(self) -> &'static str {
        match self {
            PeriodGranularity::Month => "month",
            PeriodGranularity::Quarter => "quarter",
            PeriodGranularity::Year => "year",
        }
    }

    /// The granularity of a code.
    pub fn parse(code: &str) -> Option<PeriodGranularity> {
        Self::ALL.into_iter().find(|g| g.code() == code)
    }

    fn months(self) -> u32 {
        match self {
            PeriodGranularity::Month => 1,
            PeriodGranularity::Quarter => 3,
            PeriodGranularity::Year => 12,
        }
    }

    /// `Ok` when `from..=to` starts on the first day of a unit and ends on the last day of
    /// one and, unless `ranges`, is one calendar unit of at least this granularity (a month,
    /// a quarter, a half year or a year); otherwise a message that says how to write it.
    pub fn check(self, from: NaiveDate, to: NaiveDate, ranges: bool) -> Result<(), String> {
        let months = self.months();
        let starts = from.day() == 1 && (from.month() - 1) % months == 0;
        let next = to.succ_opt();
        let ends = next.is_some_and(|n| n.day() == 1 && (n.month() - 1) % months == 0);
        if !(starts && ends) {
            let example = match self {
                PeriodGranularity::Month => "2024-03, or 2024-01..2024-06 where ranges are allowed",
                PeriodGranularity::Quarter => "2024-Q2",
                PeriodGranularity::Year => "2024",
            };
            return Err(format!(
                "period-granularity: this node answers for whole {}s only: a period starts on \
                 the first day of a {} and ends on the last day of one (e.g. {example})",
                self.code(),
                self.code()
            ));
        }
        if ranges || one_unit(from, to) {
            return Ok(());
        }
        Err(
            "period-granularity: a period is one month, quarter, half year or year (e.g. 2024, \
             2024-H2, 2024-Q3 or 2024-07); this node answers no other ranges \
             (privacy.period_ranges)"
                .to_owned(),
        )
    }
}

/// Whether `from..=to` is exactly one month, quarter, half year or year of the calendar.
fn one_unit(from: NaiveDate, to: NaiveDate) -> bool {
    let Some(next) = to.succ_opt() else {
        return false;
    };
    let span = (next.year() - from.year()) * 12 + next.month() as i32 - from.month() as i32;
    from.day() == 1
        && next.day() == 1
        && match span {
            1 => true,
            3 => (from.month() - 1) % 3 == 0,
            6 => (from.month() - 1) % 6 == 0,
            12 => from.month() == 1,
            _ => false,
        }
}

impl fmt::Display for PeriodGranularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn whole_units_pass_and_others_say_how() {
        let month = PeriodGranularity::Month;
        let ranges = true;
        assert!(month
            .check(date(2024, 1, 1), date(2024, 12, 31), ranges)
            .is_ok());
        assert!(month
            .check(date(2024, 2, 1), date(2024, 2, 29), ranges)
            .is_ok());
        assert!(month
            .check(date(2024, 1, 1), date(2024, 12, 30), ranges)
            .is_err());
        assert!(month
            .check(date(2024, 1, 2), date(2024, 12, 31), ranges)
            .is_err());
        let quarter = PeriodGranularity::Quarter;
        assert!(quarter
            .check(date(2024, 4, 1), date(2024, 9, 30), ranges)
            .is_ok());
        assert!(quarter
            .check(date(2024, 2, 1), date(2024, 9, 30), ranges)
            .is_err());
        let year = PeriodGranularity::Year;
        assert!(year
            .check(date(2023, 1, 1), date(2024, 12, 31), ranges)
            .is_ok());
        let message = year
            .check(date(2024, 1, 1), date(2024, 6, 30), ranges)
            .unwrap_err();
        assert!(message.starts_with("period-granularity: this node answers for whole years"));
        assert!(PeriodGranularity::Month < PeriodGranularity::Year);
        assert_eq!(PeriodGranularity::parse("quarter"), Some(quarter));
    }

    #[test]
    fn without_ranges_a_period_is_one_calendar_unit() {
        let month = PeriodGranularity::Month;
        let one = |from, to| month.check(from, to, false).is_ok();
        assert!(one(date(2024, 2, 1), date(2024, 2, 29)), "a month");
        assert!(one(date(2024, 4, 1), date(2024, 6, 30)), "a quarter");
        assert!(one(date(2024, 7, 1), date(2024, 12, 31)), "a half year");
        assert!(one(date(2024, 1, 1), date(2024, 12, 31)), "a year");
        assert!(
            !one(date(2024, 2, 1), date(2024, 4, 30)),
            "three months, not a quarter"
        );
        assert!(!one(date(2024, 1, 1), date(2024, 11, 30)), "eleven months");
        assert!(!one(date(2021, 1, 1), date(2025, 12, 31)), "five years");
        assert!(
            !one(date(2024, 4, 1), date(2024, 9, 30)),
            "six months, not a half year"
        );
        let message = month
            .check(date(2021, 1, 1), date(2025, 12, 31), false)
            .unwrap_err();
        assert!(
            message.contains("one month, quarter, half year or year"),
            "{message}"
        );
        // A quarter under a granularity of years is still refused for not being whole years.
        let year = PeriodGranularity::Year;
        assert!(year
            .check(date(2024, 4, 1), date(2024, 6, 30), false)
            .is_err());
    }
}
