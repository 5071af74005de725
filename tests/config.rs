//! Node configuration: every example in deploy/ loads; bad values name file or variable, key and
//! reason. The environment is passed in as a function, never mutated.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use zicht_model::{CodeList, NodeName};
use zicht_node::config::{load, ConfigError};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Environment that points a node's TLS files at a dev federation made for the test, and its
/// record-key secret and data-subject key into the federation's folder (never into the
/// repository).
fn tls_env(pki: &zicht_pki::DevFederation, node: NodeName) -> HashMap<&'static str, String> {
    let mut env = files_env(pki, pki.node(node));
    if let NodeName::Region(_) = node {
        let secret = pki
            .ca_cert()
            .with_file_name(format!("{}.secret", node.code()));
        env.insert(
            "ZICHT_PRIVACY_RECORD_KEY_SECRET",
            secret.display().to_string(),
        );
        env.insert(
            "ZICHT_PRIVACY_SUBJECT_KEY",
            secret.with_extension("subject-key").display().to_string(),
        );
    }
    env
}

/// The TLS variables of a person's client profile.
fn person_env(pki: &zicht_pki::DevFederation, name: &str) -> HashMap<&'static str, String> {
    files_env(pki, pki.person(name))
}

/// The TLS variables for a certificate and key of the dev federation.
fn files_env(
    pki: &zicht_pki::DevFederation,
    (cert, key): (PathBuf, PathBuf),
) -> HashMap<&'static str, String> {
    HashMap::from([
        ("ZICHT_TLS_CA", pki.ca_cert().display().to_string()),
        ("ZICHT_TLS_CERT", cert.display().to_string()),
        ("ZICHT_TLS_KEY", key.display().to_string()),
        ("ZICHT_TLS_CRL", pki.crl().display().to_string()),
    ])
}

fn load_with(
    path: &Path,
    env: &HashMap<&'static str, String>,
) -> Result<zicht_node::config::NodeConfig, ConfigError> {
    load(path, &|name: &str| env.get(name).cloned())
}

#[test]
fn every_example_node_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let pki = zicht_pki::write_dev_federation(dir.path(), 1_790_000_000).unwrap();
    for node in NodeName::all() {
        let path = deploy().join("nodes").join(format!("{}.toml", node.code()));
        let config =
            load_with(&path, &tls_env(&pki, node)).unwrap_or_else(|e| panic!("{node}: {e}"));
        assert_eq!(config.node, node);
        assert_eq!(config.manifest.len(), 17);
        assert!(
            config.database.ends_with(&format!("{}.db", node.code())),
            "{node}"
        );
        assert!(!config.settings.policy.grants.is_empty(), "{node}");
        let own = config.manifest.iter().find(|p| p.node == node).unwrap();
        assert_eq!(own.peer_id, node.dev_peer_id());
        assert_eq!(own.address, config.settings.listen.into());
    }
}

#[test]
fn bad_values_name_place_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pki = zicht_pki::write_dev_federation(&dir.path().join("pki"), 1_790_000_000).unwrap();
    let node = NodeName::Region(zicht_model::Region::Drenthe);
    let example = deploy().join("nodes").join("drenthe.toml");
    let env = tls_env(&pki, node);

    // A copy of the example with one bad line; its relative policy and manifest paths are
    // pointed back at deploy/ through the environment.
    let bad = dir.path().join("drenthe.toml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("listen = \"127.0.0.1:7401\"", "listen = \"localhost\"");
    std::fs::write(&bad, text).unwrap();
    let mut moved = env.clone();
    moved.insert(
        "ZICHT_POLICY",
        deploy().join("policies/drenthe.toml").display().to_string(),
    );
    moved.insert(
        "ZICHT_MANIFEST",
        deploy().join("federation.toml").display().to_string(),
    );
    let error = load_with(&bad, &moved).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:4: key `listen`: must be an address such as 127.0.0.1:7401",
            bad.display()
        )
    );

    let mut overridden = env.clone();
    overridden.insert("ZICHT_LIMITS_MAX_CELLS", "many".to_owned());
    assert_eq!(
        load_with(&example, &overridden).unwrap_err().to_string(),
        "environment variable ZICHT_LIMITS_MAX_CELLS: key `limits.max_cells`: must be a whole number"
    );

    // Privacy settings may be raised, never lowered below the network floor.
    let lowered = dir.path().join("lowered.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    // The example ends with its [privacy] section: these lines belong to it.
    std::fs::write(
        &lowered,
        format!("{text}population_floor = 20\nmax_deviation = 1\n"),
    )
    .unwrap();
    let line = text.lines().count() + 2;
    assert_eq!(
        load_with(&lowered, &moved).unwrap_err().to_string(),
        format!(
            "{}:{line}: key `privacy.max_deviation`: 1 is below the network floor of 4; a region may only raise it",
            lowered.display()
        )
    );
    let mut raised = moved.clone();
    raised.insert("ZICHT_PRIVACY_MAX_DEVIATION", "4".to_owned());
    let config = load_with(&lowered, &raised).unwrap();
    assert_eq!(config.settings.disclosure.settings.max_deviation, 4);
    assert_eq!(config.settings.disclosure.settings.population_floor, 20);
    assert!(config.settings.disclosure.has_secret());
    assert_eq!(
        config.settings.disclosure.region,
        Some(zicht_model::Region::Drenthe)
    );

    // The data-subject key is made on first start; one others can read stops the node.
    assert!(config.settings.disclosure.has_subject_key());
    let key = std::path::PathBuf::from(&env["ZICHT_PRIVACY_SUBJECT_KEY"]);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let error = load_with(&example, &env).unwrap_err();
    assert_eq!(error.key, "privacy.subject_key");
    assert!(
        error
            .reason
            .ends_with("can be read by others; make it private (chmod 600)"),
        "{error}"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let error = load_with(&example, &env).unwrap_err();
    assert!(
        error
            .reason
            .ends_with("does not hold a data-subject key (64 hex digits)"),
        "{error}"
    );
    std::fs::remove_file(&key).unwrap();

    let mut missing = env.clone();
    missing.insert("ZICHT_TLS_CERT", "/nonexistent/drenthe.pem".to_owned());
    let error = load_with(&example, &missing).unwrap_err();
    assert_eq!(error.key, "tls.cert");
    assert!(
        error
            .reason
            .starts_with("cannot read /nonexistent/drenthe.pem"),
        "{error}"
    );

    // OpenTelemetry export is off unless an endpoint is given, and the endpoint must be one.
    assert!(load_with(&example, &env).unwrap().settings.otlp.is_none());
    let mut otlp = env.clone();
    otlp.insert("ZICHT_OTLP_ENDPOINT", "collector:4317".to_owned());
    let error = load_with(&example, &otlp).unwrap_err();
    assert_eq!(error.key, "otlp_endpoint");
    assert!(error.reason.contains("http://127.0.0.1:4317"), "{error}");
    otlp.insert("ZICHT_OTLP_ENDPOINT", "http://127.0.0.1:4317".to_owned());
    otlp.insert("ZICHT_OTLP_INTERVAL_SECONDS", "2".to_owned());
    let exported = load_with(&example, &otlp).unwrap().settings.otlp.unwrap();
    assert_eq!(exported.endpoint, "http://127.0.0.1:4317");
    assert_eq!(exported.interval, std::time::Duration::from_secs(2));

    let mut listen = env.clone();
    listen.insert("ZICHT_LISTEN", "127.0.0.1:0".to_owned());
    let config = load_with(&example, &listen).unwrap();
    assert_eq!(config.settings.listen.port(), 0);

    // An aggregator's database holds only its release log, but it must have one.
    let jenn = NodeName::Network(zicht_model::Network::Jenn);
    let text = std::fs::read_to_string(deploy().join("nodes").join("jenn.toml")).unwrap();
    let without = dir.path().join("jenn.toml");
    std::fs::write(
        &without,
        text.lines()
            .filter(|line| !line.starts_with("database"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let error = load_with(&without, &tls_env(&pki, jenn)).unwrap_err();
    assert_eq!(error.key, "database");
    assert!(error.reason.contains("release log"), "{error}");
}

#[test]
fn every_example_client_profile_loads() {
    let dir = tempfile::tempdir().unwrap();
    let pki = zicht_pki::write_dev_federation(dir.path(), 1_790_000_000).unwrap();
    for &region in zicht_model::Region::ALL {
        for person in ["analyst", "team"] {
            let name = format!("{person}-{}", region.code());
            let path = deploy().join("clients").join(format!("{name}.toml"));
            let (cert, _) = pki.person(&name);
            let env = person_env(&pki, &name);
            let profile =
                zicht_node::config::load_client(&path, &|name: &str| env.get(name).cloned())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(profile.node, NodeName::Region(region));
            assert_eq!(profile.tls.cert, cert);
        }
    }
    let env = person_env(&pki, "auditor");
    let auditor = zicht_node::config::load_client(
        &deploy().join("clients").join("auditor.toml"),
        &|name: &str| env.get(name).cloned(),
    )
    .unwrap();
    assert_eq!(auditor.manifest.len(), 17);
    // A profile naming a node the manifest does not list says where.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "node = \"utrecht\"\nmanifest = {:?}\n\n[tls]\nca = \"x\"\ncert = \"x\"\nkey = \"x\"\n",
            deploy().join("federation.toml").display().to_string()
        ),
    )
    .unwrap();
    let error = zicht_node::config::load_client(&bad, &|_: &str| None).unwrap_err();
    assert_eq!(error.key, "node");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:1:", bad.display())),
        "{error}"
    );
}
