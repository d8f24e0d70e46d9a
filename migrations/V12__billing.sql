-- Billing: the price list (versions with an effective date), invoices and their lines,
-- payments and refunds, insurance coverage and claims, and the cashier's daily close.
-- Amounts are integer minor units of the invoice's currency.

-- One version of a price: what `kind` + `code` costs from `effective_from` (YYYY-MM-DD) until
-- a later version of the same code. A doctor's consultation names the doctor (`ref_id`), a
-- lab test its catalogue entry. Pharmacy items are priced by the pharmacy.
CREATE TABLE price_list (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('consultation', 'service', 'procedure', 'lab_test')),
    code            TEXT NOT NULL,
    ref_id          TEXT,
    name            TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount BETWEEN 0 AND 100000000000),
    currency        TEXT NOT NULL,
    effective_from  TEXT NOT NULL CHECK (effective_from GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    UNIQUE (kind, code, effective_from)
) STRICT;
CREATE INDEX price_list_ref ON price_list (kind, ref_id, effective_from);

-- An invoice. A draft has no number; issuing gives it the next number of its PC and year
-- (`{device}-{year}-{n:06}`, no gaps: the counter moves in the issuing transaction). Totals
-- are kept at issue; an issued invoice's lines don't change. Nothing is deleted: voiding keeps
-- the row and its number.
CREATE TABLE invoices (
    id                TEXT PRIMARY KEY NOT NULL,
    number            TEXT UNIQUE,
    patient_id        TEXT NOT NULL REFERENCES patients (id),
    encounter_id      TEXT REFERENCES encounters (id),
    status            TEXT NOT NULL CHECK (status IN ('draft', 'issued', 'partly_paid', 'paid', 'void')),
    currency          TEXT NOT NULL,
    -- Clinic-local day the invoice was issued (YYYY-MM-DD), for ageing and reports.
    issued_on         TEXT,
    issued_at         TEXT,
    discount          INTEGER NOT NULL DEFAULT 0 CHECK (discount >= 0),
    discount_reason   TEXT NOT NULL DEFAULT '',
    total             INTEGER NOT NULL DEFAULT 0,
    tax               INTEGER NOT NULL DEFAULT 0,
    paid              INTEGER NOT NULL DEFAULT 0,
    -- The insurer's part (from the patient's coverage at issue) and the policy.
    policy_id         TEXT,
    insurer_part      INTEGER NOT NULL DEFAULT 0 CHECK (insurer_part >= 0),
    void_reason       TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    updated_by        TEXT NOT NULL,
    CHECK ((status = 'draft') = (number IS NULL)),
    CHECK (status <> 'void' OR length(void_reason) > 0),
    CHECK (discount = 0 OR length(discount_reason) > 0)
) STRICT;
CREATE INDEX invoices_patient ON invoices (patient_id, created_at);
CREATE INDEX invoices_outstanding ON invoices (issued_on) WHERE status IN ('issued', 'partly_paid');
CREATE INDEX invoices_encounter ON invoices (encounter_id);

CREATE TABLE invoice_lines (
    id               TEXT PRIMARY KEY NOT NULL,
    invoice_id       TEXT NOT NULL REFERENCES invoices (id),
    kind             TEXT NOT NULL CHECK (kind IN ('consultation', 'service', 'procedure', 'lab_test', 'pharmacy')),
    description      TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    unit_price       INTEGER NOT NULL CHECK (unit_price BETWEEN 0 AND 100000000000),
    discount         INTEGER NOT NULL DEFAULT 0 CHECK (discount >= 0),
    discount_reason  TEXT NOT NULL DEFAULT '',
    tax_rate_bp      INTEGER NOT NULL CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    -- Computed once, with the clinic's rounding, and kept: net + tax = total.
    net              INTEGER NOT NULL,
    tax              INTEGER NOT NULL,
    total            INTEGER NOT NULL,
    -- What the line bills: a visit (its consultation), a lab order, a billable item.
    source_table     TEXT,
    source_id        TEXT,
    position         INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL,
    CHECK (discount = 0 OR length(discount_reason) > 0),
    CHECK (net + tax = total)
) STRICT;
CREATE INDEX invoice_lines_invoice ON invoice_lines (invoice_id, position);
CREATE INDEX invoice_lines_source ON invoice_lines (source_table, source_id);

CREATE TRIGGER invoice_lines_kept BEFORE UPDATE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice''s lines are kept as issued');
END;
CREATE TRIGGER invoice_lines_not_deleted BEFORE DELETE ON invoice_lines
WHEN (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice''s lines are kept as issued');
END;
CREATE TRIGGER invoices_not_deleted BEFORE DELETE ON invoices
WHEN OLD.status <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice is never deleted');
END;

-- Coverage of a patient by an insurer: a percentage (basis points) or a fixed amount.
CREATE TABLE insurance_policies (
    id             TEXT PRIMARY KEY NOT NULL,
    patient_id     TEXT NOT NULL REFERENCES patients (id),
    provider       TEXT NOT NULL,
    policy_number  TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value          INTEGER NOT NULL CHECK (value >= 0),
    valid_until    TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    CHECK (kind <> 'percent' OR value <= 10000)
) STRICT;
CREATE INDEX insurance_policies_patient ON insurance_policies (patient_id);

-- A payment (positive) or a refund (negative, with a reason) against an invoice, on the
-- clinic-local `day` of this PC's till. Once the day is closed (`close_id`) it is kept as is.
CREATE TABLE payments (
    id           TEXT PRIMARY KEY NOT NULL,
    invoice_id   TEXT NOT NULL REFERENCES invoices (id),
    receipt_no   TEXT NOT NULL UNIQUE,
    method       TEXT NOT NULL CHECK (method IN ('cash', 'card', 'mobile', 'bank_transfer', 'insurance')),
    amount       INTEGER NOT NULL CHECK (amount <> 0),
    tendered     INTEGER,
    change_due   INTEGER,
    reason       TEXT NOT NULL DEFAULT '',
    day          TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    close_id     TEXT,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    CHECK (amount > 0 OR length(reason) > 0)
) STRICT;
CREATE INDEX payments_invoice ON payments (invoice_id);
CREATE INDEX payments_day ON payments (device_id, day);

CREATE TRIGGER payments_closed_kept BEFORE UPDATE ON payments
WHEN OLD.close_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a closed day''s payments are kept as they are');
END;
CREATE TRIGGER payments_not_deleted BEFORE DELETE ON payments
BEGIN
    SELECT RAISE(ABORT, 'payments are never deleted: a refund corrects one');
END;

CREATE TABLE claims (
    id               TEXT PRIMARY KEY NOT NULL,
    invoice_id       TEXT NOT NULL UNIQUE REFERENCES invoices (id),
    policy_id        TEXT NOT NULL REFERENCES insurance_policies (id),
    status           TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'partly_approved', 'rejected', 'paid')),
    claimed          INTEGER NOT NULL CHECK (claimed > 0),
    approved         INTEGER CHECK (approved >= 0),
    paid             INTEGER CHECK (paid >= 0),
    note             TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;
CREATE INDEX claims_status ON claims (status);

-- The cashier's end of day on one PC: payments by method, expected and counted cash, and the
-- audit trail's head at the close (printed, to anchor the trail outside the PC).
CREATE TABLE daily_closes (
    id              TEXT PRIMARY KEY NOT NULL,
    day             TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    by_method       TEXT NOT NULL CHECK (json_valid(by_method)),
    expected_cash   INTEGER NOT NULL,
    counted         TEXT NOT NULL CHECK (json_valid(counted)),
    counted_cash    INTEGER NOT NULL,
    difference      INTEGER NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    payments        INTEGER NOT NULL,
    audit_seq       INTEGER NOT NULL,
    audit_hash      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    UNIQUE (device_id, day),
    CHECK (difference = 0 OR length(note) > 0)
) STRICT;
CREATE TRIGGER daily_closes_kept BEFORE UPDATE ON daily_closes
BEGIN
    SELECT RAISE(ABORT, 'a daily close is kept as closed');
END;
CREATE TRIGGER daily_closes_not_deleted BEFORE DELETE ON daily_closes
BEGIN
    SELECT RAISE(ABORT, 'a daily close is kept as closed');
END;
