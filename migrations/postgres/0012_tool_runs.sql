-- 0012 for PostgreSQL: Terraform runs whose state may not be in the database yet, as
-- ../0012_tool_runs.sql.
CREATE TABLE tool_runs (
    provision_id BIGINT  PRIMARY KEY,
    operation_id BIGINT  NOT NULL,
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
    started_time BIGINT  NOT NULL
);
