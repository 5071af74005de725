-- Privacy ledger v2: a population released again is found by its scope, so a repeat refreshes
-- the day it was recorded instead of adding a row (the ledger grows with what was released,
-- not with how often).
CREATE INDEX privacy_ledger_scope ON privacy_ledger (requester, template, period_from, period_to, filters, population);
