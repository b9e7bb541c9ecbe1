//! End to end: the real `slipway` binary serving on port 0, driven by the real CLI, deploying
//! through the command target with a scripted fleet, killed with SIGKILL mid-deploy and
//! restarted.

use std::path::Path;
use std::time::{Duration, Instant};

use slipway_testkit::server::SpawnedServer;

use crate::support::FLEET_SCRIPT;

const BIN: &str = env!("CARGO_BIN_EXE_slipway");

const CONFIG: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"
pools = { web = { count = 2, traffic = true } }

[environment.staging]
target = "command"
[environment.staging.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"

[environment.prod]
target = "command"
protected = true
approvals = { required = 1, expires = "30m" }
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
provenance = "off"
[environment.prod.command]
launch = "sh fleet.sh launch"
traffic = "sh fleet.sh traffic"
stop = "sh fleet.sh stop"
observe = "sh fleet.sh observe"
timeout = "30s"
"#;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Waits until `check` holds, for at most `limit`.
fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn release_is_pushed_deployed_and_survives_a_sigkill_mid_deploy() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    write(&root.join("fleet.sh"), FLEET_SCRIPT);
    write(&root.join("slipway.toml"), CONFIG);
    let config = root.join("slipway.toml");
    let data = root.join("data");
    // The server's own SLIPWAY_* settings must never reach the scripts it runs.
    let secrets = [
        ("SLIPWAY_TOKEN", "slw_not-for-scripts"),
        ("SLIPWAY_DATABASE_PASSWORD", "x"),
    ];
    let mut server = SpawnedServer::start_with_env(Path::new(BIN), &config, &data, &secrets);
    let admin = server.admin_token.clone();

    // The admin token file is private to its owner.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Two users: alice deploys, bob approves.
    server
        .cli(&admin, &["user", "add", "alice", "--role", "deployer"])
        .success();
    server
        .cli(&admin, &["user", "add", "bob", "--role", "approver"])
        .success();
    let alice = server
        .cli(&admin, &["token", "create", "--user", "alice"])
        .success()
        .stdout;
    let alice = alice.trim();
    let bob = server
        .cli(&admin, &["token", "create", "--user", "bob"])
        .success()
        .stdout;
    let bob = bob.trim();
    assert_eq!(
        server.cli(alice, &["whoami"]).success().stdout.trim(),
        "alice (deployer)"
    );

    // An artifact pushed and released as RC 1, deployed to staging and followed to success.
    let artifact = root.join("idp-1.0.0.tar.gz");
    write(&artifact, "the first build");
    let pushed = server
        .cli(
            alice,
            &[
                "artifact",
                "push",
                artifact.to_str().unwrap(),
                "--service",
                "idp",
                "--version",
                "1.0.0",
                "--commit",
                "3f2a9c1",
            ],
        )
        .success();
    assert!(
        pushed.stdout.starts_with("pushed idp 1.0.0 sha256:"),
        "{}",
        pushed.stdout
    );
    let again = server
        .cli(
            alice,
            &[
                "artifact",
                "push",
                artifact.to_str().unwrap(),
                "--service",
                "idp",
                "--version",
                "1.0.0",
            ],
        )
        .success();
    assert!(again.stdout.contains("already stored"), "{}", again.stdout);
    let created = server
        .cli(alice, &["release", "create", "idp", "--version", "1.0.0"])
        .success();
    assert!(
        created.stdout.starts_with("created idp RC 1"),
        "{}",
        created.stdout
    );
    let followed = server.cli(
        alice,
        &[
            "deploy",
            "idp",
            "--env",
            "staging",
            "--follow",
            "--timeout",
            "60s",
        ],
    );
    assert_eq!(
        followed.code(),
        0,
        "{}\n{}",
        followed.stdout,
        followed.stderr
    );
    assert!(
        followed.stdout.contains("deploy 1 succeeded"),
        "{}",
        followed.stdout
    );
    assert!(
        followed.stdout.contains("launched 2 instance(s) of RC 1"),
        "{}",
        followed.stdout
    );

    // RC 2 to staging, where RC 1 runs: its launch is slow, and the server is killed while
    // the launch script runs.
    let artifact = root.join("idp-1.1.0.tar.gz");
    write(&artifact, "the second build");
    server
        .cli(
            alice,
            &[
                "artifact",
                "push",
                artifact.to_str().unwrap(),
                "--service",
                "idp",
                "--version",
                "1.1.0",
            ],
        )
        .success();
    server
        .cli(alice, &["release", "create", "idp", "--version", "1.1.0"])
        .success();
    let fleet = root.join("fleet").join("staging");
    write(&fleet.join("slow"), "");
    let started = server
        .cli(
            alice,
            &["--output", "json", "deploy", "idp", "--env", "staging"],
        )
        .success();
    let deploy = json(&started.stdout);
    assert_eq!(deploy["release"]["label"], "RC 2");
    assert_eq!(deploy["previous"]["label"], "RC 1");
    let id = deploy["id"].as_i64().unwrap().to_string();
    wait_until(Duration::from_secs(10), "the slow launch to start", || {
        std::fs::read_dir(fleet.join("keys")).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("{id}_")) && name.ends_with(".lock")
            })
        })
    });
    server.kill();

    let server = SpawnedServer::start(Path::new(BIN), &config, &data);
    let followed = server.cli(alice, &["status", &id, "--follow", "--timeout", "60s"]);
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

    // Exactly once: one launch of RC 2, one ending, and the old fleet stopped once.
    let launches = std::fs::read_to_string(fleet.join("launches.log")).unwrap();
    assert_eq!(
        launches.lines().filter(|l| l.starts_with("RC 2 ")).count(),
        1,
        "launches:\n{launches}"
    );
    let events = server
        .cli(
            alice,
            &["audit", "export", "--format", "jsonl", "--deploy", &id],
        )
        .success()
        .stdout;
    let finished = events
        .lines()
        .filter(|line| json(line)["kind"] == "deploy_finished")
        .count();
    assert_eq!(finished, 1, "{events}");
    let stops = std::fs::read_to_string(fleet.join("stops.log")).unwrap();
    assert_eq!(stops.lines().collect::<Vec<_>>(), ["RC 1"]);

    // RC 2 to prod waits for an approval from someone other than alice: bob gives it.
    let started = server
        .cli(
            alice,
            &["--output", "json", "deploy", "idp", "--env", "prod"],
        )
        .success();
    let id = json(&started.stdout)["id"].as_i64().unwrap().to_string();
    wait_until(Duration::from_secs(10), "the approval wait", || {
        let status = server
            .cli(alice, &["--output", "json", "status", &id])
            .success();
        json(&status.stdout)["phase"]["waiting_for"] == "approval"
    });
    let refused = server.cli(alice, &["approve", &id]);
    assert_eq!(
        refused.code(),
        1,
        "the requester cannot approve: {}",
        refused.stdout
    );
    assert!(refused.stderr.contains("hint:"), "{}", refused.stderr);
    server.cli(bob, &["approve", &id]).success();
    let followed = server.cli(alice, &["status", &id, "--follow", "--timeout", "60s"]);
    assert_eq!(
        followed.code(),
        0,
        "{}\n{}",
        followed.stdout,
        followed.stderr
    );
    assert!(
        followed.stdout.contains("approved by bob"),
        "{}",
        followed.stdout
    );

    let status = server
        .cli(alice, &["--output", "json", "status", "idp"])
        .success();
    let running: Vec<String> = json(&status.stdout)[0]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["environment"].as_str().unwrap(),
                e["running"]["label"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(running, ["staging RC 2", "prod RC 2"]);

    let verified = server.cli(alice, &["audit", "verify"]).success();
    assert!(
        verified.stdout.starts_with("audit log intact"),
        "{}",
        verified.stdout
    );

    // SIGTERM stops the server cleanly.
    let mut server = server;
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("it stops within 20 s");
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert!(
        server.log().contains("slipway: stopped"),
        "{}",
        server.log()
    );
}
