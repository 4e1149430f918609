//! systemd's readiness protocol (`sd_notify`), for `formwork serve` run as a `Type=notify`
//! service: `READY=1` once the server listens, `STOPPING=1` when it begins to drain.
//!
//! The protocol is one datagram of `KEY=VALUE` lines sent to the Unix socket named by
//! `NOTIFY_SOCKET`: a path, or an abstract socket written with a leading `@`. Without that
//! variable (formwork started by hand, by a test, by another supervisor) nothing is sent. A
//! dozen lines of std's `UnixDatagram` do what libsystemd's `sd_notify` does for this server;
//! a crate would add a dependency for less than this file.
//!
//! `main` reads the environment once; `cli` hands the variable's value here. formwork's tools
//! never see it: children get an explicit environment (`exec`), so a Terraform or Ansible run
//! cannot report readiness in the server's name (systemd's default `NotifyAccess=main` would
//! ignore them anyway).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where readiness is reported, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    /// The service manager's socket; `None` when `NOTIFY_SOCKET` is unset or empty.
    target: Option<SocketAddr>,
}

impl Notifier {
    /// A notifier for `NOTIFY_SOCKET`'s value. A value that is neither a path nor `@name` is
    /// refused: a manager that set it waits for readiness that would never come.
    pub fn new(notify_socket: Option<&str>) -> Result<Notifier, String> {
        let target = match notify_socket.filter(|v| !v.is_empty()) {
            None => None,
            Some(name) => Some(address(name)?),
        };
        Ok(Notifier { target })
    }

    /// Tells the manager the server listens at `url` (empty: a worker, which listens nowhere).
    pub fn ready(&self, url: &str) {
        if url.is_empty() {
            self.send_or_warn("READY=1\nSTATUS=formwork worker running");
        } else {
            self.send_or_warn(&format!("READY=1\nSTATUS=formwork listening on {url}"));
        }
    }

    /// Tells the manager the server stopped accepting and is draining its requests.
    pub fn stopping(&self) {
        self.send_or_warn("STOPPING=1\nSTATUS=stopping: draining requests in flight");
    }

    /// Sends `state` (`KEY=VALUE` lines) if there is a manager to send it to.
    pub fn send(&self, state: &str) -> io::Result<()> {
        let Some(target) = &self.target else { return Ok(()) };
        let socket = UnixDatagram::unbound()?;
        let sent = socket.send_to_addr(state.as_bytes(), target)?;
        if sent != state.len() {
            return Err(io::Error::other(format!("only {sent} of {} bytes were sent", state.len())));
        }
        Ok(())
    }

    /// A failed notification is logged, not fatal: the server works either way, and the
    /// manager's own start timeout names the unit that never became ready.
    fn send_or_warn(&self, state: &str) {
        if let Err(e) = self.send(state) {
            let first = state.lines().next().unwrap_or_default();
            tracing::warn!(
                error = %e,
                socket = ?self.target,
                "cannot tell the service manager {first} through NOTIFY_SOCKET; check that systemd runs the unit with Type=notify"
            );
        }
    }
}

/// `NOTIFY_SOCKET`'s value as a socket address.
fn address(name: &str) -> Result<SocketAddr, String> {
    let wrong = |e: io::Error| format!("NOTIFY_SOCKET '{name}': {e}; unset it, or let systemd set it (Type=notify)");
    if let Some(abstract_name) = name.strip_prefix('@') {
        SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(wrong)
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name).map_err(wrong)
    } else {
        Err(format!(
            "NOTIFY_SOCKET '{name}' is neither a socket path (/…) nor an abstract socket (@…); unset it, or let systemd set it (Type=notify)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> String {
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn ready_and_stopping_reach_a_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let manager = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(Some(path.to_str().unwrap())).unwrap();
        notifier.ready("http://127.0.0.1:13013");
        assert_eq!(receive(&manager), "READY=1\nSTATUS=formwork listening on http://127.0.0.1:13013");
        notifier.stopping();
        assert!(receive(&manager).starts_with("STOPPING=1\n"));
    }

    #[test]
    fn an_abstract_socket_is_written_with_an_at_sign() {
        let name = format!("formwork-notify-test-{}", std::process::id());
        let manager = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        Notifier::new(Some(&format!("@{name}"))).unwrap().send("READY=1").unwrap();
        assert_eq!(receive(&manager), "READY=1");
    }

    #[test]
    fn no_socket_sends_nothing_and_a_bad_one_is_named() {
        assert!(Notifier::new(None).unwrap().send("READY=1").is_ok());
        assert!(Notifier::new(Some("")).unwrap().target.is_none());
        let err = Notifier::new(Some("vsock:2:99")).unwrap_err();
        assert!(err.contains("NOTIFY_SOCKET 'vsock:2:99' is neither") && err.contains("unset it"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let gone = Notifier::new(Some(dir.path().join("absent").to_str().unwrap())).unwrap();
        assert!(gone.send("READY=1").is_err(), "a socket nobody listens on is an error the caller sees");
    }
}
