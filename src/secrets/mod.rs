//! Secrets at rest: the values of sensitive inputs (provider credentials, sensitive provision
//! inputs) are kept in the database sealed with XChaCha20-Poly1305 under a key kept apart from
//! it, so a copied database, a backup or a support bundle reveals none of them.
//!
//! A sealed value stands where the clear value stood, as `{"$sealed": "v1:<key id>:<base64>"}`
//! (the base64 holds the random 24-byte nonce, the ciphertext and the tag), so bodies stay JSON.
//! The plaintext is the value's JSON text, so numbers and lists come back as they were; the
//! associated data is `v1:<key id>:<input name>`, so a sealed value copied onto another input
//! does not open.
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

pub use keys::{KEY_FILE, Key, KeyText, Keyring, Source};
pub use seal::{
    document_key, key_of, open_document, open_sealed_document, open_values, reseal_document, reseal_values,
    seal_document, seal_values,
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
    /// The value does not authenticate: it was altered, or sealed for another input.
    #[error("the sealed value of '{name}' does not open with key {key_id}: it was changed or damaged")]
    Damaged { name: String, key_id: String },
    #[error("the sealed value of '{name}' is not in formwork's format: {message}")]
    Malformed { name: String, message: String },
    #[error("the system gave no random numbers for a secret key or nonce: {0}")]
    Random(String),
}
