-- Released populations v3: each carries its family, the hash of its template and period. The
-- decompositions of one small set share both, so many distinct populations of one family
-- given to one requester are what an averaging attack looks like; the node warns the auditor
-- when they reach a threshold. Rows released before carry no family ('').
ALTER TABLE released_populations ADD COLUMN family TEXT NOT NULL DEFAULT '';
CREATE INDEX released_populations_family ON released_populations (requester, family);
