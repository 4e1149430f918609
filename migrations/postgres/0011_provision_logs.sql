-- 0011 for PostgreSQL: as ../0011_provision_logs.sql.

CREATE TABLE provision_logs (
    provision_id BIGINT NOT NULL REFERENCES provisions (id) ON DELETE CASCADE,
    start        BIGINT NOT NULL,
    stop         BIGINT NOT NULL,
    data         BYTEA  NOT NULL,
    time         BIGINT NOT NULL,
    PRIMARY KEY (provision_id, start)
);
