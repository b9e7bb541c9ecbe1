//! Opening stores: data survives a reopen, and a database that cannot be reached gives a
//! `Connect` error that never shows the password.

use std::time::Duration;

use slipway_core::deploy::Input;
use slipway_core::time::Span;
use slipway_store::{Backend, NewEvent, Store, StoreError};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events, create, pending, stored};

#[tokio::test]
async fn data_survives_reopening_the_store() {
    on_each_backend("data_survives_reopen", async |db| {
        let (id, _) = create(&db.store, None, "idp", "prod", T0).await;
        let intent = db.store.submit_intent(id, &Input::Tick, T0).await.unwrap();
        let lease = db
            .store
            .acquire_lease("engine", "server-a", Span::from_secs(60), T0)
            .await
            .unwrap()
            .unwrap();
        let deploy = stored(&db.store, id).await;
        let events = all_events(&db.store).await;
        let effects = pending(&db.store).await;
        if db.backend() == Backend::Sqlite {
            // The file must hold everything once the only handle is gone.
            db.store.close().await;
        }

        let reopened = db.reopen().await;

        assert_eq!(stored(&reopened, id).await, deploy);
        assert_eq!(all_events(&reopened).await, events);
        assert_eq!(pending(&reopened).await, effects);
        let intents = reopened.pending_intents(10).await.unwrap();
        assert_eq!(
            intents.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![intent]
        );
        let taken = reopened
            .acquire_lease(
                "engine",
                "server-b",
                Span::from_secs(60),
                T0.after(Span::from_secs(1)),
            )
            .await
            .unwrap();
        assert_eq!(taken, None, "the lease of {lease:?} is still held");
        // The chain continues where it stopped, and deploy ids keep counting.
        let extra = NewEvent {
            deploy: None,
            kind: "user_added".to_owned(),
            payload: "{}".to_owned(),
        };
        reopened.append_events(&[extra], T0).await.unwrap();
        let (next, _) = create(&reopened, None, "idp", "prod", T0).await;
        assert_eq!(next.0, id.0 + 1);
        let report = reopened.verify_chain().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.verified, all_events(&reopened).await.len() as u64);
        reopened.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_database_is_a_connect_error_without_the_password() {
    let missing_dir = tempfile::tempdir().unwrap();
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        missing_dir
            .path()
            .join("no-such-dir")
            .join("slipway.db")
            .display()
    );
    let postgres = "postgres://slipway:s3cret-pass@127.0.0.1:1/slipway".to_owned();
    for url in [sqlite, postgres] {
        // sqlx retries a refused connection until the pool's acquire timeout and then reports
        // `PoolTimedOut`; the deadline here only keeps a hang from being silent.
        let opened = tokio::time::timeout(Duration::from_secs(60), Store::open(&url))
            .await
            .unwrap_or_else(|_| panic!("opening {url} neither failed nor succeeded in 60 s"));

        let error = opened.expect_err(&url);
        assert!(
            matches!(error, StoreError::Connect { .. }),
            "{url}: {error:?}"
        );
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("s3cret"), "{text}");
        }
        if url.starts_with("postgres") {
            assert!(
                error
                    .to_string()
                    .contains("postgres://slipway:***@127.0.0.1:1/slipway"),
                "{error}"
            );
        }
    }
    missing_dir.close().unwrap();
}
