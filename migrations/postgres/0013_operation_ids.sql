-- 0013 for PostgreSQL: operation ids kept in `id_sequence` too, as ../0013_operation_ids.sql
-- (an identity column never hands an id out again, but every insert takes the next id from
-- `id_sequence` on both backends, and a database copied from SQLite starts from its ids).
ALTER TABLE id_sequence DROP CONSTRAINT id_sequence_tbl_check;
ALTER TABLE id_sequence ADD CONSTRAINT id_sequence_tbl_check CHECK (tbl IN ('providers', 'provisions', 'operations'));
INSERT INTO id_sequence (tbl, last_id) SELECT 'operations', coalesce(max(id), 0) FROM operations;
CREATE TRIGGER operations_id_sequence AFTER INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION id_sequence_keep();
