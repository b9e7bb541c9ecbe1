//! The dashboard's page frame, its error page and small pieces of markup shared by pages.
//! maud escapes every value put into markup; only the charts' own numbers and fixed strings are
//! written as SVG.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use slipway_core::time::Time;

use super::session::Viewer;
use crate::error::ApiError;

/// The pages of the navigation, by path and name.
const NAVIGATION: [(&str, &str); 7] = [
    ("/", "What runs where"),
    ("/approvals", "Waiting for me"),
    ("/config", "Config to review"),
    ("/schedule", "Schedule"),
    ("/audit", "Audit log"),
    ("/runbook", "Runbook"),
    ("/api/openapi.json", "API"),
];

/// A whole page: navigation, who is signed in, the title as its heading and `body`. `live` is
/// the event stream that refreshes its `#live` section.
pub(crate) fn page(
    title: &str,
    viewer: Option<&Viewer>,
    live: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · slipway" }
                link rel="stylesheet" href="/assets/dashboard.css";
                @if let Some(live) = live {
                    meta name="slipway-events" content=(live);
                    script src="/assets/live.js" defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    @if viewer.is_some() {
                        nav aria-label="Dashboard" {
                            ul {
                                @for (path, name) in NAVIGATION {
                                    li { a href=(path) { (name) } }
                                }
                            }
                        }
                    } @else {
                        strong { "slipway" }
                    }
                    @if let Some(viewer) = viewer {
                        form method="post" action="/sign-out" {
                            span { "Signed in as " strong #me { (viewer.name()) } " (" (viewer.caller.user.role.name()) ")" }
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A rendered page as the answer, with headers that keep it private and its scripts our own.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, axum::response::Html(markup.into_string())).into_response();
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An error as a box on a page: what went wrong and the hint.
pub(crate) fn error_box(error: &ApiError) -> Markup {
    html! {
        div.error role="alert" {
            p { strong { "✗ " (error.message) } }
            @if let Some(hint) = &error.hint { p { "hint: " (hint) } }
        }
    }
}

/// An error answered as a page, with the API error's status, message and hint.
pub(crate) struct PageError(pub(crate) ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(error)
    }
}

impl From<slipway_store::StoreError> for PageError {
    fn from(error: slipway_store::StoreError) -> Self {
        PageError(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status;
        let title = status.canonical_reason().unwrap_or("Error");
        respond(
            status,
            page(
                title,
                None,
                None,
                html! {
                    (error_box(&self.0))
                    p { a href="/" { "Back to the overview" } }
                },
            ),
        )
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

/// A point in time for people: UTC, to the second.
pub(crate) fn when(time: Time) -> String {
    time.to_timestamp()
        .strftime("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A state in words with a symbol, so it reads without colour: `✓ succeeded`, `◔ waiting`.
pub(crate) fn state_word(state: &str) -> Markup {
    let symbol = match state {
        "succeeded" | "pass" | "done" | "applied" | "open" => "✓",
        "failed" | "fail" | "closed" => "✗",
        "aborted" => "■",
        "rolled_back" | "rolling_back" => "↶",
        "waiting" | "pending" => "◔",
        "running" | "current" => "▶",
        "inconclusive" => "?",
        _ => "•",
    };
    html! { span class={ "state state-" (state) } { (symbol) " " (state.replace('_', " ")) } }
}
