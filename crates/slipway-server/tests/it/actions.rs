//! Deploys and operator actions through the API, with a real engine moving the deploys.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{Api, error_code, wait_for_deploy};

fn finished(body: &Value) -> bool {
    body["phase"]["state"] == "finished"
}

async fn deploy(api: &Api, token: &str, env: &str, release: Option<&str>) -> Value {
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(token),
            Some(json!({"service": "idp", "environment": env, "release": release})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

#[tokio::test]
async fn release_deployed_to_staging_succeeds_and_shows_as_running() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    assert_eq!(api.release(&alice, "idp", "1.0.0").await, "1");
    let created = deploy(&api, &alice, "staging", None).await;
    assert_eq!(created["release"]["label"], "RC 1");
    let id = created["id"].as_i64().unwrap();
    let done = wait_for_deploy(&api, &alice, id, "finished", finished).await;
    assert_eq!(done["phase"]["result"], "succeeded", "{done:#}");

    let (_, events) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}/events"),
            Some(&alice),
            None,
        )
        .await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"deploy_created"));
    assert_eq!(kinds.iter().filter(|k| **k == "deploy_finished").count(), 1);

    let (_, service) = api
        .call(Method::GET, "/api/v1/services/idp", Some(&alice), None)
        .await;
    let staging = &service["environments"][0];
    assert_eq!(staging["environment"], "staging");
    assert_eq!(staging["running"]["label"], "RC 1");
    assert_eq!(staging["active_deploy"], Value::Null);
    api.stop().await;
}

#[tokio::test]
async fn requester_cannot_approve_and_another_approver_unblocks_prod() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "approver").await;
    let bob = api.user("bob", "approver").await;
    let victor = api.user("victor", "viewer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let id = deploy(&api, &alice, "prod", None).await["id"]
        .as_i64()
        .unwrap();
    let waiting = wait_for_deploy(&api, &alice, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;
    assert_eq!(waiting["phase"]["approvals"], json!({"have": 0, "need": 1}));

    let path = format!("/api/v1/deploys/{id}/approve");
    let (status, body) = api.call(Method::POST, &path, Some(&victor), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = api.call(Method::POST, &path, Some(&alice), None).await;
    assert!(
        status.is_client_error(),
        "the requester's approval is refused: {body}"
    );
    assert_eq!(error_code(&body), "rejected");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("alice"),
        "{body}"
    );

    let binding = waiting["binding"].clone();
    let (status, body) = api
        .call(Method::POST, &path, Some(&bob), Some(binding))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "applied");
    assert_eq!(body["deploy"]["approvals"][0]["by"], "bob");
    let done = wait_for_deploy(&api, &alice, id, "finished", finished).await;
    assert_eq!(done["phase"]["result"], "succeeded", "{done:#}");

    let (status, body) = api.call(Method::POST, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "deploy_finished");
    api.stop().await;
}

#[tokio::test]
async fn rollback_after_success_deploys_the_previous_release_from_its_artifact() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    api.release(&alice, "idp", "1.0.0").await;
    api.release(&alice, "idp", "1.1.0").await;
    for release in ["1", "2"] {
        let id = deploy(&api, &alice, "staging", Some(release)).await["id"]
            .as_i64()
            .unwrap();
        wait_for_deploy(&api, &alice, id, "finished", finished).await;
    }
    let body = json!({"service": "idp", "environment": "staging", "reason": "errors up"});
    let (status, answer) = api
        .call(
            Method::POST,
            "/api/v1/rollbacks",
            Some(&alice),
            Some(json!({"service": "idp", "environment": "staging"})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a rollback needs a reason: {answer}"
    );
    let (status, answer) = api
        .call(Method::POST, "/api/v1/rollbacks", Some(&alice), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let rollback = &answer["deploy"];
    assert_eq!(rollback["purpose"], "rollback");
    assert_eq!(rollback["release"]["label"], "RC 1");
    assert_eq!(rollback["previous"]["label"], "RC 2");
    let id = rollback["id"].as_i64().unwrap();
    let done = wait_for_deploy(&api, &alice, id, "finished", finished).await;
    assert_eq!(done["phase"]["result"], "succeeded");
    let (_, service) = api
        .call(Method::GET, "/api/v1/services/idp", Some(&alice), None)
        .await;
    assert_eq!(service["environments"][0]["running"]["label"], "RC 1");
    api.stop().await;
}

#[tokio::test]
async fn retried_deploy_request_with_the_same_idempotency_key_returns_the_first_deploy() {
    let api = Api::start().await;
    let alice = api.user("alice", "deployer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let request = || {
        Request::post("/api/v1/deploys")
            .header(header::AUTHORIZATION, format!("Bearer {alice}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", "4f7c")
            .body(Body::from(
                json!({"service": "idp", "environment": "staging"}).to_string(),
            ))
            .unwrap()
    };
    let (first, created) = api.send(request()).await;
    let (again, repeated) = api.send(request()).await;
    assert_eq!((first, again), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(created["id"], repeated["id"]);
    let (_, page) = api
        .call(Method::GET, "/api/v1/deploys", Some(&alice), None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn audit_verify_and_export_cover_deploys_and_catalog_changes() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let id = deploy(&api, &alice, "staging", None).await["id"]
        .as_i64()
        .unwrap();
    wait_for_deploy(&api, &alice, id, "finished", finished).await;
    let (status, report) = api
        .call(Method::GET, "/api/v1/audit/verify", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["intact"], true, "{report}");
    let (_, page) = api
        .call(
            Method::GET,
            "/api/v1/audit/events?limit=1000",
            Some(&alice),
            None,
        )
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, report["verified"].as_u64().unwrap());
    let kinds: Vec<&str> = items.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "user_added",
        "token_created",
        "artifact_pushed",
        "release_created",
        "deploy_finished",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert!(
        items
            .iter()
            .all(|e| !e["payload"].as_str().unwrap().contains("slw_"))
    );
    api.stop().await;
}

#[tokio::test]
async fn deploying_the_release_that_runs_is_refused() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let id = deploy(&api, &alice, "staging", None).await["id"]
        .as_i64()
        .unwrap();
    wait_for_deploy(&api, &alice, id, "finished", finished).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&alice),
            Some(json!({"service": "idp", "environment": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "already_running");
    api.stop().await;
}

#[tokio::test]
async fn config_release_carrying_another_artifact_is_refused() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    api.release(&alice, "idp", "1.0.0").await;
    let id = deploy(&api, &alice, "staging", None).await["id"]
        .as_i64()
        .unwrap();
    wait_for_deploy(&api, &alice, id, "finished", finished).await;
    let (status, _) = api.push(&alice, "idp", "2.0.0", b"new code".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    let body = json!({"service": "idp", "version": "2.0.0", "kind": "config"});
    let (status, _) = api
        .call(Method::POST, "/api/v1/releases", Some(&alice), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&alice),
            Some(json!({"service": "idp", "environment": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "config_release_changes_artifact");
    api.stop().await;
}

#[tokio::test]
async fn rollback_goes_only_to_releases_that_ran_there_and_never_undoes_itself() {
    let api = Api::with_engine().await;
    let alice = api.user("alice", "deployer").await;
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        api.release(&alice, "idp", version).await;
    }
    for release in ["1", "2"] {
        let id = deploy(&api, &alice, "staging", Some(release)).await["id"]
            .as_i64()
            .unwrap();
        wait_for_deploy(&api, &alice, id, "finished", finished).await;
    }
    let rollback = |to: Option<&str>| json!({"service": "idp", "environment": "staging", "reason": "errors up", "to": to});
    // RC 3 never ran in staging: a rollback must not ship it past approvals and migrations.
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/rollbacks",
            Some(&alice),
            Some(rollback(Some("3"))),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "not_run_here");

    let (status, first) = api
        .call(
            Method::POST,
            "/api/v1/rollbacks",
            Some(&alice),
            Some(rollback(None)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["deploy"]["id"].as_i64().unwrap();
    // Asked again at once: the rollback under way (or done) is never undone.
    let (status, again) = api
        .call(
            Method::POST,
            "/api/v1/rollbacks",
            Some(&alice),
            Some(rollback(None)),
        )
        .await;
    match status {
        StatusCode::OK => {
            assert_eq!(again["status"], "already_rolling_back");
            assert_eq!(again["deploy"]["id"], id);
        }
        StatusCode::CONFLICT => assert_eq!(error_code(&again), "already_rolled_back"),
        other => panic!("unexpected {other}: {again}"),
    }
    wait_for_deploy(&api, &alice, id, "finished", finished).await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/rollbacks",
            Some(&alice),
            Some(rollback(None)),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "already_rolled_back");
    let (_, service) = api
        .call(Method::GET, "/api/v1/services/idp", Some(&alice), None)
        .await;
    assert_eq!(service["environments"][0]["running"]["label"], "RC 1");
    api.stop().await;
}
