-- 0006: sealed values bound to their row. A body's sealed value was bound to its input's name
-- only (`v1`), so one copied into another provider's or provision's row opened there; it is now
-- bound to its table, row id and input (`v2`, see src/secrets). `bound` says whether the step
-- that binds the older seals has ended: this marks it not done, and marks the sealing row not
-- re-sealed, so the open that follows runs a "rotation" to the same key (src/store/secrets.rs)
-- that opens every `v1` seal with its old associated data and seals it again bound to its row,
-- in short transactions, finished by the next open if it is interrupted. Only that pass (bound
-- = 0) takes `v1` seals and clear values; after it, reads refuse them. A database with no
-- sealing row yet gets one with bound = 1 from the step that seals its clear values.

ALTER TABLE sealing ADD COLUMN bound INTEGER NOT NULL DEFAULT 1 CHECK (bound IN (0, 1));
UPDATE sealing SET bound = 0, resealed = 0;
