//! Instance logs are listed and read in byte ranges; nothing outside the log directory is.

use axum::http::{Method, StatusCode};

use crate::support::{Api, error_code};

#[tokio::test]
async fn instance_logs_are_listed_and_read_from_an_offset_or_the_tail() {
    let api = Api::start().await;
    let dir = api.dir.path().join("logs/staging/idp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("web-1.log"), "started\nhandling GET /\n").unwrap();
    let token = Some(api.admin.as_str());

    let (status, list) = api
        .call(Method::GET, "/api/v1/logs/idp/staging", token, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["instance"], "web-1");
    assert_eq!(list[0]["size"], 23);

    let path = "/api/v1/logs/idp/staging/web-1";
    let (_, all) = api.call(Method::GET, path, token, None).await;
    assert_eq!(all["text"], "started\nhandling GET /\n");
    assert_eq!(all["next"], 23);
    let (_, rest) = api
        .call(Method::GET, &format!("{path}?offset=8"), token, None)
        .await;
    assert_eq!(rest["text"], "handling GET /\n");
    let (_, tail) = api
        .call(Method::GET, &format!("{path}?tail=6"), token, None)
        .await;
    assert_eq!(tail["text"], "GET /\n");
    let (_, end) = api
        .call(Method::GET, &format!("{path}?offset=23"), token, None)
        .await;
    assert_eq!(
        (end["text"].as_str(), end["next"].as_u64()),
        (Some(""), Some(23))
    );
    api.stop().await;
}

#[tokio::test]
async fn log_names_cannot_leave_the_log_directory() {
    let api = Api::start().await;
    std::fs::write(api.dir.path().join("secret.log"), "nope").unwrap();
    let token = Some(api.admin.as_str());
    for path in [
        "/api/v1/logs/idp/staging/..%2F..%2F..%2Fsecret",
        "/api/v1/logs/idp/staging/.hidden",
        "/api/v1/logs/idp/nowhere/web-1",
        "/api/v1/logs/nobody/staging/web-1",
        "/api/v1/logs/idp/staging/web-9",
    ] {
        let (status, body) = api.call(Method::GET, path, token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(error_code(&body), "not_found");
        assert!(!body.to_string().contains("nope"));
    }
    api.stop().await;
}
