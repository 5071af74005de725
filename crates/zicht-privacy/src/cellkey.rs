//! Record keys and cell keys. Every youth has a record key, uniform over `u32`, derived from
//! the youth's pseudonym under the node's secret (HMAC-SHA-256), so the keys survive
//! re-imports and rebuilt databases but cannot be computed without the secret. A cell's key is
//! the sum of its youths' record keys modulo 2^32: the same set of youths always has the same
//! cell key, whoever asks and however the table is cut. The perturbation table is not looked
//! up with the cell key itself but with a keyed pseudo-random function of it ([`CellNoise`]):
//! two cells that differ by the same youths have keys that differ by the same offset, and a
//! table laid out in key order would give their deviations a shared structure an attacker
//! averaging over decompositions could use; through the function they are independent.

use hmac::{Hmac, Mac};
use sha2::Sha256;

crate::hex::node_key!(
    /// The node secret record keys are derived under: 32 random bytes the node keeps in a
    /// file of its own. It never leaves the node and is never logged (its `Debug` shows
    /// nothing).
    RecordKeySecret
);

impl RecordKeySecret {
    /// The record key of the youth with pseudonym `youth_id`.
    pub fn record_key(&self, youth_id: &str) -> u32 {
        self.record_keys().key(youth_id)
    }

    /// The record-key function under this secret, prepared once for many youths (the keyed
    /// hash state is computed once and copied per youth).
    pub fn record_keys(&self) -> RecordKeyer {
        RecordKeyer(self.keyed(b"zicht record key v1\0"))
    }

    /// HMAC-SHA-256 under the secret, started with `domain` (which keeps the secret's uses
    /// apart: no id or key it is then fed starts like another use's domain).
    fn keyed(&self, domain: &[u8]) -> Hmac<Sha256> {
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(domain);
        mac
    }
}

/// The first 32 bits of the digest of `mac` after `data`.
fn first_u32(mut mac: Hmac<Sha256>, data: &[u8]) -> u32 {
    mac.update(data);
    let digest = mac.finalize().into_bytes();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// [`RecordKeySecret::record_key`] for many youths. Holds the keyed hash state, so it is as
/// secret as the secret (its `Debug` shows nothing).
#[derive(Clone)]
pub struct RecordKeyer(Hmac<Sha256>);

impl std::fmt::Debug for RecordKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKeyer(..)")
    }
}

impl RecordKeyer {
    /// The record key of the youth with pseudonym `youth_id`.
    pub fn key(&self, youth_id: &str) -> u32 {
        first_u32(self.0.clone(), youth_id.as_bytes())
    }
}

impl RecordKeySecret {
    /// The pseudonym under which `recipient` (a consent's recipient code) sees the youth
    /// `youth_id` in consented records: 32 hex digits of HMAC-SHA-256 under the secret,
    /// stable for that recipient and unlinkable between recipients without the secret.
    pub fn pseudonym(&self, youth_id: &str, recipient: &str) -> String {
        let mut mac = self.keyed(b"zicht pseudonym v1\0");
        mac.update(recipient.as_bytes());
        mac.update(b"\0");
        mac.update(youth_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..16])
    }

    /// The lookup function of the perturbation table under this secret.
    pub fn cell_noise(&self) -> CellNoise {
        CellNoise(self.keyed(b"zicht cell noise v1\0"))
    }
}

/// Where a cell looks its deviation up in the perturbation table: HMAC-SHA-256 of its cell key
/// under the node secret, mapped onto the key range. The same youths still give the same
/// lookup key (and so the same published count) everywhere, but cells that differ by the same
/// youths no longer share an offset. As secret as the secret (its `Debug` shows nothing).
#[derive(Clone)]
pub struct CellNoise(Hmac<Sha256>);

impl std::fmt::Debug for CellNoise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CellNoise(..)")
    }
}

impl CellNoise {
    /// The perturbation table's lookup key of a cell whose record keys add up to `key_sum`.
    pub fn lookup_key(&self, key_sum: u64) -> u32 {
        first_u32(self.0.clone(), &cell_key(key_sum).to_be_bytes())
    }
}

/// The cell key of a cell whose youths' record keys add up to `sum` (any width: only the sum
/// modulo 2^32 matters).
pub fn cell_key(sum: u64) -> u32 {
    (sum & u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_depend_on_the_secret_and_the_pseudonym_only() {
        let secret = RecordKeySecret::from_bytes([7; 32]);
        let other = RecordKeySecret::from_bytes([8; 32]);
        assert_eq!(secret.record_key("Y1"), secret.record_key("Y1"));
        assert_ne!(secret.record_key("Y1"), secret.record_key("Y2"));
        assert_ne!(secret.record_key("Y1"), other.record_key("Y1"));
        assert_eq!(
            RecordKeySecret::from_hex(&secret.to_hex()),
            Some(secret.clone())
        );
        assert_eq!(RecordKeySecret::from_hex("zz"), None);
        assert_eq!(format!("{secret:?}"), "RecordKeySecret(..)");
    }

    #[test]
    fn lookup_keys_follow_the_cell_key_and_the_secret_only() {
        let secret = RecordKeySecret::from_bytes([7; 32]);
        let noise = secret.cell_noise();
        let wide = u64::from(u32::MAX) + 1 + 41;
        assert_eq!(
            noise.lookup_key(41),
            noise.lookup_key(wide),
            "sums modulo 2^32"
        );
        assert_ne!(noise.lookup_key(41), noise.lookup_key(42));
        let other = RecordKeySecret::from_bytes([8; 32]).cell_noise();
        assert_ne!(noise.lookup_key(41), other.lookup_key(41));
        assert_eq!(format!("{noise:?}"), "CellNoise(..)");
    }

    #[test]
    fn cell_keys_are_sums_modulo_the_range() {
        let sum = u64::from(u32::MAX) + 5;
        assert_eq!(cell_key(sum), 4);
        assert_eq!(cell_key(17), 17);
    }
}
