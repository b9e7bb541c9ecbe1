//! Server-sent events that tell a page its data changed: `changed` events, after which the page
//! fetches itself again and swaps its `#live` section.
//!
//! `/events?deploy=ID&after=SEQ` reads the deploy's event log from the sequence number the page
//! was rendered at; `/events?since=FINGERPRINT` reads the newest deploys and their revisions.
//! One shared task polls the newest event's sequence number every half second while any stream
//! is open and publishes it on a watch channel; a stream queries the store only when that moves.
//! Each stream re-checks its session whenever it wakes (and every few seconds), so it ends after
//! sign-out, expiry or the token's revocation; it lives at most `STREAM_LIFETIME` (the browser
//! reconnects), counts against a bound of open streams overall and per session, and ends when
//! the server shuts down so the graceful shutdown is not held up.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use slipway_core::deploy::DeployId;

use super::pages::deploys_fingerprint;
use super::session::{Dashboard, Viewer, session_alive};
use crate::AppState;

/// How often the shared task looks at the newest event.
const POLL: Duration = Duration::from_millis(500);
/// How often a stream re-checks its session (and a fingerprint stream the deploys) when
/// nothing else wakes it.
const SESSION_CHECK: Duration = Duration::from_secs(5);
/// How many streams one session may hold open (a few tabs); more are refused with 429.
const STREAMS_PER_SESSION: usize = 8;
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
    head: tokio::sync::watch::Receiver<i64>,
    ends_at: tokio::time::Instant,
    session: [u8; 32],
    /// Whether the first look at the store is still to come.
    first: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _slot: SessionSlot,
}

/// One of a session's open streams; dropping it frees the place.
struct SessionSlot {
    dashboard: Arc<Dashboard>,
    session: [u8; 32],
}

impl SessionSlot {
    fn take(dashboard: &Arc<Dashboard>, session: [u8; 32]) -> Option<SessionSlot> {
        let mut open = dashboard
            .streams_of
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let count = open.entry(session).or_insert(0);
        if *count >= STREAMS_PER_SESSION {
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            dashboard: Arc::clone(dashboard),
            session,
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self
            .dashboard
            .streams_of
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.session);
            }
        }
    }
}

/// A receiver of the newest event's sequence number, starting the task that publishes it if
/// it is not running. The task ends when the last receiver is gone or the server shuts down.
fn watch_head(state: &AppState) -> tokio::sync::watch::Receiver<i64> {
    let dashboard = Arc::clone(&state.dashboard);
    let mut polling = dashboard.polling.lock().unwrap_or_else(|e| e.into_inner());
    // Subscribed under the lock, so the task cannot see no receiver and stop in between.
    let receiver = dashboard.head.subscribe();
    if !*polling {
        *polling = true;
        let store = state.store.clone();
        let dashboard = Arc::clone(&dashboard);
        tokio::spawn(async move {
            let mut closing = dashboard.closing.subscribe();
            loop {
                if let Ok(seq) = store.last_event_seq().await {
                    dashboard.head.send_if_modified(|head| {
                        let moved = *head != seq;
                        *head = seq;
                        moved
                    });
                }
                tokio::select! {
                    _ = closing.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                let mut polling = dashboard.polling.lock().unwrap_or_else(|e| e.into_inner());
                if *dashboard.closing.borrow() || dashboard.head.receiver_count() == 0 {
                    *polling = false;
                    return;
                }
            }
        });
    }
    receiver
}

pub(crate) async fn events(
    State(state): State<AppState>,
    viewer: Result<Viewer, Response>,
    Query(watch): Query<Watch>,
) -> Response {
    let Ok(viewer) = viewer else {
        // Not a redirect to sign-in: `EventSource` would follow it and retry forever, while a
        // 401 ends it. The page itself sends the person to sign in at its next load.
        return (
            StatusCode::UNAUTHORIZED,
            "sign in again: the session has ended",
        )
            .into_response();
    };
    let Some(slot) = SessionSlot::take(&state.dashboard, viewer.session) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many live pages are open in this session; close some tabs or reload to see changes",
        )
            .into_response();
    };
    let Ok(permit) = state.dashboard.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages are open; reload the page to see changes",
        )
            .into_response();
    };
    let cursor = Cursor {
        closing: state.dashboard.closing.subscribe(),
        head: watch_head(&state),
        state,
        watch,
        ends_at: tokio::time::Instant::now() + STREAM_LIFETIME,
        session: viewer.session,
        first: true,
        _permit: permit,
        _slot: slot,
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
            // The first look compares with what the page was rendered from; later ones wait
            // for the log to move.
            let moved = if std::mem::take(&mut cursor.first) {
                true
            } else {
                tokio::select! {
                    _ = cursor.closing.changed() => return None,
                    _ = tokio::time::sleep_until(cursor.ends_at) => return None,
                    changed = cursor.head.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                        true
                    }
                    // A deploy's revision can move without an event: the overview's
                    // fingerprint is looked at on this slower beat too.
                    _ = tokio::time::sleep(SESSION_CHECK) => cursor.watch.deploy.is_none(),
                }
            };
            if !session_alive(&cursor.state, cursor.session).await {
                return None;
            }
            if moved && let Some(event) = poll(&mut cursor).await {
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
