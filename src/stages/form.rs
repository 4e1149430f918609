//! The REST API as playbooks reach it: its URL and where their sessions come from. A
//! playbook's session is opened when CONFIGURING_PROVISION starts, may read only the provision
//! being configured, and is closed when the stage ends, whichever way it ends (the
//! [`OpenSession`] guard is dropped with the stage's future, a cancel and a timeout included).
//! The sessions themselves are the API's (`service::auth`); this layer only asks for them.

use std::sync::Arc;

use super::FormServer;

/// Where playbook sessions come from: the authenticator of the API this process serves.
pub trait Sessions: Send + Sync {
    /// A session `user:token` that may read provision `provision_id` and nothing else, valid
    /// until [`Sessions::close`].
    fn open(&self, provision_id: i64) -> String;
    /// Ends a session [`Sessions::open`] gave; it is refused from then on.
    fn close(&self, session: &str);
}

/// The REST API this process serves, for playbooks.
#[derive(Clone)]
pub struct FormApi {
    /// Base URL of the API, e.g. `http://127.0.0.1:13013`.
    pub url: String,
    pub sessions: Arc<dyn Sessions>,
}

impl std::fmt::Debug for FormApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormApi").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FormApi {
    /// The API and a session for the playbooks of provision `provision_id`, closed when the
    /// returned guard is dropped.
    pub fn open(&self, provision_id: i64) -> OpenSession {
        let session = self.sessions.open(provision_id);
        OpenSession { form: FormServer { url: self.url.clone(), session }, sessions: Arc::clone(&self.sessions) }
    }
}

/// A playbook session while it lasts; it reads as the [`FormServer`] handed to the playbook.
pub struct OpenSession {
    form: FormServer,
    sessions: Arc<dyn Sessions>,
}

impl std::ops::Deref for OpenSession {
    type Target = FormServer;
    fn deref(&self) -> &FormServer {
        &self.form
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.sessions.close(&self.form.session);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Sessions as a list of the open ones.
    #[derive(Default)]
    struct Open(Mutex<Vec<String>>);

    impl Sessions for Open {
        fn open(&self, provision_id: i64) -> String {
            let session = format!("oneadmin:token-{provision_id}");
            self.0.lock().unwrap().push(session.clone());
            session
        }
        fn close(&self, session: &str) {
            self.0.lock().unwrap().retain(|s| s != session);
        }
    }

    #[test]
    fn a_session_is_open_while_its_guard_lives() {
        let open = Arc::new(Open::default());
        let api = FormApi { url: "http://127.0.0.1:1".into(), sessions: open.clone() };
        let session = api.open(4);
        assert_eq!((session.url.as_str(), session.session.as_str()), ("http://127.0.0.1:1", "oneadmin:token-4"));
        assert_eq!(*open.0.lock().unwrap(), ["oneadmin:token-4"]);
        drop(session);
        assert!(open.0.lock().unwrap().is_empty(), "closed with its guard");
    }
}
