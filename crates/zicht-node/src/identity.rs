//! Who is calling. The connection's identity comes from its verified certificate (the accept
//! loop attaches it); a node certificate is served only when its PeerID is the one the
//! federation manifest lists for that node. A person a node asks for is never the node's
//! word: it is proven by the person's own signed, short-lived [`pb::Delegation`], which the
//! person's client makes ([`Delegator`]) and the node forwards unchanged. The data-owning
//! node checks the delegation's chain against its own trust bundle and CRL, the person's
//! role, that the person belongs to the forwarding node (its region, a member of its
//! network, or the network's coordinator), the request's hash and the validity window ([`Callers::person`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use tonic::metadata::{BinaryMetadataValue, MetadataMap};
use tonic::Request;
use zicht_model::{NodeName, PeerId, PeerIdentity};
use zicht_proto::v1 as pb;

use crate::convert::RequestText;
use crate::error::Error;
use crate::settings::ManifestPeer;
use crate::transport::accept::PeerInfo;
use crate::transport::tls::ReloadingTls;

/// The binary header in which a person's client hands its delegation to the node it asks,
/// and that node to its peers.
pub const DELEGATION: &str = "zicht-delegation-bin";

/// The header in which nodes once named the person they asked for, on their own word. A
/// request carrying it is refused: only a delegation names a person.
pub(crate) const ON_BEHALF_OF: &str = "zicht-on-behalf-of";

/// How long a delegation a client signs holds.
pub const VALIDITY: Duration = Duration::from_secs(5 * 60);

/// The longest validity a node accepts.
pub const MAX_VALIDITY: Duration = Duration::from_secs(15 * 60);

/// Clock difference tolerated between a person's machine and a node.
const SKEW_MS: i64 = 60_000;

/// What is signed before the claims, so a delegation's signature can never be taken for a
/// checkpoint's or anything else the same key signs.
const CONTEXT: &[u8] = b"zicht-delegation-v1\n";

/// The most certificates and bytes a delegation may carry.
const MAX_CHAIN: usize = 4;
const MAX_BYTES: usize = 16 * 1024;

/// Verified delegations kept, so a repeated question costs a hash instead of a signature
/// and a chain check.
const CACHE_ENTRIES: usize = 4096;

fn now_ms() -> i64 {
    crate::audit::now_ms()
}

/// A person's certificate chain and key, signing delegations for the questions they ask.
pub struct Delegator {
    chain: Vec<Vec<u8>>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Delegator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegator").finish_non_exhaustive()
    }
}

/// Why a client could not sign a delegation. Names the file, never key material.
#[derive(Debug, thiserror::Error)]
pub enum DelegatorError {
    /// The certificate or key file could not be read or holds nothing usable.
    #[error("{what} {path}: {reason}")]
    File {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The key could not sign.
    #[error("sign the delegation: {0}")]
    Sign(#[from] zicht_pki::PkiError),
}

impl Delegator {
    /// The person whose certificate (PEM chain) and key are in these files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Delegator, DelegatorError> {
        let file = |what, path: &Path, reason: String| DelegatorError::File {
            what,
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(cert).map_err(|e| file("certificate", cert, e.to_string()))?;
        let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| file("certificate", cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(file("certificate", cert, "holds no certificate".to_owned()));
        }
        let key_pem = std::fs::read(key).map_err(|e| file("private key", key, e.to_string()))?;
        Ok(Delegator { chain, key_pem })
    }

    /// A delegation of `request`, asked through `forwarder`, valid from now for [`VALIDITY`].
    pub fn delegate(
        &self,
        forwarder: NodeName,
        request: &pb::QueryRequest,
    ) -> Result<pb::Delegation, DelegatorError> {
        let now = now_ms();
        let claims = pb::DelegationClaims {
            forwarder: forwarder.code().to_owned(),
            request_sha256: crate::convert::request_digest(request).to_vec(),
            not_before_ms: now,
            not_after_ms: now + VALIDITY.as_millis() as i64,
        }
        .encode_to_vec();
        let signature = zicht_pki::sign(&self.key_pem, &signed_bytes(&claims))?;
        Ok(pb::Delegation {
            claims,
            signature,
            chain: self.chain.clone(),
        })
    }

    /// Puts a delegation of `request` through `forwarder` into `metadata`.
    pub fn attach(
        &self,
        forwarder: NodeName,
        request: &pb::QueryRequest,
        metadata: &mut MetadataMap,
    ) -> Result<(), DelegatorError> {
        let delegation = self.delegate(forwarder, request)?;
        attach(&delegation.encode_to_vec(), metadata);
        Ok(())
    }
}

/// Puts an encoded delegation into `metadata`.
fn attach(encoded: &[u8], metadata: &mut MetadataMap) {
    metadata.insert_bin(DELEGATION, BinaryMetadataValue::from_bytes(encoded));
}

fn signed_bytes(claims: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(CONTEXT.len() + claims.len());
    signed.extend_from_slice(CONTEXT);
    signed.extend_from_slice(claims);
    signed
}

/// A delegation whose signature and chain were checked: who signed it and what it says.
#[derive(Debug, Clone)]
struct Verified {
    person: PeerIdentity,
    forwarder: String,
    /// The request's SHA-256 in hex, as the log's parameter hash has it.
    request: String,
    not_before_ms: i64,
    not_after_ms: i64,
    /// The trust files' generation it was checked under: a reload (a new CRL) checks again.
    generation: u64,
}

/// The caller's verified identity, as the accept loop attached it to the request.
pub(crate) fn identity<T>(request: &Request<T>) -> Result<PeerIdentity, Error> {
    request
        .extensions()
        .get::<PeerInfo>()
        .map(|info| info.identity.clone())
        .ok_or(Error::NoIdentity)
}

/// The node's checks of who calls: the manifest's PeerID per node, and the trust bundle and
/// CRL a delegation's chain is checked against.
#[derive(Default)]
pub struct Callers {
    manifest: HashMap<NodeName, PeerId>,
    tls: Option<Arc<ReloadingTls>>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callers")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl Callers {
    /// The checks of a node holding `manifest`, verifying delegations against `tls`'s current
    /// trust bundle and CRL.
    pub(crate) fn new(manifest: &[ManifestPeer], tls: Arc<ReloadingTls>) -> Callers {
        Callers {
            manifest: manifest.iter().map(|p| (p.node, p.peer_id)).collect(),
            tls: Some(tls),
            verified: Mutex::default(),
        }
    }

    /// A node's identity is served only when it is the manifest's for that node (a person's is
    /// its certificate's).
    pub(crate) fn listed(&self, identity: &PeerIdentity) -> Result<(), Error> {
        let Some(node) = identity.role.node() else {
            return Ok(());
        };
        match self.manifest.get(&node) {
            Some(listed) if *listed == identity.peer_id => Ok(()),
            _ => Err(Error::Unlisted(identity.peer_id, node)),
        }
    }

    /// The person the calling node proves it asks for with `request` (none without a
    /// delegation: the node is the caller). A node naming a person on its own word, or a
    /// delegation that does not verify, is refused.
    pub(crate) fn person(
        &self,
        caller: &PeerIdentity,
        metadata: &MetadataMap,
        request: &RequestText,
    ) -> Result<Option<PeerIdentity>, Error> {
        // A person asking directly is the caller; a delegation sent along is ignored here (an
        // Outway checks the one it forwards).
        let Some(forwarder) = caller.role.node() else {
            return Ok(None);
        };
        if metadata.contains_key(ON_BEHALF_OF) {
            return Err(Error::Delegation(format!(
                "a node cannot name a person in {ON_BEHALF_OF}; it forwards the person's own \
                 signed delegation in {DELEGATION}"
            )));
        }
        let Some(header) = metadata.get_bin(DELEGATION) else {
            return Ok(None);
        };
        let verified = self.verify(header)?;
        let person = verified.check(forwarder, request, now_ms())?;
        belongs(&person, forwarder)?;
        Ok(Some(person))
    }

    /// For an Outway: the delegation `person` (the connection's identity) sent with
    /// `request` to this node `own`, checked and returned as the header value it came in, to
    /// forward unchanged; none when the client sent none.
    pub(crate) fn own_delegation(
        &self,
        person: &PeerIdentity,
        own: NodeName,
        metadata: &MetadataMap,
        request: &RequestText,
    ) -> Result<Option<BinaryMetadataValue>, Error> {
        let Some(header) = metadata.get_bin(DELEGATION) else {
            return Ok(None);
        };
        let verified = self.verify(header)?;
        let signer = verified.check(own, request, now_ms())?;
        if signer.peer_id != person.peer_id || signer.role != person.role {
            return Err(Error::Delegation(
                "the delegation is signed by someone other than the caller".to_owned(),
            ));
        }
        Ok(Some(header.clone()))
    }

    /// The signature and chain of a delegation as its header carries it, checked (or found
    /// checked under the current trust files: the header's own bytes are the cache's key, so
    /// a delegation seen before is neither decoded nor checked again).
    fn verify(&self, header: &BinaryMetadataValue) -> Result<Verified, Error> {
        let invalid = |why: &str| Error::Delegation(why.to_owned());
        let sent = header.as_encoded_bytes();
        // base64: four characters for every three bytes.
        if sent.len() > MAX_BYTES / 3 * 4 + 4 {
            return Err(invalid("larger than 16 KiB"));
        }
        let Some(tls) = &self.tls else {
            return Err(invalid(
                "this node has no trust bundle to check delegations against",
            ));
        };
        let generation = tls.generation();
        let key: [u8; 32] = Sha256::digest(sent).into();
        if let Some(hit) = self.cache().get(&key) {
            if hit.generation == generation {
                return Ok(hit.clone());
            }
        }
        let encoded = header
            .to_bytes()
            .map_err(|_| invalid("its header is not base64"))?;
        let delegation =
            pb::Delegation::decode(encoded.as_ref()).map_err(|_| invalid("not a delegation"))?;
        if delegation.chain.is_empty() || delegation.chain.len() > MAX_CHAIN {
            return Err(invalid(
                "it must carry the person's certificate chain (1-4 certificates)",
            ));
        }
        let chain: Vec<CertificateDer<'static>> = delegation
            .chain
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let person = tls.verify_chain(&chain).map_err(|reason| {
            Error::Delegation(format!(
                "the person's certificate is not accepted: {reason}"
            ))
        })?;
        if !zicht_pki::signature_valid(
            &delegation.chain[0],
            &signed_bytes(&delegation.claims),
            &delegation.signature,
        ) {
            return Err(invalid(
                "the signature does not match the person's certificate",
            ));
        }
        let claims = pb::DelegationClaims::decode(delegation.claims.as_slice())
            .map_err(|_| invalid("its claims cannot be read"))?;
        let verified = Verified {
            person,
            forwarder: claims.forwarder,
            request: hex::encode(&claims.request_sha256),
            not_before_ms: claims.not_before_ms,
            not_after_ms: claims.not_after_ms,
            generation,
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, verified.clone());
        Ok(verified)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Verified {
    /// The person, if this delegation is a person's, for `request` through `forwarder`, and
    /// holds at `now` (ms).
    fn check(
        &self,
        forwarder: NodeName,
        request: &RequestText,
        now: i64,
    ) -> Result<PeerIdentity, Error> {
        let invalid = |why: String| Err(Error::Delegation(why));
        if !self.person.role.is_person() {
            return invalid(format!(
                "{} is not a person's role; only analysts and teams delegate",
                self.person.role.uri()
            ));
        }
        if self.forwarder != forwarder.code() {
            return invalid(format!(
                "it was given to another node than {forwarder}, which forwards it"
            ));
        }
        if self.request != request.parameter_hash {
            return invalid("it was given for another request".to_owned());
        }
        let window = self.not_after_ms.saturating_sub(self.not_before_ms);
        if window <= 0 || window > MAX_VALIDITY.as_millis() as i64 {
            return invalid("its validity must be at most 15 minutes".to_owned());
        }
        if now + SKEW_MS < self.not_before_ms {
            return invalid("it is not valid yet".to_owned());
        }
        if now > self.not_after_ms + SKEW_MS {
            return invalid("it has expired".to_owned());
        }
        Ok(self.person.clone())
    }
}

/// Whether `person` belongs to the node `forwarder`: a region's own people; for a network,
/// its coordinators and the people of its member regions (on today's membership).
fn belongs(person: &PeerIdentity, forwarder: NodeName) -> Result<(), Error> {
    let region = person.role.region();
    let belongs = match forwarder {
        NodeName::Region(own) => region == Some(own),
        NodeName::Network(network) => {
            let today = crate::query::execute::today();
            person.role.network() == Some(network)
                || region.is_some_and(|r| network.members_on(today).any(|m| m == r))
        }
    };
    if belongs {
        Ok(())
    } else {
        Err(Error::Delegation(format!(
            "{} does not belong to {forwarder}, which forwards it",
            person.role.uri()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zicht_model::{Network, Region, Role};

    fn person(role: Role) -> PeerIdentity {
        PeerIdentity {
            peer_id: PeerId::parse("00000098000000000001").unwrap(),
            organisation: "test".to_owned(),
            role,
        }
    }

    fn verified(role: Role, forwarder: &str, request: &RequestText) -> Verified {
        Verified {
            person: person(role),
            forwarder: forwarder.to_owned(),
            request: request.parameter_hash.clone(),
            not_before_ms: 1_000_000,
            not_after_ms: 1_000_000 + VALIDITY.as_millis() as i64,
            generation: 0,
        }
    }

    fn analyst(region: Region) -> Role {
        Role::Analyst {
            region,
            name: "a".to_owned(),
        }
    }

    #[test]
    fn a_delegation_holds_for_its_request_forwarder_and_window_only() {
        let asked = RequestText::of(&pb::QueryRequest {
            template: "capacity".to_owned(),
            ..Default::default()
        });
        let other = RequestText::of(&pb::QueryRequest {
            template: "flows".to_owned(),
            ..Default::default()
        });
        let drenthe = NodeName::Region(Region::Drenthe);
        let d = verified(analyst(Region::Drenthe), "drenthe", &asked);
        let at = 1_000_000 + 1_000;
        assert!(d.check(drenthe, &asked, at).is_ok());
        let refused = |result: Result<PeerIdentity, Error>| match result {
            Err(Error::Delegation(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(refused(d.check(drenthe, &other, at)).contains("another request"));
        assert!(
            refused(d.check(NodeName::Region(Region::Twente), &asked, at)).contains("another node")
        );
        assert!(refused(d.check(drenthe, &asked, at + 20 * 60_000)).contains("expired"));
        assert!(refused(d.check(drenthe, &asked, 1_000_000 - 120_000)).contains("not valid yet"));
        let long = Verified {
            not_after_ms: 1_000_000 + 16 * 60_000,
            ..d.clone()
        };
        assert!(refused(long.check(drenthe, &asked, at)).contains("at most 15 minutes"));
        let node = verified(Role::Region(Region::Drenthe), "drenthe", &asked);
        assert!(refused(node.check(drenthe, &asked, at)).contains("not a person's role"));
    }

    #[test]
    fn a_person_belongs_to_their_region_and_its_networks_only() {
        let drenthe = person(analyst(Region::Drenthe));
        assert!(belongs(&drenthe, NodeName::Region(Region::Drenthe)).is_ok());
        assert!(belongs(&drenthe, NodeName::Network(Network::Jenn)).is_ok());
        assert!(belongs(&drenthe, NodeName::Region(Region::Friesland)).is_err());
        assert!(belongs(&drenthe, NodeName::Network(Network::BenNh)).is_err());
        // A coordinator belongs to their network's node, and to no region's.
        let coordinator = person(Role::Coordinator {
            network: Network::Jenn,
            name: "coordinator".to_owned(),
        });
        assert!(belongs(&coordinator, NodeName::Network(Network::Jenn)).is_ok());
        assert!(belongs(&coordinator, NodeName::Network(Network::BenNh)).is_err());
        assert!(belongs(&coordinator, NodeName::Region(Region::Drenthe)).is_err());
    }
}
