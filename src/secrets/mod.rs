//! Secrets at rest: the values of sensitive inputs (provider credentials, sensitive provision
//! inputs) are kept in the database sealed with XChaCha20-Poly1305 under a key kept apart from
//! it, so a copied database, a backup or a support bundle reveals none of them.
//!
//! A sealed value stands where the clear value stood, as `{"$sealed": "v2:<key id>:<base64>"}`
//! (the base64 holds the random 24-byte nonce, the ciphertext and the tag), so bodies stay JSON.
//! The plaintext is the value's JSON text, so numbers and lists come back as they were; the
//! associated data is `v2:<key id>:<table>:<row id>:<input name>` (`provider:3:api_token`), so a
//! sealed value copied onto another input, row or table does not open. Values sealed by the
//! format before (`v1`, bound to the input's name only) are re-bound to their row once, by the
//! store's migration step; reads refuse them, and clear values, afterwards.
//!
//! Which values are sealed is what `driver::input` says is sensitive, from the input
//! definitions stored with the body: the same rule that redacts and masks them. The store seals
//! on write and opens on read ([`crate::store`]); above it values are clear only in memory.
//!
//! Terraform states hold those values too (a sensitive variable used in a resource or an output
//! is written there in clear, `sensitive = true` or not), so they are sealed whole: the stored
//! text is one sealed value whose plaintext is the state's text, bound to its provision.
//!
//! - [`keys`]: where keys come from (the key file `<data_dir>/secret.key`, `secret_key_file`,
//!   or `FORMWORK_SECRET_KEY`), their ids, and the key file's crash-safe rewrites.
//! - [`seal`]: sealing, opening and re-sealing values.

mod keys;
mod seal;

use std::path::PathBuf;

pub use keys::{Init, KEY_FILE, Key, KeyText, Keyring, Owner, Source, init_file};
#[cfg(test)]
pub use seal::seal_v1;
pub use seal::{
    Older, Row, document_key, holds_sensitive, key_of, open_document, open_sealed_document, open_values,
    reseal_document, reseal_values, seal_document, seal_values,
};

/// How to make a key by hand, for messages.
pub const MAKE_A_KEY: &str = "head -c 32 /dev/urandom | base64";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database names a key this process does not have. Nothing is changed.
    #[error(
        "the database's secret values are sealed with key {key_id}, which is not in {searched}; give formwork that key (restore the key file that was beside the database, or set FORMWORK_SECRET_KEY or `secret_key_file`); nothing was changed"
    )]
    UnknownKey { key_id: String, searched: String },
    #[error("secret key file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("FORMWORK_SECRET_KEY: {0}")]
    Given(String),
    /// The value does not authenticate: it was altered, or sealed for another row or input.
    #[error(
        "{what} does not open with key {key_id}: it was changed or damaged, or copied from another row or input, so it is not used; {advice}"
    )]
    Damaged { what: String, key_id: String, advice: String },
    #[error("{what} is not in formwork's sealed format: {message}")]
    Malformed { what: String, message: String },
    /// A clear value where a sealed one belongs: nothing formwork writes.
    #[error(
        "{what} is stored in clear where formwork keeps it sealed, so it was written past formwork and is not used; {advice}"
    )]
    Clear { what: String, advice: String },
    /// A value sealed in the format that bound it to its input's name only.
    #[error(
        "{what} is sealed in an older format (v1) that does not bind it to its row, so it is not used; formwork binds such values once, at the first open after an upgrade (if another formwork process is doing that now, wait for it); found later, it was written past formwork: {advice}"
    )]
    Unbound { what: String, advice: String },
    #[error("the system gave no random numbers for a secret key or nonce: {0}")]
    Random(String),
}
