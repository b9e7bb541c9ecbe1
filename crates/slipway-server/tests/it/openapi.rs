//! The OpenAPI document is generated from the routes and served without a token.

use axum::http::{Method, StatusCode};

use crate::support::Api;

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_every_route() {
    let api = Api::start().await;
    let (status, document) = api.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let paths: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    insta::assert_snapshot!(paths.join("\n"));
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["schemas"]["DeployView"].is_object());
    api.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_in_prometheus_text() {
    let api = Api::start().await;
    api.call(Method::GET, "/api/v1/deploys/7", Some(&api.admin), None)
        .await;
    let request = axum::http::Request::get("/metrics")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(slipway_server::app(api.state.clone()), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        text.contains(r#"slipway_http_requests_total{method="GET",route="/api/v1/deploys/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("slipway_deploys_in_progress{phase=\"waiting\"} 0"),
        "{text}"
    );
    api.stop().await;
}
