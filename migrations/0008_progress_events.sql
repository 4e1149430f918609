-- 0008: the progress of operations as typed events (a state change, a step, a warning, a
-- failure), written as the operation runs, so any API client follows an operation by data
-- rather than by reading its log's English. `data` holds the event's JSON (its `type` and
-- fields); `id` orders a provision's events and is the cursor clients poll from.

CREATE TABLE progress_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    provision_id INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    -- The operation that was running when the event was written (none outside one).
    operation_id INTEGER REFERENCES operations (id) ON DELETE CASCADE,
    time         INTEGER NOT NULL,
    data         TEXT    NOT NULL
);
CREATE INDEX progress_events_provision ON progress_events (provision_id, id);
CREATE INDEX progress_events_operation ON progress_events (operation_id, id);
