-- Foundation: this device, clinic settings, staff accounts, the audit trail and the
-- per-device change log. Every table carries id (UUIDv7 text) and the four
-- created/updated columns; times are UTC RFC 3339 text with microseconds, so they
-- sort as text. Shipped migrations are never edited: add a new V{n} file instead.

-- One row: the PC this database belongs to. `code` prefixes every human-readable
-- number this device hands out (record numbers, tickets), so two PCs that work
-- offline never produce the same number.
CREATE TABLE device (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 2 AND 6),
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

-- Clinic-wide settings as JSON values under stable keys (clinic profile, security policy).
CREATE TABLE settings (
    id          TEXT PRIMARY KEY NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    value       TEXT NOT NULL CHECK (json_valid(value)),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

CREATE TABLE staff (
    id                    TEXT PRIMARY KEY NOT NULL,
    username              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    full_name             TEXT NOT NULL,
    email                 TEXT,
    phone                 TEXT,
    roles                 TEXT NOT NULL CHECK (json_valid(roles) AND json_type(roles) = 'array'),
    language              TEXT NOT NULL CHECK (language IN ('en', 'ru', 'th')),
    active                INTEGER NOT NULL CHECK (active IN (0, 1)),
    must_change_password  INTEGER NOT NULL CHECK (must_change_password IN (0, 1)),
    -- Base32 TOTP secret; NULL until enrolled. The whole file is encrypted.
    totp_secret           TEXT,
    -- The last accepted TOTP time step: a code is good once.
    totp_last_step        INTEGER,
    -- JSON array of SHA-256 hex digests of the unused one-time recovery codes.
    totp_recovery         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(totp_recovery)),
    password_changed_at   TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    updated_by            TEXT NOT NULL
) STRICT;

-- Per-device counters behind human-readable numbers ("K3F-000123").
CREATE TABLE counters (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL DEFAULT '',
    value       INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    UNIQUE (name, scope)
) STRICT;

-- The audit trail: one row per write (and per chart view), hash-chained.
-- seq is the chain order; hash = SHA-256 over prev_hash and the entry's fields.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    at          TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
-- One index: every index is written on every audited write, and the write path must
-- stay cheap. Time ranges need none: `at` never decreases along `seq` (the write path
-- makes it so), so a date range becomes a seq range by binary search on the primary
-- key; a filter by person scans within that range.
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);

-- Append-only: a changed or deleted entry breaks the chain anyway, but the app
-- itself must never try.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- What the sync module pushes: every change this device made, in order.
-- (device_id, seq) is unique across the clinic; the server inserts idempotently.
CREATE TABLE change_log (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    after       TEXT,
    at          TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
