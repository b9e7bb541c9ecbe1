//! The local target with real processes, a real proxy and loopback HTTP: launching, health,
//! traffic, draining, crashes, slipway's own restart, unpacking and tasks.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use slipway_engine::plugin::{FleetState, Target};
use slipway_targets::LocalTarget;
use slipway_targets::local::state_file;

use crate::local_support::{
    APP, Local, get, is_running, key, kill_group, release_with, scope, web,
};

/// Makes every save of the `dev` local target's state file fail (its temporary file's name is
/// taken by a directory) until the returned path is removed.
fn block_state_saves(local: &Local) -> std::path::PathBuf {
    let blocker =
        state_file(&local.data_dir(), "dev").with_extension(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(&blocker).unwrap();
    blocker
}

fn fleet(release: &str, desired: u32, running: u32, healthy: u32) -> FleetState {
    FleetState {
        release: release.to_owned(),
        desired,
        running,
        healthy,
        endpoints: Vec::new(),
    }
}

/// The instances that answered `count` requests to `/`.
async fn answering(local: &Local, count: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let (status, body) = local.get("/").await;
        if status != 200 {
            panic!("{status}: {body}\n{:#?}", local.instances().await);
        }
        seen.insert(body.trim().to_owned());
    }
    seen
}

#[tokio::test]
async fn launch_starts_healthy_instances_and_never_duplicates() {
    let local = Local::new(
        "{ web = { count = 2, traffic = true }, worker = { count = 1 } }",
        "",
    )
    .await;
    let rc1 = local.release(1);
    let detail = local
        .launch(&key("launch"), &rc1, &[("web", 2), ("worker", 1)])
        .await
        .unwrap();
    assert!(
        detail.starts_with("RC 1: 3 instance(s) healthy (3 started, 0 already running)"),
        "{detail}"
    );
    assert_eq!(local.fleets().await, [fleet("RC 1", 3, 3, 3)]);
    let observed = local.target().observe(&scope()).await.unwrap().fleets;
    assert_eq!(
        observed[0].endpoints.len(),
        2,
        "each healthy instance of the traffic pool (web, not worker) is an endpoint for probes: \
         {observed:?}"
    );
    let first = local.instances().await;
    assert_eq!(first.len(), 3);

    // The same key again, and a new key asking for the same counts: nothing new starts.
    let again = local
        .launch(&key("launch"), &rc1, &[("web", 2), ("worker", 1)])
        .await
        .unwrap();
    assert!(again.contains("was already done"), "{again}");
    let mut retry = key("launch");
    retry.attempt = 2;
    let topped = local.launch(&retry, &rc1, &web(2)).await.unwrap();
    assert!(
        topped.contains("(0 started, 2 already running)"),
        "{topped}"
    );
    let ids = |instances: &[slipway_targets::InstanceInfo]| -> Vec<(String, Option<u32>)> {
        instances.iter().map(|i| (i.id.clone(), i.pid)).collect()
    };
    assert_eq!(ids(&local.instances().await), ids(&first));

    // Each instance got its own port and the facts of its release, never slipway's own.
    let log = std::fs::read_to_string(&first[0].log_file).unwrap();
    assert!(
        log.contains("variables: PORT SLIPWAY_ENVIRONMENT SLIPWAY_INSTANCE SLIPWAY_POOL SLIPWAY_REGION SLIPWAY_RELEASE SLIPWAY_SERVICE SLIPWAY_VERSION"),
        "{log}"
    );
    let ports: BTreeSet<u16> = first.iter().map(|i| i.port).collect();
    assert_eq!(ports.len(), 3);

    // Traffic reaches both web instances, never the worker (which serves HTTP too).
    local.traffic(&[(&rc1, 1)]).await;
    let web_ids: BTreeSet<String> = first
        .iter()
        .filter(|i| i.pool == "web")
        .map(|i| format!("1.1.0 {}", i.id))
        .collect();
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        seen.extend(answering(&local, 10).await);
        if seen == web_ids {
            break;
        }
    }
    assert_eq!(seen, web_ids);

    local.target().stop_all().await.unwrap();
    assert!(local.fleets().await.is_empty());
}

#[tokio::test]
async fn unhealthy_instance_gets_no_traffic() {
    let local = Local::new("{ web = { count = 2, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(2)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let instances = local.instances().await;
    let (sick, well) = (&instances[0], &instances[1]);

    std::fs::write(local.control(&format!("unhealthy-{}", sick.id)), "").unwrap();
    local
        .wait_instances("one instance to turn unhealthy", |i| {
            i.iter().filter(|i| i.healthy).count() == 1
        })
        .await;
    assert_eq!(local.fleets().await, [fleet("RC 1", 2, 2, 1)]);
    let seen = answering(&local, 30).await;
    assert_eq!(seen, BTreeSet::from([format!("1.1.0 {}", well.id)]));

    // Healthy again, it gets traffic again.
    std::fs::remove_file(local.control(&format!("unhealthy-{}", sick.id))).unwrap();
    local
        .wait_instances("both healthy", |i| i.iter().all(|i| i.healthy))
        .await;
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        seen.extend(answering(&local, 10).await);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn launch_that_never_gets_healthy_fails_at_its_timeout_with_the_instances_log() {
    let local = Local::with_start(
        "{ web = { count = 1, traffic = true } }",
        "",
        "echo 'cannot open the database: connection refused' >&2; exec sleep 60",
    )
    .await;
    let rc1 = local.release(1);
    let request = slipway_engine::plugin::LaunchRequest {
        release: rc1.clone(),
        pools: [("web".to_owned(), 1)].into(),
        timeout: slipway_core::time::Span::from_secs(2),
    };
    let error = local
        .target()
        .launch(&key("launch"), &scope(), &request)
        .await
        .unwrap_err()
        .message;
    assert!(
        error.starts_with("launch of RC 1 timed out after 2s: 0 of 1 `web` instance(s) healthy"),
        "{error}"
    );
    assert!(
        error.contains("| cannot open the database: connection refused"),
        "{error}"
    );
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn stop_drains_then_frees_the_port() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let instance = local.instances().await.remove(0);
    let pid = instance.pid.unwrap();

    // A slow request in flight when the stop begins still gets its answer.
    let addr = local.proxy_addr;
    let slow = tokio::spawn(async move { get(addr, "/slow?ms=1500").await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while local
        .proxy
        .snapshot(&slipway_targets::route_for("dev", "idp", None))["RC 1"]
        .in_flight
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let detail = local
        .target()
        .stop(&key("stop"), &scope(), &rc1)
        .await
        .unwrap();
    let (status, body) = slow.await.unwrap();
    assert_eq!(
        (status, body.trim()),
        (200, format!("1.1.0 {}", instance.id).as_str())
    );
    assert!(
        detail.contains("drained (1 request(s) finished), stopped"),
        "{detail}"
    );

    // Nothing of it is left: no process, no port, no fleet, no backend.
    assert!(!is_running(pid));
    std::net::TcpListener::bind(("127.0.0.1", instance.port)).expect("the port is free");
    assert!(local.fleets().await.is_empty());
    assert!(local.instances().await.is_empty());
    let (_, backends) = local
        .proxy
        .route(&slipway_targets::route_for("dev", "idp", None))
        .await;
    assert!(backends.is_empty());
    // Stopping again is done already.
    let again = local
        .target()
        .stop(&key("stop"), &scope(), &rc1)
        .await
        .unwrap();
    assert!(again.contains("already done"), "{again}");
}

#[tokio::test]
async fn crashed_instance_is_restarted_with_backoff() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let first = local.instances().await.remove(0);

    kill_group(first.pid.unwrap());
    let second = local
        .wait_instances("a restart", |i| {
            i[0].restarts == 1 && i[0].healthy && i[0].pid != first.pid
        })
        .await
        .remove(0);
    assert_eq!(second.id, first.id, "the same instance, started again");
    assert_eq!(local.get("/").await.0, 200);

    // It crashes again soon after: the wait doubles.
    kill_group(second.pid.unwrap());
    local
        .wait_instances("a second restart", |i| i[0].restarts == 2 && i[0].healthy)
        .await;
    let log = std::fs::read_to_string(&first.log_file).unwrap();
    let waits: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split("restarting in ").nth(1))
        .collect();
    assert_eq!(waits, ["0.3s", "0.6s"], "{log}");
    assert_eq!(local.fleets().await, [fleet("RC 1", 1, 1, 1)]);
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn restart_adopts_live_instances() {
    let mut local = Local::new("{ web = { count = 2, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(2)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let before = local.instances().await;

    local.restart().await;
    // At once after opening: the same processes, checked healthy, routed by the new proxy.
    let after = local.instances().await;
    let pids = |instances: &[slipway_targets::InstanceInfo]| -> Vec<Option<u32>> {
        instances.iter().map(|i| i.pid).collect()
    };
    assert_eq!(pids(&after), pids(&before));
    assert!(
        after
            .iter()
            .all(|i| i.running && i.healthy && i.restarts == 0),
        "{after:#?}"
    );
    assert_eq!(local.fleets().await, [fleet("RC 1", 2, 2, 2)]);
    assert!(!answering(&local, 10).await.is_empty());

    // Supervision resumed: a crash now is noticed and repaired.
    kill_group(after[0].pid.unwrap());
    local
        .wait_instances("the adopted instance to be restarted", |i| {
            i.iter().any(|i| i.restarts == 1 && i.healthy)
        })
        .await;
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn dead_instances_are_replaced_after_restart() {
    let mut local = Local::new("{ web = { count = 2, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(2)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let before = local.instances().await;

    // slipway dies; so does one instance while it is away.
    local.close();
    let dead = before[0].clone();
    kill_group(dead.pid.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while is_running(dead.pid.unwrap()) {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    local.restart().await;

    let after = local
        .wait_instances("both healthy again", |i| {
            i.len() == 2 && i.iter().all(|i| i.healthy)
        })
        .await;
    let replaced = after.iter().find(|i| i.id == dead.id).unwrap();
    assert_ne!(replaced.pid, dead.pid, "started again under the same id");
    let kept = after.iter().find(|i| i.id == before[1].id).unwrap();
    assert_eq!(kept.pid, before[1].pid, "the live one was adopted");
    assert_eq!(local.fleets().await, [fleet("RC 1", 2, 2, 2)]);
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn instance_recorded_without_its_pid_is_found_after_restart() {
    let mut local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    let before = local.instances().await.remove(0);
    local.close();

    // As if slipway died between spawning the process and recording its pid.
    let path = state_file(&local.data_dir(), "dev");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    state["instances"][0]["pid"] = serde_json::Value::Null;
    state["instances"][0]["start_time"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();

    local.restart().await;
    let after = local.instances().await.remove(0);
    assert_eq!(
        after.pid, before.pid,
        "found by its SLIPWAY_INSTANCE and adopted"
    );
    assert!(after.healthy);
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn second_target_on_the_same_data_directory_is_refused() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let error = LocalTarget::open(&local.environment, local.settings())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("another slipway already runs the local instances"),
        "{error}"
    );
}

/// A `.tar.gz` of `entries` (path, contents, mode), paths written as given — even ones the
/// `tar` crate's own builder refuses.
fn tarball(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, contents, mode) in entries {
        let mut header = tar::Header::new_gnu();
        let name = &mut header.as_gnu_mut().unwrap().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *contents).unwrap();
    }
    let mut gz = builder.into_inner().unwrap();
    gz.flush().unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn tarball_is_unpacked_once_and_its_start_command_runs_inside() {
    let local = Local::with_start(
        "{ web = { count = 1, traffic = true } }",
        "",
        "exec python3 bin/server.py {control}",
    )
    .await;
    let bytes = tarball(&[
        ("bin/server.py", APP.as_bytes(), 0o755),
        ("README", b"hello", 0o644),
    ]);
    let rc1 = release_with(1, local.store_artifact(&bytes));
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    let hex = rc1.artifact.strip_prefix("sha256:").unwrap();
    let dir = local.data_dir().join("releases").join(hex);
    assert_eq!(
        std::fs::read_to_string(dir.join("README")).unwrap(),
        "hello"
    );
    let instance = local.instances().await.remove(0);
    let log = std::fs::read_to_string(&instance.log_file).unwrap();
    assert!(log.contains(&format!("in {}", dir.display())), "{log}");
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn tarball_escaping_its_directory_is_refused() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let bytes = tarball(&[
        ("app", APP.as_bytes(), 0o755),
        ("../escaped", b"gotcha", 0o644),
    ]);
    let rc1 = release_with(1, local.store_artifact(&bytes));
    let error = local
        .launch(&key("launch"), &rc1, &web(1))
        .await
        .unwrap_err();
    assert!(
        error.contains("the tarball's entry `../escaped` would land outside its directory"),
        "{error}"
    );
    let releases = local.data_dir().join("releases");
    assert!(!releases.join("escaped").exists() && !local.data_dir().join("escaped").exists());
    // Nothing half-unpacked is left to be taken for a release, and nothing started.
    let leftovers: Vec<_> = std::fs::read_dir(&releases).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(local.instances().await.is_empty());
}

#[tokio::test]
async fn run_task_runs_once_per_key() {
    let local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''echo \"$SLIPWAY_TASK $SLIPWAY_RELEASE $(ls)\" >> ../../../control/migrations; echo migrated'''",
    )
    .await;
    let rc1 = local.release(1);
    let first = local
        .target()
        .run_task(&key("migrate"), &scope(), "migrate", &rc1)
        .await
        .unwrap();
    assert!(first.starts_with("migrate of RC 1 finished in "), "{first}");
    assert!(first.ends_with("\nmigrated"), "{first}");
    let again = local
        .target()
        .run_task(&key("migrate"), &scope(), "migrate", &rc1)
        .await
        .unwrap();
    assert!(again.contains("already ran"), "{again}");
    let mut retry = key("migrate");
    retry.attempt = 2;
    local
        .target()
        .run_task(&retry, &scope(), "migrate", &rc1)
        .await
        .unwrap();
    let runs = std::fs::read_to_string(local.control("migrations")).unwrap();
    assert_eq!(
        runs, "migrate RC 1 app\nmigrate RC 1 app\n",
        "ran in the unpacked release, once per key"
    );
}

#[tokio::test]
async fn failing_task_reports_its_exit_code_and_output() {
    let local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''echo 'relation \"users\" already exists' >&2; exit 2'''",
    )
    .await;
    let rc1 = local.release(1);
    let error = local
        .target()
        .run_task(&key("migrate"), &scope(), "migrate", &rc1)
        .await
        .unwrap_err()
        .message;
    assert!(
        error.starts_with("migrate of RC 1 failed with exit code 2"),
        "{error}"
    );
    assert!(
        error.ends_with("relation \"users\" already exists"),
        "{error}"
    );
}

#[tokio::test]
async fn stop_that_cannot_forget_the_instance_fails_and_a_retry_finishes_it() {
    // On SIGTERM the instance takes the state file's temporary name (`$PPID` is this test
    // process), so the stop ends it but cannot save that it is gone.
    let local = Local::with_start(
        "{ web = { count = 1, traffic = true } }",
        "",
        "trap 'mkdir -p ../../local/dev.tmp-$PPID; exit 0' TERM; python3 app {control} & wait",
    )
    .await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    local.traffic(&[(&rc1, 1)]).await;
    let instance = local.instances().await.remove(0);
    let pid = instance.pid.unwrap();

    let error = local
        .target()
        .stop(&key("stop"), &scope(), &rc1)
        .await
        .unwrap_err()
        .message;
    assert!(
        error.contains("could not be stopped and are still recorded"),
        "{error}"
    );
    assert!(error.contains("cannot be forgotten"), "{error}");
    let blocker =
        state_file(&local.data_dir(), "dev").with_extension(format!("tmp-{}", std::process::id()));
    assert!(blocker.is_dir());
    let kept = local.instances().await;
    assert_eq!(kept.len(), 1, "the instance is still tracked: {kept:#?}");
    assert!(!kept[0].running);

    // The engine retries the same stop: it is finished now, not "already done".
    std::fs::remove_dir(&blocker).unwrap();
    let detail = local
        .target()
        .stop(&key("stop"), &scope(), &rc1)
        .await
        .unwrap();
    assert!(
        detail.starts_with("stopped 1 instance(s) of RC 1"),
        "{detail}"
    );
    assert!(!is_running(pid));
    assert!(local.instances().await.is_empty());
    let state = std::fs::read_to_string(state_file(&local.data_dir(), "dev")).unwrap();
    assert!(!state.contains(&instance.id), "{state}");
    std::net::TcpListener::bind(("127.0.0.1", instance.port)).expect("the port is free");
}

#[tokio::test]
async fn stop_whose_state_cannot_be_saved_fails_and_a_retry_finishes_it() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let rc1 = local.release(1);
    local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    let pid = local.instances().await[0].pid.unwrap();

    let blocker = block_state_saves(&local);
    let error = local.target().stop(&key("stop"), &scope(), &rc1).await;
    assert!(error.is_err(), "{error:?}");
    assert!(is_running(pid), "a stop that failed killed the instance");
    std::fs::remove_dir(&blocker).unwrap();
    let detail = local
        .target()
        .stop(&key("stop"), &scope(), &rc1)
        .await
        .unwrap();
    assert!(!detail.contains("already done"), "{detail}");
    assert!(!is_running(pid));
    assert!(local.instances().await.is_empty());
}

#[tokio::test]
async fn launch_whose_state_cannot_be_saved_starts_nothing_and_a_retry_works() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let rc1 = local.release(1);
    let blocker = block_state_saves(&local);
    let error = local
        .launch(&key("launch"), &rc1, &web(1))
        .await
        .unwrap_err();
    assert!(error.contains("state file"), "{error}");
    assert!(
        local.instances().await.is_empty(),
        "memory holds instances the state file does not"
    );

    std::fs::remove_dir(&blocker).unwrap();
    let detail = local.launch(&key("launch"), &rc1, &web(1)).await.unwrap();
    assert!(
        detail.contains("(1 started, 0 already running)"),
        "{detail}"
    );
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn task_whose_key_cannot_be_saved_runs_again_when_retried() {
    // The first run takes the state file's temporary name (`$PPID` is this test process), so
    // the key of a task that ran cannot be saved.
    let local = Local::new(
        "{ web = { count = 1, traffic = true } }",
        "migrate = '''echo ran >> ../../../control/runs; if [ ! -e ../../../control/blocked ]; then touch ../../../control/blocked; mkdir -p ../../local/dev.tmp-$PPID; fi'''",
    )
    .await;
    let rc1 = local.release(1);
    let error = local
        .target()
        .run_task(&key("migrate"), &scope(), "migrate", &rc1)
        .await
        .unwrap_err()
        .message;
    assert!(error.contains("state file"), "{error}");
    let blocker =
        state_file(&local.data_dir(), "dev").with_extension(format!("tmp-{}", std::process::id()));
    std::fs::remove_dir(&blocker).unwrap();

    let again = local
        .target()
        .run_task(&key("migrate"), &scope(), "migrate", &rc1)
        .await
        .unwrap();
    assert!(again.starts_with("migrate of RC 1 finished in "), "{again}");
    let runs = std::fs::read_to_string(local.control("runs")).unwrap();
    assert_eq!(runs, "ran\nran\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_reports_healthy_only_once_the_proxy_routes_to_it() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    // A big routing state makes each proxy update take a while, so a launch that answered
    // before its instance was routed would be caught answering 503 here.
    let filler: Vec<slipway_proxy::Backend> = (0..20_000u32)
        .map(|i| slipway_proxy::Backend {
            id: format!("filler-{i}"),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            version: "filler".to_owned(),
            healthy: false,
        })
        .collect();
    local
        .proxy
        .set_backends(&slipway_proxy::Route::new("filler", None), filler)
        .await
        .unwrap();
    for n in 1..=5 {
        let release = local.release(n);
        // Traffic already points at the release, as a first deploy's does right after launch.
        local.traffic(&[(&release, 1)]).await;
        let mut launch = key("launch");
        launch.attempt = n;
        local.launch(&launch, &release, &web(1)).await.unwrap();
        let (status, body) = local.get("/").await;
        assert_eq!(
            status, 200,
            "RC {n} was reported healthy before it was routed: {body}"
        );
        let mut stop = key("stop");
        stop.attempt = n;
        local
            .target()
            .stop(&stop, &scope(), &release)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn launch_of_an_instance_that_keeps_crashing_fails_early() {
    let local = Local::with_start(
        "{ web = { count = 1, traffic = true } }",
        "",
        "echo 'cannot open the database: connection refused' >&2; exit 3",
    )
    .await;
    let rc1 = local.release(1);
    let request = slipway_engine::plugin::LaunchRequest {
        release: rc1.clone(),
        pools: [("web".to_owned(), 1)].into(),
        timeout: slipway_core::time::Span::from_secs(60),
    };
    let error = tokio::time::timeout(
        Duration::from_secs(20),
        local.target().launch(&key("launch"), &scope(), &request),
    )
    .await
    .expect("the launch gives up long before its timeout")
    .unwrap_err()
    .message;
    assert!(
        error.starts_with("launch of RC 1 failed: instance web-")
            && error.contains("failed to start 3 times in a row: 0 of 1 `web` instance(s) healthy"),
        "{error}"
    );
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(
        error.contains("| cannot open the database: connection refused"),
        "{error}"
    );
    assert!(error.contains("\nhint: "), "{error}");
    local.target().stop_all().await.unwrap();
}

#[tokio::test]
async fn process_whose_pid_cannot_be_saved_is_killed_not_left_running() {
    // The instance takes the state file's temporary name as soon as it runs (`$PPID` is this
    // test process), so saving its pid fails; a big state file makes each save slow enough that
    // it always runs first.
    let mut local = Local::with_start(
        "{ web = { count = 1, traffic = true } }",
        "",
        "echo $$ >> ../../../control/pids; mkdir -p ../../local/dev.tmp-$PPID; exec python3 app {control}",
    )
    .await;
    local.close();
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("{i}-{}", "k".repeat(10_000)))
        .collect();
    let state = serde_json::json!({ "format": 1, "instances": [], "desired": [], "keys": keys });
    std::fs::write(
        state_file(&local.data_dir(), "dev"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    local.open().await;
    let rc1 = local.release(1);
    let request = slipway_engine::plugin::LaunchRequest {
        release: rc1.clone(),
        pools: [("web".to_owned(), 1)].into(),
        timeout: slipway_core::time::Span::from_secs(5),
    };
    let error = local
        .target()
        .launch(&key("launch"), &scope(), &request)
        .await
        .unwrap_err()
        .message;

    let pids: Vec<u32> = std::fs::read_to_string(local.control("pids"))
        .unwrap_or_default()
        .lines()
        .map(|line| line.parse().unwrap())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| is_running(pid)) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&pid| is_running(pid))
        .collect();
    for &pid in &pids {
        kill_group(pid);
    }
    assert_eq!(pids.len(), 1, "{error}");
    assert!(
        left.is_empty(),
        "left running, untracked: {left:?}\n{error}"
    );
    assert!(error.contains("state file"), "{error}");
}

#[tokio::test]
async fn old_fleet_is_not_stopped_while_the_new_one_has_no_healthy_instance() {
    let local = Local::new("{ web = { count = 1, traffic = true } }", "").await;
    let (old, new) = (local.release(1), local.release(2));
    local
        .launch(&key("launch-old"), &old, &web(1))
        .await
        .unwrap();
    local
        .launch(&key("launch-new"), &new, &web(1))
        .await
        .unwrap();
    local.traffic(&[(&new, 1)]).await;

    // The new fleet turns unhealthy before scale-in stops the old one.
    std::fs::write(local.control("unhealthy"), "").unwrap();
    local
        .wait_instances("both unhealthy", |i| i.iter().all(|i| !i.healthy))
        .await;
    let refused = local
        .target()
        .stop(&key("stop-old"), &scope(), &old)
        .await
        .expect_err("stopping the old fleet now would leave nothing serving");
    assert!(
        refused.message.contains("refusing to stop RC 1"),
        "{}",
        refused.message
    );
    assert!(refused.message.contains("hint:"), "{}", refused.message);
    assert_eq!(local.instances().await.len(), 2, "both fleets still run");

    // Healthy again, the same stop (a retry) goes through.
    std::fs::remove_file(local.control("unhealthy")).unwrap();
    local
        .wait_instances("both healthy", |i| i.iter().all(|i| i.healthy))
        .await;
    local
        .target()
        .stop(&key("stop-old"), &scope(), &old)
        .await
        .unwrap();
    let left = local.instances().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].release, "RC 2");
}
