-- Patch numbers reserved by the first call of a two-call patch (docs/releases.md): the row is
-- written before git makes the branch, so two patches of one production release never take
-- the same RC N.M, and the second call finds its number and branch here.
CREATE TABLE pending_patches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    -- The release patched (what production ran): RC major.
    major BIGINT NOT NULL,
    -- The reserved number: RC major.minor.
    minor BIGINT NOT NULL,
    branch TEXT NOT NULL,
    -- JSON array of the picked commits (full shas) in the order given; the same picks in the
    -- same order are the same patch.
    picks TEXT NOT NULL,
    -- The branch's head and what it was made from; NULL until git made the branch.
    head_commit TEXT,
    base_commit TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The release the second call created; NULL while its artifact is awaited.
    release_id BIGINT REFERENCES releases (id),
    UNIQUE (service, major, minor)
);
CREATE INDEX pending_patches_picks ON pending_patches (service, major, picks);
