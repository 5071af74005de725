-- What auditors search the chains by, copied from each entry's body when it is written:
-- the template and processing activity (the purpose's URI) of a processing record, and the
-- caller's PeerID of an access record. The bodies stay what the hashes cover; a search
-- re-checks every entry it returns against its body. Entries written before this migration
-- get theirs from their bodies here.
ALTER TABLE processing_log ADD COLUMN template TEXT NOT NULL DEFAULT '';
ALTER TABLE processing_log ADD COLUMN activity TEXT NOT NULL DEFAULT '';
ALTER TABLE access_log ADD COLUMN peer_id TEXT NOT NULL DEFAULT '';
UPDATE processing_log SET
    template = COALESCE(json_extract(body, '$.template'), ''),
    activity = COALESCE(json_extract(body, '$.processing_activity_id'), '');
UPDATE access_log SET peer_id = COALESCE(json_extract(body, '$.peer_id'), '');
CREATE INDEX processing_log_operation ON processing_log (operation_id);
CREATE INDEX access_log_operation ON access_log (operation_id);
CREATE INDEX access_log_peer ON access_log (peer_id);
