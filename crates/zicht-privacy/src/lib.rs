//! Disclosure control for zicht: what may leave a node, decided on the node that owns the data.
//!
//! Pure functions over counts, no I/O. The node runs a template as SQL, hands the counts to
//! [`protect`], records what it released in its ledger and checks new queries against it with
//! [`differencing`]. The attacker model throughout: the attacker knows this algorithm and its
//! settings, every released cell, the total, and every margin of the table (each can be asked
//! as a query of its own).

mod differencing;
mod magnitude;
mod settings;
mod table;

pub use differencing::{differencing, Scope};
pub use magnitude::{magnitudes, Magnitudes};
pub use settings::{SettingProblem, Settings};
pub use table::{protect, Cell, Protected, Table};

/// Why disclosure control refused a result. The message names the rule, never a cell or a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The query's population is below the population floor.
    #[error("population-floor: the query covers fewer than {floor} youths")]
    PopulationFloor {
        /// The floor.
        floor: u32,
    },
    /// The youths of the region outside the query's population are 1 to floor-1.
    #[error("complement-floor: fewer than {floor} youths of the region fall outside the query")]
    ComplementFloor {
        /// The floor.
        floor: u32,
    },
    /// Every cell was below the minimum cell count.
    #[error("min-cell-count: no cell reaches {threshold}; ask with fewer group-by dimensions or a wider scope")]
    NoReleasableCell {
        /// The minimum cell count.
        threshold: u32,
    },
    /// Secondary suppression found no pattern that protects every small cell.
    #[error("secondary-suppression: the table cannot be protected at this granularity; ask with fewer group-by dimensions or a wider scope")]
    CannotProtect,
    /// The population differs from an earlier released one of the same requester by too little.
    #[error("differencing: the result differs from an earlier result released to you by fewer than {threshold} youths")]
    Differencing {
        /// The smallest difference allowed.
        threshold: u32,
    },
}

impl Refusal {
    /// The short name of the rule, as logged and counted.
    pub fn rule(&self) -> &'static str {
        match self {
            Refusal::PopulationFloor { .. } => "population-floor",
            Refusal::ComplementFloor { .. } => "complement-floor",
            Refusal::NoReleasableCell { .. } => "min-cell-count",
            Refusal::CannotProtect => "secondary-suppression",
            Refusal::Differencing { .. } => "differencing",
        }
    }
}
