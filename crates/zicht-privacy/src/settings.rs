//! The disclosure settings a node enforces, their strict defaults and the network floor below
//! which no region may go (a raise-only rule, as in DataSHIELD).

use std::fmt;

use crate::{PeriodGranularity, PerturbationTable, PtableParams};

/// What a node enforces. Every field has a strict default; a region may make a field stricter
/// in its node configuration, never looser than [`Settings::FLOOR`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// D: no published person count differs from the true count by more than this.
    pub max_deviation: u32,
    /// V: the variance of the perturbation.
    pub variance: f64,
    /// js: no published person count is in `1..=js`.
    pub js: u32,
    /// A table whose published total is below this is refused (decided on the published
    /// value, so the refusal tells no more than the total would).
    pub population_floor: u32,
    /// The finest period a query may ask for.
    pub period_granularity: PeriodGranularity,
    /// Whether periods may be ranges of whole units; otherwise each is one calendar unit
    /// (month, quarter, half year, year). Off by default: a region may allow ranges.
    pub period_ranges: bool,
    /// How many dimensions one perturbed question may constrain, by filter or grouping
    /// together (a dimension both filtered and grouped counts once). Two by default: a cell
    /// of two dimensions then has no finer decompositions to average over (a third dimension
    /// would split it into parts, each an independent estimate). A ceiling: a region may
    /// lower it to 1, or allow 3.
    pub max_dimensions: u32,
    /// Distinct populations (template, scope, filters, grouping) one person may be given per
    /// day (a node asking for its people: four times that, for them together): bounds how
    /// fast anyone can average over many decompositions of one population. A ceiling.
    pub max_populations_per_day: u32,
    /// ... and in any 365 days: the budget does not reset. A population given again within
    /// the year does not count again. A ceiling.
    pub max_populations_per_year: u32,
    /// Length-of-stay figures only for groups whose published count reaches this.
    pub magnitude_min_youths: u32,
    /// ... and in which no youth makes up more than this share (percent) of the days. A
    /// ceiling.
    pub dominance_max_share_percent: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_deviation: 4,
            variance: 2.0,
            js: 3,
            population_floor: 5,
            period_granularity: PeriodGranularity::Month,
            period_ranges: false,
            max_dimensions: 2,
            max_populations_per_day: 500,
            max_populations_per_year: 10_000,
            magnitude_min_youths: 10,
            dominance_max_share_percent: 50,
        }
    }
}

/// A setting that is looser than the network allows, or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting's key, e.g. `max_deviation`.
    pub key: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl Settings {
    /// The network floor: the loosest value of each setting any node may run with.
    /// `max_dimensions`, `max_populations_per_day`, `max_populations_per_year` and
    /// `dominance_max_share_percent` are ceilings (lower is stricter).
    pub const FLOOR: Settings = Settings {
        max_deviation: 4,
        variance: 1.0,
        js: 3,
        population_floor: 5,
        period_granularity: PeriodGranularity::Month,
        period_ranges: true,
        max_dimensions: 3,
        max_populations_per_day: 2_000,
        max_populations_per_year: 40_000,
        magnitude_min_youths: 5,
        dominance_max_share_percent: 50,
    };

    /// The perturbation table parameters.
    pub fn ptable_params(&self) -> PtableParams {
        PtableParams {
            max_deviation: self.max_deviation,
            variance: self.variance,
            js: self.js,
        }
    }

    /// Every problem with these settings: a value looser than the floor, values that
    /// contradict each other, or a perturbation table that cannot meet its constraints.
    /// Empty when the node may run with them.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let floor = Settings::FLOOR;
        let mut problems = Vec::new();
        let mut below = |key: &'static str, value: u32, floor: u32| {
            if value < floor {
                problems.push(SettingProblem {
                    key,
                    reason: format!(
                        "{value} is below the network floor of {floor}; a region may only raise it"
                    ),
                });
            }
        };
        below("max_deviation", self.max_deviation, floor.max_deviation);
        below("js", self.js, floor.js);
        below(
            "population_floor",
            self.population_floor,
            floor.population_floor,
        );
        below(
            "magnitude_min_youths",
            self.magnitude_min_youths,
            floor.magnitude_min_youths,
        );
        if self.variance.is_nan() || self.variance < floor.variance {
            problems.push(SettingProblem {
                key: "variance",
                reason: format!(
                    "{} is below the network floor of {}; a region may only raise it",
                    self.variance, floor.variance
                ),
            });
        }
        let mut above = |key: &'static str, value: u32, ceiling: u32| {
            if value > ceiling || value == 0 {
                problems.push(SettingProblem {
                    key,
                    reason: format!(
                        "{value} is outside 1 to {ceiling}; a region may only lower it"
                    ),
                });
            }
        };
        above("max_dimensions", self.max_dimensions, floor.max_dimensions);
        above(
            "max_populations_per_day",
            self.max_populations_per_day,
            floor.max_populations_per_day,
        );
        above(
            "max_populations_per_year",
            self.max_populations_per_year,
            floor.max_populations_per_year,
        );
        above(
            "dominance_max_share_percent",
            self.dominance_max_share_percent,
            floor.dominance_max_share_percent,
        );
        if problems.is_empty() {
            match PerturbationTable::new(self.ptable_params()) {
                Err(error) => problems.push(SettingProblem {
                    key: "variance",
                    reason: error.to_string(),
                }),
                Ok(table) => {
                    if let Some(row) = table.problems().first() {
                        problems.push(SettingProblem {
                            key: "js",
                            reason: format!(
                                "the perturbation table {} cannot be unbiased: {row} (see zicht \
                                 privacy ptable)",
                                self.ptable_params()
                            ),
                        });
                    }
                }
            }
        }
        problems
    }

    /// The rules these settings apply to person counts, as named in results and logs.
    pub fn rules(&self) -> Vec<String> {
        vec![
            format!(
                "cell-key perturbation (D={} V={} js={}): each count within ±{} of the true \
                 count, none in 1..{}; the same youths always give the same count",
                self.max_deviation, self.variance, self.js, self.max_deviation, self.js
            ),
            "counts are perturbed one by one: cells do not add up to margins or totals".to_owned(),
            format!(
                "population-floor {} (published total)",
                self.population_floor
            ),
            if self.period_ranges {
                format!("periods in whole {}s", self.period_granularity)
            } else {
                format!(
                    "periods are one calendar unit (whole {}s at the finest)",
                    self.period_granularity
                )
            },
        ]
    }

    /// The rule for length-of-stay figures.
    pub fn magnitude_rule(&self) -> String {
        format!(
            "figures of a group (days of stay, number of measures) only for groups of at least \
             {} published youths, no youth over {}% of the group's total",
            self.magnitude_min_youths, self.dominance_max_share_percent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_floor_are_valid() {
        assert_eq!(Settings::default().problems(), vec![]);
        assert_eq!(Settings::FLOOR.problems(), vec![]);
    }

    #[test]
    fn looser_than_the_floor_is_refused_with_the_key() {
        let settings = Settings {
            max_deviation: 1,
            dominance_max_share_percent: 80,
            variance: 0.5,
            max_dimensions: 4,
            ..Settings::default()
        };
        let keys: Vec<_> = settings.problems().iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "max_deviation",
                "variance",
                "max_dimensions",
                "dominance_max_share_percent"
            ]
        );
        assert_eq!(
            settings.problems()[0].to_string(),
            "max_deviation: 1 is below the network floor of 4; a region may only raise it"
        );
    }

    #[test]
    fn a_table_that_cannot_be_unbiased_is_refused() {
        let settings = Settings {
            js: 5,
            ..Settings::default()
        };
        let problems = settings.problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "js");
        assert!(problems[0].reason.contains("cannot be unbiased"));
    }

    #[test]
    fn stricter_is_allowed() {
        let settings = Settings {
            max_deviation: 5,
            variance: 3.0,
            js: 3,
            population_floor: 20,
            period_granularity: PeriodGranularity::Quarter,
            period_ranges: false,
            max_dimensions: 1,
            max_populations_per_day: 100,
            max_populations_per_year: 1_000,
            magnitude_min_youths: 20,
            dominance_max_share_percent: 30,
        };
        assert_eq!(settings.problems(), vec![]);
    }
}
