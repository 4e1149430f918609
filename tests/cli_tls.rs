//! The CLI as an HTTPS client, through the binary: `formwork --server https://…` against a
//! `formwork serve --tls-cert … --tls-key …` reads and writes when it trusts the server's
//! certificate (`ONEFORM_CA_FILE`, by IP address and by host name), and otherwise fails with
//! words saying why and what to set: a certificate nobody it trusts signed, a CA file with no
//! certificate, `http://` against the TLS port (the server's 400 names the https:// address),
//! and `https://` against a plain HTTP server.
//!
//! The server runs with fake tools and no OpenNebula endpoint: one `user:password` pair (the
//! ONE_AUTH file) is oneadmin.

mod common;

use std::path::{Path, PathBuf};

use common::Home;
use common::server::Server;
use serde_json::json;

const USER: &str = "oneadmin";
const PASSWORD: &str = "cli-tls-pw-71c";

fn fixture(path: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path);
    path.display().to_string()
}

/// A server home with fake tools and ONE_AUTH holding the one accepted pair.
fn server_home() -> Home {
    let mut home = Home::with_fakes();
    let one_auth = home.tmp.path().join("one_auth");
    std::fs::write(&one_auth, format!("{USER}:{PASSWORD}")).unwrap();
    home.env.push(("ONE_AUTH".into(), one_auth.display().to_string()));
    home
}

fn start_tls(home: &Home) -> Server {
    let (cert, key) = (fixture("tls/cert.pem"), fixture("tls/key.pem"));
    let server = Server::start_with(home, &["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(server.scheme, "https");
    server
}

/// A client home with the credentials and `env`, and no certificates unless `env` names some:
/// SSL_CERT_FILE points at an empty file, so the machine's own bundle never takes part.
fn client(env: &[(&str, &str)]) -> Home {
    let mut home = Home::with_builtin();
    let empty = home.tmp.path().join("no-certificates.pem");
    std::fs::write(&empty, "").unwrap();
    home.env.push(("SSL_CERT_FILE".into(), empty.display().to_string()));
    home.env.push(("ONEFORM_USER".into(), USER.into()));
    home.env.push(("ONEFORM_PASSWORD".into(), PASSWORD.into()));
    for (key, value) in env {
        home.env.retain(|(k, _)| k != key);
        home.env.push((key.to_string(), value.to_string()));
    }
    home
}

/// Runs a command that must fail; returns its stderr, checked free of the password.
fn failure(home: &Home, args: &[&str]) -> String {
    let run = home.run(args);
    assert_ne!(run.code(), 0, "expected failure of {args:?}\nstdout:\n{}", run.stdout());
    let stderr = run.stderr();
    assert!(!stderr.contains(PASSWORD), "the password reached stderr:\n{stderr}");
    stderr
}

#[test]
fn a_trusted_certificate_lets_every_command_through_by_ip_and_by_name() {
    let home = server_home();
    let server = start_tls(&home);
    let port = server.addr.rsplit(':').next().unwrap();
    let trusting = client(&[("ONEFORM_CA_FILE", &fixture("tls/cert.pem"))]);
    let url = format!("https://{}", server.addr);

    let ids = |url: &str| -> Vec<i64> {
        let listed = trusting.run(&["--server", url, "--json", "provider", "list"]).ok().json();
        let rows = listed.as_array().unwrap_or_else(|| panic!("a list: {listed}"));
        rows.iter().map(|p| p["id"].as_i64().unwrap_or_else(|| panic!("an id in {p}"))).collect()
    };
    let before = ids(&url);
    let values = json!({"api_token": "cli-tls-token"}).to_string();
    let made = trusting
        .run_with_stdin(&["--server", &url, "--json", "provider", "create", "sim", "--values", "-"], Some(&values))
        .ok()
        .json();
    let id = made["id"].as_i64().unwrap_or_else(|| panic!("an id in {made}"));
    assert!(!before.contains(&id), "a new provider: {id} in {before:?}");

    // The certificate names localhost too: a host name is checked as well as an address.
    let by_name = format!("https://localhost:{port}/api/v1");
    assert_eq!(ids(&by_name), [before.clone(), vec![id]].concat(), "the created provider, listed");
    trusting.run(&["--server", &by_name, "provider", "delete", &id.to_string()]).ok();
    assert_eq!(ids(&url), before, "deleted over HTTPS");
}

#[test]
fn an_untrusted_or_plain_connection_fails_saying_what_to_set() {
    let home = server_home();
    let server = start_tls(&home);
    let url = format!("https://{}", server.addr);

    let unrelated = client(&[("SSL_CERT_FILE", &fixture("cli_tls/unrelated-ca.pem"))]);
    let stderr = failure(&unrelated, &["--server", &url, "provider", "list"]);
    for words in ["is not trusted", "unrelated-ca.pem (SSL_CERT_FILE)", "set ONEFORM_CA_FILE", &url] {
        assert!(stderr.contains(words), "lacks {words:?}:\n{stderr}");
    }
    assert!(!stderr.contains("is `formwork serve` running"), "the server runs:\n{stderr}");

    let none = client(&[]);
    let stderr = failure(&none, &["--server", &url, "provider", "list"]);
    assert!(stderr.contains("no-certificates.pem (SSL_CERT_FILE) holds no CERTIFICATE block"), "{stderr}");
    let missing = client(&[("ONEFORM_CA_FILE", "/nonexistent/ca.pem")]);
    let stderr = failure(&missing, &["--server", &url, "provider", "list"]);
    assert!(stderr.contains("cannot read the CA file /nonexistent/ca.pem (ONEFORM_CA_FILE)"), "{stderr}");

    let trusting = client(&[("ONEFORM_CA_FILE", &fixture("tls/cert.pem"))]);
    let plain = format!("http://{}", server.addr);
    let stderr = failure(&trusting, &["--server", &plain, "provider", "list"]);
    assert!(stderr.contains(&format!("this port speaks HTTPS: use {url}")), "the server's 400:\n{stderr}");

    let plain_home = server_home();
    let plain_server = Server::start(&plain_home);
    assert_eq!(plain_server.scheme, "http");
    let stderr = failure(&trusting, &["--server", &format!("https://{}", plain_server.addr), "provider", "list"]);
    assert!(stderr.contains("did not answer in TLS") && stderr.contains("use an http:// URL"), "{stderr}");
}
