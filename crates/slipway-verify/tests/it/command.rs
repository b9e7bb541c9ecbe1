//! Command checks run by a real `/bin/sh`: the exit status is the verdict, the last output line
//! the note, the check's facts arrive as `SLIPWAY_*` variables, and a check that runs too long
//! (or is cancelled) takes everything it started with it.

use std::path::Path;
use std::time::Duration;

use slipway_core::analysis::{Classification, Measurement, MeasurementKind, Unit};
use slipway_core::config::Analysis;
use slipway_core::deploy::{DeployId, EffectKey};
use slipway_core::plan::VerificationSpec;
use slipway_core::time::Time;
use slipway_engine::plugin::{CheckRequest, Scope};
use slipway_testkit::fixtures::release;
use slipway_verify::command::{check_env, run_check};

/// Runs `script` in `dir` with `env`, failing the test if it has not ended after 20 s.
async fn run_in(
    dir: &Path,
    script: &str,
    timeout: Duration,
    env: &[(String, String)],
) -> Measurement {
    let check = run_check("command bin/check", script, timeout, env, Some(dir));
    tokio::time::timeout(Duration::from_secs(20), check)
        .await
        .expect("the check ends within 20s")
}

/// Runs `script` in a fresh directory with a 10 s limit and no variables.
async fn run(script: &str) -> Measurement {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), script, Duration::from_secs(10), &[]).await
}

/// Waits until `condition` holds, failing the test with `what` after `limit`.
async fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` still runs (a zombie has already died).
fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The pid a script wrote to `path` on a line of its own, once it has.
async fn pid_in(path: &Path) -> u32 {
    wait_until(
        "the script wrote its child's pid",
        Duration::from_secs(10),
        || std::fs::read_to_string(path).is_ok_and(|text| text.ends_with('\n')),
    )
    .await;
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn exit_zero_passes_with_the_last_output_line_as_note() {
    let measurement =
        run("echo 'checking orders'; echo '  14 orders in the last 5m  '; echo").await;

    assert_eq!(measurement.name, "command bin/check");
    assert_eq!(measurement.kind, MeasurementKind::Command);
    assert_eq!(measurement.source, "command");
    assert_eq!(measurement.unit, Unit::Number);
    assert_eq!(measurement.outcome, Classification::Pass);
    assert_eq!(measurement.note, "14 orders in the last 5m (exit 0)");
}

#[tokio::test]
async fn another_exit_status_fails() {
    // Both lines on stderr: stdout and stderr are read side by side, so their order between
    // each other is not defined, and the last line must be the stuck orders.
    let measurement =
        run("echo 'looking at the queue' >&2; echo 'stuck orders: 3' >&2; exit 3").await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(measurement.note, "stuck orders: 3 (exit 3)");
}

#[tokio::test]
async fn a_check_killed_by_a_signal_fails() {
    let measurement = run("kill -TERM $$").await;

    assert_eq!(measurement.outcome, Classification::Fail);
    assert_eq!(measurement.note, "killed by signal 15");
}

#[tokio::test]
async fn exit_75_is_no_data() {
    let measurement = run("echo 'no orders yet'; exit 75").await;

    assert_eq!(measurement.outcome, Classification::NoData);
    assert_eq!(measurement.note, "no orders yet (exit 75)");
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group_and_is_no_data() {
    let dir = tempfile::tempdir().unwrap();
    // 1s rather than less: the script must write its child's pid before the timeout, even on a
    // busy machine.
    let measurement = run_in(
        dir.path(),
        "sleep 60 & echo $! > sleeper.pid; echo 'waiting for the queue'; wait",
        Duration::from_secs(1),
        &[],
    )
    .await;

    assert_eq!(measurement.outcome, Classification::NoData);
    assert_eq!(
        measurement.note,
        "timed out after 1s (last output: waiting for the queue)"
    );
    let sleeper = pid_in(&dir.path().join("sleeper.pid")).await;
    wait_until(
        "the script's background `sleep 60` is gone",
        Duration::from_secs(10),
        || !is_running(sleeper),
    )
    .await;
}

#[tokio::test]
async fn a_cancelled_check_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("sleeper.pid");
    let mut check = Box::pin(run_check(
        "command bin/check",
        "sleep 60 & echo $! > sleeper.pid; wait",
        Duration::from_secs(60),
        &[],
        Some(dir.path()),
    ));

    let sleeper = tokio::select! {
        measurement = &mut check => panic!("the check ended early: {measurement:?}"),
        pid = pid_in(&pid_file) => pid,
    };
    assert!(is_running(sleeper));
    drop(check);

    wait_until(
        "the cancelled check's `sleep 60` is gone",
        Duration::from_secs(10),
        || !is_running(sleeper),
    )
    .await;
}

#[tokio::test]
async fn a_check_that_cannot_start_is_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");

    let measurement = run_in(&missing, "true", Duration::from_secs(10), &[]).await;

    assert_eq!(measurement.outcome, Classification::NoData);
    assert!(
        measurement.note.starts_with(&format!(
            "could not start /bin/sh in {}: ",
            missing.display()
        )),
        "{}",
        measurement.note
    );
}

#[tokio::test]
async fn only_the_end_of_the_output_is_kept_and_a_long_line_is_cut() {
    let chatty = run("yes 'all fine' | head -n 500000; echo 'done: 0 errors'").await;
    let long = run("printf '%0300d\\n' 0; exit 1").await;

    assert_eq!(chatty.note, "done: 0 errors (exit 0)");
    assert_eq!(long.outcome, Classification::Fail);
    assert_eq!(long.note, format!("{}… (exit 1)", "0".repeat(199)));
}

#[tokio::test]
async fn the_checks_facts_arrive_as_slipway_variables() {
    let key = EffectKey {
        deploy: DeployId(42),
        step: "5".to_owned(),
        attempt: 1,
        op: "verify-3".to_owned(),
    };
    let scope = Scope {
        service: "orders".to_owned(),
        environment: "prod".to_owned(),
        region: Some("us-east-1".to_owned()),
    };
    let (new, old) = (release(3), release(2));
    let spec = VerificationSpec {
        checks: Vec::new(),
        analysis: Analysis::defaults_for("local"),
    };
    let endpoints = [
        "http://127.0.0.1:41001".to_owned(),
        "http://127.0.0.1:41002".to_owned(),
    ];
    let request = CheckRequest {
        key: &key,
        scope: &scope,
        release: &new,
        baseline: Some(&old),
        step: "bake",
        spec: &spec,
        window: Duration::from_millis(300_500),
        endpoints: &endpoints,
        now: Time::from_millis(0),
    };
    let env = check_env(&request);
    let dir = tempfile::tempdir().unwrap();

    let measurement = run_in(
        dir.path(),
        "env | grep '^SLIPWAY_' | sort > seen.txt",
        Duration::from_secs(10),
        &env,
    )
    .await;

    assert_eq!(
        measurement.outcome,
        Classification::Pass,
        "{}",
        measurement.note
    );
    let seen = std::fs::read_to_string(dir.path().join("seen.txt")).unwrap();
    assert_eq!(
        seen,
        "SLIPWAY_BASELINE=RC 2\n\
         SLIPWAY_DEPLOY=42\n\
         SLIPWAY_ENDPOINTS=http://127.0.0.1:41001 http://127.0.0.1:41002\n\
         SLIPWAY_ENVIRONMENT=prod\n\
         SLIPWAY_REGION=us-east-1\n\
         SLIPWAY_RELEASE=RC 3\n\
         SLIPWAY_SERVICE=orders\n\
         SLIPWAY_STEP=bake\n\
         SLIPWAY_VERSION=1.3.0\n\
         SLIPWAY_WINDOW_SECONDS=300\n"
    );

    // Without a region or a baseline, those variables are set and empty.
    let scope = Scope {
        region: None,
        ..scope.clone()
    };
    let request = CheckRequest {
        scope: &scope,
        baseline: None,
        ..request
    };
    let env = check_env(&request);
    let value = |name: &str| {
        env.iter()
            .find(|(variable, _)| variable == name)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(value("SLIPWAY_REGION"), Some(""));
    assert_eq!(value("SLIPWAY_BASELINE"), Some(""));
}
