//! Connections to peers: one lazily connected, long-lived gRPC channel per peer of the
//! federation manifest, over mutual TLS with the node's own certificate. The peer's
//! certificate must chain to the trust bundle, not be revoked, name the address dialled, and
//! carry the PeerID the manifest lists for that node.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use zicht_model::NodeName;

use crate::settings::ManifestPeer;
use crate::settings::TlsFiles;
use crate::transport::tls::client_config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Dials one peer: TCP, then TLS checked against the manifest's PeerID.
#[derive(Debug, Clone)]
struct Dialer {
    tls: TlsFiles,
    peer: ManifestPeer,
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move {
            // Read per connection, so rotated certificates and a new CRL apply on reconnect.
            let config = client_config(&dialer.tls, dialer.peer.peer_id)?;
            let address = &dialer.peer.address;
            let name = address
                .server_name()
                .ok_or("the manifest's host is not a name a certificate can carry")?;
            let tcp = TcpStream::connect((address.host(), address.port())).await?;
            tcp.set_nodelay(true)?;
            let stream = TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// A lazily connected channel to `peer` over mutual TLS as the holder of `tls`'s certificate;
/// the peer must present the PeerID the manifest lists. Reconnects by itself after a failure.
pub fn channel_to(peer: &ManifestPeer, tls: &TlsFiles) -> Channel {
    let dialer = Dialer {
        tls: tls.clone(),
        peer: peer.clone(),
    };
    // The URI only names the peer for HTTP/2; the dialer decides where to connect.
    Endpoint::from_shared(format!("http://{}", peer.address))
        .unwrap_or_else(|_| Endpoint::from_static("http://127.0.0.1"))
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_with_connector_lazy(dialer)
}

/// The node's channels to its peers, made once at start and reused by every query.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    channels: BTreeMap<NodeName, (ManifestPeer, Channel)>,
}

impl Peers {
    /// A lazily connected channel to every node of `manifest` except `own`, authenticated
    /// with `tls` (the node's own certificate).
    pub fn new(own: NodeName, manifest: &[ManifestPeer], tls: &TlsFiles) -> Peers {
        let channels = manifest
            .iter()
            .filter(|peer| peer.node != own)
            .map(|peer| {
                let channel = channel_to(peer, tls);
                (peer.node, (peer.clone(), channel))
            })
            .collect();
        Peers { channels }
    }

    /// The channel to `node`, if it is a peer in the manifest.
    pub fn channel(&self, node: NodeName) -> Option<Channel> {
        self.channels.get(&node).map(|(_, channel)| channel.clone())
    }

    /// Every peer the manifest lists.
    pub fn nodes(&self) -> impl Iterator<Item = NodeName> + '_ {
        self.channels.keys().copied()
    }
}
