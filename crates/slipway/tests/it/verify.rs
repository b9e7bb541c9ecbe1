//! Verification end to end: the real `slipway serve` checks each new version of a small python
//! app against real numbers — from its own proxy, or from a real Prometheus (Debian's, started
//! here) scraping slipway's `/metrics` — while a steady load runs through the proxy. A good
//! version takes over; a version failing a fifth of its requests, or answering 800 ms slower, is
//! rolled back on its own, with the failing numbers in its events; a version that gets no traffic
//! stays inconclusive and is rolled back once the limit passes.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use slipway_testkit::prometheus::Prometheus;
use slipway_testkit::server::SpawnedServer;

use crate::support::{APP, BIN, Instances, Load, api_get, free_port, get, json, phase, wait_until};

/// Where a story's checks read their metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
enum From {
    Proxy,
    /// A Prometheus scraping slipway every 250 ms: its numbers arrive later (a scrape, then a
    /// query), so its window and inconclusive limit are longer.
    Prometheus,
}

/// Short timings so that each story takes seconds: a check every 500 ms over the last few
/// seconds. `check` is one more check (a line of the `checks` array); `more` is added to the
/// environment; `prometheus` is the URL of the Prometheus to read metrics from.
fn config(proxy_port: u16, check: &str, more: &str, prometheus: Option<&str>) -> String {
    let (source, window, limit) = match prometheus {
        None => ("proxy", "3s", "4s"),
        Some(_) => ("prometheus", "5s", "8s"),
    };
    let prometheus = prometheus
        .map(|url| format!("[prometheus]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "exec python3 app"
health = {{ path = "/up", interval = "200ms", timeout = "2s" }}
pools = {{ web = {{ count = 1, traffic = true }} }}

[environment.dev]
bake = "5s"
analysis_interval = "500ms"
inconclusive_limit = "{limit}"
listen = {{ idp = "127.0.0.1:{proxy_port}" }}
checks = [
  {{ metric = "error_rate", max = "5%" }},
  {{ metric = "latency_p99", max = "600ms" }},
  {{ probe = "/up", status = 200 }},
  {check}
]
analysis = {{ source = "{source}", window = "{window}", step = "500ms", min_requests = 5, min_samples = 4, compare = [{{ metric = "error_rate", allowed_increase = "5%" }}] }}
{more}

{prometheus}
"#
    )
}

/// One `slipway serve` with its app, proxy and instances; everything stops when it drops, in
/// field order: the server, then the instances its state file names, then the directory.
struct Story {
    server: SpawnedServer,
    /// The Prometheus the checks read, and the runtime its harness lives in.
    _prometheus: Option<(Prometheus, tokio::runtime::Runtime)>,
    admin: String,
    proxy: SocketAddr,
    root: std::path::PathBuf,
    _instances: Instances,
    _dir: tempfile::TempDir,
}

impl Story {
    fn start(from: From) -> Story {
        Self::start_with(from, "", "")
    }

    fn start_with(from: From, check: &str, more: &str) -> Story {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().to_owned();
        let proxy_port = free_port();
        let listen = format!("127.0.0.1:{}", free_port());
        // Prometheus first: the config names it, and it scrapes the server's address.
        let prometheus = (from == From::Prometheus).then(|| {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let targets = [listen.parse().unwrap()];
            let prometheus = runtime
                .block_on(Prometheus::start(&targets, Duration::from_millis(250)))
                .unwrap_or_else(|error| panic!("{error}"));
            (prometheus, runtime)
        });
        let url = prometheus.as_ref().map(|(p, _)| p.url().to_owned());
        let config = root.join("slipway.toml");
        let text = self::config(proxy_port, check, more, url.as_deref());
        std::fs::write(&config, text).unwrap();
        let data = root.join("data");
        let instances = Instances {
            state_file: data.join("local/dev.json"),
        };
        let server = SpawnedServer::start_listening(Path::new(BIN), &config, &data, &listen, &[]);
        if let Some((prometheus, runtime)) = &prometheus {
            let scraped = prometheus.wait_for_scrape(Duration::from_secs(30));
            runtime
                .block_on(scraped)
                .unwrap_or_else(|error| panic!("{error}\n{}", prometheus.log()));
        }
        let admin = server.admin_token.clone();
        Story {
            server,
            _prometheus: prometheus,
            admin,
            proxy: format!("127.0.0.1:{proxy_port}").parse().unwrap(),
            root,
            _instances: instances,
            _dir: dir,
        }
    }

    /// Pushes and releases `version` of the app; `behaviour` is python prepended to it
    /// (`ERROR_RATE = 0.2`).
    fn release(&self, version: &str, behaviour: &str) {
        let artifact = self.root.join(format!("idp-{version}.py"));
        std::fs::write(
            &artifact,
            format!("{behaviour}\n{APP}\n# build {version}\n"),
        )
        .unwrap();
        let file = artifact.to_str().unwrap();
        let push = [
            "artifact",
            "push",
            file,
            "--service",
            "idp",
            "--version",
            version,
        ];
        self.server.cli(&self.admin, &push).success();
        let create = ["release", "create", "idp", "--version", version];
        self.server.cli(&self.admin, &create).success();
    }

    /// Deploys the latest release and waits for its end: (id, result, reason).
    fn deploy(&self) -> (String, String, String) {
        let args = ["--output", "json", "deploy", "idp", "--env", "dev"];
        let started = self.server.cli(&self.admin, &args).success();
        let id = json(&started.stdout)["id"].as_i64().unwrap().to_string();
        let mut ended = serde_json::Value::Null;
        wait_until(Duration::from_secs(90), "the deploy to finish", || {
            ended = phase(&self.server, &self.admin, &id);
            ended["state"] == "finished"
        });
        let view = self
            .server
            .cli(&self.admin, &["--output", "json", "status", &id])
            .success();
        let reason = json(&view.stdout)["end_reason"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        (
            id,
            ended["result"].as_str().unwrap_or("").to_owned(),
            reason,
        )
    }

    /// The deploy's `measured` events, as (name, outcome, value).
    fn measurements(&self, id: &str) -> Vec<(String, String, Option<f64>)> {
        let path = format!("/api/v1/deploys/{id}/events?limit=1000");
        let events = api_get(&self.server, &self.admin, &path);
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "measured")
            .map(|e| {
                let m = &e["data"]["measurement"];
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["outcome"].as_str().unwrap().to_owned(),
                    m["value"].as_f64(),
                )
            })
            .collect()
    }

    /// v1 deployed under a steady load (about 150 requests a second), which keeps running.
    fn with_v1_under_load(&self) -> Load {
        let load = Load::paced(self.proxy, Duration::from_millis(20));
        self.release("1.0.0", "");
        let (id, result, reason) = self.deploy();
        assert_eq!(
            result,
            "succeeded",
            "v1 ({id}): {reason}\n{}",
            self.server.log()
        );
        load
    }

    /// Which versions answer now.
    fn answering(&self) -> std::collections::BTreeSet<String> {
        (0..20)
            .filter_map(|_| get(self.proxy).ok())
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body.split_whitespace().next().unwrap_or("").to_owned())
            .collect()
    }
}

/// Deploys v2 built with `behaviour` after v1; it must be rolled back for `metric`, with a
/// measured value above the check's `limit` among its measurements, and v1 alone serving
/// afterwards. (The first check over the limit decides, often after a dozen requests, so the
/// value is only as exact as those allow.)
fn bad_version_is_rolled_back(from: From, behaviour: &str, metric: &str, limit: f64) {
    let story = Story::start(from);
    let load = story.with_v1_under_load();
    story.release("2.0.0", behaviour);
    let (id, result, reason) = story.deploy();
    let (_, failures) = load.finish();
    assert_eq!(result, "rolled_back", "{reason}\n{}", story.server.log());
    assert!(
        reason.contains(metric) && reason.contains("high"),
        "the reason names the failing check: {reason}"
    );
    let failing: Vec<f64> = story
        .measurements(&id)
        .into_iter()
        .filter(|(name, outcome, _)| name == metric && outcome == "high")
        .filter_map(|(_, _, value)| value)
        .collect();
    assert!(
        failing.iter().any(|&v| v > limit),
        "{metric} measured at {failing:?}, expected above {limit}"
    );
    assert_eq!(story.answering(), ["1.0.0".to_owned()].into());
    // The injected failures are the only ones: no request was dropped by the rollback.
    let other: Vec<&String> = failures
        .iter()
        .filter(|f| !f.contains("failed on purpose"))
        .collect();
    assert!(other.is_empty(), "requests failed: {other:?}");
}

#[test]
fn good_version_passes_its_checks_from_the_proxy_and_takes_over() {
    good_version_passes_its_checks_and_takes_over(From::Proxy);
}

#[test]
fn good_version_passes_its_checks_from_prometheus_and_takes_over() {
    good_version_passes_its_checks_and_takes_over(From::Prometheus);
}

fn good_version_passes_its_checks_and_takes_over(from: From) {
    let story = Story::start(from);
    let load = story.with_v1_under_load();
    story.release("2.0.0", "");
    let (id, result, reason) = story.deploy();
    let (seen, failures) = load.finish();
    assert_eq!(result, "succeeded", "{reason}\n{}", story.server.log());
    assert!(failures.is_empty(), "{failures:?}");
    assert!(seen.contains_key("2.0.0"), "{seen:?}");
    let measured = story.measurements(&id);
    let error_rates: Vec<f64> = measured
        .iter()
        .filter(|(name, outcome, _)| name == "error_rate" && outcome == "pass")
        .filter_map(|(_, _, value)| *value)
        .collect();
    assert!(
        !error_rates.is_empty() && error_rates.iter().all(|&v| v == 0.0),
        "{measured:?}"
    );
    assert!(
        measured
            .iter()
            .any(|(name, outcome, _)| name == "probe /up" && outcome == "pass"),
        "{measured:?}"
    );
    assert_eq!(story.answering(), ["2.0.0".to_owned()].into());
}

#[test]
fn version_failing_a_fifth_of_requests_is_rolled_back_by_the_proxys_error_rate() {
    bad_version_is_rolled_back(From::Proxy, "ERROR_RATE = 0.2", "error_rate", 0.05);
}

#[test]
fn version_failing_a_fifth_of_requests_is_rolled_back_by_prometheus_error_rate() {
    bad_version_is_rolled_back(From::Prometheus, "ERROR_RATE = 0.2", "error_rate", 0.05);
}

#[test]
fn version_answering_800ms_slower_is_rolled_back_by_the_proxys_latency() {
    bad_version_is_rolled_back(From::Proxy, "LATENCY_MS = 800", "latency_p99", 600.0);
}

#[test]
fn version_answering_800ms_slower_is_rolled_back_by_prometheus_latency() {
    bad_version_is_rolled_back(From::Prometheus, "LATENCY_MS = 800", "latency_p99", 600.0);
}

#[test]
fn version_without_traffic_is_inconclusive_in_the_proxy_and_rolled_back_after_the_limit() {
    version_without_traffic_is_inconclusive_and_rolled_back_after_the_limit(From::Proxy);
}

#[test]
fn version_without_traffic_is_inconclusive_in_prometheus_and_rolled_back_after_the_limit() {
    version_without_traffic_is_inconclusive_and_rolled_back_after_the_limit(From::Prometheus);
}

fn version_without_traffic_is_inconclusive_and_rolled_back_after_the_limit(from: From) {
    let story = Story::start(from);
    let load = story.with_v1_under_load();
    let (_, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    story.release("2.0.0", "");
    let (id, result, reason) = story.deploy();
    assert_eq!(result, "rolled_back", "{reason}\n{}", story.server.log());
    let limit = if from == From::Proxy { "4s" } else { "8s" };
    assert!(
        reason.contains(&format!("inconclusive for more than {limit}")),
        "{reason}"
    );
    let measured = story.measurements(&id);
    assert!(
        measured
            .iter()
            .any(|(name, outcome, _)| name == "error_rate" && outcome == "no_data"),
        "no traffic is no data, never a pass: {measured:?}"
    );
    assert!(
        !measured
            .iter()
            .any(|(name, outcome, _)| name == "error_rate" && outcome == "pass"),
        "{measured:?}"
    );
    assert_eq!(story.answering(), ["1.0.0".to_owned()].into());
}

#[test]
fn failed_post_verify_after_scale_in_starts_a_rollback_deploy_of_the_previous_release() {
    // The command check fails only for 2.0.0 and only in post-verify, after v1 was stopped.
    let story = Story::start_with(
        From::Proxy,
        r#"{ command = 'test "$SLIPWAY_VERSION" != 2.0.0 || test "$SLIPWAY_STEP" != post-verify' },"#,
        r#"post_verify = "1s""#,
    );
    let load = story.with_v1_under_load();
    story.release("2.0.0", "");
    let (id, result, reason) = story.deploy();
    assert_eq!(result, "rolled_back", "{reason}\n{}", story.server.log());
    assert!(reason.contains("post-verify check failed"), "{reason}");
    let view = json(
        &story
            .server
            .cli(&story.admin, &["--output", "json", "status", &id])
            .success()
            .stdout,
    );
    let rollback = view["rollback_deploy"]
        .as_i64()
        .unwrap_or_else(|| panic!("a rollback deploy took over: {view}"))
        .to_string();
    let mut ended = serde_json::Value::Null;
    wait_until(
        Duration::from_secs(60),
        "the rollback deploy to end",
        || {
            ended = phase(&story.server, &story.admin, &rollback);
            ended["state"] == "finished"
        },
    );
    assert_eq!(
        ended["result"],
        "succeeded",
        "{ended}\n{}",
        story.server.log()
    );
    let (_, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(story.answering(), ["1.0.0".to_owned()].into());
}
