//! The writer thread: the one place this process writes to the database. Callers hand it a
//! closure; it drains every closure waiting, runs each in its own SAVEPOINT inside one
//! transaction, commits once (one fsync for the whole group) and only then answers each caller.
//!
//! Group commit is what makes `synchronous = FULL` affordable: a commit costs one fsync of the
//! WAL however many writes it carries, so with many provisions in flight the fsyncs are shared
//! instead of queued one behind the other.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, Transaction, TransactionBehavior, ffi};

use super::{Error, lock};

/// At most this many writes share one transaction, so one commit never grows without bound.
const MAX_GROUP: usize = 512;

const WRITER_GONE: &str = "the store's writer thread stopped while the store is in use (it panicked; see above)";

/// The sending side of the writer thread; dropping it stops the thread and waits for it.
pub(super) struct Writer {
    /// `None` only while dropping: closing the channel is what tells the thread to stop.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The caller's side of a submitted write.
pub(super) struct Reply<T>(mpsc::Receiver<thread::Result<Result<T, Error>>>);

impl Writer {
    /// Starts the thread. `conn` is locked for the length of each group; in-memory stores share
    /// it with their readers, file stores give it to the writer alone.
    pub(super) fn spawn(conn: Arc<Mutex<Connection>>) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let thread = thread::Builder::new().name("store-writer".into()).spawn(move || serve(&conn, &queue))?;
        Ok(Writer { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues `f` for the next group without waiting for it.
    pub(super) fn submit<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Box::new(Call { f: Some(f), result: None, reply });
        self.jobs.as_ref().expect("the writer is only taken apart by drop").send(job).expect(WRITER_GONE);
        Reply(answer)
    }
}

impl<T> Reply<T> {
    /// Waits until the write's group is committed (durable) or refused. A panic in the closure
    /// is raised again here, in the caller.
    pub(super) fn wait(self) -> Result<T, Error> {
        match off_runtime(|| self.0.recv()).expect(WRITER_GONE) {
            Ok(result) => result,
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // The thread ends once the channel is closed and the group in hand is answered. It
            // never drops a store itself (jobs capture plain data), so it never joins itself.
            let _ = thread.join();
        }
    }
}

/// Blocks on `wait` without stalling an async runtime. On a worker of a multi-thread tokio
/// runtime the wait goes through `block_in_place`, which first hands the worker's other tasks
/// to another thread, so a task checkpointing from async code (the runner) leaves the runtime
/// free and its writes can be grouped with those of the other tasks. Elsewhere (plain threads,
/// `spawn_blocking`, a current-thread runtime, where `block_in_place` is not allowed) it just
/// blocks. Async code should still prefer [`super::Store::call`].
fn off_runtime<R>(wait: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// One submitted write, type-erased so different result types share the queue.
trait Job: Send {
    /// Runs the write (once); false if it failed or panicked.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller: its own failure, else `group`'s, else its value.
    fn answer(self: Box<Self>, group: Result<(), &rusqlite::Error>);
}

struct Call<T, F> {
    f: Option<F>,
    result: Option<thread::Result<Result<T, Error>>>,
    reply: mpsc::SyncSender<thread::Result<Result<T, Error>>>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, Error> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let f = self.f.take().expect("a write runs once");
        // A panicking write is rolled back like a failing one and its panic goes to its caller;
        // the thread and the other writes of the group carry on.
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(tx)));
        let ok = matches!(result, Ok(Ok(_)));
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, group: Result<(), &rusqlite::Error>) {
        let answer = match (self.result, group) {
            (Some(own @ (Err(_) | Ok(Err(_)))), _) => own,
            (_, Err(e)) => Ok(Err(duplicate(e))),
            (Some(done), Ok(())) => done,
            (None, Ok(())) => unreachable!("a write is answered only after it ran or its group failed"),
        };
        // The caller is waiting for this (its `Reply` lives until answered); nothing to do if not.
        let _ = self.reply.send(answer);
    }
}

/// The thread's loop: one group per turn, until every sender is gone.
fn serve(conn: &Mutex<Connection>, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        group.extend(queue.try_iter().take(MAX_GROUP - 1));
        commit_group(&mut lock(conn), group);
    }
}

/// Runs `jobs` in as few transactions as possible and answers each. Normally that is one; a new
/// transaction starts only when SQLite abandoned the current one (an I/O error, a full disk).
fn commit_group(conn: &mut Connection, jobs: Vec<Box<dyn Job>>) {
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        transaction(conn, &mut jobs);
    }
}

/// Runs jobs from `jobs` in one IMMEDIATE transaction (waiting out other processes' writes
/// with the busy timeout), each in its own savepoint, until none is left or the transaction
/// is lost; commits, then answers those it ran.
fn transaction(conn: &mut Connection, jobs: &mut impl Iterator<Item = Box<dyn Job>>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return jobs.for_each(|job| job.answer(Err(&e))),
    };
    let mut ran = Vec::new();
    let mut lost = false;
    for mut job in jobs.by_ref() {
        let ok = in_savepoint(&tx, job.as_mut());
        ran.push(job);
        // SQLite rolls the whole transaction back on some errors; what ran before is gone and
        // what runs next would commit on its own, so this transaction ends here.
        if tx.is_autocommit() {
            lost = true;
            break;
        }
        let ended =
            if ok { step(&tx, "RELEASE job") } else { step(&tx, "ROLLBACK TO job") && step(&tx, "RELEASE job") };
        if !ended {
            lost = true;
            break;
        }
    }
    let outcome = if lost { Err(abandoned()) } else { tx.commit() };
    for job in ran {
        job.answer(outcome.as_ref().map(|_| ()));
    }
}

fn in_savepoint(tx: &Transaction<'_>, job: &mut dyn Job) -> bool {
    // Left unrun if the savepoint cannot be made: its ROLLBACK TO fails next, the transaction
    // counts as lost, and the job is answered with that.
    step(tx, "SAVEPOINT job") && job.run(tx)
}

/// Runs one statement of savepoint bookkeeping; false if it failed.
fn step(tx: &Transaction<'_>, sql: &str) -> bool {
    tx.prepare_cached(sql).and_then(|mut s| s.execute([])).is_ok()
}

fn abandoned() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_ABORT),
        Some("the transaction carrying this write was rolled back by SQLite; nothing was saved, try again".into()),
    )
}

/// A copy of a group's error for each of its writes (`rusqlite::Error` is not `Clone`).
fn duplicate(e: &rusqlite::Error) -> Error {
    let code = e.sqlite_error().copied().unwrap_or(ffi::Error::new(ffi::SQLITE_ERROR));
    Error::Sql(rusqlite::Error::SqliteFailure(code, Some(e.to_string())))
}
