//! Consented records: the one path by which individual rows leave a node. A record of a youth
//! leaves only to a caller that one of the youth's consents names (its PeerID, the person it
//! asks for, its region `region:<code>`, or its network), for the request's purpose, holding
//! at the moment of the request, and then only the fields the consent, the grant and the
//! request all name. The consents are read, and every release is logged (one processing
//! record for the request, one per youth with the youth's id encrypted), in one transaction
//! (`Store::release_consented`): a revocation that commits first is never overtaken, and
//! nothing leaves unlogged. Disclosure control does not apply (the youth consented); the
//! grant, quota and limits did at admission.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use zicht_audit::{ConsentedRelease, ProcessingRecord};
use zicht_model::{
    CodeList, Consent, FieldValue, PeerIdentity, Placement, Record, RecordKind, Role, Table,
    Transition18Check,
};
use zicht_privacy::{RecordKeySecret, SubjectKey, NONCE_BYTES};
use zicht_store::{
    AuditEntries, ConsentRow, ConsentedRequest, ConsentedRows, ReleaseEntry, Store, StoredCheck,
    StoredPlacement,
};

use crate::audit::{entries, now_ms, processing_entry, Logged, Operation, Subject};
use crate::convert::RequestText;
use crate::error::Error;
use crate::query::admission::Checked;
use crate::query::execute::{release_entry, Released};
use crate::Disclosure;

/// The rule a release of records states.
const RULE: &str = "consented records: only youths whose consent names you for this purpose, \
     and only the fields their consent and your grant both list; ids are pseudonyms for you \
     unless the consent lists youth_id; every release is logged per youth";

/// The recipient codes a consent may use for this caller: its PeerID, the person a node asks
/// for, its region's organisation, its network.
fn recipients(identity: &PeerIdentity, on_behalf_of: Option<zicht_model::PeerId>) -> Vec<String> {
    let mut codes = vec![identity.peer_id.to_string()];
    if let Some(person) = on_behalf_of {
        codes.push(person.to_string());
    }
    if let Some(region) = identity.role.region() {
        codes.push(format!("region:{}", region.code()));
    }
    if let Role::Network(network) = identity.role {
        codes.push(network.code().to_owned());
    }
    codes
}

/// Releases the records consented to the caller of `checked`, logged in the same
/// transaction as they are read. An error before the log is written is a refusal the caller
/// logs; `Error::Unlogged` means the transaction failed and nothing left.
pub(crate) async fn release(
    store: Option<&Store>,
    disclosure: &Disclosure,
    operation: &Operation,
    identity: &PeerIdentity,
    request: &RequestText,
    checked: &Checked,
) -> Result<Released, Error> {
    let Some(store) = store else {
        return Err(Error::NoData);
    };
    let (Some(secret), Some(key)) = (&disclosure.secret, &disclosure.subject_key) else {
        return Err(if disclosure.secret.is_none() {
            Error::NoSecret
        } else {
            Error::NoSubjectKey
        });
    };
    let now = now_ms();
    let consented = ConsentedRequest {
        purpose: checked.query.purpose.code().to_owned(),
        recipients: recipients(identity, checked.on_behalf_of),
        now_ms: now,
    };
    let made: Arc<Mutex<Option<(Table, ProcessingRecord)>>> = Arc::default();
    let context = Context {
        secret: secret.clone(),
        key: key.clone(),
        fields: checked.fields.clone(),
        operation: operation.clone(),
        request: request.clone(),
        identity: identity.clone(),
        given_to: checked.on_behalf_of.unwrap_or(identity.peer_id).to_string(),
        source: disclosure
            .region
            .map_or_else(String::new, |r| r.code().to_owned()),
        made: made.clone(),
    };
    store
        .release_consented(consented, Box::new(move |rows| context.build(rows)))
        .await
        .map_err(Error::unlogged("release log", "released"))?;
    let taken = made
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let (table, record) = taken.ok_or(Error::Importing)?;
    operation.logged(&record);
    Ok(Released {
        table,
        population: None,
        population_published: None,
        watch: None,
    })
}

/// What building a release needs, owned: it runs on the store's writer task.
struct Context {
    secret: Arc<RecordKeySecret>,
    key: Arc<SubjectKey>,
    fields: Vec<&'static str>,
    operation: Operation,
    request: RequestText,
    identity: PeerIdentity,
    given_to: String,
    source: String,
    made: Arc<Mutex<Option<(Table, ProcessingRecord)>>>,
}

/// One youth's part of a release: the consents that allow it and the records it gives.
struct Youth<'a> {
    youth_id: &'a str,
    consents: Vec<&'a ConsentRow>,
    fields: Vec<&'static str>,
    records: Vec<Record>,
}

impl Context {
    /// The release of what the store found: the records, the request's log entries and one
    /// processing record per youth; keeps the table for the caller.
    fn build(self, rows: ConsentedRows) -> Result<(ReleaseEntry, AuditEntries), String> {
        let youths = self.youths(&rows);
        let records: Vec<Record> = youths.iter().flat_map(|y| y.records.clone()).collect();
        let table = Table::of_records(vec![RULE.to_owned()], records);
        let outcome = format!(
            "released {} records of {} youths",
            table.records.len(),
            youths.len()
        );
        let requester = self.identity.peer_id.to_string();
        let role = self.identity.role.uri();
        let logged = Logged {
            result: Some(&table),
            ..Logged::new(
                &self.operation,
                &requester,
                &role,
                Subject::Request(&self.request),
                &outcome,
            )
        };
        let entry = release_entry(&logged);
        let (mut audit, record) = entries(&logged);
        for youth in &youths {
            audit
                .processing
                .push(processing_entry(&self.subject_record(&record, youth)?));
        }
        *self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((table, record));
        Ok((entry, audit))
    }

    /// Every youth with a consent that holds, with the fields that may leave and their
    /// records; a youth whose consents and the grant share no field gives nothing.
    fn youths<'a>(&self, rows: &'a ConsentedRows) -> Vec<Youth<'a>> {
        let mut by_youth: BTreeMap<&str, Vec<&ConsentRow>> = BTreeMap::new();
        for consent in &rows.consents {
            by_youth.entry(&consent.youth_id).or_default().push(consent);
        }
        let mut placements: BTreeMap<&str, Vec<&StoredPlacement>> = BTreeMap::new();
        for placement in &rows.placements {
            placements
                .entry(&placement.youth_id)
                .or_default()
                .push(placement);
        }
        let mut checks: BTreeMap<&str, Vec<&StoredCheck>> = BTreeMap::new();
        for check in &rows.checks {
            checks.entry(&check.youth_id).or_default().push(check);
        }
        by_youth
            .into_iter()
            .filter_map(|(youth_id, consents)| {
                let fields = self.allowed(&consents);
                let subject = if fields.contains(&"youth_id") {
                    youth_id.to_owned()
                } else {
                    self.secret
                        .pseudonym(youth_id, &most_specific(&consents).recipient)
                };
                let mut records = Vec::new();
                let of_placement = only(&fields, Placement::COLUMNS);
                if !of_placement.is_empty() {
                    for placement in placements.get(youth_id).into_iter().flatten() {
                        records.push(self.record(
                            RecordKind::Placement,
                            &subject,
                            placement_fields(placement, &of_placement),
                        ));
                    }
                }
                let of_check = only(&fields, Transition18Check::COLUMNS);
                if !of_check.is_empty() {
                    for check in checks.get(youth_id).into_iter().flatten() {
                        records.push(self.record(
                            RecordKind::Transition18,
                            &subject,
                            check_fields(check, &of_check),
                        ));
                    }
                }
                (!records.is_empty()).then_some(Youth {
                    youth_id,
                    consents,
                    fields,
                    records,
                })
            })
            .collect()
    }

    /// The fields of the grant and request that one of `consents` lists, in field-list order.
    fn allowed(&self, consents: &[&ConsentRow]) -> Vec<&'static str> {
        Consent::field_list()
            .into_iter()
            .filter(|field| self.fields.contains(field))
            .filter(|field| {
                consents
                    .iter()
                    .any(|c| c.fields.split('|').any(|listed| listed == *field))
            })
            .collect()
    }

    fn record(
        &self,
        kind: RecordKind,
        subject: &str,
        fields: Vec<(&'static str, FieldValue)>,
    ) -> Record {
        Record {
            kind,
            subject: subject.to_owned(),
            source: self.source.clone(),
            fields,
        }
    }

    /// The processing record of one youth's release, under the request's operation: the
    /// youth's id encrypted, the consents, the recipient, the fields. No values.
    fn subject_record(
        &self,
        request: &ProcessingRecord,
        youth: &Youth<'_>,
    ) -> Result<ProcessingRecord, String> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random source: {e}"))?;
        let consent_ids: Vec<String> = youth
            .consents
            .iter()
            .map(|c| c.consent_id.clone())
            .collect();
        Ok(ProcessingRecord {
            operation_id: crate::audit::fresh_operation_id(),
            parent_operation_id: Some(request.operation_id.clone()),
            status_code: "OK".to_owned(),
            name: "zicht.v1.Inway/Query/ConsentedRecord".to_owned(),
            foreign_operation: None,
            population: None,
            decisions: format!("released under consent {}", consent_ids.join(",")),
            result_hash: None,
            data_subject_id: Some(self.key.encrypt(youth.youth_id, nonce)),
            consented: Some(ConsentedRelease {
                consent_ids,
                recipient: most_specific(&youth.consents).recipient.clone(),
                given_to: self.given_to.clone(),
                organisation: self.identity.organisation.chars().take(200).collect(),
                fields: youth.fields.iter().map(|f| (*f).to_owned()).collect(),
                records: youth.records.len() as u64,
            }),
            ..request.clone()
        })
    }
}

/// The consent whose recipient is the most specific (a PeerID, then a region, then a
/// network), first by id among equals: its recipient keys the youth's pseudonym.
fn most_specific<'a>(consents: &[&'a ConsentRow]) -> &'a ConsentRow {
    let rank = |c: &ConsentRow| {
        if c.recipient.starts_with("region:") {
            1
        } else if c.recipient.bytes().all(|b| b.is_ascii_digit()) {
            0
        } else {
            2
        }
    };
    consents
        .iter()
        .copied()
        .min_by_key(|c| (rank(c), c.consent_id.clone()))
        .unwrap_or_else(|| unreachable!("a youth is listed only with a consent"))
}

/// The fields of `fields` that are columns of a table (its `youth_id` is the subject).
fn only(fields: &[&'static str], columns: &[&'static str]) -> Vec<&'static str> {
    fields
        .iter()
        .copied()
        .filter(|f| *f != "youth_id" && columns.contains(f))
        .collect()
}

fn text(value: &str) -> FieldValue {
    FieldValue::Text(value.to_owned())
}

/// The named fields of a placement that have a value.
fn placement_fields(
    p: &StoredPlacement,
    fields: &[&'static str],
) -> Vec<(&'static str, FieldValue)> {
    fields
        .iter()
        .filter_map(|&field| {
            let value = match field {
                "birth_date" => Some(FieldValue::Date(p.birth_date)),
                "origin_region" => Some(text(&p.origin_region)),
                "origin_municipality" => p.origin_municipality.as_deref().map(text),
                "provider" => Some(text(&p.provider)),
                "location_municipality" => p.location_municipality.as_deref().map(text),
                "placement_region" => Some(text(&p.placement_region)),
                "care_type" => Some(text(&p.care_type)),
                "setting" => p.setting.as_deref().map(text),
                "legal_basis" => Some(text(&p.legal_basis)),
                "start_date" => Some(FieldValue::Date(p.start_date)),
                "end_date" => p.end_date.map(FieldValue::Date),
                "outflow_destination" => p.outflow_destination.as_deref().map(text),
                "outflow_profile" => p
                    .outflow_profile
                    .and_then(|n| u32::try_from(n).ok())
                    .map(FieldValue::Number),
                _ => None,
            };
            value.map(|value| (field, value))
        })
        .collect()
}

/// The named fields of a transition check.
fn check_fields(c: &StoredCheck, fields: &[&'static str]) -> Vec<(&'static str, FieldValue)> {
    fields
        .iter()
        .filter_map(|&field| {
            let value = match field {
                "check_date" => FieldValue::Date(c.check_date),
                "toekomstplan" => FieldValue::Flag(c.toekomstplan),
                "lokaal_team" => FieldValue::Flag(c.lokaal_team),
                "clientondersteuner" => FieldValue::Flag(c.clientondersteuner),
                "after18_funding" => text(&c.after18_funding),
                "big5_support" => text(&c.big5_support),
                "big5_wonen" => text(&c.big5_wonen),
                "big5_werk_school" => text(&c.big5_werk_school),
                "big5_inkomen_schulden" => text(&c.big5_inkomen_schulden),
                "big5_zorg_ondersteuning" => text(&c.big5_zorg_ondersteuning),
                "uit_beeld" => FieldValue::Flag(c.uit_beeld),
                _ => return None,
            };
            Some((field, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(id: &str, recipient: &str, fields: &str) -> ConsentRow {
        ConsentRow {
            consent_id: id.to_owned(),
            youth_id: "Y1".to_owned(),
            recipient: recipient.to_owned(),
            fields: fields.to_owned(),
        }
    }

    #[test]
    fn the_most_specific_recipient_keys_the_pseudonym() {
        let peer = consent("C2", "00000098000000000101", "care_type");
        let region = consent("C1", "region:ijsselland", "care_type");
        let network = consent("C0", "overijssel", "care_type");
        assert_eq!(most_specific(&[&network, &region, &peer]).consent_id, "C2");
        assert_eq!(most_specific(&[&network, &region]).consent_id, "C1");
    }

    #[test]
    fn a_callers_recipient_codes_are_its_id_the_person_and_its_organisation() {
        let identity = PeerIdentity {
            peer_id: zicht_model::PeerId::parse("00000099000000000005").unwrap(),
            organisation: "IJsselland".to_owned(),
            role: Role::Region(zicht_model::Region::Ijsselland),
        };
        let person = zicht_model::PeerId::parse("00000098000000000105").unwrap();
        assert_eq!(
            recipients(&identity, Some(person)),
            [
                "00000099000000000005",
                "00000098000000000105",
                "region:ijsselland"
            ]
        );
    }
}
