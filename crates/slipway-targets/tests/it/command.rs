//! The command target against real shell scripts: arguments, environment, quoting, exit codes,
//! timeouts and process groups, output limits and the observe JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use slipway_core::deploy::Split;
use slipway_core::time::Span;
use slipway_engine::plugin::{FleetState, Observation, Target};
use slipway_targets::{CommandSettings, CommandTarget, DETAIL_LIMIT, OUTPUT_LIMIT, shell_quote};

use crate::support::{
    environment, harness, is_running, key, launch_request, pid_in, release, scope, wait_until,
};

#[tokio::test]
async fn launch_runs_the_script_with_expanded_arguments() {
    let h = harness(
        "launch = '''printf '%s\\n' {service} {environment} {region} {label} {version} {digest} \
         {artifact} {config} {count} {pools} {key} > args.txt'''",
    );
    let detail = h
        .target
        .launch(
            &key("launch"),
            &scope(Some("us-east-1")),
            &launch_request(release(2)),
        )
        .await
        .unwrap();

    let hex = format!("{:064x}", 2);
    let artifact = h.path("artifacts").join("sha256").join(&hex);
    assert_eq!(
        h.lines("args.txt"),
        [
            "idp",
            "staging",
            "us-east-1",
            "RC 2",
            "1.2.0",
            &format!("sha256:{hex}"),
            artifact.to_str().unwrap(),
            "config-2",
            "3",
            "web=2,worker=1",
            "7/3/1/launch",
        ]
    );
    assert!(detail.starts_with("launch finished in "), "{detail}");
}

#[tokio::test]
async fn launch_gives_the_script_its_facts_in_environment_variables() {
    let h = harness("launch = '''env | grep '^SLIPWAY_' | sort > env.txt'''");
    h.target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap();

    let artifact = h
        .path("artifacts")
        .join("sha256")
        .join(format!("{:064x}", 2));
    let mut expected = vec![
        format!("SLIPWAY_ARTIFACT={}", artifact.display()),
        "SLIPWAY_CONFIG=config-2".to_owned(),
        "SLIPWAY_COUNT=3".to_owned(),
        format!("SLIPWAY_DIGEST=sha256:{:064x}", 2),
        "SLIPWAY_EFFECT_KEY=7/3/1/launch".to_owned(),
        "SLIPWAY_ENVIRONMENT=staging".to_owned(),
        "SLIPWAY_OPERATION=launch".to_owned(),
        "SLIPWAY_POOLS=web=2,worker=1".to_owned(),
        "SLIPWAY_REGION=".to_owned(),
        "SLIPWAY_RELEASE=RC 2".to_owned(),
        "SLIPWAY_SERVICE=idp".to_owned(),
        "SLIPWAY_VERSION=1.2.0".to_owned(),
    ];
    expected.sort();
    assert_eq!(h.lines("env.txt"), expected);
}

#[tokio::test]
async fn placeholder_values_are_shell_quoted() {
    let h = harness("launch = '''printf '%s\\n' {version} {label} > args.txt'''");
    let mut hostile = release(2);
    hostile.version =
        "1.0'; touch injected; echo \"$(touch injected2)\" `touch injected3`".to_owned();
    hostile.label = "RC 2 && touch injected4 # ${HOME}".to_owned();
    h.target
        .launch(
            &key("launch"),
            &scope(None),
            &launch_request(hostile.clone()),
        )
        .await
        .unwrap();

    assert_eq!(h.lines("args.txt"), [hostile.version, hostile.label]);
    for name in ["injected", "injected2", "injected3", "injected4"] {
        assert!(!h.path(name).exists(), "the value ran `touch {name}`");
    }
    assert_eq!(shell_quote("1.2.0"), "1.2.0");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("a=b"), "'a=b'", "could read as an assignment");
}

#[tokio::test]
async fn failing_script_reports_exit_code_and_stderr() {
    let h = harness(
        "launch = '''echo 'asking for 3 instances'; echo 'no capacity in us-east-1' >&2; exit 3'''",
    );
    let error = h
        .target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with("launch failed with exit code 3: `echo "),
        "{message}"
    );
    assert!(message.ends_with("\nno capacity in us-east-1"), "{message}");
}

#[tokio::test]
async fn failing_script_without_stderr_reports_its_stdout() {
    let h = harness("stop = '''echo 'instance i-123 is protected'; exit 1'''");
    let error = h
        .target
        .stop(&key("stop"), &scope(None), &release(1))
        .await
        .unwrap_err();
    assert!(
        error.message.starts_with("stop failed with exit code 1: ")
            && error.message.ends_with("\ninstance i-123 is protected"),
        "{error}"
    );
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    // 1s rather than less: the script must write its child's pid before the timeout, even on
    // a busy machine.
    let h = harness(
        "timeout = \"1s\"\n\
         launch = '''sleep 60 & echo $! > sleeper.pid; echo 'waiting for instances' >&2; wait'''",
    );
    let (key, scope, request) = (key("launch"), scope(None), launch_request(release(2)));
    let launch = h.target.launch(&key, &scope, &request);
    let error = tokio::time::timeout(Duration::from_secs(20), launch)
        .await
        .expect("the launch outlived its timeout")
        .unwrap_err();

    assert!(
        error
            .message
            .starts_with("launch timed out after 1s; its process group was killed: "),
        "{error}"
    );
    assert!(
        error.message.ends_with("\nwaiting for instances"),
        "{error}"
    );
    let sleeper = pid_in(&h.path("sleeper.pid")).await;
    wait_until(
        "the script's background `sleep 60` is gone",
        Duration::from_secs(10),
        || !is_running(sleeper),
    )
    .await;
}

#[tokio::test]
async fn launch_is_limited_by_the_deploys_launch_timeout_too() {
    let h = harness("launch = '''sleep 60'''");
    let mut request = launch_request(release(2));
    request.timeout = Span::from_millis(300);
    let error = h
        .target
        .launch(&key("launch"), &scope(None), &request)
        .await
        .unwrap_err();
    assert!(
        error.message.starts_with("launch timed out after 300ms"),
        "{error}"
    );
}

#[tokio::test]
async fn cancelled_operation_leaves_no_process_behind() {
    let h = harness("launch = '''sleep 60 & echo $! > sleeper.pid; wait'''");
    let scope = scope(None);
    let request = launch_request(release(2));
    let key = key("launch");
    let mut launch = Box::pin(h.target.launch(&key, &scope, &request));
    let path = h.path("sleeper.pid");
    let sleeper = tokio::select! {
        result = &mut launch => panic!("the launch ended on its own: {result:?}"),
        pid = pid_in(&path) => pid,
    };
    assert!(is_running(sleeper));

    drop(launch);
    wait_until(
        "the cancelled launch's `sleep 60` is gone",
        Duration::from_secs(10),
        || !is_running(sleeper),
    )
    .await;
}

#[tokio::test]
async fn script_may_leave_a_detached_process_running() {
    // A launch may start long-lived processes; slipway neither kills them nor waits for them
    // once the script has exited 0 (they keep its output pipe open: it reads a little longer).
    let h = harness("launch = '''sleep 60 & echo $! > sleeper.pid; echo 'started' '''");
    let detail = h
        .target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap();
    assert!(detail.ends_with("\nstarted"), "{detail}");

    let sleeper = pid_in(&h.path("sleeper.pid")).await;
    assert!(
        is_running(sleeper),
        "slipway killed the script's background process"
    );
    let _ = std::process::Command::new("kill")
        .arg(sleeper.to_string())
        .status();
}

#[tokio::test]
async fn observe_parses_fleets_json_with_optional_endpoints() {
    let h = harness(
        "observe = '''echo 'checking {service}' >&2; \
         printf '%s' '{\"fleets\":[{\"release\":\"RC 1\",\"desired\":2,\"running\":2,\"healthy\":2,' \
         '\"endpoints\":[\"http://10.0.3.7:8080\",\"http://10.0.3.8:8080\"]},' \
         '{\"release\":\"RC 2\",\"desired\":2,\"running\":1,\"healthy\":0,\"note\":\"booting\"}]}' '''",
    );
    let observation = h.target.observe(&scope(None)).await.unwrap();
    assert_eq!(
        observation,
        Observation {
            fleets: vec![
                FleetState {
                    release: "RC 1".to_owned(),
                    desired: 2,
                    running: 2,
                    healthy: 2,
                    endpoints: vec![
                        "http://10.0.3.7:8080".to_owned(),
                        "http://10.0.3.8:8080".to_owned()
                    ],
                },
                FleetState {
                    release: "RC 2".to_owned(),
                    desired: 2,
                    running: 1,
                    healthy: 0,
                    endpoints: Vec::new(),
                },
            ]
        }
    );
}

#[tokio::test]
async fn observe_rejects_malformed_output_with_the_expected_shape() {
    let shape =
        r#"expected JSON like {"fleets":[{"release":"RC 1","desired":2,"running":2,"healthy":2}]}"#;

    let h = harness("observe = '''echo 'all 4 instances healthy' '''");
    let error = h.target.observe(&scope(None)).await.unwrap_err();
    assert!(
        error
            .message
            .starts_with("observe printed output that is not the expected JSON ("),
        "{error}"
    );
    assert!(
        error
            .message
            .ends_with(&format!("`all 4 instances healthy`; {shape}")),
        "{error}"
    );

    let h = harness("observe = '''echo '{\"fleets\":[{\"release\":\"RC 1\",\"desired\":2}]}' '''");
    let error = h.target.observe(&scope(None)).await.unwrap_err();
    assert!(error.message.contains("missing field `running`"), "{error}");
    assert!(error.message.ends_with(shape), "{error}");

    let h = harness("observe = '''echo 'nothing on stdout' >&2'''");
    let error = h.target.observe(&scope(None)).await.unwrap_err();
    assert_eq!(
        error.message,
        format!("observe printed nothing on stdout; {shape}")
    );
}

#[tokio::test]
async fn output_is_bounded() {
    // About 1.3 MB on each stream: only the end is kept, and only ~2 KiB of it is reported.
    let h = harness(
        "launch = '''seq 1 200000; seq 1 200000 >&2'''\n\
         stop = '''seq 1 200000; seq 1 200000 >&2; exit 1'''\n\
         observe = '''seq 1 100000'''",
    );
    let detail = h
        .target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap();
    assert!(detail.len() < DETAIL_LIMIT + 100, "{} bytes", detail.len());
    assert!(detail.ends_with("\n199999\n200000"), "{detail}");
    assert!(detail.contains("\n…"), "a cut is marked: {detail}");

    let error = h
        .target
        .stop(&key("stop"), &scope(None), &release(1))
        .await
        .unwrap_err();
    assert!(
        error.message.len() < DETAIL_LIMIT + 300,
        "{} bytes",
        error.message.len()
    );
    assert!(error.message.ends_with("\n200000"), "{error}");

    let error = h.target.observe(&scope(None)).await.unwrap_err();
    assert!(
        error.message.starts_with(&format!(
            "observe printed more than {} KiB on stdout",
            OUTPUT_LIMIT / 1024
        )),
        "{error}"
    );
}

#[tokio::test]
async fn traffic_without_a_command_is_a_noop() {
    let h = harness("");
    let split = Split {
        weights: BTreeMap::from([("RC 1".to_owned(), 1), ("RC 2".to_owned(), 1)]),
        sticky: false,
        header: None,
        header_version: None,
    };
    let detail = h
        .target
        .set_traffic(&key("traffic"), &scope(None), &split)
        .await
        .unwrap();
    assert_eq!(
        detail,
        "no `traffic` command configured: traffic left as the launch and stop scripts route it \
         (wanted RC 1=1,RC 2=1)"
    );
}

#[tokio::test]
async fn traffic_gets_the_weights_and_the_split_as_json() {
    let h = harness(
        "traffic = '''printf '%s\\n' {weights} \"$SLIPWAY_WEIGHTS\" \"$SLIPWAY_SPLIT\" {key} > traffic.txt'''",
    );
    let split = Split {
        weights: BTreeMap::from([("RC 1".to_owned(), 9), ("RC 2".to_owned(), 1)]),
        sticky: true,
        header: None,
        header_version: None,
    };
    h.target
        .set_traffic(&key("traffic"), &scope(Some("eu-west-1")), &split)
        .await
        .unwrap();

    let lines = h.lines("traffic.txt");
    assert_eq!(lines[..2], ["RC 1=9,RC 2=1", "RC 1=9,RC 2=1"]);
    assert_eq!(serde_json::from_str::<Split>(&lines[2]).unwrap(), split);
    assert_eq!(lines[3], "7/3/1/traffic");
}

#[tokio::test]
async fn stop_gets_the_release_to_stop() {
    let h = harness(
        "stop = '''printf '%s\\n' {label} {version} \"$SLIPWAY_RELEASE\" \"$SLIPWAY_EFFECT_KEY\" > stop.txt'''",
    );
    h.target
        .stop(&key("stop"), &scope(None), &release(1))
        .await
        .unwrap();
    assert_eq!(h.lines("stop.txt"), ["RC 1", "1.1.0", "RC 1", "7/3/1/stop"]);
}

#[tokio::test]
async fn run_task_gets_the_task_name_and_the_release() {
    let h = harness(
        "task = '''printf '%s\\n' {task} {label} \"$SLIPWAY_TASK\" > task.txt; echo 'migrated 3 tables' '''",
    );
    let detail = h
        .target
        .run_task(&key("task"), &scope(None), "migrate", &release(2))
        .await
        .unwrap();
    assert_eq!(h.lines("task.txt"), ["migrate", "RC 2", "migrate"]);
    assert!(detail.starts_with("task finished in "), "{detail}");
    assert!(detail.ends_with("\nmigrated 3 tables"), "{detail}");
}

#[tokio::test]
async fn task_without_a_command_fails_with_a_clear_message() {
    let h = harness("");
    let error = h
        .target
        .run_task(&key("task"), &scope(None), "migrate", &release(2))
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        "cannot run task `migrate`: the command target of environment `staging` has no `task` \
         command; add e.g. task = \"./bin/run-task {task} {version}\" to \
         [environment.staging.command]"
    );
}

#[tokio::test]
async fn a_repeated_key_lets_the_script_skip_work_it_already_did() {
    // The worked example of docs/targets.md: a marker per effect key makes a retry a no-op.
    let h = harness(
        "launch = '''marker=\"done/$(printf %s \"$SLIPWAY_EFFECT_KEY\" | tr / _)\"\n\
         if [ -e \"$marker\" ]; then echo \"already done: $SLIPWAY_EFFECT_KEY\"; exit 0; fi\n\
         echo \"$SLIPWAY_RELEASE\" >> launches.txt\n\
         mkdir -p done && touch \"$marker\" && echo launched'''",
    );
    let request = launch_request(release(2));
    let first = h
        .target
        .launch(&key("launch"), &scope(None), &request)
        .await
        .unwrap();
    let second = h
        .target
        .launch(&key("launch"), &scope(None), &request)
        .await
        .unwrap();

    assert!(first.ends_with("\nlaunched"), "{first}");
    assert!(second.ends_with("\nalready done: 7/3/1/launch"), "{second}");
    assert_eq!(h.lines("launches.txt"), ["RC 2"]);
}

#[tokio::test]
async fn commands_run_in_the_configured_workdir_with_the_configured_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ops")).unwrap();
    let environment = environment(
        "launch = '''pwd > where.txt; echo \"${BASH_VERSION:+bash}\" >> where.txt'''\n\
         stop = 'true'\nobserve = 'true'\nworkdir = \"ops\"\nshell = \"bash\"",
    );
    let settings = CommandSettings {
        artifact_dir: dir.path().join("artifacts"),
        workdir: dir.path().to_owned(),
        data_dir: dir.path().join("data"),
        config: None,
    };
    let target = CommandTarget::new(&environment, settings).unwrap();
    assert_eq!(target.workdir(), dir.path().join("ops"));

    target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap();
    let written = std::fs::read_to_string(dir.path().join("ops/where.txt")).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(
        std::fs::canonicalize(lines[0]).unwrap(),
        std::fs::canonicalize(dir.path().join("ops")).unwrap()
    );
    assert_eq!(lines[1], "bash");
}

#[tokio::test]
async fn a_shell_that_cannot_start_is_named_in_the_error() {
    let h = harness("shell = \"/nonexistent/sh\"");
    let error = h
        .target
        .launch(&key("launch"), &scope(None), &launch_request(release(2)))
        .await
        .unwrap_err();
    assert!(
        error
            .message
            .starts_with("launch could not start `/nonexistent/sh` in "),
        "{error}"
    );
}

#[tokio::test]
async fn a_malformed_digest_is_refused_before_anything_runs() {
    let h = harness("launch = '''touch ran'''");
    let mut strange = release(2);
    strange.artifact = "sha256:../../etc/passwd".to_owned();
    let error = h
        .target
        .launch(&key("launch"), &scope(None), &launch_request(strange))
        .await
        .unwrap_err();
    assert_eq!(
        error.message,
        "artifact digest `sha256:../../etc/passwd` is not `sha256:` followed by 64 lowercase hex digits"
    );
    assert!(!h.path("ran").exists());
}
