//! `slipway check-config` run as a user would: on real files, checking exit code and output.

use std::path::Path;
use std::process::{Command, Output};

const EXAMPLE: &str = include_str!("../../../../examples/slipway.toml");

/// `slipway ARGS…` in `dir`, with no `SLIPWAY_CONFIG` from the environment running the tests.
fn slipway(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .current_dir(dir)
        .env_remove("SLIPWAY_CONFIG")
        .output()
        .expect("run slipway")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

const MANY_MISTAKES: &str = r#"[[service]]
name = "idp"
strat = "bin/server --port $PORT"

[environment.dev]
target = "locl"

[environment.prod]
protected = true
bak = "15m"
bake = "15 minutes"
windows = ["mon-thu 09:00-16:00 America/New_Yrok"]
provenance = "off"
"#;

#[test]
fn valid_config_prints_a_summary_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slipway.toml"), EXAMPLE).unwrap();

    let output = slipway(dir.path(), &["check-config"]);

    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "slipway.toml: ok — 2 services, 4 environments (dev → int → staging → prod)\n"
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn config_path_comes_from_the_flag_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("other.toml"), EXAMPLE).unwrap();

    let flag = slipway(dir.path(), &["check-config", "--config", "other.toml"]);
    assert_eq!(flag.status.code(), Some(0), "stderr: {}", stderr(&flag));
    assert!(
        stdout(&flag).starts_with("other.toml: ok"),
        "{}",
        stdout(&flag)
    );

    let from_env = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("check-config")
        .current_dir(dir.path())
        .env("SLIPWAY_CONFIG", "other.toml")
        .output()
        .unwrap();
    assert_eq!(
        from_env.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&from_env)
    );
    assert!(stdout(&from_env).starts_with("other.toml: ok"));
}

#[test]
fn invalid_config_prints_every_error_with_hints_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slipway.toml"), MANY_MISTAKES).unwrap();

    let output = slipway(dir.path(), &["check-config"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "",
        "errors are not data: nothing on stdout"
    );
    insta::assert_snapshot!(stderr(&output));
}

#[test]
fn missing_config_file_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();

    let output = slipway(dir.path(), &["check-config", "--config", "missing.toml"]);

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: no config file at missing.toml\n  \
         hint: create one with `slipway init`, or pass --config PATH\n"
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn json_output_gives_the_summary_or_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), EXAMPLE).unwrap();
    std::fs::write(dir.path().join("bad.toml"), MANY_MISTAKES).unwrap();

    let good = slipway(
        dir.path(),
        &["check-config", "--config", "good.toml", "--output", "json"],
    );
    assert_eq!(good.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&good)).unwrap();
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["services"], serde_json::json!(["idp", "pivcac"]));
    assert_eq!(summary["environments"][3]["name"], "prod");
    assert_eq!(summary["environments"][3]["protected"], true);

    let bad = slipway(
        dir.path(),
        &["--output", "json", "check-config", "--config", "bad.toml"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&bad)).unwrap();
    assert_eq!(report["ok"], false);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 6);
    assert_eq!(errors[0]["code"], "missing_key");
    assert_eq!(
        errors[4],
        serde_json::json!({
            "code": "invalid_value",
            "file": "bad.toml",
            "line": 11,
            "column": 8,
            "message": "`bake` in [environment.prod]: \"15 minutes\" is not a duration",
            "hint": "write `15m`",
        })
    );

    let missing = slipway(
        dir.path(),
        &["check-config", "--config", "nope.toml", "--output", "json"],
    );
    assert_eq!(missing.status.code(), Some(1));
    let error: serde_json::Value = serde_json::from_str(&stdout(&missing)).unwrap();
    assert_eq!(error["error"]["code"], "config_not_found");
}
