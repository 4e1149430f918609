//! The one thread that forks every child.
//!
//! Linux sends a child its parent-death signal (`PR_SET_PDEATHSIG`, set in
//! [`Cmd::command`](super::Cmd)) when the *thread* that forked it exits, not when the process
//! does. A child forked on whatever thread polls [`run`](super::run) would get SIGTERM the
//! moment that thread ends: tokio's blocking pool retires idle threads after its keep-alive, and
//! `block_in_place` (the store's writes) turns a worker into such a thread, so a minute-long
//! apply could be stopped half way while formwork runs on. So every child is forked here, on a
//! thread that is started once and never returns: its channel's sender lives in a static, so
//! its loop never ends, and the thread dies only with the process, which is when the signal is
//! meant to come.
//!
//! Why one thread rather than, say, forking from `main`'s thread: async code cannot run on the
//! main thread on demand, and a dedicated thread keeps the rule in one place. A fork takes
//! microseconds, so serialising them costs nothing next to the tools' own run times. The caller
//! hands over the runtime's handle, which the thread enters while it spawns, so the child is
//! reaped and its pipes are read by the caller's runtime as before.

use std::io;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A command to spawn, the runtime the child belongs to, and where to answer.
type Request = (Command, Handle, oneshot::Sender<io::Result<Child>>);

/// The spawner thread's queue, started on first use. Never taken back out, so the thread's
/// loop never ends.
static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

/// Spawns `command` on the spawner thread, for the current runtime.
pub(crate) async fn spawn(command: Command) -> io::Result<Child> {
    let (answer, answered) = oneshot::channel();
    send((command, Handle::current(), answer))?;
    answered.await.map_err(|_| gone())?
}

fn send(request: Request) -> io::Result<()> {
    let mut spawner = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    let queue = match &mut *spawner {
        Some(queue) => queue,
        None => {
            let (queue, requests) = mpsc::channel();
            std::thread::Builder::new().name("formwork-spawner".into()).spawn(move || serve(requests))?;
            spawner.insert(queue)
        }
    };
    queue.send(request).map_err(|_| gone())
}

fn serve(requests: mpsc::Receiver<Request>) {
    for (mut command, runtime, answer) in requests {
        let _entered = runtime.enter();
        // The caller stopped waiting (its task was dropped): the child is told to stop, as an
        // abandoned run's is, rather than left running unobserved.
        if let Err(Ok(child)) = answer.send(command.spawn())
            && let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok())
        {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
    }
}

fn gone() -> io::Error {
    io::Error::other("formwork's spawner thread is gone (a bug: it should live as long as formwork); restart formwork")
}
