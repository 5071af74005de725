//! `zicht node`: load the configuration, open the store, serve until told to stop.

use std::path::Path;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use zicht_model::CodeList;

/// A regional node does not start on another region's database, nor on one without
/// placements unless its config says it may (`start_empty`, a new region): a mistyped
/// database path that `migrate` created would otherwise answer its owner with zeros.
async fn check_data(
    store: &zicht_store::Store,
    target: &zicht_node::config::DataTarget,
) -> anyhow::Result<()> {
    let zicht_model::NodeName::Region(region) = target.node else {
        return Ok(()); // a network node holds no youth data
    };
    let held = store.held_regions().await?;
    if let Some(other) = held.iter().find(|&&r| r != region) {
        anyhow::bail!(
            "the database holds placements of {}, and this node is {}: is `database` the right one? (a database holds one region's data)",
            other.code(),
            region.code()
        );
    }
    if !target.start_empty && !store.has_placements().await? {
        anyhow::bail!(
            "the database holds no placements: import the region's data first (zicht import --config ...), or set `start_empty = true` in the node config for a new region (is `database` the right path?)"
        );
    }
    Ok(())
}

/// Runs a node from its configuration file until Ctrl-C or SIGTERM.
pub async fn run(config_path: &Path) -> anyhow::Result<()> {
    let environment = |name: &str| std::env::var(name).ok();
    // A mistyped database stops the node before anything is created (its keys included).
    let target = zicht_node::config::data_target(config_path, &environment)?;
    let store = crate::database::existing(&target.database).await?;
    check_data(&store, &target).await?;
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
