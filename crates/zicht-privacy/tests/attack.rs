//! Property tests of disclosure control against an attacker who knows the algorithm, every
//! released cell, the total and every margin of the table (each can be asked as a query of its
//! own): exactly where it reaches the threshold, as `<threshold` where it does not, as its own
//! query releases it. The attacker bounds each suppressed cell by linear programming over
//! everything consistent with that (the `attack()` of sdcTable).

use microlp::{ComparisonOp, OptimizationDirection, Problem, Variable};
use proptest::prelude::*;
use zicht_privacy::{protect, Cell, Protected, Refusal, Settings, Table};

/// The narrowest interval the attacker can derive for cell `target`.
fn attack(table: &Table, protected: &Protected, target: usize) -> (f64, f64) {
    let threshold = f64::from(protected.threshold);
    let bound = |direction| {
        let mut problem = Problem::new(direction);
        let variables: Vec<Option<Variable>> = protected
            .cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let objective = if i == target { 1.0 } else { 0.0 };
                match cell {
                    Cell::Released(_) => None,
                    // "<10" says 0 to 9; a secondary suppression is at least 10, because
                    // the attacker knows only small cells are suppressed first.
                    Cell::Small => Some(problem.add_var(objective, (0.0, threshold - 1.0))),
                    Cell::Suppressed => {
                        Some(problem.add_var(objective, (threshold, f64::INFINITY)))
                    }
                }
            })
            .collect();
        // Every margin: collapse any non-empty set of dimensions (all of them: the total).
        let dimensions = table.shape().len();
        for collapsed in 1u32..(1 << dimensions) {
            let mut groups: std::collections::BTreeMap<Vec<usize>, Vec<usize>> = Default::default();
            for i in 0..table.counts().len() {
                let mut key = table.coordinates(i);
                for (j, k) in key.iter_mut().enumerate() {
                    if collapsed & (1 << j) != 0 {
                        *k = usize::MAX;
                    }
                }
                groups.entry(key).or_default().push(i);
            }
            for cells in groups.values() {
                let mut known = 0.0;
                let mut terms = Vec::new();
                for &i in cells {
                    match variables[i] {
                        Some(v) => terms.push((v, 1.0)),
                        None => known += table.counts()[i] as f64,
                    }
                }
                let margin: f64 = cells.iter().map(|&i| table.counts()[i] as f64).sum();
                if terms.is_empty() {
                    continue;
                }
                if margin >= threshold {
                    problem.add_constraint(terms, ComparisonOp::Eq, margin - known);
                } else {
                    // A small margin is released as `<threshold` by its own query.
                    problem.add_constraint(terms.clone(), ComparisonOp::Ge, -known);
                    problem.add_constraint(terms, ComparisonOp::Le, threshold - 1.0 - known);
                }
            }
        }
        match problem.solve().expect("the true table is feasible") {
            microlp::SolveOutcome::Solution(solution) => solution.objective(),
            other => panic!("{other:?}"),
        }
    };
    (
        bound(OptimizationDirection::Minimize),
        bound(OptimizationDirection::Maximize),
    )
}

/// Tables of 1 to 3 dimensions with 2 to 4 values each; counts mix zeros, small and large, as
/// regional tables do.
fn tables() -> impl Strategy<Value = Table> {
    prop::collection::vec(2usize..=4, 1..=3).prop_flat_map(|shape| {
        let cells: usize = shape.iter().product();
        let count = prop_oneof![
            3 => Just(0u64),
            4 => 1u64..10,
            2 => 10u64..20,
            3 => 20u64..200,
        ];
        prop::collection::vec(count, cells)
            .prop_map(move |counts| Table::new(shape.clone(), counts).expect("shape"))
    })
}

fn settings() -> impl Strategy<Value = Settings> {
    (5u32..=12, 2u32..=6).prop_map(|(min_cell_count, width)| Settings {
        min_cell_count,
        protection_width: width.min(min_cell_count - 1),
        ..Settings::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_released_cell_is_small_and_no_suppressed_cell_can_be_narrowed(
        table in tables(),
        settings in settings(),
    ) {
        let threshold = u64::from(settings.min_cell_count);
        let protected = match protect(&table, &settings, None) {
            Ok(protected) => protected,
            Err(Refusal::PopulationFloor { .. }) => {
                prop_assert!(table.total() < u64::from(settings.population_floor));
                return Ok(());
            }
            Err(Refusal::NoReleasableCell { .. }) => {
                // Every cell small, or every large one needed to protect the small ones.
                return Ok(());
            }
            Err(refusal) => {
                prop_assert_eq!(refusal, Refusal::CannotProtect);
                return Ok(());
            }
        };
        prop_assert_eq!(protected.total, table.total());
        for (cell, &n) in protected.cells.iter().zip(table.counts()) {
            match cell {
                Cell::Released(released) => {
                    prop_assert!(n >= threshold);
                    prop_assert_eq!(*released, n);
                }
                Cell::Small => prop_assert!(n < threshold),
                Cell::Suppressed => prop_assert!(n >= threshold),
            }
        }
        for (i, cell) in protected.cells.iter().enumerate() {
            let n = table.counts()[i];
            if *cell == Cell::Small && n > 0 {
                let (low, high) = attack(&table, &protected, i);
                let (low, high) = (low.max(0.0), high.min((threshold - 1) as f64));
                prop_assert!(
                    high - low >= f64::from(settings.protection_width) - 1e-6,
                    "cell {} = {} narrowed to [{}, {}] in {:?} -> {:?}",
                    i, n, low, high, table, protected.cells
                );
            }
        }
    }
}

/// The attack itself must be able to fail: without secondary suppression, a lone small cell
/// is recomputed from the total.
#[test]
fn the_attack_recomputes_an_unprotected_cell() {
    let table = Table::new(vec![3], vec![3, 40, 30]).expect("shape");
    let naive = Protected {
        cells: vec![Cell::Small, Cell::Released(40), Cell::Released(30)],
        total: 73,
        threshold: 10,
        rounding_base: 0,
        rules: Vec::new(),
    };
    let (low, high) = attack(&table, &naive, 0);
    assert!((low - 3.0).abs() < 1e-6 && (high - 3.0).abs() < 1e-6);
    let protected = protect(&table, &Settings::default(), None).expect("protected");
    let (low, high) = attack(&table, &protected, 0);
    assert!(high - low >= 5.0 - 1e-6, "[{low}, {high}]");
}
