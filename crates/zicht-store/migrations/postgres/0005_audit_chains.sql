-- Audit chains v1: the processing log (Logboek Dataverwerkingen records) and the access log,
-- append-only and hash-chained: hash = SHA-256(prev_hash || body), the first entry chaining
-- from 64 zeros. seq is assigned without gaps, so a deleted entry shows; prev_hash is unique,
-- so two writers cannot fork a chain. Written in the release's transaction, before the answer
-- leaves. Bodies never hold data values.
CREATE TABLE processing_log (
    seq           BIGINT PRIMARY KEY,
    trace_id      TEXT    NOT NULL,
    operation_id  TEXT    NOT NULL,
    recorded_at   BIGINT NOT NULL,
    body          TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL UNIQUE,
    hash          TEXT    NOT NULL
);
CREATE INDEX processing_log_trace ON processing_log (trace_id);
CREATE TABLE access_log (
    seq           BIGINT PRIMARY KEY,
    operation_id  TEXT    NOT NULL,
    recorded_at   BIGINT NOT NULL,
    body          TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL UNIQUE,
    hash          TEXT    NOT NULL
);
