-- 0005: what the server promises. An operation row holds everything needed to start it: its
-- parameters already, now also the event that begins it (`event`, the engine's JSON form), so a
-- queued operation whose server stopped is started from the beginning by the next server.
-- Rows written before hold no event; a create's is known (`created`).
--
-- Ids name one object for ever, as OpenNebula's document ids do: `id_sequence` keeps the highest
-- id ever given to a provider or provision (triggers keep it on every insert) and inserts take
-- the next one, so a delete never frees an id. Existing ids are kept.
--
-- A provision's `revision` counts the writes of its body (a trigger on every body update), so
-- an update computed from one revision is refused when a stage checkpointed meanwhile instead
-- of writing over it.

ALTER TABLE operations ADD COLUMN event TEXT;
UPDATE operations SET event = '{"event":"created"}' WHERE kind = 'create';

CREATE TABLE id_sequence (
    tbl     TEXT    PRIMARY KEY CHECK (tbl IN ('providers', 'provisions')),
    last_id INTEGER NOT NULL
);
INSERT INTO id_sequence (tbl, last_id) SELECT 'providers', coalesce(max(id), 0) FROM providers;
INSERT INTO id_sequence (tbl, last_id) SELECT 'provisions', coalesce(max(id), 0) FROM provisions;

CREATE TRIGGER providers_id_sequence AFTER INSERT ON providers BEGIN
    UPDATE id_sequence SET last_id = max(last_id, NEW.id) WHERE tbl = 'providers';
END;
CREATE TRIGGER provisions_id_sequence AFTER INSERT ON provisions BEGIN
    UPDATE id_sequence SET last_id = max(last_id, NEW.id) WHERE tbl = 'provisions';
END;

ALTER TABLE provisions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER provisions_revision AFTER UPDATE OF body ON provisions BEGIN
    UPDATE provisions SET revision = OLD.revision + 1 WHERE id = NEW.id;
END;
