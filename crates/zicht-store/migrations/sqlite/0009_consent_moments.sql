-- Consented records. A consent's grant, end and revocation are moments (milliseconds since
-- the Unix epoch, UTC), so a revocation takes effect at once rather than the next day; a date
-- imported before this migration meant the start of that day. The release check looks up
-- consents by purpose and recipient.
CREATE TABLE consents_moments (
    consent_id   TEXT    NOT NULL PRIMARY KEY,
    youth_id     TEXT    NOT NULL,
    purpose      TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    fields       TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    evidence_ref TEXT,
    CHECK (expires_at IS NULL OR expires_at >= granted_at),
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at)
);
INSERT INTO consents_moments
SELECT consent_id, youth_id, purpose, recipient, fields,
       CAST(strftime('%s', granted_at) AS INTEGER) * 1000,
       CAST(strftime('%s', expires_at) AS INTEGER) * 1000,
       CAST(strftime('%s', revoked_at) AS INTEGER) * 1000,
       evidence_ref
FROM consents;
DROP TABLE consents;
ALTER TABLE consents_moments RENAME TO consents;
CREATE INDEX consents_youth ON consents (youth_id);
CREATE INDEX consents_release ON consents (purpose, recipient);
