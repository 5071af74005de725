-- Checkpoints v1: signed chain heads other nodes sent to this one. They let anyone later show
-- that a node rewrote or cut its history after signing them. Append-only.
CREATE TABLE checkpoints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    node         TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    signature    TEXT    NOT NULL,
    certificate  TEXT    NOT NULL
);
CREATE INDEX checkpoints_node ON checkpoints (node, received_at);
