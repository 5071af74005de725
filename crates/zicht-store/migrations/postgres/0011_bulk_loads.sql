-- Record keys are no longer stored: the node's key function gives each youth's key while the
-- snapshot of the counted tables is built, so no import needs a second pass that rewrites
-- every row, and a new secret needs no rewrite at all.
ALTER TABLE placements DROP COLUMN record_key;
ALTER TABLE transition18 DROP COLUMN record_key;
DROP TABLE record_key_secret;

-- The key of the two youth tables becomes a unique index of its own name (as on SQLite), so
-- a load into an empty table can drop the index and build it once after the rows instead of
-- inserting each key into it in random order.
ALTER TABLE placements DROP CONSTRAINT placements_pkey;
CREATE UNIQUE INDEX placements_key ON placements (youth_id, start_date, care_type, provider);
ALTER TABLE transition18 DROP CONSTRAINT transition18_pkey;
CREATE UNIQUE INDEX transition18_key ON transition18 (youth_id, check_date);

-- The snapshot of the counted tables as the store last built it (see snapshot/stored.rs): a
-- cache of this database, used only at the generation it was built at.
CREATE TABLE count_snapshot (
    generation  BIGINT NOT NULL,
    record_keys TEXT,
    body        BYTEA  NOT NULL
);
-- Stored as it is, out of line: compressing tens of megabytes took longer than writing them.
ALTER TABLE count_snapshot ALTER COLUMN body SET STORAGE EXTERNAL;
