-- Consultation: encounters (visits), vitals, notes with their drafts and addenda, diagnoses,
-- each patient's problem list, and the clinic's own names for ICD-10 codes.

CREATE TABLE encounters (
    id               TEXT PRIMARY KEY NOT NULL,
    patient_id       TEXT NOT NULL REFERENCES patients (id),
    doctor_id        TEXT NOT NULL REFERENCES doctors (id),
    -- What the visit came from: a queue ticket (and its appointment), or neither (opened
    -- from the chart).
    ticket_id        TEXT REFERENCES queue_tickets (id),
    appointment_id   TEXT REFERENCES appointments (id),
    status           TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    opened_at        TEXT NOT NULL,
    closed_at        TEXT,
    -- The clinic-local day the doctor wants to see the patient again (YYYY-MM-DD), and the
    -- appointment reception booked for it.
    follow_up_on     TEXT,
    follow_up_note   TEXT NOT NULL DEFAULT '',
    follow_up_appointment_id TEXT REFERENCES appointments (id),
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;
CREATE INDEX encounters_patient ON encounters (patient_id, opened_at);
CREATE INDEX encounters_doctor ON encounters (doctor_id, status, opened_at);
CREATE INDEX encounters_follow_up ON encounters (follow_up_on) WHERE follow_up_on IS NOT NULL;
-- One open encounter per ticket.
CREATE UNIQUE INDEX encounters_ticket ON encounters (ticket_id) WHERE ticket_id IS NOT NULL;

-- One measurement per row (FHIR Observation-like): its kind names the LOINC code and the
-- UCUM unit the value is in. Measurements taken together share `set_id`.
CREATE TABLE vitals (
    id            TEXT PRIMARY KEY NOT NULL,
    set_id        TEXT NOT NULL,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    encounter_id  TEXT REFERENCES encounters (id),
    kind          TEXT NOT NULL,
    value         REAL NOT NULL,
    -- 'low', 'high' or 'normal' (within the range for the patient's age band), fixed when taken.
    flag          TEXT NOT NULL CHECK (flag IN ('normal', 'low', 'high')),
    taken_at      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX vitals_patient ON vitals (patient_id, kind, taken_at);
CREATE INDEX vitals_encounter ON vitals (encounter_id);

-- The doctor's note while it is being written: one per encounter and author, overwritten as
-- they type. Not audited and not synced (a working copy); signing turns it into `notes`.
CREATE TABLE note_drafts (
    id            TEXT PRIMARY KEY NOT NULL,
    encounter_id  TEXT NOT NULL REFERENCES encounters (id),
    author_id     TEXT NOT NULL,
    subjective    TEXT NOT NULL DEFAULT '',
    objective     TEXT NOT NULL DEFAULT '',
    assessment    TEXT NOT NULL DEFAULT '',
    plan          TEXT NOT NULL DEFAULT '',
    -- The draft's own counter: a save older than the stored one is ignored.
    revision      INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    UNIQUE (encounter_id, author_id)
) STRICT;

-- Signed SOAP notes. Read-only once written: corrections are addenda.
CREATE TABLE notes (
    id            TEXT PRIMARY KEY NOT NULL,
    encounter_id  TEXT NOT NULL REFERENCES encounters (id),
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    author_id     TEXT NOT NULL,
    author_name   TEXT NOT NULL,
    subjective    TEXT NOT NULL,
    objective     TEXT NOT NULL,
    assessment    TEXT NOT NULL,
    plan          TEXT NOT NULL,
    signed_at     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX notes_encounter ON notes (encounter_id);
CREATE INDEX notes_patient ON notes (patient_id, signed_at);
CREATE TRIGGER notes_read_only BEFORE UPDATE ON notes
BEGIN
    SELECT RAISE(ABORT, 'a signed note is read-only');
END;
CREATE TRIGGER notes_kept BEFORE DELETE ON notes
BEGIN
    SELECT RAISE(ABORT, 'a signed note is kept');
END;

CREATE TABLE note_addenda (
    id            TEXT PRIMARY KEY NOT NULL,
    note_id       TEXT NOT NULL REFERENCES notes (id),
    author_id     TEXT NOT NULL,
    author_name   TEXT NOT NULL,
    text          TEXT NOT NULL,
    signed_at     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX note_addenda_note ON note_addenda (note_id, signed_at);
CREATE TRIGGER note_addenda_read_only BEFORE UPDATE ON note_addenda
BEGIN
    SELECT RAISE(ABORT, 'a signed addendum is read-only');
END;
CREATE TRIGGER note_addenda_kept BEFORE DELETE ON note_addenda
BEGIN
    SELECT RAISE(ABORT, 'a signed addendum is kept');
END;

-- Diagnoses made at an encounter, by ICD-10-CM code. The description is kept as it was
-- when recorded (a later edition may word it differently).
CREATE TABLE diagnoses (
    id            TEXT PRIMARY KEY NOT NULL,
    encounter_id  TEXT NOT NULL REFERENCES encounters (id),
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    code          TEXT NOT NULL,
    description   TEXT NOT NULL,
    rank          TEXT NOT NULL CHECK (rank IN ('primary', 'secondary')),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX diagnoses_encounter ON diagnoses (encounter_id);
CREATE INDEX diagnoses_patient ON diagnoses (patient_id, created_at);
-- At most one primary diagnosis per encounter.
CREATE UNIQUE INDEX diagnoses_primary ON diagnoses (encounter_id) WHERE rank = 'primary';

-- The patient's problem list: conditions that outlive a visit.
CREATE TABLE problems (
    id            TEXT PRIMARY KEY NOT NULL,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    code          TEXT NOT NULL,
    description   TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'resolved')),
    noted_on      TEXT NOT NULL,
    resolved_on   TEXT,
    encounter_id  TEXT REFERENCES encounters (id),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX problems_patient_code ON problems (patient_id, code);

-- A clinic's own names for ICD-10 codes, in its languages; searched with the list.
CREATE TABLE icd_local_names (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL,
    language    TEXT NOT NULL CHECK (language IN ('en', 'ru', 'th')),
    name        TEXT NOT NULL,
    -- `name` folded as search folds it.
    folded      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    UNIQUE (code, language)
) STRICT;
