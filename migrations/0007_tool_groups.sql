-- 0007: the process group of every tool an operation has running, recorded when the tool starts
-- and removed when it ends, so that the process taking over the operation of a dead owner can
-- stop what that owner's tools left running (exec::group says who may be signalled).

CREATE TABLE tool_groups (
    id           INTEGER PRIMARY KEY,
    operation_id INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    -- The group's id, its leader's pid.
    pgid         INTEGER NOT NULL,
    -- The leader's start time in clock ticks since boot (/proc/<pid>/stat, field 22).
    leader_start INTEGER NOT NULL,
    -- The value of FORMWORK_TOOL every process of the run inherits.
    mark         TEXT    NOT NULL,
    created_time INTEGER NOT NULL
);
CREATE INDEX tool_groups_operation ON tool_groups (operation_id);
