-- Regional store v1 (SQLite): the records a region's node holds, and a log of imports.
-- Dates are ISO text (YYYY-MM-DD), so comparisons and ranges work as on PostgreSQL's DATE.

CREATE TABLE placements (
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
    PRIMARY KEY (youth_id, start_date, care_type, provider),
    CHECK (start_date >= birth_date),
    CHECK (end_date IS NULL OR end_date >= start_date),
    CHECK ((end_date IS NULL) = (outflow_destination IS NULL))
);
CREATE INDEX placements_period ON placements (start_date, end_date);

CREATE TABLE capacity (
    provider              TEXT    NOT NULL,
    facility              TEXT    NOT NULL,
    location_municipality TEXT    NOT NULL,
    placement_region      TEXT    NOT NULL,
    care_type             TEXT    NOT NULL,
    setting               TEXT,
    peildatum             TEXT    NOT NULL,
    places                INTEGER NOT NULL CHECK (places >= 0),
    occupied              INTEGER NOT NULL CHECK (occupied >= 0),
    financing             TEXT,
    PRIMARY KEY (provider, facility, care_type, peildatum),
    CHECK (occupied <= places)
);

CREATE TABLE transition18 (
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
    uit_beeld               BOOLEAN NOT NULL,
    PRIMARY KEY (youth_id, check_date)
);

CREATE TABLE consents (
    consent_id   TEXT NOT NULL PRIMARY KEY,
    youth_id     TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    fields       TEXT NOT NULL,
    granted_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    evidence_ref TEXT,
    CHECK (expires_at IS NULL OR expires_at >= granted_at),
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);
CREATE INDEX consents_youth ON consents (youth_id);

-- One row per accepted import file (rejected files store nothing, not even here).
CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name  TEXT    NOT NULL,
    file_name   TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    row_count   INTEGER NOT NULL,
    replaced    BOOLEAN NOT NULL,
    imported_at TEXT    NOT NULL
);
