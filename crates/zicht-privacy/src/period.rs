//! Periods that snap to whole calendar units. A period of whole months (or quarters, or years)
//! cannot be shifted by a day to isolate the youths of that day; which unit is the node's
//! setting, raise-only.

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
    /// one; otherwise a message that says how to write it.
    pub fn check(self, from: NaiveDate, to: NaiveDate) -> Result<(), String> {
        let months = self.months();
        let starts = from.day() == 1 && (from.month() - 1) % months == 0;
        let next = to.succ_opt();
        let ends = next.is_some_and(|n| n.day() == 1 && (n.month() - 1) % months == 0);
        if starts && ends {
            return Ok(());
        }
        let example = match self {
            PeriodGranularity::Month => "2024-01..2024-06, i.e. 2024-01-01..2024-06-30",
            PeriodGranularity::Quarter => "2024-Q1..2024-Q2, i.e. 2024-01-01..2024-06-30",
            PeriodGranularity::Year => "2023..2024, i.e. 2023-01-01..2024-12-31",
        };
        Err(format!(
            "period-granularity: this node answers for whole {}s only: a period starts on the \
             first day of a {} and ends on the last day of one (e.g. {example})",
            self.code(),
            self.code()
        ))
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
        assert!(month.check(date(2024, 1, 1), date(2024, 12, 31)).is_ok());
        assert!(month.check(date(2024, 2, 1), date(2024, 2, 29)).is_ok());
        assert!(month.check(date(2024, 1, 1), date(2024, 12, 30)).is_err());
        assert!(month.check(date(2024, 1, 2), date(2024, 12, 31)).is_err());
        let quarter = PeriodGranularity::Quarter;
        assert!(quarter.check(date(2024, 4, 1), date(2024, 9, 30)).is_ok());
        assert!(quarter.check(date(2024, 2, 1), date(2024, 9, 30)).is_err());
        let year = PeriodGranularity::Year;
        assert!(year.check(date(2023, 1, 1), date(2024, 12, 31)).is_ok());
        let message = year.check(date(2024, 1, 1), date(2024, 6, 30)).unwrap_err();
        assert!(message.starts_with("period-granularity: this node answers for whole years"));
        assert!(PeriodGranularity::Month < PeriodGranularity::Year);
        assert_eq!(PeriodGranularity::parse("quarter"), Some(quarter));
    }
}
