//! A release's pinned config version reaching what the targets start, with real processes: the
//! local target's instances (first start, restart after a crash, start after slipway's own
//! restart) and its migrate task; the command target's launch and task as variables or as a
//! private env file. No value ends up in a file slipway writes or in a report.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::config::ConfigDelivery;
use slipway_core::deploy::{ReleaseRef, Split};
use slipway_core::settings::quote_env_value;
use slipway_engine::plugin::{ConfigSource, Target};
use slipway_targets::local::state_file;
use slipway_targets::{CommandTarget, TargetError};

use crate::local_support::{self, Local, get, is_running, kill_group, web};
use crate::support::{
    self, MemoryConfig, environment, files_containing, harness, harness_with, launch_request,
    release, wait_until,
};

/// A secret value searched for wherever it must not be.
const CANARY: &str = "canary-5d1f0c9e-never-written-down";

/// A plain value with characters a shell or an env file treats specially.
const GREETING: &str = "it's \"hello\", $USER";

const NO_SOURCE: &str = "cannot be read: this slipway has no config source\nhint: give slipway \
                         the master key of config versions (`[secrets] key_file` in \
                         slipway.toml, or SLIPWAY_MASTER_KEY) and restart it";

fn pinned(mut release: ReleaseRef, version: u64) -> ReleaseRef {
    release.config_version = Some(version);
    release
}

/// Version 3 of `idp`'s config in `environment`.
fn version_3(environment: &str) -> Arc<MemoryConfig> {
    MemoryConfig::with(
        "idp",
        environment,
        3,
        &[
            ("GREETING", GREETING, false),
            ("DATABASE_PASSWORD", CANARY, true),
        ],
    )
}

fn as_source(source: &Arc<MemoryConfig>) -> Arc<dyn ConfigSource> {
    Arc::clone(source) as Arc<dyn ConfigSource>
}

/// What an instance listening on `port` has in its environment as `name`.
async fn variable(port: u16, name: &str) -> String {
    let (status, body) = get(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &format!("/env/{name}"),
    )
    .await;
    assert_eq!(status, 200, "{name}: {body}");
    body
}

// The local target.

#[tokio::test]
async fn local_instances_get_the_pinned_config_version_as_environment_variables() {
    let mut local = Local::new("{ web = { count = 2, traffic = true } }", "").await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);

    local
        .launch(&local_support::key("launch"), &rc1, &web(2))
        .await
        .unwrap();
    assert_eq!(
        source.reads(),
        1,
        "read once for the launch's two instances"
    );
    let instances = local.instances().await;
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        assert_eq!(variable(instance.port, "GREETING").await, GREETING);
        assert_eq!(variable(instance.port, "DATABASE_PASSWORD").await, CANARY);
        assert_eq!(variable(instance.port, "SLIPWAY_CONFIG_VERSION").await, "3");
        assert_eq!(
            variable(instance.port, "PORT").await,
            instance.port.to_string()
        );
        assert_eq!(
            variable(instance.port, "SLIPWAY_INSTANCE").await,
            instance.id
        );
    }
    let log = std::fs::read_to_string(&instances[0].log_file).unwrap();
    assert!(
        log.contains(&format!(
            "starting {} of RC 1 (1.1.0) with config version 3 on port",
            instances[0].id
        )),
        "{log}"
    );
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn crashed_local_instance_reads_its_config_version_again_when_restarted() {
    let mut local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);
    local
        .launch(&local_support::key("launch"), &rc1, &web(1))
        .await
        .unwrap();
    let first = local.instances().await.remove(0);
    assert_eq!(source.reads(), 1);

    kill_group(first.pid.unwrap());
    let second = local
        .wait_instances("a restart", |i| {
            i[0].restarts == 1 && i[0].healthy && i[0].pid != first.pid
        })
        .await
        .remove(0);
    assert_eq!(source.reads(), 2, "the restart read the version again");
    assert_eq!(variable(second.port, "GREETING").await, GREETING);
    assert_eq!(variable(second.port, "SLIPWAY_CONFIG_VERSION").await, "3");
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn local_instance_that_died_while_slipway_was_away_gets_the_values_when_started_again() {
    let mut local = Local::new("{ web = { count = 2, traffic = true } }", "").await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);
    local
        .launch(&local_support::key("launch"), &rc1, &web(2))
        .await
        .unwrap();
    let before = local.instances().await;

    local.close();
    let dead = before[0].clone();
    kill_group(dead.pid.unwrap());
    wait_until("the instance died", Duration::from_secs(10), || {
        !is_running(dead.pid.unwrap())
    })
    .await;
    local.restart().await;

    let after = local
        .wait_instances("both healthy again", |i| {
            i.len() == 2 && i.iter().all(|i| i.healthy)
        })
        .await;
    let replaced = after.iter().find(|i| i.id == dead.id).unwrap();
    assert_ne!(replaced.pid, dead.pid);
    assert_eq!(variable(replaced.port, "GREETING").await, GREETING);
    assert_eq!(variable(replaced.port, "DATABASE_PASSWORD").await, CANARY);
    let adopted = after.iter().find(|i| i.id == before[1].id).unwrap();
    assert_eq!(adopted.pid, before[1].pid);
    assert_eq!(variable(adopted.port, "GREETING").await, GREETING);
    assert_eq!(
        source.reads(),
        2,
        "the launch's read and the dead instance's start; adopting needs none"
    );
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn local_migrate_task_gets_the_values() {
    let mut local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''printf '%s|%s|%s\\n' \"$GREETING\" \"$SLIPWAY_CONFIG_VERSION\" \"$SLIPWAY_TASK\" > ../../../control/task-env'''",
    )
    .await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);

    let report = local
        .target()
        .run_task(
            &local_support::key("migrate"),
            &local_support::scope(),
            "migrate",
            &rc1,
        )
        .await
        .unwrap();
    assert!(
        report.starts_with("migrate of RC 1 finished in "),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(local.control("task-env")).unwrap(),
        format!("{GREETING}|3|migrate\n")
    );
    assert_eq!(source.reads(), 1);
}

#[tokio::test]
async fn pinned_version_without_a_config_source_fails_the_local_launch_and_task() {
    let mut local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''touch ../../../control/migrated'''",
    )
    .await;
    let rc1 = pinned(local.release(1), 3);

    let error = local
        .launch(&local_support::key("launch"), &rc1, &web(1))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        format!("launch of RC 1 failed: config version 3 of `idp` in `dev` {NO_SOURCE}")
    );
    assert!(local.instances().await.is_empty(), "nothing was started");
    let error = local
        .target()
        .run_task(
            &local_support::key("migrate"),
            &local_support::scope(),
            "migrate",
            &rc1,
        )
        .await
        .unwrap_err()
        .message;
    assert_eq!(
        error,
        format!("migrate of RC 1 failed: config version 3 of `idp` in `dev` {NO_SOURCE}")
    );
    assert!(!local.control("migrated").exists());

    // A source that cannot answer fails them the same way, with its reason.
    let source = version_3("dev");
    source.fail();
    local.read_config_from(as_source(&source)).await;
    let error = local
        .launch(&local_support::key("launch"), &rc1, &web(1))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "launch of RC 1 failed: config version 3 of `idp` in `dev` cannot be read: the vault is \
         sealed (a test said so)"
    );
    assert!(local.instances().await.is_empty());

    // A release that pins no version needs no source.
    local
        .launch(&local_support::key("launch"), &local.release(2), &web(1))
        .await
        .unwrap();
    let instance = local.instances().await.remove(0);
    let (status, _) = get(
        SocketAddr::from(([127, 0, 0, 1], instance.port)),
        "/env/SLIPWAY_CONFIG_VERSION",
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(source.reads(), 1, "only the pinned launch asked");
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn local_instance_whose_config_version_cannot_be_read_is_not_restarted_and_says_why() {
    let mut local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);
    local
        .launch(&local_support::key("launch"), &rc1, &web(1))
        .await
        .unwrap();
    let first = local.instances().await.remove(0);

    source.fail();
    kill_group(first.pid.unwrap());
    let expected = "cannot start: config version 3 of `idp` in `dev` cannot be read: the vault \
                    is sealed (a test said so); trying again in";
    wait_until(
        "the failed start is in the instance's log",
        Duration::from_secs(20),
        || std::fs::read_to_string(&first.log_file).is_ok_and(|log| log.contains(expected)),
    )
    .await;
    let now = local.instances().await.remove(0);
    assert!(!now.running, "{now:#?}");
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn no_config_value_reaches_the_local_targets_files_or_reports() {
    let mut local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''test \"$DATABASE_PASSWORD\" = \"$EXPECTED\"'''",
    )
    .await;
    let source = version_3("dev");
    local.read_config_from(as_source(&source)).await;
    let rc1 = pinned(local.release(1), 3);

    let mut reports = vec![
        local
            .launch(&local_support::key("launch"), &rc1, &web(1))
            .await
            .unwrap(),
    ];
    let first = local.instances().await.remove(0);
    kill_group(first.pid.unwrap());
    local
        .wait_instances("a restart", |i| i[0].restarts == 1 && i[0].healthy)
        .await;
    local.restart().await;
    let state = std::fs::read_to_string(state_file(&local.data_dir(), "dev")).unwrap();
    assert!(
        state.contains("\"config_version\": 3"),
        "only the number: {state}"
    );
    // The task fails (its EXPECTED is unset): its error is a report too.
    reports.push(
        local
            .target()
            .run_task(
                &local_support::key("migrate"),
                &local_support::scope(),
                "migrate",
                &rc1,
            )
            .await
            .unwrap_err()
            .message,
    );
    reports.push(
        local
            .target()
            .stop(&local_support::key("stop"), &local_support::scope(), &rc1)
            .await
            .unwrap(),
    );

    for report in &reports {
        assert!(!report.contains(CANARY), "{report}");
        assert!(!report.contains(GREETING), "{report}");
    }
    assert_eq!(
        files_containing(local.dir.path(), CANARY),
        Vec::<std::path::PathBuf>::new()
    );
    let log = std::fs::read_to_string(&first.log_file).unwrap();
    assert!(log.contains("with config version 3"), "{log}");
}

// The command target.

/// A harness whose launch and task write their environment (and, in file mode, what the env
/// file held, its modes and its path) into its directory.
fn recording(delivery: ConfigDelivery, source: &Arc<MemoryConfig>) -> support::Harness {
    let record = |op: &str| match delivery {
        ConfigDelivery::Env => format!("{op} = '''env > {op}-env.txt'''"),
        ConfigDelivery::File => format!(
            "{op} = '''env > {op}-env.txt; f={{config_file}}; cp \"$f\" {op}-copy.txt; \
             stat -c %a \"$f\" \"$(dirname \"$f\")\" > {op}-modes.txt; \
             printf %s \"$f\" > {op}-path.txt'''"
        ),
    };
    harness_with(
        &format!("{}\n{}", record("launch"), record("task")),
        delivery,
        Some(as_source(source)),
    )
}

/// The lines of an `env` dump that hold the config version or its values, sorted.
fn config_lines(h: &support::Harness, name: &str) -> Vec<String> {
    let mut lines: Vec<String> = h
        .lines(name)
        .into_iter()
        .filter(|line| {
            line.starts_with("GREETING=")
                || line.starts_with("DATABASE_PASSWORD=")
                || line.starts_with("SLIPWAY_CONFIG_")
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn command_launch_and_task_get_the_values_as_environment_variables() {
    let source = version_3("staging");
    let h = recording(ConfigDelivery::Env, &source);
    let rc2 = pinned(release(2), 3);

    let launched = h
        .target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(rc2.clone()),
        )
        .await
        .unwrap();
    let tasked = h
        .target
        .run_task(
            &support::key("task"),
            &support::scope(None),
            "migrate",
            &rc2,
        )
        .await
        .unwrap();

    for file in ["launch-env.txt", "task-env.txt"] {
        assert_eq!(
            config_lines(&h, file),
            [
                format!("DATABASE_PASSWORD={CANARY}"),
                format!("GREETING={GREETING}"),
                "SLIPWAY_CONFIG_VERSION=3".to_owned(),
            ],
            "{file}"
        );
    }
    assert_eq!(source.reads(), 2, "read once per command");
    assert!(!launched.contains(CANARY) && !tasked.contains(CANARY));
    assert!(!h.path("data").join("config-files").exists());
    let mut holding = files_containing(h.dir.path(), CANARY);
    holding.sort();
    assert_eq!(
        holding,
        [h.path("launch-env.txt"), h.path("task-env.txt")],
        "only the scripts' own dumps hold it"
    );
}

#[tokio::test]
async fn command_file_mode_writes_a_private_env_file_that_lives_as_long_as_the_command() {
    let source = version_3("staging");
    let h = recording(ConfigDelivery::File, &source);
    let rc2 = pinned(release(2), 3);

    h.target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(rc2.clone()),
        )
        .await
        .unwrap();
    h.target
        .run_task(
            &support::key("task"),
            &support::scope(None),
            "migrate",
            &rc2,
        )
        .await
        .unwrap();

    let expected = format!(
        "DATABASE_PASSWORD={}\nGREETING={}\n",
        quote_env_value(CANARY),
        quote_env_value(GREETING)
    );
    let files_dir = h.path("data").join("config-files");
    let mut paths = Vec::new();
    for op in ["launch", "task"] {
        assert_eq!(h.read(&format!("{op}-copy.txt")), expected, "{op}");
        assert_eq!(h.lines(&format!("{op}-modes.txt")), ["600", "700"], "{op}");
        let path = std::path::PathBuf::from(h.read(&format!("{op}-path.txt")));
        assert!(path.starts_with(&files_dir), "{}", path.display());
        assert!(!path.exists(), "{} is removed", path.display());
        assert!(!path.parent().unwrap().exists(), "its directory too");
        assert_eq!(
            config_lines(&h, &format!("{op}-env.txt")),
            [
                format!("SLIPWAY_CONFIG_FILE={}", path.display()),
                "SLIPWAY_CONFIG_VERSION=3".to_owned(),
            ],
            "{op}: the values are in the file only"
        );
        paths.push(path);
    }
    assert_ne!(
        paths[0].parent(),
        paths[1].parent(),
        "a fresh directory each time"
    );
    let mut holding = files_containing(h.dir.path(), CANARY);
    holding.sort();
    assert_eq!(
        holding,
        [h.path("launch-copy.txt"), h.path("task-copy.txt")],
        "only the scripts' own copies hold it"
    );
    assert_eq!(std::fs::read_dir(&files_dir).unwrap().count(), 0);
    let mode = std::fs::metadata(&files_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[tokio::test]
async fn command_env_file_is_removed_when_the_command_fails_or_times_out() {
    let source = version_3("staging");
    let rc2 = pinned(release(2), 3);
    let failing = harness_with(
        "launch = '''printf %s \"$SLIPWAY_CONFIG_FILE\" > path.txt; exit 3'''",
        ConfigDelivery::File,
        Some(as_source(&source)),
    );
    let error = failing
        .target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(rc2.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        error.message.starts_with("launch failed with exit code 3"),
        "{error}"
    );
    let path = failing.read("path.txt");
    assert!(!path.is_empty());
    assert!(!std::path::Path::new(&path).exists(), "{path} is removed");

    let slow = harness_with(
        "timeout = \"1s\"\n\
         launch = '''printf %s \"$SLIPWAY_CONFIG_FILE\" > path.txt; sleep 30'''",
        ConfigDelivery::File,
        Some(as_source(&source)),
    );
    let (key, scope, request) = (
        support::key("launch"),
        support::scope(None),
        launch_request(rc2),
    );
    let launch = slow.target.launch(&key, &scope, &request);
    let error = tokio::time::timeout(Duration::from_secs(20), launch)
        .await
        .expect("the launch outlived its timeout")
        .unwrap_err();
    assert!(
        error.message.starts_with("launch timed out after 1s"),
        "{error}"
    );
    let path = slow.read("path.txt");
    assert!(!std::path::Path::new(&path).exists(), "{path} is removed");
    assert!(!error.message.contains(CANARY));
}

#[tokio::test]
async fn command_operations_other_than_launch_and_task_get_no_config() {
    for delivery in [ConfigDelivery::Env, ConfigDelivery::File] {
        let source = version_3("staging");
        let h = harness_with(
            "traffic = '''env > traffic-env.txt'''\n\
             stop = '''env > stop-env.txt'''\n\
             observe = '''env > observe-env.txt; echo '{\"fleets\":[]}' '''",
            delivery,
            Some(as_source(&source)),
        );
        let rc2 = pinned(release(2), 3);
        let split = Split {
            weights: [("RC 2".to_owned(), 1)].into_iter().collect(),
            sticky: false,
            header: None,
            header_version: None,
        };
        let scope = support::scope(None);
        h.target
            .set_traffic(&support::key("traffic"), &scope, &split)
            .await
            .unwrap();
        h.target
            .stop(&support::key("stop"), &scope, &rc2)
            .await
            .unwrap();
        h.target.observe(&scope).await.unwrap();
        for file in ["traffic-env.txt", "stop-env.txt", "observe-env.txt"] {
            assert_eq!(
                config_lines(&h, file),
                Vec::<String>::new(),
                "{delivery:?} {file}"
            );
        }
        assert_eq!(source.reads(), 0, "{delivery:?}");
    }
}

#[tokio::test]
async fn pinned_version_without_a_config_source_fails_the_command_launch_and_task() {
    let h = harness("launch = '''touch ran'''\ntask = '''touch ran'''");
    let rc2 = pinned(release(2), 3);
    let error = h
        .target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(rc2.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        format!("launch of RC 2 failed: config version 3 of `idp` in `staging` {NO_SOURCE}")
    );
    let error = h
        .target
        .run_task(
            &support::key("task"),
            &support::scope(None),
            "migrate",
            &rc2,
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        format!("task of RC 2 failed: config version 3 of `idp` in `staging` {NO_SOURCE}")
    );
    assert!(!h.path("ran").exists(), "neither command ran");

    let source = version_3("staging");
    source.fail();
    let h = harness_with(
        "launch = '''touch ran'''",
        ConfigDelivery::File,
        Some(as_source(&source)),
    );
    let error = h
        .target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(rc2),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        "launch of RC 2 failed: config version 3 of `idp` in `staging` cannot be read: the vault \
         is sealed (a test said so)"
    );
    assert!(!h.path("ran").exists());
}

#[tokio::test]
async fn command_release_without_a_pinned_version_gets_no_config_and_reads_nothing() {
    let source = version_3("staging");
    let h = harness_with(
        "launch = '''printf '[%s]' {config_file} > arg.txt; env > launch-env.txt'''",
        ConfigDelivery::File,
        Some(as_source(&source)),
    );
    h.target
        .launch(
            &support::key("launch"),
            &support::scope(None),
            &launch_request(release(2)),
        )
        .await
        .unwrap();
    assert_eq!(h.read("arg.txt"), "[]", "`{{config_file}}` is empty");
    assert_eq!(config_lines(&h, "launch-env.txt"), Vec::<String>::new());
    assert_eq!(source.reads(), 0);
}

#[test]
fn config_file_placeholder_needs_file_delivery() {
    // The parser refuses it in slipway.toml; the target refuses a config built otherwise.
    let table = "launch = '''./bin/launch --env-file {config_file}'''\nstop = 's'\nobserve = 'o'\n\
                 config = \"file\"";
    let dir = tempfile::tempdir().unwrap();
    let settings = || slipway_targets::CommandSettings {
        artifact_dir: dir.path().join("artifacts"),
        workdir: dir.path().to_owned(),
        data_dir: dir.path().join("data"),
        config: None,
    };
    let mut env_mode = environment(table);
    env_mode.command.as_mut().unwrap().config = ConfigDelivery::Env;
    let error = CommandTarget::new(&env_mode, settings()).unwrap_err();
    assert_eq!(
        error,
        TargetError::ConfigFileWithoutFile {
            environment: "staging".to_owned(),
            operation: slipway_core::config::CommandOperation::Launch,
        }
    );
    assert_eq!(
        error.to_string(),
        "the `launch` command of environment `staging` uses `{config_file}`, which has a value \
         only with config = \"file\" in [environment.staging.command]"
    );
    assert!(CommandTarget::new(&environment(table), settings()).is_ok());
}
