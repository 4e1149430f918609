//! Checks of credentials in flight. Requests that bring the same credentials while they are
//! being checked wait for that check's answer instead of asking OpenNebula again: a client's
//! burst of requests at its first login (or when its remembered login expires) costs one
//! attempt, not one each, so the failed-login count — which counts an attempt before it is
//! checked — never slows down a user whose password is right. Flights are keyed by the login
//! cache's keyed hash, so no password is held here either.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use super::{AuthError, Caller, LoginKey};

/// A check's answer as others may take it: the caller, or a refusal. Anything else (OpenNebula
/// could not say, the check was dropped) gives no answer, and each waiting request checks
/// for itself.
type Answer = Option<Result<Caller, ()>>;

#[derive(Default)]
pub(super) struct Flights(Mutex<HashMap<LoginKey, watch::Receiver<Answer>>>);

/// Who checks: this request (it leads the flight), or another one it waits for.
pub(super) enum Joined<'a> {
    Leader(Flight<'a>),
    Follower(watch::Receiver<Answer>),
}

/// The check this request leads; the flight ends when it is dropped, answered or not.
pub(super) struct Flight<'a> {
    flights: &'a Flights,
    key: LoginKey,
    answer: watch::Sender<Answer>,
}

impl Flights {
    pub(super) fn join(&self, key: LoginKey) -> Joined<'_> {
        let mut flights = self.0.lock().unwrap();
        if let Some(answer) = flights.get(&key) {
            return Joined::Follower(answer.clone());
        }
        let (answer, waiting) = watch::channel(None);
        flights.insert(key, waiting);
        Joined::Leader(Flight { flights: self, key, answer })
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }
}

impl Flight<'_> {
    /// Gives the requests waiting for this check its answer.
    pub(super) fn answer(self, result: &Result<Caller, AuthError>) {
        let answer = match result {
            Ok(caller) => Some(Ok(caller.clone())),
            Err(AuthError::Invalid) => Some(Err(())),
            Err(_) => None,
        };
        self.answer.send_replace(answer);
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.flights.0.lock().unwrap().remove(&self.key);
    }
}

/// The answer of the check a request waited for; `None` when it gave none.
pub(super) async fn answered(mut waiting: watch::Receiver<Answer>) -> Option<Result<Caller, AuthError>> {
    let answer = waiting.wait_for(Option::is_some).await.ok()?.clone()?;
    Some(answer.map_err(|()| AuthError::Invalid))
}
