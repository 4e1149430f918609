//! `exec` against real child processes (python3, /bin/echo, /bin/sleep, /bin/cat), all run by
//! argv: streaming per stream into the provision log, masking, the explicit environment,
//! failures, spawn errors, and the graceful stop on timeout, cancellation and an abandoned
//! run. Synchronisation is on the child's own output ("ready"), never on sleeps here; the
//! only time bounds are generous ones that prove a child sleeping 60 s was stopped.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use formwork::exec::{self, Cancel, Capture, Cmd, Error, LogLine, Masker, ProvisionLog, Severity, Sink, Stream, Tee};

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Far below the 60 s the stopped children sleep, far above what a stop takes.
const STOPPED_WITHIN: Duration = Duration::from_secs(30);

/// python3 running `script` unbuffered, found through an explicit PATH.
fn python(script: &str) -> Cmd {
    Cmd::new("python3").args(["-u", "-c", script]).env("PATH", PATH)
}

/// Traps SIGINT, says so and exits 0: a tool that stops cleanly when interrupted.
const STOPS_ON_SIGINT: &str = r#"
import signal, sys, time
def stop(*_):
    print("got SIGINT")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("ready")
time.sleep(60)
"#;

/// Ignores SIGINT: a tool that has to be killed.
const IGNORES_SIGINT: &str = r#"
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready")
time.sleep(60)
"#;

/// Captures everything and fires `trigger` when a line equal to `on` arrives.
struct FireOn {
    on: &'static str,
    trigger: Cancel,
    capture: Capture,
}

impl FireOn {
    fn new(on: &'static str, trigger: &Cancel) -> FireOn {
        FireOn { on, trigger: trigger.clone(), capture: Capture::default() }
    }
}

impl Sink for FireOn {
    fn line(&mut self, stream: Stream, text: &str) {
        if text == self.on {
            self.trigger.cancel();
        }
        self.capture.line(stream, text);
    }

    fn note(&mut self, severity: Severity, text: &str) {
        self.capture.note(severity, text);
    }
}

fn open_log(dir: &Path) -> ProvisionLog {
    ProvisionLog::open(&dir.join("logs/1.log"), Masker::default()).unwrap()
}

fn read_log(log: &ProvisionLog) -> Vec<LogLine> {
    exec::log::read(log.path(), 0).unwrap().0
}

/// The message of each log line at `level`, without the date and marker.
fn messages(lines: &[LogLine], level: Severity) -> Vec<String> {
    let marker = format!("[{}] ", level.letter());
    lines.iter().filter(|l| l.level == level).map(|l| l.text.split_once(&marker).unwrap().1.to_string()).collect()
}

fn failed(result: Result<exec::Finished, Error>) -> (String, ExitStatus, Vec<String>, String) {
    match result {
        Err(err @ Error::Failed { .. }) => {
            let text = err.to_string();
            let Error::Failed { command, status, stderr_tail } = err else { unreachable!() };
            (command, status, stderr_tail, text)
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn interleaved_output_reaches_the_log_in_order_with_its_letters() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let mut capture = Capture::default();
    let cmd = python(
        "import sys\n\
         for i in range(50):\n\
         \x20   print(f'out {i}')\n\
         \x20   print(f'err {i}', file=sys.stderr)\n",
    );
    let finished = exec::run(&cmd, &mut Tee { first: &mut log, second: &mut capture }, &Cancel::new()).await.unwrap();
    assert_eq!((finished.stdout_lines, finished.stderr_lines), (50, 50));
    let outs: Vec<String> = (0..50).map(|i| format!("out {i}")).collect();
    let errs: Vec<String> = (0..50).map(|i| format!("err {i}")).collect();
    assert_eq!(capture.stream(Stream::Stdout), outs);
    assert_eq!(capture.stream(Stream::Stderr), errs);
    let lines = read_log(&log);
    assert_eq!(lines.len(), 100);
    assert_eq!(messages(&lines, Severity::Debug), outs);
    assert_eq!(messages(&lines, Severity::Error), errs);
}

#[tokio::test]
async fn a_secret_printed_by_the_child_reaches_neither_the_log_nor_the_error() {
    let secret = "hunter2-Sup3r-s3cret";
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let cmd = python(
        "import os, sys\n\
         print('connecting with', sys.argv[1])\n\
         print('Error: password', os.environ['TF_VAR_password'], 'rejected', file=sys.stderr)\n\
         sys.exit(2)\n",
    )
    .arg(secret)
    .env("TF_VAR_password", secret)
    .secret(secret);
    let (command, _, tail, message) = failed(exec::run(&cmd, &mut log, &Cancel::new()).await);
    let written = fs::read_to_string(log.path()).unwrap();
    assert!(written.contains("[D] connecting with ********"), "{written}");
    assert!(written.contains("[E] Error: password ******** rejected"), "{written}");
    assert!(command.ends_with(" ********"), "{command}");
    assert_eq!(tail, ["Error: password ******** rejected"]);
    for text in [&written, &message] {
        assert!(!text.contains(secret), "secret leaked into: {text}");
    }
}

#[tokio::test]
async fn the_child_sees_only_the_environment_it_was_given() {
    let ours: HashMap<String, String> =
        [("PATH", PATH), ("HOME", "/home/formwork-test"), ("AWS_SECRET_ACCESS_KEY", "must-not-pass")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    // /proc/self/environ is the environment as exec'd, before Python adds anything itself.
    let cmd = Cmd::new("python3")
        .args([
            "-c",
            "for kv in sorted(open('/proc/self/environ', 'rb').read().split(b'\\0')):\n\
             \x20   print(kv.decode()) if kv else None",
        ])
        .pass_path_and_home(&ours)
        .env("TF_IN_AUTOMATION", "1");
    let mut capture = Capture::default();
    exec::run(&cmd, &mut capture, &Cancel::new()).await.unwrap();
    let mut seen = capture.stream(Stream::Stdout);
    // Besides what it was given, the run's mark (which finds its processes after a crash).
    let mark = seen.remove(0);
    assert!(mark.starts_with("FORMWORK_TOOL="), "{mark}");
    assert_eq!(seen, ["HOME=/home/formwork-test", &format!("PATH={PATH}"), "TF_IN_AUTOMATION=1"]);
}

#[tokio::test]
async fn a_non_zero_exit_gives_the_status_and_the_end_of_stderr() {
    let cmd = python(
        "import sys\n\
         for i in range(1, 26):\n\
         \x20   print(f'problem {i}', file=sys.stderr)\n\
         \x20   print('', file=sys.stderr)\n\
         sys.exit(3)\n",
    );
    let mut capture = Capture::default();
    let (command, status, tail, message) = failed(exec::run(&cmd, &mut capture, &Cancel::new()).await);
    assert_eq!(status.code(), Some(3));
    assert!(command.starts_with("python3 -u -c \"import sys"), "{command}");
    let expected: Vec<String> = (6..=25).map(|i| format!("problem {i}")).collect();
    assert_eq!(tail, expected);
    assert!(message.contains("failed (exit status: 3)"), "{message}");
    assert!(message.ends_with("\n  problem 24\n  problem 25"), "{message}");
    // The sink still got every line, blank ones included.
    assert_eq!(capture.stream(Stream::Stderr).len(), 50);
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_naming_it() {
    let cmd = Cmd::new("formwork-no-such-tool").arg("init").env("PATH", PATH);
    let mut capture = Capture::default();
    let err = exec::run(&cmd, &mut capture, &Cancel::new()).await.unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("could not start `formwork-no-such-tool init`"), "{message}");
    assert!(
        message
            .contains(&format!("check that 'formwork-no-such-tool' is installed and on the PATH given to it ({PATH})")),
        "{message}"
    );
    assert!(capture.lines.is_empty() && capture.notes.is_empty());
}

#[tokio::test]
async fn timeout_sends_sigint_first_and_a_child_that_stops_is_not_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let cmd = python(STOPS_ON_SIGINT).timeout(Duration::from_secs(2));
    let started = Instant::now();
    let err = exec::run(&cmd, &mut log, &Cancel::new()).await.unwrap_err();
    assert!(started.elapsed() < STOPPED_WITHIN);
    assert!(matches!(err, Error::TimedOut { after, killed: false, .. } if after == Duration::from_secs(2)), "{err:?}");
    let lines = read_log(&log);
    assert_eq!(messages(&lines, Severity::Debug), ["ready", "got SIGINT"]);
    assert_eq!(
        messages(&lines, Severity::Warning),
        ["python3 timed out after 2s: sent SIGINT, stopped within the grace period"]
    );
}

#[tokio::test]
async fn timeout_kills_a_child_that_ignores_sigint_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let cmd = python(IGNORES_SIGINT).timeout(Duration::from_secs(2)).grace(Duration::from_millis(300));
    let started = Instant::now();
    let err = exec::run(&cmd, &mut log, &Cancel::new()).await.unwrap_err();
    assert!(started.elapsed() < STOPPED_WITHIN);
    assert!(matches!(err, Error::TimedOut { killed: true, .. }), "{err:?}");
    let lines = read_log(&log);
    assert_eq!(messages(&lines, Severity::Debug), ["ready"]);
    assert_eq!(
        messages(&lines, Severity::Warning),
        ["python3 timed out after 2s: sent SIGINT, killed after the 300ms grace period"]
    );
}

#[tokio::test]
async fn timeout_stops_a_plain_sleep() {
    let cmd = Cmd::new("/bin/sleep").arg("60").timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = exec::run(&cmd, &mut Capture::default(), &Cancel::new()).await.unwrap_err();
    assert!(started.elapsed() < STOPPED_WITHIN);
    assert!(matches!(err, Error::TimedOut { killed: false, .. }), "{err:?}");
}

#[tokio::test]
async fn cancel_interrupts_the_whole_process_group() {
    // The grandchild (a /bin/sleep) gets SIGINT too and dies of it: returncode -2.
    let script = r#"
import signal, subprocess, sys, time
sleeper = subprocess.Popen(["/bin/sleep", "60"])
def stop(*_):
    print("grandchild returncode", sleeper.wait())
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
print("ready")
time.sleep(60)
"#;
    let cancel = Cancel::new();
    let mut sink = FireOn::new("ready", &cancel);
    let started = Instant::now();
    let err = exec::run(&python(script), &mut sink, &cancel).await.unwrap_err();
    assert!(started.elapsed() < STOPPED_WITHIN);
    assert!(matches!(err, Error::Cancelled { killed: false, .. }), "{err:?}");
    assert_eq!(sink.capture.stream(Stream::Stdout), ["ready", "grandchild returncode -2"]);
    assert_eq!(
        sink.capture.notes,
        [(Severity::Warning, "python3 cancelled: sent SIGINT, stopped within the grace period".to_string())]
    );
}

#[tokio::test]
async fn cancel_kills_a_child_that_ignores_sigint_after_the_grace() {
    let cancel = Cancel::new();
    let mut sink = FireOn::new("ready", &cancel);
    let cmd = python(IGNORES_SIGINT).grace(Duration::from_millis(300));
    let started = Instant::now();
    let err = exec::run(&cmd, &mut sink, &cancel).await.unwrap_err();
    assert!(started.elapsed() < STOPPED_WITHIN);
    assert!(matches!(err, Error::Cancelled { killed: true, .. }), "{err:?}");
    assert_eq!(
        sink.capture.notes,
        [(Severity::Warning, "python3 cancelled: sent SIGINT, killed after the 300ms grace period".to_string())]
    );
}

#[tokio::test]
async fn a_run_cancelled_before_it_starts_spawns_nothing() {
    let cancel = Cancel::new();
    cancel.cancel();
    // A missing program: spawning it would give a Spawn error, not Cancelled.
    let cmd = Cmd::new("formwork-no-such-tool").env("PATH", PATH);
    let err = exec::run(&cmd, &mut Capture::default(), &cancel).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled { killed: false, .. }), "{err:?}");
}

#[tokio::test]
async fn an_abandoned_run_tells_its_child_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("told");
    let listener = UnixListener::bind(&socket).unwrap();
    let (told, heard) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        told.send(text).unwrap();
    });
    let script = r#"
import signal, socket, sys, time
def term(*_):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"got SIGTERM")
    s.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready")
time.sleep(60)
"#;
    let cmd = python(script).arg(socket.to_str().unwrap());
    let ready = Cancel::new();
    let mut sink = FireOn::new("ready", &ready);
    let never = Cancel::new();
    tokio::select! {
        result = exec::run(&cmd, &mut sink, &never) => panic!("run ended: {result:?}"),
        () = ready.cancelled() => {}
    }
    // The run's future is dropped here, with the child still sleeping.
    let text = heard.recv_timeout(STOPPED_WITHIN).expect("the child was not told to stop");
    assert_eq!(text, "got SIGTERM");
}

#[tokio::test]
async fn children_get_their_own_group_a_parent_death_signal_and_the_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import ctypes, os, signal
libc = ctypes.CDLL(None)
sig = ctypes.c_int()
libc.prctl(2, ctypes.byref(sig))  # PR_GET_PDEATHSIG
print("pdeathsig", signal.Signals(sig.value).name)
print("own group", os.getpgid(0) == os.getpid())
print("cwd", os.getcwd())
"#;
    let mut capture = Capture::default();
    let cmd = python(script).cwd(dir.path());
    exec::run(&cmd, &mut capture, &Cancel::new()).await.unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    assert_eq!(
        capture.stream(Stream::Stdout),
        ["pdeathsig SIGTERM", "own group True", &format!("cwd {}", cwd.display())]
    );
}

#[tokio::test]
async fn stdin_is_closed_so_a_tool_reading_it_does_not_wait() {
    let cmd = Cmd::new("/bin/cat").timeout(STOPPED_WITHIN);
    let finished = exec::run(&cmd, &mut Capture::default(), &Cancel::new()).await.unwrap();
    assert_eq!((finished.stdout_lines, finished.stderr_lines), (0, 0));
}

#[tokio::test]
async fn odd_output_is_delivered_whole() {
    // Not UTF-8, CRLF, and a last line without a newline.
    let cmd = python(
        "import sys\n\
         sys.stdout.buffer.write(b'caf\\xe9\\r\\nlast line')\n",
    );
    let mut capture = Capture::default();
    exec::run(&cmd, &mut capture, &Cancel::new()).await.unwrap();
    assert_eq!(capture.stream(Stream::Stdout), ["caf\u{fffd}", "last line"]);
}

#[tokio::test]
async fn the_log_file_is_private_and_positions_mark_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let mut ranges = Vec::new();
    for word in ["first", "second"] {
        let start = log.position();
        exec::run(&Cmd::new("/bin/echo").arg(word), &mut log, &Cancel::new()).await.unwrap();
        ranges.push((start, log.position()));
    }
    assert!(log.take_error().is_none());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(log.path()), 0o600);
    assert_eq!(mode(log.path().parent().unwrap()), 0o700);
    assert_eq!(ranges[0].1, ranges[1].0);
    let (second, end) = exec::log::read(log.path(), ranges[1].0).unwrap();
    assert_eq!(end, ranges[1].1);
    assert_eq!(messages(&second, Severity::Debug), ["second"]);
}

/// The two graceful-stop tests above, run again in a test process started the way a script
/// starts formwork in the background: `sh -c 'prog & wait'` gives the background job SIGINT and
/// SIGQUIT ignored, which children inherit unless exec resets them. Without the reset both end
/// with `killed: true`.
#[test]
#[allow(clippy::disallowed_methods)] // a test process of its own, and the flag that marks it
fn children_stop_gracefully_when_formwork_runs_as_a_background_job() {
    if std::env::var_os("FORMWORK_EXEC_INNER").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let tests = "timeout_stops_a_plain_sleep cancel_interrupts_the_whole_process_group";
    let script = format!("\"$0\" --exact {tests} --test-threads=1 & wait $!");
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", &script, exe.to_str().unwrap()])
        .env("FORMWORK_EXEC_INNER", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("2 passed"), "both tests must have run: {stdout}");
}

/// Blocks SIGTERM (so one sent to it stays pending, where /proc shows it), says its pid and
/// waits for SIGINT, which ends it.
const HOLDS_SIGTERM: &str = r#"
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("ready", os.getpid())
signal.pause()
"#;

/// Sends the pid from the child's "ready <pid>" line.
struct PidOnReady(Option<tokio::sync::oneshot::Sender<i32>>);

impl Sink for PidOnReady {
    fn line(&mut self, _: Stream, text: &str) {
        if let (Some(pid), Some(tx)) = (text.strip_prefix("ready "), self.0.take()) {
            let _ = tx.send(pid.parse().unwrap());
        }
    }

    fn note(&mut self, _: Severity, _: &str) {}
}

/// The signals pending for process `pid` (shared and thread), as /proc/<pid>/status shows them.
fn pending_signals(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = |name: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(name)).unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    mask("ShdPnd:") | mask("SigPnd:")
}

/// Linux sends the parent-death signal when the *thread* that forked a child exits. A run
/// polled on a blocking-pool thread (as `block_in_place` makes of a worker) must not have its
/// child stopped when the runtime retires that thread after its keep-alive.
#[test]
fn a_child_outlives_the_thread_that_started_its_run() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(1))
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cancel = Cancel::new();
        let (ready, child_pid) = tokio::sync::oneshot::channel();
        let mut run = Box::pin({
            let (cmd, cancel) = (python(HOLDS_SIGTERM), cancel.clone());
            async move { exec::run(&cmd, &mut PidOnReady(Some(ready)), &cancel).await }
        });
        let handle = tokio::runtime::Handle::current();
        let (run, thread, child) = tokio::task::spawn_blocking(move || {
            let child = handle.block_on(async {
                tokio::select! {
                    pid = child_pid => pid.unwrap(),
                    result = &mut run => panic!("run ended: {result:?}"),
                }
            });
            (run, nix::unistd::gettid(), child)
        })
        .await
        .unwrap();
        let task = format!("/proc/self/task/{thread}");
        let deadline = Instant::now() + STOPPED_WITHIN;
        while Path::new(&task).exists() {
            assert!(Instant::now() < deadline, "the runtime never retired its blocking thread");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The thread is gone: a parent-death signal tied to it has been sent by now.
        let pending = pending_signals(child);
        cancel.cancel();
        let _ = run.await;
        let sigterm = 1 << (libc::SIGTERM - 1);
        assert_eq!(pending & sigterm, 0, "the child got SIGTERM when the thread that started its run retired");
    });
}
