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

/// An OpenNebula user: `session` strings are `name:password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password: String,
    pub gid: i64,
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

/// How to start a [`Sim`] (the `onesim` binary's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// oneadmin's password (user 0): callers authenticate as `oneadmin:<password>`.
    pub password: String,
    /// Where the objects are kept between runs (a private JSON file); in memory when `None`.
    pub state: Option<PathBuf>,
    pub faults: Faults,
}

impl Default for Options {
    fn default() -> Options {
        Options { password: "opennebula".to_string(), state: None, faults: Faults::default() }
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
        Ok(Sim::new(one, &options.password).with_faults(options.faults.clone()))
    }

    /// The same sim injecting `faults` (fresh call counters, so the seed replays from here).
    pub fn with_faults(mut self, faults: Faults) -> Sim {
        self.faults = Arc::new(faults);
        self.dice = Arc::default();
        self
    }

    /// Adds a user of the `users` group (not oneadmin's), with the next free id.
    pub fn with_user(mut self, name: &str, password: &str) -> Sim {
        let id = self.users.iter().map(|u| u.id + 1).max().unwrap_or(0);
        let user = User { id, name: name.into(), password: password.into(), gid: User::USERS_GROUP };
        Arc::make_mut(&mut self.users).push(user);
        self
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
