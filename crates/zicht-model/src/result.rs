//! What a template call releases, as a node builds, merges and logs it: a table of published
//! counts (and, for `length_of_stay` and `capacity`, named figures per cell) with the rules
//! that were applied. The node turns it into its wire form once, at its gRPC edge, and reads
//! peers' answers back into it there.

use chrono::NaiveDate;

use crate::{Dimension, Template};

/// A count as published: a value, how far it may be from the true count, and how far it
/// typically is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Published {
    /// The published value.
    pub value: u64,
    /// The largest deviation from the true count (0: exact).
    pub max_deviation: u32,
    /// The variance of the deviation, in hundredths: the perturbing region's V (its setting,
    /// never the true count's row), summed over the regions of a merged count. Its square
    /// root is the typical error.
    pub variance_centi: u32,
}

impl Published {
    /// An exact count.
    pub fn exact(value: u64) -> Published {
        Published {
            value,
            max_deviation: 0,
            variance_centi: 0,
        }
    }

    /// A perturbed count: within `max_deviation` of the true one, with variance `variance`.
    pub fn perturbed(value: u64, max_deviation: u32, variance: f64) -> Published {
        Published {
            value,
            max_deviation,
            variance_centi: (variance * 100.0).round().clamp(0.0, f64::from(u32::MAX)) as u32,
        }
    }

    /// Whether the count is the true count.
    pub fn is_exact(self) -> bool {
        self.max_deviation == 0
    }

    /// The typical error: the standard deviation of the deviation.
    pub fn typical_error(self) -> f64 {
        (f64::from(self.variance_centi) / 100.0).sqrt()
    }
}

/// How a published count reads, wherever it is shown: exact as a number (`7`), perturbed with
/// its bound (`12 ±4`), and where the bound reaches below 0 as the range it allows
/// (`0 (0–36)`): a count is never negative.
impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (n, bound) = (self.value, u64::from(self.max_deviation));
        match bound {
            0 => write!(f, "{n}"),
            b if n < b => write!(f, "{n} (0–{})", n + b),
            b => write!(f, "{n} ±{b}"),
        }
    }
}

/// Two published counts added: values add, and so do their bounds.
impl std::ops::Add for Published {
    type Output = Published;

    fn add(self, other: Published) -> Published {
        Published {
            value: self.value.saturating_add(other.value),
            max_deviation: self.max_deviation.saturating_add(other.max_deviation),
            // Each region's deviation is its own draw: variances add.
            variance_centi: self.variance_centi.saturating_add(other.variance_centi),
        }
    }
}

/// A named figure of a cell (capacity's `places`, a length of stay's `median_days`); no value
/// where disclosure control withheld it.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistic {
    /// The figure's name.
    pub name: String,
    /// Its value, or none where it was withheld.
    pub value: Option<f64>,
}

impl Statistic {
    /// A figure with a value.
    pub fn new(name: &str, value: f64) -> Statistic {
        Statistic {
            name: name.to_owned(),
            value: Some(value),
        }
    }

    /// The same figure, withheld.
    #[must_use]
    pub fn withheld(self) -> Statistic {
        Statistic {
            value: None,
            ..self
        }
    }
}

/// One cell of a table: its key (one code per dimension, in order), its count and figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// One value per dimension of the table.
    pub key: Vec<String>,
    /// The cell's count (youths, or facilities for `capacity`).
    pub count: Published,
    /// The cell's figures.
    pub statistics: Vec<Statistic>,
}

/// A released table: every cell of the asked grouping, the total, and the rules applied.
/// Person counts are perturbed each on its own, so cells need not add up to the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The template that made it.
    pub template: Template,
    /// The grouping, in order.
    pub dimensions: Vec<Dimension>,
    /// The cells.
    pub rows: Vec<Row>,
    /// The total of the population (published on its own, like every cell).
    pub total: Published,
    /// The rules applied, in words for people.
    pub rules: Vec<String>,
    /// Individual records (`consented_records` only; its table has no rows and its total is
    /// the number of records).
    pub records: Vec<Record>,
}

/// Which table a released record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// A placement (`placements.csv`).
    Placement,
    /// A half-yearly check of a youth of 16 or 17 (`transition18.csv`).
    Transition18,
}

/// The value of one field of a released record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A code or a name.
    Text(String),
    /// A calendar date.
    Date(NaiveDate),
    /// `ja` or `nee`.
    Flag(bool),
    /// A whole number (the outflow profile).
    Number(u32),
}

impl std::fmt::Display for FieldValue {
    /// As the import format writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Text(text) => f.write_str(text),
            FieldValue::Date(date) => write!(f, "{date}"),
            FieldValue::Flag(true) => f.write_str("ja"),
            FieldValue::Flag(false) => f.write_str("nee"),
            FieldValue::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One record a youth consented to release to its recipient: the youth as the recipient may
/// see them (their id where the consent lists `youth_id`, otherwise a pseudonym for that
/// recipient), the node that released it, and only the fields both the consent and the
/// request name (in the import format's column order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The table it comes from.
    pub kind: RecordKind,
    /// The youth's id or pseudonym.
    pub subject: String,
    /// The node that released it (its code).
    pub source: String,
    /// The released fields and their values (absent fields were not released, or are empty).
    pub fields: Vec<(&'static str, FieldValue)>,
}

impl Table {
    /// A table of released records: no cells, and the number of records as its total.
    pub fn of_records(rules: Vec<String>, records: Vec<Record>) -> Table {
        Table {
            template: Template::ConsentedRecords,
            dimensions: Vec::new(),
            rows: Vec::new(),
            total: Published::exact(records.len() as u64),
            rules,
            records,
        }
    }

    /// Whether any count of the table is perturbed.
    pub fn is_perturbed(&self) -> bool {
        !self.total.is_exact() || self.rows.iter().any(|row| !row.count.is_exact())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counts_add_with_their_bounds() {
        let a = Published::perturbed(12, 3, 2.0);
        assert_eq!(a + Published::exact(5), Published::perturbed(17, 3, 2.0));
        let nine = (0..9).fold(Published::exact(0), |sum, _| sum + a);
        assert_eq!(nine.max_deviation, 27);
        assert!((nine.typical_error() - 18f64.sqrt()).abs() < 1e-9);
        assert!(Published::exact(4).is_exact());
        assert!(!a.is_exact());
    }

    #[test]
    fn a_published_count_reads_with_its_bound() {
        assert_eq!(Published::exact(7).to_string(), "7");
        assert_eq!(Published::perturbed(12, 4, 2.0).to_string(), "12 ±4");
        assert_eq!(Published::perturbed(0, 36, 2.0).to_string(), "0 (0–36)");
        assert_eq!(Published::perturbed(4, 4, 2.0).to_string(), "4 ±4");
    }
}
