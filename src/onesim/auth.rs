//! Who a session is, checked as oned's `UserPool::authenticate` checks it: the text before the
//! first `:` names a user; a `core` user's password (the rest) must hash to the stored digest;
//! a server admin's rest is `<user>:<token>` or `<user>:<egid>:<token>`, the token is checked by
//! the `server_cipher` driver ([`cipher::check_token`]), and the call then runs as `<user>`,
//! in group `<egid>` alone when one is given. Any refusal is AUTHENTICATION for the caller, with
//! no reason (oned only logs it); [`Why`] is for onesim's log.
//!
//! Left out: oned's session cache (a token it accepted is not re-checked for
//! `SESSION_EXPIRATION_TIME`, so in oned a token can outlive its expiry by that much), login
//! tokens (`one.user.login`), external drivers and disabled users.

use super::cipher;
use super::sim::User;

/// Why a session was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Why {
    #[error("the session has no ':'")]
    Malformed,
    #[error("no user is called '{0}'")]
    NoUser(String),
    #[error("wrong password for '{0}'")]
    WrongPassword(String),
    #[error("a server session must be <server admin>:<user>[:<egid>]:<token> (oned: \"Wrong token format\")")]
    WrongTokenFormat,
    #[error("the server token of '{server}' was refused: {refused}")]
    Token { server: String, refused: cipher::Refused },
}

/// Seconds since the epoch, what tokens expire against.
pub fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// The user `session` authenticates as at `now`, with the group it acts in.
pub fn authenticate(users: &[User], session: &str, now: i64) -> Result<User, Why> {
    let (name, token) = session.split_once(':').ok_or(Why::Malformed)?;
    let user = find(users, name)?;
    if user.is_server_admin() {
        return on_behalf(users, user, token, now);
    }
    match cipher::sha256_hex(token) == user.password {
        true => Ok(user.clone()),
        false => Err(Why::WrongPassword(name.to_owned())),
    }
}

fn find<'a>(users: &'a [User], name: &str) -> Result<&'a User, Why> {
    users.iter().find(|u| u.name == name).ok_or_else(|| Why::NoUser(name.to_owned()))
}

/// oned's `authenticate_server`: `token` is `<user>:<token>` or `<user>:<egid>:<token>`.
fn on_behalf(users: &[User], server: &User, token: &str, now: i64) -> Result<User, Why> {
    let (target, rest) = token.split_once(':').ok_or(Why::WrongTokenFormat)?;
    let (egid, sealed) = match rest.split_once(':') {
        // oned reads the EGID with `istringstream >> int` and wants the whole of it read.
        Some((egid, sealed)) => (Some(egid.trim_start().parse::<i64>().map_err(|_| Why::WrongTokenFormat)?), sealed),
        None => (None, rest),
    };
    let mut user = find(users, target)?.clone();
    cipher::check_token(&server.name, &server.password, sealed, now)
        .map_err(|refused| Why::Token { server: server.name.clone(), refused })?;
    if let Some(egid) = egid.filter(|&egid| egid != -1) {
        user.gid = egid;
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "server-secret";

    fn users() -> Vec<User> {
        vec![User::core(0, "oneadmin", "pw", 0), User::server_admin(SECRET), User::core(2, "alice", "alice-pw", 1)]
    }

    fn who(session: &str, now: i64) -> Result<(i64, i64), Why> {
        authenticate(&users(), session, now).map(|u| (u.id, u.gid))
    }

    #[test]
    fn core_users_log_in_with_the_password_whose_digest_is_stored() {
        assert_eq!(who("alice:alice-pw", 0), Ok((2, 1)));
        assert_eq!(who("oneadmin:pw", 0), Ok((0, 0)));
        assert_eq!(who("alice:wrong", 0), Err(Why::WrongPassword("alice".into())));
        let digest = cipher::sha256_hex("alice-pw");
        assert_eq!(who(&format!("alice:{digest}"), 0), Err(Why::WrongPassword("alice".into())), "not the digest");
        assert_eq!(who("bob:x", 0), Err(Why::NoUser("bob".into())));
        assert_eq!(who("alice", 0), Err(Why::Malformed));
    }

    #[test]
    fn the_server_admin_acts_for_a_user_while_its_token_lasts() {
        let session = cipher::login_token("serveradmin", SECRET, "alice", 1_000);
        assert_eq!(who(&session, 999), Ok((2, 1)));
        assert!(matches!(who(&session, 1_000), Err(Why::Token { refused: cipher::Refused::Expired, .. })));
        let token = session.rsplit(':').next().unwrap();
        assert_eq!(who(&format!("serveradmin:alice:0:{token}"), 0), Ok((2, 0)), "an EGID sets the group");
        assert_eq!(who(&format!("serveradmin:alice:-1:{token}"), 0), Ok((2, 1)));
        assert_eq!(who(&format!("serveradmin:alice:x:{token}"), 0), Err(Why::WrongTokenFormat));
        assert_eq!(who(&format!("serveradmin:bob:{token}"), 0), Err(Why::NoUser("bob".into())));
        // As in oned, the user inside the token is not compared with the one the session names.
        assert_eq!(who(&format!("serveradmin:oneadmin:{token}"), 0), Ok((0, 0)));
        let forged = cipher::login_token("serveradmin", "guessed", "alice", i64::MAX);
        assert!(matches!(who(&forged, 0), Err(Why::Token { refused: cipher::Refused::Undecryptable, .. })));
        assert_eq!(who(&format!("serveradmin:{SECRET}"), 0), Err(Why::WrongTokenFormat), "no plain login");
        let by_alice = format!("alice:alice:{token}");
        assert_eq!(who(&by_alice, 0), Err(Why::WrongPassword("alice".into())), "only a server admin acts for others");
    }
}
