-- Audit chains v3 and checkpoints v2.
-- 1. Every stored column of an audit entry is the hashed body's: `recorded_at` (which the
--    time filters of `zicht audit export` use) is now the body's `end_time` (processing) or
--    `time` (access), and `verify` checks it like the search columns. Existing entries get it
--    from their bodies here. Bodies, hashes and links are not touched, so every chain that
--    verified before verifies after; an entry whose column had been edited is repaired from
--    what its hash covers.
-- 2. Checkpoints are kept by chain position, not arrival: the signer's processing and access
--    sequence numbers, from the signed body.
UPDATE processing_log SET recorded_at = (body::jsonb ->> 'end_time')::BIGINT
WHERE jsonb_typeof(body::jsonb -> 'end_time') = 'number';
UPDATE access_log SET recorded_at = (body::jsonb ->> 'time')::BIGINT
WHERE jsonb_typeof(body::jsonb -> 'time') = 'number';
ALTER TABLE checkpoints ADD COLUMN processing_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE checkpoints ADD COLUMN access_seq BIGINT NOT NULL DEFAULT 0;
UPDATE checkpoints SET
    processing_seq = COALESCE((body::jsonb #>> '{processing,seq}')::BIGINT, 0),
    access_seq = COALESCE((body::jsonb #>> '{access,seq}')::BIGINT, 0);
CREATE INDEX checkpoints_position ON checkpoints (node, processing_seq, access_seq);
