-- The data generation: a number every write to the counted tables (placements, transition18,
-- their record keys) raises in its own transaction. The node's in-memory snapshot of those
-- tables remembers the generation it was built at and is rebuilt when the number moved, so a
-- count never comes from data older than the database's.
CREATE TABLE data_generation (
    generation BIGINT NOT NULL
);
INSERT INTO data_generation (generation) VALUES (0);

-- Counts now run over that snapshot, not in SQL: the indexes that served the SQL and the
-- search for unkeyed rows cost every import more than they save (one scan finds the few rows
-- without a key).
DROP INDEX placements_period;
DROP INDEX placements_without_key;
DROP INDEX transition18_without_key;
