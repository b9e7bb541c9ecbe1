-- Provenance: DSSE envelopes CI signed for an artifact, each recorded once with the trusted key
-- that signed it and the facts it states. Preflight verifies them again against the keys
-- trusted at deploy time, so the envelope is kept whole; the signer's public key is kept too,
-- to tell a key no longer trusted from an altered envelope.
CREATE TABLE attestations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    -- `sha256:<64 hex>`: the artifact's digest, the statement's subject.
    digest TEXT NOT NULL,
    -- The DSSE envelope as JSON, and its SHA-256 (hex): the same envelope is recorded once.
    envelope TEXT NOT NULL,
    envelope_hash TEXT NOT NULL,
    -- The key of [provenance] that signed it when it was recorded: name, id, `ed25519:…`.
    key_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    source_commit TEXT NOT NULL,
    build_id TEXT NOT NULL,
    builder TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    UNIQUE (service, version, envelope_hash),
    FOREIGN KEY (service, version) REFERENCES artifacts (service, version)
);
CREATE INDEX attestations_by_digest ON attestations (digest, id);
