//! The dashboard in a real headless Chromium, driven through WebDriver (chromedriver and
//! fantoccini) against a real `slipway serve` deploying through the command target: sign in
//! (a bad token refused), watch a deploy progress live, approve it as a second person in a
//! second browser (whose overview follows along), roll it back, and a form POST without its
//! CSRF token refused.
//!
//! Screenshots are kept under `$CARGO_TARGET_TMPDIR/screenshots/` (in the target directory:
//! `target/tmp/screenshots/`). Without Debian's `chromium` and `chromium-driver` the test is
//! skipped, except under `CI=true`, where it fails: `scripts/test-deps` installs them.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use slipway_testkit::server::SpawnedServer;

use crate::support::FLEET_SCRIPT;

const BIN: &str = env!("CARGO_BIN_EXE_slipway");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest the test waits for anything a page should show.
const PATIENCE: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"
pools = { web = { count = 2, traffic = true } }

[environment.prod]
target = "command"
protected = true
approvals = { required = 1, expires = "30m" }
go_no_go = false
bake = "0s"
confirm_scale_in = true
post_verify = false
provenance = "off"
[environment.prod.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"
"#;

/// A chromedriver on a loopback port, in its own process group with the browsers it starts.
/// Dropping it kills that group, so no browser outlives the test, even when it fails.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    /// Starts chromedriver, or returns `None` (skip) when Chromium is not installed and `CI`
    /// is not `true`.
    async fn start() -> Option<Chromedriver> {
        let present = Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file();
        if !present {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{CHROMIUM} or {CHROMEDRIVER} is missing and CI=true: the browser tests must not \
                 be skipped; install them with scripts/test-deps"
            );
            eprintln!(
                "skipping the browser test: {CHROMIUM} or {CHROMEDRIVER} is missing \
                 (scripts/test-deps installs them)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            0,
        )
        .spawn()
        .expect("chromedriver starts");
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(driver)
    }

    /// A new headless Chromium with a fresh profile in `profile`.
    async fn browser(&self, profile: &Path) -> Client {
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-crash-reporter",
                "--window-size=1280,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group holds chromedriver and every browser it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    let path = screenshots().join(format!("dashboard-{name}.png"));
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Waits until the element at `css` shows `text`.
async fn wait_text(client: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = match client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if shown.contains(text) {
            return shown;
        }
        if Instant::now() >= deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("{css} never showed {text:?}; it shows {shown:?}\npage:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(client: &Client, base: &str, token: &str) {
    client
        .goto(&format!("{base}/"))
        .await
        .expect("the dashboard loads");
    wait_text(client, "h1", "Sign in").await;
    client
        .find(Locator::Css("#token"))
        .await
        .expect("a token field")
        .send_keys(token)
        .await
        .expect("typing the token");
    client
        .find(Locator::Css("main button[type=submit]"))
        .await
        .expect("the sign-in button")
        .click()
        .await
        .expect("signing in");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn token_for(server: &SpawnedServer, admin: &str, name: &str, role: &str) -> String {
    server
        .cli(admin, &["user", "add", name, "--role", role])
        .success();
    let token = server
        .cli(admin, &["token", "create", "--user", name])
        .success()
        .stdout;
    token.trim().to_owned()
}

fn release(server: &SpawnedServer, token: &str, root: &Path, version: &str) {
    let artifact = root.join(format!("idp-{version}.tar.gz"));
    write(&artifact, &format!("build {version}"));
    let path = artifact.to_str().expect("a UTF-8 path");
    server
        .cli(
            token,
            &[
                "artifact",
                "push",
                path,
                "--service",
                "idp",
                "--version",
                version,
            ],
        )
        .success();
    server
        .cli(token, &["release", "create", "idp", "--version", version])
        .success();
}

fn start_deploy(server: &SpawnedServer, token: &str) -> String {
    let started = server
        .cli(
            token,
            &["--output", "json", "deploy", "idp", "--env", "prod"],
        )
        .success();
    let deploy: serde_json::Value =
        serde_json::from_str(&started.stdout).expect("the deploy as JSON");
    deploy["id"].as_i64().expect("an id").to_string()
}

/// Waits until deploy `id` waits for `what` (`approval`, `scale_in_confirmation`).
async fn wait_for_phase(server: &SpawnedServer, token: &str, id: &str, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = server
            .cli(token, &["--output", "json", "status", id])
            .success()
            .stdout;
        let deploy: serde_json::Value = serde_json::from_str(&shown).expect("the deploy as JSON");
        if deploy["phase"]["waiting_for"] == what {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "deploy {id} never waited for {what}: {deploy:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_is_watched_live_approved_by_a_second_person_and_rolled_back_in_chromium() {
    let Some(driver) = Chromedriver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    write(&root.join("fleet.sh"), FLEET_SCRIPT);
    write(&root.join("slipway.toml"), CONFIG);
    let mut server = SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    );
    let admin = server.admin_token.clone();
    let alice = token_for(&server, &admin, "alice", "deployer");
    let bob = token_for(&server, &admin, "bob", "approver");

    // RC 1 runs in prod, shipped through the CLI.
    release(&server, &alice, root, "1.0.0");
    let first = start_deploy(&server, &alice);
    wait_for_phase(&server, &alice, &first, "approval").await;
    server.cli(&bob, &["approve", &first]).success();
    wait_for_phase(&server, &alice, &first, "scale_in_confirmation").await;
    server.cli(&alice, &["confirm", &first]).success();
    server
        .cli(&alice, &["status", &first, "--follow", "--timeout", "60s"])
        .success();

    let alice_browser = driver.browser(&root.join("profile-alice")).await;
    let base = server.url.clone();

    // A bad token is refused with a hint; the right one signs alice in.
    sign_in(&alice_browser, &base, "slw_not-a-real-token").await;
    wait_text(&alice_browser, "div.error", "unknown or has been revoked").await;
    wait_text(&alice_browser, "div.error", "hint:").await;
    screenshot(&alice_browser, "1-bad-token").await;
    sign_in(&alice_browser, &base, &alice).await;
    wait_text(&alice_browser, "#me", "alice").await;
    wait_text(&alice_browser, "#placements", "RC 1").await;
    screenshot(&alice_browser, "2-overview").await;

    // Alice starts RC 2 and watches its page.
    release(&server, &alice, root, "2.0.0");
    let second = start_deploy(&server, &alice);
    alice_browser
        .goto(&format!("{base}/deploys/{second}"))
        .await
        .expect("the deploy page loads");
    wait_text(&alice_browser, "#phase", "waiting for approval").await;
    alice_browser
        .execute("window.slipwayNotReloaded = true; return true;", vec![])
        .await
        .expect("marking the page");

    // A form POST without the session's CSRF token is refused, and changes nothing.
    let status = alice_browser
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             fetch(arguments[0], {method: 'POST', body: new URLSearchParams({reason: 'no token'})})\
               .then(r => done(r.status), () => done(0));",
            vec![json!(format!("/deploys/{second}/abort"))],
        )
        .await
        .expect("the POST runs");
    assert_eq!(status, json!(403), "a POST without a CSRF token is refused");
    wait_text(&alice_browser, "#phase", "waiting for approval").await;

    // Bob approves in his own browser, from the list of what waits for him.
    let bob_browser = driver.browser(&root.join("profile-bob")).await;
    sign_in(&bob_browser, &base, &bob).await;
    wait_text(&bob_browser, "#me", "bob").await;
    bob_browser
        .goto(&format!("{base}/approvals"))
        .await
        .expect("the approvals page loads");
    wait_text(&bob_browser, "#waiting", "RC 2").await;
    screenshot(&bob_browser, "3-waiting-for-bob").await;
    bob_browser
        .find(Locator::Css(&format!("#waiting #action-approve-{second}")))
        .await
        .expect("an approve button")
        .click()
        .await
        .expect("approving");
    wait_text(&bob_browser, "p.flash", "approval was recorded").await;
    // Bob keeps the overview open; it follows the deploy too.
    bob_browser
        .goto(&format!("{base}/"))
        .await
        .expect("the overview loads");
    wait_text(&bob_browser, "#placements", &format!("deploy {second}")).await;

    // Alice's page moves on by itself: the new fleet takes half the traffic and the deploy
    // waits for her confirmation of scale-in.
    wait_text(&alice_browser, "#phase", "scale in confirmation").await;
    wait_text(&alice_browser, "#traffic", "50%").await;
    let not_reloaded = alice_browser
        .execute("return window.slipwayNotReloaded === true;", vec![])
        .await
        .expect("reading the mark");
    assert_eq!(
        not_reloaded,
        json!(true),
        "the page changed without a reload"
    );
    wait_text(&alice_browser, "#timeline", "approved").await;
    screenshot(&alice_browser, "4-live-50-50").await;

    // She rolls it back from the page.
    alice_browser
        .find(Locator::Css(&format!("#reason-rollback-{second}")))
        .await
        .expect("a reason field")
        .send_keys("error rate up after the surge")
        .await
        .expect("typing the reason");
    alice_browser
        .find(Locator::Css(&format!("#action-rollback-{second}")))
        .await
        .expect("a rollback button")
        .click()
        .await
        .expect("rolling back");
    wait_text(&alice_browser, "#phase", "rolled back").await;
    wait_text(&alice_browser, "#timeline", "unwind started").await;
    screenshot(&alice_browser, "5-rolled-back").await;
    wait_text(&bob_browser, "#deploys", "rolled back").await;
    screenshot(&bob_browser, "6-overview-after-rollback").await;
    let traffic =
        std::fs::read_to_string(root.join("fleet/prod/traffic")).expect("the fleet's traffic file");
    assert!(
        traffic.contains("RC 1") && !traffic.contains("RC 2"),
        "traffic went back to RC 1: {traffic}"
    );

    alice_browser
        .close()
        .await
        .expect("closing alice's browser");
    bob_browser.close().await.expect("closing bob's browser");
    server.terminate(Duration::from_secs(20));
}
