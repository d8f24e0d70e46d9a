-- Reception: patients and their search index, doctors, working hours and exceptions,
-- appointments with their status history, and the queue.

-- `pk` is a stable integer key for the full-text index (a hidden rowid may change on
-- VACUUM); `id` is the UUIDv7 every other table refers to.
CREATE TABLE patients (
    pk                    INTEGER PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    -- Medical record number: "{device code}-{counter}", unique across the clinic's PCs.
    mrn                   TEXT NOT NULL UNIQUE,
    given_name            TEXT NOT NULL,
    family_name           TEXT NOT NULL,
    sex                   TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    birth_date            TEXT NOT NULL,
    phones                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(phones)),
    email                 TEXT,
    address               TEXT,
    national_id           TEXT,
    blood_group           TEXT CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    -- JSON array of {substance, reaction, severity}.
    allergies             TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(allergies)),
    chronic_conditions    TEXT,
    medical_history       TEXT,
    current_medications   TEXT,
    insurance_provider    TEXT,
    insurance_policy      TEXT,
    insurance_valid_until TEXT,
    emergency_name        TEXT,
    emergency_relation    TEXT,
    emergency_phone       TEXT,
    notes                 TEXT,
    -- Computed by the write path (patients.rs) for the duplicate check and the search
    -- index: the name folded (lower case, no diacritics or marks), and the identifier
    -- tokens (record number, phone digits, national ID).
    name_key              TEXT NOT NULL,
    search_keys           TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    updated_by            TEXT NOT NULL
) STRICT;
CREATE INDEX patients_dup_name ON patients (name_key, birth_date);
CREATE INDEX patients_recent ON patients (updated_at);

-- Photos apart from the row: an audit image shows a photo as its SHA-256 only.
CREATE TABLE patient_photos (
    id          TEXT PRIMARY KEY NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    mime        TEXT NOT NULL CHECK (mime IN ('image/jpeg', 'image/png', 'image/webp')),
    bytes       BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

-- Search: a contentless FTS5 index over the folded names and identifier tokens, kept in
-- step by triggers.
CREATE VIRTUAL TABLE patients_fts USING fts5 (
    names, ids,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0',
    prefix = '1 2 3'
);
CREATE TRIGGER patients_fts_insert AFTER INSERT ON patients BEGIN
    INSERT INTO patients_fts (rowid, names, ids)
    VALUES (new.pk, new.name_key, new.search_keys);
END;
CREATE TRIGGER patients_fts_update AFTER UPDATE OF name_key, search_keys ON patients BEGIN
    DELETE FROM patients_fts WHERE rowid = old.pk;
    INSERT INTO patients_fts (rowid, names, ids)
    VALUES (new.pk, new.name_key, new.search_keys);
END;
CREATE TRIGGER patients_fts_delete AFTER DELETE ON patients BEGIN
    DELETE FROM patients_fts WHERE rowid = old.pk;
END;

CREATE TABLE specializations (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- Letter(s) on queue tickets of this department, e.g. "C" for C-014.
    queue_code  TEXT NOT NULL CHECK (length(queue_code) BETWEEN 1 AND 3),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

CREATE TABLE doctors (
    id                 TEXT PRIMARY KEY NOT NULL,
    -- The staff account that signs in as this doctor, if any.
    staff_id           TEXT UNIQUE REFERENCES staff (id),
    full_name          TEXT NOT NULL,
    specialization_id  TEXT NOT NULL REFERENCES specializations (id),
    licence_number     TEXT NOT NULL UNIQUE,
    qualification      TEXT NOT NULL DEFAULT '',
    years_experience   INTEGER NOT NULL DEFAULT 0 CHECK (years_experience BETWEEN 0 AND 70),
    fee_minor          INTEGER NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    fee_currency       TEXT NOT NULL,
    biography          TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'suspended')),
    available          INTEGER NOT NULL CHECK (available IN (0, 1)),
    room               TEXT NOT NULL DEFAULT '',
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    updated_by         TEXT NOT NULL
) STRICT;
CREATE INDEX doctors_specialization ON doctors (specialization_id);

-- Weekly hours in the clinic's local time: weekday 1 = Monday .. 7 = Sunday, minutes
-- after local midnight.
CREATE TABLE working_hours (
    id            TEXT PRIMARY KEY NOT NULL,
    doctor_id     TEXT NOT NULL REFERENCES doctors (id) ON DELETE CASCADE,
    weekday       INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute  INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute    INTEGER NOT NULL CHECK (end_minute BETWEEN 1 AND 1440 AND end_minute > start_minute),
    slot_minutes  INTEGER NOT NULL CHECK (slot_minutes BETWEEN 5 AND 240),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX working_hours_doctor ON working_hours (doctor_id, weekday);

-- Leave, holidays and blocked hours, as UTC instants. No doctor = the whole clinic.
CREATE TABLE schedule_exceptions (
    id          TEXT PRIMARY KEY NOT NULL,
    doctor_id   TEXT REFERENCES doctors (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('leave', 'holiday', 'blocked')),
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL CHECK (ends_at > starts_at),
    reason      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
CREATE INDEX schedule_exceptions_doctor ON schedule_exceptions (doctor_id, starts_at);

CREATE TABLE appointments (
    id               TEXT PRIMARY KEY NOT NULL,
    patient_id       TEXT NOT NULL REFERENCES patients (id),
    doctor_id        TEXT NOT NULL REFERENCES doctors (id),
    starts_at        TEXT NOT NULL,
    ends_at          TEXT NOT NULL CHECK (ends_at > starts_at),
    kind             TEXT NOT NULL CHECK (kind IN ('consultation', 'follow_up', 'emergency', 'checkup')),
    reason           TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL CHECK (status IN ('scheduled', 'confirmed', 'checked_in', 'in_consultation',
                                                     'completed', 'cancelled', 'no_show', 'rescheduled')),
    -- Set when this appointment was moved: the one that replaced it.
    rescheduled_to   TEXT REFERENCES appointments (id),
    -- Why an emergency was booked over a clash or outside working hours.
    override_reason  TEXT,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;
CREATE INDEX appointments_doctor_time ON appointments (doctor_id, starts_at);
CREATE INDEX appointments_patient_time ON appointments (patient_id, starts_at);
CREATE INDEX appointments_time ON appointments (starts_at);

CREATE TABLE appointment_history (
    id              TEXT PRIMARY KEY NOT NULL,
    appointment_id  TEXT NOT NULL REFERENCES appointments (id),
    old_status      TEXT,
    new_status      TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL
) STRICT;
CREATE INDEX appointment_history_appointment ON appointment_history (appointment_id);

CREATE TABLE queue_tickets (
    id              TEXT PRIMARY KEY NOT NULL,
    -- "C-014": department code and the day's number, shown on the board.
    number          TEXT NOT NULL,
    queue_code      TEXT NOT NULL,
    -- The clinic-local day the ticket belongs to (YYYY-MM-DD).
    day             TEXT NOT NULL,
    patient_id      TEXT NOT NULL REFERENCES patients (id),
    appointment_id  TEXT REFERENCES appointments (id),
    doctor_id       TEXT REFERENCES doctors (id),
    -- 0 normal, 1 urgent, 2 emergency: higher is called first.
    priority        INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
    status          TEXT NOT NULL CHECK (status IN ('waiting', 'called', 'in_consultation', 'done', 'left')),
    arrived_at      TEXT NOT NULL,
    called_at       TEXT,
    room            TEXT,
    finished_at     TEXT,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL
) STRICT;
CREATE INDEX queue_tickets_day ON queue_tickets (day, status, priority, arrived_at);
