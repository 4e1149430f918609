-- 0003 for PostgreSQL: the sealing row, as ../0003_sealing.sql.

CREATE TABLE sealing (
    "only"   BIGINT PRIMARY KEY CHECK ("only" = 1),
    key_id   TEXT   NOT NULL,
    resealed BIGINT NOT NULL CHECK (resealed IN (0, 1))
);
