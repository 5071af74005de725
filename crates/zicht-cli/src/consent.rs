//! `zicht consent`: revoke a consent at once, and a youth's own report (AVG article 15, the
//! right of access) of every consent and every release of their records, read on the
//! data-owning node's host with the node's data-subject key.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::json;
use zicht_audit::ProcessingRecord;
use zicht_model::{Timestamp, YouthId};
use zicht_store::{Revoked, Store, StoredConsent};

use crate::format::Format;

/// The consent commands.
#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Revoke a consent: every release whose check starts after this commits leaves the
    /// youth's records out (a re-import never undoes a revocation).
    Revoke(RevokeArgs),
    /// A youth's own report: every consent (and whether it holds now) and every release of
    /// their records, when, to whom, for which purpose, which fields, under which consent.
    Report(ReportArgs),
}

/// `zicht consent revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The region's database (SQLite path, sqlite://PATH or postgres://...).
    #[arg(long, env = "ZICHT_DATABASE_URL")]
    database: String,
    /// The consent's id (consent_id in consents.csv).
    consent_id: String,
    /// From when: a date (its start, 00:00 UTC) or an RFC 3339 moment; default now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

/// `zicht consent report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The region's database (SQLite path, sqlite://PATH or postgres://...).
    #[arg(long, env = "ZICHT_DATABASE_URL")]
    database: String,
    /// The youth (youth_id in the region's files).
    #[arg(long)]
    youth_id: String,
    /// The node's data-subject key file (privacy.subject_key in its config).
    #[arg(long, env = "ZICHT_PRIVACY_SUBJECT_KEY")]
    subject_key: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Runs a consent command.
pub async fn run(command: ConsentCommand) -> anyhow::Result<()> {
    match command {
        ConsentCommand::Revoke(args) => revoke(&args).await,
        ConsentCommand::Report(args) => report(&args).await,
    }
}

async fn revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let at = match &args.at {
        Some(text) => Timestamp::parse(text).map_err(|e| anyhow::anyhow!("--at: {e}"))?,
        None => Timestamp::from_millis(zicht_node::audit::now_ms()),
    };
    let store = crate::database::existing(&args.database).await?;
    match store
        .revoke_consent(&args.consent_id, at.millis())
        .await
        .context("revoke consent")?
    {
        Revoked::Now => println!("revoked from {at}: no record leaves under this consent any more"),
        Revoked::Already(when) => println!(
            "revoked already from {}; left as it is",
            Timestamp::from_millis(when)
        ),
        Revoked::BeforeGrant(granted) => bail!(
            "--at: the consent was granted at {}; a revocation cannot come before it",
            Timestamp::from_millis(granted)
        ),
        Revoked::Unknown => bail!("no consent with that id in this database"),
    }
    Ok(())
}

/// A youth's report: their consents and every release of their records (the processing
/// records whose encrypted subject is theirs), as of `now`.
pub struct Report {
    consents: Vec<StoredConsent>,
    releases: Vec<ProcessingRecord>,
    now: i64,
}

impl Report {
    /// Reads the report of `youth_id` from `store`, decrypting subject ids with `key`.
    pub async fn read(
        store: &Store,
        youth_id: &str,
        key: &zicht_privacy::SubjectKey,
    ) -> anyhow::Result<Report> {
        let consents = store.consents_of(youth_id).await.context("read consents")?;
        let mut releases = Vec::new();
        for body in store
            .subject_records()
            .await
            .context("read processing log")?
        {
            let Ok(record) = serde_json::from_str::<ProcessingRecord>(&body) else {
                continue;
            };
            let subject = record
                .data_subject_id
                .as_deref()
                .and_then(|sealed| key.decrypt(sealed));
            if subject.as_deref() == Some(youth_id) {
                releases.push(record);
            }
        }
        Ok(Report {
            consents,
            releases,
            now: zicht_node::audit::now_ms(),
        })
    }

    /// The report as JSON: `consents` and `releases`.
    pub fn json(&self) -> serde_json::Value {
        report_json(&self.consents, &self.releases, self.now)
    }

    /// The report as text for people.
    pub fn table(&self) -> String {
        report_table(&self.consents, &self.releases, self.now)
    }
}

async fn report(args: &ReportArgs) -> anyhow::Result<()> {
    YouthId::parse(&args.youth_id).map_err(|e| anyhow::anyhow!("--youth-id: {e}"))?;
    let key = zicht_node::secret::read_subject_key(&args.subject_key)
        .map_err(|e| anyhow::anyhow!("--subject-key: {e}"))?;
    let store = crate::database::existing(&args.database).await?;
    let report = Report::read(&store, &args.youth_id, &key).await?;
    match args.format {
        Format::Json => println!("{}", report.json()),
        Format::Table | Format::Csv => print!("{}", report.table()),
    }
    Ok(())
}

/// Whether a consent holds at `now`, and if not, why.
fn status(consent: &StoredConsent, now: i64) -> String {
    let at = |ms: i64| Timestamp::from_millis(ms).to_string();
    match (consent.revoked_at, consent.expires_at) {
        _ if consent.granted_at > now => {
            format!("not yet: granted from {}", at(consent.granted_at))
        }
        (Some(revoked), _) if revoked <= now => format!("revoked at {}", at(revoked)),
        (_, Some(expires)) if expires <= now => format!("expired at {}", at(expires)),
        _ => "holds".to_owned(),
    }
}

fn purpose(record: &ProcessingRecord) -> String {
    record
        .processing_activity_id
        .strip_prefix("urn:zicht:purpose:")
        .unwrap_or(&record.processing_activity_id)
        .to_owned()
}

fn report_table(consents: &[StoredConsent], releases: &[ProcessingRecord], now: i64) -> String {
    let mut out = format!("consents ({})\n", consents.len());
    for consent in consents {
        out.push_str(&format!(
            "  {}  {}  to {}  fields {}  granted {}  {}\n",
            consent.consent_id,
            consent.purpose,
            consent.recipient,
            consent.fields.replace('|', ","),
            Timestamp::from_millis(consent.granted_at),
            status(consent, now),
        ));
    }
    out.push_str(&format!("releases of your records ({})\n", releases.len()));
    for record in releases {
        let Some(given) = &record.consented else {
            continue;
        };
        out.push_str(&format!(
            "  {}  {}  to {} through {}  fields {}  {} records  under consent {} (for {})  trace {}\n",
            Timestamp::from_millis(record.end_time),
            purpose(record),
            given.given_to,
            given.organisation,
            given.fields.join(","),
            given.records,
            given.consent_ids.join(","),
            given.recipient,
            record.trace_id,
        ));
    }
    out
}

fn report_json(
    consents: &[StoredConsent],
    releases: &[ProcessingRecord],
    now: i64,
) -> serde_json::Value {
    let at = |ms: i64| Timestamp::from_millis(ms).to_string();
    let consents: Vec<serde_json::Value> = consents
        .iter()
        .map(|c| {
            json!({
                "consent_id": c.consent_id,
                "purpose": c.purpose,
                "recipient": c.recipient,
                "fields": c.fields.split('|').collect::<Vec<_>>(),
                "granted_at": at(c.granted_at),
                "expires_at": c.expires_at.map(at),
                "revoked_at": c.revoked_at.map(at),
                "status": status(c, now),
            })
        })
        .collect();
    let releases: Vec<serde_json::Value> = releases
        .iter()
        .filter_map(|record| {
            let given = record.consented.as_ref()?;
            Some(json!({
                "at": at(record.end_time),
                "organisation": given.organisation,
                "given_to": given.given_to,
                "recipient": given.recipient,
                "purpose": purpose(record),
                "fields": given.fields,
                "records": given.records,
                "consent_ids": given.consent_ids,
                "trace_id": record.trace_id,
                "node": record.resource,
            }))
        })
        .collect();
    json!({"consents": consents, "releases": releases})
}
