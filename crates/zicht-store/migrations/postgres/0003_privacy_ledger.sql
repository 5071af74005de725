-- Privacy ledger v1 (PostgreSQL): every population released to a requester (each total and
-- each released cell), for the differencing guard. Written in the same transaction as the
-- release log entry, before the answer leaves. Holds counts of released cells only.
CREATE TABLE privacy_ledger (
    entry_id     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requester    TEXT    NOT NULL,
    recorded_on  DATE    NOT NULL,
    template     TEXT    NOT NULL,
    period_from  DATE    NOT NULL,
    period_to    DATE    NOT NULL,
    filters      TEXT    NOT NULL,
    population   BIGINT  NOT NULL
);
CREATE INDEX privacy_ledger_requester ON privacy_ledger (requester, template, recorded_on);
