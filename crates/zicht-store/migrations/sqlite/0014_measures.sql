-- Vrijheidsbeperkende maatregelen (freedom-restricting measures) taken in gesloten jeugdhulp:
-- one row per measure, its youth, provider, facility (as in capacity), the facility's region,
-- when it started and how long it lasted. Counted by the `measures` template and by
-- `youth_in_care`'s `separatie`, so it is part of the snapshot of the counted tables:
-- drop any stored snapshot, which does not hold it.
CREATE TABLE measures (
    youth_id         TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    facility         TEXT    NOT NULL,
    placement_region TEXT    NOT NULL,
    start_date       TEXT    NOT NULL,
    start_time       TEXT    NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes >= 0),
    kind             TEXT    NOT NULL,
    PRIMARY KEY (youth_id, start_date, start_time, kind)
);

DELETE FROM count_snapshot;
