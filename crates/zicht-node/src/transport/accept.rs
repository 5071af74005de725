//! The node's listener side of transport: TLS handshakes (identity checked there), then one
//! verified [`PeerInfo`] per connection, handed to every handler. Handlers never read raw
//! certificates.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
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

/// How a live connection is told to close, and how old and idle it is.
#[derive(Debug)]
pub(crate) struct Closer {
    closed: AtomicBool,
    notify: Notify,
    opened: Instant,
    /// Milliseconds after `opened` of the last byte read or written.
    last_active_ms: AtomicU64,
}

impl Closer {
    fn new() -> Closer {
        Closer {
            closed: AtomicBool::new(false),
            notify: Notify::new(),
            opened: Instant::now(),
            last_active_ms: AtomicU64::new(0),
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.opened.elapsed().saturating_sub(Duration::from_millis(
            self.last_active_ms.load(Ordering::Relaxed),
        ))
    }
}

/// The node's live connections with the certificate chain each was accepted with, so they can
/// be checked again when the CRL changes, and closed when too old or idle.
#[derive(Debug, Default)]
pub struct Connections {
    live: Mutex<Vec<(Weak<Closer>, Vec<CertificateDer<'static>>)>>,
}

impl Connections {
    fn register(&self, chain: Vec<CertificateDer<'static>>) -> Arc<Closer> {
        let closer = Arc::new(Closer::new());
        let mut live = self.lock();
        live.retain(|(weak, _)| weak.strong_count() > 0);
        live.push((Arc::downgrade(&closer), chain));
        closer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Weak<Closer>, Vec<CertificateDer<'static>>)>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes every live connection whose chain `refused` says no to; returns how many.
    pub(crate) fn close_where(
        &self,
        refused: impl Fn(&[CertificateDer<'static>]) -> bool,
    ) -> usize {
        self.close_if(|_, chain| refused(chain))
    }

    /// Closes the connections older than `max_age` or idle for longer than `idle`, so
    /// long-lived channels handshake again; returns how many.
    pub(crate) fn close_stale(&self, max_age: Duration, idle: Duration) -> usize {
        self.close_if(|closer, _| closer.opened.elapsed() > max_age || closer.idle() > idle)
    }

    /// Closes the live connections `close` picks, and forgets closed and ended ones.
    fn close_if(&self, close: impl Fn(&Closer, &[CertificateDer<'static>]) -> bool) -> usize {
        let mut closed = 0;
        self.lock().retain(|(weak, chain)| match weak.upgrade() {
            Some(closer) if close(&closer, chain) => {
                closer.close();
                closed += 1;
                false
            }
            Some(closer) => !closer.is_closed(),
            None => false,
        });
        closed
    }

    /// How many connections are open.
    pub(crate) fn open(&self) -> usize {
        self.lock()
            .iter()
            .filter(|(weak, _)| weak.strong_count() > 0)
            .count()
    }
}

/// A TLS connection whose client certificate was verified and carries a zicht identity; it
/// ends (as if the peer closed it) once its [`Closer`] is told to.
pub struct PeerStream {
    inner: TlsStream<TcpStream>,
    info: PeerInfo,
    closer: Arc<Closer>,
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The connection's place under the cap, given back when it ends (none only while a
    /// benchmark switched the caps off).
    _slot: Option<OwnedSemaphorePermit>,
}

impl PeerStream {
    fn new(
        inner: TlsStream<TcpStream>,
        info: PeerInfo,
        closer: Arc<Closer>,
        slot: Option<OwnedSemaphorePermit>,
    ) -> PeerStream {
        let watched = closer.clone();
        let closing = Box::pin(async move {
            loop {
                // Created before the check, so a close between the two still wakes it.
                let notified = watched.notify.notified();
                if watched.is_closed() {
                    return;
                }
                notified.await;
            }
        });
        PeerStream {
            inner,
            info,
            closer,
            closing,
            _slot: slot,
        }
    }
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
        let this = self.get_mut();
        if this.closing.as_mut().poll(cx).is_ready() {
            // End of stream: the server drops the connection and every stream on it.
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.closer.touch();
        }
        read
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closer.is_closed() {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        this.closer.touch();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// How many connections and handshakes the accept loop allows at once, and how long a
/// handshake may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) connections: usize,
    pub(crate) handshakes: usize,
    pub(crate) handshake_timeout: Duration,
}

/// Descriptors kept out of the connection cap for the database, its log files, the channels to
/// peers and the probe and metrics ports, so a flood of sockets never stops the log.
pub(crate) const RESERVED_DESCRIPTORS: u64 = 128;

/// Raises the soft limit on open files to the hard limit, and returns the connection cap that
/// fits in it: `configured`, or fewer when the descriptors (less the reserve) do not allow it.
pub(crate) fn fit_descriptors(configured: usize) -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft));
    match soft {
        Ok(soft) => cap_for(configured, soft),
        Err(_) => configured,
    }
}

/// The connection cap within a soft limit of `soft` descriptors (at least 8).
fn cap_for(configured: usize, soft: u64) -> usize {
    let available = soft.saturating_sub(RESERVED_DESCRIPTORS).max(8);
    configured.min(usize::try_from(available).unwrap_or(usize::MAX))
}

/// Accepts TCP connections and completes TLS handshakes concurrently, within `caps` (a
/// connection over a cap is closed at once and counted); only connections with a verified
/// zicht identity reach the gRPC server.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    caps: Caps,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    connections: mpsc::Sender<Result<PeerStream, io::Error>>,
) {
    let open = Arc::new(Semaphore::new(caps.connections));
    let handshakes = Arc::new(Semaphore::new(caps.handshakes));
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Held for the connection's life, then for the handshake only.
        let (slot, handshake) = if crate::settings::unguarded() {
            (None, None)
        } else {
            let Ok(slot) = open.clone().try_acquire_owned() else {
                metrics.connection_refused("connections");
                continue;
            };
            let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
                metrics.connection_refused("handshakes");
                continue;
            };
            (Some(slot), Some(handshake))
        };
        let acceptor = TlsAcceptor::from(tls.current());
        let (connections, tls) = (connections.clone(), tls.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let accepted = tokio::time::timeout(caps.handshake_timeout, acceptor.accept(tcp)).await;
            drop(handshake);
            // Refused handshakes (no/foreign/expired/revoked certificate, no identity, an
            // overdue CRL) end here; the client sees the TLS alert.
            let Ok(Ok(stream)) = accepted else {
                return;
            };
            let chain: Vec<CertificateDer<'static>> = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let Some((identity, certificate)) = chain.first().and_then(|cert| {
                Some((zicht_pki::identity_of(cert).ok()?, cert.as_ref().to_vec()))
            }) else {
                return;
            };
            let closer = tls.connections().register(chain);
            let info = PeerInfo {
                identity,
                remote,
                certificate,
            };
            let _ = connections
                .send(Ok(PeerStream::new(stream, info, closer, slot)))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_old_and_idle_connections_are_told_to_close() {
        let connections = Connections::default();
        let kept = connections.register(vec![CertificateDer::from(vec![1])]);
        let refused = connections.register(vec![CertificateDer::from(vec![2])]);
        assert_eq!(connections.close_where(|chain| chain[0].as_ref() == [2]), 1);
        assert!(refused.is_closed() && !kept.is_closed());
        assert_eq!(connections.open(), 1);
        // An hour's age and idle time leave it open; no age at all closes it.
        let hour = Duration::from_secs(3600);
        assert_eq!(connections.close_stale(hour, hour), 0);
        assert_eq!(connections.close_stale(Duration::ZERO, hour), 1);
        assert!(kept.is_closed());
        drop((kept, refused));
        assert_eq!(connections.open(), 0);
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_database() {
        assert_eq!(cap_for(1024, 1_048_576), 1024);
        assert_eq!(cap_for(1024, 1024), 1024 - RESERVED_DESCRIPTORS as usize);
        assert_eq!(cap_for(1024, 256), 128);
        assert_eq!(cap_for(1024, 10), 8, "never below a handful");
    }
}
