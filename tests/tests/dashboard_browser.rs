//! End to end in a real browser: Debian's headless Chromium, driven over WebDriver, logs in to
//! the dashboard of a collector binary holding a synthetic fleet, and reads every chart back:
//! the imported numbers in the data tables, rare values absent, no console error (where the
//! Content-Security-Policy reports violations), no request to any host but 127.0.0.1 (every
//! other name resolves to nothing), a layout that fits a phone. Screenshots are kept under
//! `target/tmp/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2e::fleet::Fleet;
use e2e::{Collector, binary, free_address};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const TOKEN: &str = "browser-test-admin-token";
const K: usize = 5;
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser itself, without the Debian wrapper script's extra flags when it is there.
fn chromium() -> &'static str {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("Chromium is missing: ./test.sh installs Debian's chromium and chromium-driver")
}

/// chromedriver's browser log (`POST /session/{id}/se/log`), which it empties on each read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.ok_or(url::ParseError::EmptyHost)?;
        base_url.join(&format!("session/{session}/se/log"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Console and network messages at warning level or worse since the last read.
async fn problems(browser: &Client) -> anyhow::Result<Vec<String>> {
    let entries = browser.issue_cmd(BrowserLog).await?;
    Ok(entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
        .map(|entry| entry.to_string())
        .collect())
}

fn thousands(n: usize) -> String {
    collector::dashboard::charts::thousands(n as i64)
}

/// A data table's rows (header cells included) by its figure's id.
async fn table(browser: &Client, figure: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let rows = browser
        .execute(
            "return [...document.querySelectorAll(`figure[id='${arguments[0]}'] table tr`)]\
                 .map(tr => [...tr.children].map(cell => cell.textContent.trim()));",
            vec![json!(figure)],
        )
        .await?;
    Ok(serde_json::from_value(rows)?)
}

/// Clusters per value of `values_of(i)` in the fleet's last complete week, folded at `K`.
fn expected(fleet: &Fleet, values_of: impl Fn(u32) -> Vec<String>) -> BTreeMap<String, String> {
    let w = fleet.weeks - 1;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in (0..fleet.clusters).filter(|i| fleet.active(*i, w)) {
        let mut values = values_of(i);
        values.sort();
        values.dedup();
        for value in values {
            *counts.entry(value).or_default() += 1;
        }
    }
    let mut folded: BTreeMap<String, usize> = BTreeMap::new();
    for (value, clusters) in counts {
        let value = if clusters < K { "other".into() } else { value };
        *folded.entry(value).or_default() += clusters;
    }
    folded
        .into_iter()
        .map(|(value, clusters)| (value, thousands(clusters)))
        .collect()
}

/// Value → clusters of a bar chart's table.
fn bars(rows: &[Vec<String>]) -> BTreeMap<String, String> {
    rows.iter()
        .skip(1)
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, TOKEN).unwrap();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &[
            "--admin-token-file",
            token.to_str().unwrap(),
            "--stats-rollup-interval",
            "0",
        ],
    )
    .await;
    let fleet = Fleet {
        clusters: 400,
        weeks: 26,
        reports_per_week: 1,
        max_nodes: 6,
        now: e2e::now(),
    };
    let mut lines = Vec::new();
    fleet.write(&mut lines).unwrap();
    let import = reqwest::Client::new()
        .post(collector.admin_url("/api/v1/import"))
        .bearer_auth(TOKEN)
        .body(lines);
    let summary = e2e::send_json(import).await;
    assert_eq!(summary["failed"], 0, "{summary}");

    let driver_address = free_address();
    let port = driver_address.rsplit(':').next().unwrap().to_string();
    let _driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver is missing: ./test.sh installs Debian's chromium-driver");
    let status_url = format!("http://{driver_address}/status");
    e2e::wait_for("chromedriver", Duration::from_secs(30), || async {
        let status: Value = reqwest::get(&status_url).await.ok()?.json().await.ok()?;
        status["value"]["ready"].as_bool().filter(|ready| *ready)
    })
    .await;

    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = Capabilities::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
                "--host-resolver-rules=MAP * ^NOTFOUND, EXCLUDE 127.0.0.1",
                "--window-size=1280,1000",
            ],
        }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://{driver_address}"))
        .await
        .expect("a WebDriver session with Chromium");
    let outcome = drive(&browser, &collector, &fleet).await;
    let _ = browser.close().await;
    outcome.unwrap();
}

/// Waits until a navigation a click started has landed where `arrived` says, and the page has
/// loaded (a click returns before the next page is there).
async fn arrive(browser: &Client, arrived: impl Fn(&url::Url) -> bool) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let url = browser.current_url().await?;
        if arrived(&url) {
            let state = browser
                .execute("return document.readyState;", vec![])
                .await?;
            if state == "complete" {
                return Ok(());
            }
        }
        ensure!(Instant::now() < until, "still at {url} after 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drive(browser: &Client, collector: &Collector, fleet: &Fleet) -> anyhow::Result<()> {
    // Logged out, the dashboard sends the browser to the login form.
    browser.goto(&collector.admin_url("/dashboard")).await?;
    ensure!(browser.current_url().await?.path() == "/dashboard/login");
    browser
        .find(Locator::Css("#token"))
        .await?
        .send_keys(TOKEN)
        .await?;
    browser
        .find(Locator::Css("form.login button[type=submit]"))
        .await?
        .click()
        .await?;
    arrive(browser, |url| url.path() == "/dashboard").await?;
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("section.headline"))
        .await?;

    // The headline: the last complete week of the model.
    let w = fleet.weeks - 1;
    let active = (0..fleet.clusters).filter(|i| fleet.active(*i, w)).count();
    let card = browser
        .find(Locator::Css("#active dd"))
        .await?
        .text()
        .await?;
    ensure!(
        card == thousands(active),
        "active clusters {card}, the model {active}"
    );

    // The charts: each drawn, with marks, and the model's numbers in the data tables.
    let drawn = browser
        .execute(
            "return [...document.querySelectorAll('figure.chart')].map(f => [f.id, \
                 f.querySelector('svg').getBoundingClientRect().height, \
                 f.querySelectorAll('svg rect, svg circle').length, \
                 f.querySelectorAll('svg title').length]);",
            vec![],
        )
        .await?;
    let drawn: Vec<(String, f64, usize, usize)> = serde_json::from_value(drawn)?;
    ensure!(drawn.len() >= 12, "only {} charts: {drawn:?}", drawn.len());
    for (id, height, marks, hovers) in &drawn {
        ensure!(
            *height > 20.0 && *marks > 0 && *hovers > 0,
            "{id} is not drawn"
        );
    }
    let architecture = bars(&table(browser, "architecture").await?);
    let model = expected(fleet, |i| {
        fleet
            .facts(i, w)
            .archs
            .iter()
            .map(|a| a.to_string())
            .collect()
    });
    ensure!(
        architecture == model,
        "architecture {architecture:?}, the model {model:?}"
    );
    let clouds = bars(&table(browser, "cloud-provider").await?);
    let model = expected(fleet, |i| vec![fleet.facts(i, w).cloud.to_string()]);
    ensure!(
        clouds == model,
        "cloud providers {clouds:?}, the model {model:?}"
    );
    let versions = table(browser, "server-version-minor-weekly").await?;
    let last = versions.last().context("no rows")?;
    let header = &versions[0];
    let model = expected(fleet, |i| vec![format!("v1.{}", fleet.facts(i, w).minor)]);
    for (value, clusters) in &model {
        let column = header
            .iter()
            .position(|h| h == value)
            .context("a version")?;
        ensure!(
            last[column] == *clusters,
            "{value}: {} vs {clusters}",
            last[column]
        );
    }
    let source = browser.source().await?;
    for rare in ["s390x", "acme.corp"] {
        ensure!(
            !source.contains(rare),
            "{rare}, held by fewer than {K} clusters, is shown"
        );
    }
    ensure!(
        source.contains("example.com/team"),
        "the extension key's chart"
    );

    // Nothing but the collector was asked for anything, and nothing complained.
    let loaded = browser
        .execute(
            "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)];",
            vec![],
        )
        .await?;
    let loaded: Vec<String> = serde_json::from_value(loaded)?;
    let origin = collector.admin_url("/");
    ensure!(
        loaded.iter().all(|url| url.starts_with(&origin)),
        "{loaded:?}"
    );
    ensure!(
        loaded
            .iter()
            .any(|url| url.ends_with("/dashboard/style.css"))
    );
    let complaints = problems(browser).await?;
    ensure!(complaints.is_empty(), "the console: {complaints:?}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser.set_window_size(1280, 3200).await?;
    std::fs::write(shots.join("dashboard.png"), browser.screenshot().await?)?;

    // The window selector and a dimension's page.
    browser
        .find(Locator::LinkText("52 weeks"))
        .await?
        .click()
        .await?;
    arrive(browser, |url| url.query() == Some("weeks=52")).await?;
    let weeks = table(browser, "clusters").await?;
    ensure!(
        weeks.len() == 53,
        "52 weeks and a header, not {}",
        weeks.len()
    );
    browser
        .find(Locator::Css("#dimensions a[href*='name=os-image']"))
        .await?
        .click()
        .await?;
    arrive(browser, |url| {
        url.path() == "/dashboard/dimension" && url.query() == Some("name=os-image&weeks=52")
    })
    .await?;
    let title = browser.find(Locator::Css("main h1")).await?.text().await?;
    ensure!(title == "os-image", "{title}");
    let images = bars(&table(browser, "os-image").await?);
    let model = expected(fleet, |i| vec![fleet.facts(i, w).os_image.to_string()]);
    ensure!(images == model, "os images {images:?}, the model {model:?}");

    // A phone: nothing wider than the screen.
    browser.set_window_size(390, 844).await?;
    browser.goto(&collector.admin_url("/dashboard")).await?;
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await?;
    ensure!(
        overflow.as_f64() <= Some(1.0),
        "wider than a phone by {overflow}px"
    );
    std::fs::write(
        shots.join("dashboard-phone.png"),
        browser.screenshot().await?,
    )?;
    let complaints = problems(browser).await?;
    ensure!(complaints.is_empty(), "the console: {complaints:?}");

    // The check above can fail: an inline style is refused by the page's policy, and the
    // browser says so on the console.
    browser
        .execute(
            "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">canary</p>');",
            vec![],
        )
        .await?;
    let refused = e2e::wait_for("the policy's refusal", Duration::from_secs(10), || async {
        let complaints = problems(browser).await.ok()?;
        (!complaints.is_empty()).then_some(complaints)
    })
    .await;
    ensure!(
        refused
            .iter()
            .any(|c| c.contains("Content Security Policy")),
        "{refused:?}"
    );

    // Logging out ends the session.
    let started = Instant::now();
    browser
        .find(Locator::Css("form.logout button"))
        .await?
        .click()
        .await?;
    arrive(browser, |url| url.path() == "/dashboard/login").await?;
    browser.goto(&collector.admin_url("/dashboard")).await?;
    ensure!(browser.current_url().await?.path() == "/dashboard/login");
    eprintln!(
        "screenshots in {} (logout took {:?})",
        shots.display(),
        started.elapsed()
    );
    Ok(())
}
