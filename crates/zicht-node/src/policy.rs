//! The node's policy: a TOML file the region owns, default deny. A grant names who (a PeerID or
//! a role), which templates, for which purposes (doelbinding), how fine (the dimensions a
//! request may group or filter by), and how often (a quota per minute). `owner = true` marks
//! the region's own analysts: they see their own data's counts exactly; everyone else gets
//! perturbed counts.
//!
//! ```toml
//! [[grant]]
//! role = "network:jenn"              # or peer = "00000099000000000101"
//! templates = ["capacity", "youth_in_care"]
//! purposes = ["capaciteitsmonitoring", "bovenregionale-sturing"]
//! group_by = ["care_type", "placement_region"]
//! quota_per_minute = 120
//!
//! [[grant]]
//! role = "analyst:drenthe"           # owner grants name one region's analysts
//! owner = true
//! templates = ["youth_in_care"]
//! purposes = ["bovenregionale-sturing"]
//! group_by = ["care_type"]
//! quota_per_minute = 600
//!
//! [[grant]]
//! role = "region:ijsselland"         # its node asks on behalf of its lokaal teams
//! templates = ["consented_records"]  # only the records a youth consented to give them
//! purposes = ["warme-overdracht"]
//! fields = ["youth_id", "toekomstplan", "after18_funding"]  # never more than the grant lists
//! quota_per_minute = 60
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;
use zicht_model::{
    CodeList, Dimension, Network, PeerId, PeerIdentity, Purpose, Region, Role, Template,
};

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// One certificate holder by PeerID.
    Peer(PeerId),
    /// Any regional node (`region:*`) or one (`region:<code>`).
    Region(Option<Region>),
    /// Any network aggregator (`network:*`) or one (`network:<code>`).
    Network(Option<Network>),
    /// Analysts of any region (`analyst:*`) or of one (`analyst:<region>`).
    Analyst(Option<Region>),
    /// Teams (lokaal teams, care teams) of any region (`team:*`) or of one (`team:<region>`).
    Team(Option<Region>),
    /// Coordinators of any network (`coordinator:*`) or of one (`coordinator:<network>`).
    Coordinator(Option<Network>),
    /// Auditors (`auditor`).
    Auditor,
}

impl Who {
    fn parse_role(text: &str) -> Option<Who> {
        let region = |code: &str| -> Option<Option<Region>> {
            if code == "*" {
                Some(None)
            } else {
                Region::from_code(code).map(Some)
            }
        };
        match text.split_once(':') {
            Some(("region", code)) => region(code).map(Who::Region),
            Some(("analyst", code)) => region(code).map(Who::Analyst),
            Some(("team", code)) => region(code).map(Who::Team),
            Some(("network", "*")) => Some(Who::Network(None)),
            Some(("coordinator", "*")) => Some(Who::Coordinator(None)),
            Some(("coordinator", code)) => {
                Network::from_code(code).map(|n| Who::Coordinator(Some(n)))
            }
            Some(("network", code)) => Network::from_code(code).map(|n| Who::Network(Some(n))),
            None if text == "auditor" => Some(Who::Auditor),
            _ => None,
        }
    }

    /// Whether `identity` is covered.
    pub fn matches(&self, identity: &PeerIdentity) -> bool {
        match (self, &identity.role) {
            (Who::Peer(peer), _) => *peer == identity.peer_id,
            (Who::Region(wanted), Role::Region(region)) => wanted.is_none_or(|w| w == *region),
            (Who::Network(wanted), Role::Network(network)) => wanted.is_none_or(|w| w == *network),
            (Who::Analyst(wanted), Role::Analyst { region, .. })
            | (Who::Team(wanted), Role::Team { region, .. }) => wanted.is_none_or(|w| w == *region),
            (Who::Coordinator(wanted), Role::Coordinator { network, .. }) => {
                wanted.is_none_or(|w| w == *network)
            }
            (Who::Auditor, Role::Auditor { .. }) => true,
            _ => false,
        }
    }
}

/// One permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who may call.
    pub who: Who,
    /// Which templates.
    pub templates: BTreeSet<Template>,
    /// For which purposes.
    pub purposes: BTreeSet<Purpose>,
    /// The finest grouping allowed: the request's group-by and filter dimensions must be a
    /// subset.
    pub group_by: BTreeSet<Dimension>,
    /// Requests per minute per caller (burst up to the same number).
    pub quota_per_minute: u32,
    /// The callers own the data (the region's own analysts): exact counts.
    pub owner: bool,
    /// The record fields the callers may receive (`consented_records`; a consent never widens
    /// it, and it never widens a consent).
    pub fields: BTreeSet<&'static str>,
}

/// A default-deny policy: the grants, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The grants.
    pub grants: Vec<Grant>,
}

/// Why a request was refused. Messages name the rule or the missing grant, never data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The request named no purpose.
    #[error("a purpose (processing activity) is required")]
    NoPurpose,
    /// The purpose is not in the register.
    #[error("unknown purpose; {hint}")]
    UnknownPurpose {
        /// The closest registered purpose, when one is close, or the registered purposes.
        hint: String,
    },
    /// The template is not in the catalogue.
    #[error("unknown template; {hint}")]
    UnknownTemplate {
        /// The closest template, when one is close, or the templates.
        hint: String,
    },
    /// No grant covers the caller at all.
    #[error("no grant for {caller}")]
    NoGrantForCaller {
        /// The caller (PeerID and role URI).
        caller: String,
    },
    /// Grants cover the caller but not this template.
    #[error("missing grant: {caller} may not call template {template}")]
    TemplateNotGranted {
        /// The caller.
        caller: String,
        /// The template asked.
        template: Template,
    },
    /// Grants cover caller and template but not this purpose.
    #[error("missing grant: {caller} may not call {template} for purpose {purpose}")]
    PurposeNotGranted {
        /// The caller.
        caller: String,
        /// The template asked.
        template: Template,
        /// The purpose asked.
        purpose: Purpose,
    },
    /// The grouping is finer than any matching grant allows.
    #[error(
        "missing grant: {caller} may not group {template} by {dimension} for purpose {purpose}"
    )]
    TooFine {
        /// The caller.
        caller: String,
        /// The template asked.
        template: Template,
        /// The purpose asked.
        purpose: Purpose,
        /// A dimension no matching grant allows.
        dimension: Dimension,
    },
    /// A record field no matching grant allows.
    #[error("missing grant: {caller} may not receive field {field} of consented_records for purpose {purpose}")]
    FieldNotGranted {
        /// The caller.
        caller: String,
        /// The purpose asked.
        purpose: Purpose,
        /// A field no matching grant lists.
        field: &'static str,
    },
    /// A filter on a dimension no matching grant allows (a filter needs the same grant as
    /// grouping by it).
    #[error(
        "missing grant: {caller} may not filter {template} by {dimension} for purpose {purpose}"
    )]
    FilterNotGranted {
        /// The caller.
        caller: String,
        /// The template asked.
        template: Template,
        /// The purpose asked.
        purpose: Purpose,
        /// A filtered dimension no matching grant allows.
        dimension: Dimension,
    },
}

impl Policy {
    /// Finds the grant that allows `identity` to call `template` for `purpose` grouped by
    /// `group_by`, filtered on `filters` and (records) receiving `fields`, or says which
    /// grant is missing.
    pub fn authorize(
        &self,
        identity: &PeerIdentity,
        template: Template,
        purpose: Purpose,
        group_by: &[Dimension],
        filters: &[Dimension],
        fields: &[&'static str],
    ) -> Result<(usize, &Grant), Denied> {
        let caller = identity.to_string();
        let mine: Vec<(usize, &Grant)> = self
            .grants
            .iter()
            .enumerate()
            .filter(|(_, g)| g.who.matches(identity))
            .collect();
        if mine.is_empty() {
            return Err(Denied::NoGrantForCaller { caller });
        }
        let with_template: Vec<_> = mine
            .into_iter()
            .filter(|(_, g)| g.templates.contains(&template))
            .collect();
        if with_template.is_empty() {
            return Err(Denied::TemplateNotGranted { caller, template });
        }
        let with_purpose: Vec<_> = with_template
            .into_iter()
            .filter(|(_, g)| g.purposes.contains(&purpose))
            .collect();
        if with_purpose.is_empty() {
            return Err(Denied::PurposeNotGranted {
                caller,
                template,
                purpose,
            });
        }
        if template == Template::ConsentedRecords {
            let mut missing = None;
            for (index, grant) in with_purpose {
                match fields.iter().find(|f| !grant.fields.contains(*f)) {
                    None => return Ok((index, grant)),
                    Some(field) => missing = missing.or(Some(*field)),
                }
            }
            return Err(Denied::FieldNotGranted {
                caller,
                purpose,
                field: missing.unwrap_or("youth_id"),
            });
        }
        let mut too_fine = None;
        for (index, grant) in with_purpose {
            let grouped = group_by.iter().find(|d| !grant.group_by.contains(d));
            let filtered = filters.iter().find(|d| !grant.group_by.contains(d));
            match (grouped, filtered) {
                (None, None) => return Ok((index, grant)),
                (Some(&dimension), _) => too_fine = too_fine.or(Some((dimension, false))),
                (None, Some(&dimension)) => too_fine = too_fine.or(Some((dimension, true))),
            }
        }
        match too_fine {
            Some((dimension, true)) => Err(Denied::FilterNotGranted {
                caller,
                template,
                purpose,
                dimension,
            }),
            other => Err(Denied::TooFine {
                caller,
                template,
                purpose,
                dimension: other.map_or(Dimension::CareType, |(d, _)| d),
            }),
        }
    }
}

/// One problem in a policy file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    grant: Vec<Spanned<GrantFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantFile {
    peer: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    templates: Vec<Spanned<String>>,
    purposes: Vec<Spanned<String>>,
    #[serde(default)]
    group_by: Vec<Spanned<String>>,
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    quota_per_minute: Spanned<u32>,
    owner: Option<Spanned<bool>>,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The problems found in one policy file, each at its place.
struct Problems<'a> {
    text: &'a str,
    found: Vec<PolicyProblem>,
}

impl Problems<'_> {
    fn add(&mut self, offset: usize, message: String) {
        let (line, column) = position(self.text, offset);
        self.found.push(PolicyProblem {
            line,
            column,
            message,
        });
    }

    /// The members of code list `T` named in `codes`; an unknown code is a problem naming
    /// the closest one (`what` names the list in the message).
    fn codes<T: CodeList + Ord>(&mut self, codes: &[Spanned<String>], what: &str) -> BTreeSet<T> {
        let mut members = BTreeSet::new();
        for code in codes {
            match T::from_code(code.get_ref()) {
                Some(member) => {
                    members.insert(member);
                }
                None => {
                    let hint = hint::<T>(code.get_ref(), what);
                    self.add(code.span().start, format!("unknown {what}; {hint}"));
                }
            }
        }
        members
    }
}

/// Parses and checks a policy file against the code lists and, when given, the PeerIDs of the
/// federation manifest. Returns every problem with its line, or the policy.
pub fn parse_policy(
    text: &str,
    known_peers: Option<&[PeerId]>,
) -> Result<Policy, Vec<PolicyProblem>> {
    let file: PolicyFile = toml::from_str(text).map_err(|error| {
        let (line, column) = error
            .span()
            .map_or((1, 1), |span| position(text, span.start));
        vec![PolicyProblem {
            line,
            column,
            message: error.message().to_owned(),
        }]
    })?;
    let mut problems = Problems {
        text,
        found: Vec::new(),
    };
    let grants = file
        .grant
        .iter()
        .filter_map(|grant| parse_grant(grant, known_peers, &mut problems))
        .collect();
    if problems.found.is_empty() {
        Ok(Policy { grants })
    } else {
        let mut found = problems.found;
        found.sort_by_key(|p| (p.line, p.column));
        Err(found)
    }
}

/// One grant, or `None` when it names no one it can be for (its problems are recorded).
fn parse_grant(
    spanned: &Spanned<GrantFile>,
    known_peers: Option<&[PeerId]>,
    problems: &mut Problems<'_>,
) -> Option<Grant> {
    let grant = spanned.get_ref();
    let who = parse_who(spanned, known_peers, problems);
    let templates: BTreeSet<Template> = problems.codes(&grant.templates, "template");
    if grant.templates.is_empty() {
        problems.add(
            spanned.span().start,
            "templates must name at least one template".to_owned(),
        );
    }
    let purposes = problems.codes(&grant.purposes, "registered purpose");
    if grant.purposes.is_empty() {
        problems.add(
            spanned.span().start,
            "purposes must name at least one purpose".to_owned(),
        );
    }
    let group_by: BTreeSet<Dimension> = problems.codes(&grant.group_by, "dimension");
    for dimension in &grant.group_by {
        let usable = Dimension::from_code(dimension.get_ref())
            .is_none_or(|d| templates.iter().any(|t| t.dimensions().contains(&d)));
        if !usable {
            problems.add(
                dimension.span().start,
                "no template of this grant can group by this dimension".to_owned(),
            );
        }
    }
    if *grant.quota_per_minute.get_ref() == 0 {
        problems.add(
            grant.quota_per_minute.span().start,
            "quota_per_minute must be at least 1".to_owned(),
        );
    }
    let fields = grant_fields(spanned, &templates, problems);
    let owner = grant.owner.as_ref().is_some_and(|o| *o.get_ref());
    if owner && !matches!(who, Some(Who::Analyst(Some(_))) | None) {
        let at = grant.owner.as_ref().map_or(0, |o| o.span().start);
        problems.add(
            at,
            "owner = true is for one region's own analysts: role = \"analyst:<region>\"".to_owned(),
        );
    }
    Some(Grant {
        owner,
        who: who?,
        group_by: group_by
            .into_iter()
            .filter(|d| templates.iter().any(|t| t.dimensions().contains(d)))
            .collect(),
        templates,
        purposes,
        quota_per_minute: *grant.quota_per_minute.get_ref(),
        fields,
    })
}

/// The record fields of a grant: required (and only taken) when it names
/// `consented_records`, each from the consent field list.
fn grant_fields(
    spanned: &Spanned<GrantFile>,
    templates: &BTreeSet<Template>,
    problems: &mut Problems<'_>,
) -> BTreeSet<&'static str> {
    let grant = spanned.get_ref();
    let records = templates.contains(&Template::ConsentedRecords);
    if records && grant.fields.is_empty() {
        problems.add(
            spanned.span().start,
            "a grant of consented_records lists the fields it allows: fields = [...]".to_owned(),
        );
    }
    let known = zicht_model::Consent::field_list();
    let mut fields = BTreeSet::new();
    for field in &grant.fields {
        if !records {
            problems.add(
                field.span().start,
                "fields are for consented_records; this grant does not name it".to_owned(),
            );
            break;
        }
        match known.iter().find(|f| **f == field.get_ref().as_str()) {
            Some(known) => {
                fields.insert(*known);
            }
            None => problems.add(
                field.span().start,
                format!(
                    "`{}` is not a field of placements or transition18 (see docs/consent.md)",
                    field.get_ref()
                ),
            ),
        }
    }
    fields
}

/// Who a grant is for: exactly one of `peer` (in the manifest, when known) or `role`.
fn parse_who(
    spanned: &Spanned<GrantFile>,
    known_peers: Option<&[PeerId]>,
    problems: &mut Problems<'_>,
) -> Option<Who> {
    let grant = spanned.get_ref();
    match (&grant.peer, &grant.role) {
        (Some(peer), None) => match PeerId::parse(peer.get_ref()) {
            Ok(id) if known_peers.is_none_or(|known| known.contains(&id)) => Some(Who::Peer(id)),
            Ok(_) => {
                problems.add(
                    peer.span().start,
                    "peer is not in the federation manifest".to_owned(),
                );
                None
            }
            Err(error) => {
                problems.add(peer.span().start, format!("peer {error}"));
                None
            }
        },
        (None, Some(role)) => {
            let who = Who::parse_role(role.get_ref());
            if who.is_none() {
                problems.add(
                    role.span().start,
                    "role must be region:<code>|*, network:<code>|*, analyst:<region>|*, team:<region>|*, coordinator:<network>|* or auditor"
                        .to_owned(),
                );
            }
            who
        }
        _ => {
            problems.add(
                spanned.span().start,
                "a grant names exactly one of `peer` or `role`".to_owned(),
            );
            None
        }
    }
}

/// What to write instead of `text`, not a code of list `T` (a `noun`: `registered purpose`,
/// `template`): the closest code when one is close (the canonical one of a differently
/// written code), otherwise all of them.
pub fn hint<T: CodeList>(text: &str, noun: &str) -> String {
    match T::parse(text) {
        Ok(member) => format!("closest {noun} is `{}`", member.code()),
        Err(error) => match error.closest {
            Some(code) => format!("closest {noun} is `{code}`"),
            None => format!("{noun}s are {}", error.valid.join(", ")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zicht_model::NodeName;

    const POLICY: &str = r#"
[[grant]]
role = "network:jenn"
templates = ["capacity", "youth_in_care"]
purposes = ["capaciteitsmonitoring", "bovenregionale-sturing"]
group_by = ["care_type", "placement_region"]
quota_per_minute = 60

[[grant]]
peer = "00000099000000000002"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring"]
quota_per_minute = 10
"#;

    fn identity(node: NodeName) -> PeerIdentity {
        PeerIdentity {
            peer_id: node.dev_peer_id(),
            organisation: "test".to_owned(),
            role: match node {
                NodeName::Region(r) => Role::Region(r),
                NodeName::Network(n) => Role::Network(n),
            },
        }
    }

    #[test]
    fn a_coordinator_grant_covers_its_own_networks_coordinators_only() {
        let policy = parse_policy(
            "[[grant]]\nrole = \"coordinator:jenn\"\ntemplates = [\"capacity\"]\npurposes = [\"capaciteitsmonitoring\"]\nquota_per_minute = 10\n",
            None,
        )
        .unwrap();
        let coordinator = |network| PeerIdentity {
            peer_id: NodeName::Network(network).dev_peer_id(),
            organisation: "test".to_owned(),
            role: Role::Coordinator {
                network,
                name: "coordinator".to_owned(),
            },
        };
        let ask = |who: &PeerIdentity| {
            policy.authorize(
                who,
                Template::Capacity,
                Purpose::Capaciteitsmonitoring,
                &[],
                &[],
                &[],
            )
        };
        assert!(ask(&coordinator(Network::Jenn)).is_ok());
        assert!(ask(&coordinator(Network::BenNh)).is_err());
        assert!(ask(&identity(NodeName::Network(Network::Jenn))).is_err());
    }

    #[test]
    fn authorizes_and_names_the_missing_grant() {
        let policy = parse_policy(POLICY, None).unwrap();
        let jenn = identity(NodeName::Network(Network::Jenn));
        let friesland = identity(NodeName::Region(Region::Friesland));
        let twente = identity(NodeName::Region(Region::Twente));
        assert!(policy
            .authorize(
                &jenn,
                Template::YouthInCare,
                Purpose::BovenregionaleSturing,
                &[Dimension::CareType],
                &[],
                &[]
            )
            .is_ok());
        assert!(policy
            .authorize(
                &friesland,
                Template::Capacity,
                Purpose::Capaciteitsmonitoring,
                &[],
                &[],
                &[]
            )
            .is_ok());
        let check =
            |who: &PeerIdentity, template, purpose, group_by: &[Dimension], expect: &str| {
                let denied = policy
                    .authorize(who, template, purpose, group_by, &[], &[])
                    .unwrap_err();
                assert_eq!(denied.to_string(), expect);
            };
        check(
            &twente,
            Template::Capacity,
            Purpose::Capaciteitsmonitoring,
            &[],
            "no grant for 00000099000000000004 (urn:zicht:region:twente)",
        );
        check(&friesland, Template::YouthInCare, Purpose::Capaciteitsmonitoring, &[],
            "missing grant: 00000099000000000002 (urn:zicht:region:friesland) may not call template youth_in_care");
        check(&jenn, Template::YouthInCare, Purpose::TriagePlaatsing, &[],
            "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not call youth_in_care for purpose triage-plaatsing");
        check(&jenn, Template::YouthInCare, Purpose::BovenregionaleSturing, &[Dimension::CareType, Dimension::AgeBand],
            "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not group youth_in_care by age_band for purpose bovenregionale-sturing");
    }

    #[test]
    fn a_filter_needs_the_same_grant_as_grouping_by_it() {
        let policy = parse_policy(POLICY, None).unwrap();
        let jenn = identity(NodeName::Network(Network::Jenn));
        assert!(policy
            .authorize(
                &jenn,
                Template::YouthInCare,
                Purpose::BovenregionaleSturing,
                &[],
                &[Dimension::CareType],
                &[]
            )
            .is_ok());
        let denied = policy
            .authorize(
                &jenn,
                Template::YouthInCare,
                Purpose::BovenregionaleSturing,
                &[Dimension::CareType],
                &[Dimension::AgeBand],
                &[],
            )
            .unwrap_err();
        assert_eq!(denied.to_string(), "missing grant: 00000099000000000101 (urn:zicht:network:jenn) may not filter youth_in_care by age_band for purpose bovenregionale-sturing");
    }

    #[test]
    fn owner_grants_are_for_one_regions_analysts() {
        let owner = "[[grant]]\nrole = \"analyst:drenthe\"\nowner = true\ntemplates = [\"youth_in_care\"]\npurposes = [\"bovenregionale-sturing\"]\nquota_per_minute = 5\n";
        let policy = parse_policy(owner, None).unwrap();
        assert!(policy.grants[0].owner);
        assert!(!parse_policy(POLICY, None).unwrap().grants[0].owner);
        let network = owner.replace("analyst:drenthe", "network:jenn");
        let problems = parse_policy(&network, None).unwrap_err();
        assert_eq!(problems[0].line, 3);
        assert!(problems[0]
            .message
            .starts_with("owner = true is for one region's own analysts"));
        let everyone = owner.replace("analyst:drenthe", "analyst:*");
        assert!(parse_policy(&everyone, None).is_err());
    }

    #[test]
    fn check_reports_every_problem_with_its_line() {
        let text = r#"[[grant]]
role = "network:jen"
templates = ["capacty"]
purposes = ["triage"]
group_by = ["age_band"]
quota_per_minute = 0

[[grant]]
peer = "00000099000000000999"
templates = ["capacity"]
purposes = ["capaciteitsmonitoring"]
quota_per_minute = 5
"#;
        let known: Vec<PeerId> = NodeName::all().map(|n| n.dev_peer_id()).collect();
        let problems: Vec<String> = parse_policy(text, Some(&known))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            vec![
                "2:8: role must be region:<code>|*, network:<code>|*, analyst:<region>|*, team:<region>|*, coordinator:<network>|* or auditor",
                "3:14: unknown template; closest template is `capacity`",
                "4:13: unknown registered purpose; closest registered purpose is `triage-plaatsing`",
                "5:13: no template of this grant can group by this dimension",
                "6:20: quota_per_minute must be at least 1",
                "9:8: peer is not in the federation manifest",
            ]
        );
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_a_line() {
        let problems =
            parse_policy("[[grant]]\nrole = \"auditor\"\ntemplate = []\n", None).unwrap_err();
        assert_eq!(problems[0].line, 3, "{problems:?}");
        let problems = parse_policy("[[grant]\n", None).unwrap_err();
        assert_eq!(problems[0].line, 1, "{problems:?}");
    }

    #[test]
    fn an_empty_policy_denies_everything() {
        let policy = parse_policy("", None).unwrap();
        let jenn = identity(NodeName::Network(Network::Jenn));
        assert!(matches!(
            policy.authorize(
                &jenn,
                Template::Capacity,
                Purpose::Capaciteitsmonitoring,
                &[],
                &[],
                &[]
            ),
            Err(Denied::NoGrantForCaller { .. })
        ));
    }
}
