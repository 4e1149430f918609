//! Passwords and server tokens as oned keeps and checks them.
//!
//! oned stores a `core` user's password as the lowercase hex SHA-256 of it
//! (`one_util::sha256_digest` in `UserPool::allocate`), shows that digest as the user's
//! `PASSWORD`, and authenticates `user:password` by hashing the password again.
//!
//! A server admin (a user whose auth driver matches `server*`; oned's bootstrap makes
//! `serveradmin`, id 1, in the oneadmin group, driver `server_cipher`, with a random secret it
//! writes to the services' auth files and whose digest it stores as the password) logs in on
//! behalf of another user with the session `serveradmin:<user>:<token>`, or
//! `serveradmin:<user>:<egid>:<token>` to act in one group. OpenNebula's `ServerCipherAuth`
//! (Ruby: OneForm's and Sunstone's `CloudAuth`; FireEdge does the same in JavaScript) makes the
//! token: `base64(AES-256-CBC("serveradmin:<user>:<expiry>"))`, PKCS#7 padding, whose key is the
//! first 32 characters of the secret's hex SHA-256 — that is, of the stored password, which is
//! why FireEdge can use `PASSWORD` from `one.user.info` — and whose IV is the first 16.
//!
//! The `server_cipher` driver then decrypts the token with the stored password and checks only
//! two things: that the text before the first `:` is the server admin's name, and that the text
//! after the last `:` (seconds since the epoch, read as Ruby's `to_i` reads it) is still ahead
//! of now. It does not compare the middle field with the user the session names; neither does
//! [`check_token`].

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt as _, BlockModeEncrypt as _, KeyIvInit as _};
use base64::Engine as _;

/// What oned stores for a password: its lowercase hex SHA-256.
pub fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A random password as oned makes one (`one_util::random_password`: the hex SHA-256 of a
/// random number): the server admin's secret, and every user's `TOKEN_PASSWORD`.
pub fn random_password() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("the OS gives random bytes");
    sha256_hex(&u128::from_le_bytes(bytes).to_string())
}

/// Why the `server_cipher` driver refused a token (logged; the caller only learns
/// AUTHENTICATION, as from oned).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the token is not base64 of an AES-256-CBC text under this server admin's password")]
    Undecryptable,
    #[error("the token names another server admin (oned's driver: \"User name missmatch\")")]
    NameMismatch,
    #[error("the token expired (oned's driver: \"login token expired\")")]
    Expired,
}

/// The key and IV of a server admin whose stored password (or secret's digest) is `digest`.
fn key_and_iv(digest: &str) -> Option<(&[u8], &[u8])> {
    Some((digest.as_bytes().get(..32)?, digest.as_bytes().get(..16)?))
}

/// The session a service with the server admin `server`'s `secret` (the text after `:` in its
/// auth file) makes to act as `user` until `expires` (seconds since the epoch), as
/// `ServerCipherAuth#login_token` makes it.
pub fn login_token(server: &str, secret: &str, user: &str, expires: i64) -> String {
    let digest = sha256_hex(secret);
    let (key, iv) = key_and_iv(&digest).expect("a SHA-256 hex digest has 64 characters");
    let cipher = cbc::Encryptor::<Aes256>::new_from_slices(key, iv).expect("32-byte key, 16-byte IV");
    let sealed = cipher.encrypt_padded_vec::<Pkcs7>(format!("{server}:{user}:{expires}").as_bytes());
    format!("{server}:{user}:{}", base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The `server_cipher` driver's check of `token` (the session's last field) for the server
/// admin `server` whose stored password is `stored`, at `now` (seconds since the epoch).
pub fn check_token(server: &str, stored: &str, token: &str, now: i64) -> Result<(), Refused> {
    let (key, iv) = key_and_iv(stored).ok_or(Refused::Undecryptable)?;
    let sealed = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| Refused::Undecryptable)?;
    let cipher = cbc::Decryptor::<Aes256>::new_from_slices(key, iv).map_err(|_| Refused::Undecryptable)?;
    let text = cipher.decrypt_padded_vec::<Pkcs7>(&sealed).map_err(|_| Refused::Undecryptable)?;
    let text = String::from_utf8_lossy(&text);
    let first = text.split(':').next().unwrap_or("");
    let last = text.rsplit(':').next().unwrap_or("");
    if first != server {
        return Err(Refused::NameMismatch);
    }
    if now >= ruby_to_i(last) {
        return Err(Refused::Expired);
    }
    Ok(())
}

/// Ruby's `String#to_i`: leading blanks, an optional sign, then as many digits as there are
/// (0 when there are none; saturating where Ruby would grow a bignum).
fn ruby_to_i(text: &str) -> i64 {
    let text = text.trim_start();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = digits.bytes().take_while(u8::is_ascii_digit);
    sign * digits.fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "3f1a-random-secret";

    fn token_of(session: &str) -> &str {
        session.rsplit(':').next().unwrap()
    }

    #[test]
    fn passwords_are_stored_as_oneds_sha256_hex() {
        assert_eq!(sha256_hex("opennebula"), "b065663b91df7176a5d6567fddde2eb91b3ea73a5055c1f0915909f764d92cc6");
        assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn a_token_opens_with_the_stored_password_until_it_expires() {
        let session = login_token("serveradmin", SECRET, "alice", 2_000);
        // Made independently with Python's `cryptography`, following ServerCipherAuth#login_token.
        assert_eq!(session, "serveradmin:alice:MdkjUua1wTDoBKgt/mZ3MF6KjyQcU8jVOk7AWIcQvFc=");
        let stored = sha256_hex(SECRET);
        assert_eq!(check_token("serveradmin", &stored, token_of(&session), 1_999), Ok(()));
        assert_eq!(check_token("serveradmin", &stored, token_of(&session), 2_000), Err(Refused::Expired));
        assert_eq!(check_token("otheradmin", &stored, token_of(&session), 0), Err(Refused::NameMismatch));
        let other = sha256_hex("another secret");
        assert_eq!(check_token("serveradmin", &other, token_of(&session), 0), Err(Refused::Undecryptable));
    }

    #[test]
    fn tampered_or_malformed_tokens_are_refused() {
        let stored = sha256_hex(SECRET);
        let session = login_token("serveradmin", SECRET, "alice", i64::MAX);
        let token = token_of(&session);
        let mut sealed = base64::engine::general_purpose::STANDARD.decode(token).unwrap();
        // Flipping a bit of the first block garbles it and shifts the second: either the
        // padding breaks or the server admin's name does.
        sealed[0] ^= 1;
        let flipped = base64::engine::general_purpose::STANDARD.encode(&sealed);
        assert!(check_token("serveradmin", &stored, &flipped, 0).is_err());
        for bad in ["", "not base64!", "AAAA", &token[4..]] {
            assert_eq!(check_token("serveradmin", &stored, bad, 0), Err(Refused::Undecryptable), "{bad}");
        }
        assert_eq!(check_token("serveradmin", "short", token, 0), Err(Refused::Undecryptable));
    }

    #[test]
    fn the_expiry_is_read_as_ruby_reads_it() {
        for (text, n) in [("123", 123), (" 42x", 42), ("-7", -7), ("+5", 5), ("x1", 0), ("", 0)] {
            assert_eq!(ruby_to_i(text), n, "{text:?}");
        }
    }
}
