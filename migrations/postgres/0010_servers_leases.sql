-- 0010 for PostgreSQL: servers and their leases, operation epochs, as
-- ../0010_servers_leases.sql.

CREATE TABLE servers (
    -- The owner token its operations carry (`owner_token`).
    id             TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            BIGINT  NOT NULL,
    -- `all`, `api`, `worker` (`formwork serve --role`), or `cli` (a command running operations).
    role           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    -- Where it answers (its `listen` address); empty for a command.
    address        TEXT    NOT NULL,
    started_time   BIGINT  NOT NULL,
    heartbeat_time BIGINT  NOT NULL,
    lease_expires  BIGINT  NOT NULL
);

ALTER TABLE operations ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
