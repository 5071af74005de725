//! The monitor (`zicht web`) in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver, the `fantoccini` crate) against a federation on loopback with the regions'
//! own policies. Every page loads without console errors, every chart's numbers are those of
//! the same `zicht query --format json`, the query builder offers only granted dimensions, a
//! region going down shows in the coverage block, the trace explorer shows the nodes of a
//! trace, and neither role opens the other's pages. Screenshots of each page go to
//! `target/monitor-screenshots/`.
//!
//! `.ci/test` installs `chromium` and `chromium-driver` where they are missing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use zicht_model::{CodeList, Network, NodeName, Region, Template};
use zicht_testkit::federation::{Behaviour, Federation};

/// ChromeDriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; .ci/test installs it)");
    let driver = Driver { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return driver;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("chromedriver did not start");
}

/// A headless Chromium session that keeps the browser's console log.
async fn browser(driver: &Driver, profile_dir: &Path) -> Client {
    let options = serde_json::json!({
        "binary": "/usr/bin/chromium",
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,1600",
            format!("--user-data-dir={}", profile_dir.display()),
        ],
    });
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities.insert(
        "goog:loggingPrefs".into(),
        serde_json::json!({"browser": "ALL"}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

/// ChromeDriver's console log of the page (`POST /session/{id}/se/log`).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Opens `path`, checks the console stayed clean and saves a screenshot as `name`.
async fn open(browser: &Client, base: SocketAddr, path: &str, name: &str) -> String {
    visit(browser, base, path, name, None).await
}

/// Opens a page the monitor refuses with `status`: the browser logs that status for the page
/// itself, and nothing else.
async fn open_refused(
    browser: &Client,
    base: SocketAddr,
    path: &str,
    name: &str,
    status: u16,
) -> String {
    visit(browser, base, path, name, Some(status)).await
}

async fn visit(
    browser: &Client,
    base: SocketAddr,
    path: &str,
    name: &str,
    refused: Option<u16>,
) -> String {
    let url = format!("http://{base}{path}");
    browser.goto(&url).await.unwrap();
    let log = browser.issue_cmd(BrowserLog).await.unwrap();
    let own = refused.map(|status| {
        format!("{url} - Failed to load resource: the server responded with a status of {status}")
    });
    let errors: Vec<&serde_json::Value> = log
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .filter(|e| {
                    own.as_ref().is_none_or(|own| {
                        !e["message"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with(own.as_str())
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(errors.is_empty(), "{path}: console errors {errors:?}");
    let png = browser.screenshot().await.unwrap();
    let dir = screenshots();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    browser.source().await.unwrap()
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/monitor-screenshots")
}

/// The rows of the table of figure `id` (each row's cells as shown).
async fn table(browser: &Client, id: &str) -> Vec<Vec<String>> {
    let rows = browser
        .find_all(Locator::Css(&format!("figure#{id} tbody tr")))
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        let mut cells = Vec::new();
        for cell in row.find_all(Locator::Css("th, td")).await.unwrap() {
            cells.push(cell.text().await.unwrap());
        }
        out.push(cells);
    }
    out
}

/// `zicht query ... --format json` as the person of `profile`.
fn query_json(profile: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .arg("query")
        .args(args)
        .arg("--client")
        .arg(profile)
        .args(["--format", "json"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A JSON cell as the monitor writes it: `57 ±9`, or `57` when exact.
fn cell(value: &serde_json::Value) -> String {
    let n = value["value"].as_u64().unwrap();
    match value["max_deviation"].as_u64() {
        Some(bound) if n < bound => format!("{n} (0–{})", n + bound),
        Some(bound) => format!("{n} ±{bound}"),
        None => n.to_string(),
    }
}

/// Clicks the element `css` selects.
async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Asserts that figure `id` shows, in its second column, the published count of every row of
/// `zicht query TEMPLATE --node jenn --purpose bovenregionale-sturing --period 2024 --by DIM`.
async fn shows_the_query(
    browser: &Client,
    profile: &Path,
    id: &str,
    template: &str,
    dimension: &str,
) {
    let shown = table(browser, id).await;
    let json = query_json(
        profile,
        &[
            template,
            "--node",
            "jenn",
            "--purpose",
            "bovenregionale-sturing",
            "--period",
            "2024",
            "--by",
            dimension,
        ],
    );
    let rows = json["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let key = row["key"][dimension].as_str().unwrap();
        let line = shown
            .iter()
            .find(|l| l[0] == key)
            .unwrap_or_else(|| panic!("{id}: no row {key}"));
        assert_eq!(line[1], cell(&row["count"]), "{id}: {key}");
    }
}

/// A raw HTTP/1.1 exchange with the monitor (what a browser does not let a test send).
fn raw(address: SocketAddr, request: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn policy(code: &str) -> Behaviour {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/policies")
        .join(format!("{code}.toml"));
    Behaviour::Serve(std::fs::read_to_string(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_in_a_real_browser() {
    let nodes: Vec<(NodeName, Behaviour)> = [
        Region::Drenthe,
        Region::Friesland,
        Region::Groningen,
        Region::Twente,
        Region::Ijsselland,
    ]
    .iter()
    .map(|&r| (NodeName::Region(r), policy(r.code())))
    .chain([
        (NodeName::Network(Network::Jenn), policy("jenn")),
        (NodeName::Network(Network::Overijssel), policy("overijssel")),
    ])
    .collect();
    let mut f = Federation::start(&nodes).await;
    let dir = tempfile::tempdir().unwrap();
    let drenthe = NodeName::Region(Region::Drenthe);
    let analyst = f.write_profile("analyst-drenthe", drenthe, dir.path());
    let auditor = f.write_profile("auditor", drenthe, dir.path());
    let load = |path: &Path| zicht_node::config::load_client(path, &|_: &str| None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let analysts = zicht_cli::web::start(load(&analyst), listener).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let auditors = zicht_cli::web::start(load(&auditor), listener).unwrap();

    // What the browser cannot show: the guard's answers and headers.
    let base = analysts.address;
    let answer = raw(
        base,
        "GET /capacity HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    let answer = raw(base, &format!("GET /capacity HTTP/1.1\r\nHost: {base}\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // An older browser sends no Sec-Fetch-Site: its Origin or Referer must be the monitor's.
    for from in [
        "Origin: http://evil.example",
        "Origin: null",
        "Referer: http://evil.example/page",
    ] {
        let answer = raw(
            base,
            &format!(
                "GET /capacity HTTP/1.1\r\nHost: {base}\r\n{from}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 403"), "{from}: {answer}");
    }
    let answer = raw(base, &format!("GET /capacity?peildatum=2025-07-01 HTTP/1.1\r\nHost: {base}\r\nOrigin: http://{base}\r\nConnection: close\r\n\r\n"));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "its own origin: {answer}"
    );
    let answer = raw(base, &format!("POST /query HTTP/1.1\r\nHost: {base}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let answer = raw(
        base,
        &format!("GET / HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{answer}"
    );
    assert!(!answer.contains("<script"), "no JavaScript");

    let driver = tokio::task::spawn_blocking(driver).await.unwrap();
    let browser = browser(&driver, &dir.path().join("chromium")).await;

    // Capacity: the per-region table is the sum of the same query's rows per region.
    let page = open(&browser, base, "/capacity?peildatum=2025-07-01", "capacity").await;
    assert!(
        page.contains("Coverage of capacity: 5 of 5 regions answered"),
        "{page}"
    );
    let json = query_json(
        &analyst,
        &[
            "capacity",
            "--purpose",
            "capaciteitsmonitoring",
            "--peildatum",
            "2025-07-01",
            "--by",
            "placement_region",
            "--by",
            "care_type",
        ],
    );
    let mut places: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for row in json["rows"].as_array().unwrap() {
        let region = row["key"]["placement_region"].as_str().unwrap().to_owned();
        let entry = places.entry(region).or_default();
        entry.0 += row["statistics"]["places"].as_f64().unwrap();
        entry.1 += row["statistics"]["occupied"].as_f64().unwrap();
    }
    let shown = table(&browser, "region").await;
    assert_eq!(shown.len(), places.len());
    for row in &shown {
        let (p, o) = places[&row[0]];
        assert_eq!(
            (row[2].as_str(), row[3].as_str()),
            (format!("{p:.0}").as_str(), format!("{o:.0}").as_str()),
            "{row:?}"
        );
    }
    let csv = raw(base, &format!("GET /capacity?peildatum=2025-07-01&csv=region HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n"));
    for row in &shown {
        assert!(
            csv.contains(&row.join(",")),
            "the CSV is what is drawn: {row:?}\n{csv}"
        );
    }

    // Herkomst through jenn: every heat-map cell is the published count of the same query.
    let page = open(
        &browser,
        base,
        "/herkomst?period=2024&node=jenn",
        "herkomst",
    )
    .await;
    assert!(page.contains("3 of 3 regions answered"), "{page}");
    let json = query_json(
        &analyst,
        &[
            "youth_in_care",
            "--node",
            "jenn",
            "--purpose",
            "bovenregionale-sturing",
            "--period",
            "2024",
            "--by",
            "origin_region",
            "--by",
            "placement_region",
        ],
    );
    let shown = table(&browser, "herkomst").await;
    let header: Vec<String> = {
        let mut cells = Vec::new();
        for th in browser
            .find_all(Locator::Css("figure#herkomst thead th"))
            .await
            .unwrap()
        {
            cells.push(th.text().await.unwrap());
        }
        cells
    };
    let mut compared = 0;
    for row in json["rows"].as_array().unwrap() {
        let origin = row["key"]["origin_region"].as_str().unwrap();
        let placed = row["key"]["placement_region"].as_str().unwrap();
        let line = shown.iter().find(|l| l[0] == origin).unwrap();
        let column = header.iter().position(|h| h == placed).unwrap();
        assert_eq!(line[column], cell(&row["count"]), "{origin} -> {placed}");
        compared += 1;
    }
    assert!(compared >= 9, "{compared} cells");
    shows_the_query(
        &browser,
        &analyst,
        "landsdeel",
        "youth_in_care",
        "landsdeel_inside",
    )
    .await;

    // From the placing side: every region asked how many of its youths are placed in jenn's
    // facilities, by origin region; the same as the command line asks it.
    let placing = table(&browser, "placing").await;
    let mut args = vec![
        "youth_in_care",
        "--node",
        "jenn",
        "--purpose",
        "bovenregionale-sturing",
        "--period",
        "2024",
        "--filter",
        "placement_region=drenthe,friesland,groningen",
        "--by",
        "origin_region",
    ];
    for region in zicht_model::Region::ALL {
        args.extend(["--peer", region.code()]);
    }
    let json = query_json(&analyst, &args);
    let rows = json["rows"].as_array().unwrap();
    assert!(rows.len() >= 3, "{json}");
    for row in rows {
        let origin = row["key"]["origin_region"].as_str().unwrap();
        let line = placing
            .iter()
            .find(|l| l[0] == origin)
            .unwrap_or_else(|| panic!("placing: no row {origin}"));
        assert_eq!(line[1], cell(&row["count"]), "placing: {origin}");
    }

    // Flows: the bars are the same query's counts.
    open(&browser, base, "/flows?period=2024&node=jenn", "flows").await;
    shows_the_query(&browser, &analyst, "kinds", "flows", "flow_kind").await;

    // 18+: each region's share with a toekomstplan is the same query's ja / total.
    open(
        &browser,
        base,
        "/transition18?peildatum=2025-07-01&node=jenn",
        "transition18",
    )
    .await;
    let shares = table(&browser, "toekomstplan").await;
    for region in ["drenthe", "friesland", "groningen"] {
        let json = query_json(
            &analyst,
            &[
                "transition18",
                "--node",
                "jenn",
                "--peer",
                region,
                "--purpose",
                "18plus-monitoring",
                "--peildatum",
                "2025-07-01",
                "--by",
                "toekomstplan",
            ],
        );
        let total = json["total"]["value"].as_f64().unwrap();
        let ja = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"]["toekomstplan"] == "ja")
            .unwrap()["count"]["value"]
            .as_f64()
            .unwrap();
        let line = shares.iter().find(|l| l[0] == region).unwrap();
        assert_eq!(line[1], format!("{:.1}%", ja / total * 100.0), "{region}");
        assert_eq!(line[2], cell(&json["total"]));
    }

    // Capacity over time: eight quarter ends.
    open(
        &browser,
        base,
        "/capacity/trend?peildatum=2025-07-01",
        "capacity-trend",
    )
    .await;
    assert_eq!(table(&browser, "trend").await.len(), 8);

    // The query builder offers what jenn's policy grants drenthe's analysts, nothing else.
    let page = open(
        &browser,
        base,
        "/query?node=jenn&template=youth_in_care",
        "query-builder",
    )
    .await;
    let jenn = zicht_node::policy::parse_policy(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/policies/jenn.toml"),
        )
        .unwrap(),
        None,
    )
    .unwrap();
    let granted: Vec<&str> = Template::YouthInCare
        .dimensions()
        .iter()
        .filter(|d| {
            jenn.grants
                .iter()
                .any(|g| g.templates.contains(&Template::YouthInCare) && g.group_by.contains(d))
        })
        .map(|d| d.code())
        .collect();
    let mut offered = Vec::new();
    for input in browser
        .find_all(Locator::Css("input[name=by]"))
        .await
        .unwrap()
    {
        offered.push(input.attr("value").await.unwrap().unwrap());
    }
    assert_eq!(offered, granted, "{page}");
    // Asking through the form: the answer is the command line's.
    click(&browser, "input[name=by][value=stay_group]").await;
    click(
        &browser,
        "select[name=purpose] option[value=bovenregionale-sturing]",
    )
    .await;
    browser
        .find(Locator::Css("input[name=period]"))
        .await
        .unwrap()
        .send_keys("2024")
        .await
        .unwrap();
    click(&browser, "form.ask button").await;
    browser
        .wait()
        .for_element(Locator::Css("figure#answer"))
        .await
        .unwrap();
    let page = browser.source().await.unwrap();
    assert!(
        page.contains("zicht query youth_in_care --client PROFILE --node jenn --purpose bovenregionale-sturing --period 2024 --by stay_group"),
        "{page}"
    );
    shows_the_query(&browser, &analyst, "answer", "youth_in_care", "stay_group").await;

    // An analyst does not open the auditors' pages.
    let page = open_refused(&browser, base, "/audit/chains", "analyst-on-audit", 403).await;
    assert!(page.contains("For auditors"), "{page}");

    // A region going down shows in the coverage block.
    f.stop(NodeName::Region(Region::Friesland)).await;
    let page = open(
        &browser,
        base,
        "/capacity?peildatum=2025-07-01",
        "capacity-friesland-down",
    )
    .await;
    assert!(page.contains("4 of 5 regions answered"), "{page}");
    let coverage = browser
        .find(Locator::XPath(
            "//section[contains(@class,'coverage')]//tr[th='friesland']",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(coverage.contains("unreachable"), "{coverage}");

    // The auditor: the trace explorer shows every node of a federated question's trace.
    let json = query_json(
        &analyst,
        &[
            "youth_in_care",
            "--node",
            "jenn",
            "--peer",
            "drenthe",
            "--peer",
            "groningen",
            "--purpose",
            "bovenregionale-sturing",
            "--period",
            "2024",
            "--by",
            "stay_group",
        ],
    );
    let trace = json["trace_id"].as_str().unwrap().to_owned();
    let audit = auditors.address;
    let page = open(
        &browser,
        audit,
        &format!("/audit/trace?id={trace}"),
        "trace",
    )
    .await;
    assert!(page.contains("3 node(s) took part"), "{page}");
    let mut shown_nodes = Vec::new();
    for strong in browser
        .find_all(Locator::Css("ul.tree strong"))
        .await
        .unwrap()
    {
        shown_nodes.push(strong.text().await.unwrap());
    }
    for node in ["jenn", "drenthe", "groningen"] {
        assert!(
            shown_nodes.iter().any(|n| n == node),
            "{node}: {shown_nodes:?}"
        );
    }
    let page = open(&browser, audit, "/audit/chains", "chains").await;
    assert!(page.contains("intact"), "{page}");
    let page = open(
        &browser,
        audit,
        "/audit/access?template=youth_in_care",
        "access",
    )
    .await;
    assert!(page.contains("zicht.v1.Inway/Query"), "{page}");
    let jsonl = raw(audit, &format!("GET /audit/access?template=youth_in_care&format=jsonl HTTP/1.1\r\nHost: {audit}\r\nConnection: close\r\n\r\n"));
    assert!(jsonl.contains("\"log\":\"access\""), "{jsonl}");
    // An auditor does not query data: the monitor says so, and the node refuses it too.
    let page = open_refused(&browser, audit, "/capacity", "auditor-on-capacity", 403).await;
    assert!(page.contains("For analysts"), "{page}");
    let refused = Command::new(env!("CARGO_BIN_EXE_zicht"))
        .args([
            "query",
            "capacity",
            "--purpose",
            "capaciteitsmonitoring",
            "--peildatum",
            "2025-07-01",
            "--client",
        ])
        .arg(&auditor)
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("the outway serves analysts, teams and coordinators"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    browser.close().await.unwrap();
    analysts.stop().await;
    auditors.stop().await;
    assert!(screenshots().join("capacity.png").exists());

    // A day of monitor use by one data team (every page above, and the same questions once
    // more on the command line) spends a fraction of a person's daily budget of distinct
    // populations at every region: at least five times room.
    let pem = std::fs::read(f.pki.person("analyst-drenthe").0).unwrap();
    let analyst = zicht_pki::identity_of(&zicht_pki::pem_to_der(&pem).unwrap())
        .unwrap()
        .peer_id;
    let mut most = 0;
    for db in f.dbs.values() {
        let spent = db
            .scalar(&format!(
                "SELECT COUNT(DISTINCT population) FROM released_populations \
                 WHERE requester = '{analyst}'"
            ))
            .await;
        most = most.max(spent);
    }
    let budget = i64::from(zicht_privacy::Settings::default().max_populations_per_day);
    eprintln!("a day of monitor use: at most {most} distinct populations at one region (budget {budget} a day)");
    assert!(most > 0 && most * 5 <= budget, "{most} of {budget}");
}
