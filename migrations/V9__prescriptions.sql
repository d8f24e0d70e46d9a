-- Prescriptions, and the formulary they prescribe from (the pharmacy's catalogue builds on it).

-- Drugs that can be prescribed by name. `ingredients`, `classes` and `tags` are JSON arrays of
-- snake_case keys: the allergy, interaction and duplicate-therapy checks read them (see
-- assets/formulary/README.md). Seeded below with the starter set; clinics add their own.
CREATE TABLE drugs (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    form         TEXT NOT NULL,
    strength     TEXT NOT NULL,
    route        TEXT NOT NULL,
    ingredients  TEXT NOT NULL CHECK (json_valid(ingredients) AND json_type(ingredients) = 'array'),
    classes      TEXT NOT NULL CHECK (json_valid(classes) AND json_type(classes) = 'array'),
    tags         TEXT NOT NULL CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL
) STRICT;
CREATE INDEX drugs_name ON drugs (name COLLATE NOCASE);

CREATE TABLE prescriptions (
    id            TEXT PRIMARY KEY NOT NULL,
    encounter_id  TEXT NOT NULL REFERENCES encounters (id),
    patient_id    TEXT NOT NULL REFERENCES patients (id),
    doctor_id     TEXT NOT NULL REFERENCES doctors (id),
    status        TEXT NOT NULL CHECK (status IN ('draft', 'signed', 'cancelled')),
    signed_at     TEXT,
    -- The signed prescription this one renews.
    renewed_from  TEXT REFERENCES prescriptions (id),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    updated_by    TEXT NOT NULL
) STRICT;
CREATE INDEX prescriptions_encounter ON prescriptions (encounter_id);
CREATE INDEX prescriptions_patient ON prescriptions (patient_id, created_at);
CREATE INDEX prescriptions_signed ON prescriptions (status, signed_at);

CREATE TABLE prescription_items (
    id               TEXT PRIMARY KEY NOT NULL,
    prescription_id  TEXT NOT NULL REFERENCES prescriptions (id),
    -- A formulary drug, or NULL for a free-text item (`name` then says what).
    drug_id          TEXT REFERENCES drugs (id),
    name             TEXT NOT NULL,
    strength         TEXT NOT NULL,
    dose             TEXT NOT NULL,
    route            TEXT NOT NULL,
    frequency        TEXT NOT NULL,
    duration_days    INTEGER NOT NULL CHECK (duration_days BETWEEN 1 AND 3650),
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100000),
    unit             TEXT NOT NULL,
    instructions     TEXT NOT NULL DEFAULT '',
    position         INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;
CREATE INDEX prescription_items_prescription ON prescription_items (prescription_id, position);

-- The warnings a doctor acknowledged when signing, each with the reason given.
CREATE TABLE prescription_overrides (
    id               TEXT PRIMARY KEY NOT NULL,
    prescription_id  TEXT NOT NULL REFERENCES prescriptions (id),
    kind             TEXT NOT NULL CHECK (kind IN ('allergy', 'interaction', 'duplicate')),
    severity         TEXT NOT NULL,
    -- What the warning was about, as shown ("Amoxicillin / Penicillin").
    subject          TEXT NOT NULL,
    reason           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    updated_by       TEXT NOT NULL
) STRICT;
CREATE INDEX prescription_overrides_prescription ON prescription_overrides (prescription_id);

-- Signed prescriptions and their items are kept as signed.
CREATE TRIGGER prescriptions_signed_kept BEFORE UPDATE ON prescriptions
WHEN OLD.status = 'signed' AND NEW.status <> 'cancelled'
BEGIN
    SELECT RAISE(ABORT, 'a signed prescription is read-only');
END;
CREATE TRIGGER prescription_items_signed_kept BEFORE UPDATE ON prescription_items
WHEN (SELECT status FROM prescriptions WHERE id = OLD.prescription_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'a signed prescription is read-only');
END;
CREATE TRIGGER prescription_items_signed_not_deleted BEFORE DELETE ON prescription_items
WHEN (SELECT status FROM prescriptions WHERE id = OLD.prescription_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'a signed prescription is read-only');
END;

-- The starter formulary.
INSERT INTO drugs (id, name, form, strength, route, ingredients, classes, tags, created_at, created_by, updated_at, updated_by)
SELECT column1, column2, column3, column4, column5, column6, column7, column8,
       '2026-11-23T00:00:00.000000Z', 'starter-formulary', '2026-11-23T00:00:00.000000Z', 'starter-formulary'
FROM (VALUES
    ('drug-amoxicillin-500-mg', 'Amoxicillin', 'capsule', '500 mg', 'oral', '["amoxicillin"]', '["penicillins", "beta_lactams"]', '[]'),
    ('drug-amoxicillin-and-clavulanic-acid-875-mg-125-mg', 'Amoxicillin and clavulanic acid', 'tablet', '875 mg/125 mg', 'oral', '["amoxicillin", "clavulanic_acid"]', '["penicillins", "beta_lactams"]', '[]'),
    ('drug-phenoxymethylpenicillin-250-mg', 'Phenoxymethylpenicillin', 'tablet', '250 mg', 'oral', '["phenoxymethylpenicillin"]', '["penicillins", "beta_lactams"]', '[]'),
    ('drug-cloxacillin-500-mg', 'Cloxacillin', 'capsule', '500 mg', 'oral', '["cloxacillin"]', '["penicillins", "beta_lactams"]', '[]'),
    ('drug-cefalexin-500-mg', 'Cefalexin', 'capsule', '500 mg', 'oral', '["cefalexin"]', '["cephalosporins", "beta_lactams"]', '[]'),
    ('drug-ceftriaxone-1-g', 'Ceftriaxone', 'injection', '1 g', 'intramuscular', '["ceftriaxone"]', '["cephalosporins", "beta_lactams"]', '[]'),
    ('drug-azithromycin-500-mg', 'Azithromycin', 'tablet', '500 mg', 'oral', '["azithromycin"]', '["macrolides"]', '["qt_prolonging"]'),
    ('drug-clarithromycin-500-mg', 'Clarithromycin', 'tablet', '500 mg', 'oral', '["clarithromycin"]', '["macrolides"]', '["qt_prolonging", "cyp3a4_strong_inhibitor"]'),
    ('drug-erythromycin-250-mg', 'Erythromycin', 'tablet', '250 mg', 'oral', '["erythromycin"]', '["macrolides"]', '["qt_prolonging"]'),
    ('drug-doxycycline-100-mg', 'Doxycycline', 'capsule', '100 mg', 'oral', '["doxycycline"]', '["tetracyclines"]', '[]'),
    ('drug-ciprofloxacin-500-mg', 'Ciprofloxacin', 'tablet', '500 mg', 'oral', '["ciprofloxacin"]', '["fluoroquinolones"]', '["qt_prolonging", "cyp1a2_inhibitor"]'),
    ('drug-levofloxacin-500-mg', 'Levofloxacin', 'tablet', '500 mg', 'oral', '["levofloxacin"]', '["fluoroquinolones"]', '["qt_prolonging"]'),
    ('drug-sulfamethoxazole-and-trimethoprim-800-mg-160-mg', 'Sulfamethoxazole and trimethoprim', 'tablet', '800 mg/160 mg', 'oral', '["sulfamethoxazole", "trimethoprim"]', '["sulfonamides"]', '[]'),
    ('drug-metronidazole-400-mg', 'Metronidazole', 'tablet', '400 mg', 'oral', '["metronidazole"]', '["nitroimidazoles"]', '[]'),
    ('drug-nitrofurantoin-100-mg', 'Nitrofurantoin', 'capsule', '100 mg', 'oral', '["nitrofurantoin"]', '["nitrofurans"]', '[]'),
    ('drug-fluconazole-150-mg', 'Fluconazole', 'capsule', '150 mg', 'oral', '["fluconazole"]', '["azole_antifungals"]', '["qt_prolonging"]'),
    ('drug-ketoconazole-200-mg', 'Ketoconazole', 'tablet', '200 mg', 'oral', '["ketoconazole"]', '["azole_antifungals"]', '["qt_prolonging", "cyp3a4_strong_inhibitor"]'),
    ('drug-itraconazole-100-mg', 'Itraconazole', 'capsule', '100 mg', 'oral', '["itraconazole"]', '["azole_antifungals"]', '["cyp3a4_strong_inhibitor"]'),
    ('drug-ritonavir-100-mg', 'Ritonavir', 'tablet', '100 mg', 'oral', '["ritonavir"]', '["protease_inhibitors"]', '["cyp3a4_strong_inhibitor"]'),
    ('drug-paracetamol-500-mg', 'Paracetamol', 'tablet', '500 mg', 'oral', '["paracetamol"]', '["analgesics"]', '[]'),
    ('drug-ibuprofen-400-mg', 'Ibuprofen', 'tablet', '400 mg', 'oral', '["ibuprofen"]', '["nsaids"]', '[]'),
    ('drug-naproxen-250-mg', 'Naproxen', 'tablet', '250 mg', 'oral', '["naproxen"]', '["nsaids"]', '[]'),
    ('drug-diclofenac-50-mg', 'Diclofenac', 'tablet', '50 mg', 'oral', '["diclofenac"]', '["nsaids"]', '[]'),
    ('drug-celecoxib-200-mg', 'Celecoxib', 'capsule', '200 mg', 'oral', '["celecoxib"]', '["nsaids"]', '[]'),
    ('drug-aspirin-81-mg', 'Aspirin', 'tablet', '81 mg', 'oral', '["acetylsalicylic_acid"]', '["antiplatelets", "salicylates"]', '[]'),
    ('drug-tramadol-50-mg', 'Tramadol', 'capsule', '50 mg', 'oral', '["tramadol"]', '["opioids"]', '["serotonergic"]'),
    ('drug-codeine-30-mg', 'Codeine', 'tablet', '30 mg', 'oral', '["codeine"]', '["opioids"]', '[]'),
    ('drug-morphine-10-mg', 'Morphine', 'tablet', '10 mg', 'oral', '["morphine"]', '["opioids"]', '[]'),
    ('drug-pethidine-50-mg', 'Pethidine', 'injection', '50 mg', 'intramuscular', '["pethidine"]', '["opioids"]', '["serotonergic"]'),
    ('drug-sumatriptan-50-mg', 'Sumatriptan', 'tablet', '50 mg', 'oral', '["sumatriptan"]', '["triptans"]', '[]'),
    ('drug-fluoxetine-20-mg', 'Fluoxetine', 'capsule', '20 mg', 'oral', '["fluoxetine"]', '["ssris"]', '[]'),
    ('drug-sertraline-50-mg', 'Sertraline', 'tablet', '50 mg', 'oral', '["sertraline"]', '["ssris"]', '[]'),
    ('drug-citalopram-20-mg', 'Citalopram', 'tablet', '20 mg', 'oral', '["citalopram"]', '["ssris"]', '["qt_prolonging"]'),
    ('drug-escitalopram-10-mg', 'Escitalopram', 'tablet', '10 mg', 'oral', '["escitalopram"]', '["ssris"]', '["qt_prolonging"]'),
    ('drug-fluvoxamine-100-mg', 'Fluvoxamine', 'tablet', '100 mg', 'oral', '["fluvoxamine"]', '["ssris"]', '["cyp1a2_inhibitor"]'),
    ('drug-venlafaxine-75-mg', 'Venlafaxine', 'capsule', '75 mg', 'oral', '["venlafaxine"]', '["snris"]', '[]'),
    ('drug-amitriptyline-25-mg', 'Amitriptyline', 'tablet', '25 mg', 'oral', '["amitriptyline"]', '["tricyclics"]', '["qt_prolonging"]'),
    ('drug-phenelzine-15-mg', 'Phenelzine', 'tablet', '15 mg', 'oral', '["phenelzine"]', '["maois"]', '[]'),
    ('drug-moclobemide-150-mg', 'Moclobemide', 'tablet', '150 mg', 'oral', '["moclobemide"]', '["maois"]', '[]'),
    ('drug-selegiline-5-mg', 'Selegiline', 'tablet', '5 mg', 'oral', '["selegiline"]', '["maois"]', '[]'),
    ('drug-dexamfetamine-5-mg', 'Dexamfetamine', 'tablet', '5 mg', 'oral', '["dexamfetamine"]', '["amphetamines"]', '[]'),
    ('drug-simvastatin-20-mg', 'Simvastatin', 'tablet', '20 mg', 'oral', '["simvastatin"]', '["statins"]', '["statin_cyp3a4"]'),
    ('drug-lovastatin-20-mg', 'Lovastatin', 'tablet', '20 mg', 'oral', '["lovastatin"]', '["statins"]', '["statin_cyp3a4"]'),
    ('drug-atorvastatin-20-mg', 'Atorvastatin', 'tablet', '20 mg', 'oral', '["atorvastatin"]', '["statins"]', '[]'),
    ('drug-rosuvastatin-10-mg', 'Rosuvastatin', 'tablet', '10 mg', 'oral', '["rosuvastatin"]', '["statins"]', '[]'),
    ('drug-amlodipine-5-mg', 'Amlodipine', 'tablet', '5 mg', 'oral', '["amlodipine"]', '["calcium_channel_blockers"]', '[]'),
    ('drug-enalapril-10-mg', 'Enalapril', 'tablet', '10 mg', 'oral', '["enalapril"]', '["ace_inhibitors"]', '[]'),
    ('drug-lisinopril-10-mg', 'Lisinopril', 'tablet', '10 mg', 'oral', '["lisinopril"]', '["ace_inhibitors"]', '[]'),
    ('drug-losartan-50-mg', 'Losartan', 'tablet', '50 mg', 'oral', '["losartan"]', '["angiotensin_receptor_blockers"]', '[]'),
    ('drug-spironolactone-25-mg', 'Spironolactone', 'tablet', '25 mg', 'oral', '["spironolactone"]', '["potassium_sparing_diuretics"]', '[]'),
    ('drug-hydrochlorothiazide-25-mg', 'Hydrochlorothiazide', 'tablet', '25 mg', 'oral', '["hydrochlorothiazide"]', '["thiazide_diuretics"]', '[]'),
    ('drug-furosemide-40-mg', 'Furosemide', 'tablet', '40 mg', 'oral', '["furosemide"]', '["loop_diuretics"]', '[]'),
    ('drug-metoprolol-50-mg', 'Metoprolol', 'tablet', '50 mg', 'oral', '["metoprolol"]', '["beta_blockers"]', '[]'),
    ('drug-atenolol-50-mg', 'Atenolol', 'tablet', '50 mg', 'oral', '["atenolol"]', '["beta_blockers"]', '[]'),
    ('drug-warfarin-5-mg', 'Warfarin', 'tablet', '5 mg', 'oral', '["warfarin"]', '["anticoagulants"]', '[]'),
    ('drug-clopidogrel-75-mg', 'Clopidogrel', 'tablet', '75 mg', 'oral', '["clopidogrel"]', '["antiplatelets"]', '[]'),
    ('drug-omeprazole-20-mg', 'Omeprazole', 'capsule', '20 mg', 'oral', '["omeprazole"]', '["proton_pump_inhibitors"]', '[]'),
    ('drug-pantoprazole-40-mg', 'Pantoprazole', 'tablet', '40 mg', 'oral', '["pantoprazole"]', '["proton_pump_inhibitors"]', '[]'),
    ('drug-metformin-500-mg', 'Metformin', 'tablet', '500 mg', 'oral', '["metformin"]', '["biguanides"]', '[]'),
    ('drug-glibenclamide-5-mg', 'Glibenclamide', 'tablet', '5 mg', 'oral', '["glibenclamide"]', '["sulfonylureas"]', '[]'),
    ('drug-salbutamol-100-mcg-dose', 'Salbutamol', 'inhaler', '100 mcg/dose', 'inhaled', '["salbutamol"]', '["beta2_agonists"]', '[]'),
    ('drug-prednisolone-5-mg', 'Prednisolone', 'tablet', '5 mg', 'oral', '["prednisolone"]', '["corticosteroids"]', '[]'),
    ('drug-cetirizine-10-mg', 'Cetirizine', 'tablet', '10 mg', 'oral', '["cetirizine"]', '["antihistamines"]', '[]'),
    ('drug-loratadine-10-mg', 'Loratadine', 'tablet', '10 mg', 'oral', '["loratadine"]', '["antihistamines"]', '[]'),
    ('drug-chlorphenamine-4-mg', 'Chlorphenamine', 'tablet', '4 mg', 'oral', '["chlorphenamine"]', '["antihistamines"]', '[]'),
    ('drug-ondansetron-4-mg', 'Ondansetron', 'tablet', '4 mg', 'oral', '["ondansetron"]', '["antiemetics"]', '["qt_prolonging"]'),
    ('drug-domperidone-10-mg', 'Domperidone', 'tablet', '10 mg', 'oral', '["domperidone"]', '["antiemetics"]', '["qt_prolonging"]'),
    ('drug-haloperidol-5-mg', 'Haloperidol', 'tablet', '5 mg', 'oral', '["haloperidol"]', '["antipsychotics"]', '["qt_prolonging"]'),
    ('drug-amiodarone-200-mg', 'Amiodarone', 'tablet', '200 mg', 'oral', '["amiodarone"]', '["antiarrhythmics"]', '["qt_prolonging"]'),
    ('drug-digoxin-0-25-mg', 'Digoxin', 'tablet', '0.25 mg', 'oral', '["digoxin"]', '["cardiac_glycosides"]', '[]'),
    ('drug-tizanidine-4-mg', 'Tizanidine', 'tablet', '4 mg', 'oral', '["tizanidine"]', '["muscle_relaxants"]', '[]'),
    ('drug-diazepam-5-mg', 'Diazepam', 'tablet', '5 mg', 'oral', '["diazepam"]', '["benzodiazepines"]', '[]'),
    ('drug-lorazepam-1-mg', 'Lorazepam', 'tablet', '1 mg', 'oral', '["lorazepam"]', '["benzodiazepines"]', '[]'),
    ('drug-lithium-carbonate-300-mg', 'Lithium carbonate', 'tablet', '300 mg', 'oral', '["lithium"]', '["mood_stabilizers"]', '[]'),
    ('drug-methotrexate-2-5-mg', 'Methotrexate', 'tablet', '2.5 mg', 'oral', '["methotrexate"]', '["antimetabolites"]', '[]'),
    ('drug-colchicine-0-5-mg', 'Colchicine', 'tablet', '0.5 mg', 'oral', '["colchicine"]', '["antigout"]', '[]'),
    ('drug-allopurinol-100-mg', 'Allopurinol', 'tablet', '100 mg', 'oral', '["allopurinol"]', '["xanthine_oxidase_inhibitors"]', '[]'),
    ('drug-sildenafil-50-mg', 'Sildenafil', 'tablet', '50 mg', 'oral', '["sildenafil"]', '["pde5_inhibitors"]', '[]'),
    ('drug-isosorbide-mononitrate-20-mg', 'Isosorbide mononitrate', 'tablet', '20 mg', 'oral', '["isosorbide_mononitrate"]', '["nitrates"]', '[]'),
    ('drug-glyceryl-trinitrate-0-5-mg', 'Glyceryl trinitrate', 'tablet', '0.5 mg', 'sublingual', '["glyceryl_trinitrate"]', '["nitrates"]', '[]'),
    ('drug-levothyroxine-50-mcg', 'Levothyroxine', 'tablet', '50 mcg', 'oral', '["levothyroxine"]', '["thyroid_hormones"]', '[]'),
    ('drug-oral-rehydration-salts-20-5-g', 'Oral rehydration salts', 'sachet', '20.5 g', 'oral', '["oral_rehydration_salts"]', '["oral_rehydration"]', '[]'),
    ('drug-ferrous-sulfate-200-mg', 'Ferrous sulfate', 'tablet', '200 mg', 'oral', '["ferrous_sulfate"]', '["iron_supplements"]', '[]'),
    ('drug-folic-acid-5-mg', 'Folic acid', 'tablet', '5 mg', 'oral', '["folic_acid"]', '["vitamins"]', '[]'),
    ('drug-albendazole-400-mg', 'Albendazole', 'tablet', '400 mg', 'oral', '["albendazole"]', '["anthelmintics"]', '[]'));
