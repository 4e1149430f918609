//! The provider exits when the process that started it (Terraform) goes away: started by a
//! shell that then becomes a plain `sleep` (same pid, so still the provider's parent), it serves
//! until that parent is killed, then exits.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Far above the provider's poll interval; only bounds a test that would otherwise hang.
const WITHIN: Duration = Duration::from_secs(30);

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
fn has_exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..].split_whitespace().next() == Some("Z"),
        Err(_) => true,
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {WITHIN:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_provider_exits_when_its_parent_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("handshake");
    let provider = env!("CARGO_BIN_EXE_terraform-provider-sim");
    #[allow(clippy::disallowed_methods, reason = "the test stands in for Terraform, the provider's parent")]
    let mut parent = Command::new("/bin/sh")
        .args(["-c", r#""$0" > "$1" 2>&1 & echo $!; exec sleep 600"#, provider, out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let pid: u32 = line.trim().parse().unwrap();
    // The handshake line is printed once the provider serves (after its parent check started).
    let serving = || fs::read_to_string(&out).is_ok_and(|text| text.contains("|6|tcp|"));
    wait_until("the provider printed its handshake", serving);
    assert!(!has_exited(pid), "the provider serves while its parent lives");

    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_until("the provider exited after its parent was killed", || has_exited(pid));
}
