//! `zicht audit`: verify a node's chains offline, and follow one federated query across every
//! node it touched (as an auditor, over mutual TLS).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use zicht_audit::{chain_hash, ProcessingRecord};
use zicht_model::NodeName;
use zicht_node::config::ClientProfile;
use zicht_proto::v1 as pb;

/// What one node holds of a trace.
#[derive(Debug, Clone)]
pub struct NodeTrace {
    /// The node.
    pub node: NodeName,
    /// Its chains as it verified them, or why it could not be asked.
    pub status: String,
    /// Its processing records of the trace, in chain order.
    pub records: Vec<ProcessingRecord>,
    /// Entries whose hash did not match their body as received.
    pub bad_entries: Vec<i64>,
}

/// Asks every node of the profile's manifest, as the profile's person (an auditor), for its
/// processing records of `trace_id` and for its own chain verification.
pub async fn trace(profile: &ClientProfile, trace_id: &str) -> Vec<NodeTrace> {
    let mut traces = Vec::new();
    for peer in &profile.manifest {
        let channel = zicht_node::channel_to(peer, &profile.tls);
        let mut client = pb::audit_client::AuditClient::new(channel);
        let mut found = NodeTrace {
            node: peer.node,
            status: String::new(),
            records: Vec::new(),
            bad_entries: Vec::new(),
        };
        let mut request = tonic::Request::new(pb::AuditQuery {
            log: pb::AuditLogKind::Processing as i32,
            trace_id: trace_id.to_owned(),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(10));
        let entries = match client.entries(request).await {
            Ok(stream) => collect(stream.into_inner()).await,
            Err(status) => Err(status),
        };
        match entries {
            Ok(entries) => {
                for entry in entries {
                    if chain_hash(&entry.prev_hash, &entry.body) != entry.hash {
                        found.bad_entries.push(entry.seq);
                    }
                    if let Ok(record) = serde_json::from_str::<ProcessingRecord>(&entry.body) {
                        found.records.push(record);
                    }
                }
            }
            Err(status) => {
                found.status = format!("not asked: {}", status.message());
                traces.push(found);
                continue;
            }
        }
        let mut request = tonic::Request::new(pb::VerifyRequest {});
        request.set_timeout(Duration::from_secs(30));
        found.status = match client.verify(request).await {
            Ok(result) => chain_text(&result.into_inner()),
            Err(status) => format!("could not verify: {}", status.message()),
        };
        traces.push(found);
    }
    traces
}

async fn collect(
    mut stream: tonic::Streaming<pb::AuditEntry>,
) -> Result<Vec<pb::AuditEntry>, tonic::Status> {
    let mut entries = Vec::new();
    while let Some(entry) = stream.message().await? {
        entries.push(entry);
    }
    Ok(entries)
}

fn chain_text(result: &pb::VerifyResult) -> String {
    let broken: Vec<String> = result
        .chains
        .iter()
        .filter(|c| !c.broken.is_empty())
        .map(|c| format!("{} log broken at {}", log_name(c.log), c.broken))
        .collect();
    if !broken.is_empty() {
        return broken.join("; ");
    }
    let counts: Vec<String> = result
        .chains
        .iter()
        .map(|c| format!("{} {}", c.entries, log_name(c.log)))
        .collect();
    format!("chains intact ({} entries)", counts.join(", "))
}

fn log_name(kind: i32) -> &'static str {
    match pb::AuditLogKind::try_from(kind) {
        Ok(pb::AuditLogKind::Access) => "access",
        _ => "processing",
    }
}

/// Runs `zicht audit trace`: prints every node that took part, its verification, and its
/// operations with the links between them.
pub async fn run_trace(client: &std::path::Path, trace_id: &str) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    let profile = zicht_node::config::load_client(client, &environment)?;
    if !zicht_node::audit::is_trace_id(trace_id) {
        anyhow::bail!("TRACE_ID: give the 32 lower-case hex digits of a trace id");
    }
    let traces = trace(&profile, trace_id).await;
    print_trace(trace_id, &traces)
}

/// Prints the nodes that took part in `trace_id`, each with its chain check and its
/// operations and how they link; fails if no node holds records of it.
pub fn print_trace(trace_id: &str, traces: &[NodeTrace]) -> anyhow::Result<()> {
    let involved: Vec<&NodeTrace> = traces.iter().filter(|t| !t.records.is_empty()).collect();
    println!(
        "trace {trace_id}: {} node(s) took part (asked {})",
        involved.len(),
        traces.len()
    );
    for node in &involved {
        println!("\n{}  {}", node.node.code(), node.status);
        if !node.bad_entries.is_empty() {
            println!(
                "  entries whose hash does not match as received: {:?}",
                node.bad_entries
            );
        }
        for record in &node.records {
            let link = match (&record.foreign_operation, &record.parent_operation_id) {
                (Some(foreign), _) => {
                    format!("called by {} op {}", foreign.entity, foreign.operation_id)
                }
                (None, Some(parent)) => format!("within op {parent}"),
                (None, None) => "started here".to_owned(),
            };
            println!(
                "  op {}  {:<32} {:<5} {}  [{}]",
                record.operation_id,
                record.name,
                record.status_code,
                link,
                record.decisions.split(';').next().unwrap_or("")
            );
        }
    }
    let unreachable: Vec<String> = traces
        .iter()
        .filter(|t| t.records.is_empty())
        .filter_map(|t| {
            let reason = t.status.strip_prefix("not asked: ")?;
            Some(format!("{} ({reason})", t.node.code()))
        })
        .collect();
    if !unreachable.is_empty() {
        println!("\nnot asked: {}", unreachable.join("; "));
    }
    if involved.is_empty() {
        anyhow::bail!("no node holds records of trace {trace_id}");
    }
    Ok(())
}

/// The checkpoints of `node` that the other nodes of the manifest hold, asked as the
/// profile's person (an auditor). Only checkpoints whose signature matches a certificate of
/// `node` (its PeerID in the manifest) and that name `node` are returned.
pub async fn held_checkpoints(
    profile: &ClientProfile,
    node: NodeName,
) -> Vec<(NodeName, Result<Vec<zicht_audit::Checkpoint>, String>)> {
    let uri = zicht_node::audit::node_uri(node);
    let peer_id = profile
        .manifest
        .iter()
        .find(|p| p.node == node)
        .map(|p| p.peer_id);
    let mut held = Vec::new();
    for holder in profile.manifest.iter().filter(|p| p.node != node) {
        let channel = zicht_node::channel_to(holder, &profile.tls);
        let mut client = pb::checkpoints_client::CheckpointsClient::new(channel);
        let mut request = tonic::Request::new(pb::CheckpointQuery { node: uri.clone() });
        request.set_timeout(Duration::from_secs(10));
        let received = match client.held(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut checkpoints = Vec::new();
                loop {
                    match stream.message().await {
                        Ok(Some(signed)) => checkpoints.push(signed),
                        Ok(None) => break Ok(checkpoints),
                        Err(status) => break Err(status.message().to_owned()),
                    }
                }
            }
            Err(status) => Err(status.message().to_owned()),
        };
        let checked = received.map(|signed| {
            signed
                .into_iter()
                .filter(|s| {
                    zicht_pki::identity_of(&s.certificate)
                        .ok()
                        .map(|i| i.peer_id)
                        == peer_id
                        && zicht_pki::signature_valid(
                            &s.certificate,
                            s.body.as_bytes(),
                            &s.signature,
                        )
                })
                .filter_map(|s| serde_json::from_str::<zicht_audit::Checkpoint>(&s.body).ok())
                .filter(|c| c.node == uri)
                .collect()
        });
        held.push((holder.node, checked));
    }
    held
}

/// Which log `zicht audit export` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogArg {
    /// The processing log (Logboek Dataverwerkingen records).
    Processing,
    /// The access log (which certificate did what).
    Access,
}

/// `zicht audit export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Client profile of an auditor (see deploy/clients/auditor.toml).
    #[arg(long)]
    pub client: PathBuf,
    /// The node whose log to export (a region or network code of the manifest).
    #[arg(long)]
    pub node: String,
    /// Which log.
    #[arg(long, value_enum, default_value = "processing")]
    pub log: LogArg,
    /// Only this trace (32 hex digits).
    #[arg(long)]
    pub trace: Option<String>,
    /// Only operations of this caller (PeerID, the certificate's serialNumber).
    #[arg(long)]
    pub peer: Option<String>,
    /// Only this purpose (code, e.g. bovenregionale-sturing, or processing activity URI).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Only this template (code, e.g. youth_in_care).
    #[arg(long)]
    pub template: Option<String>,
    /// Recorded at or after: YYYY-MM-DD (00:00 UTC) or RFC 3339.
    #[arg(long, value_parser = parse_instant)]
    pub since: Option<i64>,
    /// Recorded before: YYYY-MM-DD (00:00 UTC) or RFC 3339.
    #[arg(long, value_parser = parse_instant)]
    pub until: Option<i64>,
    /// Write to this file instead of standard output (complete or not at all).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DD` (midnight UTC) or an RFC 3339 instant.
fn parse_instant(text: &str) -> Result<i64, String> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.timestamp_millis())
        .map_err(|_| "give YYYY-MM-DD or an RFC 3339 instant like 2026-11-23T09:30:00Z".to_owned())
}

/// One page of `args`'s search in the log `kind`, after `after_seq`.
fn page_request(
    args: &ExportArgs,
    kind: pb::AuditLogKind,
    after_seq: i64,
) -> tonic::Request<pb::AuditQuery> {
    let mut request = tonic::Request::new(pb::AuditQuery {
        log: kind as i32,
        trace_id: args.trace.clone().unwrap_or_default(),
        peer_id: args.peer.clone().unwrap_or_default(),
        purpose: args.purpose.clone().unwrap_or_default(),
        template: args.template.clone().unwrap_or_default(),
        since_ms: args.since.unwrap_or(0),
        until_ms: args.until.unwrap_or(0),
        after_seq,
        limit: PAGE,
    });
    request.set_timeout(Duration::from_secs(60));
    request
}

/// Checks an entry as received: its hash matches its body, it is well formed (so it stays one
/// JSON line), and it links to the entry before it (`last`: that entry's seq and hash).
fn check_received(
    node: NodeName,
    log_name: &str,
    entry: &pb::AuditEntry,
    last: Option<&(i64, String)>,
) -> anyhow::Result<()> {
    if chain_hash(&entry.prev_hash, &entry.body) != entry.hash {
        bail!(
            "{}: {log_name} log: entry {}: its hash does not match its body as received",
            node.code(),
            entry.seq
        );
    }
    // What goes into the line verbatim must keep it one JSON line.
    let hex = entry.prev_hash.len() == 64 && entry.prev_hash.bytes().all(|b| b.is_ascii_hexdigit());
    let one_line = !entry.body.contains('\n')
        && serde_json::from_str::<serde_json::Value>(&entry.body).is_ok_and(|v| v.is_object());
    if !hex || !one_line {
        bail!(
            "{}: {log_name} log: entry {}: not a well-formed entry (prev_hash or body)",
            node.code(),
            entry.seq
        );
    }
    if let Some((seq, hash)) = last {
        if entry.seq == seq + 1 && &entry.prev_hash != hash {
            bail!(
                "{}: {log_name} log: entry {}: does not link to entry {seq}",
                node.code(),
                entry.seq
            );
        }
    }
    Ok(())
}

/// Entries asked per call while paging through a log.
const PAGE: u32 = 10_000;

/// Streams the entries of one node's log that match, page by page, re-checking each entry's
/// hash as received and the link between consecutive entries; calls `line` with each entry
/// as one JSON line. Returns how many were exported.
pub async fn export(
    profile: &ClientProfile,
    args: &ExportArgs,
    mut line: impl FnMut(&str) -> std::io::Result<()>,
) -> anyhow::Result<u64> {
    let node = NodeName::parse(&args.node).map_err(|e| anyhow::anyhow!("--node: {e}"))?;
    let peer = profile
        .manifest
        .iter()
        .find(|p| p.node == node)
        .with_context(|| {
            format!(
                "--node: {} is not in the client profile's manifest",
                node.code()
            )
        })?;
    let (kind, log_name) = match args.log {
        LogArg::Processing => (pb::AuditLogKind::Processing, "processing"),
        LogArg::Access => (pb::AuditLogKind::Access, "access"),
    };
    let mut client = pb::audit_client::AuditClient::new(zicht_node::channel_to(peer, &profile.tls));
    let mut after_seq = 0;
    let mut last: Option<(i64, String)> = None;
    let mut exported = 0u64;
    loop {
        let stream = client
            .entries(page_request(args, kind, after_seq))
            .await
            .map_err(|status| anyhow::anyhow!("{}: {}", node.code(), status.message()))?;
        let entries = collect(stream.into_inner())
            .await
            .map_err(|status| anyhow::anyhow!("{}: {}", node.code(), status.message()))?;
        let received = entries.len();
        for entry in entries {
            check_received(node, log_name, &entry, last.as_ref())?;
            // The body is inserted as stored, so SHA-256(prev_hash || body) can be recomputed
            // from the line.
            let written = line(&format!(
                "{{\"node\":\"{}\",\"log\":\"{log_name}\",\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"body\":{}}}",
                node.code(),
                entry.seq,
                entry.prev_hash,
                entry.hash,
                entry.body
            ));
            match written {
                Ok(()) => {}
                // The reader stopped (`| head`): a quiet end, as for any line-oriented tool.
                Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(exported)
                }
                Err(error) => return Err(error).context("write export"),
            }
            exported += 1;
            after_seq = entry.seq;
            last = Some((entry.seq, entry.hash));
        }
        if received < PAGE as usize {
            return Ok(exported);
        }
    }
}

/// Runs `zicht audit export`: JSON lines to standard output or, complete or not at all, to
/// `--output`; the count to standard error.
pub async fn run_export(args: &ExportArgs) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    let profile = zicht_node::config::load_client(&args.client, &environment)?;
    if let Some(trace) = &args.trace {
        if !zicht_node::audit::is_trace_id(trace) {
            bail!("--trace: give the 32 lower-case hex digits of a trace id");
        }
    }
    let exported = match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            let exported = export(&profile, args, |text| writeln!(out, "{text}")).await?;
            match out.flush() {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(error).context("write export");
                }
                _ => {}
            }
            exported
        }
        Some(path) => {
            let directory = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let file = tempfile::NamedTempFile::new_in(directory)
                .with_context(|| format!("--output: create a file in {}", directory.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let exported = export(&profile, args, |text| writeln!(out, "{text}")).await?;
            let file = out
                .into_inner()
                .map_err(|e| e.into_error())
                .context("write export")?;
            file.as_file().sync_all().context("write export")?;
            file.persist(path)
                .with_context(|| format!("--output: write {}", path.display()))?;
            exported
        }
    };
    eprintln!(
        "exported {exported} entries of {}'s {} log",
        args.node,
        match args.log {
            LogArg::Processing => "processing",
            LogArg::Access => "access",
        }
    );
    Ok(())
}
