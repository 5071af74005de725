//! Transport: mutual TLS in (the accept loop and [`accept::PeerInfo`]) and out (one channel
//! per peer of the manifest), the reloading TLS configuration both use, and the live
//! connections it closes when a certificate is refused. Nothing here knows
//! templates, policy or data.

pub(crate) mod accept;
pub(crate) mod connections;
pub(crate) mod peers;
pub(crate) mod tls;
