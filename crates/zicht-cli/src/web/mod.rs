//! `zicht web`: the monitor, a local web app that acts as the person of one client profile
//! (their own certificate: no server identity of its own, no login) and asks the federation
//! through the same Outway and Audit calls as `zicht query` and `zicht audit`.
//!
//! Pages are server-rendered HTML (maud) with server-rendered SVG charts, each chart with its
//! numbers in a table and a CSV download of exactly what is drawn. No JavaScript, nothing
//! written to disk. Every request passes [`guard`]: the Host header must name the monitor
//! (no DNS rebinding), a page that asks the federation must be opened from the monitor
//! itself or typed in (no cross-site requests spending the person's quota), only GET and
//! HEAD, and every answer carries a strict Content-Security-Policy.

mod audit_pages;
mod charts;
mod layout;
mod pages;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use zicht_model::{NodeName, PeerIdentity, Role};
use zicht_node::config::ClientProfile;
use zicht_proto::v1 as pb;

/// `zicht web`.
#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// The client profile of the person the monitor acts as: an analyst (the analysts'
    /// pages) or an auditor (the auditors' pages). See deploy/clients/.
    #[arg(long)]
    pub client: PathBuf,
    /// Where to listen. Loopback by default; any other address is served with a warning
    /// (whoever reaches it acts as the profile's person).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// The monitor of one person.
pub struct Monitor {
    profile: ClientProfile,
    /// Who the monitor acts as, from the profile's certificate.
    person: PeerIdentity,
    /// The Host header values that name this monitor; empty: any (an explicit non-loopback
    /// `--listen`).
    hosts: Vec<String>,
    /// How long one federated question may take.
    deadline: Duration,
}

impl Monitor {
    /// The monitor of `profile`'s person, reached at `address`.
    pub fn new(profile: ClientProfile, address: SocketAddr) -> anyhow::Result<Monitor> {
        let pem = std::fs::read(&profile.tls.cert)
            .with_context(|| format!("read {}", profile.tls.cert.display()))?;
        let der = zicht_pki::pem_to_der(&pem).context("read the profile's certificate")?;
        let person = zicht_pki::identity_of(&der).context("read the profile's certificate")?;
        if matches!(person.role, Role::Region(_) | Role::Network(_)) {
            anyhow::bail!(
                "the profile's certificate is a node's ({}); the monitor acts as a person",
                person.role.uri()
            );
        }
        let hosts = if address.ip().is_loopback() {
            let port = address.port();
            vec![
                address.to_string(),
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]
        } else {
            Vec::new()
        };
        Ok(Monitor {
            profile,
            person,
            hosts,
            deadline: Duration::from_secs(10),
        })
    }

    /// The node the profile asks by default.
    fn own_node(&self) -> NodeName {
        self.profile.node
    }

    fn is_auditor(&self) -> bool {
        matches!(self.person.role, Role::Auditor { .. })
    }

    fn is_analyst(&self) -> bool {
        matches!(self.person.role, Role::Analyst { .. })
    }

    /// Asks `node`'s Outway for a federated answer, as the person.
    async fn ask(
        &self,
        node: NodeName,
        request: pb::FederatedQueryRequest,
    ) -> Result<pb::FederatedResult, String> {
        crate::query::ask(&self.profile, node, request, self.deadline)
            .await
            .map_err(|error| format!("{error:#}"))
    }

    /// The grants of `node`'s policy that apply to the person.
    async fn grants(&self, node: NodeName) -> Result<pb::CallerGrants, String> {
        let peer = self
            .profile
            .manifest
            .iter()
            .find(|p| p.node == node)
            .ok_or_else(|| format!("the manifest does not list {node}"))?;
        let channel = zicht_node::channel_to(peer, &self.profile.tls);
        let mut client = pb::outway_client::OutwayClient::new(channel);
        let mut request = tonic::Request::new(pb::GrantsRequest {});
        request.set_timeout(self.deadline);
        client
            .grants(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| format!("{node}: {}", status.message()))
    }
}

/// The monitor's routes over `monitor`, behind [`guard`].
pub fn router(monitor: Arc<Monitor>) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/capacity", get(pages::capacity))
        .route("/capacity/trend", get(pages::capacity_trend))
        .route("/herkomst", get(pages::herkomst))
        .route("/flows", get(pages::flows))
        .route("/transition18", get(pages::transition18))
        .route("/query", get(pages::builder))
        .route("/audit/chains", get(audit_pages::chains))
        .route("/audit/trace", get(audit_pages::trace))
        .route("/audit/access", get(audit_pages::access))
        .route("/zicht.css", get(stylesheet))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(monitor.clone(), guard))
        .with_state(monitor)
}

/// Every request: the Host must name the monitor, only GET and HEAD, a page that asks the
/// federation only from the monitor's own pages or typed in; every answer gets the security
/// headers.
async fn guard(State(monitor): State<Arc<Monitor>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let refusal = if !monitor.hosts.is_empty() && !monitor.hosts.iter().any(|h| h == host) {
        Some((
            StatusCode::MISDIRECTED_REQUEST,
            "this monitor answers only under its own address",
        ))
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        Some((
            StatusCode::METHOD_NOT_ALLOWED,
            "the monitor only reads: GET and HEAD",
        ))
    } else if cross_site(&request) {
        Some((
            StatusCode::FORBIDDEN,
            "a page that asks the federation opens only from the monitor itself or a typed address",
        ))
    } else {
        None
    };
    let mut response = match refusal {
        Some((status, message)) => (status, message).into_response(),
        None => next.run(request).await,
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a browser says the request comes from another site, for any path but the
/// stylesheet and icon: a link on another site must not make the monitor ask the federation in
/// the person's name. `Sec-Fetch-Site` where the browser sends it; otherwise (older browsers)
/// an `Origin` or `Referer` that is not the monitor's own address. Neither: typed in.
fn cross_site(request: &Request) -> bool {
    if matches!(
        request.uri().path(),
        "/zicht.css" | "/favicon.svg" | "/favicon.ico"
    ) {
        return false;
    }
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site != "same-origin" && site != "none";
    }
    let own = text(header::HOST).unwrap_or("");
    let elsewhere = |url: &str| authority(url).is_none_or(|from| !from.eq_ignore_ascii_case(own));
    match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => elsewhere(origin),
        (None, Some(referer)) => elsewhere(referer),
        (None, None) => false,
    }
}

/// The `host:port` of an http(s) URL or origin (none for `null` and anything else).
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        layout::STYLESHEET,
    )
}

async fn favicon() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        include_str!("favicon.svg"),
    )
}

async fn not_found(State(monitor): State<Arc<Monitor>>) -> Response {
    layout::error_page(&monitor, StatusCode::NOT_FOUND, "No such page", "")
}

/// A running monitor (for the demo and tests).
pub struct RunningMonitor {
    /// Where it listens.
    pub address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningMonitor {
    /// Stops serving.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.task.await;
    }
}

/// Serves the monitor of `profile` on `listener` until stopped.
pub fn start(profile: ClientProfile, listener: TcpListener) -> anyhow::Result<RunningMonitor> {
    let address = listener
        .local_addr()
        .context("read the monitor's address")?;
    let monitor = Arc::new(Monitor::new(profile, address)?);
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let app = router(monitor);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = signal.await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "monitor ended");
        }
    });
    Ok(RunningMonitor {
        address,
        shutdown: Some(shutdown),
        task,
    })
}

/// Runs `zicht web` until Ctrl-C.
pub async fn run(args: &WebArgs) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    let profile = zicht_node::config::load_client(&args.client, &environment)?;
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: the monitor listens on {}, not on loopback: whoever reaches it acts as \
             the profile's person",
            args.listen
        );
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let running = start(profile, listener)?;
    println!(
        "the monitor serves http://{}/ (Ctrl-C stops it)",
        running.address
    );
    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    running.stop().await;
    Ok(())
}
