//! The event log: append-only, hash-chained, and `verify_chain` naming the first bad event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use slipway_core::audit::{BreakKind, ChainBreak};
use slipway_store::{Backend, NewEvent, Store};
use slipway_testkit::store::{TestStore, on_each_backend};
use sqlx::AnyPool;

use crate::support::{T0, all_events, create, execute, raw};

/// A log of `count` events that belong to no deploy.
async fn append(store: &Store, count: usize) {
    let events: Vec<NewEvent> = (0..count)
        .map(|n| NewEvent {
            deploy: None,
            kind: "user_added".to_owned(),
            payload: format!("{{\"name\":\"user-{n}\"}}"),
        })
        .collect();
    store.append_events(&events, T0).await.unwrap();
}

/// Removes the triggers that keep the log append-only, as someone with database access could.
async fn drop_triggers(db: &TestStore, pool: &AnyPool) {
    let statements: &[&str] = match db.backend() {
        Backend::Sqlite => &[
            "DROP TRIGGER events_no_update",
            "DROP TRIGGER events_no_delete",
        ],
        Backend::Postgres => &["DROP TRIGGER events_no_change ON events"],
    };
    for sql in statements {
        execute(pool, sql).await.unwrap();
    }
}

#[tokio::test]
async fn the_event_log_refuses_updates_and_deletes() {
    on_each_backend("event_log_append_only", async |db| {
        let store = &db.store;
        create(store, None, "idp", "prod", T0).await;
        let events = all_events(store).await;
        let pool = raw(db).await;

        let update = execute(&pool, "UPDATE events SET payload = '{}' WHERE seq = 1").await;
        let delete = execute(&pool, "DELETE FROM events WHERE seq = 2").await;
        let delete_all = execute(&pool, "DELETE FROM events").await;

        for (what, result) in [
            ("update", update),
            ("delete", delete),
            ("delete all", delete_all),
        ] {
            let error = result.expect_err(what).to_string();
            assert!(error.contains("append-only"), "{what}: {error}");
        }
        pool.close().await;
        assert_eq!(all_events(store).await, events);
        assert_eq!(store.verify_chain().await.unwrap().broken, None);
    })
    .await;
}

#[tokio::test]
async fn verify_chain_passes_on_an_intact_log() {
    on_each_backend("verify_intact_log", async |db| {
        let store = &db.store;
        let empty = store.verify_chain().await.unwrap();
        assert_eq!((empty.verified, empty.broken), (0, None));
        assert_eq!(empty.head, "0".repeat(64));

        create(store, None, "idp", "prod", T0).await;
        append(store, 3).await;
        create(store, None, "api", "prod", T0).await;

        let events = all_events(store).await;
        let report = store.verify_chain().await.unwrap();
        assert_eq!(report.broken, None);
        assert_eq!(report.verified, events.len() as u64);
        assert_eq!(report.head, events.last().unwrap().hash);
        for pair in events.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
    })
    .await;
}

#[tokio::test]
async fn verify_chain_names_an_edited_event() {
    on_each_backend("verify_edited_event", async |db| {
        let store = &db.store;
        append(store, 10).await;
        let pool = raw(db).await;
        drop_triggers(db, &pool).await;

        let edited = execute(
            &pool,
            "UPDATE events SET payload = '{\"name\":\"mallory\"}' WHERE seq = 6",
        )
        .await
        .unwrap();
        pool.close().await;
        assert_eq!(edited, 1);

        let report = store.verify_chain().await.unwrap();
        assert_eq!(
            report.broken,
            Some(ChainBreak {
                seq: 6,
                kind: BreakKind::HashMismatch
            })
        );
        assert_eq!(report.verified, 5);
        assert_eq!(report.head, all_events(store).await[4].hash);
    })
    .await;
}

#[tokio::test]
async fn verify_chain_reports_a_deleted_event_as_a_gap() {
    on_each_backend("verify_deleted_middle_event", async |db| {
        let store = &db.store;
        append(store, 10).await;
        let pool = raw(db).await;
        drop_triggers(db, &pool).await;

        execute(&pool, "DELETE FROM events WHERE seq = 4")
            .await
            .unwrap();
        pool.close().await;

        let report = store.verify_chain().await.unwrap();
        assert_eq!(
            report.broken,
            Some(ChainBreak {
                seq: 5,
                kind: BreakKind::Gap { expected: 4 }
            })
        );
        assert_eq!(report.verified, 3);
    })
    .await;
}

#[tokio::test]
async fn verify_chain_reports_a_deleted_last_event_as_truncation() {
    on_each_backend("verify_deleted_last_event", async |db| {
        let store = &db.store;
        append(store, 10).await;
        let pool = raw(db).await;
        drop_triggers(db, &pool).await;

        execute(&pool, "DELETE FROM events WHERE seq = 10")
            .await
            .unwrap();
        pool.close().await;

        let report = store.verify_chain().await.unwrap();
        assert_eq!(
            report.broken,
            Some(ChainBreak {
                seq: 10,
                kind: BreakKind::Truncated { head_seq: 10 }
            })
        );
        assert_eq!(report.verified, 9);
    })
    .await;
}

#[tokio::test]
async fn appended_events_continue_the_chain_across_batches() {
    on_each_backend("append_continues_chain", async |db| {
        let store = &db.store;
        append(store, 1).await;
        store.append_events(&[], T0).await.unwrap();
        append(store, 250).await;
        create(store, None, "idp", "prod", T0).await;
        append(store, 7).await;

        let events = all_events(store).await;
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=events.len() as i64).collect::<Vec<_>>()
        );
        let report = store.verify_chain().await.unwrap();
        assert_eq!(
            (report.verified, report.broken),
            (events.len() as u64, None)
        );
    })
    .await;
}

/// A verification must read the log and its head from one snapshot: appends that land between
/// reading the last page and reading the head once made an intact log look truncated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_chain_passes_while_events_are_appended() {
    on_each_backend("verify_during_appends", async |db| {
        let store = &db.store;
        append(store, 2_000).await;
        let stop = Arc::new(AtomicBool::new(false));
        let (started, writing) = tokio::sync::oneshot::channel();
        let writer = {
            let store = store.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut started = Some(started);
                let mut batches = 0u64;
                while !stop.load(Ordering::Relaxed) && batches < 2_000 {
                    append(&store, 5).await;
                    batches += 1;
                    if let Some(started) = started.take() {
                        let _ = started.send(());
                    }
                }
                batches
            })
        };
        writing.await.expect("the writer appends");

        let mut reports = Vec::new();
        for _ in 0..30 {
            reports.push(store.verify_chain().await.unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let batches = writer.await.unwrap();

        let last = store.verify_chain().await.unwrap();
        assert_eq!((last.verified, last.broken), (2_000 + 5 * batches, None));
        for report in reports {
            assert_eq!(report.broken, None, "verified {} events", report.verified);
        }
    })
    .await;
}

#[tokio::test]
async fn last_event_seq_is_the_newest_events_sequence_number() {
    on_each_backend("last_event_seq", async |db| {
        let store = &db.store;
        assert_eq!(store.last_event_seq().await.unwrap(), 0, "an empty log");
        append(store, 3).await;
        assert_eq!(store.last_event_seq().await.unwrap(), 3);
        create(store, None, "idp", "prod", T0).await;
        let events = all_events(store).await;
        assert_eq!(
            store.last_event_seq().await.unwrap(),
            events.last().unwrap().seq
        );
    })
    .await;
}
