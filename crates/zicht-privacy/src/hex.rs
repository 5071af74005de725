//! The node's keys in their file form: lowercase hex (the `hex` crate, as every hex in zicht).

/// A 32-byte key from its file form: 64 hex digits (either case), surrounding whitespace
/// allowed.
pub(crate) fn key(text: &str) -> Option<[u8; 32]> {
    let mut key = [0; 32];
    hex::decode_to_slice(text.trim(), &mut key).ok()?;
    Some(key)
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
                hex::encode(self.0)
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
