-- Lab tests (a catalogue, orders and their results) and the patient's medical records with
-- their attachments.

-- Tests the clinic can order: LOINC code, the unit results are entered in, and the reference
-- range (adult) outside which a result is flagged. Seeded with common tests.
CREATE TABLE lab_tests (
    id          TEXT PRIMARY KEY NOT NULL,
    loinc       TEXT NOT NULL,
    name        TEXT NOT NULL,
    unit        TEXT NOT NULL,
    ref_low     REAL,
    ref_high    REAL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

-- An order and, once entered, its result. The unit and range are copied from the catalogue
-- when the result is entered, so a later change to the catalogue doesn't rewrite old results.
CREATE TABLE lab_orders (
    id            TEXT PRIMARY KEY NOT NULL,
    encounter_id  TEXT NOT NULL REFERENCES encounters (id),
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    test_id       TEXT NOT NULL REFERENCES lab_tests (id),
    status        TEXT NOT NULL CHECK (status IN ('ordered', 'resulted', 'cancelled')),
    ordered_at    TEXT NOT NULL,
    value         REAL,
    unit          TEXT,
    ref_low       REAL,
    ref_high      REAL,
    flag          TEXT CHECK (flag IN ('normal', 'low', 'high')),
    comment       TEXT NOT NULL DEFAULT '',
    resulted_at   TEXT,
    resulted_by   TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX lab_orders_patient ON lab_orders (patient_id, test_id, resulted_at);
CREATE INDEX lab_orders_encounter ON lab_orders (encounter_id);
CREATE INDEX lab_orders_open ON lab_orders (status) WHERE status = 'ordered';

-- Records a doctor adds to the history beside what visits write by themselves (imaging,
-- surgery, vaccination, a note, an outside lab result or diagnosis or prescription).
CREATE TABLE records (
    id            TEXT PRIMARY KEY NOT NULL,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    encounter_id  TEXT REFERENCES encounters (id),
    kind          TEXT NOT NULL CHECK (kind IN ('diagnosis', 'prescription', 'lab_result', 'imaging', 'surgery',
                                                 'vaccination', 'note')),
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    -- The clinic-local day it happened (YYYY-MM-DD).
    recorded_on   TEXT NOT NULL,
    author_id     TEXT NOT NULL,
    author_name   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX records_patient ON records (patient_id, recorded_on);

-- Files attached to a record (PDF or images, up to 20 MB), inside the encrypted database:
-- never written to disk in the clear. `sha256` identifies the content in the audit trail.
CREATE TABLE attachments (
    id          TEXT PRIMARY KEY NOT NULL,
    record_id   TEXT NOT NULL REFERENCES records (id),
    file_name   TEXT NOT NULL,
    mime        TEXT NOT NULL CHECK (mime IN ('application/pdf', 'image/png', 'image/jpeg')),
    size        INTEGER NOT NULL CHECK (size BETWEEN 1 AND 20971520),
    sha256      TEXT NOT NULL,
    data        BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
CREATE INDEX attachments_record ON attachments (record_id);

INSERT INTO lab_tests (id, loinc, name, unit, ref_low, ref_high, created_at, created_by, updated_at, updated_by)
SELECT column1, column2, column3, column4, column5, column6,
       '2026-11-23T00:00:00.000000Z', 'starter-catalogue', '2026-11-23T00:00:00.000000Z', 'starter-catalogue'
FROM (VALUES
    ('lab-hemoglobin', '718-7', 'Hemoglobin', 'g/dL', 12.0, 17.5),
    ('lab-wbc', '6690-2', 'White blood cells', '10*3/uL', 4.0, 11.0),
    ('lab-platelets', '777-3', 'Platelets', '10*3/uL', 150.0, 400.0),
    ('lab-glucose-fasting', '14771-0', 'Glucose, fasting', 'mmol/L', 3.9, 5.5),
    ('lab-hba1c', '4548-4', 'Hemoglobin A1c', '%', 4.0, 5.6),
    ('lab-creatinine', '14682-9', 'Creatinine', 'umol/L', 53.0, 115.0),
    ('lab-cholesterol', '14647-2', 'Cholesterol, total', 'mmol/L', NULL, 5.2),
    ('lab-ldl', '22748-8', 'LDL cholesterol', 'mmol/L', NULL, 3.0),
    ('lab-hdl', '14646-4', 'HDL cholesterol', 'mmol/L', 1.0, NULL),
    ('lab-triglycerides', '14927-8', 'Triglycerides', 'mmol/L', NULL, 1.7),
    ('lab-alt', '1742-6', 'ALT', 'U/L', 7.0, 56.0),
    ('lab-ast', '1920-8', 'AST', 'U/L', 10.0, 40.0),
    ('lab-tsh', '3016-3', 'TSH', 'm[IU]/L', 0.4, 4.0),
    ('lab-sodium', '2951-2', 'Sodium', 'mmol/L', 135.0, 145.0),
    ('lab-potassium', '2823-3', 'Potassium', 'mmol/L', 3.5, 5.1),
    ('lab-crp', '1988-5', 'C-reactive protein', 'mg/L', NULL, 5.0),
    ('lab-inr', '6301-6', 'INR', '{INR}', 0.8, 1.2),
    ('lab-urea', '22664-7', 'Urea', 'mmol/L', 2.5, 7.1)
);
