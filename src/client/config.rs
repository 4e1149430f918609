//! Which server the client talks to and as whom, resolved once from the command line and the
//! environment snapshot `main` took, as OneForm's CLIs resolve theirs (spec §4.3): the URL from
//! `--server` or `ONEFORM_URL`; credentials from `ONEFORM_USER` and `ONEFORM_PASSWORD`, else
//! the `user:password` file named by `ONE_AUTH`, else `~/.one/one_auth`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::service::Error;

/// How long a connection may take to open: a local or LAN server answers in milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take: the server answers long operations at once (201/204) and
/// runs them itself, so only a slow listing or a driver sync comes near this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a followed operation is read again: quick enough that each stage's line shows
/// as it happens, slow enough to cost the server nothing.
const POLL: Duration = Duration::from_millis(300);

/// Largest credentials file read: it holds one `user:password` line.
const MAX_AUTH_BYTES: u64 = 64 * 1024;

/// The server and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL without `/api/v1`, e.g. `http://127.0.0.1:13013`.
    pub url: String,
    pub credentials: Credentials,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub poll: Duration,
}

/// A user and password (or token) for HTTP Basic authentication. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("password", &"<hidden>").finish()
    }
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { user: user.into(), password: password.into() }
    }

    /// The `Authorization` header's value.
    pub(super) fn basic(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
    }

    /// Reads a `user:password` file (OpenNebula's `one_auth`): the first line, split at the
    /// first colon.
    fn from_file(path: &Path) -> Result<Credentials, Error> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_AUTH_BYTES).read_to_string(&mut text))
            .map_err(|e| Error::invalid(format!("cannot read the credentials file {}: {e}", path.display())))?;
        let line = text.lines().next().unwrap_or("").trim();
        match line.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials::new(user, password)),
            _ => Err(Error::invalid(format!(
                "the credentials file {} must hold `user:password` on its first line",
                path.display()
            ))),
        }
    }
}

impl Config {
    /// The server to use, if any: `server` (the `--server` flag) or `ONEFORM_URL`. `None`
    /// means the command runs locally.
    pub fn resolve(server: Option<&str>, env: &HashMap<String, String>) -> Result<Option<Config>, Error> {
        let var = |key: &str| env.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let Some(url) = server.or_else(|| var("ONEFORM_URL")) else { return Ok(None) };
        let url = base_url(url)?;
        let credentials = credentials(&url, &var)?;
        Ok(Some(Config {
            url,
            credentials,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            poll: POLL,
        }))
    }

    /// A config with these credentials and the default timeouts (tests, embedding).
    pub fn new(url: &str, credentials: Credentials) -> Result<Config, Error> {
        Ok(Config {
            url: base_url(url)?,
            credentials,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            poll: POLL,
        })
    }
}

/// The URL without a trailing `/` or `/api/v1` (both forms are common in OneForm's docs);
/// only plain HTTP, which is what `formwork serve` speaks.
fn base_url(given: &str) -> Result<String, Error> {
    let url = given.trim().trim_end_matches('/');
    let url = url.strip_suffix("/api/v1").unwrap_or(url);
    let uri: hyper::Uri = url.parse().map_err(|e| {
        Error::invalid(format!("'{given}' is not a server URL ({e}); give one like http://127.0.0.1:13013"))
    })?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(url.to_string()),
        (Some("https"), _) => Err(Error::invalid(format!(
            "'{given}': formwork's client speaks plain HTTP; put a TLS proxy's plain side or the server's own address in ONEFORM_URL"
        ))),
        _ => Err(Error::invalid(format!("'{given}' is not a server URL; give one like http://127.0.0.1:13013"))),
    }
}

/// `ONEFORM_USER` + `ONEFORM_PASSWORD`, else the `ONE_AUTH` file, else `~/.one/one_auth`.
fn credentials<'a>(url: &str, var: &dyn Fn(&str) -> Option<&'a str>) -> Result<Credentials, Error> {
    match (var("ONEFORM_USER"), var("ONEFORM_PASSWORD")) {
        (Some(user), Some(password)) => return Ok(Credentials::new(user, password)),
        (Some(_), None) => {
            return Err(Error::invalid(
                "ONEFORM_USER is set but ONEFORM_PASSWORD is not; set both, or neither to use the ONE_AUTH file",
            ));
        }
        (None, Some(_)) => {
            return Err(Error::invalid(
                "ONEFORM_PASSWORD is set but ONEFORM_USER is not; set both, or neither to use the ONE_AUTH file",
            ));
        }
        (None, None) => {}
    }
    if let Some(path) = var("ONE_AUTH") {
        return Credentials::from_file(Path::new(path));
    }
    let default = var("HOME").map(|home| PathBuf::from(home).join(".one/one_auth"));
    match default.filter(|p| p.is_file()) {
        Some(path) => Credentials::from_file(&path),
        None => Err(Error::invalid(format!(
            "no credentials for the formwork server at {url}: set ONEFORM_USER and ONEFORM_PASSWORD, or ONE_AUTH to a file holding `user:password` (default ~/.one/one_auth)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_server_means_local_and_the_flag_beats_the_environment() {
        assert!(Config::resolve(None, &env(&[("ONEFORM_USER", "u")])).unwrap().is_none());
        let e = env(&[("ONEFORM_URL", "http://env:1/"), ("ONEFORM_USER", "u"), ("ONEFORM_PASSWORD", "p")]);
        assert_eq!(Config::resolve(None, &e).unwrap().unwrap().url, "http://env:1");
        let flagged = Config::resolve(Some("http://flag:2/api/v1/"), &e).unwrap().unwrap();
        assert_eq!(flagged.url, "http://flag:2");
        assert_eq!(flagged.credentials, Credentials::new("u", "p"));
    }

    #[test]
    fn credentials_come_from_the_environment_then_one_auth_then_home() {
        let tmp = tempfile::tempdir().unwrap();
        let auth = tmp.path().join("auth");
        std::fs::write(&auth, "alice:pa:ss\n").unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(home.join(".one")).unwrap();
        std::fs::write(home.join(".one/one_auth"), "bob:pw").unwrap();
        let (auth, home) = (auth.display().to_string(), home.display().to_string());
        let url = Some("http://s:1");

        let e = env(&[("ONEFORM_USER", "u"), ("ONEFORM_PASSWORD", "p"), ("ONE_AUTH", &auth), ("HOME", &home)]);
        assert_eq!(Config::resolve(url, &e).unwrap().unwrap().credentials.user, "u");
        let from_file = Config::resolve(url, &env(&[("ONE_AUTH", &auth), ("HOME", &home)])).unwrap().unwrap();
        assert_eq!(from_file.credentials, Credentials::new("alice", "pa:ss"));
        let from_home = Config::resolve(url, &env(&[("HOME", &home)])).unwrap().unwrap();
        assert_eq!(from_home.credentials, Credentials::new("bob", "pw"));

        let none = Config::resolve(url, &env(&[("HOME", "/nonexistent")])).unwrap_err().to_string();
        for name in ["ONEFORM_USER", "ONEFORM_PASSWORD", "ONE_AUTH", "~/.one/one_auth", "http://s:1"] {
            assert!(none.contains(name), "{none}");
        }
        let half = Config::resolve(url, &env(&[("ONEFORM_USER", "u")])).unwrap_err().to_string();
        assert!(half.contains("ONEFORM_PASSWORD is not"), "{half}");
        let missing = Config::resolve(url, &env(&[("ONE_AUTH", "/nonexistent/auth")])).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/auth"), "{missing}");
    }

    #[test]
    fn urls_are_checked_and_passwords_never_printed() {
        let creds = [("ONEFORM_USER", "u"), ("ONEFORM_PASSWORD", "s3cret")];
        for bad in ["https://s:1", "not a url", "ftp://s"] {
            assert!(Config::resolve(Some(bad), &env(&creds)).is_err(), "{bad}");
        }
        let config = Config::resolve(Some("http://s:1"), &env(&creds)).unwrap().unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.credentials.basic(), "Basic dTpzM2NyZXQ=");
    }
}
