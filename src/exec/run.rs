//! [`run`]: one child from spawn to exit. Reads stdout and stderr concurrently as chunks,
//! cuts them into lines, masks each line and hands it to the sink; waits for the exit
//! status, a timeout or a cancellation, whichever comes first; and stops the child's whole
//! process group gracefully in the last two cases.
//!
//! Output is read with tokio-process-stream's `ProcessChunkStream` rather than its
//! `ProcessLineStream`: the line stream panics on a line that is not UTF-8 (it unwraps the
//! decoding error), and tools do print such bytes. Lines are cut here and decoded lossily.

use std::collections::VecDeque;
use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_process_stream::{Item, ProcessChunkStream};

use super::cancel::Cancel;
use super::cmd::Cmd;
use super::group::{Group, MARK_VAR, has_members, new_mark, stat};
use super::mask::Masker;
use super::sink::{Severity, Sink, Stream};
use super::spawner;
use super::{Error, STDERR_TAIL_LINES};

/// A line longer than this is handed on in pieces, so a child printing without newlines
/// cannot make formwork hold unbounded memory. (A secret straddling a cut is not masked.)
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// How long to wait for the output pipes to close after SIGKILL. Only a process that left
/// the group (a daemon) and kept the pipes can hold them longer; then formwork stops reading.
const AFTER_KILL: Duration = Duration::from_secs(5);

/// A run that exited with status 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub duration: Duration,
    pub stdout_lines: usize,
    pub stderr_lines: usize,
}

/// Runs `cmd` to completion, streaming its output into `sink`. Success is exit status 0;
/// see [`Error`] for the rest. If `cancel` is already cancelled the child is not started.
pub async fn run(cmd: &Cmd, sink: &mut dyn Sink, cancel: &Cancel) -> Result<Finished, Error> {
    run_recorded(cmd, sink, cancel, &mut |_| {}).await
}

/// [`run`], telling `on_start` the child's process group as soon as it is spawned, before any
/// of its output is read: a caller records it where a later process finds it (a formwork that
/// takes over this run's work after a crash stops what the run left behind).
pub async fn run_recorded(
    cmd: &Cmd,
    sink: &mut dyn Sink,
    cancel: &Cancel,
    on_start: &mut (dyn FnMut(&Group) + Send),
) -> Result<Finished, Error> {
    let command = cmd.display();
    let mut out = Output::new(cmd.masker(), sink);
    if cancel.is_cancelled() {
        let note = format!("{} not started: cancelled", cmd.program_name());
        out.note(Severity::Warning, &note);
        return Err(Error::Cancelled { command, killed: false });
    }
    let started = Instant::now();
    let (mut child, group) = Running::spawn(cmd).await.map_err(|source| Error::Spawn {
        command: command.clone(),
        hint: cmd.spawn_hint(&source),
        source,
    })?;
    tracing::debug!(%command, pid = group.id, "started");
    on_start(&group);
    let reason = tokio::select! {
        biased;
        status = child.drain(&mut out) => return finish(command, status, started, out),
        () = deadline(cmd.get_timeout()) => Stop::TimedOut,
        () = cancel.cancelled() => Stop::Cancelled,
    };
    let killed = child.stop(cancel.grace(cmd.get_grace()), &mut out).await;
    out.note(Severity::Warning, &reason.note(cmd, killed));
    tracing::debug!(%command, killed, "stopped");
    Err(match reason {
        Stop::TimedOut => Error::TimedOut { command, after: cmd.get_timeout().unwrap_or_default(), killed },
        Stop::Cancelled => Error::Cancelled { command, killed },
    })
}

fn finish(
    command: String,
    status: io::Result<ExitStatus>,
    started: Instant,
    out: Output<'_>,
) -> Result<Finished, Error> {
    let duration = started.elapsed();
    tracing::debug!(%command, ?duration, ?status, "exited");
    match status {
        Ok(status) if status.success() => {
            Ok(Finished { duration, stdout_lines: out.lines[0], stderr_lines: out.lines[1] })
        }
        Ok(status) => Err(Error::Failed { command, status, stderr_tail: out.tail.into() }),
        Err(source) => Err(Error::Wait { command, source }),
    }
}

async fn deadline(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// Why a child is being stopped.
enum Stop {
    TimedOut,
    Cancelled,
}

impl Stop {
    /// The line for the sink saying what was done.
    fn note(&self, cmd: &Cmd, killed: bool) -> String {
        let program = cmd.program_name();
        let what = match self {
            Stop::TimedOut => {
                let after = crate::units::duration(cmd.get_timeout().unwrap_or_default());
                format!("{program} timed out after {after}")
            }
            Stop::Cancelled => format!("{program} cancelled"),
        };
        if killed {
            let grace = crate::units::duration(cmd.get_grace());
            format!("{what}: sent SIGINT, killed after the {grace} grace period")
        } else {
            format!("{what}: sent SIGINT, stopped within the grace period")
        }
    }
}

/// A spawned child and its output. Dropped before the child exited (the run was abandoned),
/// it sends SIGTERM to the group: the child is told to stop rather than left running
/// unobserved; tokio reaps it in the background.
struct Running {
    stream: ProcessChunkStream,
    /// The child's process group, whose id is the child's pid (`process_group(0)`).
    group: Pid,
    /// Set once the child has been waited for. Until then its pid cannot be reused, so
    /// signalling the group can only reach the child and its descendants.
    exited: bool,
}

impl Running {
    /// Spawns the child (on the [spawner](super::spawner) thread) with a new mark.
    async fn spawn(cmd: &Cmd) -> io::Result<(Running, Group)> {
        let mark = new_mark();
        let mut command = cmd.command();
        command.env(MARK_VAR, &mark);
        let child = spawner::spawn(command).await?;
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| io::Error::other("the child has no process id"))?;
        let running = Running { stream: ProcessChunkStream::from(child), group: Pid::from_raw(pid), exited: false };
        // Not yet waited for, so the pid is still this child's.
        let leader_start = stat(pid).map_or(0, |s| s.start);
        Ok((running, Group { id: pid, leader_start, mark }))
    }

    /// Hands output to `out` until both pipes close and the child exits. Cancel-safe: a
    /// partial line waits in `out`, so draining can be resumed after a timeout or cancel.
    async fn drain(&mut self, out: &mut Output<'_>) -> io::Result<ExitStatus> {
        while let Some(item) = self.stream.next().await {
            match item {
                Item::Stdout(chunk) => out.chunk(Stream::Stdout, &chunk),
                Item::Stderr(chunk) => out.chunk(Stream::Stderr, &chunk),
                Item::Done(status) => {
                    self.exited = true;
                    out.flush();
                    return status;
                }
            }
        }
        self.exited = true;
        out.flush();
        Err(io::Error::other("its output ended without an exit status"))
    }

    /// SIGINT to the group, up to `grace` for it to exit, then SIGKILL. True if killed.
    async fn stop(&mut self, grace: Duration, out: &mut Output<'_>) -> bool {
        self.signal(Signal::SIGINT);
        if tokio::time::timeout(grace, self.drain(out)).await.is_ok() {
            return false;
        }
        self.signal(Signal::SIGKILL);
        if tokio::time::timeout(AFTER_KILL, self.drain(out)).await.is_err() {
            tracing::warn!(
                group = self.group.as_raw(),
                "output still open {} after SIGKILL: a process outside the group holds it; no longer reading",
                crate::units::duration(AFTER_KILL)
            );
        }
        true
    }

    fn signal(&self, signal: Signal) {
        if self.exited {
            return;
        }
        // ESRCH: the whole group is gone already, which is what was wanted.
        if let Err(errno) = killpg(self.group, signal)
            && errno != Errno::ESRCH
        {
            tracing::warn!(group = self.group.as_raw(), %signal, %errno, "cannot signal child");
        }
    }
}

/// The process groups of runs dropped before their child exited (their task was dropped, as
/// when the runtime shuts down), each told to stop with SIGTERM as it was dropped:
/// [`wait_for_dropped`] gives them their time.
static DROPPED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

impl Drop for Running {
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        self.signal(Signal::SIGTERM);
        let mut dropped = DROPPED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        dropped.retain(|group| has_members(*group));
        dropped.push(self.group.as_raw());
    }
}

/// Waits up to `grace` for the processes of dropped runs to exit (a Terraform told to stop
/// finishes writing its state), then kills what is left; returns how many groups had to be
/// killed. A process that stops (`formwork serve` on SIGTERM) calls it after its runtime is gone,
/// so its tools are not cut short by its exit (a service manager kills what outlives it).
pub fn wait_for_dropped(grace: Duration) -> usize {
    let groups = std::mem::take(&mut *DROPPED.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    let deadline = Instant::now() + grace;
    while groups.iter().any(|g| has_members(*g)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<i32> = groups.into_iter().filter(|g| has_members(*g)).collect();
    for group in &left {
        tracing::warn!(group, "a tool did not stop within {}; killing it", crate::units::duration(grace));
        let _ = killpg(Pid::from_raw(*group), Signal::SIGKILL);
    }
    left.len()
}

/// Cuts the two streams into lines, masks them and feeds the sink; keeps the end of stderr.
struct Output<'a> {
    sink: &'a mut dyn Sink,
    masker: Masker,
    /// The unfinished last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    /// Lines seen on stdout and on stderr.
    lines: [usize; 2],
    tail: VecDeque<String>,
}

impl<'a> Output<'a> {
    fn new(masker: Masker, sink: &'a mut dyn Sink) -> Output<'a> {
        Output {
            sink,
            masker,
            partial: [Vec::new(), Vec::new()],
            lines: [0, 0],
            tail: VecDeque::with_capacity(STDERR_TAIL_LINES),
        }
    }

    fn chunk(&mut self, stream: Stream, bytes: &[u8]) {
        let mut partial = std::mem::take(&mut self.partial[index(stream)]);
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
            partial.extend_from_slice(&rest[..newline]);
            self.emit(stream, &partial);
            partial.clear();
            rest = &rest[newline + 1..];
        }
        partial.extend_from_slice(rest);
        if partial.len() >= MAX_LINE_BYTES {
            self.emit(stream, &partial);
            partial.clear();
        }
        self.partial[index(stream)] = partial;
    }

    /// Hands on the last line of each stream if it had no newline.
    fn flush(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let partial = std::mem::take(&mut self.partial[index(stream)]);
            if !partial.is_empty() {
                self.emit(stream, &partial);
            }
        }
    }

    fn emit(&mut self, stream: Stream, raw: &[u8]) {
        let decoded = String::from_utf8_lossy(raw);
        let text = decoded.strip_suffix('\r').unwrap_or(&decoded);
        let masked = self.masker.mask(text);
        self.lines[index(stream)] += 1;
        let trimmed = masked.trim();
        if stream == Stream::Stderr && !trimmed.is_empty() {
            if self.tail.len() == STDERR_TAIL_LINES {
                self.tail.pop_front();
            }
            self.tail.push_back(trimmed.to_string());
        }
        self.sink.line(stream, &masked);
    }

    fn note(&mut self, severity: Severity, text: &str) {
        let masked = self.masker.mask(text);
        self.sink.note(severity, &masked);
    }
}

fn index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::sink::Capture;
    use super::*;

    fn feed(masker: Masker, chunks: &[(Stream, &[u8])]) -> (Capture, Vec<String>) {
        let mut capture = Capture::default();
        let mut out = Output::new(masker, &mut capture);
        for (stream, bytes) in chunks {
            out.chunk(*stream, bytes);
        }
        out.flush();
        let tail = out.tail.into();
        (capture, tail)
    }

    #[test]
    fn lines_are_joined_across_chunks_per_stream() {
        let (capture, _) = feed(
            Masker::default(),
            &[
                (Stream::Stdout, b"hel"),
                (Stream::Stderr, b"warn"),
                (Stream::Stdout, b"lo\r\nwor"),
                (Stream::Stderr, b"ing\n\n"),
                (Stream::Stdout, b"ld"),
            ],
        );
        assert_eq!(capture.stream(Stream::Stdout), ["hello", "world"]);
        assert_eq!(capture.stream(Stream::Stderr), ["warning", ""]);
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked() {
        let (capture, tail) =
            feed(Masker::new(["hunter2"]), &[(Stream::Stderr, b"bad password hun"), (Stream::Stderr, b"ter2\n")]);
        assert_eq!(capture.stream(Stream::Stderr), ["bad password ********"]);
        assert_eq!(tail, ["bad password ********"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let (capture, _) = feed(Masker::default(), &[(Stream::Stdout, b"caf\xe9\n")]);
        assert_eq!(capture.stream(Stream::Stdout), ["caf\u{fffd}"]);
    }

    #[test]
    fn tail_keeps_the_last_non_blank_stderr_lines_trimmed() {
        let mut text = Vec::new();
        for i in 1..=30 {
            text.extend_from_slice(format!("  line {i}  \n\n").as_bytes());
        }
        let (_, tail) = feed(Masker::default(), &[(Stream::Stderr, &text)]);
        assert_eq!(tail.len(), STDERR_TAIL_LINES);
        assert_eq!(tail[0], "line 11");
        assert_eq!(tail[STDERR_TAIL_LINES - 1], "line 30");
    }

    #[test]
    fn an_endless_line_is_cut() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let (capture, _) = feed(Masker::default(), &[(Stream::Stdout, &long)]);
        assert_eq!(capture.lines.len(), 1);
        assert_eq!(capture.lines[0].1.len(), MAX_LINE_BYTES + 10);
        let (capture, _) = feed(Masker::default(), &[(Stream::Stdout, &long), (Stream::Stdout, b"yy\n")]);
        let lengths: Vec<usize> = capture.lines.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(lengths, [MAX_LINE_BYTES + 10, 2]);
    }

    #[test]
    fn the_run_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let cmd = Cmd::new("true");
        let mut sink = Capture::default();
        let cancel = Cancel::new();
        let future = run(&cmd, &mut sink, &cancel);
        assert_send(&future);
    }
}
