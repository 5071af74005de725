-- Consented records. A consent's grant, end and revocation are moments (milliseconds since
-- the Unix epoch, UTC), so a revocation takes effect at once rather than the next day; a date
-- imported before this migration meant the start of that day. The release check looks up
-- consents by purpose and recipient.
ALTER TABLE consents DROP CONSTRAINT IF EXISTS consents_check;
ALTER TABLE consents DROP CONSTRAINT IF EXISTS consents_check1;
ALTER TABLE consents
    ALTER COLUMN granted_at TYPE BIGINT
        USING (EXTRACT(EPOCH FROM granted_at::timestamp AT TIME ZONE 'UTC') * 1000)::BIGINT,
    ALTER COLUMN expires_at TYPE BIGINT
        USING (EXTRACT(EPOCH FROM expires_at::timestamp AT TIME ZONE 'UTC') * 1000)::BIGINT,
    ALTER COLUMN revoked_at TYPE BIGINT
        USING (EXTRACT(EPOCH FROM revoked_at::timestamp AT TIME ZONE 'UTC') * 1000)::BIGINT;
ALTER TABLE consents ADD CONSTRAINT consents_expires_after_grant
    CHECK (expires_at IS NULL OR expires_at >= granted_at);
ALTER TABLE consents ADD CONSTRAINT consents_revoked_after_grant
    CHECK (revoked_at IS NULL OR revoked_at >= granted_at);
CREATE INDEX consents_release ON consents (purpose, recipient);
