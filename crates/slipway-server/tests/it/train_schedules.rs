//! Train schedules fired through the server's handlers with the time given by the test: a new
//! schedule owes nothing from before it existed, a due one fires once (also when asked again,
//! as after a restart), downtime owes only the newest missed fire, a refusal is recorded
//! with its reason, and of several servers only the holder of the scheduler lease fires.

use axum::http::Method;
use serde_json::Value;
use slipway_core::plan::ReleaseKind;
use slipway_core::time::Time;
use slipway_server::{SCHEDULER_LEASE, SchedulerLease, fire_due_schedules};
use slipway_store::{NewRelease, NewTrain, TrainKind};

use crate::support::Api;

const CONFIG: &str = r#"
[[service]]
name = "idp"
start = "bin/server"

[service.source]
repo = "/nonexistent/idp"

[[service.source.schedule]]
cron = "0 9 * * *"
zone = "America/New_York"
action = "deploy"
environment = "staging"

[environment.staging]
target = "local"

[environment.prod]
target = "local"
"#;

fn at(text: &str) -> Time {
    Time::from_timestamp(text.parse().expect("an RFC 3339 instant"))
}

#[tokio::test]
async fn a_schedule_fires_once_per_due_time_through_the_deploy_handler_and_is_audited() {
    let api = Api::start_with_config(CONFIG).await;
    let admin = api.admin.clone();
    api.release(&admin, "idp", "1.0.0").await;

    // First seen on 3 December at 15:00 UTC (10:00 in New York): that morning is not owed.
    assert!(
        fire_due_schedules(&api.state, at("2026-12-03T15:00:00Z"))
            .await
            .is_empty()
    );
    assert!(
        fire_due_schedules(&api.state, at("2026-12-04T13:59:00Z"))
            .await
            .is_empty()
    );

    // 09:00 EST on the 4th is 14:00 UTC.
    let fired = fire_due_schedules(&api.state, at("2026-12-04T14:00:30Z")).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].schedule,
        "idp:deploy:staging:0 9 * * *@America/New_York"
    );
    assert_eq!(fired[0].due, at("2026-12-04T14:00:00Z"));
    let result = fired[0].outcome["result"].as_str().unwrap();
    assert_eq!(result, "deploy 1 of idp RC 1 to staging");
    let (_, deploy) = api
        .call(Method::GET, "/api/v1/deploys/1", Some(&admin), None)
        .await;
    assert_eq!(deploy["requested_by"], "scheduler", "{deploy}");

    // Asked again (another pass, a restarted server): nothing more.
    assert!(
        fire_due_schedules(&api.state, at("2026-12-04T14:05:00Z"))
            .await
            .is_empty()
    );
    let (_, deploys) = api
        .call(Method::GET, "/api/v1/deploys", Some(&admin), None)
        .await;
    assert_eq!(deploys["items"].as_array().unwrap().len(), 1);

    // Down for three days: only the newest missed fire is owed. The first deploy has not
    // finished (no engine here), so this one is refused, and the refusal is recorded.
    let fired = fire_due_schedules(&api.state, at("2026-12-07T20:00:00Z")).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].due, at("2026-12-07T14:00:00Z"));
    assert_eq!(
        fired[0].outcome["error"]["code"], "deploy_running",
        "{:?}",
        fired[0]
    );

    let events = api.state.store.events(None, 0, 10_000).await.unwrap();
    let fires: Vec<Value> = events
        .iter()
        .filter(|e| e.kind == "schedule_fired")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect();
    assert_eq!(fires.len(), 2);
    assert_eq!(
        fires[0]["outcome"]["result"],
        "deploy 1 of idp RC 1 to staging"
    );
    assert_eq!(fires[1]["outcome"]["error"]["code"], "deploy_running");
}

/// Runs git in `dir`, isolated from the machine's configuration.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_daily_deploy_takes_the_newest_build_of_main_and_releases_it_first() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "first"]);
    let on_main = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["checkout", "-q", "-b", "experiment"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", "not on main"]);
    let side = git(dir, &["rev-parse", "HEAD"]);
    let config = CONFIG
        .replace("/nonexistent/idp", &dir.display().to_string())
        .replace("action = \"deploy\"", "action = \"deploy-artifact\"");
    let api = Api::start_with_config(&config).await;
    let admin = api.admin.clone();
    for (version, commit) in [("1.0.0", &on_main), ("1.1.0-exp", &side)] {
        let request = axum::http::Request::post(format!(
            "/api/v1/artifacts?service=idp&version={version}&commit={commit}"
        ))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/octet-stream")
        .body(axum::body::Body::from(version.as_bytes().to_vec()))
        .unwrap();
        let (status, body) = api.send(request).await;
        assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
    }

    assert!(
        fire_due_schedules(&api.state, at("2026-12-03T15:00:00Z"))
            .await
            .is_empty()
    );
    let fired = fire_due_schedules(&api.state, at("2026-12-04T14:00:00Z")).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].outcome["result"], "deploy 1 of idp RC 1 to staging",
        "{:?}",
        fired[0]
    );
    let (_, release) = api
        .call(Method::GET, "/api/v1/releases/idp/1", Some(&admin), None)
        .await;
    // The newest build is from a side branch: the newest from main was released instead.
    assert_eq!(release["version"], "1.0.0", "{release}");
    assert_eq!(release["created_by"], "scheduler");
}

/// Records `version` as a release the train cut (what `slipway release cut` stores).
async fn train_release(api: &Api, version: &str, head: &str) -> String {
    let new = NewRelease {
        service: "idp".to_owned(),
        version: version.to_owned(),
        kind: ReleaseKind::Full,
        created_by: "alice".to_owned(),
        reason: None,
        authors: Vec::new(),
        reconfigures: None,
    };
    let train = NewTrain {
        kind: TrainKind::Full,
        branch: "stages/rc-2026-12-03".to_owned(),
        base: None,
        head: head.to_owned(),
        branch_head: head.to_owned(),
        range: head.to_owned(),
        true_up: None,
        picks: Vec::new(),
        changelog: String::new(),
    };
    let (record, created) = api
        .state
        .store
        .create_train_release(
            &new,
            &train,
            |_| "draft".to_owned(),
            at("2026-12-03T16:00:00Z"),
        )
        .await
        .unwrap();
    assert!(created);
    record.release.label
}

#[tokio::test]
async fn a_scheduled_production_deploy_sends_the_newest_cut_not_the_newest_build() {
    let config = CONFIG
        .replace("environment = \"staging\"", "environment = \"prod\"")
        .replace(
            "[environment.prod]\ntarget = \"local\"",
            "[environment.prod]\ntarget = \"local\"\nprotected = true\nprovenance = \"off\"",
        );
    let api = Api::start_with_config(&config).await;
    let admin = api.admin.clone();
    api.release(&admin, "idp", "1.0.0").await;
    fire_due_schedules(&api.state, at("2026-12-02T15:00:00Z")).await;

    // Only a daily build so far: nothing the train cut, so production gets nothing.
    let fired = fire_due_schedules(&api.state, at("2026-12-03T14:00:00Z")).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].outcome["error"]["code"], "no_train_release",
        "{fired:?}"
    );
    let hint = fired[0].outcome["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("slipway release cut idp"), "{hint}");
    let (_, deploys) = api
        .call(Method::GET, "/api/v1/deploys", Some(&admin), None)
        .await;
    assert!(deploys["items"].as_array().unwrap().is_empty(), "{deploys}");

    // The train cuts 1.0.0, then a newer daily build is released: production gets the cut.
    let cut = train_release(&api, "1.0.0", &"a".repeat(40)).await;
    assert_eq!(cut, "RC 2");
    api.release(&admin, "idp", "1.1.0").await;
    let fired = fire_due_schedules(&api.state, at("2026-12-04T14:00:00Z")).await;
    assert_eq!(
        fired[0].outcome["result"], "deploy 1 of idp RC 2 to prod",
        "{fired:?}"
    );
    let (_, deploy) = api
        .call(Method::GET, "/api/v1/deploys/1", Some(&admin), None)
        .await;
    let steps: Vec<&str> = deploy["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"approval"), "{steps:?}");
    assert_eq!(deploy["reason"], "scheduled: 0 9 * * * (America/New_York)");
}

#[tokio::test]
async fn a_daily_deploy_whose_repository_is_missing_records_the_git_error_not_no_artifact() {
    let config = CONFIG.replace("action = \"deploy\"", "action = \"deploy-artifact\"");
    let api = Api::start_with_config(&config).await;
    let admin = api.admin.clone();
    let request = axum::http::Request::post(format!(
        "/api/v1/artifacts?service=idp&version=1.0.0&commit={}",
        "a".repeat(40)
    ))
    .header("authorization", format!("Bearer {admin}"))
    .header("content-type", "application/octet-stream")
    .body(axum::body::Body::from(b"1.0.0".to_vec()))
    .unwrap();
    let (status, body) = api.send(request).await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");

    fire_due_schedules(&api.state, at("2026-12-03T15:00:00Z")).await;
    let fired = fire_due_schedules(&api.state, at("2026-12-04T14:00:00Z")).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].outcome["error"]["code"], "repo_missing",
        "{fired:?}"
    );
    let message = fired[0].outcome["error"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/idp"), "{message}");
}

#[tokio::test]
async fn only_the_scheduler_lease_holder_fires_and_another_takes_over_when_it_is_given_up() {
    let api = Api::start_with_config(CONFIG).await;
    let admin = api.admin.clone();
    api.release(&admin, "idp", "1.0.0").await;
    // Two servers on one database: each its own state, its own holder name.
    let (first_state, second_state) = (api.state.clone(), api.state.clone());
    let mut first = SchedulerLease::new("host-a-100");
    let mut second = SchedulerLease::new("host-b-200");

    assert!(
        first
            .fire_due_schedules(&first_state, at("2026-12-03T15:00:00Z"))
            .await
            .is_empty()
    );
    assert!(first.holds());
    assert!(
        second
            .fire_due_schedules(&second_state, at("2026-12-03T15:00:00Z"))
            .await
            .is_empty()
    );
    assert!(!second.holds());

    // The holder renews its lease just before 09:00 in New York; the other server passes
    // first at the due time and fires nothing.
    first
        .fire_due_schedules(&first_state, at("2026-12-04T13:59:30Z"))
        .await;
    let fired = second
        .fire_due_schedules(&second_state, at("2026-12-04T14:00:10Z"))
        .await;
    assert!(fired.is_empty(), "{fired:?}");
    assert!(!second.holds());
    let (_, deploys) = api
        .call(Method::GET, "/api/v1/deploys", Some(&admin), None)
        .await;
    assert!(deploys["items"].as_array().unwrap().is_empty(), "{deploys}");

    // The holder shuts down and gives the lease up: the other takes it at its next pass.
    first.give_up(&first_state).await;
    assert!(!first.holds());
    let fired = second
        .fire_due_schedules(&second_state, at("2026-12-04T14:00:20Z"))
        .await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].outcome["result"],
        "deploy 1 of idp RC 1 to staging"
    );
    assert!(second.holds());
    assert!(
        first
            .fire_due_schedules(&first_state, at("2026-12-04T14:00:30Z"))
            .await
            .is_empty()
    );
    assert!(!first.holds());

    // A holder that stops without giving the lease up loses it when it expires.
    let fired = first
        .fire_due_schedules(&first_state, at("2026-12-05T14:00:30Z"))
        .await;
    assert!(first.holds());
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].due, at("2026-12-05T14:00:00Z"));
    assert!(
        second
            .fire_due_schedules(&second_state, at("2026-12-05T14:00:40Z"))
            .await
            .is_empty()
    );
    assert!(!second.holds());
}

#[tokio::test]
async fn the_schedule_task_holds_the_scheduler_lease_while_it_runs_and_gives_it_up_on_shutdown() {
    let api = Api::start_with_config(CONFIG).await;
    let store = api.state.store.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(slipway_server::run_schedules(
        api.state.clone(),
        "host-a-100".to_owned(),
        async move {
            let _ = stopped.await;
        },
    ));
    let ttl = slipway_core::time::Span::from_secs(60);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    // The task's first pass takes the lease (the first holder gets token 1); renewing it in
    // the task's name tells without taking it.
    let held = slipway_store::Fence {
        name: SCHEDULER_LEASE.to_owned(),
        holder: "host-a-100".to_owned(),
        token: 1,
    };
    while !store
        .renew_lease(&held, ttl, api.state.clock.now())
        .await
        .unwrap()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never took the lease"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let other = store
        .acquire_lease(SCHEDULER_LEASE, "host-b-200", ttl, api.state.clock.now())
        .await
        .unwrap();
    assert!(other.is_none(), "another server took the lease: {other:?}");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the task stops")
        .unwrap();
    let other = store
        .acquire_lease(SCHEDULER_LEASE, "host-b-200", ttl, api.state.clock.now())
        .await
        .unwrap();
    assert!(other.is_some(), "the lease was not given up");
}
