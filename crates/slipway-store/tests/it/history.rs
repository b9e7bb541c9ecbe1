//! What ran before (rollback targets), deploys found by origin, and the first admin.

use slipway_core::decide::start;
use slipway_core::deploy::DeployId;
use slipway_core::time::Time;
use slipway_store::{ReleaseChoice, Store};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, drive_to_end, release, spec};

/// Creates a deploy of `RC number` of idp to prod and drives it to its end.
async fn deploy_release(store: &Store, number: u32, now: Time) -> (DeployId, Time) {
    let (id, _) = store
        .create_deploy(None, None, now, |id| {
            let mut spec = spec(id, "idp", "prod");
            spec.release = release(number);
            start(spec, now)
        })
        .await
        .expect("created");
    let (_, now) = drive_to_end(store, id, now).await;
    (id, now)
}

#[tokio::test]
async fn previous_success_finds_the_release_that_ran_before() {
    on_each_backend("previous_success", async |db| {
        let store = &db.store;
        let (first, now) = deploy_release(store, 1, T0).await;
        let (second, now) = deploy_release(store, 2, now).await;
        let (third, _) = deploy_release(store, 3, now).await;
        let found = |before, choice| async move {
            store
                .previous_success("idp", "prod", before, choice)
                .await
                .unwrap()
                .map(|stored| stored.deploy.spec.id)
        };
        assert_eq!(
            found(third, ReleaseChoice::Other("RC 3")).await,
            Some(second)
        );
        assert_eq!(
            found(third, ReleaseChoice::Named("RC 1")).await,
            Some(first)
        );
        assert_eq!(
            found(second, ReleaseChoice::Other("RC 2")).await,
            Some(first)
        );
        assert_eq!(found(first, ReleaseChoice::Other("RC 1")).await, None);
        assert_eq!(found(third, ReleaseChoice::Named("RC 9")).await, None);
        let other_env = store
            .previous_success("idp", "staging", third, ReleaseChoice::Other("RC 3"))
            .await
            .unwrap();
        assert_eq!(other_env, None);
    })
    .await;
}

#[tokio::test]
async fn concurrent_creates_with_one_origin_make_one_deploy() {
    on_each_backend("one_origin_one_deploy", async |db| {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = db.store.clone();
                tokio::spawn(async move {
                    store
                        .create_deploy(None, Some("api/alice/key-1"), T0, |id| {
                            start(spec(id, "idp", "prod"), T0)
                        })
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().expect("no database error"));
        }
        assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
        let id = results[0].0;
        assert!(results.iter().all(|(other, _)| *other == id));
        assert_eq!(
            db.store.deploy_by_origin("api/alice/key-1").await.unwrap(),
            Some(id)
        );
        assert_eq!(
            db.store.deploy_by_origin("api/alice/other").await.unwrap(),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn bootstrap_admin_creates_one_admin_with_a_working_token_once() {
    on_each_backend("bootstrap_admin", async |db| {
        let store = &db.store;
        let hash = [7u8; 32];
        assert!(store.bootstrap_admin("admin", &hash, T0).await.unwrap());
        let (user, _) = store
            .token_user(&hash)
            .await
            .unwrap()
            .expect("the token works");
        assert_eq!(user.name, "admin");
        assert!(
            !store
                .bootstrap_admin("admin", &[8u8; 32], T0)
                .await
                .unwrap()
        );
        assert_eq!(store.token_user(&[8u8; 32]).await.unwrap(), None);
        assert_eq!(store.user_count().await.unwrap(), 1);
    })
    .await;
}
