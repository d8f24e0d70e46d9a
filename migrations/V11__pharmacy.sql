-- The pharmacy: stock items (medications are the formulary's drugs), batches with expiry, the
-- append-only stock ledger, suppliers and purchase orders, stock counts, dispensing of signed
-- prescriptions, and the billable items dispensing leaves for billing.

-- What the pharmacy stocks. A medication is one of the formulary's drugs (`drug_id`), whose
-- ingredients and classes the prescribing checks read; consumables and equipment are not.
-- Amounts are integer minor units of `currency`, which is NULL until a price is set.
CREATE TABLE stock_items (
    id             TEXT PRIMARY KEY NOT NULL,
    drug_id        TEXT UNIQUE REFERENCES drugs (id),
    category       TEXT NOT NULL CHECK (category IN ('medication', 'consumable', 'equipment')),
    name           TEXT NOT NULL,
    generic_name   TEXT NOT NULL,
    form           TEXT NOT NULL,
    strength       TEXT NOT NULL,
    unit           TEXT NOT NULL,
    barcode        TEXT UNIQUE,
    reorder_level  INTEGER NOT NULL DEFAULT 0 CHECK (reorder_level BETWEEN 0 AND 10000000),
    cost           INTEGER NOT NULL DEFAULT 0 CHECK (cost >= 0),
    price          INTEGER NOT NULL DEFAULT 0 CHECK (price >= 0),
    currency       TEXT CHECK (currency IS NOT NULL OR (cost = 0 AND price = 0)),
    active         INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    CHECK ((category = 'medication') = (drug_id IS NOT NULL))
) STRICT;
CREATE INDEX stock_items_name ON stock_items (name COLLATE NOCASE);

-- Every drug of the starter formulary is a stock item from the start (no stock, no price).
INSERT INTO stock_items (id, drug_id, category, name, generic_name, form, strength, unit,
                         created_at, created_by, updated_at, updated_by)
SELECT 'si-' || id, id, 'medication', name, name, form, strength, form,
       created_at, created_by, updated_at, updated_by
FROM drugs;

CREATE TABLE suppliers (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone       TEXT NOT NULL DEFAULT '',
    email       TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

-- A delivered lot of an item. `on_hand` is the sum of the batch's ledger rows, kept with each
-- move in the same transaction (pharmacy::ledger::post is the only writer), and never negative.
CREATE TABLE batches (
    id           TEXT PRIMARY KEY NOT NULL,
    item_id      TEXT NOT NULL REFERENCES stock_items (id),
    lot          TEXT NOT NULL,
    -- YYYY-MM-DD: usable through this day.
    expiry       TEXT NOT NULL CHECK (expiry GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    cost         INTEGER NOT NULL CHECK (cost >= 0),
    currency     TEXT,
    supplier_id  TEXT REFERENCES suppliers (id),
    received_on  TEXT NOT NULL,
    on_hand      INTEGER NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    UNIQUE (item_id, lot)
) STRICT;
CREATE INDEX batches_fefo ON batches (item_id, expiry);
CREATE INDEX batches_lot ON batches (lot);
CREATE INDEX batches_on_shelf ON batches (expiry) WHERE on_hand > 0;

-- The stock ledger: every move of stock, never changed or removed. `quantity` is signed;
-- `balance` is the batch's on-hand after the move.
CREATE TABLE stock_moves (
    id         TEXT PRIMARY KEY NOT NULL,
    batch_id   TEXT NOT NULL REFERENCES batches (id),
    item_id    TEXT NOT NULL REFERENCES stock_items (id),
    kind       TEXT NOT NULL CHECK (kind IN ('received', 'dispensed', 'adjusted', 'expired',
                                             'destroyed', 'returned_to_supplier',
                                             'returned_by_patient')),
    quantity   INTEGER NOT NULL CHECK (quantity <> 0),
    balance    INTEGER NOT NULL CHECK (balance >= 0),
    reason     TEXT NOT NULL DEFAULT '',
    -- What caused it: a purchase order line, a dispensing, a stock count.
    ref_table  TEXT,
    ref_id     TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    CHECK (CASE kind
             WHEN 'received' THEN quantity > 0
             WHEN 'returned_by_patient' THEN quantity > 0
             WHEN 'adjusted' THEN length(reason) > 0
             ELSE quantity < 0
           END)
) STRICT;
CREATE INDEX stock_moves_batch ON stock_moves (batch_id, created_at);
CREATE INDEX stock_moves_item ON stock_moves (item_id, created_at);

CREATE TRIGGER stock_moves_not_updated BEFORE UPDATE ON stock_moves
BEGIN
    SELECT RAISE(ABORT, 'the stock ledger is append-only');
END;
CREATE TRIGGER stock_moves_not_deleted BEFORE DELETE ON stock_moves
BEGIN
    SELECT RAISE(ABORT, 'the stock ledger is append-only');
END;

CREATE TABLE purchase_orders (
    id           TEXT PRIMARY KEY NOT NULL,
    number       TEXT NOT NULL UNIQUE,
    supplier_id  TEXT NOT NULL REFERENCES suppliers (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'partial', 'received', 'cancelled')),
    ordered_on   TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
) STRICT;
CREATE INDEX purchase_orders_status ON purchase_orders (status, ordered_on);

CREATE TABLE purchase_order_lines (
    id          TEXT PRIMARY KEY NOT NULL,
    order_id    TEXT NOT NULL REFERENCES purchase_orders (id),
    item_id     TEXT NOT NULL REFERENCES stock_items (id),
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10000000),
    received    INTEGER NOT NULL DEFAULT 0 CHECK (received BETWEEN 0 AND quantity),
    cost        INTEGER NOT NULL CHECK (cost >= 0),
    currency    TEXT,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
CREATE INDEX purchase_order_lines_order ON purchase_order_lines (order_id);

-- A stock count: counted against expected per batch; differences became `adjusted` moves.
CREATE TABLE stock_counts (
    id          TEXT PRIMARY KEY NOT NULL,
    note        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
CREATE TABLE stock_count_lines (
    id          TEXT PRIMARY KEY NOT NULL,
    count_id    TEXT NOT NULL REFERENCES stock_counts (id),
    batch_id    TEXT NOT NULL REFERENCES batches (id),
    expected    INTEGER NOT NULL CHECK (expected >= 0),
    counted     INTEGER NOT NULL CHECK (counted >= 0),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;
CREATE INDEX stock_count_lines_count ON stock_count_lines (count_id);

-- What was handed over against a signed prescription's item: from which batch, how many,
-- and whether an equivalent generic was given instead (`substituted`) or a batch other than
-- the first to expire was chosen (`reason` says why).
CREATE TABLE dispensings (
    id                    TEXT PRIMARY KEY NOT NULL,
    prescription_id       TEXT NOT NULL REFERENCES prescriptions (id),
    prescription_item_id  TEXT NOT NULL REFERENCES prescription_items (id),
    item_id               TEXT NOT NULL REFERENCES stock_items (id),
    batch_id              TEXT NOT NULL REFERENCES batches (id),
    quantity              INTEGER NOT NULL CHECK (quantity > 0),
    substituted           INTEGER NOT NULL CHECK (substituted IN (0, 1)),
    batch_overridden      INTEGER NOT NULL CHECK (batch_overridden IN (0, 1)),
    reason                TEXT NOT NULL DEFAULT '',
    created_at            TEXT NOT NULL,
    created_by            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    updated_by            TEXT NOT NULL,
    CHECK ((substituted = 0 AND batch_overridden = 0) OR length(reason) > 0)
) STRICT;
CREATE INDEX dispensings_prescription ON dispensings (prescription_id);
CREATE INDEX dispensings_item ON dispensings (prescription_item_id);

-- Where a signed prescription stands at the pharmacy; no row means nothing dispensed yet.
CREATE TABLE prescription_fills (
    id               TEXT PRIMARY KEY NOT NULL,
    prescription_id  TEXT NOT NULL UNIQUE REFERENCES prescriptions (id),
    status           TEXT NOT NULL CHECK (status IN ('partial', 'done')),
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;

-- Charges waiting for the visit's invoice (billing takes them; until it exists they wait).
CREATE TABLE billable_items (
    id            TEXT PRIMARY KEY NOT NULL,
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    encounter_id  TEXT REFERENCES encounters (id),
    source_table  TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    description   TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    unit_price    INTEGER NOT NULL CHECK (unit_price >= 0),
    currency      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'invoiced', 'void')),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX billable_items_pending ON billable_items (patient_id, status);
