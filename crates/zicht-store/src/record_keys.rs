//! Record keys (the cell key method): each youth's key is a keyed function of their
//! pseudonym that the node holds. The store never sees the secret and never stores a key: it
//! computes every youth's key while it builds the snapshot of the counted tables, with the
//! function the node passes, so a row imported a moment ago has its key as soon as it is
//! counted, and a new secret needs no rewrite of the data.

use std::fmt;
use std::sync::Arc;

/// The node's record-key function, named by a fingerprint that reveals nothing of the secret
/// (the snapshot remembers which keys it holds, and is rebuilt for another function).
#[derive(Clone)]
pub struct RecordKeys {
    fingerprint: String,
    key: Arc<dyn Fn(&str) -> u32 + Send + Sync>,
}

impl RecordKeys {
    /// The function `key` (pseudonym to record key), named `fingerprint`.
    pub fn new(
        fingerprint: impl Into<String>,
        key: impl Fn(&str) -> u32 + Send + Sync + 'static,
    ) -> RecordKeys {
        RecordKeys {
            fingerprint: fingerprint.into(),
            key: Arc::new(key),
        }
    }

    /// The name of the function.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The record key of the youth with pseudonym `youth_id`.
    pub fn key(&self, youth_id: &str) -> u32 {
        (self.key)(youth_id)
    }
}

impl fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordKeys")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}
