//! A child's process group as another formwork process can find it again ([`Group`]: the
//! group id, its leader's start time, the mark every process of the run carries), and
//! [`stop_left_behind`], with which the process that takes over a dead owner's operation stops
//! what that owner's tools left running.
//!
//! Who may be signalled. A recorded group id is only a number: once the group's last process is
//! gone the kernel may give it to a new process, which must never be signalled. A process is
//! stopped only if it is in the recorded group *and* either is the group's leader with the
//! recorded start time, or carries the run's mark in its environment ([`MARK_VAR`], set on the
//! tool and inherited by what it starts). The leader's start time alone is not enough: the usual
//! leftover is a helper (a Terraform provider) whose leader, the tool, died with formwork, and
//! then there is no leader left to check. A mark names one run (formwork's pid and start time and
//! a counter), so no process outside that run has it; a process that cleared its environment or
//! hides it (setuid) is left alone. Each candidate is opened as a pidfd *before* it is checked
//! and is signalled through that pidfd, so the process checked is the process signalled: if its
//! pid was reused in between, the signal goes to the exited process, that is nowhere.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that marks every process of one run.
pub const MARK_VAR: &str = "FORMWORK_TOOL";

/// A started child's process group (its id is the child's pid), with what identifies it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i32,
    /// The leader's start time, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub leader_start: u64,
    /// The value of [`MARK_VAR`] the run's processes carry.
    pub mark: String,
}

/// What [`stop_left_behind`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Processes of the group that were signalled.
    pub signalled: usize,
    /// Of those, the ones still there after the grace period, killed.
    pub killed: usize,
}

/// A process's state, group and start time, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Exited, waiting for its parent to collect its status.
    pub zombie: bool,
    pub group: i32,
    pub start: u64,
}

/// Reads `/proc/<pid>/stat`; None when the process is gone (or there is no /proc).
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields restart after the
    // last ')'. State, group and start time are fields 3, 5 and 22: the 1st, 3rd and 20th
    // after it.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        zombie: *fields.first()? == "Z",
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether any process of group `id` still runs (an exited one waiting to be collected does not
/// count).
pub fn has_members(id: i32) -> bool {
    running_in(id).next().is_some()
}

/// The pids of group `id`'s processes that have not exited, from `/proc`.
fn running_in(id: i32) -> impl Iterator<Item = i32> {
    let entries = std::fs::read_dir("/proc").into_iter().flatten();
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |pid| stat(*pid).is_some_and(|s| s.group == id && !s.zombie))
}

/// A mark no other run carries: this process's pid and start time, and a counter.
pub(crate) fn new_mark() -> String {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let start = i32::try_from(pid).ok().and_then(stat).map_or(0, |s| s.start);
    format!("{pid}.{start}.{}", RUNS.fetch_add(1, Ordering::Relaxed))
}

/// Stops the processes of `group` left behind by a dead formwork (see the module doc for which
/// ones): SIGTERM, up to `grace` for them to exit, then SIGKILL. Blocks for up to `grace`.
pub fn stop_left_behind(group: &Group, grace: Duration) -> Stopped {
    // No group of a tool has an id below 1 (kernel threads show group 0).
    if group.id < 1 {
        return Stopped::default();
    }
    let members = members(group);
    for (_, pidfd) in &members {
        send(pidfd, libc::SIGTERM);
    }
    let alive = wait_for_exit(&members, grace);
    for (_, pidfd) in &alive {
        send(pidfd, libc::SIGKILL);
    }
    wait_for_exit(&alive, grace);
    Stopped { signalled: members.len(), killed: alive.len() }
}

/// The processes of `group` that may be signalled, each with its pidfd.
fn members(group: &Group) -> Vec<(i32, OwnedFd)> {
    // Opened first, checked after: see the module doc.
    let opened = running_in(group.id).filter_map(|pid| Some((pid, pidfd_open(pid)?)));
    opened.filter(|(pid, _)| belongs(*pid, group)).collect()
}

fn belongs(pid: i32, group: &Group) -> bool {
    let Some(now) = stat(pid) else {
        return false;
    };
    let is_leader = pid == group.id && now.start == group.leader_start;
    now.group == group.id && (is_leader || carries(pid, &group.mark))
}

/// Whether the process's environment (as it was exec'd) holds `MARK_VAR=mark`.
fn carries(pid: i32, mark: &str) -> bool {
    let wanted = format!("{MARK_VAR}={mark}");
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|environ| environ.split(|b| *b == 0).any(|entry| entry == wanted.as_bytes()))
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; nothing is
    // borrowed. A descriptor it returns is owned by nothing else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(pidfd: &OwnedFd, signal: i32) {
    // SAFETY: a valid descriptor, a signal number, no siginfo (null is allowed) and no flags.
    let sent = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    // ESRCH: it exited meanwhile, which is what was wanted.
    if sent != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
        tracing::warn!(signal, error = %io::Error::last_os_error(), "cannot signal a process left behind");
    }
}

/// Waits up to `limit` for the processes to exit (a pidfd turns readable when its process
/// does); returns those still running.
fn wait_for_exit(members: &[(i32, OwnedFd)], limit: Duration) -> Vec<(i32, OwnedFd)> {
    let deadline = Instant::now() + limit;
    let mut running: Vec<(i32, OwnedFd)> =
        members.iter().filter_map(|(pid, fd)| Some((*pid, fd.try_clone().ok()?))).collect();
    while !running.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut polled: Vec<libc::pollfd> = running
            .iter()
            .map(|(_, fd)| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `polled` is a live array of `polled.len()` pollfd structures.
        let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
        if ready < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        running = running.into_iter().zip(&polled).filter(|(_, p)| p.revents == 0).map(|(member, _)| member).collect();
        if ready <= 0 || left.is_zero() {
            break;
        }
    }
    running
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Stdio};

    use super::*;

    /// Blocks SIGTERM (one sent stays pending, where /proc shows it; only SIGKILL ends it),
    /// prints its pid and sleeps.
    const DECOY: &str = "import os, signal, time\n\
                         signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n\
                         print(os.getpid(), flush=True)\n\
                         time.sleep(600)";

    /// What the grace period is here: the decoys ignore SIGTERM, so it only delays the SIGKILL.
    const GRACE: Duration = Duration::from_millis(50);

    /// `script` under /bin/sh leading a new group, with `mark` in its environment; returns the
    /// shell and the decoy's pid once the decoy has blocked SIGTERM.
    #[allow(clippy::disallowed_methods)] // processes the test signals, not tools
    fn start(script: &str, mark: &str) -> (Child, i32) {
        let mut sh = std::process::Command::new("/bin/sh")
            .args(["-c", script, DECOY])
            .env(MARK_VAR, mark)
            .process_group(0)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(sh.stdout.take().unwrap()).read_line(&mut line).unwrap();
        (sh, line.trim().parse().unwrap())
    }

    fn got_sigterm(pid: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let pending = status.lines().find_map(|l| l.strip_prefix("ShdPnd:")).unwrap();
        u64::from_str_radix(pending.trim(), 16).unwrap() & (1 << (libc::SIGTERM - 1)) != 0
    }

    fn has_exited(pid: i32) -> bool {
        stat(pid).is_none_or(|s| s.zombie)
    }

    #[test]
    fn a_group_whose_leader_started_at_another_time_is_not_signalled() {
        // The decoy leads its own group: as a process given a recorded, reused pid would.
        let (mut leader, pid) = start(r#"exec python3 -c "$0""#, "another-run");
        let start = stat(pid).unwrap().start;
        let reused = Group { id: pid, leader_start: start + 1, mark: "our-run".into() };
        assert_eq!(stop_left_behind(&reused, GRACE), Stopped::default());
        assert!(!got_sigterm(pid), "a process with the recorded pid but another start time was signalled");

        let ours = Group { leader_start: start, ..reused };
        assert_eq!(stop_left_behind(&ours, GRACE), Stopped { signalled: 1, killed: 1 });
        assert!(leader.wait().unwrap().code().is_none(), "killed by a signal");
    }

    #[test]
    fn members_of_a_group_whose_leader_is_gone_are_stopped_only_with_the_mark() {
        // The shell leads the group and exits; the decoy lives on in the group, with the mark.
        let (mut sh, pid) = start(r#"python3 -c "$0" &"#, "our-run");
        sh.wait().unwrap();
        let group = Group { id: sh.id() as i32, leader_start: 0, mark: "another-run".into() };
        assert_eq!(stop_left_behind(&group, GRACE), Stopped::default());
        assert!(!got_sigterm(pid), "a process without the run's mark was signalled");

        let ours = Group { mark: "our-run".into(), ..group };
        assert_eq!(stop_left_behind(&ours, GRACE), Stopped { signalled: 1, killed: 1 });
        assert!(has_exited(pid));
    }

    #[test]
    fn stat_reads_this_process_group_and_start() {
        let me = stat(std::process::id() as i32).unwrap();
        assert_eq!(me.group, nix::unistd::getpgrp().as_raw());
        assert!(me.start > 0 && !me.zombie);
        assert_eq!(stat(i32::MAX), None);
    }

    #[test]
    fn marks_differ_between_runs() {
        assert_ne!(new_mark(), new_mark());
    }
}
