//! Opening a region's database from the command line: a read never creates one (a mistyped
//! path is an error naming it, not an empty region), and a command that creates or upgrades
//! one says so.

use anyhow::Context;
use zicht_store::Store;

/// Opens a database that exists.
pub async fn existing(url: &str) -> anyhow::Result<Store> {
    match Store::open_existing(url).await {
        Err(error @ zicht_store::StoreError::NoDatabase(_)) => Err(anyhow::Error::new(error)),
        other => other.context("open database"),
    }
}

/// Opens a database, creating a SQLite file that does not exist yet, and brings its schema
/// up to date; says what it did: created, upgraded, or nothing to do.
pub async fn create_or_upgrade(url: &str, quiet_when_current: bool) -> anyhow::Result<Store> {
    let file = zicht_store::sqlite_file(url).filter(|path| !path.exists());
    if let Some(folder) = file.as_deref().and_then(std::path::Path::parent) {
        if !folder.as_os_str().is_empty() && !folder.is_dir() {
            anyhow::bail!(
                "cannot create the database {}: there is no folder {}",
                file.as_deref().unwrap_or(folder).display(),
                folder.display()
            );
        }
    }
    let before = match &file {
        Some(_) => None,
        None => {
            let store = Store::connect(url).await.context("open database")?;
            let version = store.schema_version().await?;
            store.close().await;
            Some(version)
        }
    };
    let store = Store::open(url).await.context("open database")?;
    let after = store.schema_version().await?;
    match (file, before) {
        (Some(path), _) => println!(
            "created {} with the zicht schema (version {after})",
            path.display()
        ),
        (None, Some(before)) if before < after => {
            println!("upgraded the schema from version {before} to {after}")
        }
        (None, _) if !quiet_when_current => println!("schema is up to date (version {after})"),
        _ => {}
    }
    Ok(store)
}
