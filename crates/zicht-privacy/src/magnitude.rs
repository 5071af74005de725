//! Magnitudes (length of stay): figures of a group are released only when the group's
//! published (perturbed) count reaches a floor and no single youth dominates the group's
//! total (the (1, k) dominance rule). Both depend only on the group's own youths, so a group
//! gets the same answer under every grouping that contains it.

use crate::Settings;

/// What a group of magnitudes consists of, as far as the rules need to know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Magnitudes {
    /// The group's published count of youths (after perturbation).
    pub published_youths: u64,
    /// The largest single youth's contribution (days).
    pub largest: f64,
    /// The sum of all contributions (days).
    pub sum: f64,
}

/// `Ok` when the group's figures may be released, else the name of the rule that withholds
/// them.
pub fn magnitudes(group: &Magnitudes, settings: &Settings) -> Result<(), &'static str> {
    if group.published_youths < u64::from(settings.magnitude_min_youths) {
        return Err("magnitude-min-youths");
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
    fn few_published_youths_or_one_dominant_youth_withhold() {
        let s = Settings::default();
        let group = |published_youths, largest, sum| Magnitudes {
            published_youths,
            largest,
            sum,
        };
        assert_eq!(magnitudes(&group(12, 100.0, 1200.0), &s), Ok(()));
        assert_eq!(
            magnitudes(&group(9, 100.0, 900.0), &s),
            Err("magnitude-min-youths")
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
