//! The auditors' pages: every node's chain status (its own verification and the checkpoints
//! its peers hold of it), a trace explorer (one question's operations across the nodes, as a
//! tree), and the access log with filters and a JSON-lines export. They read through the
//! `Audit` and `Checkpoints` services, which serve the auditor role only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use zicht_audit::{AccessRecord, ProcessingRecord};
use zicht_model::NodeName;
use zicht_proto::v1 as pb;

use super::layout::{self, Figure};
use super::pages::Params;
use super::Monitor;
use crate::audit::{LogArg, NodeTrace};

/// Pages only an auditor opens (the refusal to answer anyone else with).
fn auditors_only(monitor: &Monitor) -> Option<Response> {
    if monitor.is_auditor() {
        return None;
    }
    Some(layout::error_page(
        monitor,
        StatusCode::FORBIDDEN,
        "For auditors",
        &format!(
            "The audit logs are for the auditor role; this monitor acts as {}, and the nodes \
             refuse it too.",
            monitor.person.role.uri()
        ),
    ))
}

/// One node's chains as the auditor sees them.
struct ChainStatus {
    node: NodeName,
    /// The node's own verification, or why it could not be asked.
    verified: Result<pb::VerifyResult, String>,
    /// Of the peers that hold checkpoints of it: how many, and the mismatches.
    held_by: usize,
    asked: usize,
    mismatches: Vec<String>,
    /// Peers that could not be asked for their checkpoints.
    unasked: Vec<String>,
}

async fn chain_status(monitor: Arc<Monitor>, node: NodeName) -> ChainStatus {
    let monitor = &*monitor;
    let profile = &monitor.profile;
    let verified = match profile.manifest.iter().find(|p| p.node == node) {
        None => Err("not in the manifest".to_owned()),
        Some(peer) => {
            let mut client =
                pb::audit_client::AuditClient::new(zicht_node::channel_to(peer, &profile.tls));
            let mut request = tonic::Request::new(pb::VerifyRequest {});
            request.set_timeout(Duration::from_secs(30));
            client
                .verify(request)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| s.message().to_owned())
        }
    };
    let held = crate::audit::held_checkpoints(profile, node).await;
    let mut mismatches = Vec::new();
    let mut unasked = Vec::new();
    let mut held_by = 0;
    let asked = held.len();
    for (holder, checkpoints) in &held {
        match checkpoints {
            Err(_) => unasked.push(holder.code().to_owned()),
            Ok(checkpoints) if checkpoints.is_empty() => {}
            Ok(checkpoints) => {
                held_by += 1;
                // The newest checkpoint the holder has: the node's entry at that position
                // must have the hash it signed (else its history was cut or rewritten).
                let Some(latest) = checkpoints.iter().max_by_key(|c| c.time) else {
                    continue;
                };
                for (head, kind) in [
                    (&latest.processing, pb::AuditLogKind::Processing),
                    (&latest.access, pb::AuditLogKind::Access),
                ] {
                    if head.seq <= 0 {
                        continue;
                    }
                    match entry_hash(monitor, node, kind, head.seq).await {
                        Ok(Some(hash)) if hash == head.head => {}
                        Ok(Some(_)) => mismatches.push(format!(
                            "{holder}: {} log entry {} differs from the checkpoint it holds",
                            log_name(kind),
                            head.seq
                        )),
                        Ok(None) => mismatches.push(format!(
                            "{holder}: holds {} log entry {}, which the node no longer has",
                            log_name(kind),
                            head.seq
                        )),
                        Err(reason) => mismatches.push(format!("{holder}: {reason}")),
                    }
                }
            }
        }
    }
    ChainStatus {
        node,
        verified,
        held_by,
        asked,
        mismatches,
        unasked,
    }
}

/// The hash of `node`'s entry `seq` in the log `kind`, as the node serves it (and as its body
/// hashes: an entry whose hash does not match its body is reported as a difference).
async fn entry_hash(
    monitor: &Monitor,
    node: NodeName,
    kind: pb::AuditLogKind,
    seq: i64,
) -> Result<Option<String>, String> {
    let peer = monitor
        .profile
        .manifest
        .iter()
        .find(|p| p.node == node)
        .ok_or_else(|| "not in the manifest".to_owned())?;
    let mut client =
        pb::audit_client::AuditClient::new(zicht_node::channel_to(peer, &monitor.profile.tls));
    let mut request = tonic::Request::new(pb::AuditQuery {
        log: kind as i32,
        after_seq: seq - 1,
        limit: 1,
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(10));
    let mut stream = client
        .entries(request)
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    match stream.message().await.map_err(|s| s.message().to_owned())? {
        Some(entry) if entry.seq == seq => {
            let recomputed = zicht_audit::chain_hash(&entry.prev_hash, &entry.body);
            Ok(Some(if recomputed == entry.hash {
                entry.hash
            } else {
                recomputed
            }))
        }
        _ => Ok(None),
    }
}

fn log_name(kind: pb::AuditLogKind) -> &'static str {
    match kind {
        pb::AuditLogKind::Access => "access",
        _ => "processing",
    }
}

/// Every node of the manifest: its chains as it verifies them, and the checkpoints its peers
/// hold of it.
pub async fn chains(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = auditors_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let mut asks = tokio::task::JoinSet::new();
    for (i, peer) in monitor.profile.manifest.iter().enumerate() {
        let monitor = monitor.clone();
        let node = peer.node;
        asks.spawn(async move { (i, chain_status(monitor, node).await) });
    }
    let mut statuses: Vec<(usize, ChainStatus)> = Vec::new();
    while let Some(Ok(status)) = asks.join_next().await {
        statuses.push(status);
    }
    statuses.sort_by_key(|(i, _)| *i);
    let entries = |verified: &Result<pb::VerifyResult, String>, kind: pb::AuditLogKind| {
        verified.as_ref().ok().and_then(|v| {
            v.chains
                .iter()
                .find(|c| c.log == kind as i32)
                .map(|c| (c.entries, c.broken.clone()))
        })
    };
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|(_, s)| {
            let processing = entries(&s.verified, pb::AuditLogKind::Processing);
            let access = entries(&s.verified, pb::AuditLogKind::Access);
            let state = match (&s.verified, &processing, &access) {
                (Err(reason), _, _) => format!("not asked: {reason}"),
                (Ok(_), Some((_, p)), Some((_, a))) if p.is_empty() && a.is_empty() => {
                    if s.mismatches.is_empty() {
                        "intact".to_owned()
                    } else {
                        "intact, but see the checkpoints".to_owned()
                    }
                }
                (Ok(_), p, a) => {
                    let broken: Vec<String> = [("processing", p), ("access", a)]
                        .iter()
                        .filter_map(|(name, c)| {
                            c.as_ref()
                                .filter(|(_, b)| !b.is_empty())
                                .map(|(_, b)| format!("{name} log broken at {b}"))
                        })
                        .collect();
                    broken.join("; ")
                }
            };
            vec![
                s.node.code().to_owned(),
                state,
                processing.map_or_else(|| "-".to_owned(), |(n, _)| n.to_string()),
                access.map_or_else(|| "-".to_owned(), |(n, _)| n.to_string()),
                if s.unasked.is_empty() {
                    format!("{} of {}", s.held_by, s.asked)
                } else {
                    format!(
                        "{} of {} (not reachable: {})",
                        s.held_by,
                        s.asked,
                        s.unasked.join(", ")
                    )
                },
                if s.mismatches.is_empty() {
                    "none".to_owned()
                } else {
                    s.mismatches.join("; ")
                },
            ]
        })
        .collect();
    let figure = Figure {
        id: "chains",
        title: "Audit chains of every node".to_owned(),
        header: [
            "node",
            "chains",
            "processing entries",
            "access entries",
            "peers holding checkpoints",
            "checkpoint problems",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        rows,
        chart: None,
    };
    if params.get("csv") == Some("chains") {
        return layout::csv_response(&figure);
    }
    let body = html! {
        p { "Each node verifies its own two hash chains (processing log and access log). Every
            node pushes signed checkpoints of its chain heads to its peers; an entry that no
            longer has the hash a peer's checkpoint signed shows a history that was cut or
            rewritten. The newest checkpoint of each peer is checked here; for a full
            check against every checkpoint, run " code { "zicht audit verify --database DB --client PROFILE --node NODE" } " on the node's database." }
        (figure.markup(&params.page_query()))
    };
    layout::html_response(layout::page(&monitor, "Chains", body))
}

/// The operations of one trace as a tree: roots started on a node, children within an
/// operation on the same node or called from another node's operation.
struct Operation<'a> {
    node: NodeName,
    record: &'a ProcessingRecord,
}

fn children<'a>(all: &'a [Operation<'a>], parent: &Operation<'_>) -> Vec<&'a Operation<'a>> {
    all.iter()
        .filter(|op| {
            op.record.parent_operation_id.as_deref() == Some(&parent.record.operation_id)
                || op
                    .record
                    .foreign_operation
                    .as_ref()
                    .is_some_and(|f| f.operation_id == parent.record.operation_id)
        })
        .collect()
}

fn tree<'a>(all: &'a [Operation<'a>], op: &Operation<'_>, depth: usize) -> Markup {
    let kids = if depth < 12 {
        children(all, op)
    } else {
        Vec::new()
    };
    let record = op.record;
    let called = record
        .foreign_operation
        .as_ref()
        .map(|f| format!(" · called by {}", f.entity));
    html! {
        li {
            span class="op" {
                strong { (op.node.code()) } " " code { (record.name) } " · " (record.status_code)
                " · " (record.end_time - record.start_time) " ms"
                @if !record.template.is_empty() { " · " (record.template) }
                @if let Some(called) = called { (called) }
            }
            @if !record.decisions.is_empty() {
                br; span class="note" { (record.decisions) }
            }
            @if !kids.is_empty() {
                ul { @for kid in kids { (tree(all, kid, depth + 1)) } }
            }
        }
    }
}

/// Trace ids of the last `count` operations the profile's own node logged.
async fn recent_traces(monitor: &Monitor, count: usize) -> Vec<(String, String)> {
    let mut args = export_args(monitor.own_node(), LogArg::Processing, &no_params());
    // The last day's operations are enough to list the recent questions.
    args.since = Some(chrono::Utc::now().timestamp_millis() - 86_400_000);
    let mut lines: Vec<(String, String)> = Vec::new();
    let collected = crate::audit::export(&monitor.profile, &args, |line| {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            let body = &value["body"];
            if let (Some(trace), Some(name)) = (body["trace_id"].as_str(), body["name"].as_str()) {
                // Questions started here (a template asked), not the node's own activities.
                let question = body["template"].as_str().is_some_and(|t| !t.is_empty());
                if question
                    && body["parent_operation_id"].is_null()
                    && body["foreign_operation"].is_null()
                {
                    lines.retain(|(t, _)| t != trace);
                    lines.push((trace.to_owned(), name.to_owned()));
                }
            }
        }
        Ok(())
    })
    .await;
    if collected.is_err() {
        return Vec::new();
    }
    lines.into_iter().rev().take(count).collect()
}

fn no_params() -> Params {
    Params::of(&Uri::from_static("/"))
}

/// The trace explorer: a trace id's operations on every node, as a tree with who called whom,
/// status and timings, and each node's chain check.
pub async fn trace(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = auditors_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let id = params.get("id").map(str::to_owned);
    let valid = id.as_deref().is_some_and(zicht_node::audit::is_trace_id);
    let traces: Vec<NodeTrace> = match (&id, valid) {
        (Some(id), true) => crate::audit::trace(&monitor.profile, id).await,
        _ => Vec::new(),
    };
    let recent = if id.is_none() {
        recent_traces(&monitor, 20).await
    } else {
        Vec::new()
    };
    let operations: Vec<Operation<'_>> = traces
        .iter()
        .flat_map(|t| {
            t.records.iter().map(move |record| Operation {
                node: t.node,
                record,
            })
        })
        .collect();
    let roots: Vec<&Operation<'_>> = operations
        .iter()
        .filter(|op| {
            op.record.parent_operation_id.is_none() && op.record.foreign_operation.is_none()
        })
        .collect();
    let involved: Vec<&NodeTrace> = traces.iter().filter(|t| !t.records.is_empty()).collect();
    let body = html! {
        form class="ask" method="get" action="/audit/trace" {
            label { "Trace id (32 hex digits)" input type="text" name="id" value=(id.clone().unwrap_or_default()) size="34"; }
            button type="submit" { "Follow" }
        }
        @if id.is_some() && !valid {
            p class="error" role="alert" { "A trace id is 32 lower-case hex digits, as every federated answer prints it." }
        }
        @if let (Some(id), true) = (&id, valid) {
            @if involved.is_empty() {
                p class="error" role="alert" { "No node holds records of trace " (id) "." }
            } @else {
                h2 { (involved.len()) " node(s) took part (asked " (traces.len()) ")" }
                ul class="tree" { @for root in &roots { (tree(&operations, root, 0)) } }
                h2 { "Each node's chains" }
                table {
                    thead { tr { th scope="col" { "Node" } th scope="col" { "Operations" } th scope="col" { "Chains" } } }
                    tbody {
                        @for t in &traces {
                            tr { th scope="row" { (t.node.code()) } td { (t.records.len()) } td { (t.status) } }
                        }
                    }
                }
            }
        }
        @if !recent.is_empty() {
            h2 { "Recent questions at " (monitor.own_node().code()) }
            ul { @for (trace, name) in &recent { li { a href=(format!("/audit/trace?id={trace}")) { code { (trace) } } " " (name) } } }
        }
    };
    layout::html_response(layout::page(&monitor, "Trace explorer", body))
}

/// The export arguments of an access-log page's filters.
fn export_args(node: NodeName, log: LogArg, params: &Params) -> crate::audit::ExportArgs {
    let instant = |key: &str| {
        params.get(key).and_then(|text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .map(|d| {
                    d.and_time(chrono::NaiveTime::MIN)
                        .and_utc()
                        .timestamp_millis()
                })
        })
    };
    crate::audit::ExportArgs {
        client: std::path::PathBuf::new(),
        node: node.code().to_owned(),
        log,
        trace: None,
        peer: params.get("caller").map(str::to_owned),
        purpose: params.get("purpose").map(str::to_owned),
        template: params.get("template").map(str::to_owned),
        since: instant("since"),
        until: instant("until"),
        output: None,
    }
}

/// At most this many access entries on the page (the JSON-lines export has all).
const SHOWN: usize = 500;

/// The access log of a node with filters (caller, purpose, template, time) and its JSON-lines
/// export.
pub async fn access(State(monitor): State<Arc<Monitor>>, uri: Uri) -> Response {
    if let Some(refused) = auditors_only(&monitor) {
        return refused;
    }
    let params = Params::of(&uri);
    let node = match params.get("node").map(NodeName::parse) {
        None => monitor.own_node(),
        Some(Ok(node)) => node,
        Some(Err(e)) => {
            return layout::error_page(
                &monitor,
                StatusCode::BAD_REQUEST,
                "Access log",
                &format!("node: {e}"),
            )
        }
    };
    let args = export_args(node, LogArg::Access, &params);
    let mut lines: Vec<String> = Vec::new();
    let exported = crate::audit::export(&monitor.profile, &args, |line| {
        lines.push(line.to_owned());
        Ok(())
    })
    .await;
    if params.get("format") == Some("jsonl") {
        return match exported {
            Ok(_) => {
                let mut body = lines.join("\n");
                body.push('\n');
                (
                    [
                        (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{}-access.jsonl\"", node.code()),
                        ),
                    ],
                    body,
                )
                    .into_response()
            }
            Err(error) => layout::error_page(
                &monitor,
                StatusCode::BAD_GATEWAY,
                "Access log",
                &format!("{error:#}"),
            ),
        };
    }
    let records: Vec<(i64, AccessRecord)> = lines
        .iter()
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            let record = serde_json::from_value(value["body"].clone()).ok()?;
            Some((value["seq"].as_i64()?, record))
        })
        .collect();
    let shown = records.len().min(SHOWN);
    let rows: Vec<Vec<String>> = records
        .iter()
        .rev()
        .take(SHOWN)
        .map(|(seq, r)| {
            let time = chrono::DateTime::from_timestamp_millis(r.time).map_or_else(
                || r.time.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
            vec![
                seq.to_string(),
                time,
                r.peer_id.clone(),
                r.role.clone(),
                r.action.clone(),
                r.outcome.clone(),
                r.operation_id.clone(),
            ]
        })
        .collect();
    let figure = Figure {
        id: "access",
        title: format!(
            "Access log of {}: the latest {shown} of {} matching entries",
            node.code(),
            records.len()
        ),
        header: [
            "seq",
            "time (UTC)",
            "caller",
            "role",
            "action",
            "outcome",
            "operation",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect(),
        rows,
        chart: None,
    };
    if params.get("csv") == Some("access") {
        return layout::csv_response(&figure);
    }
    let value = |key: &str| params.get(key).unwrap_or("").to_owned();
    let jsonl = {
        let query = params.page_query();
        if query.is_empty() {
            "?format=jsonl".to_owned()
        } else {
            format!("?{query}&format=jsonl")
        }
    };
    let body = html! {
        form class="ask" method="get" action="/audit/access" {
            label { "Node"
                select name="node" {
                    @for peer in &monitor.profile.manifest {
                        option value=(peer.node.code()) selected[peer.node == node] { (peer.node.code()) }
                    }
                }
            }
            label { "Caller (PeerID)" input type="text" name="caller" value=(value("caller")); }
            label { "Purpose" input type="text" name="purpose" value=(value("purpose")); }
            label { "Template" input type="text" name="template" value=(value("template")); }
            label { "Since" input type="date" name="since" value=(value("since")); }
            label { "Until" input type="date" name="until" value=(value("until")); }
            button type="submit" { "Filter" }
        }
        @match &exported {
            Err(error) => { p class="error" role="alert" { (format!("{error:#}")) } }
            Ok(_) => {
                p { a href=(jsonl) download { "Export as JSON lines" } " (every matching entry with its seq, hashes and body as stored; each hash re-checked as received)" }
                (figure.markup(&params.page_query()))
            }
        }
    };
    layout::html_response(layout::page(&monitor, "Access log", body))
}
