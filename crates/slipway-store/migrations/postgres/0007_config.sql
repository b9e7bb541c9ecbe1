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
    wrapped_key BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
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
CREATE FUNCTION config_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'config versions are immutable: they are never deleted';
    END IF;
    IF NEW.service IS DISTINCT FROM OLD.service OR NEW.environment IS DISTINCT FROM OLD.environment
        OR NEW.number IS DISTINCT FROM OLD.number OR NEW.nonce IS DISTINCT FROM OLD.nonce
        OR NEW.ciphertext IS DISTINCT FROM OLD.ciphertext OR NEW.digest IS DISTINCT FROM OLD.digest
        OR NEW.changed_keys IS DISTINCT FROM OLD.changed_keys
        OR NEW.created_by IS DISTINCT FROM OLD.created_by
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
        OR NEW.message IS DISTINCT FROM OLD.message THEN
        RAISE EXCEPTION 'config versions are immutable: only their key wrapping and approval change';
    END IF;
    IF OLD.approved_by IS NOT NULL AND (NEW.approved_by IS DISTINCT FROM OLD.approved_by
        OR NEW.approved_at IS DISTINCT FROM OLD.approved_at) THEN
        RAISE EXCEPTION 'config versions are immutable: an approval is recorded once';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER config_versions_no_change BEFORE UPDATE OR DELETE ON config_versions
FOR EACH ROW EXECUTE FUNCTION config_versions_immutable();
CREATE TRIGGER config_versions_no_truncate BEFORE TRUNCATE ON config_versions
FOR EACH STATEMENT EXECUTE FUNCTION config_versions_immutable();

-- Keys slipway keeps sealed under the master key (the fingerprint key): written once, re-wrapped
-- on rotation, never changed otherwise, so fingerprints stay the same.
CREATE TABLE secret_keys (
    name TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);
CREATE FUNCTION secret_keys_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
        RAISE EXCEPTION 'secret keys are immutable: they are never deleted';
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.nonce IS DISTINCT FROM OLD.nonce
        OR NEW.ciphertext IS DISTINCT FROM OLD.ciphertext THEN
        RAISE EXCEPTION 'secret keys are immutable: only their key wrapping changes';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER secret_keys_no_change BEFORE UPDATE OR DELETE ON secret_keys
FOR EACH ROW EXECUTE FUNCTION secret_keys_immutable();
CREATE TRIGGER secret_keys_no_truncate BEFORE TRUNCATE ON secret_keys
FOR EACH STATEMENT EXECUTE FUNCTION secret_keys_immutable();
