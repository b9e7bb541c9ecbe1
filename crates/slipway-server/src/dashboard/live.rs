//! Server-sent events that tell a page its data changed: `changed` events, after which the page
//! fetches itself again and swaps its `#live` section.
//!
//! `/events?deploy=ID&after=SEQ` polls the deploy's event log from the sequence number the page
//! was rendered at; `/events?since=FINGERPRINT` polls the newest deploys and their revisions.
//! Each stream polls the store every half second, lives at most `STREAM_LIFETIME` (the browser
//! reconnects), counts against a bound of open streams, and ends when the server shuts down so
//! the graceful shutdown is not held up.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use slipway_core::deploy::DeployId;

use super::pages::deploys_fingerprint;
use super::session::Viewer;
use crate::AppState;

/// How often a stream looks at the store.
const POLL: Duration = Duration::from_millis(500);
/// How long one stream stays open; the browser's `EventSource` then reconnects.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Watch {
    deploy: Option<i64>,
    after: Option<i64>,
    since: Option<String>,
}

/// Where a stream is: what it has seen and when it ends.
struct Cursor {
    state: AppState,
    watch: Watch,
    closing: tokio::sync::watch::Receiver<bool>,
    ends_at: tokio::time::Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

pub(crate) async fn events(
    State(state): State<AppState>,
    viewer: Result<Viewer, Response>,
    Query(watch): Query<Watch>,
) -> Response {
    if viewer.is_err() {
        // Not a redirect to sign-in: `EventSource` would follow it and retry forever, while a
        // 401 ends it. The page itself sends the person to sign in at its next load.
        return (
            StatusCode::UNAUTHORIZED,
            "sign in again: the session has ended",
        )
            .into_response();
    }
    let Ok(permit) = state.dashboard.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages are open; reload the page to see changes",
        )
            .into_response();
    };
    let cursor = Cursor {
        closing: state.dashboard.closing.subscribe(),
        state,
        watch,
        ends_at: tokio::time::Instant::now() + STREAM_LIFETIME,
        _permit: permit,
    };
    Sse::new(changes(cursor))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn changes(cursor: Cursor) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(cursor, |mut cursor| async move {
        loop {
            if *cursor.closing.borrow() {
                return None;
            }
            tokio::select! {
                _ = cursor.closing.changed() => return None,
                _ = tokio::time::sleep_until(cursor.ends_at) => return None,
                _ = tokio::time::sleep(POLL) => {}
            }
            if let Some(event) = poll(&mut cursor).await {
                return Some((Ok(event), cursor));
            }
        }
    })
}

/// One look at the store: an event when something changed since the last.
async fn poll(cursor: &mut Cursor) -> Option<Event> {
    let state = &cursor.state;
    match cursor.watch.deploy {
        Some(id) => {
            let after = cursor.watch.after.unwrap_or(0);
            let events = state
                .store
                .events(Some(DeployId(id)), after, 100)
                .await
                .ok()?;
            let last = events.last()?.seq;
            cursor.watch.after = Some(last);
            Some(Event::default().event("changed").data(last.to_string()))
        }
        None => {
            let now = deploys_fingerprint(state).await.ok()?;
            if cursor.watch.since.as_deref() == Some(now.as_str()) {
                return None;
            }
            cursor.watch.since = Some(now.clone());
            Some(Event::default().event("changed").data(now))
        }
    }
}
