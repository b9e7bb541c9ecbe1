-- Config versions: the sealed settings and secrets of a service in an environment, numbered
-- 1, 2, … per service and environment under the `config:SERVICE:ENV` counter's row lock. The
-- values are encrypted with a data key of the version's own (nonce, ciphertext), that key wrapped
-- by a master key (key_id, wrapped_key). A version is immutable: only its key wrapping changes
-- (master key rotation) and its approval is recorded once. Triggers refuse anything else.
CREATE TABLE config_versions (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    number BIGINT NOT NULL CHECK (number > 0),
    -- Id of the master key that wrapped the data key, and the wrapped data key.
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    -- `sha256:<64 hex>` of the ciphertext: what a release pins; rotation keeps it.
    digest TEXT NOT NULL,
    -- Names of the keys that differ from the previous version, a JSON array (never values).
    changed_keys TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    message TEXT,
    -- Who approved it and when (its author at creation for an unprotected environment).
    approved_by TEXT,
    approved_at BIGINT,
    PRIMARY KEY (service, environment, number)
);
CREATE TRIGGER config_versions_no_update BEFORE UPDATE ON config_versions
WHEN NEW.service IS NOT OLD.service OR NEW.environment IS NOT OLD.environment
    OR NEW.number IS NOT OLD.number OR NEW.nonce IS NOT OLD.nonce
    OR NEW.ciphertext IS NOT OLD.ciphertext OR NEW.digest IS NOT OLD.digest
    OR NEW.changed_keys IS NOT OLD.changed_keys OR NEW.created_by IS NOT OLD.created_by
    OR NEW.created_at IS NOT OLD.created_at OR NEW.message IS NOT OLD.message
BEGIN SELECT RAISE(ABORT, 'config versions are immutable: only their key wrapping and approval change'); END;
CREATE TRIGGER config_versions_approved_once BEFORE UPDATE ON config_versions
WHEN OLD.approved_by IS NOT NULL
    AND (NEW.approved_by IS NOT OLD.approved_by OR NEW.approved_at IS NOT OLD.approved_at)
BEGIN SELECT RAISE(ABORT, 'config versions are immutable: an approval is recorded once'); END;
CREATE TRIGGER config_versions_no_delete BEFORE DELETE ON config_versions
BEGIN SELECT RAISE(ABORT, 'config versions are immutable: they are never deleted'); END;

-- Keys slipway keeps sealed under the master key (the fingerprint key): written once, re-wrapped
-- on rotation, never changed otherwise, so fingerprints stay the same.
CREATE TABLE secret_keys (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
CREATE TRIGGER secret_keys_no_update BEFORE UPDATE ON secret_keys
WHEN NEW.name IS NOT OLD.name OR NEW.nonce IS NOT OLD.nonce
    OR NEW.ciphertext IS NOT OLD.ciphertext
BEGIN SELECT RAISE(ABORT, 'secret keys are immutable: only their key wrapping changes'); END;
CREATE TRIGGER secret_keys_no_delete BEFORE DELETE ON secret_keys
BEGIN SELECT RAISE(ABORT, 'secret keys are immutable: they are never deleted'); END;
