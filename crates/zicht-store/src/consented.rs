//! Consented records: the consents that hold for a recipient and purpose at a moment, and the
//! records of their youths, read inside the transaction that logs their release
//! ([`crate::Store::release_consented`]); revocation; and what a youth's own report needs.
//! Which fields leave, and as whom, the node decides ([`crate::BuildRelease`]); the store never sees
//! a key.

use chrono::NaiveDate;

use crate::{on_pool, query_error, Store, StoreError};

/// Which consents a release looks for: those for `purpose` naming one of `recipients` (the
/// caller's PeerID, the person it asks for, its region or network, as the consents write
/// them) that hold at `now_ms`: granted at or before, not expired and not revoked by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentedRequest {
    /// The purpose code.
    pub purpose: String,
    /// Recipient codes that name the caller (at least one).
    pub recipients: Vec<String>,
    /// The moment of the release, ms since the Unix epoch.
    pub now_ms: i64,
}

/// One consent that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Its id.
    pub consent_id: String,
    /// The youth it is of.
    pub youth_id: String,
    /// The recipient code it names.
    pub recipient: String,
    /// The fields it lists, `|`-separated.
    pub fields: String,
}

/// A stored placement, as typed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlacement {
    /// `youth_id`.
    pub youth_id: String,
    /// `birth_date`.
    pub birth_date: NaiveDate,
    /// `origin_region`.
    pub origin_region: String,
    /// `origin_municipality`.
    pub origin_municipality: Option<String>,
    /// `provider`.
    pub provider: String,
    /// `location_municipality`.
    pub location_municipality: Option<String>,
    /// `placement_region`.
    pub placement_region: String,
    /// `care_type`.
    pub care_type: String,
    /// `setting`.
    pub setting: Option<String>,
    /// `legal_basis`.
    pub legal_basis: String,
    /// `start_date`.
    pub start_date: NaiveDate,
    /// `end_date`.
    pub end_date: Option<NaiveDate>,
    /// `outflow_destination`.
    pub outflow_destination: Option<String>,
    /// `outflow_profile`.
    pub outflow_profile: Option<i32>,
}

/// A stored transition check, as typed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheck {
    /// `youth_id`.
    pub youth_id: String,
    /// `check_date`.
    pub check_date: NaiveDate,
    /// `toekomstplan`.
    pub toekomstplan: bool,
    /// `lokaal_team`.
    pub lokaal_team: bool,
    /// `clientondersteuner`.
    pub clientondersteuner: bool,
    /// `after18_funding`.
    pub after18_funding: String,
    /// `big5_support`.
    pub big5_support: String,
    /// `big5_wonen`.
    pub big5_wonen: String,
    /// `big5_werk_school`.
    pub big5_werk_school: String,
    /// `big5_inkomen_schulden`.
    pub big5_inkomen_schulden: String,
    /// `big5_zorg_ondersteuning`.
    pub big5_zorg_ondersteuning: String,
    /// `uit_beeld`.
    pub uit_beeld: bool,
}

/// What a release found: the consents that hold (by youth, then consent id) and every
/// placement and check of their youths (by youth, then date).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentedRows {
    /// The consents that hold.
    pub consents: Vec<ConsentRow>,
    /// Their youths' placements.
    pub placements: Vec<StoredPlacement>,
    /// Their youths' transition checks.
    pub checks: Vec<StoredCheck>,
}

pub(crate) type PlacementTuple = (
    String,
    NaiveDate,
    String,
    Option<String>,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    NaiveDate,
    Option<NaiveDate>,
    Option<String>,
    Option<i32>,
);

pub(crate) type CheckTuple = (
    String,
    NaiveDate,
    bool,
    bool,
    bool,
    String,
    String,
    String,
    String,
    String,
    String,
    bool,
);

impl From<PlacementTuple> for StoredPlacement {
    fn from(t: PlacementTuple) -> StoredPlacement {
        StoredPlacement {
            youth_id: t.0,
            birth_date: t.1,
            origin_region: t.2,
            origin_municipality: t.3,
            provider: t.4,
            location_municipality: t.5,
            placement_region: t.6,
            care_type: t.7,
            setting: t.8,
            legal_basis: t.9,
            start_date: t.10,
            end_date: t.11,
            outflow_destination: t.12,
            outflow_profile: t.13,
        }
    }
}

impl StoredPlacement {
    /// The placement these columns hold; `Err` names the column a stored value is not valid
    /// for (a database changed by hand).
    pub fn placement(self) -> Result<zicht_model::Placement, String> {
        use zicht_model::{
            CareType, CodeList, LegalBasis, Name, OriginRegion, OutflowDestination, OutflowProfile,
            PlacementRegion, Setting, YouthId,
        };
        let bad = |column: &str| {
            format!("the stored placements' column {column} holds a value zicht does not read")
        };
        let name = |text: String, column: &str| Name::parse(&text).map_err(|_| bad(column));
        Ok(zicht_model::Placement {
            youth_id: YouthId::parse(&self.youth_id).map_err(|_| bad("youth_id"))?,
            birth_date: self.birth_date,
            origin_region: OriginRegion::parse(&self.origin_region)
                .map_err(|_| bad("origin_region"))?,
            origin_municipality: self
                .origin_municipality
                .map(|m| name(m, "origin_municipality"))
                .transpose()?,
            provider: name(self.provider, "provider")?,
            location_municipality: self
                .location_municipality
                .map(|m| name(m, "location_municipality"))
                .transpose()?,
            placement_region: PlacementRegion::parse(&self.placement_region)
                .map_err(|_| bad("placement_region"))?,
            care_type: CareType::parse(&self.care_type).map_err(|_| bad("care_type"))?,
            setting: self
                .setting
                .map(|s| Setting::parse(&s).map_err(|_| bad("setting")))
                .transpose()?,
            legal_basis: LegalBasis::parse(&self.legal_basis).map_err(|_| bad("legal_basis"))?,
            start_date: self.start_date,
            end_date: self.end_date,
            outflow_destination: self
                .outflow_destination
                .map(|d| OutflowDestination::parse(&d).map_err(|_| bad("outflow_destination")))
                .transpose()?,
            outflow_profile: self
                .outflow_profile
                .map(|p| {
                    OutflowProfile::from_number(i64::from(p)).ok_or_else(|| bad("outflow_profile"))
                })
                .transpose()?,
        })
    }
}

impl From<CheckTuple> for StoredCheck {
    fn from(t: CheckTuple) -> StoredCheck {
        StoredCheck {
            youth_id: t.0,
            check_date: t.1,
            toekomstplan: t.2,
            lokaal_team: t.3,
            clientondersteuner: t.4,
            after18_funding: t.5,
            big5_support: t.6,
            big5_wonen: t.7,
            big5_werk_school: t.8,
            big5_inkomen_schulden: t.9,
            big5_zorg_ondersteuning: t.10,
            uit_beeld: t.11,
        }
    }
}

/// `WHERE` of the consents that hold for a request (binds: purpose, moment, recipients).
pub(crate) fn push_holding<'a, DB: sqlx::Database>(
    query: &mut sqlx::QueryBuilder<'a, DB>,
    request: &'a ConsentedRequest,
) where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    query.push(" WHERE purpose = ");
    query.push_bind(request.purpose.clone());
    query.push(" AND granted_at <= ");
    query.push_bind(request.now_ms);
    query.push(" AND (expires_at IS NULL OR expires_at > ");
    query.push_bind(request.now_ms);
    query.push(") AND (revoked_at IS NULL OR revoked_at > ");
    query.push_bind(request.now_ms);
    query.push(") AND recipient IN (");
    let mut recipients = query.separated(", ");
    for recipient in &request.recipients {
        recipients.push_bind(recipient.clone());
    }
    query.push(")");
}

/// The columns of a placement as [`StoredPlacement`] reads them.
pub(crate) const PLACEMENT_COLUMNS: &str = "youth_id, birth_date, origin_region, \
     origin_municipality, provider, location_municipality, placement_region, care_type, \
     setting, legal_basis, start_date, end_date, outflow_destination, \
     CAST(outflow_profile AS INTEGER)";

/// The columns of a check as [`StoredCheck`] reads them.
pub(crate) const CHECK_COLUMNS: &str = "youth_id, check_date, toekomstplan, lokaal_team, \
     clientondersteuner, after18_funding, big5_support, big5_wonen, big5_werk_school, \
     big5_inkomen_schulden, big5_zorg_ondersteuning, uit_beeld";

/// Reads, in transaction `$tx` (inside `on_pool!`), the consents that hold for `$request` and
/// their youths' records, as [`ConsentedRows`]; `?` returns a store error.
macro_rules! read_rows {
    ($tx:ident, $request:ident) => {{
        use $crate::consented::{push_holding, CHECK_COLUMNS, PLACEMENT_COLUMNS};
        let mut consents = sqlx::QueryBuilder::new(
            "SELECT consent_id, youth_id, recipient, fields FROM consents",
        );
        push_holding(&mut consents, &$request);
        consents.push(" ORDER BY youth_id, consent_id");
        let consents: Vec<(String, String, String, String)> = consents
            .build_query_as()
            .fetch_all(&mut *$tx)
            .await
            .map_err($crate::query_error("read consents"))?;
        let youths = |table: &str, columns: &str, order: &str| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {columns} FROM {table} WHERE youth_id IN (SELECT youth_id FROM consents"
            ));
            push_holding(&mut query, &$request);
            query.push(format!(") ORDER BY youth_id, {order}"));
            query
        };
        let mut placements = youths(
            "placements",
            PLACEMENT_COLUMNS,
            "start_date, care_type, provider",
        );
        let placements: Vec<$crate::consented::PlacementTuple> = placements
            .build_query_as()
            .fetch_all(&mut *$tx)
            .await
            .map_err($crate::query_error("read consented placements"))?;
        let mut checks = youths("transition18", CHECK_COLUMNS, "check_date");
        let checks: Vec<$crate::consented::CheckTuple> = checks
            .build_query_as()
            .fetch_all(&mut *$tx)
            .await
            .map_err($crate::query_error("read consented checks"))?;
        $crate::consented::ConsentedRows {
            consents: consents
                .into_iter()
                .map(
                    |(consent_id, youth_id, recipient, fields)| $crate::consented::ConsentRow {
                        consent_id,
                        youth_id,
                        recipient,
                        fields,
                    },
                )
                .collect(),
            placements: placements.into_iter().map(Into::into).collect(),
            checks: checks.into_iter().map(Into::into).collect(),
        }
    }};
}
pub(crate) use read_rows;

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The consent is revoked from the given moment.
    Now,
    /// It was revoked already, at the given moment (ms), no later than asked: unchanged.
    Already(i64),
    /// It was granted after the given moment: a revocation cannot come before the grant.
    BeforeGrant(i64),
    /// There is no consent with that id.
    Unknown,
}

/// One of a youth's consents as stored, with its moments in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConsent {
    /// Its id.
    pub consent_id: String,
    /// Its purpose code.
    pub purpose: String,
    /// Its recipient code.
    pub recipient: String,
    /// Its fields, `|`-separated.
    pub fields: String,
    /// When it was granted.
    pub granted_at: i64,
    /// When it ends, if it does.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl Store {
    /// Revokes consent `consent_id` from `at_ms` (ms since the Unix epoch): every release
    /// whose check runs after this commits leaves the youth's records out. A revocation is
    /// never moved later.
    pub async fn revoke_consent(
        &self,
        consent_id: &str,
        at_ms: i64,
    ) -> Result<Revoked, StoreError> {
        const REVOKE: &str = "UPDATE consents SET revoked_at = $2 WHERE consent_id = $1 \
             AND granted_at <= $2 AND (revoked_at IS NULL OR revoked_at > $2)";
        const READ: &str = "SELECT granted_at, revoked_at FROM consents WHERE consent_id = $1";
        on_pool!(self, pool => {
            let done = sqlx::query(REVOKE)
                .bind(consent_id)
                .bind(at_ms)
                .execute(pool)
                .await
                .map_err(query_error("revoke consent"))?;
            if done.rows_affected() > 0 {
                return Ok(Revoked::Now);
            }
            let found: Option<(i64, Option<i64>)> = sqlx::query_as(READ)
                .bind(consent_id)
                .fetch_optional(pool)
                .await
                .map_err(query_error("read consent"))?;
            Ok(match found {
                None => Revoked::Unknown,
                Some((_, Some(revoked))) if revoked <= at_ms => Revoked::Already(revoked),
                Some((granted, _)) => Revoked::BeforeGrant(granted),
            })
        })
    }

    /// Every consent of `youth_id`, by id.
    pub async fn consents_of(&self, youth_id: &str) -> Result<Vec<StoredConsent>, StoreError> {
        const SQL: &str = "SELECT consent_id, purpose, recipient, fields, granted_at, \
             expires_at, revoked_at FROM consents WHERE youth_id = $1 ORDER BY consent_id";
        type Row = (
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(youth_id)
                .fetch_all(pool)
                .await
                .map_err(query_error("read consents"))?
        });
        Ok(rows
            .into_iter()
            .map(
                |(consent_id, purpose, recipient, fields, granted_at, expires_at, revoked_at)| {
                    StoredConsent {
                        consent_id,
                        purpose,
                        recipient,
                        fields,
                        granted_at,
                        expires_at,
                        revoked_at,
                    }
                },
            )
            .collect())
    }

    /// The bodies of every processing record that names a data subject (the releases of
    /// consented records, one per youth and release), oldest first.
    pub async fn subject_records(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT body FROM processing_log WHERE template = 'consented_records' \
             AND body LIKE '%\"data_subject_id\"%' ORDER BY seq";
        on_pool!(self, pool => {
            sqlx::query_scalar(SQL)
                .fetch_all(pool)
                .await
                .map_err(query_error("read processing log"))
        })
    }
}
