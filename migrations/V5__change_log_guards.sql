-- The change log is append-only in both directions: V1 refused UPDATE; DELETE is refused
-- too, so no change a device made can vanish before sync has pushed it. And (device_id, seq)
-- is unique by index, not only because seq is this database's row key: the invariant the
-- sync server inserts on must hold in the file itself.
CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
CREATE UNIQUE INDEX change_log_device_seq ON change_log (device_id, seq);
