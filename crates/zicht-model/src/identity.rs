//! Who is calling: a peer's identity as its certificate states it (PeerID, organisation, role).

use std::fmt;

use crate::codes::CodeList;
use crate::ids::PeerId;
use crate::region::{Network, Region};

/// What a certificate holder is in the federation, carried as a SAN URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A regional node: `urn:zicht:region:<region>`.
    Region(Region),
    /// A network aggregator node: `urn:zicht:network:<network>`.
    Network(Network),
    /// A person on a region's data team: `urn:zicht:analyst:<region>:<name>`.
    Analyst {
        /// The region the analyst works for.
        region: Region,
        /// A short account name (`a-z0-9._-`).
        name: String,
    },
    /// A team that works with youths in a region, not a data team: a municipality's lokaal
    /// team (the local social team that supports a youth and family) or a care provider's
    /// team, `urn:zicht:team:<region>:<name>`. It asks through its region's node like an
    /// analyst, and receives individual records only where a youth consented.
    Team {
        /// The region the team works in.
        region: Region,
        /// A short account name (`a-z0-9._-`).
        name: String,
    },
    /// A coordinator of a supra-regional network (JENN, BEN-NH, Overijssel), who asks
    /// bovenregionaal questions through the network's node:
    /// `urn:zicht:coordinator:<network>:<name>`.
    Coordinator {
        /// The network the coordinator works for.
        network: Network,
        /// A short account name (`a-z0-9._-`).
        name: String,
    },
    /// An auditor (FG, external auditor, inspectorate): `urn:zicht:auditor:<name>`.
    Auditor {
        /// A short account name (`a-z0-9._-`).
        name: String,
    },
}

/// A SAN URI that is not a zicht role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a zicht role URI (urn:zicht:region:<code>, urn:zicht:network:<code>, urn:zicht:analyst:<region>:<name>, urn:zicht:team:<region>:<name>, urn:zicht:coordinator:<network>:<name>, urn:zicht:auditor:<name>)")]
pub struct InvalidRole;

fn valid_account(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Role {
    /// The URI as written into the certificate.
    pub fn uri(&self) -> String {
        match self {
            Role::Region(region) => format!("urn:zicht:region:{}", region.code()),
            Role::Network(network) => format!("urn:zicht:network:{}", network.code()),
            Role::Analyst { region, name } => {
                format!("urn:zicht:analyst:{}:{name}", region.code())
            }
            Role::Team { region, name } => format!("urn:zicht:team:{}:{name}", region.code()),
            Role::Coordinator { network, name } => {
                format!("urn:zicht:coordinator:{}:{name}", network.code())
            }
            Role::Auditor { name } => format!("urn:zicht:auditor:{name}"),
        }
    }

    /// Parses a role URI; codes must be canonical (no aliases inside certificates).
    pub fn parse_uri(uri: &str) -> Result<Role, InvalidRole> {
        let rest = uri.strip_prefix("urn:zicht:").ok_or(InvalidRole)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let region = |code: &str| Region::from_code(code).ok_or(InvalidRole);
        match parts.as_slice() {
            ["region", code] => region(code).map(Role::Region),
            ["network", code] => Network::from_code(code)
                .map(Role::Network)
                .ok_or(InvalidRole),
            ["analyst", code, name] if valid_account(name) => Ok(Role::Analyst {
                region: region(code)?,
                name: (*name).to_owned(),
            }),
            ["team", code, name] if valid_account(name) => Ok(Role::Team {
                region: region(code)?,
                name: (*name).to_owned(),
            }),
            ["coordinator", code, name] if valid_account(name) => Ok(Role::Coordinator {
                network: Network::from_code(code).ok_or(InvalidRole)?,
                name: (*name).to_owned(),
            }),
            ["auditor", name] if valid_account(name) => Ok(Role::Auditor {
                name: (*name).to_owned(),
            }),
            _ => Err(InvalidRole),
        }
    }

    /// The role's kind as policy files name it: `region`, `network`, `analyst`, `team`,
    /// `coordinator`, `auditor`.
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Region(_) => "region",
            Role::Network(_) => "network",
            Role::Analyst { .. } => "analyst",
            Role::Team { .. } => "team",
            Role::Coordinator { .. } => "coordinator",
            Role::Auditor { .. } => "auditor",
        }
    }

    /// Whether the role is a person's (an analyst, a team, a coordinator), served by their
    /// own node's Outway (a region's, or a coordinator's network's); nodes ask each other
    /// through their Inways.
    pub fn is_person(&self) -> bool {
        matches!(
            self,
            Role::Analyst { .. } | Role::Team { .. } | Role::Coordinator { .. }
        )
    }

    /// The network a network node or a coordinator belongs to.
    pub fn network(&self) -> Option<Network> {
        match self {
            Role::Network(network) | Role::Coordinator { network, .. } => Some(*network),
            _ => None,
        }
    }

    /// The node this role is, for a node's certificate (a region's or a network's).
    pub fn node(&self) -> Option<crate::NodeName> {
        match self {
            Role::Region(region) => Some(crate::NodeName::Region(*region)),
            Role::Network(network) => Some(crate::NodeName::Network(*network)),
            _ => None,
        }
    }

    /// The region whose organisation the role belongs to: a region's node, its analysts and
    /// its teams.
    pub fn region(&self) -> Option<Region> {
        match self {
            Role::Region(region) | Role::Analyst { region, .. } | Role::Team { region, .. } => {
                Some(*region)
            }
            Role::Network(_) | Role::Coordinator { .. } | Role::Auditor { .. } => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// A verified peer: derived once per connection from its certificate, handed to every handler.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// Subject serialNumber.
    pub peer_id: PeerId,
    /// Subject O (organisation name).
    pub organisation: String,
    /// The role from the SAN URI.
    pub role: Role,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.peer_id, self.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_uris_round_trip() {
        let roles = [
            Role::Region(Region::GooiEnVechtstreek),
            Role::Network(Network::BenNh),
            Role::Analyst {
                region: Region::Drenthe,
                name: "j.de-vries".to_owned(),
            },
            Role::Team {
                region: Region::Ijsselland,
                name: "lokaal-team.zwolle".to_owned(),
            },
            Role::Coordinator {
                network: Network::BenNh,
                name: "coordinator".to_owned(),
            },
            Role::Auditor {
                name: "fg-twente".to_owned(),
            },
        ];
        for role in roles {
            assert_eq!(Role::parse_uri(&role.uri()), Ok(role.clone()), "{role}");
        }
        assert_eq!(
            Role::Region(Region::Ijmond).uri(),
            "urn:zicht:region:ijmond"
        );
    }

    #[test]
    fn rejects_foreign_or_malformed_uris() {
        for bad in [
            "https://example.org",
            "urn:zicht:region:gelderland",
            "urn:zicht:region:IJmond",
            "urn:zicht:analyst:drenthe",
            "urn:zicht:analyst:drenthe:Has Space",
            "urn:zicht:auditor:",
            "urn:zicht:admin:root",
            "urn:zicht:coordinator:drenthe:x",
            "urn:zicht:coordinator:jenn",
        ] {
            assert_eq!(Role::parse_uri(bad), Err(InvalidRole), "{bad}");
        }
    }
}
