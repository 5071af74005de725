-- Audit chains v3 and checkpoints v2.
-- 1. Every stored column of an audit entry is the hashed body's: `recorded_at` (which the
--    time filters of `zicht audit export` use) is now the body's `end_time` (processing) or
--    `time` (access), and `verify` checks it like the search columns. Existing entries get it
--    from their bodies here. Bodies, hashes and links are not touched, so every chain that
--    verified before verifies after; an entry whose column had been edited is repaired from
--    what its hash covers.
-- 2. Checkpoints are kept by chain position, not arrival: the signer's processing and access
--    sequence numbers, from the signed body.
UPDATE processing_log SET recorded_at = CAST(json_extract(body, '$.end_time') AS INTEGER)
WHERE json_valid(body) AND json_type(body, '$.end_time') = 'integer';
UPDATE access_log SET recorded_at = CAST(json_extract(body, '$.time') AS INTEGER)
WHERE json_valid(body) AND json_type(body, '$.time') = 'integer';
ALTER TABLE checkpoints ADD COLUMN processing_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN access_seq INTEGER NOT NULL DEFAULT 0;
UPDATE checkpoints SET
    processing_seq = COALESCE(CAST(json_extract(body, '$.processing.seq') AS INTEGER), 0),
    access_seq = COALESCE(CAST(json_extract(body, '$.access.seq') AS INTEGER), 0)
WHERE json_valid(body);
CREATE INDEX checkpoints_position ON checkpoints (node, processing_seq, access_seq);
