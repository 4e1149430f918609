-- 0004: Terraform states are sealed at rest too, whole (a sensitive variable used in a resource
-- or an output is written in clear into the state): `tfstates.state` holds one sealed value,
-- `{"$sealed": "v1:<key id>:…"}`, whose plaintext is the state's text (see src/secrets). The
-- states saved before this migration are clear: marking the sealing row as not re-sealed makes
-- the open that follows finish a "rotation" to the same key (src/store/secrets.rs), which
-- leaves sealed values as they are and seals every clear state, in short transactions, and is
-- finished by the next open if it is interrupted. A database with no sealing row yet has every
-- state sealed by the step that writes that row.

UPDATE sealing SET resealed = 0;
