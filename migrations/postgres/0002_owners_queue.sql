-- 0002 for PostgreSQL: owners, permission bits and the queue flag, as ../0002_owners_queue.sql.
-- Its update of existing bodies is left out: a PostgreSQL database starts empty at schema 1, and
-- rows only come into it from this formwork or from `formwork store copy` of a database already
-- at the current schema.

ALTER TABLE providers ADD COLUMN uid   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN gid   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN uname TEXT   NOT NULL DEFAULT 'oneadmin';
ALTER TABLE providers ADD COLUMN gname TEXT   NOT NULL DEFAULT 'oneadmin';
ALTER TABLE providers ADD COLUMN mode  BIGINT NOT NULL DEFAULT 384 CHECK (mode BETWEEN 0 AND 511);

ALTER TABLE provisions ADD COLUMN uid   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provisions ADD COLUMN gid   BIGINT NOT NULL DEFAULT 0;
ALTER TABLE provisions ADD COLUMN uname TEXT   NOT NULL DEFAULT 'oneadmin';
ALTER TABLE provisions ADD COLUMN gname TEXT   NOT NULL DEFAULT 'oneadmin';
ALTER TABLE provisions ADD COLUMN mode  BIGINT NOT NULL DEFAULT 384 CHECK (mode BETWEEN 0 AND 511);

ALTER TABLE operations ADD COLUMN queued BIGINT NOT NULL DEFAULT 0;
