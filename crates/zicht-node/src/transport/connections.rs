//! The node's live connections, each with the certificate chain it was accepted with and a
//! [`Closer`] that tells it to close: the accept loop registers them, the reloading TLS
//! configuration closes those a new CRL or trust bundle refuses, and the node closes stale ones.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tokio::sync::Notify;

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

    /// Resolves once the connection is told to close after this call (create it before
    /// checking [`Closer::is_closed`], so a close between the two still wakes it).
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Whether it was told to close.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Notes that a byte was read or written now.
    pub(crate) fn touch(&self) {
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
    /// Takes in a connection accepted with `chain`; the closer tells it to close.
    pub(crate) fn register(&self, chain: Vec<CertificateDer<'static>>) -> Arc<Closer> {
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
}
