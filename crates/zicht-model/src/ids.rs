//! Identifiers: pseudonymous youth ids, consent ids, PeerIDs and node names.

use std::fmt;

use crate::codes::{CodeList, UnknownCode};
use crate::region::{Network, Region};

/// Why an identifier was rejected (never repeats the rejected text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// Empty, too long, or a character outside `A-Za-z0-9_-`.
    #[error("must be 1-64 characters of A-Z, a-z, 0-9, `_` and `-`")]
    Token,
    /// Not exactly 20 ASCII digits.
    #[error("must be exactly 20 digits (OIN-style PeerID)")]
    PeerId,
    /// Nine digits that pass the elfproef: a BSN, which a youth id never is.
    #[error(
        "looks like a BSN (nine digits passing the elfproef); a youth_id is a pseudonym, never a BSN: pseudonymise before import"
    )]
    Bsn,
}

/// Whether `text` is nine digits that pass the elfproef (the eleven-test of a
/// burgerservicenummer): 9·d1 + 8·d2 + ... + 2·d8 − 1·d9 is a multiple of 11 and not 0.
pub fn is_bsn(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: i32 = bytes
        .iter()
        .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
        .map(|(b, weight)| i32::from(b - b'0') * weight)
        .sum();
    sum != 0 && sum % 11 == 0
}

fn is_token(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An opaque pseudonym of a youth, 1-64 of `A-Za-z0-9_-`. The node never sees a BSN: nine
/// digits passing the elfproef are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YouthId(String);

impl YouthId {
    /// Validates a pseudonym.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        if !is_token(text) {
            Err(InvalidId::Token)
        } else if is_bsn(text) {
            Err(InvalidId::Bsn)
        } else {
            Ok(YouthId(text.to_owned()))
        }
    }

    /// The pseudonym.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identifier of a consent record, 1-64 of `A-Za-z0-9_-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConsentId(String);

impl ConsentId {
    /// Validates a consent id.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        if is_token(text) {
            Ok(ConsentId(text.to_owned()))
        } else {
            Err(InvalidId::Token)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A peer's identity: the subject serialNumber of its certificate, 20 digits, OIN-style as in
/// the Dutch FSC standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; 20]);

impl PeerId {
    /// Validates a PeerID.
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let bytes: [u8; 20] = text.as_bytes().try_into().map_err(|_| InvalidId::PeerId)?;
        if bytes.iter().all(u8::is_ascii_digit) {
            Ok(PeerId(bytes))
        } else {
            Err(InvalidId::PeerId)
        }
    }

    /// The 20 digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node of the federation: one per region, plus one per network (an aggregator that holds no
/// youth data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeName {
    /// A regional node.
    Region(Region),
    /// A network aggregator node.
    Network(Network),
}

impl NodeName {
    /// Every node of the federation: the 14 regions, then the 3 networks.
    pub fn all() -> impl Iterator<Item = NodeName> {
        Region::ALL
            .iter()
            .map(|&r| NodeName::Region(r))
            .chain(Network::ALL.iter().map(|&n| NodeName::Network(n)))
    }

    /// The node's code (region or network code).
    pub fn code(self) -> &'static str {
        match self {
            NodeName::Region(region) => region.code(),
            NodeName::Network(network) => network.code(),
        }
    }

    /// Parses a region code or alias, or a network code.
    pub fn parse(text: &str) -> Result<Self, UnknownCode> {
        Network::parse(text)
            .map(NodeName::Network)
            .or_else(|_| Region::parse(text).map(NodeName::Region))
            .map_err(|unknown| {
                // Suggest among every node, networks included (`bennh` is ben-nh).
                let codes: Vec<&'static str> = NodeName::all().map(NodeName::code).collect();
                let closest = match crate::codes::parse_among("node", &codes, text) {
                    Err(among) => among.closest,
                    Ok(code) => Some(code),
                };
                UnknownCode {
                    list: "node",
                    closest: closest.or(unknown.closest),
                    valid: codes,
                }
            })
    }

    /// The PeerID this node has in the development federation that `zicht demo` builds:
    /// `00000099` followed by the node's 12-digit number (regions 1-14, networks 101-103).
    /// Real federations use the OINs of the organisations instead.
    pub fn dev_peer_id(self) -> PeerId {
        let number = match self {
            NodeName::Region(region) => position(Region::ALL, region) + 1,
            NodeName::Network(network) => position(Network::ALL, network) + 101,
        };
        let text = format!("00000099{number:012}");
        PeerId::parse(&text).unwrap_or(PeerId([b'0'; 20]))
    }
}

fn position<T: CodeList + PartialEq>(all: &[T], wanted: T) -> usize {
    all.iter().position(|&m| m == wanted).unwrap_or(0)
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youth_ids_are_opaque_tokens() {
        assert!(YouthId::parse("Y-0001_a").is_ok());
        assert_eq!(YouthId::parse(""), Err(InvalidId::Token));
        assert_eq!(YouthId::parse("has space"), Err(InvalidId::Token));
        assert_eq!(YouthId::parse(&"x".repeat(65)), Err(InvalidId::Token));
        assert!(YouthId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn a_bsn_is_never_a_youth_id() {
        // 111222333: 9+8+7+12+10+8+9+6-3 = 66, a multiple of 11.
        assert!(is_bsn("111222333"));
        assert_eq!(YouthId::parse("111222333"), Err(InvalidId::Bsn));
        // One digit off fails the elfproef: an ordinary number, an ordinary pseudonym.
        assert!(!is_bsn("111222334"));
        assert!(YouthId::parse("111222334").is_ok());
        assert!(!is_bsn("000000000"));
        assert!(!is_bsn("11122233"));
        assert!(!is_bsn("1112223330"));
        assert!(!YouthId::parse("111222333")
            .unwrap_err()
            .to_string()
            .contains("111222333"));
    }

    #[test]
    fn peer_ids_are_twenty_digits() {
        assert!(PeerId::parse("00000001234567890000").is_ok());
        assert_eq!(PeerId::parse("0000000123456789000"), Err(InvalidId::PeerId));
        assert_eq!(
            PeerId::parse("0000000123456789000a"),
            Err(InvalidId::PeerId)
        );
    }

    #[test]
    fn an_unknown_node_is_matched_against_networks_too() {
        let unknown = NodeName::parse("bennh").unwrap_err();
        assert_eq!(unknown.closest, Some("ben-nh"));
        assert_eq!(unknown.valid.len(), 17);
        assert_eq!(
            NodeName::parse("Fryslân"),
            Ok(NodeName::Region(Region::Friesland))
        );
    }

    #[test]
    fn dev_peer_ids_are_distinct_and_valid() {
        let ids: std::collections::BTreeSet<_> = NodeName::all().map(|n| n.dev_peer_id()).collect();
        assert_eq!(ids.len(), 17);
        assert_eq!(
            NodeName::Region(Region::Drenthe).dev_peer_id().as_str(),
            "00000099000000000001"
        );
        assert_eq!(
            NodeName::Network(Network::BenNh).dev_peer_id().as_str(),
            "00000099000000000103"
        );
    }
}
