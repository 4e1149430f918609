-- 0013: operation ids name one operation for ever, as provider and provision ids do (0005). An
-- operation's id was SQLite's rowid: deleting a provision deleted its operations, and when the
-- newest operation went with it, the next operation got its id again. A server still holding
-- that id (the deleted provision's operation, queued behind a slot) then found another
-- provision's operation under it and ran it as the deleted provision's. `id_sequence` now keeps
-- the highest operation id ever given too, and inserts take the next one.
--
-- `id_sequence`'s CHECK lists its tables, so the table is made again (with its triggers, which
-- name it).

DROP TRIGGER providers_id_sequence;
DROP TRIGGER provisions_id_sequence;

CREATE TABLE id_sequence_0013 (
    tbl     TEXT    PRIMARY KEY CHECK (tbl IN ('providers', 'provisions', 'operations')),
    last_id INTEGER NOT NULL
);
INSERT INTO id_sequence_0013 (tbl, last_id) SELECT tbl, last_id FROM id_sequence;
DROP TABLE id_sequence;
ALTER TABLE id_sequence_0013 RENAME TO id_sequence;
INSERT INTO id_sequence (tbl, last_id) SELECT 'operations', coalesce(max(id), 0) FROM operations;

CREATE TRIGGER providers_id_sequence AFTER INSERT ON providers BEGIN
    UPDATE id_sequence SET last_id = max(last_id, NEW.id) WHERE tbl = 'providers';
END;
CREATE TRIGGER provisions_id_sequence AFTER INSERT ON provisions BEGIN
    UPDATE id_sequence SET last_id = max(last_id, NEW.id) WHERE tbl = 'provisions';
END;
CREATE TRIGGER operations_id_sequence AFTER INSERT ON operations BEGIN
    UPDATE id_sequence SET last_id = max(last_id, NEW.id) WHERE tbl = 'operations';
END;
