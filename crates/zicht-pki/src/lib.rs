//! The development PKI of a zicht federation, made with the `openssl` crate: a federation root
//! CA, one certificate per node and per person/role, and certificate revocation lists.
//!
//! Identity in a certificate, as the Dutch FSC standard does it: the PeerID (20 digits,
//! OIN-style) is the subject `serialNumber`, the organisation is `O`, and the role and region are
//! one SAN URI (`urn:zicht:region:drenthe`, ...). [`identity_of`] reads it back; a certificate
//! without exactly one valid zicht identity has none.
//!
//! A real federation plugs in its own CA (e.g. PKIoverheid): it issues certificates with the same
//! subject and SAN layout, and nodes trust its root instead of the dev root.

mod files;

use std::net::IpAddr;

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509CrlBuilder, X509Extension, X509NameBuilder, X509RevokedBuilder, X509,
};
use zicht_model::{PeerId, PeerIdentity, Role};

pub use files::{write_dev_federation, write_private, DevFederation};

/// Errors of certificate work. OpenSSL's own error stack is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// OpenSSL refused an operation.
    #[error("{action}")]
    OpenSsl {
        /// What was being done, e.g. `sign certificate`.
        action: &'static str,
        /// Cause.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// A certificate has no (or no single) valid zicht identity.
    #[error("certificate has no zicht identity: {0}")]
    NoIdentity(&'static str),
    /// Reading or writing PKI files failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn ssl(action: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> PkiError {
    move |source| PkiError::OpenSsl { action, source }
}

/// When a certificate is valid, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First second of validity.
    pub not_before: i64,
    /// Last second of validity.
    pub not_after: i64,
}

impl Validity {
    /// From an hour ago (clock skew) to `days` days from `now`.
    pub fn days_from(now: i64, days: i64) -> Validity {
        Validity {
            not_before: now - 3600,
            not_after: now + days * 86_400,
        }
    }
}

/// A certificate and its private key, PEM-encoded (key as PKCS#8).
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: Vec<u8>,
    /// The private key: write it with [`write_private`] (mode 0600), never commit it.
    pub key_pem: Vec<u8>,
    /// The certificate serial number, hex, for revocation.
    pub serial_hex: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("serial_hex", &self.serial_hex)
            .finish_non_exhaustive()
    }
}

/// A subject to certify: identity plus the node's addresses (DNS names and IPs) for TLS.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Who the certificate is for.
    pub identity: PeerIdentity,
    /// DNS names the holder serves under (nodes), e.g. `localhost`.
    pub dns_names: Vec<String>,
    /// IP addresses the holder serves under (nodes), e.g. `127.0.0.1`.
    pub ips: Vec<IpAddr>,
}

fn new_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ssl("create EC group"))?;
    let key = EcKey::generate(&group).map_err(ssl("generate key"))?;
    PKey::from_ec_key(key).map_err(ssl("wrap key"))
}

fn random_serial() -> Result<Asn1Integer, PkiError> {
    let mut serial = BigNum::new().map_err(ssl("create serial"))?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(ssl("create serial"))?;
    serial.to_asn1_integer().map_err(ssl("create serial"))
}

/// A CRL's dates, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlDates {
    /// When it was issued (thisUpdate).
    pub this_update: i64,
    /// When the next one is due (nextUpdate), if it says.
    pub next_update: Option<i64>,
}

/// The dates of the CRL in `der`.
pub fn crl_dates(der: &[u8]) -> Result<CrlDates, PkiError> {
    let action = "read CRL dates";
    let crl = openssl::x509::X509Crl::from_der(der).map_err(ssl(action))?;
    let epoch = time(0)?;
    let seconds = |at: &openssl::asn1::Asn1TimeRef| {
        epoch
            .diff(at)
            .map(|diff| i64::from(diff.days) * 86_400 + i64::from(diff.secs))
            .map_err(ssl(action))
    };
    Ok(CrlDates {
        this_update: seconds(crl.last_update())?,
        next_update: crl.next_update().map(seconds).transpose()?,
    })
}

fn time(seconds: i64) -> Result<Asn1Time, PkiError> {
    Asn1Time::from_unix(seconds as _).map_err(ssl("encode time"))
}

/// The federation's root certificate authority.
pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
}

impl CertificateAuthority {
    /// Creates a self-signed root named `name`.
    pub fn create(name: &str, validity: Validity) -> Result<Self, PkiError> {
        let key = new_key()?;
        let mut subject = X509NameBuilder::new().map_err(ssl("build name"))?;
        subject
            .append_entry_by_nid(Nid::COMMONNAME, name)
            .map_err(ssl("build name"))?;
        subject
            .append_entry_by_nid(Nid::ORGANIZATIONNAME, "zicht federation")
            .map_err(ssl("build name"))?;
        let subject = subject.build();
        let mut builder = X509Builder::new().map_err(ssl("build CA"))?;
        builder.set_version(2).map_err(ssl("build CA"))?;
        builder
            .set_serial_number(&*random_serial()?)
            .map_err(ssl("build CA"))?;
        builder
            .set_subject_name(&subject)
            .map_err(ssl("build CA"))?;
        builder.set_issuer_name(&subject).map_err(ssl("build CA"))?;
        builder
            .set_not_before(&*time(validity.not_before)?)
            .map_err(ssl("build CA"))?;
        builder
            .set_not_after(&*time(validity.not_after)?)
            .map_err(ssl("build CA"))?;
        builder.set_pubkey(&key).map_err(ssl("build CA"))?;
        let constraints = BasicConstraints::new()
            .critical()
            .ca()
            .pathlen(0)
            .build()
            .map_err(ssl("build CA"))?;
        builder
            .append_extension(constraints)
            .map_err(ssl("build CA"))?;
        let usage = KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .map_err(ssl("build CA"))?;
        builder.append_extension(usage).map_err(ssl("build CA"))?;
        let ski = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(None, None))
            .map_err(ssl("build CA"))?;
        builder.append_extension(ski).map_err(ssl("build CA"))?;
        builder
            .sign(&key, MessageDigest::sha256())
            .map_err(ssl("sign CA"))?;
        Ok(CertificateAuthority {
            cert: builder.build(),
            key,
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, PkiError> {
        Ok(CertificateAuthority {
            cert: X509::from_pem(cert_pem).map_err(ssl("read CA certificate"))?,
            key: PKey::private_key_from_pem(key_pem).map_err(ssl("read CA key"))?,
        })
    }

    /// The root certificate, PEM (the federation's trust bundle).
    pub fn cert_pem(&self) -> Result<Vec<u8>, PkiError> {
        self.cert.to_pem().map_err(ssl("encode CA certificate"))
    }

    /// The root's private key, PEM (PKCS#8).
    pub fn key_pem(&self) -> Result<Vec<u8>, PkiError> {
        self.key
            .private_key_to_pem_pkcs8()
            .map_err(ssl("encode CA key"))
    }

    /// A builder for a certificate signed by this CA: random serial (returned as hex), subject,
    /// issuer, validity and public key set; extensions and signature are the caller's.
    fn leaf(
        &self,
        subject: &openssl::x509::X509NameRef,
        validity: Validity,
        key: &PKey<Private>,
    ) -> Result<(X509Builder, String), PkiError> {
        let action = "build certificate";
        let serial = random_serial()?;
        let serial_hex = serial
            .to_bn()
            .and_then(|bn| bn.to_hex_str().map(|s| s.to_string()))
            .map_err(ssl(action))?;
        let mut builder = X509Builder::new().map_err(ssl(action))?;
        builder.set_version(2).map_err(ssl(action))?;
        builder.set_serial_number(&serial).map_err(ssl(action))?;
        builder.set_subject_name(subject).map_err(ssl(action))?;
        builder
            .set_issuer_name(self.cert.subject_name())
            .map_err(ssl(action))?;
        builder
            .set_not_before(&*time(validity.not_before)?)
            .map_err(ssl(action))?;
        builder
            .set_not_after(&*time(validity.not_after)?)
            .map_err(ssl(action))?;
        builder.set_pubkey(key).map_err(ssl(action))?;
        Ok((builder, serial_hex))
    }

    /// Signs a finished builder and packages certificate, key and serial.
    fn signed(
        &self,
        mut builder: X509Builder,
        key: &PKey<Private>,
        serial_hex: String,
    ) -> Result<Issued, PkiError> {
        builder
            .sign(&self.key, MessageDigest::sha256())
            .map_err(ssl("sign certificate"))?;
        Ok(Issued {
            cert_pem: builder
                .build()
                .to_pem()
                .map_err(ssl("encode certificate"))?,
            key_pem: key
                .private_key_to_pem_pkcs8()
                .map_err(ssl("encode private key"))?,
            serial_hex,
        })
    }

    /// Issues a certificate for `subject`, usable as TLS server and client.
    pub fn issue(&self, subject: &Subject, validity: Validity) -> Result<Issued, PkiError> {
        let action = "issue certificate";
        let key = new_key()?;
        let identity = &subject.identity;
        let mut name = X509NameBuilder::new().map_err(ssl(action))?;
        name.append_entry_by_nid(Nid::COMMONNAME, &identity.role.uri())
            .map_err(ssl(action))?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, &identity.organisation)
            .map_err(ssl(action))?;
        name.append_entry_by_nid(Nid::SERIALNUMBER, identity.peer_id.as_str())
            .map_err(ssl(action))?;
        let (mut builder, serial_hex) = self.leaf(&name.build(), validity, &key)?;
        let constraints = BasicConstraints::new()
            .critical()
            .build()
            .map_err(ssl(action))?;
        builder.append_extension(constraints).map_err(ssl(action))?;
        let usage = KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .map_err(ssl(action))?;
        builder.append_extension(usage).map_err(ssl(action))?;
        let extended = ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .build()
            .map_err(ssl(action))?;
        builder.append_extension(extended).map_err(ssl(action))?;
        let mut san = SubjectAlternativeName::new();
        san.uri(&identity.role.uri());
        for dns in &subject.dns_names {
            san.dns(dns);
        }
        for ip in &subject.ips {
            san.ip(&ip.to_string());
        }
        let san = san
            .build(&builder.x509v3_context(Some(&self.cert), None))
            .map_err(ssl(action))?;
        builder.append_extension(san).map_err(ssl(action))?;
        let ski = SubjectKeyIdentifier::new()
            .build(&builder.x509v3_context(Some(&self.cert), None))
            .map_err(ssl(action))?;
        builder.append_extension(ski).map_err(ssl(action))?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&builder.x509v3_context(Some(&self.cert), None))
            .map_err(ssl(action))?;
        builder.append_extension(aki).map_err(ssl(action))?;
        self.signed(builder, &key, serial_hex)
    }

    /// Issues a certificate from this CA that carries no zicht identity (only a common name):
    /// what a non-zicht TLS client of the same CA would hold. Nodes refuse it in the handshake.
    pub fn issue_without_identity(
        &self,
        common_name: &str,
        validity: Validity,
    ) -> Result<Issued, PkiError> {
        let action = "issue certificate";
        let key = new_key()?;
        let mut name = X509NameBuilder::new().map_err(ssl(action))?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)
            .map_err(ssl(action))?;
        let (mut builder, serial_hex) = self.leaf(&name.build(), validity, &key)?;
        let extended = ExtendedKeyUsage::new()
            .client_auth()
            .build()
            .map_err(ssl(action))?;
        builder.append_extension(extended).map_err(ssl(action))?;
        self.signed(builder, &key, serial_hex)
    }

    /// Issues a CRL listing `revoked_serials_hex` (revoked at `now`), numbered `number`, valid
    /// until `now + next_update_days`. A newer CRL needs a higher number.
    pub fn crl(
        &self,
        revoked_serials_hex: &[String],
        number: u32,
        now: i64,
        next_update_days: i64,
    ) -> Result<Vec<u8>, PkiError> {
        let action = "issue CRL";
        let mut builder = X509CrlBuilder::new().map_err(ssl(action))?;
        builder
            .set_issuer_name(self.cert.subject_name())
            .map_err(ssl(action))?;
        builder
            .set_last_update(&*time(now - 60)?)
            .map_err(ssl(action))?;
        builder
            .set_next_update(&*time(now + next_update_days * 86_400)?)
            .map_err(ssl(action))?;
        for serial in revoked_serials_hex {
            let mut revoked = X509RevokedBuilder::new().map_err(ssl(action))?;
            let serial = BigNum::from_hex_str(serial)
                .and_then(|bn| bn.to_asn1_integer())
                .map_err(ssl(action))?;
            revoked.set_serial_number(&serial).map_err(ssl(action))?;
            revoked
                .set_revocation_date(&*time(now - 60)?)
                .map_err(ssl(action))?;
            builder.add_revoked(revoked.build()).map_err(ssl(action))?;
        }
        // authorityKeyIdentifier (2.5.29.35) = SEQUENCE { [0] keyIdentifier }, and
        // cRLNumber (2.5.29.20) = INTEGER: both required by RFC 5280 and by rustls-webpki.
        let key_id = self
            .cert
            .subject_key_id()
            .ok_or(PkiError::NoIdentity("the CA has no subject key identifier"))?
            .as_slice()
            .to_vec();
        let mut aki = vec![0x30, (key_id.len() + 2) as u8, 0x80, key_id.len() as u8];
        aki.extend_from_slice(&key_id);
        builder
            .append_extension(extension("2.5.29.35", &aki)?)
            .map_err(ssl(action))?;
        builder
            .append_extension(extension("2.5.29.20", &der_integer(number))?)
            .map_err(ssl(action))?;
        builder.sort().map_err(ssl(action))?;
        builder
            .sign(&self.key, MessageDigest::sha256())
            .map_err(ssl("sign CRL"))?;
        builder
            .build()
            .and_then(|crl| crl.to_pem())
            .map_err(ssl(action))
    }
}

fn extension(oid: &str, der: &[u8]) -> Result<X509Extension, PkiError> {
    let oid = Asn1Object::from_str(oid).map_err(ssl("encode extension"))?;
    let value = Asn1OctetString::new_from_bytes(der).map_err(ssl("encode extension"))?;
    X509Extension::new_from_der(&oid, false, &value).map_err(ssl("encode extension"))
}

/// DER INTEGER of a non-negative number (minimal length, leading zero when the top bit is set).
fn der_integer(number: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = number
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    if bytes.first().is_none_or(|&b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    let mut der = vec![0x02, bytes.len() as u8];
    der.extend(bytes);
    der
}

/// Reads the zicht identity of a DER certificate: exactly one subject serialNumber that is a
/// PeerID, an O, and exactly one SAN URI that is a zicht role.
pub fn identity_of(cert_der: &[u8]) -> Result<PeerIdentity, PkiError> {
    let cert = X509::from_der(cert_der).map_err(ssl("read certificate"))?;
    let single = |nid: Nid, what: &'static str| -> Result<String, PkiError> {
        let mut entries = cert.subject_name().entries_by_nid(nid);
        let entry = entries.next().ok_or(PkiError::NoIdentity(what))?;
        if entries.next().is_some() {
            return Err(PkiError::NoIdentity(what));
        }
        entry
            .data()
            .to_string()
            .map_err(|_| PkiError::NoIdentity(what))
    };
    let peer_id = PeerId::parse(&single(
        Nid::SERIALNUMBER,
        "subject serialNumber must be a 20-digit PeerID",
    )?)
    .map_err(|_| PkiError::NoIdentity("subject serialNumber must be a 20-digit PeerID"))?;
    let organisation = single(
        Nid::ORGANIZATIONNAME,
        "subject O (organisation) is required",
    )?;
    let mut roles = cert
        .subject_alt_names()
        .into_iter()
        .flatten()
        .filter_map(|name| name.uri().map(str::to_owned))
        .filter(|uri| uri.starts_with("urn:zicht:"));
    const ROLE: &str = "exactly one SAN URI urn:zicht:<role>:... is required";
    let uri = roles.next().ok_or(PkiError::NoIdentity(ROLE))?;
    if roles.next().is_some() {
        return Err(PkiError::NoIdentity(ROLE));
    }
    let role = Role::parse_uri(&uri).map_err(|_| PkiError::NoIdentity(ROLE))?;
    Ok(PeerIdentity {
        peer_id,
        organisation,
        role,
    })
}

/// Signs `data` (ECDSA with SHA-256) with a PEM private key, such as a node's key.
pub fn sign(key_pem: &[u8], data: &[u8]) -> Result<Vec<u8>, PkiError> {
    let key = PKey::private_key_from_pem(key_pem).map_err(ssl("read private key"))?;
    let mut signer =
        openssl::sign::Signer::new(MessageDigest::sha256(), &key).map_err(ssl("sign"))?;
    signer.update(data).map_err(ssl("sign"))?;
    signer.sign_to_vec().map_err(ssl("sign"))
}

/// Whether `signature` over `data` was made with the key of the DER certificate `cert_der`.
/// (Whether that certificate is trusted is the TLS handshake's business.)
pub fn signature_valid(cert_der: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let verify = || -> Result<bool, openssl::error::ErrorStack> {
        let key = X509::from_der(cert_der)?.public_key()?;
        let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &key)?;
        verifier.update(data)?;
        verifier.verify(signature)
    };
    verify().unwrap_or(false)
}

/// The DER bytes of the first certificate in a PEM bundle.
pub fn pem_to_der(cert_pem: &[u8]) -> Result<Vec<u8>, PkiError> {
    X509::from_pem(cert_pem)
        .and_then(|c| c.to_der())
        .map_err(ssl("read certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zicht_model::{NodeName, Region};

    const NOW: i64 = 1_790_000_000;

    fn node(region: Region) -> Subject {
        Subject {
            identity: PeerIdentity {
                peer_id: NodeName::Region(region).dev_peer_id(),
                organisation: format!("Jeugdhulpregio {}", region.name_nl()),
                role: Role::Region(region),
            },
            dns_names: vec!["localhost".to_owned()],
            ips: vec!["127.0.0.1".parse().unwrap()],
        }
    }

    use zicht_model::CodeList;

    #[test]
    fn crl_dates_read_back() {
        let ca = CertificateAuthority::create("zicht test", Validity::days_from(1_790_000_000, 10))
            .unwrap();
        let pem = ca.crl(&[], 1, 1_790_000_000, 7).unwrap();
        let der = openssl::x509::X509Crl::from_pem(&pem)
            .unwrap()
            .to_der()
            .unwrap();
        assert_eq!(
            crl_dates(&der).unwrap(),
            CrlDates {
                this_update: 1_790_000_000 - 60,
                next_update: Some(1_790_000_000 + 7 * 86_400),
            }
        );
    }

    #[test]
    fn issued_certificates_carry_the_identity() {
        let ca = CertificateAuthority::create("test root", Validity::days_from(NOW, 10)).unwrap();
        let subject = node(Region::Twente);
        let issued = ca.issue(&subject, Validity::days_from(NOW, 1)).unwrap();
        let identity = identity_of(&pem_to_der(&issued.cert_pem).unwrap()).unwrap();
        assert_eq!(identity, subject.identity);
        let cert = X509::from_pem(&issued.cert_pem).unwrap();
        let ca_cert = X509::from_pem(&ca.cert_pem().unwrap()).unwrap();
        assert!(cert.verify(&ca_cert.public_key().unwrap()).unwrap());
    }

    #[test]
    fn a_certificate_without_a_role_has_no_identity() {
        let ca = CertificateAuthority::create("test root", Validity::days_from(NOW, 10)).unwrap();
        let ca_der = pem_to_der(&ca.cert_pem().unwrap()).unwrap();
        let error = identity_of(&ca_der).unwrap_err();
        assert!(error.to_string().contains("serialNumber"), "{error}");
    }

    #[test]
    fn crl_lists_revoked_serials() {
        let ca = CertificateAuthority::create("test root", Validity::days_from(NOW, 10)).unwrap();
        let issued = ca
            .issue(&node(Region::Drenthe), Validity::days_from(NOW, 1))
            .unwrap();
        let crl_pem = ca
            .crl(std::slice::from_ref(&issued.serial_hex), 2, NOW, 7)
            .unwrap();
        let crl = openssl::x509::X509Crl::from_pem(&crl_pem).unwrap();
        let revoked = crl.get_revoked().unwrap();
        assert_eq!(revoked.len(), 1);
        let serial = revoked.get(0).unwrap().serial_number().to_bn().unwrap();
        assert_eq!(serial.to_hex_str().unwrap().to_string(), issued.serial_hex);
        let ca_cert = X509::from_pem(&ca.cert_pem().unwrap()).unwrap();
        assert!(crl.verify(&ca_cert.public_key().unwrap()).unwrap());
    }

    #[test]
    fn der_integers_are_minimal() {
        assert_eq!(der_integer(0), vec![0x02, 0x01, 0x00]);
        assert_eq!(der_integer(5), vec![0x02, 0x01, 0x05]);
        assert_eq!(der_integer(128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(256), vec![0x02, 0x02, 0x01, 0x00]);
    }
}
