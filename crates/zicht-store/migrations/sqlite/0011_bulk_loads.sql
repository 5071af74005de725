-- Record keys are no longer stored: the node's key function gives each youth's key while the
-- snapshot of the counted tables is built, so no import needs a second pass that rewrites
-- every row, and a new secret needs no rewrite at all.
--
-- The key of the two youth tables becomes a unique index of its own name (it was the table's
-- PRIMARY KEY, which SQLite cannot drop), so a load into an empty table can drop the index
-- and build it once after the rows instead of inserting each key into it in random order.
-- SQLite changes a table's constraints only by copying it.
CREATE TABLE placements_v11 (
    youth_id              TEXT    NOT NULL,
    birth_date            TEXT    NOT NULL,
    origin_region         TEXT    NOT NULL,
    origin_municipality   TEXT,
    provider              TEXT    NOT NULL,
    location_municipality TEXT,
    placement_region      TEXT    NOT NULL,
    care_type             TEXT    NOT NULL,
    setting               TEXT,
    legal_basis           TEXT    NOT NULL,
    start_date            TEXT    NOT NULL,
    end_date              TEXT,
    outflow_destination   TEXT,
    outflow_profile       INTEGER CHECK (outflow_profile BETWEEN 1 AND 4),
    CHECK (start_date >= birth_date),
    CHECK (end_date IS NULL OR end_date >= start_date),
    CHECK ((end_date IS NULL) = (outflow_destination IS NULL))
);
INSERT INTO placements_v11 (youth_id, birth_date, origin_region, origin_municipality, provider,
    location_municipality, placement_region, care_type, setting, legal_basis, start_date,
    end_date, outflow_destination, outflow_profile)
SELECT youth_id, birth_date, origin_region, origin_municipality, provider,
    location_municipality, placement_region, care_type, setting, legal_basis, start_date,
    end_date, outflow_destination, outflow_profile
FROM placements;
DROP TABLE placements;
ALTER TABLE placements_v11 RENAME TO placements;
CREATE UNIQUE INDEX placements_key ON placements (youth_id, start_date, care_type, provider);

CREATE TABLE transition18_v11 (
    youth_id                TEXT    NOT NULL,
    check_date              TEXT    NOT NULL,
    toekomstplan            BOOLEAN NOT NULL,
    lokaal_team             BOOLEAN NOT NULL,
    clientondersteuner      BOOLEAN NOT NULL,
    after18_funding         TEXT    NOT NULL,
    big5_support            TEXT    NOT NULL,
    big5_wonen              TEXT    NOT NULL,
    big5_werk_school        TEXT    NOT NULL,
    big5_inkomen_schulden   TEXT    NOT NULL,
    big5_zorg_ondersteuning TEXT    NOT NULL,
    uit_beeld               BOOLEAN NOT NULL
);
INSERT INTO transition18_v11 (youth_id, check_date, toekomstplan, lokaal_team,
    clientondersteuner, after18_funding, big5_support, big5_wonen, big5_werk_school,
    big5_inkomen_schulden, big5_zorg_ondersteuning, uit_beeld)
SELECT youth_id, check_date, toekomstplan, lokaal_team, clientondersteuner, after18_funding,
    big5_support, big5_wonen, big5_werk_school, big5_inkomen_schulden,
    big5_zorg_ondersteuning, uit_beeld
FROM transition18;
DROP TABLE transition18;
ALTER TABLE transition18_v11 RENAME TO transition18;
CREATE UNIQUE INDEX transition18_key ON transition18 (youth_id, check_date);

DROP TABLE record_key_secret;

-- The snapshot of the counted tables as the store last built it (see snapshot/stored.rs): a
-- cache of this database, used only at the generation it was built at.
CREATE TABLE count_snapshot (
    generation  INTEGER NOT NULL,
    record_keys TEXT,
    body        BLOB    NOT NULL
);
