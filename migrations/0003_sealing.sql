-- 0003: secrets at rest. The values of sensitive inputs in provider and provision bodies are
-- sealed (`{"$sealed": "v1:<key id>:…"}`, see src/secrets). This one row names the key new values
-- are sealed with (its id only: the key itself is kept apart from the database) and whether
-- every sealed value is under it (0 while a rotation is half done). The values written before
-- this migration are sealed by the step that follows the SQL migrations (src/store/secrets.rs),
-- in the same transaction, which also writes this row.

CREATE TABLE sealing (
    only     INTEGER PRIMARY KEY CHECK (only = 1),
    key_id   TEXT    NOT NULL,
    resealed INTEGER NOT NULL CHECK (resealed IN (0, 1))
);
