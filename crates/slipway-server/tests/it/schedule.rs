//! `GET /api/v1/schedule`: any role may read it; unknown names and missing parameters are
//! refused with a hint.

use axum::http::{Method, StatusCode};

use crate::support::Api;

#[tokio::test]
async fn schedule_is_readable_by_a_viewer_and_names_unknown_environments() {
    let api = Api::start().await;
    let viewer = api.user("victor", "viewer").await;
    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/schedule?service=idp&environment=prod",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // prod names no windows, freezes or calendars: open, with no end in sight.
    assert_eq!(body["open"], true);
    assert_eq!(body["time_zone"], "UTC");
    assert_eq!(body["next_slot"]["start"], body["now"]);
    assert!(body["next_slot"]["end"].is_null(), "{body}");
    assert_eq!(body["reasons"], serde_json::json!([]));

    let (status, body) = api
        .call(
            Method::GET,
            "/api/v1/schedule?service=idp&environment=prdo",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "unknown environment `prdo`");
    assert_eq!(body["error"]["hint"], "did you mean `prod`?", "{body}");

    let (status, _) = api
        .call(
            Method::GET,
            "/api/v1/schedule?service=idp",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api
        .call(
            Method::GET,
            "/api/v1/schedule?service=idp&environment=prod",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    api.stop().await;
}
