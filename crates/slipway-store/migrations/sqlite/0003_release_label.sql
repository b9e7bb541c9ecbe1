-- The release label of each deploy as a column, so "the release that ran before" is one indexed
-- lookup (rollback targets) instead of a scan of deploy states.
ALTER TABLE deploys ADD COLUMN release_label TEXT;
UPDATE deploys SET release_label = json_extract(state, '$.spec.release.label');
CREATE INDEX deploys_by_label ON deploys (service, environment, release_label, result, id);
