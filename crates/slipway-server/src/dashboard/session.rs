//! Sign-in with an API token into a cookie session, sign-out, expiry and CSRF protection.
//!
//! A session id is 256 random bits, sent only as an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` when the request came over https). The server keeps sessions in memory, keyed by
//! the SHA-256 of the id, never the id itself: each holds the hash of the token it was opened
//! with (so revoking the token ends the session at its next request), its CSRF token and when
//! it expires. A restart signs everyone out; several servers behind one address need sticky
//! routing for the dashboard (the API's bearer tokens need nothing).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use slipway_core::time::{Span, Time};
use tokio::sync::{Semaphore, watch};

use super::render::{PageError, page, respond};
use crate::AppState;
use crate::auth::{Caller, random_hex, token_hash};
use crate::error::ApiError;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "slipway_session";

/// How many event streams may be open at once; more are refused with 503 and the page still
/// works on reload.
const MAX_STREAMS: usize = 256;

/// How many sessions one API token may hold; signing in once more ends the oldest.
const SESSIONS_PER_TOKEN: usize = 20;

/// The dashboard's own state beside the API's: sessions, and what ends its event streams.
pub(crate) struct Dashboard {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Set to `true` when the server shuts down: open event streams end so the graceful
    /// shutdown is not held up by them.
    pub(crate) closing: watch::Sender<bool>,
    pub(crate) streams: std::sync::Arc<Semaphore>,
    /// The newest event's sequence number, published by the one task that polls the store
    /// while any stream is open (see `live.rs`).
    pub(crate) head: watch::Sender<i64>,
    /// Whether that task runs.
    pub(crate) polling: Mutex<bool>,
    /// Open streams per session (by the hash of the session id).
    pub(crate) streams_of: Mutex<HashMap<[u8; 32], usize>>,
    /// How many sessions were opened: each session's place in that order.
    opened: std::sync::atomic::AtomicU64,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            sessions: Mutex::new(HashMap::new()),
            closing: watch::Sender::new(false),
            streams: std::sync::Arc::new(Semaphore::new(MAX_STREAMS)),
            head: watch::Sender::new(0),
            polling: Mutex::new(false),
            streams_of: Mutex::new(HashMap::new()),
            opened: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

#[derive(Clone)]
struct Session {
    /// SHA-256 of the API token the session was opened with.
    token: [u8; 32],
    csrf: String,
    expires_at: Time,
    /// Its place in the order sessions were opened.
    serial: u64,
}

impl Dashboard {
    /// Ends every event stream (the server is shutting down).
    pub(crate) fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Opens a session for `token`, ending `replacing` (the session of the cookie the sign-in
    /// came with) and the oldest of the token's sessions beyond [`SESSIONS_PER_TOKEN`].
    fn open(
        &self,
        token: [u8; 32],
        replacing: Option<&str>,
        now: Time,
        lifetime: Duration,
    ) -> (String, Session) {
        let id = random_hex(32);
        let session = Session {
            token,
            csrf: random_hex(32),
            expires_at: now.after(Span::from_duration(lifetime)),
            serial: self
                .opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // Expired sessions go when a new one opens, so the map stays bounded by live ones.
        sessions.retain(|_, s| s.expires_at > now);
        if let Some(old) = replacing {
            sessions.remove(&token_hash(old));
        }
        let mut same_token: Vec<([u8; 32], u64)> = sessions
            .iter()
            .filter(|(_, s)| s.token == token)
            .map(|(key, s)| (*key, s.serial))
            .collect();
        if same_token.len() >= SESSIONS_PER_TOKEN {
            same_token.sort_by_key(|(_, serial)| *serial);
            let surplus = same_token.len() + 1 - SESSIONS_PER_TOKEN;
            for (key, _) in same_token.into_iter().take(surplus) {
                sessions.remove(&key);
            }
        }
        sessions.insert(token_hash(&id), session.clone());
        (id, session)
    }

    fn find(&self, id: &str, now: Time) -> Option<Session> {
        self.find_by_key(token_hash(id), now)
    }

    /// The session whose id hashes to `key`, if it has not ended or expired.
    fn find_by_key(&self, key: [u8; 32], now: Time) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        // Expired sessions go here too, so a server nobody signs in to anew sheds them.
        sessions.retain(|_, s| s.expires_at > now);
        sessions.get(&key).cloned()
    }

    fn end(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&token_hash(id));
    }
}

/// The session id in the request's cookies.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A signed-in person looking at the dashboard.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    pub(crate) caller: Caller,
    /// The session's CSRF token, put in every form.
    pub(crate) csrf: String,
    /// The hash of the session id (what the server keys the session by).
    pub(crate) session: [u8; 32],
    /// The host the request was sent to (see [`request_authority`]).
    pub(crate) authority: Option<String>,
}

impl Viewer {
    pub(crate) fn name(&self) -> &str {
        &self.caller.user.name
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Some(id) = session_id(&parts.headers) else {
            return Err(to_sign_in(&next, None));
        };
        let Some(session) = state.dashboard.find(&id, state.clock.now()) else {
            return Err(to_sign_in(&next, Some("expired")));
        };
        match state.store.token_user(&session.token).await {
            Ok(Some((user, _))) => Ok(Viewer {
                caller: Caller { user },
                csrf: session.csrf,
                session: token_hash(&id),
                authority: request_authority(&parts.headers, &parts.uri),
            }),
            Ok(None) => {
                state.dashboard.end(&id);
                Err(to_sign_in(&next, Some("revoked")))
            }
            Err(error) => Err(PageError(ApiError::from(error)).into_response()),
        }
    }
}

/// Whether the session keyed `key` is still open, unexpired, and its token still valid.
pub(crate) async fn session_alive(state: &AppState, key: [u8; 32]) -> bool {
    let Some(session) = state.dashboard.find_by_key(key, state.clock.now()) else {
        return false;
    };
    matches!(state.store.token_user(&session.token).await, Ok(Some(_)))
}

/// A redirect to the sign-in page that comes back to `next`.
fn to_sign_in(next: &str, why: Option<&str>) -> Response {
    let mut location = format!("/sign-in?next={}", percent_encode(next));
    if let Some(why) = why {
        location.push_str("&why=");
        location.push_str(why);
    }
    Redirect::to(&location).into_response()
}

/// Percent-encodes everything but unreserved characters and `/`.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where to go after signing in: only a path on this server, and only one that is a valid
/// `Location` as it is (visible ASCII).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && next.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            next
        }
        _ => "/",
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SignInQuery {
    next: Option<String>,
    why: Option<String>,
}

pub(crate) async fn sign_in_page(
    axum::extract::Query(query): axum::extract::Query<SignInQuery>,
) -> Response {
    let notice = match query.why.as_deref() {
        Some("expired") => Some("Your session has expired or ended; sign in again."),
        Some("revoked") => Some("The token of your session was revoked; sign in with another."),
        Some("signed-out") => Some("You are signed out."),
        _ => None,
    };
    respond(
        StatusCode::OK,
        sign_in_form(safe_next(query.next.as_deref()), notice, None),
    )
}

fn sign_in_form(next: &str, notice: Option<&str>, error: Option<&ApiError>) -> maud::Markup {
    page(
        "Sign in",
        None,
        None,
        html! {
            @if let Some(notice) = notice { p.flash role="status" { (notice) } }
            @if let Some(error) = error { (super::render::error_box(error)) }
            form method="post" action="/sign-in" {
                input type="hidden" name="next" value=(next);
                p {
                    label for="token" { "API token" }
                    br;
                    input #token type="password" name="token" autocomplete="off" required size="70";
                }
                p.muted { "A token from " code { "slipway token create" } ". The server keeps a session for it; sign out when you are done." }
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// The host a request was sent to: its `Host` header, or over HTTP/2 (which has none) the
/// authority of its URI.
pub(crate) fn request_authority(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
}

/// Whether the request comes from a page of this server: an `Origin` header, when a browser
/// sent one, must name `authority`, the host the request was sent to. (Browsers send it with
/// every form POST.)
pub(crate) fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    match (origin_host, authority) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "this form was sent from another site",
        )
        .with_hint("open the dashboard at its own address and submit the form from there")),
    }
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        let error = ApiError::bad_request("invalid_form", "the sign-in form could not be read")
            .with_hint("sign in from the form at /sign-in");
        return respond(
            StatusCode::BAD_REQUEST,
            sign_in_form("/", None, Some(&error)),
        );
    };
    let next = safe_next(form.next.as_deref()).to_owned();
    if let Err(error) = same_origin(&headers, request_authority(&headers, &uri).as_deref()) {
        return respond(error.status, sign_in_form(&next, None, Some(&error)));
    }
    let token = form.token.trim();
    let user = if token.is_empty() {
        Ok(None)
    } else {
        state.store.token_user(&token_hash(token)).await
    };
    let user = match user {
        Ok(user) => user,
        Err(error) => return PageError(ApiError::from(error)).into_response(),
    };
    if user.is_none() {
        let error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the token is unknown or has been revoked",
        )
        .with_hint("paste a token from `slipway token create` (an admin can create one for you)");
        return respond(
            StatusCode::UNAUTHORIZED,
            sign_in_form(&next, None, Some(&error)),
        );
    }
    let lifetime = state.settings.session_lifetime;
    let (id, _) = state.dashboard.open(
        token_hash(token),
        session_id(&headers).as_deref(),
        state.clock.now(),
        lifetime,
    );
    let secure = if over_https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        lifetime.as_secs()
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Whether the request reached us over https (directly or through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Checks a form POST of a signed-in person: sent from this site, carrying the session's CSRF
/// token.
pub(crate) fn check_form(
    viewer: &Viewer,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(), ApiError> {
    same_origin(headers, viewer.authority.as_deref())?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if constant_time_eq(sent.as_bytes(), viewer.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "this form carries no valid CSRF token, so it was not acted on",
        )
        .with_hint("reload the page and submit the form again"))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    if let Err(error) = check_form(&viewer, &headers, &form) {
        return PageError(error).into_response();
    }
    if let Some(id) = session_id(&headers) {
        state.dashboard.end(&id);
    }
    let mut response = Redirect::to("/sign-in?why=signed-out").into_response();
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
