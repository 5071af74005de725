-- Privacy ledger v1 (SQLite): every population released to a requester (each total and each
-- released cell), for the differencing guard. Written in the same transaction as the release
-- log entry, before the answer leaves. Holds counts of released cells only, never small ones.
CREATE TABLE privacy_ledger (
    entry_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    requester    TEXT    NOT NULL,
    recorded_on  TEXT    NOT NULL,
    template     TEXT    NOT NULL,
    period_from  TEXT    NOT NULL,
    period_to    TEXT    NOT NULL,
    filters      TEXT    NOT NULL,
    population   INTEGER NOT NULL
);
CREATE INDEX privacy_ledger_requester ON privacy_ledger (requester, template, recorded_on);
