-- 0001: providers, provisions, their historic, operations (one running per provision), stage
-- attempts and Terraform state versions. Never edit this file once shipped: add 0002_….sql.

CREATE TABLE providers (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL,
    driver            TEXT    NOT NULL,
    -- OneForm's PROVIDER_BODY without `provision_ids`, which is derived from provisions.
    body              TEXT    NOT NULL,
    registration_time INTEGER NOT NULL
);
CREATE INDEX providers_driver ON providers (driver);

CREATE TABLE provisions (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL,
    driver            TEXT    NOT NULL,
    provider_id       INTEGER NOT NULL REFERENCES providers (id),
    state             INTEGER NOT NULL CHECK (state BETWEEN 0 AND 19),
    -- OneForm's PROVISION_BODY without `state`, `historic` and `tfstate`, kept in their own
    -- column and tables.
    body              TEXT    NOT NULL,
    registration_time INTEGER NOT NULL,
    updated_time      INTEGER NOT NULL
);
CREATE INDEX provisions_state ON provisions (state);
CREATE INDEX provisions_provider ON provisions (provider_id);

CREATE TABLE historic (
    id           INTEGER PRIMARY KEY,
    provision_id INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    action       TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    time         INTEGER NOT NULL
);
CREATE INDEX historic_provision ON historic (provision_id, id);

CREATE TABLE operations (
    id               INTEGER PRIMARY KEY,
    provision_id     INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    status           TEXT    NOT NULL
                     CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    -- The process working on it: its pid and a token unique to that process's life, so a
    -- reused pid is not mistaken for the owner.
    owner_pid        INTEGER NOT NULL,
    owner_token      TEXT    NOT NULL,
    heartbeat_time   INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_time     INTEGER NOT NULL,
    finished_time    INTEGER,
    error            TEXT
);
-- The per-provision lock: at most one running operation, enforced by SQLite across processes.
CREATE UNIQUE INDEX operations_one_running ON operations (provision_id) WHERE status = 'running';

CREATE TABLE stage_attempts (
    id            INTEGER PRIMARY KEY,
    operation_id  INTEGER NOT NULL REFERENCES operations (id) ON DELETE CASCADE,
    provision_id  INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    stage         TEXT    NOT NULL,
    started_time  INTEGER NOT NULL,
    finished_time INTEGER,
    outcome       TEXT CHECK (outcome IN ('succeeded', 'failed', 'cancelled', 'interrupted')),
    -- The exit status of the tool whose failure ended the stage, when one did.
    exit_status   INTEGER,
    error         TEXT,
    log_start     INTEGER NOT NULL,
    log_end       INTEGER
);
CREATE INDEX stage_attempts_provision ON stage_attempts (provision_id, id);

CREATE TABLE tfstates (
    id           INTEGER PRIMARY KEY,
    provision_id INTEGER NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    attempt_id   INTEGER REFERENCES stage_attempts (id) ON DELETE SET NULL,
    serial       INTEGER,
    state        TEXT    NOT NULL,
    saved_time   INTEGER NOT NULL
);
CREATE INDEX tfstates_provision ON tfstates (provision_id, id);
