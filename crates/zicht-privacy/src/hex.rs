//! Lowercase hex for the node's keys and ciphertexts (their files and the log).

/// `bytes` as lowercase hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
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

/// A node key: 32 bytes kept as hex in a private file of its own, never logged (`Debug` shows
/// nothing), with `from_bytes`, `to_hex` and `from_hex` for that file.
macro_rules! node_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl $name {
            /// The key of these bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> $name {
                $name(bytes)
            }

            /// The key as lowercase hex (for its file).
            pub fn to_hex(&self) -> String {
                crate::hex::encode(&self.0)
            }

            /// Reads the key from its file form: 64 hex digits, surrounding whitespace
            /// allowed.
            pub fn from_hex(text: &str) -> Option<$name> {
                crate::hex::key(text).map($name)
            }
        }
    };
}

pub(crate) use node_key;
