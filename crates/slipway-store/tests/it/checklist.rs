//! Checklist ticks: the newest row of an item decides, per release or standing; an untick is a
//! row of its own and every change is in the audit chain; rows cannot be edited or deleted.

use slipway_core::checklist::Evidence;
use slipway_core::deploy::Role;
use slipway_core::time::Span;
use slipway_store::{ItemPlace, StoreError, TickAction};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, actor, all_events, execute, raw};

fn place(item: &str, release: Option<&str>) -> ItemPlace {
    ItemPlace {
        service: "idp".to_owned(),
        environment: "prod".to_owned(),
        release: release.map(str::to_owned),
        item: item.to_owned(),
    }
}

fn link(n: u32) -> Evidence {
    Evidence::Link(format!("https://tickets.example.com/{n}"))
}

#[tokio::test]
async fn ticks_count_for_their_release_and_standing_ticks_for_every_release() {
    on_each_backend(
        "ticks_count_for_their_release_and_standing_ticks_for_every_release",
        async |db| {
            let store = &db.store;
            let bob = actor("bob", Role::Approver);
            store
                .tick_item(
                    &place("agreement signed", Some("RC 12")),
                    &bob,
                    &link(1),
                    T0,
                )
                .await
                .unwrap();
            store
                .tick_item(&place("logo present", None), &bob, &link(2), T0)
                .await
                .unwrap();

            let for_12 = store
                .checklist_ticks("idp", "prod", Some("RC 12"))
                .await
                .unwrap();
            let mut names: Vec<(&str, Option<&str>)> = for_12
                .iter()
                .map(|t| (t.item.as_str(), t.release.as_deref()))
                .collect();
            names.sort();
            assert_eq!(
                names,
                [("agreement signed", Some("RC 12")), ("logo present", None)]
            );
            assert_eq!(for_12[0].by, "bob");
            assert_eq!(for_12[0].role, Role::Approver);
            assert_eq!(for_12[0].evidence, link(1));

            let for_13 = store
                .checklist_ticks("idp", "prod", Some("RC 13"))
                .await
                .unwrap();
            assert_eq!(for_13.len(), 1);
            assert_eq!(for_13[0].item, "logo present");
            let standing = store.checklist_ticks("idp", "prod", None).await.unwrap();
            assert_eq!(standing.len(), 1);
            assert!(
                store
                    .checklist_ticks("idp", "staging", Some("RC 12"))
                    .await
                    .unwrap()
                    .is_empty(),
                "ticks belong to one environment"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn an_untick_is_recorded_and_a_new_tick_replaces_an_old_one() {
    on_each_backend(
        "an_untick_is_recorded_and_a_new_tick_replaces_an_old_one",
        async |db| {
            let store = &db.store;
            let bob = actor("bob", Role::Deployer);
            let carol = actor("carol", Role::Approver);
            let agreement = place("agreement signed", Some("RC 12"));
            store
                .tick_item(&agreement, &bob, &link(1), T0)
                .await
                .unwrap();
            let later = T0.after(Span::from_secs(60));
            store
                .untick_item(&agreement, &carol, Some("wrong agreement"), later)
                .await
                .unwrap();
            assert!(
                store
                    .checklist_ticks("idp", "prod", Some("RC 12"))
                    .await
                    .unwrap()
                    .is_empty()
            );

            let again = later.after(Span::from_secs(60));
            store
                .tick_item(
                    &agreement,
                    &carol,
                    &Evidence::Note("v2 signed".to_owned()),
                    again,
                )
                .await
                .unwrap();
            let ticks = store
                .checklist_ticks("idp", "prod", Some("RC 12"))
                .await
                .unwrap();
            assert_eq!(ticks.len(), 1);
            assert_eq!(ticks[0].by, "carol");
            assert_eq!(ticks[0].evidence, Evidence::Note("v2 signed".to_owned()));

            let history = store.checklist_history("idp", "prod").await.unwrap();
            let actions: Vec<(TickAction, &str)> =
                history.iter().map(|r| (r.action, r.by.as_str())).collect();
            assert_eq!(
                actions,
                [
                    (TickAction::Tick, "bob"),
                    (TickAction::Untick, "carol"),
                    (TickAction::Tick, "carol")
                ]
            );
            assert_eq!(
                history[1].evidence,
                Some(Evidence::Note("wrong agreement".to_owned()))
            );

            let events = all_events(store).await;
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(
                kinds,
                ["checklist_ticked", "checklist_unticked", "checklist_ticked"]
            );
            let unticked: serde_json::Value = serde_json::from_str(&events[1].payload).unwrap();
            assert_eq!(unticked["item"], "agreement signed");
            assert_eq!(unticked["release"], "RC 12");
            assert_eq!(unticked["by"], "carol");
            assert_eq!(unticked["reason"], "wrong agreement");
            let ticked: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
            assert_eq!(ticked["evidence"]["link"], "https://tickets.example.com/1");
            store.verify_chain().await.unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn unticking_what_is_not_ticked_is_refused_and_writes_nothing() {
    on_each_backend(
        "unticking_what_is_not_ticked_is_refused_and_writes_nothing",
        async |db| {
            let store = &db.store;
            let bob = actor("bob", Role::Deployer);
            let standing = place("logo present", None);
            let error = store
                .untick_item(&standing, &bob, None, T0)
                .await
                .unwrap_err();
            match error {
                StoreError::Invalid { message, hint } => {
                    assert_eq!(message, "`logo present` is not ticked for idp in prod");
                    assert_eq!(
                        hint,
                        "see the checklist with `slipway checklist idp --env prod`"
                    );
                }
                other => panic!("expected Invalid, got {other:?}"),
            }
            // A tick for one release is not a standing tick.
            store
                .tick_item(&place("logo present", Some("RC 1")), &bob, &link(1), T0)
                .await
                .unwrap();
            assert!(store.untick_item(&standing, &bob, None, T0).await.is_err());
            assert_eq!(
                store.checklist_history("idp", "prod").await.unwrap().len(),
                1
            );
            assert_eq!(all_events(store).await.len(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn checklist_ticks_cannot_be_edited_or_deleted() {
    on_each_backend("checklist_ticks_cannot_be_edited_or_deleted", async |db| {
        let store = &db.store;
        let bob = actor("bob", Role::Deployer);
        store
            .tick_item(&place("logo present", None), &bob, &link(1), T0)
            .await
            .unwrap();
        let pool = raw(db).await;
        let update = execute(&pool, "UPDATE checklist_ticks SET by_user = 'mallory'").await;
        let delete = execute(&pool, "DELETE FROM checklist_ticks").await;
        pool.close().await;
        for (what, result) in [("update", update), ("delete", delete)] {
            let error = result.expect_err(what).to_string();
            assert!(error.contains("append-only"), "{what}: {error}");
        }
        assert_eq!(
            store.checklist_ticks("idp", "prod", None).await.unwrap()[0].by,
            "bob"
        );
    })
    .await;
}
