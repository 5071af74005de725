//! Magnitudes (length of stay): released only when enough youths contribute and no single
//! youth dominates the group's total (the (1, k) dominance rule).

use crate::Settings;

/// What a group of magnitudes consists of, as far as the rules need to know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Magnitudes {
    /// Distinct youths contributing.
    pub contributors: u64,
    /// The largest single youth's contribution (days).
    pub largest: f64,
    /// The sum of all contributions (days).
    pub sum: f64,
}

/// `Ok` when the group's statistics may be released, else the name of the rule that withholds
/// them.
pub fn magnitudes(group: &Magnitudes, settings: &Settings) -> Result<(), &'static str> {
    if group.contributors < u64::from(settings.dominance_min_contributors) {
        return Err("dominance-min-contributors");
    }
    if group.sum <= 0.0
        || group.largest * 100.0 > group.sum * f64::from(settings.dominance_max_share_percent)
    {
        return Err("dominance-max-share");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_contributors_or_one_dominant_youth_withhold() {
        let s = Settings::default();
        let group = |contributors, largest, sum| Magnitudes {
            contributors,
            largest,
            sum,
        };
        assert_eq!(magnitudes(&group(12, 100.0, 1200.0), &s), Ok(()));
        assert_eq!(
            magnitudes(&group(9, 100.0, 900.0), &s),
            Err("dominance-min-contributors")
        );
        assert_eq!(
            magnitudes(&group(12, 2000.0, 3100.0), &s),
            Err("dominance-max-share")
        );
        assert_eq!(
            magnitudes(&group(12, 50.0, 100.0), &s),
            Ok(()),
            "50% is allowed"
        );
    }
}
