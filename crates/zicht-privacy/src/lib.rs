//! Disclosure control for zicht: what may leave a node, decided on the node that owns the data.
//!
//! The cell key method (ABS TableBuilder; ONS Census 2021 custom tables; Destatis `ptable` and
//! `cellKey`): every youth has a secret [record key](RecordKeySecret::record_key), a cell's key
//! is the sum of its youths' record keys ([`cell_key`]), and every published person count is
//! the true count plus a deviation the [`PerturbationTable`] gives for that count and cell key.
//! The same set of youths therefore always publishes the same number, for every requester,
//! route, grouping and filter, and differences between releases are noise, not people.
//!
//! Pure functions, no I/O. See `docs/privacy.md` for the method, the parameters and what it
//! does and does not protect against.

mod cellkey;
mod consent;
mod hex;
mod magnitude;
mod period;
mod pseudonym;
mod ptable;
mod settings;

pub use cellkey::{cell_key, CellNoise, RecordKeySecret, RecordKeyer};
pub use consent::{SubjectKey, NONCE_BYTES};
pub use magnitude::{magnitudes, Magnitudes};
pub use period::PeriodGranularity;
pub use pseudonym::PseudonymKey;
pub use ptable::{Deviation, PerturbationTable, PtableError, PtableParams, Row, RowProblem};
pub use settings::{SettingProblem, Settings};

/// Why disclosure control refused a result. Every refusal is decided on published values or
/// on the request alone, so it tells nothing the answer would not; the message names the
/// rule, never a cell or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The published (perturbed) total is below the population floor.
    #[error("population-floor: the published total is below {floor}; ask with a wider scope or fewer filters")]
    PopulationFloor {
        /// The floor.
        floor: u32,
    },
    /// The period is not whole units of the node's granularity.
    #[error("{0}")]
    PeriodGranularity(String),
    /// A filter of a perturbed release is neither one value nor one group of its code lists.
    #[error("filter-vocabulary: a filter on {0} keeps one value, or one group the code lists define (the care types of a stay group; the regions of a landsdeel or network); ask each value or group as its own question")]
    FilterVocabulary(String),
    /// A filter of a perturbed release leaves values out (`!=`): a part and its complement
    /// are two independent estimates of every cell they split.
    #[error("filter-vocabulary: a filter on {0} leaves values out (!=), which only the data's owner may ask; keep a value or group instead, or group by {0} and skip its rows")]
    LeaveOut(String),
    /// A perturbed release constrains more dimensions than the node allows.
    #[error("dimensions: this node answers questions on at most {limit} dimensions, filters and groupings together (privacy.max_dimensions); drop one, or ask the region for the finer table")]
    Dimensions {
        /// The node's `max_dimensions`.
        limit: u32,
    },
    /// A budget of distinct populations is spent: the requester's own, or (for a node asking
    /// for its people) the node's.
    #[error(
        "distinct-populations: {} given {limit} distinct populations {}, this node's limit; {}",
        .holder.text(),
        .window.text(),
        .window.when()
    )]
    DistinctPopulations {
        /// The limit.
        limit: u32,
        /// Over which time.
        window: BudgetWindow,
        /// Whose budget.
        holder: BudgetHolder,
    },
}

/// The time a budget of distinct populations runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetWindow {
    /// Today (UTC).
    Day,
    /// The last 365 days.
    Year,
}

impl BudgetWindow {
    fn text(self) -> &'static str {
        match self {
            BudgetWindow::Day => "today",
            BudgetWindow::Year => "in the last 365 days",
        }
    }

    fn when(self) -> &'static str {
        match self {
            BudgetWindow::Day => "ask again tomorrow",
            BudgetWindow::Year => {
                "it frees as those releases become a year old (questions asked before do not count again)"
            }
        }
    }
}

/// Whose budget of distinct populations is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetHolder {
    /// The requester's own (a person's, or a node asking for itself).
    You,
    /// The budget of the node that asks for the person, shared by all its people.
    YourNode,
}

impl BudgetHolder {
    fn text(self) -> &'static str {
        match self {
            BudgetHolder::You => "you were",
            BudgetHolder::YourNode => "the node that asks for you (its people together) was",
        }
    }
}

impl Refusal {
    /// The short name of the rule, as logged and counted.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::PopulationFloor { .. } => "population-floor",
            Refusal::PeriodGranularity(_) => "period-granularity",
            Refusal::FilterVocabulary(_) | Refusal::LeaveOut(_) => "filter-vocabulary",
            Refusal::Dimensions { .. } => "dimensions",
            Refusal::DistinctPopulations { .. } => "distinct-populations",
        }
    }
}
