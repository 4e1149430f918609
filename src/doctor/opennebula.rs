//! OpenNebula: reachable at `one_xmlrpc` with the `one_auth` credentials, through formwork's own
//! XML-RPC client; without an endpoint formwork uses its embedded model, which passes.

use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::one::client::{Options, SetupError};
use crate::one::{self, Client};
use crate::settings::Settings;

/// One attempt, short waits: a doctor reports an unreachable OpenNebula, it does not ride it out.
const ONE_OPTIONS: Options = Options {
    connect_timeout: Duration::from_secs(5),
    request_timeout: Duration::from_secs(10),
    tries: 1,
    backoff: Duration::from_millis(100),
};

/// `one.system.version`, then `one.user.info(-1)` to prove the credentials; unreachable, refused
/// and other answers are told apart.
pub(super) async fn check(settings: &Settings) -> Check {
    const NAME: &str = "opennebula";
    let Some(url) = &settings.one_xmlrpc else {
        return Check::ok(
            NAME,
            format!(
                "one_xmlrpc is not set: formwork uses its embedded OpenNebula model ({}); set one_xmlrpc (ONE_XMLRPC) to work with oned",
                settings.data_dir.join("one-sim.json").display()
            ),
        );
    };
    let Some(auth) = &settings.one_auth else {
        return Check::fail(
            NAME,
            format!("one_xmlrpc is {url} but no one_auth file is set (no ONE_AUTH, `one_auth` or HOME)"),
            "write `user:password` in a file (chmod 600) and set one_auth (ONE_AUTH) to it",
        );
    };
    let client = match Client::from_auth_file(url, auth, ONE_OPTIONS) {
        Ok(client) => client,
        Err(e @ SetupError::Endpoint { .. }) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "set one_xmlrpc (ONE_XMLRPC) to oned's endpoint, http://host:2633/RPC2",
            );
        }
        Err(e) => return Check::fail(NAME, e.to_string(), credentials_fix(auth)),
    };
    let version = match client.system_version().await {
        Ok(version) => version,
        Err(e) => return refused(&e, url, auth),
    };
    match client.user_info().await {
        Err(e) => refused(&e, url, auth),
        Ok(user) if user.id != 0 && user.gid != 0 => Check::warn(
            NAME,
            format!(
                "OpenNebula {version} at {url} as {} (group {}), outside the oneadmin group: creating clusters, hosts and networks may be refused",
                user.name, user.gname
            ),
            format!("put the credentials of a oneadmin-group user in {}", auth.display()),
        ),
        Ok(user) => Check::ok(NAME, format!("OpenNebula {version} at {url} as {} ({})", user.name, auth.display())),
    }
}

/// A failed call as the admin reads it: unreachable, wrong credentials, or another error.
fn refused(e: &one::Error, url: &str, auth: &Path) -> Check {
    const NAME: &str = "opennebula";
    match e {
        one::Error::Transport { message, .. } | one::Error::Timeout { message, .. } => Check::fail(
            NAME,
            format!("cannot reach OpenNebula at {url} (one_xmlrpc): {message}"),
            "start oned there, or set one_xmlrpc (ONE_XMLRPC) to its endpoint, http://host:2633/RPC2",
        ),
        one::Error::Authentication { .. } => Check::fail(
            NAME,
            format!("OpenNebula at {url} refused the credentials in {} (one_auth)", auth.display()),
            credentials_fix(auth),
        ),
        other => Check::fail(
            NAME,
            format!("OpenNebula at {url} answered an error: {other}"),
            "see oned.log on the front-end",
        ),
    }
}

fn credentials_fix(auth: &Path) -> String {
    format!(
        "write a valid OpenNebula `user:password` on the first line of {}, or point one_auth (ONE_AUTH) at the file that holds one",
        auth.display()
    )
}
