//! PKI material on disk: the dev federation layout, private keys written 0600, revocation.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zicht_model::{CodeList, Network, NodeName, PeerId, PeerIdentity, Region, Role};

use crate::{CertificateAuthority, PkiError, Subject, Validity};

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.display().to_string();
    move |source| PkiError::Io {
        action,
        path,
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `mode` permissions from
/// the start (no moment where a key is world-readable, no half-written file).
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let temporary = path.with_extension("partial");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io("create", &temporary))?;
    file.write_all(bytes).map_err(io("write", &temporary))?;
    file.sync_all().map_err(io("sync", &temporary))?;
    fs::rename(&temporary, path).map_err(io("rename into", path))
}

/// Writes a private key, readable by its owner only (0600).
pub fn write_private(path: &Path, key_pem: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, key_pem, 0o600)
}

fn write_public(path: &Path, pem: &[u8]) -> Result<(), PkiError> {
    write_atomic(path, pem, 0o644)
}

/// Where a dev federation's files are.
#[derive(Debug, Clone)]
pub struct DevFederation {
    /// The folder.
    pub dir: PathBuf,
}

impl DevFederation {
    /// The trust bundle (root certificate).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// The root's private key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// The current CRL.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    /// A node's certificate and key.
    pub fn node(&self, node: NodeName) -> (PathBuf, PathBuf) {
        let base = self.dir.join("nodes").join(node.code());
        (base.with_extension("pem"), base.with_extension("key"))
    }
    /// A person's certificate and key (`analyst-drenthe`, `auditor`).
    pub fn person(&self, name: &str) -> (PathBuf, PathBuf) {
        let base = self.dir.join("people").join(name);
        (base.with_extension("pem"), base.with_extension("key"))
    }

    fn revoked_list(&self) -> PathBuf {
        self.dir.join("revoked.txt")
    }

    /// Loads the CA of this federation.
    pub fn authority(&self) -> Result<CertificateAuthority, PkiError> {
        let cert = fs::read(self.ca_cert()).map_err(io("read", &self.ca_cert()))?;
        let key = fs::read(self.ca_key()).map_err(io("read", &self.ca_key()))?;
        CertificateAuthority::from_pem(&cert, &key)
    }

    /// Revokes the certificate in `cert_path`: adds its serial to `revoked.txt` and writes a new,
    /// higher-numbered `crl.pem`. Nodes pick the new CRL up without restart.
    pub fn revoke(&self, cert_path: &Path, now: i64) -> Result<String, PkiError> {
        let pem = fs::read(cert_path).map_err(io("read", cert_path))?;
        let cert = openssl::x509::X509::from_pem(&pem).map_err(crate::ssl("read certificate"))?;
        let serial = cert
            .serial_number()
            .to_bn()
            .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
            .map_err(crate::ssl("read serial"))?;
        let list_path = self.revoked_list();
        let mut serials: Vec<String> = fs::read_to_string(&list_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if !serials.contains(&serial) {
            serials.push(serial.clone());
        }
        // One CRL per revocation, so the CRL number is the count plus the initial CRL.
        let number = serials.len() as u32 + 1;
        let crl = self.authority()?.crl(&serials, number, now, 30)?;
        write_public(&list_path, (serials.join("\n") + "\n").as_bytes())?;
        write_public(&self.crl(), &crl)?;
        Ok(serial)
    }
}

fn node_subject(node: NodeName) -> Subject {
    let (organisation, role) = match node {
        NodeName::Region(region) => (
            format!("Jeugdhulpregio {}", region.name_nl()),
            Role::Region(region),
        ),
        NodeName::Network(network) => (network.name_nl().to_owned(), Role::Network(network)),
    };
    Subject {
        identity: PeerIdentity {
            peer_id: node.dev_peer_id(),
            organisation,
            role,
        },
        // Loopback for one host, the node's code for compose (its service name) and
        // `zicht-<code>` for Kubernetes (its Service name): deploy/ dials these.
        dns_names: vec![
            "localhost".to_owned(),
            node.code().to_owned(),
            format!("zicht-{}", node.code()),
        ],
        ips: vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()],
    }
}

/// The dev PeerID of a person: `00000098` and a 12-digit number (analysts 1-14 by region,
/// lokaal teams 101-114 by region, the auditor 900).
fn person_peer_id(number: usize) -> PeerId {
    PeerId::parse(&format!("00000098{number:012}"))
        .unwrap_or_else(|_| NodeName::Region(Region::Drenthe).dev_peer_id())
}

/// Creates a complete dev federation in `dir`: root CA, the 17 node certificates, an analyst
/// and a lokaal team per region, a coordinator per network, one auditor, and an empty CRL. Valid for a year from `now`.
pub fn write_dev_federation(dir: &Path, now: i64) -> Result<DevFederation, PkiError> {
    let federation = DevFederation {
        dir: dir.to_owned(),
    };
    for sub in [dir.to_owned(), dir.join("nodes"), dir.join("people")] {
        fs::create_dir_all(&sub).map_err(io("create folder", &sub))?;
    }
    let validity = Validity::days_from(now, 365);
    let ca =
        CertificateAuthority::create("zicht dev federation root", Validity::days_from(now, 3650))?;
    write_public(&federation.ca_cert(), &ca.cert_pem()?)?;
    write_private(&federation.ca_key(), &ca.key_pem()?)?;
    for node in NodeName::all() {
        let issued = ca.issue(&node_subject(node), validity)?;
        let (cert, key) = federation.node(node);
        write_public(&cert, &issued.cert_pem)?;
        write_private(&key, &issued.key_pem)?;
    }
    // (file name, PeerID number, organisation, role) of every person.
    let mut people: Vec<(String, usize, String, Role)> = Vec::new();
    for (i, &region) in Region::ALL.iter().enumerate() {
        let name = region.name_nl();
        people.push((
            format!("analyst-{}", region.code()),
            i + 1,
            format!("Jeugdhulpregio {name}"),
            Role::Analyst {
                region,
                name: "analist".to_owned(),
            },
        ));
        // A lokaal team per region: receives individual records where a youth consented.
        people.push((
            format!("team-{}", region.code()),
            101 + i,
            format!("Lokaal team, jeugdhulpregio {name}"),
            Role::Team {
                region,
                name: "lokaal-team".to_owned(),
            },
        ));
    }
    // A coordinator per network: asks bovenregionaal questions through the network's node.
    for (i, &network) in Network::ALL.iter().enumerate() {
        people.push((
            format!("coordinator-{}", network.code()),
            201 + i,
            format!("Netwerk {}", network.name_nl()),
            Role::Coordinator {
                network,
                name: "coordinator".to_owned(),
            },
        ));
    }
    people.push((
        "auditor".to_owned(),
        900,
        "Auditdienst zicht".to_owned(),
        Role::Auditor {
            name: "auditor".to_owned(),
        },
    ));
    for (name, number, organisation, role) in people {
        let subject = Subject {
            identity: PeerIdentity {
                peer_id: person_peer_id(number),
                organisation,
                role,
            },
            dns_names: Vec::new(),
            ips: Vec::new(),
        };
        let issued = ca.issue(&subject, validity)?;
        let (cert, key) = federation.person(&name);
        write_public(&cert, &issued.cert_pem)?;
        write_private(&key, &issued.key_pem)?;
    }
    write_public(&federation.crl(), &ca.crl(&[], 1, now, 30)?)?;
    write_public(&federation.revoked_list(), b"")?;
    Ok(federation)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::{identity_of, pem_to_der};

    #[test]
    fn dev_federation_has_every_node_and_private_keys_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let federation = write_dev_federation(dir.path(), 1_790_000_000).unwrap();
        for node in NodeName::all() {
            let (cert, key) = federation.node(node);
            let identity = identity_of(&pem_to_der(&fs::read(cert).unwrap()).unwrap()).unwrap();
            assert_eq!(identity.peer_id, node.dev_peer_id());
            assert_eq!(
                fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            fs::metadata(federation.ca_key())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let (auditor, _) = federation.person("auditor");
        let identity = identity_of(&pem_to_der(&fs::read(auditor).unwrap()).unwrap()).unwrap();
        assert_eq!(identity.role.kind(), "auditor");
    }

    #[test]
    fn revoking_grows_the_crl() {
        let dir = tempfile::tempdir().unwrap();
        let federation = write_dev_federation(dir.path(), 1_790_000_000).unwrap();
        let (cert, _) = federation.node(NodeName::Region(Region::Ijmond));
        let serial = federation.revoke(&cert, 1_790_000_100).unwrap();
        let again = federation.revoke(&cert, 1_790_000_200).unwrap();
        assert_eq!(serial, again);
        let crl = openssl::x509::X509Crl::from_pem(&fs::read(federation.crl()).unwrap()).unwrap();
        assert_eq!(crl.get_revoked().map(|r| r.len()), Some(1));
    }
}
