-- Sync that nothing can freeze, wedge or fool (issue 19).

-- Changes from other PCs whose clock stamp is more than three days ahead of this PC's clock
-- (`clinic_sync_proto::MAX_STAMP_AHEAD_MS`): held here, never observed or applied, until this
-- PC's clock gets within three days of them (a PC whose clock was set back, say). Bookkeeping:
-- never audited or synced. `item` is the change as it arrived, its content already opened (it
-- stays inside this encrypted file). `server_seq` is none for a row of the download.
CREATE TABLE sync_held (
    key         TEXT PRIMARY KEY,
    server_seq  INTEGER UNIQUE,
    hlc         TEXT NOT NULL,
    item        TEXT NOT NULL,
    held_at     TEXT NOT NULL
) STRICT;
CREATE INDEX sync_held_due ON sync_held (hlc);

-- How many of this PC's own changes the server refused (stamped more than three days ahead of
-- the server's clock), and when it last said so: the Sync screen tells the administrator.
ALTER TABLE sync_state ADD COLUMN own_refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN own_refused_at TEXT;

-- The bytes of files (attachments), by their SHA-256, apart from the rows that name them. A
-- file travels apart from the change log: its record carries the hash and size, the bytes go
-- to the server as a sealed blob in chunks (`sync::blobs`), so no row is larger than a push and
-- a large file never holds back the changes made after it. A PC may hold a record before its
-- file arrives. Bookkeeping: never audited or synced (the attachment row is both).
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL CHECK (size >= 1),
    -- When the server was known to hold every chunk (this PC uploaded or fetched it); none
    -- while it is still to be uploaded.
    uploaded_at TEXT,
    stored_at   TEXT NOT NULL,
    -- Last: the bytes spill into overflow pages, and a column after them would be read only by
    -- walking those.
    data        BLOB NOT NULL
) STRICT;
CREATE INDEX blobs_to_upload ON blobs (uploaded_at, stored_at);

INSERT OR IGNORE INTO blobs (sha256, size, data, stored_at)
SELECT sha256, size, data, created_at FROM attachments;
ALTER TABLE attachments DROP COLUMN data;
