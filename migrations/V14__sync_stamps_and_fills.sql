-- Changes made before sync was on have no clock stamp; the push stamps them from their time,
-- ticked in log order like a clock (two versions of a record written in one millisecond still
-- sort as they were made). The clock's state at `pushed_seq`, so a push resumes it exactly.
ALTER TABLE sync_state ADD COLUMN presync_hlc TEXT NOT NULL DEFAULT '';

-- One prescription dispensed on two PCs while apart, beyond what was prescribed, is a finding
-- for the pharmacist ('over_dispensed'). SQLite changes a CHECK by rebuilding the table.
CREATE TABLE sync_conflicts_v14 (
    id            TEXT PRIMARY KEY,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('concurrent', 'refused', 'double_booking', 'stock_short', 'overpaid', 'over_dispensed')),
    winner_hlc    TEXT,
    winner_device TEXT,
    loser_hlc     TEXT NOT NULL,
    loser_device  TEXT NOT NULL,
    loser_after   TEXT,
    detail        TEXT,
    detected_at   TEXT NOT NULL,
    resolved_at   TEXT,
    resolved_by   TEXT,
    resolution    TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
INSERT INTO sync_conflicts_v14 SELECT * FROM sync_conflicts;
DROP TABLE sync_conflicts;
ALTER TABLE sync_conflicts_v14 RENAME TO sync_conflicts;
CREATE INDEX sync_conflicts_open ON sync_conflicts (resolved_at, detected_at);
