-- The foundation schema: deploys, the hash-chained event log, the outbox, operator intents, leases.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('deploy', 0);

CREATE TABLE deploys (
    id BIGINT PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    -- Idempotency key of the effect that created the deploy (rollback deploys); NULL otherwise.
    origin TEXT UNIQUE,
    state TEXT NOT NULL,
    revision BIGINT NOT NULL,
    finished_at BIGINT,
    wake_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX deploys_by_service ON deploys (service, environment, id);
CREATE INDEX deploys_unfinished ON deploys (id) WHERE finished_at IS NULL;

CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    deploy_id BIGINT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX events_by_deploy ON events (deploy_id, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE chain_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE outbox (
    -- Effects run in the order they were stored.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    deploy_id BIGINT NOT NULL,
    effect TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    done_at BIGINT,
    outcome TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;

CREATE TABLE intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deploy_id BIGINT NOT NULL,
    input TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT,
    rejection TEXT
);
CREATE INDEX intents_pending ON intents (id) WHERE consumed_at IS NULL;

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
