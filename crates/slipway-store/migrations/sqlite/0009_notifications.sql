-- Notifications: one row per notice and destination, written by the notifier when the engine
-- runs a Notify effect and sent by the deliverer in the background. Unique on (effect_key,
-- destination), so a retried effect enqueues nothing new: one message per state change. The
-- payload is rendered once, when enqueued, and holds no secret (webhook signatures are computed
-- at each attempt and never stored).
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deploy_id BIGINT NOT NULL,
    -- The Notify effect's idempotency key, `deploy/step/attempt/op`.
    effect_key TEXT NOT NULL,
    -- The [[notify]] destination's name.
    destination TEXT NOT NULL,
    -- `slack` or `webhook`.
    kind TEXT NOT NULL,
    -- The notice: `started`, `go_no_go`, `finished`…
    notice TEXT NOT NULL,
    -- The JSON body POSTed to the destination.
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- `pending` (to send at next_attempt_at), `delivered` or `failed` (attempts exhausted or
    -- refused for good).
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- When a pending delivery is due; while an attempt is in flight, when its claim lapses.
    next_attempt_at BIGINT,
    delivered_at BIGINT,
    UNIQUE (effect_key, destination)
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_by_deploy ON notifications (deploy_id, id);

-- Every attempt to deliver a notification, with what the receiver answered.
CREATE TABLE notification_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id INTEGER NOT NULL REFERENCES notifications (id),
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    -- The receiver's HTTP status, when it answered.
    http_status BIGINT,
    -- `delivered`, `retry` or `failed`.
    outcome TEXT NOT NULL,
    -- Why it failed, fit for people (never a URL's path or a secret).
    error TEXT,
    UNIQUE (notification_id, attempt)
);
