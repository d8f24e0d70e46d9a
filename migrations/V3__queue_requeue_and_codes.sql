-- A ticket sent back to waiting ("not here") queues again behind those already waiting,
-- and goes back to whoever the patient came for: the doctor of their appointment or the
-- one chosen at check-in, or the whole department.
ALTER TABLE queue_tickets ADD COLUMN requeued_at TEXT;
ALTER TABLE queue_tickets ADD COLUMN asked_doctor_id TEXT REFERENCES doctors (id);
UPDATE queue_tickets SET asked_doctor_id = doctor_id WHERE appointment_id IS NOT NULL;

-- Tickets are numbered and called by the department's letter: two departments may not share one.
CREATE UNIQUE INDEX specializations_queue_code ON specializations (queue_code);
