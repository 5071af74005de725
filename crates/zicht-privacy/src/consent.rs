//! The key under which a node writes who a consented release was about: each processing
//! record of a released youth carries the youth's id encrypted (AES-256-GCM), so an auditor
//! sees that a person's data was processed, and under which consent, without learning who;
//! the node's own host decrypts them for the youth's report of every release.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// Bytes of a nonce: random per encryption (the caller draws them; this module does no I/O).
pub const NONCE_BYTES: usize = 12;

/// Binds a ciphertext to its use, so it cannot pass for another of the node's ciphertexts.
const CONTEXT: &[u8] = b"zicht data subject v1";

crate::hex::node_key!(
    /// The node's data-subject key: 32 bytes it keeps in a file of its own (never in the
    /// database, never logged: its `Debug` shows nothing).
    SubjectKey
);

impl SubjectKey {
    fn aead(&self) -> LessSafeKey {
        // A 32-byte key is what AES-256 takes, so this cannot fail.
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0)
                .unwrap_or_else(|_| unreachable!("AES-256 takes 32-byte keys")),
        )
    }

    /// `youth_id` encrypted under the key with `nonce` (never use a nonce twice): hex of the
    /// nonce, the ciphertext and the tag.
    pub fn encrypt(&self, youth_id: &str, nonce: [u8; NONCE_BYTES]) -> String {
        let mut sealed = youth_id.as_bytes().to_vec();
        // Sealing fails only for inputs beyond GCM's 64 GiB limit.
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut sealed,
            )
            .unwrap_or_else(|_| unreachable!("an id is far below GCM's limit"));
        let mut text = hex::encode(nonce);
        text.push_str(&hex::encode(sealed));
        text
    }

    /// The youth id in `text` (as [`SubjectKey::encrypt`] wrote it under this key), or none
    /// if it was written under another key or altered.
    pub fn decrypt(&self, text: &str) -> Option<String> {
        let bytes = hex::decode(text).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(CONTEXT), &mut sealed)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordKeySecret;

    #[test]
    fn subject_ids_decrypt_only_under_their_key_and_never_show_the_id() {
        let key = SubjectKey::from_bytes([7; 32]);
        let sealed = key.encrypt("Y12345", [1; NONCE_BYTES]);
        assert!(!sealed.contains("Y12345"));
        assert_eq!(key.decrypt(&sealed).as_deref(), Some("Y12345"));
        // Another nonce, another ciphertext of the same id.
        assert_ne!(key.encrypt("Y12345", [2; NONCE_BYTES]), sealed);
        assert_eq!(SubjectKey::from_bytes([8; 32]).decrypt(&sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(key.decrypt(std::str::from_utf8(&altered).unwrap()), None);
        assert_eq!(SubjectKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(SubjectKey::from_hex("xyz"), None);
    }

    #[test]
    fn pseudonyms_are_stable_per_recipient_and_differ_between_recipients() {
        let secret = RecordKeySecret::from_bytes([3; 32]);
        let team = secret.pseudonym("Y1", "00000098000000000101");
        assert_eq!(team, secret.pseudonym("Y1", "00000098000000000101"));
        assert_eq!(team.len(), 32);
        assert_ne!(team, secret.pseudonym("Y1", "region:ijsselland"));
        assert_ne!(team, secret.pseudonym("Y2", "00000098000000000101"));
        assert_ne!(
            team,
            RecordKeySecret::from_bytes([4; 32]).pseudonym("Y1", "00000098000000000101")
        );
    }
}
