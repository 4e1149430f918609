//! Who owns an operation: a process, identified by its pid and the time it started (from
//! `/proc/<pid>/stat`), so a pid reused by another process is never mistaken for the owner.

use crate::store::Owner;

/// This process.
pub fn current() -> Owner {
    let pid = std::process::id() as i64;
    Owner { pid, token: token(pid).unwrap_or_else(|| format!("{pid}:?")) }
}

/// Whether the process that owned an operation is still the same live process.
pub fn is_alive(owner: &Owner) -> bool {
    match token(owner.pid) {
        Some(token) => token == owner.token,
        // Without /proc, fall back on signal 0: alive, but a reused pid looks alive too.
        None => {
            let Ok(pid) = i32::try_from(owner.pid) else {
                return false;
            };
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        }
    }
}

/// `<pid>:<start time in clock ticks since boot>`.
fn token(pid: i64) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields restart after the
    // last ')'. Start time is field 22, the 20th after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let start = after.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = current();
        assert!(is_alive(&me));
        let impostor = Owner { pid: me.pid, token: format!("{}:0", me.pid) };
        assert!(!is_alive(&impostor), "same pid, different start time");
        let gone = Owner { pid: i32::MAX as i64, token: "x".into() };
        assert!(!is_alive(&gone));
    }
}
