-- Release trains (docs/releases.md): what a cut or patch recorded about a release's git side,
-- the revisions of its notes, and their publication after the production deploy.
CREATE TABLE release_trains (
    release_id BIGINT PRIMARY KEY REFERENCES releases (id),
    service TEXT NOT NULL,
    -- `full` (a cut from what staging runs) or `patch` (commits picked onto production).
    kind TEXT NOT NULL,
    branch TEXT NOT NULL,
    -- What production ran when the release was made; NULL before production's first release.
    base_commit TEXT,
    -- The code of the release: the commit staging ran, or a patch's last pick. Cutting the same
    -- commit again finds this row instead of numbering a second release.
    head_commit TEXT NOT NULL,
    -- The branch's head: the true-up merge when one was recorded, else head_commit. Production
    -- is tagged and moved here after the deploy.
    branch_head TEXT NOT NULL,
    commit_range TEXT NOT NULL,
    true_up TEXT,
    -- JSON array of the picked commits of a patch; NULL for a full cut.
    picks TEXT,
    -- The changelog of the range, Markdown.
    changelog TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (service, head_commit)
);

-- Every revision of a release's notes; the newest is the current text. Append-only.
CREATE TABLE release_notes (
    id BIGSERIAL PRIMARY KEY,
    release_id BIGINT NOT NULL REFERENCES releases (id),
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    written_by TEXT NOT NULL,
    written_at BIGINT NOT NULL,
    UNIQUE (release_id, revision)
);

-- At most one publication per release: written when its production deploy succeeded.
CREATE TABLE release_publications (
    release_id BIGINT PRIMARY KEY REFERENCES releases (id),
    -- The notes revision that was published.
    revision BIGINT NOT NULL,
    deploy_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    -- 1 when the tag carries a signature, else 0.
    signed BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    -- When the notes webhook acknowledged them; NULL until then (or without a webhook).
    delivered_at BIGINT
);
CREATE FUNCTION release_notes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'release notes revisions are append-only'; END $$;
CREATE TRIGGER release_notes_no_change BEFORE UPDATE OR DELETE ON release_notes
FOR EACH ROW EXECUTE FUNCTION release_notes_append_only();

-- The cursor of each train schedule (`[[service.source.schedule]]`, named by its key): the
-- newest fire time handled, so a restart neither fires one twice nor forgets one it owes.
CREATE TABLE schedule_fires (
    schedule TEXT PRIMARY KEY,
    last_fire BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
