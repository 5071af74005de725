//! Person-count tables: the minimum cell count, secondary suppression and rounding.
//!
//! Secondary suppression uses hypercubes (Repsilber's method, as in tau-ARGUS): a small cell
//! `a` is protected by suppressing the corners of a box in the table, one alternative value per
//! dimension, with alternating signs. Adding `s` to the even corners and subtracting it from the
//! odd ones changes no row, column, margin or total, so every such table is consistent with
//! everything released, and the attacker cannot tell them apart. The range of `s` that keeps
//! every corner within what the attacker knows of it (a small cell is `0..t-1`, a suppressed one
//! is at least `t`, since the attacker knows this algorithm) is therefore a range the attacker
//! cannot narrow `a` below. A box is accepted only when that range is at least
//! `protection_width` wide, so the guarantee holds by construction; other boxes and margins can
//! only widen it. Among the boxes that qualify, the one that hides the fewest youths is chosen.

use crate::{Refusal, Settings};

/// A person-count table: the count of every cell of the full cross product of the group-by
/// dimensions' value domains (zeros included), row-major with the last dimension fastest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    shape: Vec<usize>,
    counts: Vec<u64>,
}

impl Table {
    /// A table of `shape` (one size per dimension; none for an ungrouped count). `None` when
    /// the counts do not fill the shape exactly.
    pub fn new(shape: Vec<usize>, counts: Vec<u64>) -> Option<Table> {
        let cells = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        (cells == counts.len()).then_some(Table { shape, counts })
    }

    /// Size of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The counts, row-major.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The sum of all cells: the query's population.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The coordinates of cell `index`.
    pub fn coordinates(&self, mut index: usize) -> Vec<usize> {
        let mut coordinates = vec![0; self.shape.len()];
        for (j, &size) in self.shape.iter().enumerate().rev() {
            coordinates[j] = index % size;
            index /= size;
        }
        coordinates
    }

    /// The index of the cell at `coordinates`.
    pub fn index(&self, coordinates: &[usize]) -> usize {
        coordinates
            .iter()
            .zip(&self.shape)
            .fold(0, |index, (&c, &size)| index * size + c)
    }
}

/// One released cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Released (rounded to [`Protected::rounding_base`] when that is not 0).
    Released(u64),
    /// Below the minimum cell count, zeros included: shown as `<min_cell_count`.
    Small,
    /// Hidden to protect a small cell (secondary suppression); at least the minimum cell count.
    Suppressed,
}

/// A table after disclosure control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    /// One per table cell, in the table's order.
    pub cells: Vec<Cell>,
    /// The total (rounded from the unrounded total when rounding is on).
    pub total: u64,
    /// The minimum cell count applied (small cells read `<threshold`).
    pub threshold: u32,
    /// 0 when counts are exact, else the base they were rounded to.
    pub rounding_base: u32,
    /// The rules that shaped this result, for its footer and the log.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Exact,
    Primary,
    Secondary,
}

/// Applies the population and complement floors, the minimum cell count, secondary
/// suppression and rounding to `table`. `complement` is the number of the region's youths in
/// the same scope that the query's filters left out (`None` when it has no filters).
pub fn protect(
    table: &Table,
    settings: &Settings,
    complement: Option<u64>,
) -> Result<Protected, Refusal> {
    let floor = settings.population_floor;
    let total = table.total();
    if total < u64::from(floor) {
        return Err(Refusal::PopulationFloor { floor });
    }
    if let Some(complement) = complement {
        if complement > 0 && complement < u64::from(floor) {
            return Err(Refusal::ComplementFloor { floor });
        }
    }
    let threshold = u64::from(settings.min_cell_count);
    let mut status: Vec<Status> = table
        .counts
        .iter()
        .map(|&n| {
            if n < threshold {
                Status::Primary
            } else {
                Status::Exact
            }
        })
        .collect();
    if !status.contains(&Status::Exact) {
        return Err(Refusal::NoReleasableCell {
            threshold: settings.min_cell_count,
        });
    }
    let active: Vec<usize> = (0..table.shape.len())
        .filter(|&j| table.shape[j] > 1)
        .collect();
    let needs_protection =
        (0..table.counts.len()).any(|i| status[i] == Status::Primary && table.counts[i] > 0);
    let margins = if needs_protection {
        Margins::of(table, &active)
    } else {
        Margins(Default::default())
    };
    for index in 0..table.counts.len() {
        if status[index] == Status::Primary && table.counts[index] > 0 {
            let corners = cheapest_box(table, &status, &margins, index, settings)
                .ok_or(Refusal::CannotProtect)?;
            for corner in corners {
                if status[corner] == Status::Exact {
                    status[corner] = Status::Secondary;
                }
            }
        }
    }

    if !status.contains(&Status::Exact) {
        // Protecting the small cells hid every other one.
        return Err(Refusal::NoReleasableCell {
            threshold: settings.min_cell_count,
        });
    }
    let base = u64::from(settings.rounding_base);
    let round = |n: u64| (n + base / 2).checked_div(base).map_or(n, |q| q * base);
    let cells: Vec<Cell> = status
        .iter()
        .zip(&table.counts)
        .map(|(status, &n)| match status {
            Status::Exact => Cell::Released(round(n)),
            Status::Primary => Cell::Small,
            Status::Secondary => Cell::Suppressed,
        })
        .collect();
    let rules = settings.table_rules(cells.contains(&Cell::Suppressed));
    Ok(Protected {
        cells,
        total: round(total),
        threshold: settings.min_cell_count,
        rounding_base: settings.rounding_base,
        rules,
    })
}

/// A box around cell `a`: its other corners, and the range of shifts `[low, high]` of `a`
/// that keep each of them, and every margin the shift moves, within what the attacker knows.
struct Box_ {
    corners: Vec<usize>,
    low: i64,
    high: i64,
    /// Youths in corners that are still released (they would be hidden).
    cost: u64,
    /// Whether the box moves margins (it spans fewer dimensions than the table has).
    moves_margins: bool,
}

/// Every margin of the table: for each non-empty set of collapsed dimensions, the sums, keyed
/// by the coordinates with the collapsed ones set to `usize::MAX`.
struct Margins(std::collections::HashMap<Vec<usize>, u64>);

impl Margins {
    fn of(table: &Table, active: &[usize]) -> Margins {
        let mut sums = std::collections::HashMap::new();
        for collapsed in 1u32..(1 << active.len()) {
            for (index, &count) in table.counts.iter().enumerate() {
                let key = collapse(table.coordinates(index), active, collapsed);
                *sums.entry(key).or_insert(0) += count;
            }
        }
        Margins(sums)
    }
}

/// `coordinates` with the active dimensions in `collapsed` (bits over `active`) collapsed.
fn collapse(mut coordinates: Vec<usize>, active: &[usize], collapsed: u32) -> Vec<usize> {
    for (bit, &j) in active.iter().enumerate() {
        if collapsed & (1 << bit) != 0 {
            coordinates[j] = usize::MAX;
        }
    }
    coordinates
}

/// The corners that protect cell `a` at least `protection_width` wide while hiding the fewest
/// youths that are still released: one box if one suffices, else full boxes that share no
/// corner but `a`, whose shifts add up. `None` when no combination does.
fn cheapest_box(
    table: &Table,
    status: &[Status],
    margins: &Margins,
    a: usize,
    settings: &Settings,
) -> Option<Vec<usize>> {
    let threshold = i64::from(settings.min_cell_count);
    let width = i64::from(settings.protection_width);
    let value = table.counts[a] as i64;
    // What `<threshold` already tells about `a`, as a range of shifts.
    let (own_low, own_high) = (-value, threshold - 1 - value);
    let within = |low: i64, high: i64| high.min(own_high) - low.max(own_low);
    let mut boxes = boxes_around(table, status, margins, a, threshold);
    let single = boxes
        .iter()
        .filter(|b| within(b.low, b.high) >= width)
        .min_by_key(|b| (b.cost, b.corners.len()));
    if let Some(best) = single {
        return Some(best.corners.clone());
    }
    // Several full boxes (they move no margin, so their shifts are independent): cheapest
    // youths hidden per unit of shift first.
    boxes.retain(|b| !b.moves_margins && b.high > b.low);
    boxes.sort_by(|x, y| {
        let per = |b: &Box_| b.cost as f64 / (b.high - b.low) as f64;
        per(x).total_cmp(&per(y))
    });
    let (mut low, mut high) = (0i64, 0i64);
    let mut chosen: Vec<usize> = Vec::new();
    for candidate in &boxes {
        if candidate.corners.iter().any(|c| chosen.contains(c)) {
            continue;
        }
        chosen.extend(&candidate.corners);
        low = low.saturating_add(candidate.low);
        high = high.saturating_add(candidate.high);
        if within(low, high) >= width {
            return Some(chosen);
        }
    }
    None
}

/// Every box around `a`: a non-empty set of the dimensions that have alternative values, and
/// one alternative value for each of them. A box over every such dimension moves no margin; a
/// box over fewer moves the margins that keep its dimensions, which works only where those
/// margins are small (the attacker knows them as `<threshold`, not exactly).
fn boxes_around(
    table: &Table,
    status: &[Status],
    margins: &Margins,
    a: usize,
    threshold: i64,
) -> Vec<Box_> {
    let origin = table.coordinates(a);
    let active: Vec<usize> = (0..table.shape.len())
        .filter(|&j| table.shape[j] > 1)
        .collect();
    let all = (1u32 << active.len()) - 1;
    let mut boxes = Vec::new();
    for spanned in 1..=all {
        let dims: Vec<usize> = (0..active.len())
            .filter(|bit| spanned & (1 << bit) != 0)
            .collect();
        // Margins the box moves: those that collapse only dimensions it does not span.
        let free = all & !spanned;
        let moved: Vec<u32> = (1..=free).filter(|m| m & !free == 0).collect();
        let alternative = |bit: usize, k: usize| if k < origin[active[bit]] { k } else { k + 1 };
        let mut choice: Vec<usize> = vec![0; dims.len()];
        loop {
            let mut candidate = Box_ {
                corners: Vec::with_capacity((1 << dims.len()) - 1),
                low: i64::MIN,
                high: i64::MAX,
                cost: 0,
                moves_margins: !moved.is_empty(),
            };
            for mask in 0..(1usize << dims.len()) {
                let mut coordinates = origin.clone();
                for (i, &bit) in dims.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        coordinates[active[bit]] = alternative(bit, choice[i]);
                    }
                }
                // Corners an even number of steps from `a` move with it, odd ones against it.
                let along = mask.count_ones() % 2 == 0;
                let mut bound = |x: i64, lo: i64, hi: i64| {
                    if along {
                        candidate.low = candidate.low.max(lo - x);
                        candidate.high = candidate.high.min(hi.saturating_sub(x));
                    } else {
                        candidate.low = candidate.low.max(x.saturating_sub(hi));
                        candidate.high = candidate.high.min(x - lo);
                    }
                };
                for &collapsed in &moved {
                    let key = collapse(coordinates.clone(), &active, collapsed);
                    let m = margins.0.get(&key).copied().unwrap_or(0) as i64;
                    // A margin of at least the threshold is known exactly: it cannot move.
                    let hi = if m >= threshold { m } else { threshold - 1 };
                    let lo = if m >= threshold { m } else { 0 };
                    bound(m, lo, hi);
                }
                if mask != 0 {
                    let corner = table.index(&coordinates);
                    let x = table.counts[corner] as i64;
                    // What the attacker knows of this corner once the box is suppressed.
                    let (lo, hi) = match status[corner] {
                        Status::Primary => (0, threshold - 1),
                        Status::Exact | Status::Secondary => (threshold, i64::MAX),
                    };
                    bound(x, lo, hi);
                    if status[corner] == Status::Exact {
                        candidate.cost += x as u64;
                    }
                    candidate.corners.push(corner);
                }
            }
            if candidate.high > candidate.low {
                boxes.push(candidate);
            }
            let mut i = 0;
            loop {
                if i == dims.len() {
                    break;
                }
                choice[i] += 1;
                if choice[i] < table.shape[active[dims[i]]] - 1 {
                    break;
                }
                choice[i] = 0;
                i += 1;
            }
            if i == dims.len() {
                break;
            }
        }
    }
    boxes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(shape: &[usize], counts: &[u64]) -> Table {
        Table::new(shape.to_vec(), counts.to_vec()).expect("shape")
    }

    #[test]
    fn coordinates_round_trip() {
        let t = table(&[2, 3, 4], &[0; 24]);
        for i in 0..24 {
            assert_eq!(t.index(&t.coordinates(i)), i);
        }
        assert_eq!(t.coordinates(23), vec![1, 2, 3]);
        assert!(Table::new(vec![2, 3], vec![0; 5]).is_none());
    }

    #[test]
    fn large_cells_are_released_exactly() {
        let p = protect(&table(&[3], &[10, 20, 30]), &Settings::default(), None).unwrap();
        assert_eq!(
            p.cells,
            [Cell::Released(10), Cell::Released(20), Cell::Released(30)]
        );
        assert_eq!(p.total, 60);
    }

    #[test]
    fn a_small_cell_takes_a_complement_with_it() {
        let p = protect(&table(&[3], &[3, 40, 30]), &Settings::default(), None).unwrap();
        // 30 is the cheapest complement that leaves the attacker 5 values of freedom.
        assert_eq!(p.cells, [Cell::Small, Cell::Released(40), Cell::Suppressed]);
        assert_eq!(p.total, 73);
    }

    #[test]
    fn a_complement_too_close_to_the_threshold_does_not_protect() {
        // 11 can only give 1 youth before it would fall below 10 (the attacker could tell
        // the 3 is 0 to 4); 25 is needed. 12 would have done: 0 to 5.
        let p = protect(&table(&[3], &[3, 11, 25]), &Settings::default(), None).unwrap();
        assert_eq!(p.cells, [Cell::Small, Cell::Released(11), Cell::Suppressed]);
        let p = protect(&table(&[3], &[3, 12, 25]), &Settings::default(), None).unwrap();
        assert_eq!(p.cells, [Cell::Small, Cell::Suppressed, Cell::Released(25)]);
    }

    #[test]
    fn two_small_cells_in_a_row_can_protect_each_other() {
        // 2 and 7 can trade up to 5 youths either way... as long as each stays within 0..9.
        let p = protect(&table(&[3], &[2, 7, 100]), &Settings::default(), None).unwrap();
        assert_eq!(p.cells[2], Cell::Released(100));
    }

    #[test]
    fn zeros_are_shown_small_but_need_no_complement() {
        let p = protect(&table(&[3], &[0, 50, 60]), &Settings::default(), None).unwrap();
        assert_eq!(
            p.cells,
            [Cell::Small, Cell::Released(50), Cell::Released(60)]
        );
    }

    #[test]
    fn a_two_way_table_suppresses_a_box() {
        #[rustfmt::skip]
        let t = table(&[2, 3], &[
            4, 30, 40,
            20, 25, 50,
        ]);
        let p = protect(&t, &Settings::default(), None).unwrap();
        assert_eq!(p.cells[0], Cell::Small);
        let hidden: Vec<usize> = (0..6).filter(|&i| p.cells[i] == Cell::Suppressed).collect();
        // The cheapest box: row 0 col 1 (30), row 1 col 0 (20), row 1 col 1 (25).
        assert_eq!(hidden, vec![1, 3, 4]);
    }

    #[test]
    fn floors_refuse() {
        let s = Settings::default();
        assert_eq!(
            protect(&table(&[2], &[4, 5]), &s, None),
            Err(Refusal::PopulationFloor { floor: 10 })
        );
        assert_eq!(
            protect(&table(&[2], &[40, 50]), &s, Some(3)),
            Err(Refusal::ComplementFloor { floor: 10 })
        );
        assert!(protect(&table(&[2], &[40, 50]), &s, Some(0)).is_ok());
        assert_eq!(
            protect(&table(&[3], &[4, 5, 6]), &s, None),
            Err(Refusal::NoReleasableCell { threshold: 10 })
        );
        // Only one other cell, and it cannot give enough youths: nothing protects the 3.
        assert_eq!(
            protect(&table(&[2], &[3, 11]), &s, None),
            Err(Refusal::CannotProtect)
        );
    }

    #[test]
    fn rounding_rounds_released_counts_and_the_unrounded_total() {
        let s = Settings {
            rounding_base: 5,
            ..Settings::default()
        };
        let p = protect(&table(&[3], &[12, 13, 18]), &s, None).unwrap();
        assert_eq!(
            p.cells,
            [Cell::Released(10), Cell::Released(15), Cell::Released(20)]
        );
        assert_eq!(p.total, 45, "43 rounds to 45, not 10 + 15 + 20");
        assert!(p.rules.contains(&"rounding base 5".to_owned()));
    }
}
