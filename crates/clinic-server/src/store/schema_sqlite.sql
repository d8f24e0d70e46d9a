-- The sync server's tables (SQLite). postgres.rs creates the same with PostgreSQL types.
CREATE TABLE IF NOT EXISTS clinics (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS devices (
    id           TEXT PRIMARY KEY,
    clinic_id    TEXT NOT NULL REFERENCES clinics (id),
    code         TEXT NOT NULL,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    joined_at    TEXT NOT NULL,
    last_seen_at TEXT,
    revoked_at   TEXT,
    last_seq     INTEGER NOT NULL DEFAULT 0,
    -- The device whose join code this one used (none for a clinic's first PC).
    joined_via   TEXT,
    UNIQUE (clinic_id, code)
) STRICT;

CREATE TABLE IF NOT EXISTS join_codes (
    code_hash   TEXT PRIMARY KEY,
    clinic_id   TEXT NOT NULL REFERENCES clinics (id),
    sealed      TEXT,
    expires_at  TEXT NOT NULL,
    created_by  TEXT,
    used_at     TEXT,
    used_by     TEXT
) STRICT;

CREATE TABLE IF NOT EXISTS changes (
    clinic_id   TEXT NOT NULL,
    server_seq  INTEGER NOT NULL,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         INTEGER NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    op          TEXT NOT NULL,
    after       TEXT,
    hlc         TEXT NOT NULL,
    base        TEXT,
    at          TEXT NOT NULL,
    -- Bytes the change takes in a page (`after` and `base`): pages are cut by it before any
    -- content is read.
    size        INTEGER NOT NULL DEFAULT 0,
    -- Why the server keeps the change but never applies or sends it ('clock_ahead': its stamp
    -- was too far ahead of the server's clock); none for a change like any other.
    refused     TEXT,
    PRIMARY KEY (clinic_id, server_seq),
    UNIQUE (device_id, seq)
) STRICT;

CREATE TABLE IF NOT EXISTS rows (
    clinic_id   TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    -- The winning version's sealed content; for a deleted row, its sealed "deleted" marker
    -- (a PC deletes nothing on the server's word alone).
    after       TEXT,
    hlc         TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    size        INTEGER NOT NULL DEFAULT 0,
    -- The version the winning one was made on top of (the PCs' seal binds it).
    base        TEXT,
    PRIMARY KEY (clinic_id, entity, entity_id)
) STRICT;

CREATE TABLE IF NOT EXISTS audit_heads (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
) STRICT;

-- Attachments and other files, sealed by the PCs and cut into chunks: the server stores them
-- by the id the PCs give (a keyed hash of the content), never reads them. Each device has
-- its own: a PC puts only its own files' chunks, and others read them from it.
CREATE TABLE IF NOT EXISTS blobs (
    clinic_id   TEXT NOT NULL REFERENCES clinics (id),
    device_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    size        INTEGER NOT NULL,
    chunks      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    complete_at TEXT,
    PRIMARY KEY (clinic_id, device_id, id)
) STRICT;

CREATE TABLE IF NOT EXISTS blob_chunks (
    clinic_id   TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    blob_id     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (clinic_id, device_id, blob_id, idx),
    FOREIGN KEY (clinic_id, device_id, blob_id) REFERENCES blobs (clinic_id, device_id, id)
) STRICT;

-- Bytes of blob chunks each clinic stores (its quota counts these).
CREATE TABLE IF NOT EXISTS blob_usage (
    clinic_id   TEXT PRIMARY KEY REFERENCES clinics (id),
    bytes       INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS join_codes_expiry ON join_codes (expires_at) WHERE sealed IS NOT NULL;
