//! Property tests of the cell key method over many random tables: every published count is
//! within ±D of the true count, never in 1..js, zero stays zero, the deviation averages to 0,
//! and the same youths publish the same count however the table is cut.

use proptest::prelude::*;
use zicht_privacy::{cell_key, PerturbationTable, RecordKeySecret, Settings};

fn table(settings: &Settings) -> PerturbationTable {
    PerturbationTable::new(settings.ptable_params()).expect("valid settings")
}

/// Cells of random youths: each cell a count and the sum of its youths' record keys.
fn cells(secret: &RecordKeySecret, sizes: &[u32], seed: u32) -> Vec<(u64, u32)> {
    let mut next = 0u32;
    sizes
        .iter()
        .map(|&size| {
            let sum: u64 = (0..size)
                .map(|_| {
                    next += 1;
                    u64::from(secret.record_key(&format!("Y{seed}-{next}")))
                })
                .sum();
            (u64::from(size), cell_key(sum))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn published_counts_stay_within_d_and_outside_one_to_js(
        sizes in prop::collection::vec(0u32..60, 1..40),
        seed in any::<u32>(),
        d in 4u32..8,
        js in 3u32..5,
    ) {
        let settings = Settings { max_deviation: d, variance: f64::from(d), js, ..Settings::default() };
        prop_assume!(settings.problems().is_empty());
        let ptable = table(&settings);
        let secret = RecordKeySecret::from_bytes([seed as u8; 32]);
        for (count, key) in cells(&secret, &sizes, seed) {
            let published = ptable.perturb(count, key);
            prop_assert!(published.abs_diff(count) <= u64::from(d));
            prop_assert!(published == 0 || published > u64::from(js));
            if count == 0 {
                prop_assert_eq!(published, 0);
            }
        }
    }
}

#[test]
fn the_deviation_averages_to_zero_and_has_the_variance() {
    let settings = Settings::default();
    let ptable = table(&settings);
    let secret = RecordKeySecret::from_bytes([42; 32]);
    // 40,000 cells of each count: the mean deviation is within a few standard errors of 0.
    for count in [1u32, 2, 3, 5, 8, 20, 100] {
        let sizes = vec![count; 40_000];
        let deviations: Vec<f64> = cells(&secret, &sizes, count)
            .into_iter()
            .map(|(n, key)| ptable.perturb(n, key) as f64 - n as f64)
            .collect();
        let n = deviations.len() as f64;
        let mean = deviations.iter().sum::<f64>() / n;
        let variance = deviations.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let standard_error = (settings.variance / n).sqrt();
        assert!(
            mean.abs() < 5.0 * standard_error,
            "count {count}: mean {mean}"
        );
        // Rows near 1..=js cannot have exactly V with mean 0 (they skip 1..=js): the row's
        // own variance; every row from D + js + 1 on has V.
        let row = &ptable.rows()[(count as usize).min(ptable.rows().len() - 1)];
        let expected = if count > settings.max_deviation + settings.js {
            settings.variance
        } else {
            row.variance()
        };
        assert!(
            (variance - expected).abs() < 0.1,
            "count {count}: variance {variance}, not {expected}"
        );
    }
}

#[test]
fn the_same_youths_publish_the_same_count_in_any_order_or_grouping() {
    let ptable = table(&Settings::default());
    let secret = RecordKeySecret::from_bytes([9; 32]);
    let youths: Vec<String> = (0..37).map(|i| format!("Y{i}")).collect();
    let key = |ids: &[String]| cell_key(ids.iter().map(|y| u64::from(secret.record_key(y))).sum());
    let mut reversed = youths.clone();
    reversed.reverse();
    assert_eq!(key(&youths), key(&reversed));
    // A cell built from two halves (a margin) has the key of the whole.
    let (a, b) = youths.split_at(11);
    let combined = cell_key(u64::from(key(a)) + u64::from(key(b)));
    assert_eq!(combined, key(&youths));
    assert_eq!(
        ptable.perturb(37, combined),
        ptable.perturb(37, key(&youths))
    );
}

/// An attacker's differences `N(A_i + T) - N(A_i)` for `pairs` random larger groups `A_i` of
/// 30-200 youths and a small target `T` of `t` youths whose record keys add up to `target`:
/// how many of them are exactly `t`, with the table looked up by the cell key itself (as
/// before) and through the node's keyed function of it.
fn exact_differences(
    ptable: &PerturbationTable,
    secret: &RecordKeySecret,
    t: u64,
    target: u64,
    pairs: u32,
) -> (u32, u32) {
    let noise = secret.cell_noise();
    let (mut raw, mut keyed) = (0, 0);
    for i in 0..pairs {
        let size = 30 + u64::from(i % 170);
        let base: u64 = (0..size)
            .map(|j| u64::from(secret.record_key(&format!("A{target}-{i}-{j}"))))
            .sum();
        let exact = |lookup: &dyn Fn(u64) -> u32| {
            let with = ptable.perturb(size + t, lookup(base + target));
            let without = ptable.perturb(size, lookup(base));
            u32::from(with.wrapping_sub(without) == t)
        };
        raw += exact(&|sum| cell_key(sum));
        keyed += exact(&|sum| noise.lookup_key(sum));
    }
    (raw, keyed)
}

#[test]
fn decompositions_differing_by_the_same_youths_share_no_offset() {
    // With the table laid out in key order, every pair differing by the same youths has the
    // same key offset, so whether their difference is exact depends on the target: for some
    // targets nearly every pair is exact. Through the keyed function each pair is exact only
    // as often as two independent deviations cancel, whatever the target.
    let ptable = table(&Settings::default());
    let secret = RecordKeySecret::from_bytes([3; 32]);
    let pairs = 400;
    let (mut worst_raw, mut worst_keyed) = (0.0f64, 0.0f64);
    for target in 0..40u64 {
        let t = 1 + target % 4;
        let key_sum: u64 = (0..t)
            .map(|j| u64::from(secret.record_key(&format!("T{target}-{j}"))))
            .sum();
        let (raw, keyed) = exact_differences(&ptable, &secret, t, key_sum, pairs);
        worst_raw = worst_raw.max(f64::from(raw) / f64::from(pairs));
        worst_keyed = worst_keyed.max(f64::from(keyed) / f64::from(pairs));
    }
    let cancel = ptable_cancel_chance(&ptable);
    println!(
        "most exact pairs of one target, of 40: raw lookup {worst_raw:.2}, keyed {worst_keyed:.2}; two deviations cancel {cancel:.2}"
    );
    // Binomial noise of 400 pairs: a standard error of about 0.02 around the chance.
    assert!(
        worst_keyed < cancel + 0.08,
        "keyed lookup: a target's pairs are exact {worst_keyed:.2} of the time, chance {cancel:.2}"
    );
    assert!(
        worst_raw > cancel + 0.2,
        "the raw lookup's shared offset ({worst_raw:.2}) is what the keyed one removes"
    );
}

/// The chance that two independent deviations of the table's last (symmetric) row cancel.
fn ptable_cancel_chance(ptable: &PerturbationTable) -> f64 {
    let Some(last) = ptable.rows().last() else {
        return 0.0;
    };
    last.deviations
        .iter()
        .map(|d| d.probability().powi(2))
        .sum()
}
