-- 0002: what `formwork serve` needs. Providers and provisions get OpenNebula's owner, group and
-- permission bits (rows made before are oneadmin's, 600 as OpenNebula's default umask gives);
-- operations may wait in the server's queue; provision bodies carry `cloud_provider` (the
-- driver folder's name) and `version` (the driver's version, which the provider recorded from
-- driver.conf), the two attributes OneForm documents but never wrote.

ALTER TABLE providers ADD COLUMN uid   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN gid   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN uname TEXT    NOT NULL DEFAULT 'oneadmin';
ALTER TABLE providers ADD COLUMN gname TEXT    NOT NULL DEFAULT 'oneadmin';
ALTER TABLE providers ADD COLUMN mode  INTEGER NOT NULL DEFAULT 384 CHECK (mode BETWEEN 0 AND 511);

ALTER TABLE provisions ADD COLUMN uid   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisions ADD COLUMN gid   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE provisions ADD COLUMN uname TEXT    NOT NULL DEFAULT 'oneadmin';
ALTER TABLE provisions ADD COLUMN gname TEXT    NOT NULL DEFAULT 'oneadmin';
ALTER TABLE provisions ADD COLUMN mode  INTEGER NOT NULL DEFAULT 384 CHECK (mode BETWEEN 0 AND 511);

-- 1 while a running operation (it holds the provision's lock) waits for one of the server's
-- `max_operations` slots; the queue is these rows in id order.
ALTER TABLE operations ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;

UPDATE provisions
SET body = json_set(
    body,
    '$.cloud_provider', driver,
    '$.version', (SELECT json_extract(p.body, '$.version') FROM providers p WHERE p.id = provisions.provider_id)
)
WHERE json_extract(body, '$.cloud_provider') IS NULL;
