//! Checklists through the API: the items of a service and environment with their state, ticks
//! by the roles an item allows with evidence that fits, unticks, and 404s that name the
//! closest item.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Api, error_code};

async fn tick(api: &Api, token: &str, body: Value) -> (StatusCode, Value) {
    api.call(
        Method::POST,
        "/api/v1/services/idp/checklist/tick",
        Some(token),
        Some(body),
    )
    .await
}

async fn checklist(api: &Api, token: &str, query: &str) -> Value {
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/api/v1/services/idp/checklist?{query}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn ticked_items_show_who_ticked_them_with_the_evidence() {
    let api = Api::start().await;
    let carol = api.user("carol", "approver").await;
    let bob = api.user("bob", "deployer").await;
    api.release(&carol, "idp", "1.0.0").await;
    api.release(&carol, "idp", "1.1.0").await;

    let before = checklist(&api, &bob, "environment=prod").await;
    assert_eq!(before["release"], "RC 2", "the newest release by default");
    assert_eq!(before["complete"], false);
    let names: Vec<&str> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agreement signed", "logo present"]);
    assert_eq!(before["items"][0]["missing"], "not ticked");
    assert_eq!(before["items"][0]["who_may_tick"], "an approver or admin");
    assert_eq!(
        before["items"][0]["command"],
        "slipway checklist tick idp --env prod --release \"RC 2\" \"agreement signed\" --link URL"
    );

    let (status, body) = tick(
        &api,
        &carol,
        json!({"environment": "prod", "release": "2", "item": "agreement signed",
               "link": "https://contracts.example.com/iaa-114"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["release"], "RC 2");
    assert_eq!(body["by"], "carol");
    let (status, body) = tick(
        &api,
        &bob,
        json!({"environment": "prod", "release": "RC 1", "item": "logo present",
               "note": "uploaded to the dashboard"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["release"],
        Value::Null,
        "a standing item ignores the release"
    );

    let after = checklist(&api, &bob, "environment=prod&release=RC%202").await;
    assert_eq!(after["complete"], true, "{after:#}");
    let agreement = &after["items"][0]["tick"];
    assert_eq!(agreement["by"], "carol");
    assert_eq!(agreement["role"], "approver");
    assert_eq!(agreement["link"], "https://contracts.example.com/iaa-114");
    assert_eq!(
        after["items"][1]["tick"]["note"],
        "uploaded to the dashboard"
    );

    let older = checklist(&api, &bob, "environment=prod&release=1").await;
    assert_eq!(older["complete"], false, "RC 1 has no signed agreement");
    assert_eq!(
        older["items"][1]["done"], true,
        "the standing item counts for RC 1"
    );

    let staging = checklist(&api, &bob, "environment=staging").await;
    assert_eq!(staging["items"].as_array().unwrap().len(), 1);
    api.stop().await;
}

#[tokio::test]
async fn ticking_needs_a_role_the_item_allows_and_evidence_that_fits() {
    let api = Api::start().await;
    let bob = api.user("bob", "deployer").await;
    let victor = api.user("victor", "viewer").await;
    api.release(&api.admin, "idp", "1.0.0").await;
    let agreement = |evidence: Value| {
        let mut body = json!({"environment": "prod", "release": "1", "item": "agreement signed"});
        body.as_object_mut()
            .unwrap()
            .extend(evidence.as_object().unwrap().clone());
        body
    };

    let (status, body) = tick(
        &api,
        &bob,
        agreement(json!({"link": "https://example.com/x"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "bob is a deployer; ticking `agreement signed` needs the approver or admin role"
    );
    assert_eq!(
        body["error"]["hint"],
        "ask an approver or admin to do it, or an admin to run `slipway user set-role bob approver`"
    );
    let (status, body) = tick(
        &api,
        &victor,
        json!({"environment": "prod", "item": "logo present", "note": "ok"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs the deployer role"),
        "{body}"
    );

    let admin = api.admin.clone();
    let cases = [
        (agreement(json!({})), "evidence_required"),
        (
            agreement(json!({"link": "https://a.example", "note": "both"})),
            "evidence_required",
        ),
        (agreement(json!({"note": "signed"})), "invalid_evidence"),
        (
            agreement(json!({"link": "contracts/114"})),
            "invalid_evidence",
        ),
        (
            json!({"environment": "prod", "item": "logo present", "note": "   "}),
            "invalid_evidence",
        ),
        (
            json!({"environment": "prod", "item": "agreement signed", "link": "https://a.example"}),
            "release_required",
        ),
        (
            json!({"environment": "prod", "release": "7", "item": "agreement signed",
                   "link": "https://a.example"}),
            "not_found",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = tick(&api, &admin, body.clone()).await;
        assert_eq!(error_code(&answer), code, "{body} -> {status} {answer}");
        assert!(answer["error"]["hint"].is_string(), "{answer}");
    }
    let (_, answer) = tick(
        &api,
        &admin,
        json!({"environment": "prod", "item": "agreement signed", "link": "https://a.example"}),
    )
    .await;
    assert_eq!(
        answer["error"]["hint"],
        "say which release, e.g. --release \"RC 1\" (the newest of idp)"
    );
    api.stop().await;
}

#[tokio::test]
async fn unknown_items_and_environments_are_404_with_the_closest_name() {
    let api = Api::start().await;
    let admin = api.admin.clone();
    let (status, body) = tick(
        &api,
        &admin,
        json!({"environment": "prod", "item": "logo presnet", "note": "ok"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        "idp has no checklist item `logo presnet` in prod"
    );
    assert_eq!(body["error"]["hint"], "did you mean `logo present`?");
    // The agreement applies to prod only.
    let (status, body) = tick(
        &api,
        &admin,
        json!({"environment": "staging", "item": "agreement signed", "link": "https://a.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["hint"],
        "the items of idp in staging: logo present"
    );
    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/services/idp/checklist?environment=prdo",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["hint"], "did you mean `prod`?");
    api.stop().await;
}

#[tokio::test]
async fn an_untick_takes_the_item_back_and_is_kept_in_the_audit_log() {
    let api = Api::start().await;
    let bob = api.user("bob", "deployer").await;
    let logo = json!({"environment": "prod", "item": "logo present", "note": "uploaded"});
    assert_eq!(tick(&api, &bob, logo).await.0, StatusCode::CREATED);
    let untick = |token: String| {
        let api = &api;
        async move {
            api.call(
                Method::POST,
                "/api/v1/services/idp/checklist/untick",
                Some(&token),
                Some(json!({"environment": "prod", "item": "logo present",
                            "reason": "the logo is the old one"})),
            )
            .await
        }
    };
    let (status, body) = untick(bob.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["action"], "untick");
    assert_eq!(body["note"], "the logo is the old one");
    let (status, body) = untick(bob.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "`logo present` is not ticked for idp in prod"
    );
    let state = checklist(&api, &bob, "environment=prod").await;
    assert_eq!(state["items"][1]["tick"], Value::Null);

    let (_, events) = api
        .call(Method::GET, "/api/v1/audit/events", Some(&api.admin), None)
        .await;
    let text = events.to_string();
    assert!(text.contains("checklist_ticked"), "{text}");
    assert!(text.contains("checklist_unticked"), "{text}");
    api.stop().await;
}

#[tokio::test]
async fn runbook_is_markdown_from_the_servers_config_with_its_checklist() {
    let api = Api::start().await;
    let request = axum::http::Request::get("/api/v1/services/idp/runbook?environment=prod")
        .header("authorization", format!("Bearer {}", api.admin))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(slipway_server::app(api.state.clone()), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let markdown = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(markdown.starts_with("# Runbook: idp\n"), "{markdown}");
    assert!(markdown.contains("## prod"), "{markdown}");
    assert!(!markdown.contains("## staging"), "{markdown}");
    assert!(markdown.contains("**agreement signed**"), "{markdown}");

    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/services/ipd/runbook",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["hint"], "did you mean `idp`?");
    api.stop().await;
}
