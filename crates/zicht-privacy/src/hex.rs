//! Lowercase hex for the node's keys and ciphertexts (their files and the log).

/// `bytes` as lowercase hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of hex `text` (either case), if it is hex.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A 32-byte key from its file form: 64 hex digits, surrounding whitespace allowed.
pub(crate) fn key(text: &str) -> Option<[u8; 32]> {
    decode(text.trim())?.try_into().ok()
}
