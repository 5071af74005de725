//! `zicht node`: load the configuration, open the store, serve until told to stop.

use std::path::Path;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

/// Runs a node from its configuration file until Ctrl-C or SIGTERM.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    // A mistyped database stops the node before anything is created (its keys included).
    let database = zicht_node::config::database(config_path, &environment)?;
    let store = crate::database::existing(&database).await?;
    let config = zicht_node::config::load(config_path, &environment)?;
    let node = zicht_node::start(config.settings.clone(), Some(store)).await?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listen for SIGHUP")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => match node.tls.reload_if_changed() {
                Ok(true) => tracing::info!("reloaded certificates and CRL"),
                Ok(false) => tracing::info!("certificates and CRL unchanged"),
                Err(error) => tracing::error!(%error, "keeping current TLS"),
            },
        }
    }
    tracing::info!("stopping");
    node.stop().await;
    Ok(())
}
