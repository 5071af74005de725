//! The perturbation table of the cell key method: for every true count `i`, the probability of
//! each deviation `v` the published count `i + v` may take.
//!
//! The construction is the one of the Destatis `ptable` package (Giessing 2016; Enderle,
//! Giessing and Tent): row `i` may move to the targets `max(i - D, 0) ..= i + D` except the
//! blocked values `1..=js`; among all distributions over those targets it takes the one of
//! maximum entropy whose deviations have mean 0 and variance at most `V`. A zero stays zero
//! (a structural zero is not perturbed). Rows from `D + js + 1` on are all the same shifted
//! distribution (the symmetric row), since no target of theirs is blocked or below zero.
//!
//! The maximum-entropy distribution under those constraints has the form
//! `p(v) ∝ exp(a v + b v²)` with `b <= 0`; `a` and `b` are found by bisection (the mean is
//! increasing in `a`, the variance increasing in `b`), so the table is the same on every
//! machine to well within the 2^-32 resolution of a cell key. Probabilities are then turned
//! into integer intervals of the cell key range, and every check is made on those intervals.
//!
//! Where the targets leave no room for the constraints, a row says so instead of pretending:
//! a blocked row (`i` in `1..=js`) whose smallest mean-0 variance exceeds `V` gets that
//! smallest variance (as `ptable` relaxes blocked rows), and a row whose targets all lie on
//! one side of `i` cannot have mean 0 and moves to the nearest target. [`PerturbationTable::
//! problems`] lists such rows; a node refuses a table that has any.

use std::fmt;

/// The size of the cell key range: cell keys are `u32`, the interval of a deviation is a
/// sub-range of `0..2^32`.
const KEY_RANGE: u64 = 1 << 32;

/// The parameters a perturbation table is made from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PtableParams {
    /// D: the largest deviation of a published count from the true count.
    pub max_deviation: u32,
    /// V: the variance of the deviation (an upper bound; met exactly where D allows).
    pub variance: f64,
    /// js: no published count is in `1..=js` (0: no such rule).
    pub js: u32,
}

impl fmt::Display for PtableParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "D={} V={} js={}",
            self.max_deviation, self.variance, self.js
        )
    }
}

/// Why a perturbation table cannot be made at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PtableError {
    /// D must be at least 1 and at most 20.
    #[error("max_deviation must be between 1 and 20, not {0}")]
    MaxDeviation(u32),
    /// V must be positive and finite, and at most D² (a deviation of at most D cannot vary
    /// more).
    #[error("variance must be above 0 and at most max_deviation squared ({max}), not {value}")]
    Variance {
        /// The variance given.
        value: f64,
        /// D².
        max: f64,
    },
    /// js must stay below 100.
    #[error("js must be below 100, not {0}")]
    Js(u32),
}

/// One possible deviation of a row, and the cell keys that select it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deviation {
    /// The deviation `v` (published = true + v).
    pub value: i32,
    /// Cell keys in `lower..upper` (of `0..2^32`) select this deviation.
    pub lower: u64,
    /// See `lower`.
    pub upper: u64,
}

impl Deviation {
    /// Its probability (the share of cell keys that select it).
    pub fn probability(&self) -> f64 {
        (self.upper - self.lower) as f64 / KEY_RANGE as f64
    }
}

/// The deviations of one true count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The true count `i` this row is for (the last row serves every larger count too).
    pub count: u32,
    /// Its deviations in increasing order; their intervals tile `0..2^32`.
    pub deviations: Vec<Deviation>,
}

impl Row {
    /// Mean of the deviation.
    pub fn mean(&self) -> f64 {
        self.deviations
            .iter()
            .map(|d| f64::from(d.value) * d.probability())
            .sum()
    }

    /// Variance of the deviation (around its mean).
    pub fn variance(&self) -> f64 {
        let mean = self.mean();
        self.deviations
            .iter()
            .map(|d| (f64::from(d.value) - mean).powi(2) * d.probability())
            .sum()
    }

    /// The deviation a cell key selects.
    fn deviation(&self, cell_key: u32) -> i32 {
        let key = u64::from(cell_key);
        self.deviations
            .iter()
            .find(|d| key < d.upper)
            .or(self.deviations.last())
            .map_or(0, |d| d.value)
    }
}

/// A row that does not meet the table's constraints, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RowProblem {
    /// The row's true count.
    pub count: u32,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.count, self.reason)
    }
}

/// A perturbation table, made from its parameters by [`PerturbationTable::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct PerturbationTable {
    params: PtableParams,
    rows: Vec<Row>,
    problems: Vec<RowProblem>,
}

impl PerturbationTable {
    /// Makes the table of `params`.
    pub fn new(params: PtableParams) -> Result<PerturbationTable, PtableError> {
        let d = params.max_deviation;
        if !(1..=20).contains(&d) {
            return Err(PtableError::MaxDeviation(d));
        }
        let max = f64::from(d * d);
        if !(params.variance.is_finite() && params.variance > 0.0 && params.variance <= max) {
            return Err(PtableError::Variance {
                value: params.variance,
                max,
            });
        }
        if params.js >= 100 {
            return Err(PtableError::Js(params.js));
        }
        let last = if params.js == 0 { d } else { d + params.js + 1 };
        let mut rows = vec![Row {
            count: 0,
            deviations: vec![Deviation {
                value: 0,
                lower: 0,
                upper: KEY_RANGE,
            }],
        }];
        let mut problems = Vec::new();
        for count in 1..=last {
            let (row, problem) = make_row(count, &params);
            rows.push(row);
            problems.extend(problem);
        }
        for row in &rows {
            if row.mean().abs() > 1e-6 && !problems.iter().any(|p| p.count == row.count) {
                problems.push(RowProblem {
                    count: row.count,
                    reason: format!("mean deviation is {:.6}, not 0", row.mean()),
                });
            }
        }
        problems.sort_by_key(|p| p.count);
        Ok(PerturbationTable {
            params,
            rows,
            problems,
        })
    }

    /// The parameters.
    pub fn params(&self) -> PtableParams {
        self.params
    }

    /// Its rows: one per true count `0..=D + js + 1` (`0..=D` when js is 0); the last serves
    /// every larger count.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Rows that do not meet the constraints (mean 0, variance at most V): empty for a table
    /// a node may use.
    pub fn problems(&self) -> &[RowProblem] {
        &self.problems
    }

    /// The published count of a cell with true count `count` and cell key `cell_key`.
    pub fn perturb(&self, count: u64, cell_key: u32) -> u64 {
        let index = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.rows.len() - 1);
        let deviation = self.rows[index].deviation(cell_key);
        count.saturating_add_signed(i64::from(deviation))
    }

    /// The table as CSV: `i,j,v,p,p_int_lb,p_int_ub` as the `ptable` package writes it (the
    /// interval bounds as shares of the cell key range).
    pub fn to_csv(&self) -> String {
        let mut text = String::from("i,j,v,p,p_int_lb,p_int_ub\n");
        for row in &self.rows {
            for d in &row.deviations {
                text.push_str(&format!(
                    "{},{},{},{:.10},{:.10},{:.10}\n",
                    row.count,
                    i64::from(row.count) + i64::from(d.value),
                    d.value,
                    d.probability(),
                    d.lower as f64 / KEY_RANGE as f64,
                    d.upper as f64 / KEY_RANGE as f64,
                ));
            }
        }
        text
    }
}

/// One row and, when it cannot meet the constraints, why.
fn make_row(count: u32, params: &PtableParams) -> (Row, Option<RowProblem>) {
    let d = params.max_deviation as i32;
    let i = count as i32;
    let blocked = |j: i32| j >= 1 && j <= params.js as i32;
    let values: Vec<i32> = ((i - d).max(0)..=i + d)
        .filter(|&j| !blocked(j))
        .map(|j| j - i)
        .collect();
    let problem = |reason: String| Some(RowProblem { count, reason });
    let negative = values.iter().copied().filter(|&v| v < 0).max();
    let positive = values.iter().copied().filter(|&v| v > 0).min();
    let has_zero = values.contains(&0);
    if count > 0 && has_zero && negative.is_none() {
        // Only `count` itself and targets above it: mean 0 forces every key onto 0, and the
        // row would publish its true count every time.
        let row = Row {
            count,
            deviations: vec![Deviation {
                value: 0,
                lower: 0,
                upper: KEY_RANGE,
            }],
        };
        return (
            row,
            problem(format!(
                "no allowed target lies below {count} (D {} does not reach past js {} to 0): \
                 it would always publish {count} unperturbed",
                params.max_deviation, params.js
            )),
        );
    }
    if !has_zero && (negative.is_none() || positive.is_none()) {
        // Every target on one side: no mean-0 distribution; the nearest target.
        let nearest = values.iter().copied().min_by_key(|v| v.abs()).unwrap_or(0);
        let row = Row {
            count,
            deviations: vec![Deviation {
                value: nearest,
                lower: 0,
                upper: KEY_RANGE,
            }],
        };
        return (
            row,
            problem(format!(
                "every allowed target lies on one side of {count} (js {} >= what D {} can reach): \
                 it always moves by {nearest:+}",
                params.js, params.max_deviation
            )),
        );
    }
    // The smallest variance a mean-0 distribution over these targets can have: the two
    // targets nearest to `i` on either side (or none, when `i` itself is a target).
    let (low, high) = (negative.unwrap_or(0), positive.unwrap_or(0));
    let smallest = if has_zero {
        0.0
    } else {
        f64::from(-low) * f64::from(high)
    };
    let values: Vec<f64> = values.into_iter().map(f64::from).collect();
    let (probabilities, note) = if !has_zero && smallest >= params.variance - 1e-12 {
        // Only the two-point distribution of smallest variance fits.
        let (low, high) = (f64::from(low), f64::from(high));
        let p_low = high / (high - low);
        let probabilities = values
            .iter()
            .map(|&v| {
                if v == low {
                    p_low
                } else if v == high {
                    1.0 - p_low
                } else {
                    0.0
                }
            })
            .collect();
        let note = (smallest > params.variance + 1e-12).then(|| {
            format!(
                "blocked row: variance relaxed to {smallest:.3}, the smallest a mean-0 deviation \
                 over its targets can have (V is {})",
                params.variance
            )
        });
        (probabilities, note)
    } else {
        (maximum_entropy(&values, params.variance), None)
    };
    let row = Row {
        count,
        deviations: intervals(&values, &probabilities),
    };
    // A blocked row may exceed V (as in `ptable`); the node accepts that, and the CLI shows it.
    let blocked_row = blocked(i);
    let problem = match note {
        Some(note) if !blocked_row => problem(note),
        _ => None,
    };
    (row, problem)
}

/// `p(v) ∝ exp(a v + b v²)`, normalised, computed without overflow.
fn distribution(values: &[f64], a: f64, b: f64) -> Vec<f64> {
    let exponents: Vec<f64> = values.iter().map(|&v| a * v + b * v * v).collect();
    let top = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = exponents.iter().map(|&e| (e - top).exp()).collect();
    let sum: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

fn moments(values: &[f64], p: &[f64]) -> (f64, f64) {
    let mean = values.iter().zip(p).map(|(v, p)| v * p).sum();
    let second = values.iter().zip(p).map(|(v, p)| v * v * p).sum();
    (mean, second)
}

/// The `a` that gives mean 0 for a given `b` (the mean is increasing in `a`).
fn centring(values: &[f64], b: f64) -> f64 {
    let (mut low, mut high) = (-60.0f64, 60.0f64);
    for _ in 0..200 {
        let a = (low + high) / 2.0;
        let (mean, _) = moments(values, &distribution(values, a, b));
        if mean > 0.0 {
            high = a;
        } else {
            low = a;
        }
    }
    (low + high) / 2.0
}

/// The maximum-entropy distribution over `values` with mean 0 and second moment at most
/// `variance` (its variance, as the mean is 0). The targets must allow mean 0 with a second
/// moment below `variance`.
fn maximum_entropy(values: &[f64], variance: f64) -> Vec<f64> {
    let second = |b: f64| moments(values, &distribution(values, centring(values, b), b)).1;
    if second(0.0) <= variance {
        return distribution(values, centring(values, 0.0), 0.0);
    }
    // The second moment grows with b (towards 0): find the b that meets the variance.
    let (mut low, mut high) = (-1.0f64, 0.0f64);
    while second(low) > variance && low > -1e6 {
        low *= 2.0;
    }
    for _ in 0..200 {
        let b = (low + high) / 2.0;
        if second(b) > variance {
            high = b;
        } else {
            low = b;
        }
    }
    distribution(values, centring(values, low), low)
}

/// Integer intervals of the cell key range for the probabilities, in order; deviations of
/// probability 0 get none.
fn intervals(values: &[f64], probabilities: &[f64]) -> Vec<Deviation> {
    let mut deviations = Vec::with_capacity(values.len());
    let mut cumulative = 0.0;
    let mut lower = 0u64;
    for (k, (&v, &p)) in values.iter().zip(probabilities).enumerate() {
        cumulative += p;
        let upper = if k + 1 == values.len() {
            KEY_RANGE
        } else {
            ((cumulative * KEY_RANGE as f64).round() as u64).min(KEY_RANGE)
        };
        if upper > lower {
            deviations.push(Deviation {
                value: v as i32,
                lower,
                upper,
            });
            lower = upper;
        }
    }
    deviations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(d: u32, v: f64, js: u32) -> PerturbationTable {
        PerturbationTable::new(PtableParams {
            max_deviation: d,
            variance: v,
            js,
        })
        .expect("parameters")
    }

    #[test]
    fn rows_are_distributions_with_mean_zero_and_the_variance() {
        let t = table(3, 2.0, 2);
        assert_eq!(t.rows().len(), 7, "rows 0..=D+js+1");
        assert_eq!(t.problems(), &[] as &[RowProblem]);
        for row in t.rows() {
            let total: u64 = row.deviations.iter().map(|d| d.upper - d.lower).sum();
            assert_eq!(total, KEY_RANGE, "row {}", row.count);
            assert!(row.mean().abs() < 1e-6, "row {}: {}", row.count, row.mean());
            assert!(row.variance() <= 2.0 + 1e-6, "row {}", row.count);
            for d in &row.deviations {
                let published = i64::from(row.count) + i64::from(d.value);
                assert!(published >= 0 && !(1..=2).contains(&published));
                assert!(d.value.abs() <= 3);
            }
        }
        // The symmetric row meets the variance exactly and is symmetric.
        let last = t.rows().last().expect("rows");
        assert!((last.variance() - 2.0).abs() < 1e-6);
        let p = |v: i32| {
            last.deviations
                .iter()
                .find(|d| d.value == v)
                .map_or(0.0, Deviation::probability)
        };
        assert!((p(-2) - p(2)).abs() < 1e-6 && (p(-3) - p(3)).abs() < 1e-6);
        assert!(p(0) > p(1) && p(1) > p(2) && p(2) > p(3));
    }

    #[test]
    fn zero_stays_zero_and_large_counts_use_the_last_row() {
        let t = table(3, 2.0, 2);
        for key in [0, 1, u32::MAX / 2, u32::MAX] {
            assert_eq!(t.perturb(0, key), 0);
            let shifted = t.perturb(1000, key) as i64 - 1000;
            assert_eq!(shifted, t.perturb(6, key) as i64 - 6);
        }
    }

    #[test]
    fn a_wide_variance_is_met_where_d_allows() {
        // Uniform over -3..=3 has variance 4: V = 4 is met by b = 0 and mean-0 rows.
        let t = table(3, 4.0, 0);
        assert!((t.rows()[3].variance() - 4.0).abs() < 1e-6);
        assert_eq!(t.problems(), &[] as &[RowProblem]);
    }

    #[test]
    fn parameters_that_leave_no_room_say_which_rows() {
        // js 4 with D 3: a true 1 can only go to 0, a true 4 only up.
        let t = table(3, 2.0, 4);
        let rows: Vec<u32> = t.problems().iter().map(|p| p.count).collect();
        assert!(rows.contains(&1) && rows.contains(&4), "{rows:?}");
        assert_eq!(t.perturb(1, 12345), 0);
        // js 3 with D 3: a true 4 has no target below it but 0, which D cannot reach; it
        // would always be published as 4.
        let t = table(3, 2.0, 3);
        let problems = t.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].count, 4);
        assert!(problems[0].reason.contains("always publish 4 unperturbed"));
        assert!(table(4, 2.0, 3).problems().is_empty());
        assert!(PerturbationTable::new(PtableParams {
            max_deviation: 0,
            variance: 1.0,
            js: 0
        })
        .is_err());
        assert!(PerturbationTable::new(PtableParams {
            max_deviation: 2,
            variance: 5.0,
            js: 0
        })
        .is_err());
    }

    #[test]
    fn the_csv_lists_every_deviation() {
        let t = table(2, 1.0, 1);
        let csv = t.to_csv();
        assert!(csv.starts_with("i,j,v,p,p_int_lb,p_int_ub\n0,0,0,1.0000000000,"));
        let lines = csv.lines().count() - 1;
        let deviations: usize = t.rows().iter().map(|r| r.deviations.len()).sum();
        assert_eq!(lines, deviations);
    }
}
