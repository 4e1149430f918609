-- 0005 for PostgreSQL: durable requests, ids never reused and body revisions, as
-- ../0005_durable_requests.sql, with PL/pgSQL triggers.

ALTER TABLE operations ADD COLUMN event TEXT;

CREATE TABLE id_sequence (
    tbl     TEXT   PRIMARY KEY CHECK (tbl IN ('providers', 'provisions')),
    last_id BIGINT NOT NULL
);
INSERT INTO id_sequence (tbl, last_id) SELECT 'providers', coalesce(max(id), 0) FROM providers;
INSERT INTO id_sequence (tbl, last_id) SELECT 'provisions', coalesce(max(id), 0) FROM provisions;

CREATE FUNCTION id_sequence_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE id_sequence SET last_id = greatest(last_id, NEW.id) WHERE tbl = TG_TABLE_NAME;
    RETURN NULL;
END;
$$;
CREATE TRIGGER providers_id_sequence AFTER INSERT ON providers
    FOR EACH ROW EXECUTE FUNCTION id_sequence_keep();
CREATE TRIGGER provisions_id_sequence AFTER INSERT ON provisions
    FOR EACH ROW EXECUTE FUNCTION id_sequence_keep();

ALTER TABLE provisions ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE FUNCTION provisions_revision_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END;
$$;
CREATE TRIGGER provisions_revision BEFORE UPDATE OF body ON provisions
    FOR EACH ROW EXECUTE FUNCTION provisions_revision_count();
