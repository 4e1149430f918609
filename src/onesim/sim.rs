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

/// An OpenNebula user: `session` strings are `name:password`. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password: String,
    pub gid: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = &"<redacted>";
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", redacted)
            .field("gid", &self.gid)
            .finish()
    }
}

impl User {
    /// oned's two built-in groups.
    pub const ONEADMIN_GROUP: i64 = 0;
    pub const USERS_GROUP: i64 = 1;

    pub fn gname(&self) -> &'static str {
        group_name(self.gid).unwrap_or("users")
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
    /// Users besides oneadmin, with ids from 1 in this order.
    pub users: Vec<NewUser>,
}

impl Default for Options {
    fn default() -> Options {
        Options { password: "opennebula".to_string(), state: None, faults: Faults::default(), users: Vec::new() }
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
    #[error("there are two users called '{name}' (oneadmin always exists); give each --user another name")]
    DuplicateUser { name: String },
}

/// Cloning a `Sim` shares it: the objects, the users and the fault counters.
#[derive(Clone)]
pub struct Sim {
    one: FakeOne,
    users: Arc<Vec<User>>,
    faults: Arc<Faults>,
    dice: Arc<Dice>,
}

impl Sim {
    /// A sim over `one` whose only user is oneadmin (id 0) with `password`, injecting nothing.
    pub fn new(one: FakeOne, password: &str) -> Sim {
        let oneadmin = User { id: 0, name: "oneadmin".into(), password: password.into(), gid: User::ONEADMIN_GROUP };
        Sim { one, users: Arc::new(vec![oneadmin]), faults: Arc::default(), dice: Arc::default() }
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

    /// Adds a user of the `users` group (not oneadmin's), with the next free id.
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
        let user = User { id, name: user.name.clone(), password: user.password.clone(), gid: user.gid };
        Arc::make_mut(&mut self.users).push(user);
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
            Ok(session) => self.authenticate(session),
            Err(refusal) => return answer::reply(Err(refusal)),
        };
        let Some(user) = user else {
            let refusal = Refusal::one(method, Code::Authentication, "", -1, "");
            tracing::debug!(method, "onesim refused a session");
            return answer::reply(Err(refusal));
        };
        let effect = self.dice.roll(&self.faults, method);
        if effect == Some(Effect::Internal) {
            tracing::debug!(method, "onesim injected an INTERNAL failure");
            let detail = "Internal error (injected by onesim)";
            return answer::reply(Err(Refusal::one(method, Code::Internal, "", -1, detail)));
        }
        let ctx = methods::Ctx { one: &self.one, user, users: &self.users, method };
        let reply = answer::reply(methods::call(&ctx, &params).await);
        match effect {
            Some(Effect::Drop) => {
                tracing::debug!(method, "onesim dropped the connection after the call");
                Reply::Drop
            }
            Some(Effect::Internal) | None => reply,
        }
    }

    /// The user a `name:password` session names, if the password is right.
    fn authenticate(&self, session: &str) -> Option<&User> {
        let (name, password) = session.split_once(':')?;
        self.users.iter().find(|u| u.name == name && u.password == password)
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
        assert_eq!(ids, [(0, "oneadmin", 0), (1, "alice", 1), (2, "root", 0)]);
        assert!(!format!("{:?}", sim.users()).contains("opennebula"), "Debug shows no password");
        for name in ["alice", "oneadmin"] {
            let users = vec![new("alice", User::USERS_GROUP), new(name, User::USERS_GROUP)];
            let error = Sim::open(&Options { users, ..Options::default() }).err().expect("a duplicate is refused");
            assert!(matches!(&error, Error::DuplicateUser { name: n } if n == name), "{error}");
        }
    }
}
