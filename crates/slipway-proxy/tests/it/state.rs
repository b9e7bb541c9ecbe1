//! The routing state outlives the process.

use std::time::Duration;

use slipway_proxy::{Config, Proxy, ProxyError, Route};

use crate::support::{Client, Harness, TestBackend, state_file, weights};

#[tokio::test]
async fn routing_survives_a_restart() {
    let harness = Harness::start(Config::default()).await;
    let old = TestBackend::start("old", "RC 1").await;
    let new = TestBackend::start("new", "RC 2").await;
    let spare = TestBackend::start("spare", "RC 2").await;
    harness.set_backends(&[&old, &new, &spare]).await;
    harness
        .set_split(&weights(&[("RC 1", 0), ("RC 2", 1)]))
        .await;
    let report = harness
        .proxy
        .drain(&harness.route, "spare", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(report.cut_off, 0);
    let before = harness.proxy.route(&harness.route).await;
    let dir = harness.stop().await;

    // A new process opens the same file and routes as before, the drained backend still out.
    let harness = Harness::open(dir, Config::default()).await;
    assert_eq!(harness.proxy.route(&harness.route).await, before);
    let client = Client::new();
    for _ in 0..20 {
        assert_eq!(client.get(&harness.url).await.body, "RC 2 new");
    }
    assert_eq!((old.served(), spare.served()), (0, 0));
    // Health updates keep the drained backend out.
    harness.set_backends(&[&old, &new, &spare]).await;
    for _ in 0..10 {
        assert_eq!(client.get(&harness.url).await.body, "RC 2 new");
    }
}

#[tokio::test]
async fn a_damaged_state_file_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(state_file(dir.path()), "{ half a file").unwrap();
    let error = Proxy::open(state_file(dir.path()), Config::default())
        .err()
        .unwrap();
    assert!(matches!(error, ProxyError::StateCorrupt { .. }), "{error}");
    assert!(error.to_string().contains("hint:"), "{error}");

    // No file yet is an empty state, and nothing is written until something is set.
    let empty = tempfile::tempdir().unwrap();
    let proxy = Proxy::open(state_file(empty.path()), Config::default()).unwrap();
    assert_eq!(proxy.route(&Route::new("idp", None)).await, (None, vec![]));
    assert!(!state_file(empty.path()).exists());
}

#[tokio::test]
async fn an_instance_marked_unhealthy_gets_no_traffic_even_when_the_state_cannot_be_saved() {
    let harness = Harness::start(Config::default()).await;
    let first = TestBackend::start("first", "RC 1").await;
    let second = TestBackend::start("second", "RC 1").await;
    harness.set_backends(&[&first, &second]).await;
    harness.set_split(&weights(&[("RC 1", 1)])).await;

    // The state directory disappears (a full or broken disk): nothing can be saved any more.
    std::fs::remove_dir_all(harness.dir.path()).unwrap();
    let backends = vec![first.backend(false), second.backend(true)];
    harness
        .proxy
        .set_backends(&harness.route, backends)
        .await
        .expect("health changes apply even when they cannot be saved");
    let client = Client::new();
    for _ in 0..20 {
        assert_eq!(client.get(&harness.url).await.body, "RC 1 second");
    }
    assert_eq!(first.served(), 0);
    // A split, which a restart must find, is refused when it cannot be saved.
    let refused = harness
        .proxy
        .set_split(&harness.route, &weights(&[("RC 1", 2)]))
        .await;
    assert!(
        matches!(refused, Err(ProxyError::StateFile { .. })),
        "{refused:?}"
    );
}
