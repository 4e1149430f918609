-- 0006 for PostgreSQL: as ../0006_bound_seals.sql.

ALTER TABLE sealing ADD COLUMN bound BIGINT NOT NULL DEFAULT 1 CHECK (bound IN (0, 1));
UPDATE sealing SET bound = 0, resealed = 0;
