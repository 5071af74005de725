//! The disclosure settings a node enforces, their strict defaults and the network floor below
//! which no region may go (a raise-only rule, as in DataSHIELD).

use std::fmt;

/// What a node enforces. Every field has a strict default; a region may make a field stricter
/// in its node configuration, never looser than [`Settings::FLOOR`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Person counts below this are released as `<min_cell_count` (zeros too). Also the
    /// smallest difference the differencing guard lets through.
    pub min_cell_count: u32,
    /// How wide the interval must be that an attacker can derive for a suppressed non-zero
    /// small cell from everything released (cells, margins, total). At most
    /// `min_cell_count - 1`, which is what `<min_cell_count` already says.
    pub protection_width: u32,
    /// Released counts are rounded to this base (0 = not rounded; else 5 or 10). Totals are
    /// rounded from unrounded data.
    pub rounding_base: u32,
    /// A query's population, and its complement within the region when not empty, must reach
    /// this.
    pub population_floor: u32,
    /// How many days the differencing guard remembers what a requester was given.
    pub differencing_window_days: u32,
    /// Length-of-stay figures need at least this many youths in the group.
    pub dominance_min_contributors: u32,
    /// ... and no youth may make up more than this share (percent) of the group's total days.
    pub dominance_max_share_percent: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_cell_count: 10,
            protection_width: 5,
            rounding_base: 0,
            population_floor: 10,
            differencing_window_days: 365,
            dominance_min_contributors: 10,
            dominance_max_share_percent: 50,
        }
    }
}

/// A setting that is looser than the network allows, or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting's key, e.g. `min_cell_count`.
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
    /// `dominance_max_share_percent` is a ceiling (a lower share is stricter).
    pub const FLOOR: Settings = Settings {
        min_cell_count: 5,
        protection_width: 2,
        rounding_base: 0,
        population_floor: 10,
        differencing_window_days: 365,
        dominance_min_contributors: 5,
        dominance_max_share_percent: 50,
    };

    /// Every problem with these settings: a value looser than the floor, or values that
    /// contradict each other. Empty when the node may run with them.
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
        below("min_cell_count", self.min_cell_count, floor.min_cell_count);
        below(
            "protection_width",
            self.protection_width,
            floor.protection_width,
        );
        below(
            "population_floor",
            self.population_floor,
            floor.population_floor,
        );
        below(
            "differencing_window_days",
            self.differencing_window_days,
            floor.differencing_window_days,
        );
        below(
            "dominance_min_contributors",
            self.dominance_min_contributors,
            floor.dominance_min_contributors,
        );
        if self.dominance_max_share_percent > floor.dominance_max_share_percent
            || self.dominance_max_share_percent == 0
        {
            problems.push(SettingProblem {
                key: "dominance_max_share_percent",
                reason: format!(
                    "{} is outside 1 to {}; a region may only lower it",
                    self.dominance_max_share_percent, floor.dominance_max_share_percent
                ),
            });
        }
        if ![0, 5, 10].contains(&self.rounding_base) {
            problems.push(SettingProblem {
                key: "rounding_base",
                reason: format!("{} is not 0 (off), 5 or 10", self.rounding_base),
            });
        }
        if self.protection_width >= self.min_cell_count {
            problems.push(SettingProblem {
                key: "protection_width",
                reason: format!(
                    "{} must be below min_cell_count ({}): `<{}` never says more than {} values",
                    self.protection_width,
                    self.min_cell_count,
                    self.min_cell_count,
                    self.min_cell_count
                ),
            });
        }
        problems
    }

    /// The rules these settings apply to person counts, as named in results and logs.
    pub fn rules(&self) -> Vec<String> {
        let mut rules = self.table_rules(true);
        rules.push(self.differencing_rule());
        rules
    }

    /// The rules [`crate::protect`] applied to one table; secondary suppression only when it
    /// hid a cell.
    pub fn table_rules(&self, suppressed: bool) -> Vec<String> {
        let mut rules = vec![
            format!("population-floor {}", self.population_floor),
            format!("min-cell-count {}", self.min_cell_count),
        ];
        if suppressed {
            rules.push(format!(
                "secondary-suppression (width {})",
                self.protection_width
            ));
        }
        if self.rounding_base > 0 {
            rules.push(format!("rounding base {}", self.rounding_base));
        }
        rules
    }

    /// The differencing guard, as named in results.
    pub fn differencing_rule(&self) -> String {
        format!("differencing-guard {} days", self.differencing_window_days)
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
            min_cell_count: 3,
            dominance_max_share_percent: 80,
            rounding_base: 3,
            ..Settings::default()
        };
        let keys: Vec<_> = settings.problems().iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "min_cell_count",
                "dominance_max_share_percent",
                "rounding_base",
                "protection_width"
            ]
        );
        assert_eq!(
            settings.problems()[0].to_string(),
            "min_cell_count: 3 is below the network floor of 5; a region may only raise it"
        );
    }

    #[test]
    fn stricter_is_allowed() {
        let settings = Settings {
            min_cell_count: 15,
            protection_width: 8,
            rounding_base: 5,
            population_floor: 20,
            differencing_window_days: 730,
            dominance_min_contributors: 12,
            dominance_max_share_percent: 30,
        };
        assert_eq!(settings.problems(), vec![]);
    }
}
