//! The node's listener side of transport: TLS handshakes (identity checked there), then one
//! verified [`PeerInfo`] per connection, handed to every handler. Handlers never read raw
//! certificates.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::Connected;
use zicht_model::PeerIdentity;

use crate::transport::connections::Closer;
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
                let notified = watched.notified();
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

impl Caps {
    /// Pending handshakes one source may hold: a quarter of all (at least one), so no single
    /// address (an IPv4 address, an IPv6 /64) can hold every slot.
    pub(crate) fn per_source(&self) -> usize {
        (self.handshakes / 4).max(1)
    }
}

/// Descriptors kept out of the connection cap for the database, its log files, the channels to
/// peers and the probe and metrics ports, so a flood of sockets never stops the log.
pub(crate) const RESERVED_DESCRIPTORS: u64 = 128;

/// Raises the soft limit on open files to the hard limit, and returns the connection cap that
/// fits in it beside `handshakes` pending ones: `configured`, or fewer when the descriptors
/// (less the reserve) do not allow it.
pub(crate) fn fit_descriptors(configured: usize, handshakes: usize) -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft));
    let wanted = configured.saturating_add(handshakes);
    let fitted = match soft {
        Ok(soft) => cap_for(wanted, soft),
        Err(_) => wanted,
    };
    fitted.saturating_sub(handshakes).max(8).min(configured)
}

/// The connection cap within a soft limit of `soft` descriptors (at least 8).
fn cap_for(configured: usize, soft: u64) -> usize {
    let available = soft.saturating_sub(RESERVED_DESCRIPTORS).max(8);
    configured.min(usize::try_from(available).unwrap_or(usize::MAX))
}

/// The part of an address that counts as one source: an IPv4 address (IPv4-mapped IPv6
/// too), or an IPv6 /64 (what one host or customer typically holds).
fn source_of(address: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

/// Handshakes under way, bounded in total and per source. A new connection is never refused
/// for want of a slot: when its source holds its share, that source's oldest pending handshake
/// is shed; when all slots are taken, the oldest of the source holding the most. So sockets
/// that open and stay silent (or trickle a handshake) only ever push out each other, and a
/// legitimate client's handshake, which takes milliseconds, gets through.
#[derive(Debug)]
pub(crate) struct Pending {
    total: usize,
    per_source: usize,
    state: Mutex<PendingState>,
}

#[derive(Debug, Default)]
struct PendingState {
    next: u64,
    count: usize,
    by_source:
        std::collections::HashMap<std::net::IpAddr, std::collections::BTreeMap<u64, Arc<Notify>>>,
}

/// One pending handshake's place: shed when its `shed` is notified; given back when dropped.
pub(crate) struct Ticket {
    pending: Arc<Pending>,
    source: std::net::IpAddr,
    id: u64,
    pub(crate) shed: Arc<Notify>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.lock().remove(self.source, self.id);
    }
}

impl PendingState {
    fn remove(&mut self, source: std::net::IpAddr, id: u64) -> Option<Arc<Notify>> {
        let held = self.by_source.get_mut(&source)?;
        let removed = held.remove(&id);
        if held.is_empty() {
            self.by_source.remove(&source);
        }
        if removed.is_some() {
            self.count -= 1;
        }
        removed
    }

    /// Sheds the oldest pending handshake of `source`.
    fn shed_oldest(&mut self, source: std::net::IpAddr) -> bool {
        let oldest = self
            .by_source
            .get(&source)
            .and_then(|held| held.keys().next().copied());
        match oldest.and_then(|id| self.remove(source, id)) {
            Some(shed) => {
                shed.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Pending {
    pub(crate) fn new(total: usize, per_source: usize) -> Arc<Pending> {
        Arc::new(Pending {
            total: total.max(1),
            per_source: per_source.max(1),
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a handshake from `remote`, shedding another as needed; how many were
    /// shed, and how full the slots were before (0.0-1.0), for the deadlines.
    pub(crate) fn admit(self: &Arc<Pending>, remote: std::net::IpAddr) -> (Ticket, usize, f64) {
        let source = source_of(remote);
        let mut state = self.lock();
        let load = state.count as f64 / self.total as f64;
        let mut shed = 0;
        let own = state.by_source.get(&source).map_or(0, |held| held.len());
        if own >= self.per_source {
            shed += usize::from(state.shed_oldest(source));
        } else if state.count >= self.total {
            let busiest = state
                .by_source
                .iter()
                .max_by_key(|(_, held)| held.len())
                .map(|(source, _)| *source);
            if let Some(busiest) = busiest {
                shed += usize::from(state.shed_oldest(busiest));
            }
        }
        state.next += 1;
        let id = state.next;
        let notify = Arc::new(Notify::new());
        state
            .by_source
            .entry(source)
            .or_default()
            .insert(id, notify.clone());
        state.count += 1;
        drop(state);
        let ticket = Ticket {
            pending: self.clone(),
            source,
            id,
            shed: notify,
        };
        (ticket, shed, load)
    }

    /// How many handshakes are pending.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.lock().count
    }
}

/// How long a new connection may take to send its first byte and to finish its handshake,
/// given how full the pending slots are (`load`, 0.0-1.0): the full time up to half full, then
/// shrinking to a tenth (at least 250 ms and 1 s) when all are taken.
pub(crate) fn deadlines(handshake_timeout: Duration, load: f64) -> (Duration, Duration) {
    let scale = if load <= 0.5 {
        1.0
    } else {
        (1.0 - (load - 0.5) * 1.8).clamp(0.1, 1.0)
    };
    let first_byte = FIRST_BYTE.mul_f64(scale).max(Duration::from_millis(250));
    let handshake = handshake_timeout
        .mul_f64(scale)
        .max(Duration::from_secs(1).min(handshake_timeout));
    (first_byte.min(handshake), handshake)
}

/// How long a new connection may stay silent before its ClientHello, unpressed.
const FIRST_BYTE: Duration = Duration::from_secs(3);

/// Accepts TCP connections and completes TLS handshakes concurrently: pending handshakes are
/// bounded per source and in total by shedding the oldest ([`Pending`]), their deadlines
/// shrink under pressure ([`deadlines`]), and an established connection over the connection
/// cap is closed at once and counted; only connections with a verified zicht identity reach
/// the gRPC server.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    caps: Caps,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    connections: mpsc::Sender<Result<PeerStream, io::Error>>,
) {
    let open = Arc::new(Semaphore::new(caps.connections));
    let pending = Pending::new(caps.handshakes, caps.per_source());
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guarded = !crate::settings::unguarded();
        let (ticket, load) = if guarded {
            let (ticket, shed, load) = pending.admit(remote.ip());
            for _ in 0..shed {
                metrics.connection_refused("handshakes");
            }
            (Some(ticket), load)
        } else {
            (None, 0.0)
        };
        let (first_byte, handshake) = deadlines(caps.handshake_timeout, load);
        let acceptor = TlsAcceptor::from(tls.current());
        let (connections, tls, open, metrics) = (
            connections.clone(),
            tls.clone(),
            open.clone(),
            metrics.clone(),
        );
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let shake = async {
                tokio::time::timeout(first_byte, tcp.readable())
                    .await
                    .ok()?
                    .ok()?;
                tokio::time::timeout(handshake, acceptor.accept(tcp))
                    .await
                    .ok()?
                    .ok()
            };
            let accepted = match &ticket {
                Some(ticket) => tokio::select! {
                    accepted = shake => accepted,
                    () = ticket.shed.notified() => None,
                },
                None => shake.await,
            };
            drop(ticket);
            // Shed, silent, slow, or refused (no/foreign/expired/revoked certificate, no
            // identity, an overdue CRL) handshakes end here; the client sees the TLS alert.
            let Some(stream) = accepted else {
                return;
            };
            let slot = if guarded {
                let Ok(slot) = open.try_acquire_owned() else {
                    metrics.connection_refused("connections");
                    return;
                };
                Some(slot)
            } else {
                None
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
    fn a_source_over_its_share_sheds_its_own_oldest_and_a_full_node_the_busiest_sources() {
        let pending = Pending::new(4, 2);
        let attacker: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let client: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let (first, shed, _) = pending.admit(attacker);
        assert_eq!(shed, 0);
        let (_second, _, _) = pending.admit(attacker);
        // Its third: its own oldest goes, nobody else's.
        let (_third, shed, load) = pending.admit(attacker);
        assert_eq!((shed, load), (1, 0.5));
        assert_eq!(pending.count(), 2);
        drop(first); // shed already: dropping it gives back nothing twice
        assert_eq!(pending.count(), 2);
        let (_c1, shed, _) = pending.admit(client);
        let (c2, shed2, _) = pending.admit(client);
        assert_eq!((shed, shed2), (0, 0));
        // All four taken: a newcomer from a third source sheds the busiest's oldest (a tie
        // here: either source); it is never refused.
        let other: std::net::IpAddr = "::1".parse().unwrap();
        let (_o, shed, load) = pending.admit(other);
        assert_eq!((shed, load), (1, 1.0));
        assert_eq!(pending.count(), 4);
        drop(c2);
        assert!(pending.count() <= 4);
        // IPv6 addresses of one /64 are one source.
        let a = source_of("2001:db8::1".parse().unwrap());
        let b = source_of("2001:db8::ffff:1".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(
            source_of("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap()
        );
    }

    #[test]
    fn deadlines_shrink_as_the_handshake_slots_fill() {
        let ten = Duration::from_secs(10);
        assert_eq!(
            deadlines(ten, 0.0),
            (Duration::from_secs(3), Duration::from_secs(10))
        );
        assert_eq!(deadlines(ten, 0.5), deadlines(ten, 0.0));
        let (first_byte, handshake) = deadlines(ten, 1.0);
        assert_eq!(first_byte, Duration::from_millis(300));
        assert_eq!(handshake, Duration::from_secs(1));
        // A short configured timeout is never lengthened.
        assert_eq!(
            deadlines(Duration::from_millis(500), 0.0).1,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_for_the_database() {
        assert_eq!(cap_for(1024, 1_048_576), 1024);
        assert_eq!(cap_for(1024, 1024), 1024 - RESERVED_DESCRIPTORS as usize);
        assert_eq!(cap_for(1024, 256), 128);
        assert_eq!(cap_for(1024, 10), 8, "never below a handful");
    }
}
