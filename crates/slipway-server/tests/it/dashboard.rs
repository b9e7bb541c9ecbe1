//! The dashboard's pages driven through the router: sign-in and session expiry, CSRF refusal,
//! escaping of hostile text, masked secrets, HTML 404s and the live event stream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use slipway_core::time::Span;
use slipway_engine::clock::{Clock, ManualClock, SystemClock};
use tower::ServiceExt;

use crate::support::{Api, wait_for_deploy};

/// A signed-in browser: its session cookie and the CSRF token its pages carry.
struct Browser {
    cookie: String,
    csrf: String,
}

fn form_request(path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let body = fields
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "dashboard.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::from(body)).expect("a valid request")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path).header(header::HOST, "dashboard.test");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.body(Body::empty()).expect("a valid request")
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts that no two elements of `page` share an id (labels and scripts rely on them).
#[track_caller]
fn assert_unique_ids(page: &str) {
    let mut seen = std::collections::BTreeSet::new();
    for id in page
        .split(" id=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
    {
        assert!(
            seen.insert(id.to_owned()),
            "the id {id:?} appears twice:\n{page}"
        );
    }
}

/// Signs in with `token` and reads the CSRF token off the overview.
async fn sign_in(api: &Api, token: &str) -> Browser {
    let (status, headers, body) = api
        .send_raw(form_request(
            "/sign-in",
            None,
            &[("token", token), ("next", "/")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let set_cookie = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let cookie = set_cookie
        .split(';')
        .next()
        .expect("a name=value pair")
        .to_owned();
    let (status, _, page) = api.send_raw(get("/", Some(&cookie))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the page")
        .to_owned();
    Browser { cookie, csrf }
}

#[tokio::test]
async fn hostile_text_is_escaped_on_every_page_that_shows_it() {
    let api = Api::start().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let hostile = r#"<script>alert("pwned")</script><img src=x onerror=alert(1)>"#;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number, "reason": hostile})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("an id");
    let browser = sign_in(&api, &api.admin).await;
    for path in [
        format!("/deploys/{id}"),
        "/audit".to_owned(),
        "/audit?actor=%3Cscript%3E".to_owned(),
    ] {
        let (status, _, page) = api.send_raw(get(&path, Some(&browser.cookie))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(!page.contains("<script>alert"), "{path} lets a script in");
        assert!(!page.contains("<img src=x"), "{path} lets markup in");
        assert!(!page.contains("value=\"<script>"), "{path}");
        assert_unique_ids(&page);
    }
    let (_, _, page) = api
        .send_raw(get(&format!("/deploys/{id}"), Some(&browser.cookie)))
        .await;
    assert!(
        page.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;"),
        "the reason is shown, escaped"
    );
    api.stop().await;
}

#[tokio::test]
async fn actions_without_the_csrf_token_or_from_another_origin_are_refused_and_change_nothing() {
    let api = Api::with_engine().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "prod", "release": number})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("an id");
    wait_for_deploy(&api, &api.admin, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;
    let browser = sign_in(&api, &api.admin).await;
    let path = format!("/deploys/{id}/abort");

    let (status, _, page) = api
        .send_raw(form_request(
            &path,
            Some(&browser.cookie),
            &[("reason", "no token")],
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(
        page.contains("CSRF") && page.contains("hint: reload the page"),
        "{page}"
    );

    let (status, _, page) = api
        .send_raw(form_request(
            &path,
            Some(&browser.cookie),
            &[("reason", "wrong token"), ("csrf", "0000")],
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");

    let mut foreign = form_request(
        &path,
        Some(&browser.cookie),
        &[("reason", "from elsewhere"), ("csrf", &browser.csrf)],
    );
    foreign
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (status, _, page) = api.send_raw(foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("another site"), "{page}");

    for path in [format!("/deploys/{id}"), "/approvals".to_owned()] {
        let (_, _, page) = api.send_raw(get(&path, Some(&browser.cookie))).await;
        assert_unique_ids(&page);
    }
    // Nothing was acted on: the deploy still waits for its approval.
    let (_, deploy) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(deploy["phase"]["waiting_for"], "approval", "{deploy}");

    // The same form with the token and from the dashboard's own origin is acted on.
    let mut own = form_request(
        &path,
        Some(&browser.cookie),
        &[("reason", "changed my mind"), ("csrf", &browser.csrf)],
    );
    own.headers_mut()
        .insert(header::ORIGIN, "http://dashboard.test".parse().unwrap());
    let (status, headers, page) = api.send_raw(own).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), format!("/deploys/{id}?done=abort"));
    let (_, deploy) = api
        .call(
            Method::GET,
            &format!("/api/v1/deploys/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_ne!(deploy["phase"]["waiting_for"], "approval", "{deploy}");
    api.stop().await;
}

#[tokio::test]
async fn an_action_the_api_refuses_shows_its_message_and_hint() {
    let api = Api::with_engine().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "prod", "release": number})),
        )
        .await;
    let id = body["id"].as_i64().expect("an id");
    wait_for_deploy(&api, &api.admin, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;
    // The requester may not approve their own deploy.
    let browser = sign_in(&api, &api.admin).await;
    let (status, _, page) = api
        .send_raw(form_request(
            &format!("/deploys/{id}/approve"),
            Some(&browser.cookie),
            &[("csrf", &browser.csrf)],
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("hint: "), "{page}");
    api.stop().await;
}

#[tokio::test]
async fn a_session_expires_after_its_lifetime_and_sign_out_ends_it() {
    let clock = Arc::new(ManualClock::starting_at(SystemClock.now()));
    let api = Api::start_with(clock.clone(), false).await;
    let browser = sign_in(&api, &api.admin).await;
    clock.advance(Span::from_secs(11 * 60 * 60));
    let (status, _, _) = api.send_raw(get("/", Some(&browser.cookie))).await;
    assert_eq!(status, StatusCode::OK, "still signed in after 11 hours");
    clock.advance(Span::from_secs(60 * 60 + 1));
    let (status, headers, _) = api.send_raw(get("/approvals", Some(&browser.cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&headers),
        "/sign-in?next=/approvals&why=expired",
        "an expired session goes back to sign-in, and then to the page"
    );

    let browser = sign_in(&api, &api.admin).await;
    let (status, headers, _) = api
        .send_raw(form_request(
            "/sign-out",
            Some(&browser.cookie),
            &[("csrf", &browser.csrf)],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    let (status, _, _) = api.send_raw(get("/", Some(&browser.cookie))).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the session is gone server-side"
    );
    api.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_request_came_over_https() {
    let api = Api::start().await;
    let mut request = form_request("/sign-in", None, &[("token", &api.admin), ("next", "/")]);
    request
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let (status, headers, _) = api.send_raw(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
    api.stop().await;
}

#[tokio::test]
async fn a_viewer_is_offered_no_action_and_one_forged_anyway_is_refused_by_role() {
    let api = Api::with_engine().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "prod", "release": number})),
        )
        .await;
    let id = body["id"].as_i64().expect("an id");
    wait_for_deploy(&api, &api.admin, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;
    let viewer = api.user("vera", "viewer").await;
    let browser = sign_in(&api, &viewer).await;
    let (_, _, page) = api
        .send_raw(get(&format!("/deploys/{id}"), Some(&browser.cookie)))
        .await;
    assert!(!page.contains("action-approve"), "{page}");
    assert!(page.contains("needs the deployer role"), "{page}");
    let (status, _, page) = api
        .send_raw(form_request(
            &format!("/deploys/{id}/abort"),
            Some(&browser.cookie),
            &[("csrf", &browser.csrf), ("reason", "just looking")],
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("vera is a viewer"), "{page}");
    assert!(page.contains("hint: ask an admin"), "{page}");
    api.stop().await;
}

#[tokio::test]
async fn a_bad_token_is_refused_at_sign_in_with_a_hint_and_no_cookie() {
    let api = Api::start().await;
    let (status, headers, page) = api
        .send_raw(form_request(
            "/sign-in",
            None,
            &[("token", "slw_0123456789"), ("next", "/")],
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{page}");
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(
        page.contains("unknown or has been revoked") && page.contains("hint: "),
        "{page}"
    );
    // Revoking the token ends the sessions opened with it.
    let token = api.user("carol", "viewer").await;
    let browser = sign_in(&api, &token).await;
    let (_, tokens) = api
        .call(Method::GET, "/api/v1/tokens", Some(&api.admin), None)
        .await;
    let carol = tokens
        .as_array()
        .or_else(|| tokens["items"].as_array())
        .expect("a list of tokens")
        .iter()
        .find(|t| t["user"] == "carol")
        .expect("carol's token")["id"]
        .as_i64()
        .expect("an id");
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{carol}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, headers, _) = api.send_raw(get("/", Some(&browser.cookie))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).ends_with("why=revoked"));
    api.stop().await;
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_unknown_pages_are_html() {
    let api = Api::start().await;
    let (status, headers, _) = api.send_raw(get("/deploys/7?x=1", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/sign-in?next=/deploys/7%3Fx%3D1");
    // A `next` that is not a plain path of this server is not followed.
    for next in [
        "//evil.example/",
        "/x\r\nSet-Cookie: a=b",
        "https://evil.example/",
    ] {
        let (status, headers, _) = api
            .send_raw(form_request(
                "/sign-in",
                None,
                &[("token", &api.admin), ("next", next)],
            ))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&headers), "/", "{next:?}");
    }
    let (status, _, page) = api.send_raw(get("/sign-in?next=/deploys/7", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<label for=\"token\">API token</label>"),
        "{page}"
    );
    // A `next` elsewhere is not followed.
    let (_, _, page) = api
        .send_raw(get("/sign-in?next=//evil.example", None))
        .await;
    assert!(page.contains("name=\"next\" value=\"/\""), "{page}");

    let (status, _, _) = api.send_raw(get("/events?deploy=1", None)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an event stream without a session ends rather than following a redirect"
    );
    let (status, headers, page) = api.send_raw(get("/no-such-page", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{page}"
    );
    assert!(page.contains("hint: "), "{page}");
    let (status, headers, page) = api.send_raw(get("/sign-out", None)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{page}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{page}"
    );
    let (status, body) = api.call(Method::GET, "/api/v9/nothing", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["code"], "not_found",
        "the API keeps its shape"
    );
    api.stop().await;
}

#[tokio::test]
async fn config_review_shows_secrets_only_as_fingerprints_and_approves_by_form() {
    let api = Api::start_with(Arc::new(SystemClock), true).await;
    let canary = "hunter2-canary-value-5f1c";
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/config/idp/prod",
            Some(&api.admin),
            Some(json!({
                "set": {"DB_PASSWORD": {"value": canary, "secret": true}, "LOG_LEVEL": "debug"},
                "message": "first config"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let fingerprint = body["values"]["DB_PASSWORD"]["fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_owned();
    let reviewer = api.user("rita", "approver").await;
    let browser = sign_in(&api, &reviewer).await;
    for path in ["/config", "/approvals"] {
        let (status, _, page) = api.send_raw(get(path, Some(&browser.cookie))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(!page.contains(canary), "{path} shows the secret");
        assert!(page.contains("config version 1"), "{path}: {page}");
    }
    let (_, _, page) = api.send_raw(get("/config", Some(&browser.cookie))).await;
    assert!(page.contains(&fingerprint), "{page}");
    assert!(
        page.contains("LOG_LEVEL") && page.contains("debug"),
        "{page}"
    );

    let (status, headers, page) = api
        .send_raw(form_request(
            "/config/idp/prod/versions/1/approve",
            Some(&browser.cookie),
            &[("csrf", &browser.csrf)],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert_eq!(location(&headers), "/config?done=config");
    let (_, _, page) = api.send_raw(get("/config", Some(&browser.cookie))).await;
    assert!(
        page.contains("No config version waits for review"),
        "{page}"
    );
    api.stop().await;
}

#[tokio::test]
async fn the_event_stream_reports_a_change_of_the_deploy() {
    use slipway_core::deploy::DeployId;
    use slipway_store::NewEvent;

    let api = Api::start().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number})),
        )
        .await;
    let id = body["id"].as_i64().expect("an id");
    let browser = sign_in(&api, &api.admin).await;
    let open = |path: String| {
        let state = api.state.clone();
        let cookie = browser.cookie.clone();
        async move {
            let response = slipway_server::app(state)
                .oneshot(get(&path, Some(&cookie)))
                .await
                .expect("the router answers");
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/event-stream"
            );
            response.into_body()
        }
    };
    // Streams opened where their page stands stay silent while nothing changes.
    let (_, _, page) = api.send_raw(get("/", Some(&browser.cookie))).await;
    let overview = page
        .split("name=\"slipway-events\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the overview names its stream")
        .replace("&amp;", "&");
    let head = api.state.store.last_event_seq().await.expect("a head");
    let mut deploy = open(format!("/events?deploy={id}&after={head}")).await;
    let mut fingerprint = open(overview).await;
    for body in [&mut deploy, &mut fingerprint] {
        let quiet = tokio::time::timeout(Duration::from_millis(1500), body.frame()).await;
        assert!(quiet.is_err(), "nothing changed, yet it reported {quiet:?}");
    }
    // A new event of the deploy is reported, with its sequence number.
    let note = NewEvent {
        deploy: Some(DeployId(id)),
        kind: "note".to_owned(),
        payload: json!({"type": "note"}).to_string(),
    };
    api.state
        .store
        .append_events(&[note], api.state.clock.now())
        .await
        .expect("appended");
    let frame = tokio::time::timeout(Duration::from_secs(10), deploy.frame())
        .await
        .expect("an event within 10 s")
        .expect("a frame")
        .expect("no error");
    let text = String::from_utf8_lossy(frame.data_ref().expect("data")).into_owned();
    assert!(text.contains("event: changed"), "{text}");
    assert!(text.contains(&format!("data: {}", head + 1)), "{text}");
    api.stop().await;
}

#[tokio::test]
async fn open_event_streams_do_not_hold_up_a_graceful_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let api = Api::start().await;
    let browser = sign_in(&api, &api.admin).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(slipway_server::serve(listener, api.state.clone(), async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connects");
    stream
        .write_all(
            format!(
                "GET /events?since=x HTTP/1.1\r\nHost: {address}\r\nCookie: {}\r\n\r\n",
                browser.cookie
            )
            .as_bytes(),
        )
        .await
        .expect("the request is sent");
    let mut head = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("an answer within 10 s")
        .expect("readable");
    let head = String::from_utf8_lossy(&head[..read]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops within 10 s with a stream open")
        .expect("the server task ends")
        .expect("the server stops cleanly");
    api.stop().await;
}

#[tokio::test]
async fn the_audit_log_filters_by_kind_actor_service_and_environment() {
    let api = Api::start().await;
    let bob = api.user("bob", "deployer").await;
    let idp = api.release(&bob, "idp", "1.0.0").await;
    let pivcac = api.release(&api.admin, "pivcac", "1.0.0").await;
    for (token, service, number) in [(&bob, "idp", &idp), (&api.admin, "pivcac", &pivcac)] {
        let (status, body) = api
            .call(
                Method::POST,
                "/api/v1/deploys",
                Some(token),
                Some(json!({"service": service, "environment": "staging", "release": number})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let browser = sign_in(&api, &api.admin).await;
    let rows = |page: &str| page.matches("<tr><td>").count();

    let (_, _, all) = api.send_raw(get("/audit", Some(&browser.cookie))).await;
    let (status, _, created) = api
        .send_raw(get("/audit?kind=deploy_created", Some(&browser.cookie)))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(rows(&created), 2, "{created}");
    assert!(rows(&all) > rows(&created));

    let (_, _, by_bob) = api
        .send_raw(get(
            "/audit?kind=deploy_created&actor=bob",
            Some(&browser.cookie),
        ))
        .await;
    assert_eq!(rows(&by_bob), 1, "{by_bob}");
    assert!(by_bob.contains("requested_by=bob"), "{by_bob}");

    let (_, _, pivcac_only) = api
        .send_raw(get(
            "/audit?service=pivcac&environment=staging",
            Some(&browser.cookie),
        ))
        .await;
    assert!(rows(&pivcac_only) >= 1, "{pivcac_only}");
    assert!(!pivcac_only.contains("service=idp"), "{pivcac_only}");
    let (_, _, nowhere) = api
        .send_raw(get("/audit?environment=prod", Some(&browser.cookie)))
        .await;
    assert!(!nowhere.contains("deploy_created"), "{nowhere}");
    api.stop().await;
}

#[tokio::test]
async fn the_schedule_runbook_and_overview_pages_render_for_a_signed_in_viewer() {
    let api = Api::start().await;
    let viewer = api.user("vera", "viewer").await;
    let browser = sign_in(&api, &viewer).await;
    for (path, expected) in [
        ("/", "What runs where"),
        ("/schedule", "PROD for idp"),
        (
            "/schedule?service=pivcac&environment=staging",
            "STAGING for pivcac",
        ),
        ("/runbook?service=idp", "idp"),
        ("/approvals", "Nothing waits for you"),
        ("/config", "no master key"),
    ] {
        let (status, headers, page) = api.send_raw(get(path, Some(&browser.cookie))).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert!(page.contains(expected), "{path} lacks {expected:?}: {page}");
        assert_unique_ids(&page);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"),
            "{path}"
        );
    }
    let (status, _, page) = api
        .send_raw(get("/runbook?service=nope", Some(&browser.cookie)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    assert!(page.contains("hint: "), "{page}");
    api.stop().await;
}

#[tokio::test]
async fn charts_follow_the_traffic_changes_and_measurements_in_the_deploys_events() {
    use slipway_core::deploy::{DeployId, Event};
    use slipway_store::NewEvent;

    let start = slipway_core::time::Time(1_800_000_000_000);
    let clock = Arc::new(ManualClock::starting_at(start));
    let api = Api::start_with(clock.clone(), false).await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, deploy) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number})),
        )
        .await;
    let id = deploy["id"].as_i64().expect("an id");
    let step = |name: &str| {
        deploy["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} step in {deploy}"))["index"]
            .as_u64()
            .expect("an index")
    };
    // What the engine records as the deploy runs: the surge's traffic, two measurements, the
    // scale-in's traffic — each a few seconds apart.
    let measured = |value: f64, outcome: &str| Event::Measured {
        key: format!("{id}/{}/0/verify", step("surge")),
        measurement: serde_json::from_value(json!({
            "name": "error_rate", "kind": "threshold", "source": "proxy", "outcome": outcome,
            "unit": "ratio", "value": value, "limit": "<= 1.0%", "requests": 200
        }))
        .expect("a measurement"),
    };
    let traffic = |index: u64| Event::EffectSucceeded {
        key: format!("{id}/{index}/0/traffic"),
        detail: "traffic set".to_owned(),
    };
    for event in [
        traffic(step("surge")),
        measured(0.004, "pass"),
        measured(0.03, "high"),
        traffic(step("scale-in")),
    ] {
        clock.advance(Span::from_secs(10));
        let new = NewEvent {
            deploy: Some(DeployId(id)),
            kind: event.kind().to_owned(),
            payload: serde_json::to_string(&event).expect("JSON"),
        };
        api.state
            .store
            .append_events(&[new], clock.now())
            .await
            .expect("appended");
    }
    let browser = sign_in(&api, &api.admin).await;
    let (status, _, page) = api
        .send_raw(get(&format!("/deploys/{id}"), Some(&browser.cookie)))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // Without an old fleet the surge gives the new release everything.
    let traffic_table = page
        .split("<table id=\"traffic\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the traffic table");
    assert_eq!(traffic_table.matches("<td>100%</td><td>0%</td>").count(), 2);
    assert!(page.contains("0.40%") && page.contains("3.00%"), "{page}");
    assert!(page.contains("&lt;= 1.0%"), "the limit is shown");
    let svgs: Vec<&str> = page
        .split("<svg ")
        .skip(1)
        .map(|rest| rest.split("</svg>").next().expect("a closed svg"))
        .collect();
    assert_eq!(svgs.len(), 2, "a traffic chart and one check chart");
    insta::assert_snapshot!("dashboard_traffic_chart", svgs[0]);
    insta::assert_snapshot!("dashboard_check_chart", svgs[1]);
    api.stop().await;
}

#[tokio::test]
async fn the_audit_log_opens_on_its_latest_page_with_a_link_to_earlier_ones() {
    let api = Api::start().await;
    let events: Vec<slipway_store::NewEvent> = (0..620)
        .map(|n| slipway_store::NewEvent {
            deploy: None,
            kind: "note".to_owned(),
            payload: format!("{{\"type\":\"note\",\"n\":{n}}}"),
        })
        .collect();
    api.state
        .store
        .append_events(&events, SystemClock.now())
        .await
        .expect("appended");
    let last = api.state.store.last_event_seq().await.expect("the head");
    let browser = sign_in(&api, &api.admin).await;
    let (_, _, page) = api.send_raw(get("/audit", Some(&browser.cookie))).await;
    let first_row = page
        .split("<tbody><tr><td>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("a first row");
    assert_eq!(first_row, last.to_string(), "newest first");
    assert!(page.contains("Earlier events"), "{page}");
    assert!(!page.contains("Later events"), "{page}");
    let earlier = format!("/audit?after={}", last - 1000);
    let (_, _, page) = api.send_raw(get(&earlier, Some(&browser.cookie))).await;
    assert!(page.contains("Later events"), "{page}");
    api.stop().await;
}

#[tokio::test]
async fn rollback_from_the_page_of_a_deploy_that_no_longer_runs_is_refused_and_creates_nothing() {
    let api = Api::with_engine().await;
    api.release(&api.admin, "idp", "1.0.0").await;
    api.release(&api.admin, "idp", "1.1.0").await;
    let mut ids = Vec::new();
    for release in ["1", "2"] {
        let (status, body) = api
            .call(
                Method::POST,
                "/api/v1/deploys",
                Some(&api.admin),
                Some(json!({"service": "idp", "environment": "staging", "release": release})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_i64().expect("an id");
        let done = wait_for_deploy(&api, &api.admin, id, "finished", |d| {
            d["phase"]["state"] == "finished"
        })
        .await;
        assert_eq!(done["phase"]["result"], "succeeded", "{done:#}");
        ids.push(id);
    }
    let (old, current) = (ids[0], ids[1]);
    let count = || async {
        let query = slipway_store::DeployQuery {
            service: Some("idp".to_owned()),
            environment: None,
            before: None,
            limit: 100,
        };
        api.state
            .store
            .list_deploys(&query)
            .await
            .expect("deploys")
            .len()
    };
    let before = count().await;
    let browser = sign_in(&api, &api.admin).await;
    // Only the deploy whose release runs now offers to roll back.
    let (_, _, page) = api
        .send_raw(get(&format!("/deploys/{old}"), Some(&browser.cookie)))
        .await;
    assert!(!page.contains(&format!("action-rollback-{old}")), "{page}");
    let (_, _, page) = api
        .send_raw(get(&format!("/deploys/{current}"), Some(&browser.cookie)))
        .await;
    assert!(
        page.contains(&format!("action-rollback-{current}")),
        "{page}"
    );
    // A forged form on the old deploy's page is refused: it would undo RC 2, which it never ran.
    let (status, _, page) = api
        .send_raw(form_request(
            &format!("/deploys/{old}/rollback"),
            Some(&browser.cookie),
            &[("csrf", &browser.csrf), ("reason", "errors up")],
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("no longer runs"), "{page}");
    assert!(page.contains("hint: "), "{page}");
    assert_eq!(count().await, before, "no rollback deploy was created");
    api.stop().await;
}

#[tokio::test]
async fn a_multi_region_deploy_charts_each_regions_traffic_and_a_first_canary_gets_everything() {
    use slipway_core::deploy::{DeployId, Event};
    use slipway_store::NewEvent;

    const REGIONS: &str = r#"
[[service]]
name = "idp"
start = "bin/server"

[environment.staging]
target = "local"
regions = ["east", "west"]
canary = { share = "10%", instances = 1, duration = "1m" }
"#;
    let start = slipway_core::time::Time(1_800_000_000_000);
    let clock = Arc::new(ManualClock::starting_at(start));
    let api = Api::start_with_config_on(REGIONS, clock.clone()).await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (status, deploy) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deploy}");
    let id = deploy["id"].as_i64().expect("an id");
    let step = |name: &str, region: &str| {
        deploy["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["name"] == name && s["region"] == region)
            .unwrap_or_else(|| panic!("no {name} step in {region} in {deploy}"))["index"]
            .as_u64()
            .expect("an index")
    };
    let traffic = |index: u64| Event::EffectSucceeded {
        key: format!("{id}/{index}/0/traffic"),
        detail: "traffic set".to_owned(),
    };
    // East goes all the way (its canary first); west gets its surge, then the deploy unwinds there.
    for event in [
        traffic(step("canary", "east")),
        traffic(step("surge", "east")),
        traffic(step("scale-in", "east")),
        traffic(step("surge", "west")),
        Event::EffectSucceeded {
            key: format!("{id}/unwind/0/traffic-back:west"),
            detail: "traffic back".to_owned(),
        },
    ] {
        clock.advance(Span::from_secs(10));
        let new = NewEvent {
            deploy: Some(DeployId(id)),
            kind: event.kind().to_owned(),
            payload: serde_json::to_string(&event).expect("JSON"),
        };
        api.state
            .store
            .append_events(&[new], clock.now())
            .await
            .expect("appended");
    }
    let browser = sign_in(&api, &api.admin).await;
    let (status, _, page) = api
        .send_raw(get(&format!("/deploys/{id}"), Some(&browser.cookie)))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_unique_ids(&page);
    let table = |index: usize| {
        page.split(&format!("<table id=\"traffic-{index}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or_else(|| panic!("the traffic table of region {index}: {page}"))
            .to_owned()
    };
    let (east, west) = (table(0), table(1));
    assert!(
        east.contains("in east") && west.contains("in west"),
        "{east}\n{west}"
    );
    // Nothing ran before, so the canary's weight is the only one: all traffic is new.
    assert_eq!(
        east.matches("<td>100%</td><td>0%</td>").count(),
        3,
        "{east}"
    );
    assert!(!page.contains("<td>10%</td>"), "{page}");
    assert_eq!(
        west.matches("<td>100%</td><td>0%</td>").count(),
        1,
        "{west}"
    );
    assert!(
        west.contains("<td>rollback</td><td>0%</td><td>100%</td>"),
        "{west}"
    );
    let svgs: Vec<&str> = page
        .split("<svg ")
        .skip(1)
        .map(|rest| rest.split("</svg>").next().expect("a closed svg"))
        .collect();
    assert_eq!(svgs.len(), 2, "one traffic chart per region: {page}");
    insta::assert_snapshot!("dashboard_traffic_chart_east", svgs[0]);
    insta::assert_snapshot!("dashboard_traffic_chart_west", svgs[1]);
    api.stop().await;
}

#[tokio::test]
async fn the_deploy_page_shows_the_newest_events_of_a_long_deploy_and_streams_after_them() {
    use slipway_core::deploy::DeployId;
    use slipway_store::NewEvent;

    let api = Api::start().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, deploy) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number})),
        )
        .await;
    let id = deploy["id"].as_i64().expect("an id");
    let events: Vec<NewEvent> = (0..5100)
        .map(|n| NewEvent {
            deploy: Some(DeployId(id)),
            kind: "note".to_owned(),
            payload: json!({"type": "note", "n": format!("mark-{n}")}).to_string(),
        })
        .collect();
    api.state
        .store
        .append_events(&events, api.state.clock.now())
        .await
        .expect("appended");
    let last = api.state.store.last_event_seq().await.expect("a head");
    let browser = sign_in(&api, &api.admin).await;
    let (status, _, page) = api
        .send_raw(get(&format!("/deploys/{id}"), Some(&browser.cookie)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("n=mark-5099"),
        "the newest event is on the page"
    );
    assert!(
        page.contains(&format!("/events?deploy={id}&amp;after={last}")),
        "the live stream starts after the newest event, {last}"
    );
    api.stop().await;
}

#[tokio::test]
async fn an_event_stream_ends_after_sign_out_and_a_session_holds_at_most_eight() {
    use slipway_core::deploy::DeployId;
    use slipway_store::NewEvent;

    let api = Api::start().await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (_, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&api.admin),
            Some(json!({"service": "idp", "environment": "staging", "release": number})),
        )
        .await;
    let id = body["id"].as_i64().expect("an id");
    let browser = sign_in(&api, &api.admin).await;
    let open = || async {
        slipway_server::app(api.state.clone())
            .oneshot(get(
                &format!("/events?deploy={id}&after=0"),
                Some(&browser.cookie),
            ))
            .await
            .expect("the router answers")
    };
    let mut streams = Vec::new();
    for _ in 0..8 {
        let response = open().await;
        assert_eq!(response.status(), StatusCode::OK);
        streams.push(response.into_body());
    }
    let ninth = open().await;
    assert_eq!(ninth.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(ninth);
    // Closing one frees its place.
    drop(streams.pop());
    let response = open().await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("an event within 10 s")
        .expect("a frame")
        .expect("no error");
    assert!(String::from_utf8_lossy(frame.data_ref().expect("data")).contains("event: changed"));

    let (status, _, _) = api
        .send_raw(form_request(
            "/sign-out",
            Some(&browser.cookie),
            &[("csrf", &browser.csrf)],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // The next change wakes the stream, which finds its session gone and ends.
    let note = NewEvent {
        deploy: Some(DeployId(id)),
        kind: "note".to_owned(),
        payload: json!({"type": "note"}).to_string(),
    };
    api.state
        .store
        .append_events(&[note], api.state.clock.now())
        .await
        .expect("appended");
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match body.frame().await {
                None => return,
                Some(Ok(frame)) if frame.is_data() => {
                    let text =
                        String::from_utf8_lossy(frame.data_ref().expect("data")).into_owned();
                    assert!(
                        !text.contains("event: changed"),
                        "reported after sign-out: {text}"
                    );
                }
                Some(_) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ends within 10 s of the sign-out");
    drop(streams);
    api.stop().await;
}

#[tokio::test]
async fn signing_in_again_ends_the_cookies_session_and_a_token_holds_at_most_twenty() {
    let api = Api::start().await;
    let first = sign_in(&api, &api.admin).await;
    // Signing in from a browser that has a session replaces it.
    let (status, headers, body) = api
        .send_raw(form_request(
            "/sign-in",
            Some(&first.cookie),
            &[("token", &api.admin), ("next", "/")],
        ))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let second = headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a new session cookie")
        .to_owned();
    assert_ne!(second, first.cookie);
    let (status, headers, _) = api.send_raw(get("/", Some(&first.cookie))).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the replaced session is over"
    );
    assert!(location(&headers).starts_with("/sign-in"));
    let (status, _, _) = api.send_raw(get("/", Some(&second))).await;
    assert_eq!(status, StatusCode::OK);
    // Twenty more sign-ins with the same token end the oldest, `second`.
    let mut newest = Vec::new();
    for _ in 0..20 {
        newest.push(sign_in(&api, &api.admin).await.cookie);
    }
    let (status, _, _) = api.send_raw(get("/", Some(&second))).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the oldest session made room"
    );
    for cookie in &newest {
        let (status, _, _) = api.send_raw(get("/", Some(cookie))).await;
        assert_eq!(status, StatusCode::OK, "the newest twenty stay");
    }
    api.stop().await;
}

#[tokio::test]
async fn without_a_host_header_the_origin_is_checked_against_the_requests_authority() {
    let api = Api::start().await;
    // HTTP/2 carries the host in the URI's authority, not in a Host header.
    let request = |origin: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("http://dashboard.test/sign-in")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={}&next=%2F", encode(&api.admin))))
            .expect("a valid request")
    };
    let (status, headers, page) = api.send_raw(request("http://dashboard.test")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    assert!(headers.contains_key(header::SET_COOKIE));
    let (status, headers, page) = api.send_raw(request("http://elsewhere.test")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(!headers.contains_key(header::SET_COOKIE));
    api.stop().await;
}

#[tokio::test]
async fn config_review_offers_approve_only_to_an_approver_who_did_not_write_the_version() {
    let api = Api::start_with(Arc::new(SystemClock), true).await;
    // A version written by the admin: the admin may not approve it, rita may.
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/config/idp/prod",
            Some(&api.admin),
            Some(json!({"set": {"LOG_LEVEL": "debug"}, "message": "first config"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let author = sign_in(&api, &api.admin).await;
    let (_, _, page) = api.send_raw(get("/config", Some(&author.cookie))).await;
    assert!(page.contains("config version 1"), "{page}");
    assert!(!page.contains("Approve version 1"), "{page}");
    assert!(page.contains("you wrote this config version"), "{page}");
    let rita = api.user("rita", "approver").await;
    let reviewer = sign_in(&api, &rita).await;
    let (_, _, page) = api.send_raw(get("/config", Some(&reviewer.cookie))).await;
    assert!(page.contains("Approve version 1"), "{page}");
    api.stop().await;
}

#[tokio::test]
async fn waiting_for_me_lists_an_approval_only_for_those_who_may_give_it() {
    let api = Api::with_engine().await;
    let dave = api.user("dave", "deployer").await;
    let erin = api.user("erin", "deployer").await;
    let rita = api.user("rita", "approver").await;
    let number = api.release(&api.admin, "idp", "1.0.0").await;
    let (status, body) = api
        .call(
            Method::POST,
            "/api/v1/deploys",
            Some(&dave),
            Some(json!({"service": "idp", "environment": "prod", "release": number})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("an id");
    wait_for_deploy(&api, &api.admin, id, "waiting for approval", |d| {
        d["phase"]["waiting_for"] == "approval"
    })
    .await;
    // Dave requested it and erin is a deployer: neither may approve, so neither is asked.
    for token in [&dave, &erin] {
        let browser = sign_in(&api, token).await;
        let (_, _, page) = api.send_raw(get("/approvals", Some(&browser.cookie))).await;
        assert!(page.contains("Nothing waits for you"), "{page}");
        assert!(!page.contains(&format!("action-approve-{id}")), "{page}");
    }
    let browser = sign_in(&api, &rita).await;
    let (_, _, page) = api.send_raw(get("/approvals", Some(&browser.cookie))).await;
    assert!(page.contains(&format!("action-approve-{id}")), "{page}");
    api.stop().await;
}
