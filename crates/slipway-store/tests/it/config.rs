//! Config versions: numbered 1, 2, … per service and environment (also under concurrent
//! creation), read back as written, approved once, audited by key name only, re-wrapped on
//! master key rotation without touching their values (or not at all when one fails), and kept
//! immutable by the database itself; named secret keys are written once.

use serde_json::Value;
use slipway_core::settings::Sealed;
use slipway_core::time::Time;
use slipway_store::{Backend, ConfigVersionRecord, NewConfigVersion, Store, StoreError};
use slipway_testkit::store::on_each_backend;

use crate::support::{T0, all_events, execute, raw};

/// Sealed data that is recognisably version `n`'s, wrapped under master key `key_id`.
fn sealed(n: u8, key_id: &str) -> Sealed {
    Sealed {
        key_id: key_id.to_owned(),
        wrapped_key: vec![n; 40],
        nonce: vec![n.wrapping_add(100); 24],
        ciphertext: format!("CANARY-CIPHERTEXT-{n}").into_bytes(),
    }
}

fn new_version(service: &str, environment: &str, n: u8) -> NewConfigVersion {
    NewConfigVersion {
        service: service.to_owned(),
        environment: environment.to_owned(),
        sealed: sealed(n, "key-1"),
        digest: format!("sha256:{:064x}", n),
        changed: vec!["DATABASE_URL".to_owned(), format!("QUEUE_{n}")],
        by: "alice".to_owned(),
        message: Some(format!("change {n}")),
        approved: false,
        parent: None,
    }
}

async fn create(store: &Store, service: &str, environment: &str, n: u8) -> ConfigVersionRecord {
    store
        .create_config_version(&new_version(service, environment, n), T0)
        .await
        .expect("the config version is created")
}

fn numbers(records: &[ConfigVersionRecord]) -> Vec<(String, String, u64)> {
    records
        .iter()
        .map(|r| (r.service.clone(), r.environment.clone(), r.number))
        .collect()
}

fn scope(service: &str, environment: &str, number: u64) -> (String, String, u64) {
    (service.to_owned(), environment.to_owned(), number)
}

/// Every stored version of the services and environments these tests use, for before/after
/// comparisons.
async fn everything(store: &Store) -> Vec<ConfigVersionRecord> {
    let mut all = Vec::new();
    for (service, environment) in [("idp", "prod"), ("idp", "staging"), ("api", "prod")] {
        all.extend(store.config_versions(service, environment).await.unwrap());
    }
    all
}

/// Payloads of the events of `kind`, parsed.
async fn payloads(store: &Store, kind: &str) -> Vec<Value> {
    all_events(store)
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| serde_json::from_str(&e.payload).expect("event payloads are JSON"))
        .collect()
}

#[tokio::test]
async fn config_versions_are_numbered_per_service_and_environment() {
    on_each_backend("config_versions_numbered", async |db| {
        let store = &db.store;
        assert_eq!(
            store.latest_config_version("idp", "prod").await.unwrap(),
            None
        );
        assert!(store.latest_config_versions().await.unwrap().is_empty());

        let mut created = Vec::new();
        for (service, environment, n) in [
            ("idp", "prod", 1),
            ("idp", "staging", 2),
            ("idp", "prod", 3),
            ("api", "prod", 4),
            ("idp", "prod", 5),
            ("api", "prod", 6),
        ] {
            created.push(create(store, service, environment, n).await);
        }
        assert_eq!(
            numbers(&created),
            [
                scope("idp", "prod", 1),
                scope("idp", "staging", 1),
                scope("idp", "prod", 2),
                scope("api", "prod", 1),
                scope("idp", "prod", 3),
                scope("api", "prod", 2),
            ]
        );

        // Read back exactly as written.
        for record in &created {
            let read = store
                .config_version(&record.service, &record.environment, record.number)
                .await
                .unwrap();
            assert_eq!(read.as_ref(), Some(record));
        }
        let first = &created[0];
        assert_eq!(first.sealed, sealed(1, "key-1"));
        assert_eq!(first.changed, ["DATABASE_URL", "QUEUE_1"]);
        assert_eq!((first.created_by.as_str(), first.created_at), ("alice", T0));
        assert_eq!(first.message.as_deref(), Some("change 1"));
        assert_eq!(
            (first.approved_by.as_deref(), first.approved_at),
            (None, None)
        );

        let idp_prod = store.config_versions("idp", "prod").await.unwrap();
        assert_eq!(
            numbers(&idp_prod),
            [3, 2, 1].map(|n| scope("idp", "prod", n)),
            "newest first"
        );
        assert_eq!(
            store.latest_config_version("idp", "prod").await.unwrap(),
            Some(created[4].clone())
        );
        assert_eq!(
            numbers(&store.latest_config_versions().await.unwrap()),
            [
                scope("api", "prod", 2),
                scope("idp", "prod", 3),
                scope("idp", "staging", 1),
            ]
        );
        assert_eq!(store.config_version("idp", "prod", 4).await.unwrap(), None);
        assert_eq!(store.config_version("idp", "dev", 1).await.unwrap(), None);
        assert_eq!(
            store.config_version("idp", "prod", u64::MAX).await.unwrap(),
            None
        );
        assert!(
            store
                .config_versions("idp", "dev")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.verify_chain().await.unwrap().broken, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_config_versions_never_repeat_a_number() {
    on_each_backend("concurrent_config_versions", async |db| {
        let store = &db.store;
        let tasks: Vec<_> = (1..=8u8)
            .map(|n| {
                let store = store.clone();
                // Two environments at once: each has its own numbers.
                let environment = if n % 2 == 0 { "prod" } else { "staging" };
                tokio::spawn(async move {
                    store
                        .create_config_version(&new_version("idp", environment, n), T0)
                        .await
                        .expect("the config version is created")
                })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            created.push(task.await.expect("the task does not panic"));
        }
        for environment in ["prod", "staging"] {
            let mut numbers: Vec<u64> = created
                .iter()
                .filter(|r| r.environment == environment)
                .map(|r| r.number)
                .collect();
            numbers.sort();
            assert_eq!(numbers, [1, 2, 3, 4], "{environment}");
        }
        let report = store.verify_chain().await.unwrap();
        assert_eq!((report.verified, report.broken), (8, None));
    })
    .await;
}

#[tokio::test]
async fn a_config_version_is_approved_once() {
    on_each_backend("config_version_approved_once", async |db| {
        let store = &db.store;
        let unapproved = create(store, "idp", "prod", 1).await;
        let later = Time(T0.0 + 60_000);
        let approved = store
            .approve_config_version("idp", "prod", 1, "bob", later)
            .await
            .unwrap();
        assert_eq!(
            approved,
            ConfigVersionRecord {
                approved_by: Some("bob".to_owned()),
                approved_at: Some(later),
                ..unapproved
            }
        );
        assert_eq!(
            store.config_version("idp", "prod", 1).await.unwrap(),
            Some(approved.clone())
        );

        let again = store
            .approve_config_version("idp", "prod", 1, "carol", later)
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{again:?}"
        );
        let unknown = store
            .approve_config_version("idp", "prod", 2, "bob", later)
            .await;
        let Err(error @ StoreError::NotFound { .. }) = unknown else {
            panic!("expected NotFound, got {unknown:?}");
        };
        assert_eq!(
            error.to_string(),
            "config version `2 of idp in prod` does not exist"
        );
        let huge = store
            .approve_config_version("idp", "prod", u64::MAX, "bob", later)
            .await;
        assert!(matches!(huge, Err(StoreError::NotFound { .. })), "{huge:?}");
        assert_eq!(
            store.config_version("idp", "prod", 1).await.unwrap(),
            Some(approved),
            "a refused approval leaves the first"
        );

        // Unprotected: approved by its author when it is created, and not again.
        let own = store
            .create_config_version(
                &NewConfigVersion {
                    approved: true,
                    parent: None,
                    ..new_version("idp", "staging", 2)
                },
                T0,
            )
            .await
            .unwrap();
        assert_eq!(
            (own.approved_by.as_deref(), own.approved_at),
            (Some("alice"), Some(T0))
        );
        let again = store
            .approve_config_version("idp", "staging", 1, "bob", later)
            .await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists { .. })),
            "{again:?}"
        );

        let approvals = payloads(store, "config_version_approved").await;
        assert_eq!(
            approvals,
            [serde_json::json!({
                "service": "idp",
                "environment": "prod",
                "version": 1,
                "digest": format!("sha256:{:064x}", 1),
                "by": "bob",
            })]
        );
        assert_eq!(store.verify_chain().await.unwrap().broken, None);
    })
    .await;
}

#[tokio::test]
async fn config_events_name_keys_and_never_carry_values() {
    on_each_backend("config_events_name_keys", async |db| {
        let store = &db.store;
        create(store, "idp", "prod", 1).await;
        store
            .approve_config_version("idp", "prod", 1, "bob", T0)
            .await
            .unwrap();
        store
            .rewrap_sealed("key-2", "admin", T0, &|s: &Sealed| {
                Ok(Some(Sealed {
                    key_id: "key-2".to_owned(),
                    ..s.clone()
                }))
            })
            .await
            .unwrap();

        let created = payloads(store, "config_version_created").await;
        assert_eq!(
            created,
            [serde_json::json!({
                "service": "idp",
                "environment": "prod",
                "version": 1,
                "digest": format!("sha256:{:064x}", 1),
                "changed": ["DATABASE_URL", "QUEUE_1"],
                "by": "alice",
                "message": "change 1",
                "approved": false,
            })]
        );
        let sealed = sealed(1, "key-1");
        let decimal = |bytes: &[u8]| {
            bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for event in all_events(store).await {
            for forbidden in [
                "CANARY-CIPHERTEXT".to_owned(),
                hex(&sealed.ciphertext),
                decimal(&sealed.ciphertext),
                decimal(&sealed.wrapped_key),
                decimal(&sealed.nonce),
                "ciphertext".to_owned(),
                "wrapped_key".to_owned(),
            ] {
                assert!(
                    !event.payload.contains(&forbidden),
                    "{} carries `{forbidden}`: {}",
                    event.kind,
                    event.payload
                );
            }
        }
    })
    .await;
}

/// Re-wraps anything not under `key-2` under it with a new wrapped key, as a keyring would.
fn to_key_2(sealed: &Sealed) -> Result<Option<Sealed>, String> {
    if sealed.key_id == "key-2" {
        return Ok(None);
    }
    Ok(Some(Sealed {
        key_id: "key-2".to_owned(),
        wrapped_key: sealed.wrapped_key.iter().map(|b| b ^ 0xff).collect(),
        ..sealed.clone()
    }))
}

#[tokio::test]
async fn rewrapping_changes_only_the_key_id_and_wrapped_key() {
    on_each_backend("rewrap_changes_only_wrapping", async |db| {
        let store = &db.store;
        create(store, "idp", "prod", 1).await;
        create(store, "idp", "prod", 2).await;
        store
            .approve_config_version("idp", "prod", 2, "bob", T0)
            .await
            .unwrap();
        create(store, "api", "prod", 3).await;
        // Already under the new key: left alone.
        store
            .create_config_version(
                &NewConfigVersion {
                    sealed: sealed(4, "key-2"),
                    ..new_version("idp", "staging", 4)
                },
                T0,
            )
            .await
            .unwrap();
        store
            .put_secret_key("fingerprint", &sealed(9, "key-1"))
            .await
            .unwrap();
        let before = everything(store).await;

        let later = Time(T0.0 + 1_000);
        let count = store
            .rewrap_sealed("key-2", "admin", later, &to_key_2)
            .await
            .unwrap();
        assert_eq!(count, 4, "three versions and the fingerprint key");

        let after = everything(store).await;
        assert_eq!(after.len(), before.len());
        for (old, new) in before.iter().zip(&after) {
            let expected = to_key_2(&old.sealed).unwrap().unwrap_or(old.sealed.clone());
            assert_eq!(
                new,
                &ConfigVersionRecord {
                    sealed: expected,
                    ..old.clone()
                },
                "only the wrapping changes, and only where it was not under key-2"
            );
            assert_eq!(new.sealed.key_id, "key-2");
        }
        assert_eq!(
            store.secret_key("fingerprint").await.unwrap(),
            to_key_2(&sealed(9, "key-1")).unwrap()
        );
        assert_eq!(
            payloads(store, "master_key_rotated").await,
            [serde_json::json!({ "key_id": "key-2", "rewrapped": 4, "by": "admin" })]
        );

        // Everything is under key-2 now: nothing left to re-wrap.
        let again = store
            .rewrap_sealed("key-2", "admin", later, &to_key_2)
            .await
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(everything(store).await, after);
        assert_eq!(store.verify_chain().await.unwrap().broken, None);
    })
    .await;
}

#[tokio::test]
async fn a_failed_rewrap_changes_nothing() {
    on_each_backend("failed_rewrap_changes_nothing", async |db| {
        let store = &db.store;
        for n in 1..=3 {
            create(store, "idp", "prod", n).await;
        }
        store
            .put_secret_key("fingerprint", &sealed(9, "key-1"))
            .await
            .unwrap();
        let before = everything(store).await;
        let events = all_events(store).await;

        // Version 2 cannot be opened; versions 1 (before it) and 3 (after) could.
        let fails_on_2 = |sealed: &Sealed| {
            if sealed.wrapped_key == vec![2; 40] {
                return Err("master key key-1 is not configured".to_owned());
            }
            to_key_2(sealed)
        };
        let failed = store.rewrap_sealed("key-2", "admin", T0, &fails_on_2).await;
        let Err(StoreError::Invalid { message, hint }) = failed else {
            panic!("expected Invalid, got {failed:?}");
        };
        assert_eq!(
            message,
            "cannot re-wrap the data key of config version 2 of idp in prod (under master key \
             key-1): master key key-1 is not configured"
        );
        assert!(hint.contains("nothing was re-wrapped"), "{hint}");

        // The secret keys come last: a failure there undoes the versions re-wrapped before it.
        let fails_on_key = |sealed: &Sealed| {
            if sealed.wrapped_key == vec![9; 40] {
                return Err("tampered".to_owned());
            }
            to_key_2(sealed)
        };
        let failed = store
            .rewrap_sealed("key-2", "admin", T0, &fails_on_key)
            .await;
        let Err(StoreError::Invalid { message, .. }) = failed else {
            panic!("expected Invalid, got {failed:?}");
        };
        assert!(
            message.contains("the secret key `fingerprint`") && !message.contains("CANARY"),
            "{message}"
        );

        // A re-wrap that would touch the values themselves is refused as well.
        let changes_values = |sealed: &Sealed| {
            Ok(Some(Sealed {
                key_id: "key-2".to_owned(),
                ciphertext: b"other".to_vec(),
                ..sealed.clone()
            }))
        };
        let failed = store
            .rewrap_sealed("key-2", "admin", T0, &changes_values)
            .await;
        let Err(StoreError::Invalid { message, .. }) = failed else {
            panic!("expected Invalid, got {failed:?}");
        };
        assert!(
            message.contains("config version 1 of idp in prod"),
            "{message}"
        );
        // And so is one under another key than the one announced.
        let wrong_key = store.rewrap_sealed("key-3", "admin", T0, &to_key_2).await;
        assert!(
            matches!(wrong_key, Err(StoreError::Invalid { .. })),
            "{wrong_key:?}"
        );

        assert_eq!(everything(store).await, before);
        assert_eq!(
            store.secret_key("fingerprint").await.unwrap(),
            Some(sealed(9, "key-1"))
        );
        assert_eq!(all_events(store).await, events, "no event either");
    })
    .await;
}

#[tokio::test]
async fn the_database_refuses_changing_or_deleting_a_config_version() {
    on_each_backend("config_versions_immutable", async |db| {
        let store = &db.store;
        create(store, "idp", "prod", 1).await;
        store
            .approve_config_version("idp", "prod", 1, "bob", T0)
            .await
            .unwrap();
        create(store, "idp", "prod", 2).await;
        store
            .put_secret_key("fingerprint", &sealed(9, "key-1"))
            .await
            .unwrap();
        let before = everything(store).await;
        let pool = raw(db).await;

        let mut refused = vec![
            "UPDATE config_versions SET ciphertext = nonce WHERE number = 1",
            "UPDATE config_versions SET nonce = ciphertext",
            "UPDATE config_versions SET digest = 'sha256:0' WHERE number = 2",
            "UPDATE config_versions SET number = 7 WHERE number = 2",
            "UPDATE config_versions SET service = 'api'",
            "UPDATE config_versions SET environment = 'dev'",
            "UPDATE config_versions SET changed_keys = '[]'",
            "UPDATE config_versions SET approved_by = 'mallory' WHERE number = 1",
            "UPDATE config_versions SET approved_by = NULL, approved_at = NULL WHERE number = 1",
            "DELETE FROM config_versions WHERE number = 2",
            "DELETE FROM config_versions",
            "UPDATE secret_keys SET ciphertext = nonce",
            "DELETE FROM secret_keys",
        ];
        if db.backend() == Backend::Postgres {
            refused.extend(["TRUNCATE config_versions", "TRUNCATE secret_keys"]);
        }
        for sql in refused {
            let error = execute(&pool, sql).await.expect_err(sql).to_string();
            assert!(error.contains("immutable"), "{sql}: {error}");
        }
        assert_eq!(everything(store).await, before);
        assert_eq!(
            store.secret_key("fingerprint").await.unwrap(),
            Some(sealed(9, "key-1"))
        );

        // What rotation and approval do is allowed.
        let allowed = [
            "UPDATE config_versions SET key_id = 'key-2', wrapped_key = nonce WHERE number = 1",
            "UPDATE config_versions SET approved_by = 'bob', approved_at = 1 WHERE number = 2",
            "UPDATE secret_keys SET key_id = 'key-2', wrapped_key = nonce",
        ];
        for sql in allowed {
            assert_eq!(execute(&pool, sql).await.expect(sql), 1, "{sql}");
        }
        pool.close().await;
        let first = store
            .config_version("idp", "prod", 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.sealed.key_id, "key-2");
        assert_eq!(first.sealed.ciphertext, before[1].sealed.ciphertext);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_secret_key_written_is_kept() {
    on_each_backend("first_secret_key_kept", async |db| {
        let store = &db.store;
        assert_eq!(store.secret_key("fingerprint").await.unwrap(), None);
        let first = store
            .put_secret_key("fingerprint", &sealed(1, "key-1"))
            .await
            .unwrap();
        assert_eq!(first, sealed(1, "key-1"));
        let second = store
            .put_secret_key("fingerprint", &sealed(2, "key-1"))
            .await
            .unwrap();
        assert_eq!(second, first, "the stored key, not the one offered");
        assert_eq!(store.secret_key("fingerprint").await.unwrap(), Some(first));

        // Servers starting at once all end up with one key.
        let tasks: Vec<_> = (10..16u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put_secret_key("other", &sealed(n, "key-1"))
                        .await
                        .expect("the key is stored")
                })
            })
            .collect();
        let mut kept = Vec::new();
        for task in tasks {
            kept.push(task.await.expect("the task does not panic"));
        }
        let stored = store.secret_key("other").await.unwrap().unwrap();
        assert!(kept.iter().all(|k| k == &stored), "{kept:?} vs {stored:?}");
    })
    .await;
}

#[tokio::test]
async fn a_change_made_from_an_older_version_is_refused_and_writes_nothing() {
    on_each_backend("config_parent", async |db| {
        let store = &db.store;
        // Two people read "no version yet"; the first one's change is written.
        let first = NewConfigVersion {
            parent: Some(0),
            ..new_version("idp", "prod", 1)
        };
        store.create_config_version(&first, T0).await.unwrap();
        let late = NewConfigVersion {
            parent: Some(0),
            ..new_version("idp", "prod", 2)
        };
        let error = store.create_config_version(&late, T0).await.unwrap_err();
        assert!(
            matches!(error, StoreError::AlreadyExists { .. }),
            "{error:?}"
        );
        assert_eq!(everything(store).await.len(), 1);
        // Made again from version 1, it is version 2.
        let again = NewConfigVersion {
            parent: Some(1),
            ..new_version("idp", "prod", 2)
        };
        let written = store.create_config_version(&again, T0).await.unwrap();
        assert_eq!(written.number, 2);
    })
    .await;
}
