//! TLS 1.3 with required client certificates: the trust bundle, the CRL, and a zicht identity
//! are all checked during the handshake. Certificates and CRL are re-read when their files
//! change, without a restart.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use zicht_model::PeerIdentity;

use crate::settings::TlsFiles;
use crate::transport::connections::Connections;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

/// Why TLS could not be set up. Names the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or held nothing usable.
    #[error("{what} {path}: {reason}")]
    File {
        /// Which file (trust bundle, certificate, key, CRL).
        what: &'static str,
        /// Its path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("configure TLS: {0}")]
    Config(String),
}

fn file_error(what: &'static str, path: &std::path::Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the trust bundle into a root store.
pub fn load_roots(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(path).map_err(|e| file_error("trust bundle", path, e))?
    {
        let cert = cert.map_err(|e| file_error("trust bundle", path, e))?;
        roots
            .add(cert)
            .map_err(|e| file_error("trust bundle", path, e))?;
    }
    if roots.is_empty() {
        return Err(file_error("trust bundle", path, "holds no certificate"));
    }
    Ok(roots)
}

/// Reads a certificate chain and its private key.
pub fn load_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("certificate", cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate", cert, e))?;
    if chain.is_empty() {
        return Err(file_error("certificate", cert, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("private key", key, e))?;
    Ok((chain, key))
}

/// The handshake-signature methods of a verifier that wraps another (`self.inner`): zicht's
/// verifiers add checks on the certificate, never on signatures.
macro_rules! signatures_from_inner {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

/// Wraps the WebPKI verifier (trust bundle, validity period, CRL) and also requires a zicht
/// identity, so a certificate without one fails the handshake rather than a later request.
#[derive(Debug)]
struct IdentityVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// Past this moment the CRL is too old to trust (its nextUpdate plus the grace): every
    /// certificate is refused, so the node fails closed until a fresh CRL is in place.
    crl_deadline: Option<UnixTime>,
}

impl ClientCertVerifier for IdentityVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self
            .crl_deadline
            .is_some_and(|deadline| now.as_secs() > deadline.as_secs())
        {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ExpiredRevocationList,
            ));
        }
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        zicht_pki::identity_of(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )
        })?;
        Ok(verified)
    }

    signatures_from_inner!();
}

/// The CRLs' dates taken together: the newest issue date and the earliest next update. A CRL
/// whose dates cannot be read is an error (never a CRL that is trusted however old it gets).
fn crl_dates(
    files: &TlsFiles,
    crls: &[CertificateRevocationListDer<'_>],
) -> Result<Option<zicht_pki::CrlDates>, TlsError> {
    let mut dates = Vec::with_capacity(crls.len());
    for crl in crls {
        let read = zicht_pki::crl_dates(crl.as_ref()).map_err(|_| {
            let path = files.crl.as_deref().unwrap_or(std::path::Path::new(""));
            file_error("CRL", path, "its thisUpdate/nextUpdate cannot be read")
        })?;
        dates.push(read);
    }
    Ok(dates.into_iter().reduce(|a, b| zicht_pki::CrlDates {
        this_update: a.this_update.max(b.this_update),
        next_update: match (a.next_update, b.next_update) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        },
    }))
}

/// Builds the server configuration: TLS 1.3 only, client certificate required and checked
/// against trust bundle, CRL (trusted until `crl_grace` past its nextUpdate, then every
/// certificate is refused) and zicht identity; HTTP/2 for gRPC.
pub fn server_config(files: &TlsFiles, crl_grace: Duration) -> Result<Built, TlsError> {
    let roots = Arc::new(load_roots(&files.ca)?);
    let crls = load_crls(files)?;
    let dates = crl_dates(files, &crls)?;
    let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let crl_deadline = dates.and_then(|dates| dates.next_update).map(|next| {
        UnixTime::since_unix_epoch(Duration::from_secs(next.max(0) as u64) + crl_grace)
    });
    let verifier: Arc<dyn ClientCertVerifier> = Arc::new(IdentityVerifier {
        inner,
        crl_deadline,
    });
    let (chain, key) = load_identity(&files.cert, &files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier.clone())
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Built {
        config: Arc::new(config),
        verifier,
        crl: dates,
    })
}

/// A server configuration, its verifier (to check live connections again) and the CRL's dates.
pub struct Built {
    config: Arc<ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
    crl: Option<zicht_pki::CrlDates>,
}

/// What new connections are accepted with, and what live ones are checked against.
struct Current {
    built: Built,
    stamps: Vec<Option<SystemTime>>,
}

/// The current server configuration, rebuilt when a file changes; on every rebuild the live
/// connections are checked again, and those whose certificate the new trust bundle or CRL
/// refuses (revoked, expired) are closed.
pub struct ReloadingTls {
    files: TlsFiles,
    crl_grace: Duration,
    current: RwLock<Current>,
    connections: Arc<Connections>,
    /// Raised on every rebuild, so what was checked under older files is checked again.
    generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn stamps(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [
        Some(&files.ca),
        Some(&files.cert),
        Some(&files.key),
        files.crl.as_ref(),
    ]
    .into_iter()
    .map(|path| path.and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()))
    .collect()
}

impl ReloadingTls {
    /// Loads the files once; fails if they do not make a valid configuration.
    pub fn new(files: TlsFiles, crl_grace: Duration) -> Result<ReloadingTls, TlsError> {
        let built = server_config(&files, crl_grace)?;
        let stamps = stamps(&files);
        Ok(ReloadingTls {
            files,
            crl_grace,
            current: RwLock::new(Current { built, stamps }),
            connections: Arc::default(),
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The configuration new connections use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.read().built.config.clone()
    }

    /// The CRL in force: seconds since it was issued, and seconds it is past its nextUpdate
    /// (0 while it is not), as of `now` (seconds since the epoch). None without a CRL.
    pub fn crl_age(&self, now: i64) -> Option<(i64, i64)> {
        let dates = self.read().built.crl?;
        let overdue = dates.next_update.map_or(0, |next| (now - next).max(0));
        Some((now - dates.this_update, overdue))
    }

    /// Whether the CRL is past its nextUpdate by more than the grace, so every handshake is
    /// refused.
    pub fn crl_overdue(&self, now: i64) -> bool {
        self.crl_age(now)
            .is_some_and(|(_, overdue)| overdue > self.crl_grace.as_secs() as i64)
    }

    /// The node's live connections.
    pub(crate) fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// How many verified connections are open.
    pub fn open_connections(&self) -> usize {
        self.connections.open()
    }

    /// Rebuilds the configuration if a file changed, then closes every live connection whose
    /// certificate it refuses. On a bad new file the old configuration stays in force and the
    /// error is returned for the log. Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let stamp = stamps(&self.files);
        if self.read().stamps == stamp {
            return Ok(false);
        }
        let rebuilt = server_config(&self.files, self.crl_grace);
        {
            let mut guard = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Remember the new stamps even when the files are bad, so a broken file is
            // reported once, not on every check; fixing it changes the stamps again.
            guard.stamps = stamp;
            guard.built = rebuilt?;
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.close_refused();
        Ok(true)
    }

    /// How often the files were rebuilt: a check made under an older generation is stale.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The identity of a certificate chain (end entity first) the current files accept now,
    /// as a handshake would: trust bundle, validity, CRL (and its grace), a zicht identity.
    /// The reason for a refusal names the check, never the certificate's contents.
    pub fn verify_chain(&self, chain: &[CertificateDer<'_>]) -> Result<PeerIdentity, String> {
        let Some((end_entity, intermediates)) = chain.split_first() else {
            return Err("no certificate".to_owned());
        };
        let verifier = self.read().built.verifier.clone();
        verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map_err(|error| match error {
                rustls::Error::InvalidCertificate(reason) => format!("{reason:?}"),
                other => other.to_string(),
            })?;
        zicht_pki::identity_of(end_entity).map_err(|_| "no zicht identity".to_owned())
    }

    /// Closes every live connection whose certificate chain the current verifier refuses now
    /// (revoked, expired, no longer trusted); returns how many.
    pub fn close_refused(&self) -> usize {
        let verifier = self.read().built.verifier.clone();
        self.connections.close_where(|chain| {
            let Some((end_entity, intermediates)) = chain.split_first() else {
                return true;
            };
            verifier
                .verify_client_cert(end_entity, intermediates, UnixTime::now())
                .is_err()
        })
    }
}

/// Wraps the WebPKI server verifier (trust bundle, validity, CRL, address) and also requires
/// the PeerID the federation manifest lists for the address, so a valid certificate of another
/// node cannot answer in a peer's name.
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expected: zicht_model::PeerId,
}

impl rustls::client::danger::ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match zicht_pki::identity_of(end_entity) {
            Ok(identity) if identity.peer_id == self.expected => Ok(verified),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    signatures_from_inner!();
}

fn load_crls(files: &TlsFiles) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut crls = Vec::new();
    if let Some(path) = &files.crl {
        for crl in CertificateRevocationListDer::pem_file_iter(path)
            .map_err(|e| file_error("CRL", path, e))?
        {
            crls.push(crl.map_err(|e| file_error("CRL", path, e))?);
        }
    }
    Ok(crls)
}

/// Builds the client configuration for calling the peer whose PeerID is `expected`: TLS 1.3,
/// our certificate as client identity, the server checked against trust bundle, CRL, its
/// address and the expected PeerID; HTTP/2 for gRPC. Read from the files on every call, so
/// rotated certificates and a new CRL take effect on the next connection.
pub fn client_config(
    files: &TlsFiles,
    expected: zicht_model::PeerId,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = Arc::new(load_roots(&files.ca)?);
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
        .with_crls(load_crls(files)?)
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let (chain, key) = load_identity(&files.cert, &files.key)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier { inner, expected }))
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
