//! The node's key files: the record-key secret and the data-subject key, each 32 random bytes
//! as hex, created on first use with mode 0600 and never overwritten. Losing the secret
//! changes every record key, and with them every published count; losing the subject key
//! makes the processing log's subject ids unreadable, so youths' reports lose their
//! releases: back both up with the database (see docs/privacy.md, docs/consent.md).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zicht_privacy::{PseudonymKey, RecordKeySecret, SubjectKey};

/// Reads the secret at `path`, or creates it (0600) when there is no file yet. The error says
/// what is wrong with the file, never its contents.
pub fn load_or_create(path: &Path) -> Result<(RecordKeySecret, bool), String> {
    load_or_create_key(
        path,
        "a record-key secret",
        RecordKeySecret::from_hex,
        RecordKeySecret::from_bytes,
        RecordKeySecret::to_hex,
    )
}

/// Reads the data-subject key at `path` (the key the processing log's `data_subject_id` is
/// encrypted under), or creates it (0600) when there is no file yet.
pub fn load_or_create_subject_key(path: &Path) -> Result<(SubjectKey, bool), String> {
    load_or_create_key(
        path,
        "a data-subject key",
        SubjectKey::from_hex,
        SubjectKey::from_bytes,
        SubjectKey::to_hex,
    )
}

/// Reads the pseudonymisation key at `path` (the key a source's identifier, a BSN, becomes a
/// youth's pseudonym under at import), or creates it (0600) when there is no file yet.
pub fn load_or_create_pseudonym_key(path: &Path) -> Result<(PseudonymKey, bool), String> {
    load_or_create_key(
        path,
        "a pseudonymisation key",
        PseudonymKey::from_hex,
        PseudonymKey::from_bytes,
        PseudonymKey::to_hex,
    )
}

/// Reads the data-subject key at `path`, which must exist (the youth's report decrypts with
/// the node's own key; a new one would decrypt nothing).
pub fn read_subject_key(path: &Path) -> Result<SubjectKey, String> {
    if !path.exists() {
        return Err(format!(
            "no data-subject key at {} (the file privacy.subject_key of the node config names)",
            path.display()
        ));
    }
    load_or_create_subject_key(path).map(|(key, _)| key)
}

/// A 32-byte key kept as hex in a private file of its own: read, or made from the OS random
/// source and written with mode 0600 when there is none (never overwritten).
fn load_or_create_key<K>(
    path: &Path,
    what: &str,
    parse: fn(&str) -> Option<K>,
    make: fn([u8; 32]) -> K,
    hex: fn(&K) -> String,
) -> Result<(K, bool), String> {
    match std::fs::metadata(path) {
        Ok(metadata) => {
            if metadata.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{} can be read by others; make it private (chmod 600)",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let key = parse(&text).ok_or_else(|| {
                format!("{} does not hold {what} (64 hex digits)", path.display())
            })?;
            Ok((key, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| format!("cannot make a random key: {e}"))?;
            let key = make(bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            file.write_all(format!("{}\n", hex(&key)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((key, true))
        }
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// A random secret for a node that lives only in memory (tests and the demo's nodes, whose
/// databases are made for one run).
pub fn ephemeral() -> RecordKeySecret {
    RecordKeySecret::from_bytes(random_key())
}

/// A random data-subject key that lives only in memory (tests).
pub fn ephemeral_subject_key() -> SubjectKey {
    SubjectKey::from_bytes(random_key())
}

fn random_key() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // No entropy source is a broken machine; fail loudly rather than use a fixed key.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("no random source: {e}"));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_then_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("node.secret");
        let (created, new) = load_or_create(&path).expect("create");
        assert!(new);
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (read, new) = load_or_create(&path).expect("read");
        assert!(!new);
        assert_eq!(read, created);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(load_or_create(&path).unwrap_err().contains("chmod 600"));
        std::fs::write(dir.path().join("bad"), "nonsense").expect("write");
        std::fs::set_permissions(
            dir.path().join("bad"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        assert!(load_or_create(&dir.path().join("bad"))
            .unwrap_err()
            .contains("does not hold a record-key secret"));
    }
}
