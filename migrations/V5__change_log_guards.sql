-- The change log is append-only in both directions: V1 refused UPDATE; DELETE is refused
-- too, so no change a device made can vanish before sync has pushed it.
--
-- (device_id, seq) is unique without an index of its own: the log holds only this device's
-- changes (the write path writes them; changes pulled from other devices are kept apart),
-- and seq is its INTEGER PRIMARY KEY. A unique index on the pair was measured: it added
-- about 10 µs to every audited write and pushed the audit overhead past its 2× budget, for
-- a guarantee the primary key already gives.
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
