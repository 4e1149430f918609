-- 0009: every operation runs on one snapshot of its driver (the driver folder and formwork's
-- shared Ansible roles, as they were when the operation started), so an upgrade or an admin's
-- edit of a driver folder mid-operation cannot give one operation the Terraform of one version
-- and the playbook of another. Snapshots are content-addressed (`digest`: SHA-256 over every
-- file's path, mode and bytes) and kept in the database, so any process can rebuild one on disk.
-- `operations.driver_digest` names the snapshot an operation runs on; NULL until it starts (and
-- for the rows an older formwork wrote).

CREATE TABLE driver_snapshots (
    digest       TEXT    PRIMARY KEY,
    driver       TEXT    NOT NULL,
    version      TEXT    NOT NULL,
    -- The files, as a JSON array of [path, mode, base64 bytes], sorted by path.
    files        TEXT    NOT NULL,
    created_time INTEGER NOT NULL
);

ALTER TABLE operations ADD COLUMN driver_digest TEXT REFERENCES driver_snapshots (digest);

-- What formwork last opened this database (`formwork <version> (schema <n>)`): the first start
-- of another one puts away the clear files an older one left in idle work directories.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
