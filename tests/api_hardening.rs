//! `formwork serve`'s protections, through the binary: HTTPS with a certificate (and plain HTTP
//! on that port answered with the address to use), every wrong TLS file refused before anything
//! is written, each limit answered with its status (body 413, head 431, connections 503, request
//! time 408, a slow head cut off), failed logins slowed down (429), and the audit log: one line
//! per write request, with who, what, when and the result, and no secret; reopened on SIGHUP
//! after a rotation.
//!
//! The server runs with fake tools and no OpenNebula endpoint: one `user:password` pair (the
//! ONE_AUTH file) is oneadmin.

// Tests spawn formwork.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Home;
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Response, Server, read_response};
use serde_json::{Value, json};

const USER: &str = "oneadmin";
const PASSWORD: &str = "hardening-pw-4e1";
/// The provider's sensitive credential: it must not reach the audit log.
const TOKEN: &str = "audit-canary-90d2";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

/// Fake tools, the built-in drivers, and ONE_AUTH holding the one accepted pair.
fn home(env: &[(&str, &str)]) -> Home {
    let mut home = Home::with_fakes();
    let one_auth = home.tmp.path().join("one_auth");
    std::fs::write(&one_auth, format!("{USER}:{PASSWORD}")).unwrap();
    home.env.push(("ONE_AUTH".into(), one_auth.display().to_string()));
    home.env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    home
}

fn tls_args() -> Vec<String> {
    let (cert, key) = (fixture("cert.pem"), fixture("key.pem"));
    vec!["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), key.display().to_string()]
}

/// One request over TLS, trusting only the test certificate; the negotiated protocol too.
fn https(addr: &str, method: &str, path: &str, auth: Option<(&str, &str)>) -> (Response, rustls::ProtocolVersion) {
    let mut roots = rustls::RootCertStore::empty();
    let cert = std::fs::read(fixture("cert.pem")).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&cert).unwrap();
    roots.add(der).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((user, password)) = auth {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            common::server::base64(format!("{user}:{password}").as_bytes())
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let response = read_response(&mut BufReader::new(&mut stream), method, path);
    let version = stream.conn.protocol_version().expect("a TLS session was set up");
    (response, version)
}

#[test]
fn tls_serves_https_and_answers_plain_http_with_the_address_to_use() {
    let home = home(&[]);
    let args = tls_args();
    let server = Server::start_with(&home, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(server.scheme, "https", "the address line names the scheme");

    let (health, version) = https(&server.addr, "GET", "/health", None);
    health.expect(200);
    assert!(matches!(version, rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2), "{version:?}");
    let (providers, _) = https(&server.addr, "GET", "/api/v1/providers", Some((USER, PASSWORD)));
    assert!(providers.expect(200).json().is_array(), "the providers, as a list");
    let (refused, _) = https(&server.addr, "GET", "/api/v1/providers", Some((USER, "wrong")));
    refused.error(401);

    let plain = Client::new(&server.addr).get("/health").error(400);
    let message = plain["message"].as_str().unwrap();
    assert!(message.contains(&format!("https://{}", server.addr)), "names the address to use: {message}");
}

#[test]
fn every_wrong_tls_setting_is_refused_before_anything_is_written() {
    let home = home(&[]);
    let path = |name: &str| fixture(name).display().to_string();
    let missing = home.tmp.path().join("nowhere.pem").display().to_string();
    let cases: [(Vec<String>, &str); 5] = [
        (vec!["--tls-cert".into(), missing.clone(), "--tls-key".into(), path("key.pem")], "cannot read it"),
        (vec!["--tls-cert".into(), path("key.pem"), "--tls-key".into(), path("key.pem")], "no CERTIFICATE block"),
        (vec!["--tls-cert".into(), path("cert.pem"), "--tls-key".into(), path("cert.pem")], "no PRIVATE KEY block"),
        (vec!["--tls-cert".into(), path("cert.pem"), "--tls-key".into(), path("other-key.pem")], "do not make a pair"),
        (vec!["--tls-cert".into(), path("cert.pem")], "--tls-key"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(extra.iter().map(String::as_str));
        let run = home.run(&args);
        assert_ne!(run.code(), 0, "{args:?} started");
        assert!(run.stderr().contains(expected), "{args:?}: expected {expected:?} in:\n{}", run.stderr());
        if expected != "--tls-key" {
            assert!(
                run.stderr().contains(extra[1].as_str()) || run.stderr().contains(extra[3].as_str()),
                "names the file"
            );
        }
        assert!(!home.data_dir().exists(), "{args:?} wrote {}", home.data_dir().display());
    }
    let half = self::home(&[("FORMWORK_TLS_CERT", &path("cert.pem"))]);
    let run = half.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_ne!(run.code(), 0);
    assert!(run.stderr().contains("TLS needs both a certificate and its key"), "{}", run.stderr());
}

/// Reads until the peer closes; how long that took, or `None` if it was still open at `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut sink = [0u8; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => return Some(start.elapsed()),
            Err(_) => return None,
        }
    }
}

#[test]
fn each_limit_is_answered_with_its_status() {
    let home = home(&[
        ("FORMWORK_MAX_BODY_BYTES", "1024"),
        ("FORMWORK_MAX_HEADER_BYTES", "8192"),
        ("FORMWORK_MAX_CONNECTIONS", "2"),
        ("FORMWORK_REQUEST_TIMEOUT", "2"),
    ]);
    let server = Server::start(&home);
    let admin = server.client(USER, PASSWORD);

    let big = json!({"driver": "sim", "name": "x".repeat(2048)});
    admin.post("/api/v1/providers", &big).error(413);

    let long = "x".repeat(10_000);
    let response = admin.raw("GET", "/health", &[("X-Padding", &long)], None);
    assert_eq!(response.status, 431, "a head over max_header_bytes: {}", response.text());
    admin.get("/health").expect(200);

    // A body that never finishes: the request is abandoned after request_timeout.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let auth = common::server::base64(format!("{USER}:{PASSWORD}").as_bytes());
    let head = format!(
        "POST /api/v1/providers HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"driver\":"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let timed_out = read_response(&mut BufReader::new(&mut stream), "POST", "/api/v1/providers").error(408);
    assert!(started.elapsed() >= Duration::from_millis(1900), "answered after {:?}", started.elapsed());
    assert!(timed_out["message"].as_str().unwrap().contains("request_timeout"), "{timed_out}");
    let audit = std::fs::read_to_string(home.data_dir().join("audit.log")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["method"], &last["path"], &last["status"], &last["user"]),
        (&json!("POST"), &json!("/api/v1/providers"), &json!(408), &json!(USER)),
        "the abandoned write is audited: {audit}"
    );

    // A head that never finishes: the connection is closed.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(20));
    assert!(closed.is_some_and(|t| t >= Duration::from_millis(1500)), "slow head closed after {closed:?}");

    // Two idle connections take both slots; a third is answered 503 and closed.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let busy = admin.get("/health");
    assert_eq!(busy.status, 503, "{}", busy.text());
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert!(busy.json()["message"].as_str().unwrap().contains("max_connections"), "{}", busy.text());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.get("/health").status != 200 {
        assert!(Instant::now() < deadline, "slots never came back after the idle connections closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failed_logins_slow_their_client_down_and_every_write_is_audited_without_secrets() {
    let home = home(&[]);
    let server = Server::start(&home);
    let admin = server.client(USER, PASSWORD);
    let intruder = server.client(USER, "guess-1b7");

    // Writes: a provider made (its token is a secret), a refused login, an unknown driver, a delete.
    let provider = json!({"driver": "sim", "name": "audited", "connection_values": {"api_token": TOKEN}});
    let made = admin.post("/api/v1/providers", &provider).expect(201).json();
    let id = made["DOCUMENT"]["ID"].as_str().unwrap().to_string();
    admin.get(&format!("/api/v1/providers/{id}")).expect(200);
    intruder.post("/api/v1/providers", &provider).error(401);
    admin.post("/api/v1/providers", &json!({"driver": "nope", "name": "x"})).error(404);
    admin.delete(&format!("/api/v1/providers/{id}")).expect(204);

    // Five refusals in a row, then the intruder's user must wait from this address, right
    // password or not; another user from the same address is still checked.
    for _ in 0..5 {
        intruder.get("/api/v1/providers").error(401);
    }
    let throttled = admin.get("/api/v1/providers");
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert_eq!(throttled.header("retry-after"), Some("1"));
    assert!(throttled.json()["message"].as_str().unwrap().contains("too many failed logins"), "{}", throttled.text());
    server.client("alice", "guess").get("/api/v1/providers").error(401);
    std::thread::sleep(Duration::from_millis(1100));
    admin.get("/api/v1/providers").expect(200);
    intruder.get("/api/v1/providers").error(401);
    admin.get("/api/v1/providers").expect(200);

    let audit_path = home.data_dir().join("audit.log");
    let mode = std::fs::metadata(&audit_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit log is the owner's only");
    let text = std::fs::read_to_string(&audit_path).unwrap();
    for secret in [TOKEN, PASSWORD, "guess-1b7"] {
        assert!(!text.contains(secret), "{secret} is in the audit log:\n{text}");
    }
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seen: Vec<(String, String, u64, Value)> = lines
        .iter()
        .map(|l| {
            let (method, path) = (l["method"].as_str().unwrap().to_string(), l["path"].as_str().unwrap().to_string());
            (method, path, l["status"].as_u64().unwrap(), l["user"].clone())
        })
        .collect();
    let expected = vec![
        ("POST".to_string(), "/api/v1/providers".to_string(), 201, json!(USER)),
        ("POST".into(), "/api/v1/providers".into(), 401, json!(USER)),
        ("POST".into(), "/api/v1/providers".into(), 404, json!(USER)),
        ("DELETE".into(), format!("/api/v1/providers/{id}"), 204, json!(USER)),
    ];
    assert_eq!(seen, expected, "one line per write request, reads left out:\n{text}");
    assert_eq!(lines[1]["authenticated"], json!(false), "the refused login is marked");
    assert_eq!(lines[0]["uid"], json!(0));
    for line in &lines {
        assert!(line["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")), "{line}");
        let time = line["time"].as_str().unwrap();
        assert!(time.len() >= 20 && time.ends_with('Z') && time.starts_with("20"), "{line}");
        assert!(line["ms"].is_u64(), "{line}");
    }
    assert!(!server.log().contains(TOKEN) && !server.log().contains(PASSWORD), "the server log holds a secret");
}

/// Forty wrong passwords for one user, sent at once from one address, to an OpenNebula that
/// takes a while to answer: each attempt counts before OpenNebula answers, so only the free
/// ones are checked (401) and most are slowed down unchecked (429).
#[test]
fn wrong_logins_sent_at_once_are_slowed_down_too() {
    let mut home = home(&[]);
    let sim = Onesim::with_faults(
        &home.tmp.path().join("onesim.json"),
        &["--user", "alice:alice-pw-77", "--latency-ms", "300"],
    );
    use_endpoint(&mut home, &sim);
    let server = Server::start(&home);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let guesses: Vec<_> = (0..40)
            .map(|n| {
                let guesser = server.client("alice", &format!("guess-{n}"));
                scope.spawn(move || guesser.get("/api/v1/providers").status)
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    let (checked, throttled) = (count(401), count(429));
    assert_eq!(checked + throttled, 40, "{statuses:?}");
    assert!(throttled > checked, "{checked} guesses reached OpenNebula, {throttled} were slowed down");
    drop(server);
    sim.stop();
}

/// Only the open routes (the OpenAPI document, `/health`, `/metrics`, the welcome line) are
/// served without credentials; a path that merely ends like one is not.
#[test]
fn only_the_open_routes_skip_authentication() {
    let home = home(&[]);
    let server = Server::start(&home);
    let anonymous = server.anonymous();
    anonymous.delete("/api/v1/providers/openapi.json").error(401);
    anonymous.get("/api/v1/providers/openapi.json").error(401);
    let spec = anonymous.get("/api/v1/openapi.json").expect(200).json();
    assert!(spec["paths"]["/providers"].is_object(), "{spec}");
    for open in ["/health", "/metrics", "/", "/api/v1/"] {
        anonymous.get(open).expect(200);
    }
}

/// Log rotation as logrotate's `create` does it: the log is moved away, SIGHUP makes the server
/// write to a new file at the same path (0600), and the server goes on.
#[test]
fn sighup_reopens_the_audit_log_after_a_rotation() {
    let home = home(&[]);
    let mut server = Server::start(&home);
    let admin = server.client(USER, PASSWORD);
    let audit = home.data_dir().join("audit.log");
    let rotated = home.data_dir().join("audit.log.1");
    admin.post("/api/v1/providers", &json!({"driver": "nope", "name": "before"})).error(404);
    std::fs::rename(&audit, &rotated).unwrap();
    admin.post("/api/v1/providers", &json!({"driver": "nope", "name": "moved"})).error(404);

    let hup = std::process::Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !audit.exists() {
        assert!(server.is_running(), "SIGHUP ended the server:\n{}", server.log());
        assert!(Instant::now() < deadline, "no new audit log after SIGHUP:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    admin.post("/api/v1/providers", &json!({"driver": "nope", "name": "after"})).error(404);
    assert!(server.is_running(), "the server goes on after SIGHUP");

    let statuses = |path: &Path| -> Vec<u64> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["status"].as_u64().unwrap()).collect()
    };
    assert_eq!(statuses(&rotated), [404, 404], "before the signal, lines go on to the moved file");
    assert_eq!(statuses(&audit), [404], "after it, to the new file");
    assert_eq!(std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777, 0o600);
}
