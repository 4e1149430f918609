-- 0009 for PostgreSQL: as ../0009_driver_snapshots.sql.

CREATE TABLE driver_snapshots (
    digest       TEXT   PRIMARY KEY,
    driver       TEXT   NOT NULL,
    version      TEXT   NOT NULL,
    files        TEXT   NOT NULL,
    created_time BIGINT NOT NULL
);

ALTER TABLE operations ADD COLUMN driver_digest TEXT REFERENCES driver_snapshots (digest);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
