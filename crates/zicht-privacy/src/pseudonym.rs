//! The pseudonymisation key: how a source's identifier of a youth (a BSN in a gemeente's
//! export) becomes the youth's pseudonym at import, so the identifier is never stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;

crate::hex::node_key!(
    /// A region's pseudonymisation key, 32 bytes kept beside its record-key secret. The same
    /// key gives the same youth the same pseudonym in every import; another key, another
    /// pseudonym.
    PseudonymKey
);

impl PseudonymKey {
    /// The pseudonym of the youth the source knows as `identifier`: 32 hex digits of an
    /// HMAC-SHA256 under the key (domain-separated from the record keys), which never pass for
    /// a BSN and cannot be turned back into the identifier without the key.
    pub fn pseudonym(&self, identifier: &str) -> String {
        hex::encode(self.digest(identifier))
    }

    /// The same pseudonym as a number: its 32 hex digits read as one 128-bit value (for a
    /// join that keys youths by their pseudonym).
    pub fn pseudonym_u128(&self, identifier: &str) -> u128 {
        u128::from_be_bytes(self.digest(identifier))
    }

    fn digest(&self, identifier: &str) -> [u8; 16] {
        // Cannot fail: HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"zicht-pseudonym-v1\0");
        mac.update(identifier.trim().as_bytes());
        let mut bits = [0; 16];
        bits.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_pseudonym_and_another_key_another() {
        let key = PseudonymKey::from_bytes([7; 32]);
        let other = PseudonymKey::from_bytes([8; 32]);
        let a = key.pseudonym("111222333");
        assert_eq!(a, key.pseudonym(" 111222333 "));
        assert_ne!(a, other.pseudonym("111222333"));
        assert_ne!(a, key.pseudonym("111222334"));
        assert_eq!(a.len(), 32);
        assert_eq!(format!("{:032x}", key.pseudonym_u128("111222333")), a);
        assert!(!a.contains("111222333"));
        assert_eq!(PseudonymKey::from_hex(&key.to_hex()), Some(key));
    }
}
