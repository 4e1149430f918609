//! [`Sim`]: the simulated oned behind the endpoint. It holds a [`FakeOne`] (OpenNebula's
//! objects and rules, optionally persisted to a file), the users that may call it, and the
//! faults it injects; [`Sim::handle`] turns one XML-RPC request body into oned's reply.
//!
//! A call goes through the steps oned and xmlrpc-c take, in their order: decode the request
//! (a fault if malformed), find the method (a fault if unknown), read the session (a fault if
//! missing), authenticate it (AUTHENTICATION), then run the method, whose parameters are read
//! as it needs them (a fault if missing or mistyped). Injected faults strike after
//! authentication.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::one::xmlrpc::{self, Value};
use crate::one::{Code, FakeOne};

use super::answer::{self, FAULT_NO_SUCH_METHOD, FAULT_PARSE, Refusal, Reply};
use super::faults::{Dice, Effect, Faults};
use super::methods;
use super::params::Params;
use super::{auth, cipher};

/// An OpenNebula user as oned keeps it. `Debug` hides the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// What oned stores and shows as `PASSWORD`: the hex SHA-256 of the password
    /// ([`cipher::sha256_hex`]); `user:password` sessions are checked against it.
    pub password: String,
    pub gid: i64,
    /// `core`, or [`User::SERVER_CIPHER`] for a server admin, whose sessions are
    /// `<name>:<user>:<token>` ([`cipher`]).
    pub auth_driver: &'static str,
    /// The random password oned adds to every user's template (`TOKEN_PASSWORD`, for OneGate).
    pub token_password: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = &"<redacted>";
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", redacted)
            .field("gid", &self.gid)
            .field("auth_driver", &self.auth_driver)
            .field("token_password", redacted)
            .finish()
    }
}

impl User {
    /// oned's two built-in groups.
    pub const ONEADMIN_GROUP: i64 = 0;
    pub const USERS_GROUP: i64 = 1;
    pub const CORE: &'static str = "core";
    pub const SERVER_CIPHER: &'static str = "server_cipher";
    /// The server admin oned makes at bootstrap (`UserPool::SERVER_NAME`), always id 1.
    pub const SERVER_ADMIN: &'static str = "serveradmin";

    /// A user of the `core` driver whose password is `password`, stored as oned stores it.
    pub fn core(id: i64, name: &str, password: &str, gid: i64) -> User {
        User {
            id,
            name: name.to_owned(),
            password: cipher::sha256_hex(password),
            gid,
            auth_driver: User::CORE,
            token_password: cipher::random_password(),
        }
    }

    /// oned's `serveradmin` (id 1, oneadmin group, `server_cipher`) whose auth file holds
    /// `serveradmin:<secret>`: oned stores the secret's digest, the key of its tokens.
    pub fn server_admin(secret: &str) -> User {
        User { auth_driver: User::SERVER_CIPHER, ..User::core(1, User::SERVER_ADMIN, secret, User::ONEADMIN_GROUP) }
    }

    pub fn gname(&self) -> &'static str {
        group_name(self.gid).unwrap_or("users")
    }

    /// Whether oned authenticates this user's sessions as a server admin's (`server*`).
    pub fn is_server_admin(&self) -> bool {
        self.auth_driver.starts_with("server")
    }
}

pub fn group_name(gid: i64) -> Option<&'static str> {
    match gid {
        User::ONEADMIN_GROUP => Some("oneadmin"),
        User::USERS_GROUP => Some("users"),
        _ => None,
    }
}

/// A user to add when onesim starts: `--user NAME:PASSWORD[:GROUP]`. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub password: String,
    /// [`User::ONEADMIN_GROUP`] or [`User::USERS_GROUP`].
    pub gid: i64,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("gid", &self.gid)
            .finish()
    }
}

impl NewUser {
    /// Reads `NAME:PASSWORD[:GROUP]`, GROUP `oneadmin` or `users` (the default). The name ends
    /// at the first `:`; when more than one `:` follows, the text after the last one is the
    /// group, so a password may hold `:` only when the group is given.
    pub fn parse(text: &str) -> Result<NewUser, String> {
        let usage = "use NAME:PASSWORD[:GROUP], e.g. alice:secret or bob:secret:oneadmin";
        let Some((name, rest)) = text.split_once(':') else {
            return Err(format!("no ':' after the user name; {usage}"));
        };
        let (password, group) = match rest.rsplit_once(':') {
            Some((password, group)) => (password, group),
            None => (rest, "users"),
        };
        let gid = match group {
            "oneadmin" => User::ONEADMIN_GROUP,
            "users" => User::USERS_GROUP,
            other => return Err(format!("unknown group '{other}': onesim has the groups oneadmin and users; {usage}")),
        };
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(format!("the user name '{name}' is empty or has spaces; {usage}"));
        }
        if password.is_empty() {
            return Err(format!("the password of '{name}' is empty; {usage}"));
        }
        Ok(NewUser { name: name.to_owned(), password: password.to_owned(), gid })
    }
}

/// How to start a [`Sim`] (the `onesim` binary's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// oneadmin's password (user 0): callers authenticate as `oneadmin:<password>`.
    pub password: String,
    /// Where the objects are kept between runs (a private JSON file); in memory when `None`.
    pub state: Option<PathBuf>,
    pub faults: Faults,
    /// The server admin's secret (oned writes `serveradmin:<secret>` to the services' auth
    /// files); a random one, known to nobody, when `None`.
    pub serveradmin_password: Option<String>,
    /// Users besides oneadmin and serveradmin, with ids from 2 in this order.
    pub users: Vec<NewUser>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            password: "opennebula".to_string(),
            state: None,
            faults: Faults::default(),
            serveradmin_password: None,
            users: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot load the onesim state from {path}: {source}; fix or delete the file, or start with another --state"
    )]
    State { path: PathBuf, source: std::io::Error },
    #[error("the folder of the onesim state file {path} does not exist; create it or start with another --state")]
    StateFolder { path: PathBuf },
    #[error(
        "there are two users called '{name}' (oneadmin and serveradmin always exist); give each --user another name"
    )]
    DuplicateUser { name: String },
}

/// Cloning a `Sim` shares it: the objects, the users and the fault counters.
#[derive(Clone)]
pub struct Sim {
    one: FakeOne,
    users: Arc<Vec<User>>,
    faults: Arc<Faults>,
    dice: Arc<Dice>,
    /// This endpoint's URL, the ENDPOINT of zone 0 ([`Sim::with_endpoint`]).
    endpoint: Arc<str>,
}

impl Sim {
    /// oned's default endpoint, until [`Sim::with_endpoint`] (which [`super::serve`] calls).
    pub const DEFAULT_ENDPOINT: &'static str = "http://localhost:2633/RPC2";

    /// A sim over `one` with oned's bootstrap users, injecting nothing: oneadmin (id 0) with
    /// `password`, and serveradmin (id 1) with a random secret ([`Sim::with_serveradmin_password`]).
    pub fn new(one: FakeOne, password: &str) -> Sim {
        let oneadmin = User::core(0, "oneadmin", password, User::ONEADMIN_GROUP);
        let serveradmin = User::server_admin(&cipher::random_password());
        Sim {
            one,
            users: Arc::new(vec![oneadmin, serveradmin]),
            faults: Arc::default(),
            dice: Arc::default(),
            endpoint: Sim::DEFAULT_ENDPOINT.into(),
        }
    }

    /// The same sim whose serveradmin has `secret` (what its auth file holds after `serveradmin:`).
    pub fn with_serveradmin_password(mut self, secret: &str) -> Sim {
        let users = Arc::make_mut(&mut self.users);
        if let Some(admin) = users.iter_mut().find(|u| u.name == User::SERVER_ADMIN) {
            admin.password = cipher::sha256_hex(secret);
        }
        self
    }

    /// The same sim answering for `url` (`http://host:port/RPC2`) in zone 0's ENDPOINT.
    pub fn with_endpoint(mut self, url: &str) -> Sim {
        self.endpoint = url.into();
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A sim as `options` describe it; a persistent one loads its state file now.
    pub fn open(options: &Options) -> Result<Sim, Error> {
        let one = match &options.state {
            Some(path) => {
                // Checked now: the fake would otherwise fail every call when it saves.
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !folder.is_dir() {
                    return Err(Error::StateFolder { path: path.clone() });
                }
                FakeOne::persistent(path).map_err(|source| Error::State { path: path.clone(), source })?
            }
            None => FakeOne::new(),
        };
        let mut sim = Sim::new(one, &options.password).with_faults(options.faults.clone());
        if let Some(secret) = &options.serveradmin_password {
            sim = sim.with_serveradmin_password(secret);
        }
        for user in &options.users {
            sim = sim.try_with_user(user)?;
        }
        Ok(sim)
    }

    /// The same sim injecting `faults` (fresh call counters, so the seed replays from here).
    pub fn with_faults(mut self, faults: Faults) -> Sim {
        self.faults = Arc::new(faults);
        self.dice = Arc::default();
        self
    }

    /// Adds a `core` user of the `users` group (not oneadmin's), with the next free id.
    ///
    /// # Panics
    /// If a user of that name exists (a test's mistake); [`Sim::try_with_user`] reports it.
    pub fn with_user(self, name: &str, password: &str) -> Sim {
        let user = NewUser { name: name.into(), password: password.into(), gid: User::USERS_GROUP };
        self.try_with_user(&user).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds `user` with the next free id; names are unique, as in oned.
    pub fn try_with_user(mut self, user: &NewUser) -> Result<Sim, Error> {
        if self.users.iter().any(|u| u.name == user.name) {
            return Err(Error::DuplicateUser { name: user.name.clone() });
        }
        let id = self.users.iter().map(|u| u.id + 1).max().unwrap_or(0);
        Arc::make_mut(&mut self.users).push(User::core(id, &user.name, &user.password, user.gid));
        Ok(self)
    }

    /// The objects, for tests that place VMs or images or inject the fake's own faults.
    pub fn one(&self) -> &FakeOne {
        &self.one
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The reply to one request body.
    pub async fn handle(&self, body: &str) -> Reply {
        match xmlrpc::decode_call(body) {
            Ok((method, params)) => self.call(&method, &params).await,
            Err(e) => Reply::Fault { code: FAULT_PARSE, message: format!("Call XML not a proper XML-RPC call. {e}") },
        }
    }

    /// The reply to `method` called with `params` (the session first).
    pub async fn call(&self, method: &str, params: &[Value]) -> Reply {
        if !methods::is_known(method) {
            let message = format!("Method '{method}' not defined");
            return Reply::Fault { code: FAULT_NO_SUCH_METHOD, message };
        }
        let params = Params(params);
        let user = match params.string(0) {
            Ok(session) => auth::authenticate(&self.users, session, auth::now()),
            Err(refusal) => return answer::reply(Err(refusal)),
        };
        let user = match user {
            Ok(user) => user,
            Err(why) => {
                let refusal = Refusal::one(method, Code::Authentication, "", -1, "");
                tracing::debug!(method, %why, "onesim refused a session");
                return answer::reply(Err(refusal));
            }
        };
        let effect = self.dice.roll(&self.faults, method);
        if effect == Some(Effect::Internal) {
            tracing::debug!(method, "onesim injected an INTERNAL failure");
            let detail = "Internal error (injected by onesim)";
            return answer::reply(Err(Refusal::one(method, Code::Internal, "", -1, detail)));
        }
        let ctx = methods::Ctx { one: &self.one, user: &user, users: &self.users, method, endpoint: &self.endpoint };
        let reply = answer::reply(methods::call(&ctx, &params).await);
        match effect {
            Some(Effect::Drop) => {
                tracing::debug!(method, "onesim dropped the connection after the call");
                Reply::Drop
            }
            Some(Effect::Internal) | None => reply,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_flags_name_a_password_and_a_group() {
        let user = |name: &str, password: &str, gid| NewUser { name: name.into(), password: password.into(), gid };
        assert_eq!(NewUser::parse("alice:secret"), Ok(user("alice", "secret", User::USERS_GROUP)));
        assert_eq!(NewUser::parse("bob:pw:oneadmin"), Ok(user("bob", "pw", User::ONEADMIN_GROUP)));
        assert_eq!(NewUser::parse("carol:pw:users"), Ok(user("carol", "pw", User::USERS_GROUP)));
        assert_eq!(NewUser::parse("dave:a:b:users"), Ok(user("dave", "a:b", User::USERS_GROUP)));
        for (text, expected) in [
            ("alice", "no ':'"),
            ("alice:pw:admins", "unknown group 'admins'"),
            (":pw", "user name '' is empty"),
            ("al ice:pw", "has spaces"),
            ("alice:", "password of 'alice' is empty"),
            ("alice::oneadmin", "password of 'alice' is empty"),
        ] {
            let error = NewUser::parse(text).unwrap_err();
            assert!(error.contains(expected) && error.contains("NAME:PASSWORD[:GROUP]"), "{text}: {error}");
        }
        assert!(!format!("{:?}", user("alice", "s3cret", 1)).contains("s3cret"));
    }

    #[test]
    fn users_get_the_next_ids_and_unique_names() {
        let new = |name: &str, gid| NewUser { name: name.into(), password: "pw".into(), gid };
        let users = vec![new("alice", User::USERS_GROUP), new("root", User::ONEADMIN_GROUP)];
        let sim = Sim::open(&Options { users, ..Options::default() }).unwrap();
        let ids: Vec<(i64, &str, i64)> = sim.users().iter().map(|u| (u.id, u.name.as_str(), u.gid)).collect();
        assert_eq!(ids, [(0, "oneadmin", 0), (1, "serveradmin", 0), (2, "alice", 1), (3, "root", 0)]);
        assert!(!format!("{:?}", sim.users()).contains("opennebula"), "Debug shows no password");
        for name in ["alice", "oneadmin", "serveradmin"] {
            let users = vec![new("alice", User::USERS_GROUP), new(name, User::USERS_GROUP)];
            let error = Sim::open(&Options { users, ..Options::default() }).err().expect("a duplicate is refused");
            assert!(matches!(&error, Error::DuplicateUser { name: n } if n == name), "{error}");
        }
    }
}
