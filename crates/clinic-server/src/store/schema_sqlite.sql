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
    PRIMARY KEY (clinic_id, server_seq),
    UNIQUE (device_id, seq)
) STRICT;

CREATE TABLE IF NOT EXISTS rows (
    clinic_id   TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    after       TEXT,
    hlc         TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    PRIMARY KEY (clinic_id, entity, entity_id)
) STRICT;

CREATE TABLE IF NOT EXISTS audit_heads (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, seq)
) STRICT;
