//! Throwaway PostgreSQL for tests: one cluster per test process (or the one scripts/test
//! started, named by `FORMWORK_TEST_POSTGRES`) and a fresh, empty database per test.
//!
//! Used by the integration tests (`common::postgres`) and by the library's unit tests
//! (`#[path = "../../tests/common/postgres.rs"] mod pg;`), so it uses nothing else from
//! tests/common.
//!
//! A test process has no teardown hook, and a harness may kill it: a cluster this module starts
//! is stopped by a watchdog, a detached `sh` in its own process group that waits for the test
//! process to end, whatever the way, and then runs `scripts/postgres stop`. The watchdog
//! starts before the cluster, so a test process killed while the cluster starts leaves
//! nothing either.

#![allow(dead_code)]
// Tests start the cluster with scripts/postgres and read FORMWORK_TEST_POSTGRES.
#![allow(clippy::disallowed_methods)]

use std::hash::BuildHasher;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ::postgres::{Client, NoTls};

/// The URL of the cluster the tests share: `FORMWORK_TEST_POSTGRES` if set (scripts/test sets
/// it), else a cluster started for this test process on first use.
pub fn server_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("FORMWORK_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => url,
        _ => start_cluster(),
    })
    .clone()
}

/// Creates a new, empty database named `fw_<pid>_<counter>_<random>` and returns its URL. The
/// random part keeps names apart across runs against a long-lived `FORMWORK_TEST_POSTGRES`.
/// Safe to call from many threads: each call has its own connection, and the copy is made from
/// `template0`, to which nobody can connect (copying `template1` fails while anyone is on it).
pub fn fresh_database() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now()) as u32;
    let name = format!("fw_{}_{}_{random:08x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let server = server_url();
    connect(&server)
        .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
        .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e:?}"));
    with_database(&server, &name)
}

/// Drops a database [`fresh_database`] made, closing its connections; best effort (errors are
/// ignored), and any other database name is left alone.
pub fn drop_database(url: &str) {
    let (_, name, _) = split_url(url);
    if !name.starts_with("fw_") || name.contains('"') {
        return;
    }
    if let Ok(mut client) = Client::connect(&server_url(), NoTls) {
        let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    }
}

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e:?}"))
}

/// `url` with its database (the path) replaced by `name`; user, host, port and query stay.
fn with_database(url: &str, name: &str) -> String {
    let (authority, _, query) = split_url(url);
    format!("{authority}/{name}{query}")
}

/// `postgres://user@host:port/db?query` as (`postgres://user@host:port`, `db`, `?query`).
fn split_url(url: &str) -> (&str, &str, &str) {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or_else(|| {
        panic!("a PostgreSQL URL (postgres://user@host:port/db) is needed, not {url:?}: check FORMWORK_TEST_POSTGRES")
    });
    let authority_end = url[scheme_end..].find(['/', '?']).map_or(url.len(), |i| scheme_end + i);
    let query_start = url[authority_end..].find('?').map_or(url.len(), |i| authority_end + i);
    (&url[..authority_end], url[authority_end..query_start].trim_start_matches('/'), &url[query_start..])
}

/// Starts a cluster with scripts/postgres in a new temporary folder, watched by the watchdog
/// that stops it and removes the folder once this process has ended.
fn start_cluster() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres");
    let dir = tempfile::Builder::new()
        .prefix("formwork-pg-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot make a folder for PostgreSQL: {e}"))
        .keep();
    spawn_watchdog(&script, &dir);
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} start {} failed ({}):\n{}",
        script.display(),
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_string()
}

/// The detached `sh` that waits for this process to end, then stops the cluster in `dir`. Its
/// own process group, so a harness that kills the test's group spares it; no inherited stdout
/// or stderr, so nothing reading the test's output waits for it. Never waited for: it outlives
/// this process by design, and init reaps it.
#[allow(clippy::zombie_processes)]
fn spawn_watchdog(script: &Path, dir: &Path) {
    let watch = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" stop "$3""#;
    Command::new("sh")
        .args(["-c", watch, "formwork-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(script)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the PostgreSQL watchdog (sh): {e}"));
}
