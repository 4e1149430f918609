-- 0011: a provision's log is kept in the database, so any server answers it (and streams it
-- live) whichever server ran the operation. The log is a sequence of chunks of OneForm's log
-- lines, contiguous: a chunk starts (`start`, a byte position in the provision's log) where the
-- one before it stops (`stop`, exclusive). Positions are those a stage attempt records
-- (`stage_attempts.log_start`/`log_end`). `data` is bytes, so a position is a byte count
-- whatever a tool printed. `time` is when the chunk was written (seconds).
-- The file `<data dir>/logs/<id>.log` a server writes too is a copy for those who tail it; a
-- log written before this migration (a file only) is imported as its first chunks when the log
-- is next opened or read.

CREATE TABLE provision_logs (
    provision_id INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    start        INTEGER NOT NULL,
    stop         INTEGER NOT NULL,
    data         BLOB    NOT NULL,
    time         INTEGER NOT NULL,
    PRIMARY KEY (provision_id, start)
);
