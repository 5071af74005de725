//! `zicht demo`: a whole federation on loopback. It makes a dev PKI, generates and imports
//! synthetic data for all 14 regions (one embedded SQLite database each), starts the 14
//! regional nodes and the 3 network aggregators over mutual TLS, and asks the headline
//! questions of the supra-regional plans as their analysts would, with the coverage of every
//! answer. Then it exits (`--once`) or keeps the federation running for `zicht query`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use zicht_model::{CodeList, Landsdeel, Network, NodeName, Region};
use zicht_node::config::{load_client, ClientProfile};
use zicht_node::ManifestPeer;
use zicht_node::{NodeSettings, RunningNode};
use zicht_proto::v1 as pb;
use zicht_store::import::{import_file, ImportOptions};
use zicht_store::{Store, Summary};

use crate::format::Format;
use crate::output::render_federated;

/// The federation's policies, as deploy/policies/ ships them (each region owns its own).
const POLICIES: [(&str, &str); 17] = [
    (
        "drenthe",
        include_str!("../../../deploy/policies/drenthe.toml"),
    ),
    (
        "friesland",
        include_str!("../../../deploy/policies/friesland.toml"),
    ),
    (
        "groningen",
        include_str!("../../../deploy/policies/groningen.toml"),
    ),
    (
        "twente",
        include_str!("../../../deploy/policies/twente.toml"),
    ),
    (
        "ijsselland",
        include_str!("../../../deploy/policies/ijsselland.toml"),
    ),
    (
        "amsterdam-amstelland",
        include_str!("../../../deploy/policies/amsterdam-amstelland.toml"),
    ),
    (
        "zaanstreek-waterland",
        include_str!("../../../deploy/policies/zaanstreek-waterland.toml"),
    ),
    (
        "zuid-kennemerland",
        include_str!("../../../deploy/policies/zuid-kennemerland.toml"),
    ),
    (
        "ijmond",
        include_str!("../../../deploy/policies/ijmond.toml"),
    ),
    (
        "haarlemmermeer",
        include_str!("../../../deploy/policies/haarlemmermeer.toml"),
    ),
    (
        "alkmaar",
        include_str!("../../../deploy/policies/alkmaar.toml"),
    ),
    (
        "kop-van-noord-holland",
        include_str!("../../../deploy/policies/kop-van-noord-holland.toml"),
    ),
    (
        "west-friesland",
        include_str!("../../../deploy/policies/west-friesland.toml"),
    ),
    (
        "gooi-en-vechtstreek",
        include_str!("../../../deploy/policies/gooi-en-vechtstreek.toml"),
    ),
    ("jenn", include_str!("../../../deploy/policies/jenn.toml")),
    (
        "ben-nh",
        include_str!("../../../deploy/policies/ben-nh.toml"),
    ),
    (
        "overijssel",
        include_str!("../../../deploy/policies/overijssel.toml"),
    ),
];

/// Runs the demo in `dir`; with `once`, stops the federation after the headline queries.
pub async fn run(dir: &Path, seed: u64, once: bool) -> anyhow::Result<()> {
    println!(
        "zicht demo: 14 jeugdhulpregio nodes and 3 network aggregators on loopback, mutual TLS, \
         synthetic data (seed {seed})"
    );
    println!("folder: {}\n", dir.display());
    let started = Instant::now();
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolve {}", dir.display()))?;
    let pki = zicht_pki::write_dev_federation(&dir.join("pki"), crate::now())
        .context("create the dev PKI")?;
    let (summaries, rows_imported) = import_regions(&dir, seed).await?;
    print_regions(&summaries);
    println!(
        "\ngenerated and imported {rows_imported} rows into 14 databases in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut federation = start_federation(&dir, &pki, seed).await?;
    println!(
        "started {} nodes on 127.0.0.1 (manifest: {})\n",
        federation.nodes.len(),
        dir.join("federation.toml").display()
    );
    let asked = headlines(&dir, &mut federation).await;
    if let Err(error) = &asked {
        eprintln!("demo query failed: {error:#}");
    }
    if once {
        federation.stop().await;
        return asked;
    }
    println!(
        "the federation keeps running (friesland's node stays stopped, as in question 10); ask it from another terminal, e.g.:"
    );
    println!(
        "  zicht query youth_in_care --client {} --node jenn --purpose bovenregionale-sturing --period 2025 --by stay_group",
        client_path(&dir, Region::Drenthe).display()
    );
    println!(
        "  zicht query capacity --client {} --purpose capaciteitsmonitoring --peildatum 2025-07-01 --by placement_region",
        client_path(&dir, Region::Twente).display()
    );
    // The monitor, as drenthe's analyst and as the auditor (each on a free loopback port).
    let monitors = start_monitors(&dir).await?;
    println!("the monitor (zicht web), in a browser:");
    for (who, monitor, start) in &monitors {
        println!("  {who}: http://{}{start}", monitor.address);
    }
    println!("stop it with Ctrl-C");
    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    for (_, monitor, _) in monitors {
        monitor.stop().await;
    }
    federation.stop().await;
    asked
}

/// Starts the monitor for drenthe's analyst and for the auditor, each with the page it opens
/// on (with the demo data's year and peildatum).
async fn start_monitors(
    dir: &Path,
) -> anyhow::Result<Vec<(&'static str, crate::web::RunningMonitor, &'static str)>> {
    let environment = |name: &str| std::env::var(name).ok();
    let mut monitors = Vec::new();
    for (who, profile, start) in [
        (
            "drenthe's analyst",
            client_path(dir, Region::Drenthe),
            "/capacity?peildatum=2025-07-01",
        ),
        ("the auditor", auditor_path(dir), "/audit/chains"),
    ] {
        let profile = zicht_node::config::load_client(&profile, &environment)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port for the monitor")?;
        monitors.push((who, crate::web::start(profile, listener)?, start));
    }
    Ok(monitors)
}

async fn import_regions(dir: &Path, seed: u64) -> anyhow::Result<(Vec<(Region, Summary)>, u64)> {
    let mut summaries = Vec::new();
    let mut rows_imported = 0;
    for &region in Region::ALL {
        let region_dir = dir.join(region.code());
        let config = zicht_synth::Config::new(region, seed);
        let generate_dir = region_dir.clone();
        tokio::task::spawn_blocking(move || zicht_synth::generate_to_dir(&config, &generate_dir))
            .await
            .context("generate synthetic data")?
            .with_context(|| format!("write {}", region_dir.display()))?;
        let database = region_dir.join("region.db");
        remove_database(&database)?;
        let store = Store::open(&database.display().to_string())
            .await
            .with_context(|| format!("open {}", database.display()))?;
        // A re-run replaces what the last one imported, so the demo always shows the same.
        for name in zicht_synth::FILE_NAMES {
            let report = import_file(
                &store,
                &region_dir.join(name),
                None,
                ImportOptions {
                    replace: true,
                    ..Default::default()
                },
                &mut (),
            )
            .await?;
            rows_imported += report.rows;
        }
        summaries.push((region, store.summary().await?));
        store.close().await;
    }
    Ok((summaries, rows_imported))
}

/// Removes a demo database (and SQLite's side files), so a re-run starts from the same state:
/// the same data, and release logs and ledgers as fresh as the data.
fn remove_database(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("remove {}", file.display()));
            }
        }
    }
    Ok(())
}

/// The running federation of the demo.
struct Federation {
    nodes: Vec<(NodeName, RunningNode)>,
}

impl Federation {
    async fn stop_node(&mut self, node: NodeName) {
        if let Some(position) = self.nodes.iter().position(|(n, _)| *n == node) {
            let (_, running) = self.nodes.remove(position);
            running.stop().await;
        }
    }

    async fn stop(self) {
        for (_, running) in self.nodes {
            running.stop().await;
        }
    }
}

fn client_path(dir: &Path, region: Region) -> PathBuf {
    dir.join("clients")
        .join(format!("analyst-{}.toml", region.code()))
}

fn coordinator_path(dir: &Path, network: zicht_model::Network) -> PathBuf {
    dir.join("clients")
        .join(format!("coordinator-{}.toml", network.code()))
}

fn team_path(dir: &Path) -> PathBuf {
    dir.join("clients").join("team-ijsselland.toml")
}

/// A demo region's data-subject key file (made on first start, kept between runs: the
/// youths' reports of earlier runs' releases stay readable).
fn subject_key_path(dir: &Path, region: Region) -> PathBuf {
    dir.join(region.code()).join("subject-key")
}

fn auditor_path(dir: &Path) -> PathBuf {
    dir.join("clients").join("auditor.toml")
}

/// A client profile of `person` of the dev PKI, asking `node` by default.
fn client_profile(
    pki: &zicht_pki::DevFederation,
    manifest: &Path,
    comment: &str,
    node: NodeName,
    person: &str,
) -> String {
    let (cert, key) = pki.person(person);
    let tls = zicht_node::TlsFiles {
        ca: pki.ca_cert(),
        cert,
        key,
        crl: Some(pki.crl()),
    };
    zicht_node::config::client_profile_text(comment, node, manifest, &tls)
}

/// Binds every node's port, writes the manifest and a client profile per region's analyst,
/// then starts all 17 nodes.
async fn start_federation(
    dir: &Path,
    pki: &zicht_pki::DevFederation,
    seed: u64,
) -> anyhow::Result<Federation> {
    let mut listeners = Vec::new();
    let mut manifest = Vec::new();
    for node in NodeName::all() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port")?;
        let address = listener.local_addr().context("read the bound port")?;
        manifest.push(ManifestPeer {
            node,
            address: address.into(),
            peer_id: node.dev_peer_id(),
        });
        listeners.push((node, listener));
    }
    let manifest_text = zicht_node::config::manifest_text(
        "Federation manifest of this demo run: every node's address and PeerID.",
        &manifest,
    );
    let manifest_path = dir.join("federation.toml");
    std::fs::write(&manifest_path, manifest_text).context("write the manifest")?;
    write_profiles(dir, pki, &manifest_path)?;
    let mut nodes = Vec::new();
    for (node, listener) in listeners {
        let running = start_node(dir, pki, seed, &manifest, node, listener).await?;
        nodes.push((node, running));
    }
    Ok(Federation { nodes })
}

/// The client profiles of the demo's people: each region's analyst, each network's
/// coordinator, IJsselland's lokaal team and an auditor.
fn write_profiles(
    dir: &Path,
    pki: &zicht_pki::DevFederation,
    manifest_path: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("clients")).context("create the clients folder")?;
    for &region in Region::ALL {
        let comment = format!(
            "The data team of {} asks its own node; `--node jenn` asks an aggregator.",
            region.name_nl()
        );
        let person = format!("analyst-{}", region.code());
        let profile = client_profile(
            pki,
            manifest_path,
            &comment,
            NodeName::Region(region),
            &person,
        );
        std::fs::write(client_path(dir, region), profile).context("write a client profile")?;
    }
    for &network in zicht_model::Network::ALL {
        let comment = format!(
            "The coordinator of {} (role coordinator) asks bovenregionaal questions through the network's node.",
            network.name_nl()
        );
        let person = format!("coordinator-{}", network.code());
        let profile = client_profile(
            pki,
            manifest_path,
            &comment,
            NodeName::Network(network),
            &person,
        );
        std::fs::write(coordinator_path(dir, network), profile)
            .context("write a coordinator's client profile")?;
    }
    let comment = "The lokaal team of IJsselland (role team): receives the records youths consented to give it.";
    let profile = client_profile(
        pki,
        manifest_path,
        comment,
        NodeName::Region(Region::Ijsselland),
        "team-ijsselland",
    );
    std::fs::write(team_path(dir), profile).context("write the team's client profile")?;
    let comment = "An auditor (role auditor): reads every node's audit logs, never data.";
    let profile = client_profile(
        pki,
        manifest_path,
        comment,
        NodeName::Region(Region::Drenthe),
        "auditor",
    );
    std::fs::write(auditor_path(dir), profile).context("write the auditor's client profile")?;
    Ok(())
}

/// Starts one demo node on its bound `listener`: its policy from deploy/policies, its database
/// (a region's imported one; an aggregator's a fresh release log), the seed's record-key
/// secret and a kept data-subject key.
async fn start_node(
    dir: &Path,
    pki: &zicht_pki::DevFederation,
    seed: u64,
    manifest: &[ManifestPeer],
    node: NodeName,
    listener: TcpListener,
) -> anyhow::Result<RunningNode> {
    let policy_text = POLICIES
        .iter()
        .find(|(name, _)| *name == node.code())
        .map(|(_, text)| *text)
        .context("a policy for every node")?;
    let policy = zicht_node::policy::parse_policy(policy_text, None)
        .map_err(|problems| anyhow::anyhow!("policy of {node}: {}", problems[0].message))?;
    let database = match node {
        NodeName::Region(region) => dir.join(region.code()).join("region.db"),
        NodeName::Network(network) => {
            // An aggregator's database holds only its release log.
            let folder = dir.join(network.code());
            std::fs::create_dir_all(&folder).context("create an aggregator's folder")?;
            let database = folder.join("log.db");
            remove_database(&database)?;
            database
        }
    };
    let store = Store::open(&database.display().to_string())
        .await
        .with_context(|| format!("open {}", database.display()))?;
    let mut settings = NodeSettings {
        listen: listener.local_addr().context("read the bound port")?,
        ..NodeSettings::dev(pki, node, policy, manifest.to_vec())
    };
    if let NodeName::Region(region) = node {
        let (key, _) =
            zicht_node::secret::load_or_create_subject_key(&subject_key_path(dir, region))
                .map_err(|e| anyhow::anyhow!("data-subject key of {region}: {e}"))?;
        settings.disclosure = settings
            .disclosure
            .with_secret(demo_secret(seed, region))
            .with_subject_key(key);
    }
    zicht_node::start_on(settings, listener, Some(store))
        .await
        .with_context(|| format!("start node {node}"))
}

/// A demo region's record-key secret, derived from the seed so that the same seed publishes the
/// same (perturbed) numbers in every run and folder. Only for synthetic data: a real node's
/// secret is random (`zicht privacy init`, or made on first start).
fn demo_secret(seed: u64, region: Region) -> zicht_privacy::RecordKeySecret {
    let digest = zicht_audit::sha256_hex(format!("zicht demo secret {seed} {region}").as_bytes());
    let mut bytes = [0u8; 32];
    // A SHA-256 in hex is 64 hex digits: it always decodes.
    let _ = hex::decode_to_slice(digest, &mut bytes);
    zicht_privacy::RecordKeySecret::from_bytes(bytes)
}

fn query(
    template: &str,
    purpose: &str,
    scope: pb::query_request::Scope,
    filters: &[(&str, &[&str])],
    group_by: &[&str],
) -> pb::QueryRequest {
    pb::QueryRequest {
        template: template.to_owned(),
        template_version: 1,
        purpose: purpose.to_owned(),
        scope: Some(scope),
        filters: filters
            .iter()
            .map(|(dimension, values)| pb::Filter {
                dimension: (*dimension).to_owned(),
                values: values.iter().map(|v| (*v).to_owned()).collect(),
                exclude: false,
            })
            .collect(),
        group_by: group_by.iter().map(|d| (*d).to_owned()).collect(),
        fields: Vec::new(),
    }
}

fn period(from: (i32, i32, i32), to: (i32, i32, i32)) -> pb::query_request::Scope {
    let date = |(year, month, day)| pb::Date { year, month, day };
    pb::query_request::Scope::Period(pb::Period {
        from: Some(date(from)),
        to: Some(date(to)),
    })
}

fn peildatum(year: i32, month: i32, day: i32) -> pb::query_request::Scope {
    pb::query_request::Scope::Peildatum(pb::Date { year, month, day })
}

async fn ask(
    profile: &ClientProfile,
    node: NodeName,
    query: pb::QueryRequest,
    peers: &[Region],
) -> anyhow::Result<pb::FederatedResult> {
    let request = pb::FederatedQueryRequest {
        query: Some(query),
        peers: peers.iter().map(|r| r.code().to_owned()).collect(),
        network: String::new(),
    };
    crate::query::ask(profile, node, request, Duration::from_secs(10)).await
}

fn section(number: u32, title: &str, how: &str) {
    println!("== {number}. {title}");
    println!("   {how}\n");
}

/// The analysts the demo asks as: of Drenthe, Amsterdam-Amstelland and Twente.
struct Analysts {
    drenthe: ClientProfile,
    amsterdam: ClientProfile,
    twente: ClientProfile,
}

const JENN: NodeName = NodeName::Network(Network::Jenn);

/// The headline questions of the supra-regional plans, asked as their analysts would, one
/// step per question.
async fn headlines(dir: &Path, federation: &mut Federation) -> anyhow::Result<()> {
    let no_env = |_: &str| None;
    let profile = |region| load_client(&client_path(dir, region), &no_env);
    let analysts = Analysts {
        drenthe: profile(Region::Drenthe)?,
        amsterdam: profile(Region::AmsterdamAmstelland)?,
        twente: profile(Region::Twente)?,
    };
    capacity_per_landsdeel(&analysts).await?;
    let jhp = jeugdhulp_plus_via_jenn(&analysts).await?;
    uitstroom_via_ben_nh(&analysts).await?;
    toekomstplan_per_overijssel_region(&analysts).await?;
    let coordinator = |network| load_client(&coordinator_path(dir, network), &no_env);
    let coordinators = Coordinators {
        jenn: coordinator(Network::Jenn)?,
        ben_nh: coordinator(Network::BenNh)?,
    };
    coordinators.ask().await?;
    differencing_attempt(&analysts).await?;
    let trace_id = a_region_goes_down(&analysts, federation, jhp).await?;
    auditor_follows(dir, &trace_id).await?;
    warme_overdracht(dir).await
}

/// How many Twente youths the demo's consents name (question 12).
pub const CONSENTING_YOUTHS: usize = 5;

/// Question 12: the lokaal team of IJsselland fetches the 18+ records consented to it from
/// Twente; one youth withdraws; the team asks again; that youth's own report.
async fn warme_overdracht(dir: &Path) -> anyhow::Result<()> {
    section(
        12,
        "Warme overdracht: a lokaal team fetches the 18+ records youths consented to give it",
        "the lokaal team of IJsselland asks its own node, which asks Twente; Twente releases only consented fields, under a pseudonym for the team",
    );
    let database = dir.join("twente").join("region.db").display().to_string();
    let store = Store::connect(&database)
        .await
        .context("open Twente's database")?;
    let youths = consent_to_team(dir, &store).await?;
    let team = load_client(&team_path(dir), &|_: &str| None)?;
    let records = || {
        let mut query = query(
            "consented_records",
            "warme-overdracht",
            peildatum(2025, 7, 1),
            &[],
            &[],
        );
        query.scope = None;
        query
    };
    let ijsselland = NodeName::Region(Region::Ijsselland);
    let answer = ask(&team, ijsselland, records(), &[Region::Twente]).await?;
    print!("{}", render_federated(&answer, Format::Table));
    println!();
    let first = youths.first().context("a consenting youth")?;
    let revoked = store
        .revoke_consent("DEMO1", zicht_node::audit::now_ms())
        .await
        .context("revoke a consent")?;
    anyhow::ensure!(
        revoked == zicht_store::Revoked::Now,
        "the demo's consent DEMO1 was not revoked: {revoked:?}"
    );
    println!(
        "one youth withdraws their consent (zicht consent revoke --database {database} DEMO1); the team asks again:"
    );
    let again = ask(&team, ijsselland, records(), &[Region::Twente]).await?;
    let count = |answer: &pb::FederatedResult| {
        answer
            .result
            .as_ref()
            .map_or(0, |r| r.placements.len() + r.transition18.len())
    };
    println!(
        "  {} records before, {} now
",
        count(&answer),
        count(&again)
    );
    println!(
        "that youth's own report (zicht consent report --database {database} --youth-id <id> --subject-key {}):",
        subject_key_path(dir, Region::Twente).display()
    );
    let key = zicht_node::secret::read_subject_key(&subject_key_path(dir, Region::Twente))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = crate::consent::Report::read(&store, first, &key).await?;
    print!("{}", report.table());
    store.close().await;
    println!();
    Ok(())
}

/// Consents of [`CONSENTING_YOUTHS`] Twente youths with one 18+ check each, for the lokaal
/// team of IJsselland (warme overdracht: they move there at 18), granted a month ago; returns
/// the youths, in consent order (`DEMO1`, ...).
async fn consent_to_team(dir: &Path, store: &Store) -> anyhow::Result<Vec<String>> {
    let checks = std::fs::read_to_string(dir.join("twente").join("transition18.csv"))
        .context("read Twente's transition18.csv")?;
    let mut counted: std::collections::BTreeMap<&str, usize> = Default::default();
    for line in checks.lines().skip(1) {
        if let Some(youth) = line.split(',').next() {
            *counted.entry(youth).or_default() += 1;
        }
    }
    let youths: Vec<String> = counted
        .into_iter()
        .filter(|(_, checks)| *checks == 1)
        .map(|(youth, _)| youth.to_owned())
        .take(CONSENTING_YOUTHS)
        .collect();
    let pem = std::fs::read(team_pem(dir)).context("read the team's certificate")?;
    let team = zicht_pki::identity_of(&zicht_pki::pem_to_der(&pem)?)?.peer_id;
    let granted =
        zicht_model::Timestamp::from_millis(zicht_node::audit::now_ms() - 30 * 86_400_000);
    let mut csv = zicht_model::Consent::COLUMNS.join(",");
    for (i, youth) in youths.iter().enumerate() {
        let _ = write!(
            csv,
            "\nDEMO{},{youth},warme-overdracht,{team},check_date|toekomstplan|after18_funding|big5_wonen|big5_werk_school,{granted},,,demo/{}",
            i + 1,
            i + 1
        );
    }
    csv.push('\n');
    let file = dir.join("twente").join("demo-consents.csv");
    std::fs::write(&file, csv).context("write the demo's consents")?;
    let table = Some(zicht_store::import::Table::Consents);
    import_file(store, &file, table, ImportOptions::default(), &mut ()).await?;
    Ok(youths)
}

fn team_pem(dir: &Path) -> PathBuf {
    dir.join("pki").join("people").join("team-ijsselland.pem")
}

async fn capacity_per_landsdeel(analysts: &Analysts) -> anyhow::Result<()> {
    section(
        1,
        "Capacity and occupancy per landsdeel (peildatum 2025-07-01)",
        "analyst of Drenthe asks its node, which asks all 14 regions (capacity is facility data, released exactly)",
    );
    let answer = ask(
        &analysts.drenthe,
        NodeName::Region(Region::Drenthe),
        query(
            "capacity",
            "capaciteitsmonitoring",
            peildatum(2025, 7, 1),
            &[],
            &["placement_region"],
        ),
        &[],
    )
    .await?;
    print_landsdelen(&answer);
    Ok(())
}

/// Question 2; returns its query, which question 10 asks again.
async fn jeugdhulp_plus_via_jenn(analysts: &Analysts) -> anyhow::Result<pb::QueryRequest> {
    section(
        2,
        "JeugdhulpPlus: youths in care in 2025 by origin region, via JENN",
        "analyst of Drenthe asks the jenn aggregator, which asks Drenthe, Friesland and Groningen",
    );
    let jhp = query(
        "youth_in_care",
        "bovenregionale-sturing",
        period((2025, 1, 1), (2025, 12, 31)),
        &[
            ("stay_group", &["jeugdhulp_plus"]),
            ("origin_region", &["drenthe", "friesland", "groningen"]),
        ],
        &["origin_region"],
    );
    let answer = ask(&analysts.drenthe, JENN, jhp.clone(), &[]).await?;
    print!("{}", render_federated(&answer, Format::Table));
    println!();
    Ok(jhp)
}

async fn uitstroom_via_ben_nh(analysts: &Analysts) -> anyhow::Result<()> {
    section(
        3,
        "Where youths leaving open residential care went in 2025, via BEN-NH",
        "analyst of Amsterdam-Amstelland asks the ben-nh aggregator, which asks the nine Noord-Holland regions",
    );
    let answer = ask(
        &analysts.amsterdam,
        NodeName::Network(Network::BenNh),
        query(
            "flows",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[
                ("flow_kind", &["uitstroom"]),
                ("care_type", &["open_residentieel"]),
            ],
            &["outflow_destination"],
        ),
        &[],
    )
    .await?;
    print!("{}", render_federated(&answer, Format::Table));
    println!();
    Ok(())
}

async fn toekomstplan_per_overijssel_region(analysts: &Analysts) -> anyhow::Result<()> {
    section(
        4,
        "16- and 17-year-olds without a toekomstplan, per Overijssel region (peildatum 2025-07-01)",
        "analyst of Twente asks the overijssel aggregator once, listed per member region (--by member_region)",
    );
    let answer = ask(
        &analysts.twente,
        NodeName::Network(Network::Overijssel),
        query(
            "transition18",
            "18plus-monitoring",
            peildatum(2025, 7, 1),
            &[],
            &["member_region", "toekomstplan"],
        ),
        &[],
    )
    .await?;
    for member in [Region::Twente, Region::Ijsselland] {
        print_toekomstplan(member, &answer);
    }
    println!();
    Ok(())
}

/// The coordinators of JENN and BEN-NH, who ask through their network's node.
struct Coordinators {
    jenn: ClientProfile,
    ben_nh: ClientProfile,
}

impl Coordinators {
    /// Questions 5 to 8: the networks' own questions, as their coordinators ask them.
    async fn ask(&self) -> anyhow::Result<()> {
        let ben_nh = NodeName::Network(Network::BenNh);
        section(
            5,
            "Capacity and bezetting per provider across 3Noord (peildatum 2025-07-01); length of stay in JeugdhulpPlus",
            "the JENN coordinator asks the jenn node, which asks its members (facility data, released exactly; stays counted per band, which add)",
        );
        let capacity = query(
            "capacity",
            "capaciteitsmonitoring",
            peildatum(2025, 7, 1),
            &[],
            &["provider"],
        );
        let answer = ask(&self.jenn, JENN, capacity, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        println!();

        let stays = query(
            "length_of_stay",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[("stay_group", &["jeugdhulp_plus"])],
            &["stay_length"],
        );
        println!("length of stay of JeugdhulpPlus stays that ended in 2025, per band:");
        let answer = ask(&self.jenn, JENN, stays, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        println!();

        section(
            6,
            "Herkomst from the placing side: whose youths were in 3Noord's facilities in 2025",
            "the JENN coordinator asks every region how many of its youths were placed in Drenthe, Friesland or Groningen",
        );
        let placing = query(
            "youth_in_care",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[("placement_region", &["drenthe", "friesland", "groningen"])],
            &["origin_region"],
        );
        let answer = ask(&self.jenn, JENN, placing, Region::ALL).await?;
        print!("{}", render_federated(&answer, Format::Table));
        println!();

        section(
            7,
            "JeugdhulpPlus in 2025 via BEN-NH: uitstroom profiles of youths leaving it; separaties per facility; the share of its youths with a separatie",
            "the BEN-NH coordinator asks the ben-nh node, which asks the nine Noord-Holland regions (a region with fewer than 5 published youths refuses by rule)",
        );
        let jeugdhulp_plus: Vec<&str> = zicht_model::CareType::ALL
            .iter()
            .filter(|c| c.stay_group() == zicht_model::StayGroup::JeugdhulpPlus)
            .map(|c| c.code())
            .collect();
        let uitstroom = query(
            "flows",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[
                ("flow_kind", &["uitstroom"]),
                ("care_type", &jeugdhulp_plus),
            ],
            &["outflow_profile"],
        );
        let answer = ask(&self.ben_nh, ben_nh, uitstroom, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        let separaties = query(
            "measures",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[("measure_kind", &["separatie"])],
            &["facility"],
        );
        println!("youths with at least one separatie in 2025, per facility:");
        let answer = ask(&self.ben_nh, ben_nh, separaties, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        let share = query(
            "youth_in_care",
            "bovenregionale-sturing",
            period((2025, 1, 1), (2025, 12, 31)),
            &[("stay_group", &["jeugdhulp_plus"])],
            &["separatie"],
        );
        println!("JeugdhulpPlus youths in 2025 with (ja) and without (nee) a separatie:");
        let answer = ask(&self.ben_nh, ben_nh, share, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        println!();

        section(
            8,
            "The 16+ check per Noord-Holland region: toekomstplan; those without one by when they turn 18; the BIG5 domains (peildatum 2025-07-01)",
            "the BEN-NH coordinator asks once, listed per member region; then over all nine",
        );
        let check = query(
            "transition18",
            "18plus-monitoring",
            peildatum(2025, 7, 1),
            &[],
            &["member_region", "toekomstplan"],
        );
        let answer = ask(&self.ben_nh, ben_nh, check, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        let by_age = query(
            "transition18",
            "18plus-monitoring",
            peildatum(2025, 7, 1),
            &[("toekomstplan", &["nee"])],
            &["turns_18"],
        );
        let answer = ask(&self.ben_nh, ben_nh, by_age, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        let big5 = query(
            "transition18",
            "18plus-monitoring",
            peildatum(2025, 7, 1),
            &[],
            &["big5_domain", "big5_status"],
        );
        let answer = ask(&self.ben_nh, ben_nh, big5, &[]).await?;
        print!("{}", render_federated(&answer, Format::Table));
        println!();
        Ok(())
    }
}

async fn differencing_attempt(analysts: &Analysts) -> anyhow::Result<()> {
    section(
        9,
        "A differencing attempt: the same question once more, and with the period one day shorter",
        "analyst of Drenthe asks jenn for 2025 again (the same youths give the same counts), then for 2025-01-01..2025-12-30: every region refuses a period that is not whole months, with no count",
    );
    let year = query(
        "youth_in_care",
        "bovenregionale-sturing",
        period((2025, 1, 1), (2025, 12, 31)),
        &[],
        &["stay_group"],
    );
    let shorter = pb::QueryRequest {
        scope: Some(period((2025, 1, 1), (2025, 12, 30))),
        ..year.clone()
    };
    let first = ask(&analysts.drenthe, JENN, year.clone(), &[]).await?;
    let again = ask(&analysts.drenthe, JENN, year, &[]).await?;
    print!("{}", render_federated(&again, Format::Table));
    println!(
        "asked twice: {}",
        if first.result == again.result {
            "the same published counts both times"
        } else {
            "the counts differ (the members' data changed in between)"
        }
    );
    let answer = ask(&analysts.drenthe, JENN, shorter, &[]).await?;
    for line in crate::output::coverage_lines(&answer) {
        println!("{line}");
    }
    println!();
    Ok(())
}

/// Question 10: `jhp` again with Friesland stopped; returns the answer's trace id.
async fn a_region_goes_down(
    analysts: &Analysts,
    federation: &mut Federation,
    jhp: pb::QueryRequest,
) -> anyhow::Result<String> {
    section(
        10,
        "A region goes down: question 2 again with the Friesland node stopped",
        "the answer covers the regions that answered and names the one that did not",
    );
    federation
        .stop_node(NodeName::Region(Region::Friesland))
        .await;
    let answer = ask(&analysts.drenthe, JENN, jhp, &[]).await?;
    print!("{}", render_federated(&answer, Format::Table));
    println!();
    Ok(answer.trace_id)
}

async fn auditor_follows(dir: &Path, trace_id: &str) -> anyhow::Result<()> {
    section(
        11,
        "An auditor follows question 10 through every node it touched",
        &format!(
            "zicht audit trace {} --client {}: each node's records of the trace, how they link, and each node's own chain check",
            trace_id,
            auditor_path(dir).display()
        ),
    );
    let auditor = load_client(&auditor_path(dir), &|_: &str| None)?;
    let traces = crate::audit::trace(&auditor, trace_id).await;
    crate::audit::print_trace(trace_id, &traces)?;
    println!();
    Ok(())
}

fn statistic(row: &pb::ResultRow, name: &str) -> f64 {
    row.statistics
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.value)
        .unwrap_or(0.0)
}

fn print_landsdelen(answer: &pb::FederatedResult) {
    let rows = answer.result.as_ref().map_or(&[][..], |r| &r.rows[..]);
    println!(
        "{:<22} {:>8} {:>9} {:>7}",
        "landsdeel", "places", "occupied", "bezet%"
    );
    for &landsdeel in Landsdeel::ALL {
        let (places, occupied) = rows
            .iter()
            .filter(|row| {
                row.key
                    .first()
                    .and_then(|code| Region::from_code(code))
                    .is_some_and(|r| r.landsdeel() == landsdeel)
            })
            .fold((0.0, 0.0), |(p, o), row| {
                (p + statistic(row, "places"), o + statistic(row, "occupied"))
            });
        let rate = if places > 0.0 {
            format!("{:.0}%", 100.0 * occupied / places)
        } else {
            "-".to_owned()
        };
        println!(
            "{:<22} {places:>8.0} {occupied:>9.0} {rate:>7}",
            landsdeel.name()
        );
    }
    for line in crate::output::coverage_lines(answer) {
        println!("{line}");
    }
    println!();
}

/// One member's line of a `member_region, toekomstplan` answer: its published count without a
/// toekomstplan, of its published youths checked.
fn print_toekomstplan(region: Region, answer: &pb::FederatedResult) {
    let result = answer.result.clone().unwrap_or_default();
    let cell = |plan: &str| {
        result
            .rows
            .iter()
            .find(|row| row.key.len() == 2 && row.key[0] == region.code() && row.key[1] == plan)
            .and_then(|row| row.count.as_ref())
            .and_then(crate::output::published)
    };
    let status = answer
        .coverage
        .iter()
        .find(|p| p.node == region.code())
        .map_or("not asked", |p| {
            if p.status == pb::peer_status::Status::Answered as i32 {
                "answered"
            } else {
                "did not answer"
            }
        });
    let text = |value: Option<(u64, u32)>| {
        value.map_or_else(|| "-".to_owned(), |(n, b)| crate::output::bound_text(n, b))
    };
    let (without, with) = (cell("nee"), cell("ja"));
    let checked = without.zip(with).map(|((a, da), (b, db))| (a + b, da + db));
    println!(
        "{:<12} without toekomstplan: {:>6}   of {:>6} youths checked   ({status})",
        region.name_nl(),
        text(without),
        text(checked),
    );
}

fn row(name: &str, landsdeel: &str, s: &Summary) {
    let rate = if s.places > 0 {
        format!("{:.0}%", 100.0 * s.occupied as f64 / s.places as f64)
    } else {
        "-".to_owned()
    };
    println!(
        "{name:<22} {landsdeel:<15} {:>7} {:>10} {:>8} {:>7} {:>9} {:>6} {:>9} {:>6}",
        s.youths,
        s.placements,
        s.ongoing,
        s.transition18_checks,
        s.consents,
        s.places,
        s.occupied,
        rate
    );
}

fn print_regions(summaries: &[(Region, Summary)]) {
    println!(
        "{:<22} {:<15} {:>7} {:>10} {:>8} {:>7} {:>9} {:>6} {:>9} {:>6}",
        "region",
        "landsdeel",
        "youths",
        "placements",
        "ongoing",
        "16+chk",
        "consents",
        "places",
        "occupied",
        "bezet%"
    );
    for (region, summary) in summaries {
        row(region.name_nl(), region.landsdeel().name(), summary);
    }
}
