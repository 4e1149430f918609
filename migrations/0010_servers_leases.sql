-- 0010: several formwork processes sharing one database. Every process that works on operations
-- (`formwork serve`, and a command running one itself) has a row in `servers`, renewed while it
-- lives: its lease. Times in `servers` are the database's clock in milliseconds, so the clocks
-- of the machines the servers run on never matter. An operation whose owner has no live lease is
-- taken over by another server, which bumps the operation's `epoch`: a transition of the
-- operation is written only by the holder of the current epoch, so a server that lost its lease
-- (frozen, cut off) can never write over the work of the one that took over.

CREATE TABLE servers (
    -- The owner token its operations carry (`owner_token`).
    id             TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    -- `all`, `api`, `worker` (`formwork serve --role`), or `cli` (a command running operations).
    role           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    -- Where it answers (its `listen` address); empty for a command.
    address        TEXT    NOT NULL,
    started_time   INTEGER NOT NULL,
    heartbeat_time INTEGER NOT NULL,
    lease_expires  INTEGER NOT NULL
);

ALTER TABLE operations ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
