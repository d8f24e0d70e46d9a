-- Sync (issue 12). Nothing here changes a PC that has no server configured: the change log
-- gets its hybrid-logical-clock stamps and row versions only once sync is on.

-- The change's place in the clinic-wide order of versions (`sync::hlc`), and the version of
-- the row it was made on top of ("hlc@device", none for a row this PC made or had before
-- sync). NULL before sync was on: a push stamps those from `at`.
ALTER TABLE change_log ADD COLUMN hlc TEXT;
ALTER TABLE change_log ADD COLUMN base TEXT;

-- This PC's link to the server. One row; the token is a secret and lives only here, in the
-- encrypted file.
CREATE TABLE sync_state (
    id            TEXT PRIMARY KEY CHECK (id = 'this'),
    server_url    TEXT NOT NULL,
    server_cert   TEXT NOT NULL,
    clinic_id     TEXT NOT NULL,
    clinic_name   TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    device_code   TEXT NOT NULL,
    -- This PC's number in the clinic (joining order): queue tickets carry it ("C2-014").
    desk          INTEGER NOT NULL,
    token         TEXT NOT NULL,
    -- 'joining' until the whole clinic is downloaded, then 'ready'.
    phase         TEXT NOT NULL CHECK (phase IN ('joining', 'ready')),
    -- The download's resume point ("entity/id") and the server cursor it was taken at.
    snapshot_after TEXT,
    snapshot_as_of INTEGER NOT NULL DEFAULT 0,
    snapshot_done  INTEGER NOT NULL DEFAULT 0,
    snapshot_total INTEGER NOT NULL DEFAULT 0,
    -- The highest change-log seq the server has acknowledged, and the server cursor pulled to.
    pushed_seq    INTEGER NOT NULL DEFAULT 0,
    pulled_to     INTEGER NOT NULL DEFAULT 0,
    -- The greatest clock stamp seen, so the clock never runs backwards across restarts.
    hlc_seen      TEXT NOT NULL DEFAULT '',
    last_sync_at  TEXT,
    last_error    TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;

-- Bookkeeping (sync_versions, sync_inbox) has no id or created/updated columns: it is
-- written once per change and never edited by a person.
-- Each synced row's current version, when sync is on, and the version it was made on top of.
CREATE TABLE sync_versions (
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    base        TEXT,
    PRIMARY KEY (entity, entity_id)
) STRICT;

-- Other PCs' changes as they arrived: kept apart from this PC's change log, never pushed.
CREATE TABLE sync_inbox (
    server_seq  INTEGER PRIMARY KEY,
    device_id   TEXT NOT NULL,
    device_code TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    op          TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    base        TEXT,
    -- 'applied', 'stale' (an older version than the one held) or 'refused' (the row broke a
    -- rule of this database; kept as a conflict).
    outcome     TEXT NOT NULL,
    received_at TEXT NOT NULL
) STRICT;

CREATE TRIGGER sync_inbox_no_update BEFORE UPDATE ON sync_inbox
BEGIN SELECT RAISE(ABORT, 'sync_inbox is append-only'); END;

-- The same record changed on two PCs while both were offline. The winner (greater clock,
-- then device) is in the table; the loser is kept here until an admin resolves it. The id is
-- the same on every PC (derived from the losing version), so conflicts sync like rows.
CREATE TABLE sync_conflicts (
    id            TEXT PRIMARY KEY,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('concurrent', 'refused', 'double_booking', 'stock_short', 'overpaid')),
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
CREATE INDEX sync_conflicts_open ON sync_conflicts (resolved_at, detected_at);

-- Each account's key slot as the other PCs of the clinic need it (they share this database's
-- key, so a slot made here opens their copy too): written by sync from this PC's slot file,
-- and put into each PC's slot file when the account row names the same public key. The slot
-- is sealed under the person's password (argon2id); it holds no key in the clear.
CREATE TABLE key_slots (
    id          TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL,
    slot        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
