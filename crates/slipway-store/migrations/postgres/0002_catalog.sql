-- The catalog: users, API tokens, pushed artifacts and numbered releases; and the result of each
-- finished deploy, so the release running in an environment is one indexed lookup.
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    -- `Role` in snake case: viewer, deployer, approver, admin.
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id BIGSERIAL PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users (name),
    -- SHA-256 of the token: the token itself is never stored. Unique, so lookups are indexed.
    hash BYTEA NOT NULL UNIQUE,
    label TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX tokens_by_user ON tokens (user_name, id);

CREATE TABLE artifacts (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    -- `sha256:<64 hex>`; one file may serve several versions.
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    source_commit TEXT,
    pushed_by TEXT NOT NULL,
    pushed_at BIGINT NOT NULL,
    -- A version is immutable: pushed once, with one digest.
    UNIQUE (service, version)
);
CREATE INDEX artifacts_by_service ON artifacts (service, id);

CREATE TABLE releases (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    -- RC major.minor: full, off-cycle and config releases take the next major, patches the next
    -- minor of the latest major. Numbered under the `release:SERVICE` counter's row lock.
    major BIGINT NOT NULL,
    minor BIGINT NOT NULL,
    label TEXT NOT NULL,
    -- `ReleaseKind` in kebab case: full, patch, off-cycle, config.
    kind TEXT NOT NULL,
    version TEXT NOT NULL,
    artifact TEXT NOT NULL,
    source_commit TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reason TEXT,
    UNIQUE (service, major, minor),
    UNIQUE (service, label),
    FOREIGN KEY (service, version) REFERENCES artifacts (service, version)
);
CREATE INDEX releases_by_service ON releases (service, id);

-- `DeployResult` of a finished deploy (succeeded, failed, rolled_back, aborted); NULL until then.
ALTER TABLE deploys ADD COLUMN result TEXT;
UPDATE deploys SET result = state::jsonb -> 'progress' -> 'ending' ->> 'result'
WHERE finished_at IS NOT NULL;
CREATE INDEX deploys_by_result ON deploys (service, environment, result, id);
