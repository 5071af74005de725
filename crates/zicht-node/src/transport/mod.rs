//! Transport: mutual TLS in (the accept loop and [`accept::PeerInfo`]) and out (one channel
//! per peer of the manifest), and the reloading TLS configuration both use. Nothing here knows
//! templates, policy or data.

pub(crate) mod accept;
pub(crate) mod peers;
pub(crate) mod tls;
