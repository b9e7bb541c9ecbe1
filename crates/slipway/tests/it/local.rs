//! End to end with the `local` target: the real `slipway serve` runs a small python3 app as
//! child processes behind its own proxy. Under continuous load through the proxy, a deploy from
//! v1 to v2 (surge, the 50/50 state, scale-in) fails no request; slipway killed with SIGKILL in
//! the 50/50 state of the next deploy and restarted adopts every instance — no orphan, no
//! second copy — keeps serving, and finishes the deploy.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use slipway_testkit::server::SpawnedServer;

use crate::support::{
    APP, BIN, Instances, Load, free_port, get, get_path, json, phase, processes_in, wait_until,
};

fn config(proxy_port: u16) -> String {
    format!(
        r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "exec python3 app"
health = {{ path = "/up", interval = "200ms", timeout = "2s" }}
pools = {{ web = {{ count = 2, traffic = true }} }}

[environment.dev]
bake = "2s"
confirm_scale_in = true
listen = {{ idp = "127.0.0.1:{proxy_port}" }}
"#
    )
}

fn wait_for_confirmation(server: &SpawnedServer, token: &str, id: &str) {
    wait_until(
        Duration::from_secs(90),
        "the scale-in confirmation (the 50/50 state)",
        || {
            let phase = phase(server, token, id);
            assert_ne!(
                phase["state"],
                "finished",
                "deploy {id} ended early: {phase}\n{}",
                server.log()
            );
            phase["waiting_for"] == "scale_in_confirmation"
        },
    );
}

fn confirm_and_finish(server: &SpawnedServer, token: &str, id: &str) {
    server.cli(token, &["confirm", id]).success();
    let followed = server.cli(token, &["status", id, "--follow", "--timeout", "90s"]);
    assert_eq!(
        followed.code(),
        0,
        "{}\n{}\n{}",
        followed.stdout,
        followed.stderr,
        server.log()
    );
    assert!(
        followed.stdout.contains(&format!("deploy {id} succeeded")),
        "{}",
        followed.stdout
    );
}

/// Follows a deploy to its end, confirming its scale-in if it asks; it must succeed.
fn finish(server: &SpawnedServer, token: &str, id: &str) {
    let mut confirmed = false;
    wait_until(Duration::from_secs(90), "the deploy to finish", || {
        let phase = phase(server, token, id);
        if phase["waiting_for"] == "scale_in_confirmation" && !confirmed {
            server.cli(token, &["confirm", id]).success();
            confirmed = true;
        }
        if phase["state"] == "finished" {
            assert_eq!(
                phase["result"],
                "succeeded",
                "deploy {id}: {phase}\n{}",
                server.log()
            );
            return true;
        }
        false
    });
}

fn release(server: &SpawnedServer, token: &str, root: &Path, version: &str) {
    let artifact = root.join(format!("idp-{version}.py"));
    std::fs::write(&artifact, format!("{APP}\n# build {version}\n")).unwrap();
    server
        .cli(
            token,
            &[
                "artifact",
                "push",
                artifact.to_str().unwrap(),
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

fn deploy(server: &SpawnedServer, token: &str) -> String {
    let started = server
        .cli(
            token,
            &["--output", "json", "deploy", "idp", "--env", "dev"],
        )
        .success();
    json(&started.stdout)["id"].as_i64().unwrap().to_string()
}

#[test]
fn local_deploy_under_load_fails_no_request_and_survives_a_sigkill_in_the_50_50_state() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    let proxy_port = free_port();
    let config = root.join("slipway.toml");
    std::fs::write(&config, self::config(proxy_port)).unwrap();
    let data = root.join("data");
    let releases = data.join("releases");
    let instances = Instances {
        state_file: data.join("local/dev.json"),
    };
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();

    let mut server = SpawnedServer::start(Path::new(BIN), &config, &data);
    let admin = server.admin_token.clone();
    let line = format!("slipway: proxy for idp in dev at http://127.0.0.1:{proxy_port}");
    wait_until(
        Duration::from_secs(10),
        "serve to print the proxy's address",
        || server.log().contains(&line),
    );

    // v1, the first deploy.
    release(&server, &admin, root, "1.0.0");
    let first = deploy(&server, &admin);
    wait_for_confirmation(&server, &admin, &first);
    confirm_and_finish(&server, &admin, &first);
    assert_eq!(get(proxy).unwrap().0, 200);

    // v2 under load: surge, the 50/50 state, scale-in — not one request fails.
    let load = Load::start(proxy);
    release(&server, &admin, root, "2.0.0");
    let second = deploy(&server, &admin);
    wait_for_confirmation(&server, &admin, &second);
    wait_until(Duration::from_secs(30), "both versions answering", || {
        load.versions().len() == 2
    });
    assert_eq!(
        processes_in(&releases).len(),
        4,
        "two fleets of two in the 50/50 state"
    );
    confirm_and_finish(&server, &admin, &second);
    let at_end = load.versions().get("2.0.0").copied().unwrap_or(0);
    wait_until(
        Duration::from_secs(30),
        "more answers from v2 alone",
        || load.versions().get("2.0.0").copied().unwrap_or(0) > at_end + 50,
    );
    let (seen, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed request(s): {:?}\nanswers: {seen:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    assert!(seen["1.0.0"] > 0 && seen["2.0.0"] > 0, "{seen:?}");
    assert_eq!(
        processes_in(&releases),
        instances.pids(),
        "v1's instances are gone"
    );
    assert_eq!(instances.pids().len(), 2);

    // v3 to its 50/50 state, then slipway dies with SIGKILL.
    release(&server, &admin, root, "3.0.0");
    let third = deploy(&server, &admin);
    wait_for_confirmation(&server, &admin, &third);
    let before = instances.pids();
    assert_eq!(before.len(), 4);
    server.kill();
    assert_eq!(
        processes_in(&releases),
        before,
        "the instances outlive slipway"
    );

    // Restarted, it adopts the same processes — none orphaned, none started twice — and serves.
    let server = SpawnedServer::start(Path::new(BIN), &config, &data);
    assert_eq!(instances.pids(), before, "{}", server.log());
    assert_eq!(processes_in(&releases), before);
    let mut answers = BTreeSet::new();
    for _ in 0..40 {
        let (status, body) = get(proxy).unwrap();
        assert_eq!(status, 200, "{body}");
        answers.insert(body.split_whitespace().next().unwrap().to_owned());
    }
    assert_eq!(
        answers,
        BTreeSet::from(["2.0.0".to_owned(), "3.0.0".to_owned()])
    );

    // The deploy goes on where it was: confirmed, v2 drained and stopped.
    confirm_and_finish(&server, &admin, &third);
    let after = instances.pids();
    assert_eq!(after.len(), 2);
    assert!(
        after.is_subset(&before),
        "v3's instances are the adopted ones"
    );
    assert_eq!(processes_in(&releases), after, "no orphan of v2");
    assert_eq!(
        get(proxy).unwrap().1.split_whitespace().next(),
        Some("3.0.0")
    );

    // A rollback to v2 under load fails no request either.
    let load = Load::start(proxy);
    wait_until(Duration::from_secs(30), "load on v3", || {
        load.versions().get("3.0.0").copied().unwrap_or(0) > 20
    });
    let answer = server
        .cli(
            &admin,
            &[
                "--output",
                "json",
                "rollback",
                "idp",
                "--env",
                "dev",
                "--reason",
                "v3 is slow",
            ],
        )
        .success();
    let rollback = json(&answer.stdout)["deploy"]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    finish(&server, &admin, &rollback);
    let at_end = load.versions().get("2.0.0").copied().unwrap_or(0);
    wait_until(Duration::from_secs(30), "answers from v2 again", || {
        load.versions().get("2.0.0").copied().unwrap_or(0) > at_end + 50
    });
    let (seen, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failed request(s) during the rollback: {:?}\nanswers: {seen:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
    let rolled_back = instances.pids();
    assert_eq!(rolled_back.len(), 2);
    assert!(
        rolled_back.is_disjoint(&after),
        "v2 runs again in new instances"
    );
    assert_eq!(processes_in(&releases), rolled_back, "no orphan of v3");

    // The proxy's metrics are on /metrics.
    let api: SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let (status, text) = get_path(api, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("slipway_proxy_responses_total{service=\"idp\",region=\"dev\",version=\"RC 2\",class=\"2xx\"}"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    drop(server);
}

/// The pids of the instances of release `label` in the local target's state file.
fn pids_of(state_file: &Path, label: &str) -> BTreeSet<u32> {
    let Ok(text) = std::fs::read_to_string(state_file) else {
        return BTreeSet::new();
    };
    json(&text)["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["release"]["label"] == label)
        .filter_map(|i| i["pid"].as_u64().map(|p| p as u32))
        .collect()
}

#[test]
fn instance_killed_during_bake_is_replaced_and_a_whole_fleet_keeps_serving() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    let proxy_port = free_port();
    let config = root.join("slipway.toml");
    // A longer bake, so the killed instance dies in it and its replacement has time to come up.
    let text = self::config(proxy_port).replace("bake = \"2s\"", "bake = \"8s\"");
    std::fs::write(&config, text).unwrap();
    let data = root.join("data");
    let releases = data.join("releases");
    let state_file = data.join("local/dev.json");
    let instances = Instances {
        state_file: state_file.clone(),
    };
    let proxy: SocketAddr = format!("127.0.0.1:{proxy_port}").parse().unwrap();
    let server = SpawnedServer::start(Path::new(BIN), &config, &data);
    let admin = server.admin_token.clone();

    release(&server, &admin, root, "1.0.0");
    let first = deploy(&server, &admin);
    finish(&server, &admin, &first);

    let load = Load::start(proxy);
    release(&server, &admin, root, "2.0.0");
    let second = deploy(&server, &admin);
    wait_until(Duration::from_secs(60), "the bake", || {
        let phase = phase(&server, &admin, &second);
        assert_ne!(phase["state"], "finished", "{phase}\n{}", server.log());
        phase["step"] == "bake"
    });
    let victims = pids_of(&state_file, "RC 2");
    assert_eq!(victims.len(), 2, "{}", server.log());
    let victim = *victims.iter().next().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();

    // The supervisor starts a replacement; the deploy either succeeds with it or fails safely.
    wait_until(Duration::from_secs(90), "the deploy to end", || {
        let phase = phase(&server, &admin, &second);
        if phase["waiting_for"] == "scale_in_confirmation" {
            server.cli(&admin, &["confirm", &second]).success();
        }
        phase["state"] == "finished"
    });
    let ended = phase(&server, &admin, &second);
    let serving = if ended["result"] == "succeeded" {
        "2.0.0"
    } else {
        assert_eq!(ended["result"], "rolled_back", "{ended}\n{}", server.log());
        "1.0.0"
    };
    let (seen, failures) = load.finish();
    eprintln!(
        "deploy {second} ended {}; answers {seen:?}; {} failed: {failures:?}",
        ended["result"],
        failures.len()
    );
    // Even the requests in flight on the killed instance are answered: the proxy retries an
    // idempotent request whose connection broke before any response, on another instance.
    assert!(
        failures.is_empty(),
        "{} failed request(s): {failures:?}\nanswers: {seen:?}",
        failures.len()
    );
    for _ in 0..20 {
        let (status, body) = get(proxy).unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.split_whitespace().next(), Some(serving));
    }
    let running = instances.pids();
    assert_eq!(running.len(), 2, "one whole fleet of two: {}", server.log());
    assert!(!running.contains(&victim));
    assert_eq!(processes_in(&releases), running, "no orphan");

    // The killed instance's log says what happened, through `slipway logs`.
    let logs = server
        .cli(&admin, &["logs", "idp", "--env", "dev", "--lines", "200"])
        .success()
        .stdout;
    assert!(logs.lines().all(|l| l.starts_with("[web-")), "{logs}");
    if serving == "2.0.0" {
        assert!(logs.contains("restarting"), "{logs}");
    }
    drop(server);
}
