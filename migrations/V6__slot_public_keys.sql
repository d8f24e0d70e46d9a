-- Re-keying seals the new database key to the public keys recorded here, in the encrypted and
-- audited database, never to whatever the slot file lists: a key pair planted in the slot file
-- (which anyone who can write to the folder can edit) receives nothing. Each account's key is
-- recorded with the change that made its slot; the recovery key's with set-up or a new
-- recovery key. Accounts from before are recorded at their next sign-in.
ALTER TABLE staff ADD COLUMN slot_public_key TEXT;
ALTER TABLE device ADD COLUMN recovery_public_key TEXT;
