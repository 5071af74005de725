//! The disclosure control a node enforces: its settings, the perturbation table made from
//! them, the record-key secret (and the record-key function it gives the store's counts) and
//! the data-subject key.

use std::sync::Arc;

use zicht_model::Region;
use zicht_privacy::{PerturbationTable, RecordKeySecret, SettingProblem, Settings, SubjectKey};
use zicht_store::RecordKeys;

/// What a node enforces when it releases person counts.
#[derive(Debug, Clone)]
pub struct Disclosure {
    /// The disclosure settings (checked against the network floor when loaded).
    pub settings: Settings,
    /// The region whose data the node holds: `origin_region` lists only it and `onbekend`
    /// (and any other origin present), since under the woonplaatsbeginsel a region holds its
    /// own youths. `None` lists every region.
    pub region: Option<Region>,
    /// The perturbation table of `settings`.
    pub(crate) ptable: Arc<PerturbationTable>,
    /// The secret record keys (and records' pseudonyms) are derived under; without it,
    /// perturbed counts and consented records are refused.
    pub(crate) secret: Option<Arc<RecordKeySecret>>,
    /// The key data-subject ids are encrypted under in the processing log; without it,
    /// consented records are refused.
    pub(crate) subject_key: Option<Arc<SubjectKey>>,
}

impl Default for Disclosure {
    fn default() -> Self {
        Disclosure::new(Settings::default(), None, None)
            .unwrap_or_else(|problem| unreachable!("the default settings are valid: {problem}"))
    }
}

impl Disclosure {
    /// Disclosure control under `settings` for `region`'s data, keyed by `secret`; refuses
    /// settings below the network floor or whose perturbation table misses a constraint.
    pub fn new(
        settings: Settings,
        region: Option<Region>,
        secret: Option<RecordKeySecret>,
    ) -> Result<Disclosure, SettingProblem> {
        if let Some(problem) = settings.problems().into_iter().next() {
            return Err(problem);
        }
        let ptable =
            PerturbationTable::new(settings.ptable_params()).map_err(|error| SettingProblem {
                key: "variance",
                reason: error.to_string(),
            })?;
        Ok(Disclosure {
            settings,
            region,
            ptable: Arc::new(ptable),
            secret: secret.map(Arc::new),
            subject_key: None,
        })
    }

    /// The same for the data of `region`.
    pub fn for_region(self, region: Option<Region>) -> Disclosure {
        Disclosure { region, ..self }
    }

    /// The same with `secret`.
    pub fn with_secret(self, secret: RecordKeySecret) -> Disclosure {
        Disclosure {
            secret: Some(Arc::new(secret)),
            ..self
        }
    }

    /// The same with `key` for data-subject ids.
    pub fn with_subject_key(self, key: SubjectKey) -> Disclosure {
        Disclosure {
            subject_key: Some(Arc::new(key)),
            ..self
        }
    }

    /// The perturbation table in force.
    pub fn ptable(&self) -> &PerturbationTable {
        &self.ptable
    }

    /// Whether the node has its record-key secret.
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether the node has its data-subject key (it releases consented records only then).
    pub fn has_subject_key(&self) -> bool {
        self.subject_key.is_some()
    }

    /// The record-key function under the secret, for the store's counts (none without it).
    pub fn record_keys(&self) -> Option<RecordKeys> {
        self.secret.as_ref().map(|secret| {
            let keyer = secret.record_keys();
            RecordKeys::new(secret_fingerprint(secret), move |youth| keyer.key(youth))
        })
    }
}

/// A name for the secret that reveals nothing of it: the record key of a fixed pseudonym no
/// youth has (pseudonyms cannot contain a space).
fn secret_fingerprint(secret: &RecordKeySecret) -> String {
    format!("{:08x}", secret.record_key("zicht secret fingerprint"))
}
