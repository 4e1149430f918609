//! Which server the client talks to and as whom, resolved once from the command line and the
//! environment snapshot `main` took, as OneForm's CLIs resolve theirs (spec §4.3): the URL from
//! `--server` or `ONEFORM_URL`; credentials from `ONEFORM_USER` and `ONEFORM_PASSWORD`, else
//! the `user:password` file named by `ONE_AUTH`, else `~/.one/one_auth`. For an `https://` URL,
//! the certificates the server's must chain to: the PEM file `ONEFORM_CA_FILE` names, else
//! `SSL_CERT_FILE` (OpenSSL's variable, which curl and Ruby's CLIs honour too), else the system
//! bundle.

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

/// The system's bundle of public CAs where Debian, Ubuntu, Alpine and Arch keep it (what their
/// OpenSSL reads); used when no variable names another.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The server and how to reach it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's base URL without `/api/v1`, e.g. `http://127.0.0.1:13013`.
    pub url: String,
    pub credentials: Credentials,
    /// The certificates an `https://` server is checked against; `None` for `http://`.
    pub ca_file: Option<CaFile>,
    /// Bounds the TCP connect and, for `https://`, the TLS handshake.
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

/// A PEM file of trusted certificates and the setting that named it (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    pub path: PathBuf,
    pub named_by: CaSource,
}

/// Which setting named the [`CaFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaSource {
    /// `ONEFORM_CA_FILE`: formwork's own, beside `ONEFORM_URL`.
    OneformCaFile,
    /// `SSL_CERT_FILE`: OpenSSL's, shared with other tools.
    SslCertFile,
    /// Neither was set: the system bundle.
    System,
}

impl std::fmt::Display for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match self.named_by {
            CaSource::OneformCaFile => "ONEFORM_CA_FILE",
            CaSource::SslCertFile => "SSL_CERT_FILE",
            CaSource::System => "the system bundle",
        };
        write!(f, "{} ({source})", self.path.display())
    }
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
        let ca_file = ca_file(&url, &var, Path::new(SYSTEM_BUNDLE))?;
        Ok(Some(Config {
            url,
            credentials,
            ca_file,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            poll: POLL,
        }))
    }

    /// A config with these credentials, the default timeouts and, for `https://`, the system
    /// bundle (tests, embedding; set `ca_file` to trust another file).
    pub fn new(url: &str, credentials: Credentials) -> Result<Config, Error> {
        let url = base_url(url)?;
        Ok(Config {
            ca_file: ca_file(&url, &|_| None, Path::new(SYSTEM_BUNDLE))?,
            url,
            credentials,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            poll: POLL,
        })
    }
}

/// The URL without a trailing `/` or `/api/v1` (both forms are common in OneForm's docs);
/// `http://` or `https://`, what `formwork serve` speaks.
fn base_url(given: &str) -> Result<String, Error> {
    let url = given.trim().trim_end_matches('/');
    let url = url.strip_suffix("/api/v1").unwrap_or(url);
    let uri: hyper::Uri = url.parse().map_err(|e| {
        Error::invalid(format!("'{given}' is not a server URL ({e}); give one like http://127.0.0.1:13013"))
    })?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(url.to_string()),
        (Some(scheme), Some(_)) => {
            Err(Error::invalid(format!("'{given}': formwork servers speak http:// or https://, not {scheme}://")))
        }
        _ => Err(Error::invalid(format!("'{given}' is not a server URL; give one like http://127.0.0.1:13013"))),
    }
}

/// Whether `url` (checked by [`base_url`]) is `https://`.
fn is_https(url: &str) -> bool {
    url.parse::<hyper::Uri>().is_ok_and(|uri| uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS))
}

/// For `https://`: `ONEFORM_CA_FILE`, else `SSL_CERT_FILE`, else `system` if it is a file. The
/// file is read when the client is built ([`super::tls`]), where its errors are named.
fn ca_file<'a>(url: &str, var: &dyn Fn(&str) -> Option<&'a str>, system: &Path) -> Result<Option<CaFile>, Error> {
    if !is_https(url) {
        return Ok(None);
    }
    let named = |path: &str, named_by| Ok(Some(CaFile { path: PathBuf::from(path), named_by }));
    if let Some(path) = var("ONEFORM_CA_FILE") {
        return named(path, CaSource::OneformCaFile);
    }
    if let Some(path) = var("SSL_CERT_FILE") {
        return named(path, CaSource::SslCertFile);
    }
    if system.is_file() {
        return Ok(Some(CaFile { path: system.to_path_buf(), named_by: CaSource::System }));
    }
    Err(Error::invalid(format!(
        "no certificates to check the formwork server at {url} against (no {} on this machine): set ONEFORM_CA_FILE to a PEM file holding the server's certificate or the CA that signed it",
        system.display()
    )))
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
        for (bad, says) in [("not a url", "not a server URL"), ("ftp://s", "not ftp://"), ("https://", "not a server")]
        {
            let error = Config::resolve(Some(bad), &env(&creds)).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
        let config = Config::resolve(Some("http://s:1"), &env(&creds)).unwrap().unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.credentials.basic(), "Basic dTpzM2NyZXQ=");
    }

    #[test]
    fn https_trusts_oneform_ca_file_then_ssl_cert_file_then_the_system_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let system = tmp.path().join("bundle.crt");
        let vars = env(&[("ONEFORM_CA_FILE", "/ca/mine.pem"), ("SSL_CERT_FILE", "/ca/openssl.pem")]);
        let var = |only: &'static [&'static str]| {
            let vars = &vars;
            move |key: &str| vars.get(key).filter(|_| only.contains(&key)).map(String::as_str)
        };
        let https = "https://s:1";
        let both = ca_file(https, &var(&["ONEFORM_CA_FILE", "SSL_CERT_FILE"]), &system).unwrap().unwrap();
        assert_eq!(both, CaFile { path: "/ca/mine.pem".into(), named_by: CaSource::OneformCaFile });
        assert_eq!(both.to_string(), "/ca/mine.pem (ONEFORM_CA_FILE)");
        let openssl = ca_file(https, &var(&["SSL_CERT_FILE"]), &system).unwrap().unwrap();
        assert_eq!(openssl, CaFile { path: "/ca/openssl.pem".into(), named_by: CaSource::SslCertFile });

        let none = ca_file(https, &var(&[]), &system).unwrap_err().to_string();
        for name in ["ONEFORM_CA_FILE", https, &system.display().to_string()] {
            assert!(none.contains(name), "{none}");
        }
        std::fs::write(&system, "").unwrap();
        let bundle = ca_file(https, &var(&[]), &system).unwrap().unwrap();
        assert_eq!(bundle, CaFile { path: system.clone(), named_by: CaSource::System });

        assert_eq!(
            ca_file("http://s:1", &var(&["ONEFORM_CA_FILE"]), &system).unwrap(),
            None,
            "plain HTTP trusts nothing"
        );
        let creds = [("ONEFORM_USER", "u"), ("ONEFORM_PASSWORD", "p"), ("ONEFORM_CA_FILE", "/ca/mine.pem")];
        let config = Config::resolve(Some("https://s:1/api/v1"), &env(&creds)).unwrap().unwrap();
        assert_eq!((config.url.as_str(), config.ca_file.unwrap().path), ("https://s:1", "/ca/mine.pem".into()));
    }
}
