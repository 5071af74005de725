-- Audit chains v2.
-- 1. What auditors search the chains by, copied from each entry's body when it is written:
--    the template and processing activity (the purpose's URI) of a processing record, and the
--    caller's PeerID of an access record. The bodies stay what the hashes cover; a search
--    re-checks every entry it returns against its body. Existing entries get theirs from
--    their bodies here.
-- 2. No UNIQUE index on prev_hash: seq is the primary key and every append reads the head in
--    its own transaction, so a second writer's append of the same seq fails and a fork cannot
--    be written. A unique index over random hashes made every append touch a random page.
ALTER TABLE processing_log ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE processing_log ADD COLUMN activity TEXT NOT NULL DEFAULT '';
ALTER TABLE access_log ADD COLUMN peer_id TEXT NOT NULL DEFAULT '';
UPDATE processing_log SET
    template = COALESCE(body::jsonb ->> 'template', ''),
    activity = COALESCE(body::jsonb ->> 'processing_activity_id', '');
UPDATE access_log SET peer_id = COALESCE(body::jsonb ->> 'peer_id', '');
ALTER TABLE processing_log DROP CONSTRAINT processing_log_prev_hash_key;
ALTER TABLE access_log DROP CONSTRAINT access_log_prev_hash_key;
CREATE INDEX processing_log_operation ON processing_log (operation_id);
CREATE INDEX access_log_operation ON access_log (operation_id);
CREATE INDEX access_log_peer ON access_log (peer_id);
