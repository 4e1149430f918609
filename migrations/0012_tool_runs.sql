-- 0012: Terraform runs whose state may not be in the database yet. A tool guard (several servers
-- on one database) marks its run here before the tool starts, and removes the mark only once the
-- state the tool left is saved. While a mark stands, no other tool runs for the provision: the
-- newest state (what the cloud holds) may still be only on the machine that ran the tool, cut off
-- from the database, and a run from the older stored state would create those resources again.
CREATE TABLE tool_runs (
    provision_id INTEGER PRIMARY KEY,
    operation_id INTEGER NOT NULL,
    -- The owner token of the operation when the run began: the server that ran it.
    server       TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    -- The guard process on `host`, as `pid:start` (a pid reused later is not mistaken for it).
    guard        TEXT    NOT NULL,
    -- The absolute path of the state file the tool leaves, on `host`.
    state_path   TEXT    NOT NULL,
    -- Where on `host` the guard keeps that state, sealed, from the tool's end until the end of
    -- the run is recorded: the stage's own copy goes when the stage ends.
    left_path    TEXT    NOT NULL,
    started_time INTEGER NOT NULL
);
