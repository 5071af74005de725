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
        // Cannot fail: HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"zicht-pseudonym-v1\0");
        mac.update(identifier.trim().as_bytes());
        crate::hex::encode(&mac.finalize().into_bytes()[..16])
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
        assert!(!a.contains("111222333"));
        assert_eq!(PseudonymKey::from_hex(&key.to_hex()), Some(key));
    }
}
