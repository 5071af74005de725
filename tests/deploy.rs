//! The deployment files are derived from, and checked against, the node configs in
//! `deploy/nodes/`: the Kubernetes overlays (a node config, its policy and its ports for each
//! of the 17 nodes), the compose node configs and both manifests are generated from them
//! (`ZICHT_BLESS=1 cargo test -p zicht-tests --test deploy` writes them again); every YAML file
//! parses; the hand-written base, compose file and systemd unit use the ports, probe ports,
//! mounted paths and config keys the node configs say; and `systemd-analyze verify` accepts
//! the unit. A port changed in one place only fails here.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};
use zicht_model::NodeName;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The ports of one node config: mutual TLS, health probe, metrics (mutual TLS + 2000).
#[derive(Debug, Clone, Copy)]
struct Ports {
    grpc: u16,
    health: u16,
    metrics: u16,
}

/// A node config of deploy/nodes and its ports.
struct Node {
    name: NodeName,
    text: String,
    ports: Ports,
}

fn port_of(text: &str, key: &str) -> u16 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key}"));
    let quoted = line.split('"').nth(1).unwrap();
    quoted.rsplit(':').next().unwrap().parse().unwrap()
}

fn nodes() -> Vec<Node> {
    NodeName::all()
        .map(|name| {
            let text = std::fs::read_to_string(deploy().join("nodes").join(format!("{name}.toml")))
                .unwrap();
            let grpc = port_of(&text, "listen");
            let ports = Ports {
                grpc,
                health: port_of(&text, "health_listen"),
                metrics: grpc + 2000,
            };
            Node { name, text, ports }
        })
        .collect()
}

/// Where a container finds what a node config names.
struct Paths {
    what: &'static str,
    database: String,
    policy: String,
    manifest: &'static str,
    tls: [String; 4],
    state: &'static str,
}

/// A node config for a container: the example's, listening on every interface (metrics too),
/// with the paths of `paths`.
fn container_config(node: &Node, paths: &Paths) -> String {
    let code = node.name.code();
    let mut out = format!(
        "# Generated from deploy/nodes/{code}.toml for {} by tests/deploy.rs\n# (ZICHT_BLESS=1 cargo test -p zicht-tests --test deploy); edit the source, not this file.\n",
        paths.what
    );
    let tls = ["ca", "cert", "key", "crl"];
    for line in node.text.lines() {
        let key = line.split(" = ").next().unwrap_or("");
        let replaced = match key {
            _ if line.starts_with('#') => continue,
            "listen" => format!("listen = \"0.0.0.0:{}\"", node.ports.grpc),
            "health_listen" => format!(
                "health_listen = \"0.0.0.0:{}\"\nmetrics_listen = \"0.0.0.0:{}\"",
                node.ports.health, node.ports.metrics
            ),
            "database" => format!("database = \"{}\"", paths.database),
            "policy" => format!("policy = \"{}\"", paths.policy),
            "manifest" => format!("manifest = \"{}\"", paths.manifest),
            "record_key_secret" => {
                format!("record_key_secret = \"{}/{code}.secret\"", paths.state)
            }
            "subject_key" => format!("subject_key = \"{}/{code}.subject-key\"", paths.state),
            key if tls.contains(&key) => {
                let index = tls.iter().position(|k| *k == key).unwrap();
                format!("{key} = \"{}\"", paths.tls[index])
            }
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

fn kubernetes_paths(node: &Node) -> Paths {
    Paths {
        what: "Kubernetes",
        database: format!("sqlite:///var/lib/zicht/{}.db", node.name.code()),
        policy: "/etc/zicht/config/policy.toml".to_owned(),
        manifest: "/etc/zicht/federation/federation.toml",
        tls: [
            "/etc/zicht/tls/ca.pem".to_owned(),
            "/etc/zicht/tls/node.pem".to_owned(),
            "/etc/zicht/tls/node.key".to_owned(),
            "/etc/zicht/tls/crl.pem".to_owned(),
        ],
        state: "/var/lib/zicht",
    }
}

fn compose_paths(node: &Node) -> Paths {
    let code = node.name.code();
    Paths {
        what: "deploy/compose",
        database: format!("sqlite:///var/lib/zicht/{code}.db"),
        policy: format!("../../policies/{code}.toml"),
        manifest: "../federation.toml",
        tls: [
            "/etc/zicht/pki/ca.pem".to_owned(),
            format!("/etc/zicht/pki/nodes/{code}.pem"),
            format!("/etc/zicht/pki/nodes/{code}.key"),
            "/etc/zicht/pki/crl.pem".to_owned(),
        ],
        state: "/var/lib/zicht",
    }
}

/// The nodes of the compose federation.
const COMPOSE: [&str; 4] = ["drenthe", "friesland", "groningen", "jenn"];

/// A manifest of `nodes`, each at `host(code):port`.
fn manifest(nodes: &[&Node], host: impl Fn(&str) -> String, what: &str) -> String {
    let peers: Vec<zicht_node::ManifestPeer> = nodes
        .iter()
        .map(|node| {
            let address = format!("{}:{}", host(node.name.code()), node.ports.grpc);
            zicht_node::ManifestPeer {
                node: node.name,
                address: zicht_node::PeerAddress::parse(&address).unwrap(),
                peer_id: node.name.dev_peer_id(),
            }
        })
        .collect();
    zicht_node::config::manifest_text(
        &format!(
            "Federation manifest for {what}, generated from deploy/federation.toml's nodes by\n\
             tests/deploy.rs: each node's Service name and port, and its PeerID."
        ),
        &peers,
    )
}

/// A node's overlay: its name, its config and policy as a ConfigMap, its ports, probes and
/// TLS Secret.
fn overlay(node: &Node) -> String {
    let code = node.name.code();
    let Ports {
        grpc,
        health,
        metrics,
    } = node.ports;
    let instance = "app.kubernetes.io~1instance";
    // A regional node holds youth data and gets the import path; a network node holds none.
    let import = match node.name {
        NodeName::Region(_) => "components:\n  - ../../components/import\n".to_owned(),
        NodeName::Network(_) => String::new(),
    };
    let import_patch = match node.name {
        NodeName::Region(_) => format!(
            "\x20 - target:\n      kind: CronJob\n      name: zicht-import\n    patch: |-\n\
             \x20     - {{op: replace, path: /spec/jobTemplate/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name, value: zicht-postgres-{code}}}\n\
             \x20     - {{op: add, path: /spec/jobTemplate/spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/0/labelSelector/matchLabels/{instance}, value: {code}}}\n"
        ),
        NodeName::Network(_) => String::new(),
    };
    format!(
        "# The zicht node {code}: generated from deploy/nodes/{code}.toml by tests/deploy.rs\n\
         # (ZICHT_BLESS=1 cargo test -p zicht-tests --test deploy); edit the source, not this file.\n\
         # Before `kubectl apply -k`, make its TLS Secret zicht-tls-{code} (see ../../base).\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n  - ../../base\n\
         nameSuffix: -{code}\n\
         labels:\n  - pairs:\n      app.kubernetes.io/instance: {code}\n    includeTemplates: true\n\
         {import}\
         configMapGenerator:\n  - name: zicht-config\n    files:\n      - node.toml\n      - policy.toml\n\
         patches:\n\
         \x20 - target:\n      kind: Deployment\n      name: zicht\n    patch: |-\n\
         \x20     - {{op: add, path: /spec/selector/matchLabels/{instance}, value: {code}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/ports/0/containerPort, value: {grpc}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/ports/1/containerPort, value: {health}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/ports/2/containerPort, value: {metrics}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/readinessProbe/grpc/port, value: {health}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/livenessProbe/grpc/port, value: {health}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/name, value: zicht-postgres-{code}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/initContainers/0/env/0/valueFrom/secretKeyRef/name, value: zicht-postgres-{code}}}\n\
         \x20     - {{op: replace, path: /spec/template/spec/volumes/2/secret/secretName, value: zicht-tls-{code}}}\n\
         \x20 - target:\n      kind: Service\n      name: zicht\n    patch: |-\n\
         \x20     - {{op: add, path: /spec/selector/{instance}, value: {code}}}\n\
         \x20     - {{op: replace, path: /spec/ports/0/port, value: {grpc}}}\n\
         \x20     - {{op: replace, path: /spec/ports/1/port, value: {metrics}}}\n\
         \x20 - target:\n      kind: NetworkPolicy\n      name: zicht\n    patch: |-\n\
         \x20     - {{op: add, path: /spec/podSelector/matchLabels/{instance}, value: {code}}}\n\
         \x20 - target:\n      kind: PodDisruptionBudget\n      name: zicht\n    patch: |-\n\
         \x20     - {{op: add, path: /spec/selector/matchLabels/{instance}, value: {code}}}\n\
         {import_patch}"
    )
}

/// Every generated file and what it must hold.
fn generated() -> BTreeMap<PathBuf, String> {
    let nodes = nodes();
    let mut files = BTreeMap::new();
    let kubernetes = deploy().join("kubernetes");
    for node in &nodes {
        let code = node.name.code();
        let dir = kubernetes.join("overlays").join(code);
        files.insert(dir.join("kustomization.yaml"), overlay(node));
        files.insert(
            dir.join("node.toml"),
            container_config(node, &kubernetes_paths(node)),
        );
        let policy =
            std::fs::read_to_string(deploy().join("policies").join(format!("{code}.toml")))
                .unwrap();
        files.insert(dir.join("policy.toml"), policy);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    files.insert(
        kubernetes.join("base").join("federation.toml"),
        manifest(&all, |code| format!("zicht-{code}"), "Kubernetes"),
    );
    let compose: Vec<&Node> = nodes
        .iter()
        .filter(|n| COMPOSE.contains(&n.name.code()))
        .collect();
    for node in &compose {
        files.insert(
            deploy()
                .join("compose")
                .join("nodes")
                .join(format!("{}.toml", node.name.code())),
            container_config(node, &compose_paths(node)),
        );
    }
    files.insert(
        deploy().join("compose").join("federation.toml"),
        manifest(&compose, str::to_owned, "deploy/compose"),
    );
    files
}

#[test]
fn deployment_files_are_generated_from_the_node_configs() {
    let bless = std::env::var("ZICHT_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (path, expected) in generated() {
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date (run ZICHT_BLESS=1 cargo test -p zicht-tests --test deploy): {stale:?}"
    );
}

#[test]
fn the_generated_node_configs_load() {
    let dir = tempfile::tempdir().unwrap();
    let pki = zicht_pki::write_dev_federation(&dir.path().join("pki"), zicht_testkit::node::now())
        .unwrap();
    for node in nodes() {
        let code = node.name.code();
        for (config, policy, manifest) in [
            (
                deploy()
                    .join("kubernetes/overlays")
                    .join(code)
                    .join("node.toml"),
                deploy()
                    .join("kubernetes/overlays")
                    .join(code)
                    .join("policy.toml"),
                deploy().join("kubernetes/base/federation.toml"),
            ),
            (
                deploy().join("compose/nodes").join(format!("{code}.toml")),
                deploy().join("policies").join(format!("{code}.toml")),
                deploy().join("compose/federation.toml"),
            ),
        ] {
            if !config.exists() {
                continue; // compose has four of the nodes
            }
            // The container's paths, pointed at files of this test.
            let (cert, key) = pki.node(node.name);
            let mut env: BTreeMap<String, String> = BTreeMap::from([
                ("ZICHT_POLICY".to_owned(), policy.display().to_string()),
                ("ZICHT_MANIFEST".to_owned(), manifest.display().to_string()),
                (
                    "ZICHT_TLS_CA".to_owned(),
                    pki.ca_cert().display().to_string(),
                ),
                ("ZICHT_TLS_CERT".to_owned(), cert.display().to_string()),
                ("ZICHT_TLS_KEY".to_owned(), key.display().to_string()),
                ("ZICHT_TLS_CRL".to_owned(), pki.crl().display().to_string()),
            ]);
            if let NodeName::Region(_) = node.name {
                let state = dir.path().join(code);
                for (var, file) in [
                    ("ZICHT_PRIVACY_RECORD_KEY_SECRET", "secret"),
                    ("ZICHT_PRIVACY_SUBJECT_KEY", "subject-key"),
                ] {
                    env.insert(
                        var.to_owned(),
                        state.with_extension(file).display().to_string(),
                    );
                }
            }
            let loaded = zicht_node::config::load(&config, &|name: &str| env.get(name).cloned())
                .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
            assert_eq!(loaded.node, node.name);
            // The manifest names this node by the host its certificate carries.
            let own = loaded
                .manifest
                .iter()
                .find(|p| p.node == node.name)
                .unwrap();
            assert!(own.address.host().ends_with(code), "{}", own.address);
            assert_eq!(loaded.settings.listen.port(), node.ports.grpc);
            assert_eq!(
                loaded.settings.health_listen.map(|a| a.port()),
                Some(node.ports.health)
            );
            assert_eq!(
                loaded.settings.metrics_listen.map(|a| a.port()),
                Some(node.ports.metrics)
            );
        }
    }
}

fn yaml(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn every_yaml(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            every_yaml(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
}

fn int(value: &Yaml) -> u16 {
    u16::try_from(value.as_i64().unwrap()).unwrap()
}

/// The `ZICHT_*` variable of every config key, and the ones every command reads.
fn known_variables() -> Vec<String> {
    let mut known: Vec<String> = zicht_node::config::KEYS
        .iter()
        .map(|key| zicht_node::config::env_var(key))
        .collect();
    known.push("ZICHT_LOG_FORMAT".to_owned());
    known
}

#[test]
fn kubernetes_manifests_parse_and_agree_with_the_node_configs() {
    let mut files = Vec::new();
    every_yaml(&deploy().join("kubernetes"), &mut files);
    assert!(files.len() >= 6 + 17, "{files:?}");
    for file in &files {
        assert!(!yaml(file).is_empty(), "{}", file.display());
    }
    let base = deploy().join("kubernetes/base");
    let deployment = &yaml(&base.join("deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // The base's named ports in the order the overlays patch them, and probes on the health port.
    let ports: Vec<(&str, u16)> = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), int(&p["containerPort"])))
        .collect();
    assert_eq!(ports, [("grpc", 7401), ("health", 8401), ("metrics", 9401)]);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(int(&container[probe]["grpc"]["port"]), 8401, "{probe}");
    }
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(1));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(
        container["env"][0]["name"].as_str(),
        Some("ZICHT_DATABASE_URL"),
        "overlays patch env/0"
    );
    for env in container["env"].as_vec().unwrap() {
        assert!(known_variables().contains(&env["name"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        pod["volumes"][2]["secret"]["secretName"].as_str(),
        Some("zicht-tls"),
        "overlays patch volumes/2"
    );
    // The mounts are where the generated node configs look.
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    // Before the node, migrate creates or upgrades its database with the same config, env and
    // mounts (a node never creates its database).
    let migrate = &pod["initContainers"][0];
    let args: Vec<&str> = migrate["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["migrate", "--config", "/etc/zicht/config/node.toml"]);
    assert_eq!(migrate["env"], container["env"]);
    assert_eq!(migrate["securityContext"], container["securityContext"]);
    for mount in migrate["volumeMounts"].as_vec().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert_eq!(mount["mountPath"].as_str(), Some(mounts[name]), "{name}");
    }
    let sample = nodes().remove(0);
    let paths = kubernetes_paths(&sample);
    assert!(paths.policy.starts_with(mounts["config"]));
    assert!(paths.manifest.starts_with(mounts["federation"]));
    assert!(paths.tls.iter().all(|p| p.starts_with(mounts["tls"])));
    assert!(paths.state.starts_with(mounts["data"]));
    // The Service's ports in the order the overlays patch them.
    let service = &yaml(&base.join("service.yaml"))[0];
    let names: Vec<&str> = service["spec"]["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["grpc", "metrics"]);
    // Each overlay patches the ports its node config listens on.
    for node in nodes() {
        let overlay = &yaml(
            &deploy()
                .join("kubernetes/overlays")
                .join(node.name.code())
                .join("kustomization.yaml"),
        )[0];
        assert_eq!(
            overlay["nameSuffix"].as_str(),
            Some(format!("-{}", node.name.code()).as_str())
        );
        // A regional node has the import path (a drop volume and a CronJob); a network node,
        // which holds no youth data, has not.
        let components: Vec<&str> = overlay["components"]
            .as_vec()
            .map(|c| c.iter().filter_map(|c| c.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            components == ["../../components/import"],
            matches!(node.name, NodeName::Region(_)),
            "{}",
            node.name.code()
        );
        let patches = overlay["patches"].as_vec().unwrap();
        let deployment_patch = YamlLoader::load_from_str(patches[0]["patch"].as_str().unwrap())
            .unwrap()
            .remove(0);
        let value = |path: &str| {
            deployment_patch
                .as_vec()
                .unwrap()
                .iter()
                .find(|op| op["path"].as_str() == Some(path))
                .map(|op| int(&op["value"]))
        };
        let at = "/spec/template/spec/containers/0";
        assert_eq!(
            value(&format!("{at}/ports/0/containerPort")),
            Some(node.ports.grpc)
        );
        assert_eq!(
            value(&format!("{at}/ports/1/containerPort")),
            Some(node.ports.health)
        );
        assert_eq!(
            value(&format!("{at}/readinessProbe/grpc/port")),
            Some(node.ports.health)
        );
    }
}

#[test]
fn the_compose_file_parses_and_agrees_with_the_node_configs() {
    let compose = &yaml(&deploy().join("compose/compose.yaml"))[0];
    let services = &compose["services"];
    let nodes = nodes();
    for code in COMPOSE {
        let node = nodes.iter().find(|n| n.name.code() == code).unwrap();
        let service = &services[code];
        // Its config is one of the generated ones, where the deploy/ mount puts it.
        let command: Vec<&str> = service["command"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(
            command,
            [
                "node",
                "--config",
                &format!("/etc/zicht/deploy/compose/nodes/{code}.toml")
            ]
        );
        // A node never creates its database: a one-shot service did, before it starts.
        let depends = &service["depends_on"];
        let creator = ["import", "migrate"]
            .iter()
            .map(|kind| format!("{kind}-{code}"))
            .find(|name| !depends[name.as_str()].is_badvalue())
            .unwrap_or_else(|| panic!("{code}: no import-{code} or migrate-{code} first"));
        assert_eq!(
            depends[creator.as_str()]["condition"].as_str(),
            Some("service_completed_successfully")
        );
        let creates = services[creator.as_str()]["command"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            creates.contains("zicht import") || creates.starts_with("migrate --config"),
            "{creates}"
        );
        let volumes: Vec<&str> = service["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(volumes.contains(&"../:/etc/zicht/deploy:ro"), "{volumes:?}");
        assert!(volumes.contains(&"pki:/etc/zicht/pki:ro"), "{volumes:?}");
        assert!(volumes.contains(&format!("state-{code}:/var/lib/zicht").as_str()));
        // Its mutual-TLS port on the host, its health check on its probe port.
        let published = format!("127.0.0.1:{0}:{0}", node.ports.grpc);
        assert_eq!(service["ports"][0].as_str(), Some(published.as_str()));
        let check: Vec<&str> = service["healthcheck"]["test"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let probe = format!("127.0.0.1:{}", node.ports.health);
        assert_eq!(check, ["CMD", "zicht", "health", probe.as_str()]);
        // Its variables are config keys; a region's database is its own PostgreSQL.
        if let Some(env) = service["environment"].as_hash() {
            for (name, value) in env {
                let name = name.as_str().unwrap();
                assert!(
                    known_variables().contains(&name.to_owned()),
                    "{code}: {name}"
                );
                if name == "ZICHT_DATABASE_URL" {
                    let database = value.as_str().unwrap();
                    assert!(
                        database.contains(&format!("@postgres-{code}:5432/")),
                        "{database}"
                    );
                    assert!(!services[format!("postgres-{code}").as_str()].is_badvalue());
                }
            }
        }
    }
    // The analyst's profile inside compose: its manifest and its certificates where the
    // drenthe service mounts them.
    let env = BTreeMap::<String, String>::new();
    let profile = zicht_node::config::load_client(
        &deploy().join("compose/clients/analyst-drenthe.toml"),
        &|name: &str| env.get(name).cloned(),
    );
    match profile {
        Ok(profile) => assert_eq!(profile.manifest.len(), COMPOSE.len()),
        // Outside a container the dev PKI's files are not there; everything else was read.
        Err(error) => assert!(
            error.key.starts_with("tls.") && error.reason.contains("/etc/zicht/pki/"),
            "{error}"
        ),
    }
    // The analysts' manifest on the host lists the ports compose publishes.
    let host = std::fs::read_to_string(deploy().join("federation.toml")).unwrap();
    for code in COMPOSE {
        let node = nodes.iter().find(|n| n.name.code() == code).unwrap();
        assert!(host.contains(&format!("address = \"127.0.0.1:{}\"", node.ports.grpc)));
    }
}

/// The unit's `Key=value` lines.
fn unit_settings(text: &str) -> BTreeMap<&str, Vec<&str>> {
    let mut settings: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let (key, value) = line.split_once('=').unwrap();
        settings.entry(key).or_default().push(value);
    }
    settings
}

#[test]
fn the_systemd_unit_is_hardened_fits_the_connection_cap_and_verifies() {
    let path = deploy().join("systemd/zicht-node@.service");
    let text = std::fs::read_to_string(&path).unwrap();
    let unit = unit_settings(&text);
    assert_eq!(
        unit["ExecStart"],
        ["/usr/local/bin/zicht node --config /etc/zicht/%i.toml"]
    );
    // The node never creates its database; migrate creates or upgrades it first.
    assert_eq!(
        unit["ExecStartPre"],
        ["/usr/local/bin/zicht migrate --config /etc/zicht/%i.toml"]
    );
    assert_eq!(unit["ExecReload"], ["/bin/kill -HUP $MAINPID"]);
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(unit[key], [value], "{key}");
    }
    assert_eq!(unit["StateDirectory"], ["zicht/%i"]);
    // The import runs as the node's user, on its config, from its drop folder.
    let import = std::fs::read_to_string(deploy().join("systemd/zicht-import@.service")).unwrap();
    let import = unit_settings(&import);
    assert_eq!(unit["User"], ["zicht-%i"]);
    assert_eq!(import["User"], unit["User"]);
    assert_eq!(
        import["ExecStart"],
        ["/usr/local/bin/zicht import --config /etc/zicht/%i.toml --folder /var/lib/zicht-import/%i --archive"]
    );
    // The node keeps 128 descriptors beside its connection cap (transport/accept.rs).
    let nofile: usize = unit["LimitNOFILE"][0].parse().unwrap();
    assert!(nofile >= zicht_node::Limits::default().max_connections + 128);

    // systemd's own check, of the unit with the binary this test was built with.
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/zicht");
    let binary = if binary.exists() {
        binary
    } else {
        PathBuf::from("/bin/true")
    };
    let mut instances = Vec::new();
    for (unit, name) in [
        ("zicht-node@.service", "zicht-node@drenthe.service"),
        ("zicht-import@.service", "zicht-import@drenthe.service"),
        ("zicht-import@.path", "zicht-import@drenthe.path"),
    ] {
        let text = std::fs::read_to_string(deploy().join("systemd").join(unit)).unwrap();
        let instance = dir.path().join(name);
        std::fs::write(
            &instance,
            text.replace("/usr/local/bin/zicht", &binary.display().to_string()),
        )
        .unwrap();
        instances.push(instance);
    }
    let verified = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&instances)
        .output()
        .expect("systemd-analyze (Debian's systemd package; .ci/run installs it)");
    let complaints = String::from_utf8_lossy(&verified.stderr);
    assert!(
        verified.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
}
