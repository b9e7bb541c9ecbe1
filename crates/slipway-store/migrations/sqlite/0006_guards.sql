-- Manual locks: while a service's environment is locked, no new deploy of it starts (rollbacks
-- still may). Unlocking deletes the row; both are in the audit log.
CREATE TABLE locks (
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    reason TEXT NOT NULL,
    locked_by TEXT NOT NULL,
    locked_at BIGINT NOT NULL,
    PRIMARY KEY (service, environment)
);

-- Authors of a release's commits, a JSON array of names: approvals may have to come from
-- someone else. NULL when nobody said.
ALTER TABLE releases ADD COLUMN authors TEXT;
