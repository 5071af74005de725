-- Cell key method. Each youth's record key (HMAC-SHA-256 of the pseudonym under the node's
-- secret, the first 32 bits) sits beside its rows, filled by the node for rows that have none
-- (new rows after an import) and cleared when the node's secret changes; the fingerprint
-- says under which secret the keys were made. The differencing ledger is replaced: what a
-- requester was given is now bounded by the number of distinct populations per day.
ALTER TABLE placements ADD COLUMN record_key BIGINT;
ALTER TABLE transition18 ADD COLUMN record_key BIGINT;
CREATE INDEX placements_without_key ON placements (youth_id) WHERE record_key IS NULL;
CREATE INDEX transition18_without_key ON transition18 (youth_id) WHERE record_key IS NULL;
CREATE TABLE record_key_secret (
    fingerprint TEXT NOT NULL
);
DROP TABLE privacy_ledger;
CREATE TABLE released_populations (
    requester   TEXT NOT NULL,
    released_on DATE NOT NULL,
    population  TEXT NOT NULL,
    PRIMARY KEY (requester, released_on, population)
);
