-- Checklist ticks: who said a prerequisite item is done, with what evidence, and who took it back.
-- Append-only like the event log: an untick is a new row, so the history stays whole. The state
-- of an item is its newest row.
CREATE TABLE checklist_ticks (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    -- The release label (`RC 12`) for a per-release item; NULL for a standing one.
    release_label TEXT,
    item TEXT NOT NULL,
    -- `tick` or `untick`.
    action TEXT NOT NULL,
    by_user TEXT NOT NULL,
    -- The role `by_user` had then: viewer, deployer, approver, admin.
    role TEXT NOT NULL,
    -- `link` or `note` with its text for a tick; for an untick, an optional note saying why.
    evidence_kind TEXT,
    evidence TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX checklist_ticks_by_scope ON checklist_ticks (service, environment, item, id);
CREATE FUNCTION checklist_ticks_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'checklist ticks are append-only'; END $$;
CREATE TRIGGER checklist_ticks_no_change BEFORE UPDATE OR DELETE ON checklist_ticks
FOR EACH ROW EXECUTE FUNCTION checklist_ticks_append_only();
