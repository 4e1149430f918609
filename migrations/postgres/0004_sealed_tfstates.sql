-- 0004 for PostgreSQL: as ../0004_sealed_tfstates.sql (on a new database there is no row yet).

UPDATE sealing SET resealed = 0;
