//! Audit records and their hash chains, as pure functions.
//!
//! A node keeps two append-only logs (see the audit design):
//! - the **processing log** ([`ProcessingRecord`]) follows the Dutch standard *Logboek
//!   Dataverwerkingen* (Logius): trace and operation ids, status, the processing activity
//!   (the purpose's URI), the resource, and zicht's own fields (template and version, a hash
//!   of the parameters, population size, the disclosure decisions, a hash of the result).
//!   It never holds data values. A release of consented records adds one record per youth,
//!   whose `data_subject_id` is the youth's id encrypted under the node's key, with the
//!   consents, the recipient and the fields; no youth is named in the clear;
//! - the **access log** ([`AccessRecord`]): which certificate (PeerID and role) did what,
//!   linked to the processing log by operation id.
//!
//! Each entry is stored as its canonical JSON body with `hash = SHA-256(prev_hash || body)`,
//! the first entry chaining from [`GENESIS`]. [`verify`] recomputes a chain and names the
//! first entry that does not fit: an edited body, a deleted or reordered entry. A chain cut
//! off at the end still verifies on its own; that is what checkpoints held by peers are for.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The operation of another node that caused this one (its trace and operation id and the
/// node's entity URI), as the standard's `foreign_operation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignOperation {
    /// The other node's trace id (32 hex digits).
    pub trace_id: String,
    /// The other node's operation id (16 hex digits).
    pub operation_id: String,
    /// The other node's entity URI (its role URI).
    pub entity: String,
    /// The person at the other node the call was made for (their PeerID), when the other node
    /// asked on behalf of one of its analysts; the other node's mutual-TLS identity vouches
    /// for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// One processing operation, as the Logboek Dataverwerkingen record plus zicht's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessingRecord {
    /// 16 bytes as 32 hex digits; shared by every node a federated query touches.
    pub trace_id: String,
    /// 8 bytes as 16 hex digits; this operation.
    pub operation_id: String,
    /// The operation on this node that started this one, if any.
    pub parent_operation_id: Option<String>,
    /// `OK` or `ERROR` (a refusal is an error with the rule in `decisions`).
    pub status_code: String,
    /// What was done, e.g. `zicht.v1.Inway/Query`, `zicht.v1.Outway/FederatedQuery`.
    pub name: String,
    /// Start, milliseconds since the Unix epoch.
    pub start_time: i64,
    /// End, milliseconds since the Unix epoch.
    pub end_time: i64,
    /// The caller's operation on another node, when there is one.
    pub foreign_operation: Option<ForeignOperation>,
    /// The node that processed (its entity URI).
    pub resource: String,
    /// `dpl.core.processing_activity_id`: the purpose's URI.
    pub processing_activity_id: String,
    /// Template code.
    pub template: String,
    /// Template version.
    pub template_version: u32,
    /// SHA-256 of the encoded request parameters, hex.
    pub parameter_hash: String,
    /// Youths in the released population as published (perturbed, unless exact for the data's
    /// owner), when something was released: never a count that did not leave the node.
    pub population: Option<u64>,
    /// The disclosure decisions and outcome: rules applied or the refusing rule.
    pub decisions: String,
    /// SHA-256 of the encoded released result, hex, when something was released.
    pub result_hash: Option<String>,
    /// `dpl.core.data_subject_id`, encrypted under the node's data-subject key: the youth
    /// whose records this operation released (consented records; one record per youth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_subject_id: Option<String>,
    /// What a consented release gave, and under which consents (consented records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented: Option<ConsentedRelease>,
}

/// What one consented release of one youth's records gave: under which consents, to whom and
/// which fields. Never values, never the youth's id (that is `data_subject_id`, encrypted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentedRelease {
    /// The consents that allowed it.
    pub consent_ids: Vec<String>,
    /// The recipient the consents name (a PeerID, `region:<code>` or a network code).
    pub recipient: String,
    /// Who was given the records: the caller's PeerID, or the person a node asked for.
    pub given_to: String,
    /// The organisation of the certificate that asked (its subject O).
    pub organisation: String,
    /// The fields released.
    pub fields: Vec<String>,
    /// How many records (placements and checks) were released.
    pub records: u64,
}

/// One access: who (certificate) did what, linked to the processing log by operation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The processing operation this access caused.
    pub operation_id: String,
    /// The caller's PeerID (certificate serialNumber), or `local`.
    pub peer_id: String,
    /// The caller's role URI.
    pub role: String,
    /// What was asked, e.g. `zicht.v1.Inway/Query`.
    pub action: String,
    /// `released`, `refused: <rule>`, `forwarded to ...`.
    pub outcome: String,
    /// When, milliseconds since the Unix epoch.
    pub time: i64,
}

/// The canonical body of a record: its JSON with fields in declaration order.
pub fn body<T: Serialize>(record: &T) -> String {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_string(record).unwrap_or_default()
}

/// The hash of an entry: SHA-256 over the previous hash (hex) and the body, hex.
pub fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(body.as_bytes());
    hex::encode(hasher.finalize())
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One stored entry of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position, 1-based and without gaps.
    pub seq: i64,
    /// The canonical body.
    pub body: String,
    /// The hash of the entry before (or [`GENESIS`]).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where and why a chain is broken. Names the entry, never its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {reason}")]
pub struct Broken {
    /// The first entry that does not fit.
    pub seq: i64,
    /// What does not fit.
    pub reason: &'static str,
}

/// A verified chain: how many entries and the hash of the last (the chain head).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// The last entry's hash, or [`GENESIS`] for an empty chain.
    pub head: String,
}

/// Checks `entries` (in `seq` order) as one chain from [`GENESIS`].
pub fn verify(entries: impl IntoIterator<Item = Entry>) -> Result<Verified, Broken> {
    let mut head = GENESIS.to_owned();
    let mut count = 0u64;
    for entry in entries {
        count += 1;
        let expected_seq = i64::try_from(count).unwrap_or(i64::MAX);
        if entry.seq != expected_seq {
            return Err(Broken {
                seq: entry.seq,
                reason: if entry.seq > expected_seq {
                    "an entry before it is missing"
                } else {
                    "out of order"
                },
            });
        }
        if entry.prev_hash != head {
            return Err(Broken {
                seq: entry.seq,
                reason: "does not follow the entry before it",
            });
        }
        if chain_hash(&entry.prev_hash, &entry.body) != entry.hash {
            return Err(Broken {
                seq: entry.seq,
                reason: "its hash does not match its contents",
            });
        }
        head = entry.hash;
    }
    Ok(Verified {
        entries: count,
        head,
    })
}

/// The head of one chain: its last entry's position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The last entry's `seq` (0 for an empty chain).
    pub seq: i64,
    /// The last entry's hash ([`GENESIS`] for an empty chain).
    pub head: String,
}

/// What a node signs and sends to its peers: the heads of both its chains at a moment. A peer
/// that holds it can later show that the node's history up to there was rewritten or cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The node's entity URI.
    pub node: String,
    /// Its processing log head.
    pub processing: ChainHead,
    /// Its access log head.
    pub access: ChainHead,
    /// When, milliseconds since the Unix epoch.
    pub time: i64,
}

/// Checks a chain against a head a peer holds: the entry at `head.seq` must exist and have
/// that hash. An empty head (seq 0) says nothing.
pub fn check_head(entries: &[Entry], head: &ChainHead) -> Result<(), Broken> {
    if head.seq <= 0 {
        return Ok(());
    }
    let position = usize::try_from(head.seq - 1).unwrap_or(usize::MAX);
    match entries.get(position) {
        None => Err(Broken {
            seq: head.seq,
            reason: "missing, though a peer holds a checkpoint of it (the log was cut)",
        }),
        Some(entry) if entry.seq != head.seq || entry.hash != head.head => Err(Broken {
            seq: head.seq,
            reason: "differs from the checkpoint a peer holds (history was rewritten)",
        }),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(bodies: &[&str]) -> Vec<Entry> {
        let mut prev = GENESIS.to_owned();
        bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let hash = chain_hash(&prev, body);
                let entry = Entry {
                    seq: i as i64 + 1,
                    body: (*body).to_owned(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let entries = chain(&["a", "b", "c"]);
        let head = entries[2].hash.clone();
        assert_eq!(verify(entries), Ok(Verified { entries: 3, head }));
        assert_eq!(verify(Vec::new()).map(|v| v.head), Ok(GENESIS.to_owned()));
    }

    #[test]
    fn edits_deletions_and_reorders_name_the_first_broken_entry() {
        let mut edited = chain(&["a", "b", "c"]);
        edited[1].body = "B".to_owned();
        assert_eq!(verify(edited).unwrap_err().seq, 2);

        let mut deleted = chain(&["a", "b", "c"]);
        deleted.remove(1);
        assert_eq!(
            verify(deleted).unwrap_err(),
            Broken {
                seq: 3,
                reason: "an entry before it is missing"
            }
        );

        let mut reordered = chain(&["a", "b", "c"]);
        reordered.swap(1, 2);
        assert_eq!(verify(reordered).unwrap_err().seq, 3);

        // Rewriting an entry and its own hash still breaks the next one.
        let mut rehashed = chain(&["a", "b", "c"]);
        rehashed[1].body = "B".to_owned();
        rehashed[1].hash = chain_hash(&rehashed[1].prev_hash, "B");
        assert_eq!(
            verify(rehashed).unwrap_err(),
            Broken {
                seq: 3,
                reason: "does not follow the entry before it"
            }
        );
    }

    #[test]
    fn bodies_are_canonical_json_in_field_order() {
        let access = AccessRecord {
            operation_id: "00000000000000ff".to_owned(),
            peer_id: "00000099000000000001".to_owned(),
            role: "urn:zicht:region:drenthe".to_owned(),
            action: "zicht.v1.Inway/Query".to_owned(),
            outcome: "released".to_owned(),
            time: 1,
        };
        assert_eq!(
            body(&access),
            r#"{"operation_id":"00000000000000ff","peer_id":"00000099000000000001","role":"urn:zicht:region:drenthe","action":"zicht.v1.Inway/Query","outcome":"released","time":1}"#
        );
    }

    #[test]
    fn a_rewritten_or_cut_chain_misses_a_peers_checkpoint() {
        let entries = chain(&["a", "b", "c"]);
        let head = ChainHead {
            seq: 2,
            head: entries[1].hash.clone(),
        };
        assert_eq!(check_head(&entries, &head), Ok(()));
        // Rewritten from the start, every hash recomputed: intact on its own, not against
        // the checkpoint.
        let rewritten = chain(&["A", "b", "c"]);
        assert!(verify(rewritten.clone()).is_ok());
        assert_eq!(check_head(&rewritten, &head).unwrap_err().seq, 2);
        let cut = chain(&["a"]);
        assert!(check_head(&cut, &head).unwrap_err().reason.contains("cut"));
    }
}
