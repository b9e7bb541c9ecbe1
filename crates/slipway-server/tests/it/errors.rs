//! Bad input is answered in the API's error shape, with a hint, and changes nothing.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

use crate::support::{ARTIFACT_LIMIT, Api, JSON_LIMIT, error_code};

#[tokio::test]
async fn request_without_a_token_is_401_with_a_hint() {
    let api = Api::start().await;
    let (status, body) = api.call(Method::GET, "/api/v1/deploys", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthenticated");
    let hint = body["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("SLIPWAY_TOKEN"), "{hint}");
    api.stop().await;
}

#[tokio::test]
async fn wrong_or_revoked_token_is_401() {
    let api = Api::start().await;
    let forged = format!("slw_{}", "0".repeat(64));
    let (status, body) = api
        .call(Method::GET, "/api/v1/me", Some(&forged), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_token");
    let (status, body) = api
        .call(Method::GET, "/api/v1/me", Some("hunter2"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let token = api.user("carol", "viewer").await;
    let (status, _) = api
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(&token), None)
        .await;
    let id = tokens[0]["id"].as_i64().unwrap();
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "invalid_token");
    api.stop().await;
}

#[tokio::test]
async fn viewer_starting_a_deploy_is_403_and_creates_nothing() {
    let api = Api::start().await;
    let deployer = api.user("alice", "deployer").await;
    api.release(&deployer, "idp", "1.0.0").await;
    let viewer = api.user("victor", "viewer").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&viewer),
            Some(json!({"service": "idp", "environment": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("victor is a viewer"), "{message}");
    let (_, page) = api
        .call(Method::GET, "/api/v1/deploys", Some(&viewer), None)
        .await;
    assert_eq!(page["items"], json!([]));
    api.stop().await;
}

#[tokio::test]
async fn non_admin_cannot_add_users_or_make_tokens_for_others() {
    let api = Api::start().await;
    let deployer = api.user("alice", "deployer").await;
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/users",
            Some(&deployer),
            Some(json!({"name": "mallory", "role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&deployer),
            Some(json!({"user": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    api.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_naming_the_field() {
    let api = Api::start().await;
    let admin = Some(api.admin.as_str());
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            admin,
            Some(json!({"service": "idp"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_body");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("environment"),
        "{body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/users",
            admin,
            Some(json!({"name": "x", "role": "boss"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("role") && message.contains("boss"),
        "{message}"
    );

    let request = Request::post("/api/v1/releases")
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"service\": "))
        .unwrap();
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "malformed_json");
    api.stop().await;
}

#[tokio::test]
async fn json_body_over_the_limit_is_413() {
    let api = Api::start().await;
    let reason = "x".repeat(JSON_LIMIT + 1);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/releases",
            Some(&api.admin),
            Some(json!({"service": "idp", "version": "1", "reason": reason})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "body_too_large");
    api.stop().await;
}

#[tokio::test]
async fn artifact_over_the_limit_is_413_and_leaves_nothing() {
    let api = Api::start().await;
    let too_big = vec![7u8; usize::try_from(ARTIFACT_LIMIT).unwrap() + 1];
    let (status, body) = api.push(&api.admin, "idp", "1.0.0", too_big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "artifact_too_large");
    let (_, page) = api
        .call(Method::GET, "/api/v1/artifacts", Some(&api.admin), None)
        .await;
    assert_eq!(page["items"], json!([]));
    let stored = std::fs::read_dir(api.state.blobs.root().join("sha256"))
        .unwrap()
        .count();
    let partial = std::fs::read_dir(api.state.blobs.root().join("tmp"))
        .unwrap()
        .count();
    assert_eq!((stored, partial), (0, 0));
    api.stop().await;
}

#[tokio::test]
async fn unknown_service_is_404_with_the_names_that_exist() {
    let api = Api::start().await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "ipd", "environment": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    assert_eq!(body["error"]["hint"], "did you mean `idp`?");
    let (status, body) = api
        .call(Method::GET, "/api/v1/services/nope", Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    api.stop().await;
}

#[tokio::test]
async fn repushed_version_with_another_digest_is_409_and_the_same_file_is_a_noop() {
    let api = Api::start().await;
    let (status, first) = api
        .push(&api.admin, "idp", "1.0.0", b"build one".to_vec())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["created"], true);
    let (status, again) = api
        .push(&api.admin, "idp", "1.0.0", b"build one".to_vec())
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["artifact"]["digest"], first["artifact"]["digest"]);
    let (status, body) = api
        .push(&api.admin, "idp", "1.0.0", b"build two".to_vec())
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "version_taken");
    let (_, page) = api
        .call(Method::GET, "/api/v1/artifacts", Some(&api.admin), None)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn unknown_route_and_wrong_method_answer_in_the_error_shape() {
    let api = Api::start().await;
    let (status, body) = api.call(Method::GET, "/api/v2/deploys", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
    let (status, body) = api.call(Method::PATCH, "/api/v1/deploys", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "method_not_allowed");
    let (status, body) = api
        .call(Method::GET, "/api/v1/deploys/abc", Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_path");
    api.stop().await;
}

#[tokio::test]
async fn lost_database_answers_503_without_detail() {
    let api = Api::start().await;
    let admin = api.admin.clone();
    api.state.store.close().await;
    let (status, body) = api
        .call(Method::GET, "/api/v1/deploys", Some(&admin), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "database_unavailable");
    let text = body.to_string();
    assert!(!text.contains("sqlite") && !text.contains("pool"), "{text}");
    let (status, health) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["status"], "degraded");
    api.stop().await;
}

#[tokio::test]
async fn config_routes_without_a_master_key_say_how_to_configure_one_and_deploys_still_work() {
    let api = Api::start().await;
    let token = api.user("alice", "deployer").await;
    let body = json!({"set": {"QUEUE": {"value": "jobs"}}});
    for (method, path, body) in [
        (Method::POST, "/api/v1/config/idp/staging", Some(body)),
        (Method::GET, "/api/v1/config/idp/staging", None),
        (Method::GET, "/api/v1/config/idp/staging/diff", None),
        (
            Method::POST,
            "/api/v1/config/fingerprint",
            Some(json!({"value": "x"})),
        ),
    ] {
        let (status, answer) = api.call(method, path, Some(&token), body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert_eq!(error_code(&answer), "no_master_key", "{path}");
        let hint = answer["error"]["hint"].as_str().unwrap();
        assert!(hint.contains("slipway config keygen"), "{hint}");
    }
    // No config versions: a deploy pins none and starts as before.
    api.release(&token, "idp", "1.0.0").await;
    let (status, deploy) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&token),
            Some(json!({"service": "idp", "environment": "staging"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deploy}");
    assert!(
        deploy["release"].get("config_version").is_none(),
        "{deploy}"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_string_sent_where_it_does_not_belong_is_not_repeated_in_the_error() {
    let api = Api::start().await;
    let token = api.user("alice", "deployer").await;
    let canary = "hunter2-\\\"quoted\\\"-canary";
    let body = format!(r#"{{"service": "idp", "environment": "staging", "wait": "{canary}"}}"#);
    let request = axum::http::Request::post("/api/v1/deploys")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, answer) = api.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(error_code(&answer), "invalid_body");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("expected a boolean"), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("canary"),
        "{message}"
    );
    api.stop().await;
}
