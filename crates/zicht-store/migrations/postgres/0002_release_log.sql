-- Release log v1 (PostgreSQL): one row per answered or refused peer request, written before the
-- answer leaves the node (fail-closed). Never holds data values. The hash-chained audit logs of
-- the audit design will supersede it.
CREATE TABLE release_log (
    entry_id      BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at     TIMESTAMPTZ NOT NULL,
    peer_id       TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    group_by      TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    result_rows   BIGINT  NOT NULL
);
