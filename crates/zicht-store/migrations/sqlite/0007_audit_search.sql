-- Audit chains v2.
-- 1. What auditors search the chains by, copied from each entry's body when it is written:
--    the template and processing activity (the purpose's URI) of a processing record, and the
--    caller's PeerID of an access record. The bodies stay what the hashes cover; a search
--    re-checks every entry it returns against its body. Existing entries get theirs from
--    their bodies here.
-- 2. No UNIQUE index on prev_hash: seq is the primary key and every append reads the head in
--    its own transaction, so a second writer's append of the same seq fails and a fork cannot
--    be written. A unique index over random hashes made every append touch a random page.
-- SQLite cannot drop a column constraint, so both tables are rebuilt.
CREATE TABLE processing_log_v2 (
    seq           INTEGER PRIMARY KEY,
    trace_id      TEXT    NOT NULL,
    operation_id  TEXT    NOT NULL,
    recorded_at   INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    activity      TEXT    NOT NULL
);
INSERT INTO processing_log_v2
SELECT seq, trace_id, operation_id, recorded_at, body, prev_hash, hash,
       COALESCE(json_extract(body, '$.template'), ''),
       COALESCE(json_extract(body, '$.processing_activity_id'), '')
FROM processing_log ORDER BY seq;
DROP TABLE processing_log;
ALTER TABLE processing_log_v2 RENAME TO processing_log;
CREATE INDEX processing_log_trace ON processing_log (trace_id);
CREATE INDEX processing_log_operation ON processing_log (operation_id);

CREATE TABLE access_log_v2 (
    seq           INTEGER PRIMARY KEY,
    operation_id  TEXT    NOT NULL,
    recorded_at   INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    peer_id       TEXT    NOT NULL
);
INSERT INTO access_log_v2
SELECT seq, operation_id, recorded_at, body, prev_hash, hash,
       COALESCE(json_extract(body, '$.peer_id'), '')
FROM access_log ORDER BY seq;
DROP TABLE access_log;
ALTER TABLE access_log_v2 RENAME TO access_log;
CREATE INDEX access_log_operation ON access_log (operation_id);
CREATE INDEX access_log_peer ON access_log (peer_id);
