//! The node's listener side of transport: TLS handshakes (identity checked there), then one
//! verified [`PeerInfo`] per connection, handed to every handler. Handlers never read raw
//! certificates.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use zicht_model::PeerIdentity;

use crate::transport::tls::ReloadingTls;

/// What a handler knows about the caller: derived once per connection from the verified
/// certificate. Handlers never read raw certificates.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The caller's identity.
    pub identity: PeerIdentity,
    /// The caller's address.
    pub remote: SocketAddr,
    /// The caller's certificate (DER), as verified in the handshake: checkpoints a peer signs
    /// are checked against it.
    pub certificate: Vec<u8>,
}

/// A TLS connection whose client certificate was verified and carries a zicht identity.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Accepts TCP connections and completes TLS handshakes concurrently; only connections with a
/// verified zicht identity reach the gRPC server.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    connections: mpsc::Sender<Result<PeerStream, io::Error>>,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("zicht node: accept: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = TlsAcceptor::from(tls.current());
        let connections = connections.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    // Refused handshakes (no/foreign/expired/revoked certificate, no identity) end
                    // here; the client sees the TLS alert.
                    Ok(Err(_)) | Err(_) => return,
                };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.as_ref().to_vec());
            let Some((identity, certificate)) =
                certificate.and_then(|cert| Some((zicht_pki::identity_of(&cert).ok()?, cert)))
            else {
                return;
            };
            let _ = connections
                .send(Ok(PeerStream {
                    inner: stream,
                    info: PeerInfo {
                        identity,
                        remote,
                        certificate,
                    },
                }))
                .await;
        });
    }
}
