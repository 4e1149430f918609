//! The writer thread: the one place this process writes to the database. Callers hand it a
//! closure; it drains every closure waiting, runs each in its own SAVEPOINT inside one
//! transaction, commits once (one fsync for the whole group) and only then answers each caller.
//!
//! Group commit is what makes `synchronous = FULL` affordable: a commit costs one fsync of the
//! WAL however many writes it carries, so with many provisions in flight the fsyncs are shared
//! instead of queued one behind the other.
//!
//! On PostgreSQL the thread works the same way on a connection of its own, and each group's
//! transaction first takes the database's write lock ([`super::postgres::WRITE_LOCK`], a
//! transaction-scoped advisory lock): the writes of every server sharing the database are then
//! serialised as SQLite's `BEGIN IMMEDIATE` serialises those of every process sharing a file,
//! so every store method keeps one meaning on both backends. A lost connection fails the group
//! in hand (nothing of it was committed) and the next group connects again.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, TransactionBehavior};

use super::db::{Db, SqlError};
use super::pipeline::Pipe;
use super::postgres::{Connector, WRITE_LOCK};
use super::{Error, lock};

/// At most this many writes share one transaction, so one commit never grows without bound.
const MAX_GROUP: usize = 512;

const WRITER_GONE: &str = "the store's writer thread stopped while the store is in use (it panicked; see above)";

/// What the writer thread writes to.
pub(super) enum Target {
    Sqlite(Arc<Mutex<Connection>>),
    Postgres(Connector),
}

/// The sending side of the writer thread; dropping it stops the thread and waits for it.
pub(super) struct Writer {
    /// `None` only while dropping: closing the channel is what tells the thread to stop.
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// The caller's side of a submitted write.
pub(super) struct Reply<T>(mpsc::Receiver<thread::Result<Result<T, Error>>>);

impl Writer {
    /// Starts the thread. A SQLite connection is locked for the length of each group (in-memory
    /// stores share it with their readers, file stores give it to the writer alone).
    pub(super) fn spawn(target: Target) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel();
        let thread = thread::Builder::new().name("store-writer".into()).spawn(move || match target {
            Target::Sqlite(conn) => serve(&conn, &queue),
            Target::Postgres(connector) => serve_postgres(&connector, &queue),
        })?;
        Ok(Writer { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Queues `f` for the next group without waiting for it.
    pub(super) fn submit<T, F>(&self, f: F) -> Reply<T>
    where
        T: Send + 'static,
        F: FnOnce(&Db<'_>) -> Result<T, Error> + Send + 'static,
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
    fn run(&mut self, tx: &Db<'_>) -> bool;
    /// Answers the caller: its own failure, else `group`'s, else its value.
    fn answer(self: Box<Self>, group: Result<(), &SqlError>);
}

struct Call<T, F> {
    f: Option<F>,
    result: Option<thread::Result<Result<T, Error>>>,
    reply: mpsc::SyncSender<thread::Result<Result<T, Error>>>,
}

impl<T, F> Job for Call<T, F>
where
    T: Send,
    F: FnOnce(&Db<'_>) -> Result<T, Error> + Send,
{
    fn run(&mut self, tx: &Db<'_>) -> bool {
        let f = self.f.take().expect("a write runs once");
        // A panicking write is rolled back like a failing one and its panic goes to its caller;
        // the thread and the other writes of the group carry on.
        // What the write held back is sent before it counts as done: its failure is the write's.
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(tx).and_then(|value| tx.flush().map(|()| value))));
        let ok = matches!(result, Ok(Ok(_)));
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, group: Result<(), &SqlError>) {
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
        Err(e) => {
            let e = SqlError::Sqlite(e);
            return jobs.for_each(|job| job.answer(Err(&e)));
        }
    };
    let mut ran = Vec::new();
    let mut lost = false;
    {
        let db = Db::sqlite(&tx);
        for mut job in jobs.by_ref() {
            let ok = in_savepoint(&db, job.as_mut());
            ran.push(job);
            // SQLite rolls the whole transaction back on some errors; what ran before is gone and
            // what runs next would commit on its own, so this transaction ends here.
            if tx.is_autocommit() || !end_savepoint(&db, ok) {
                lost = true;
                break;
            }
        }
    }
    let outcome = if lost { Err(abandoned()) } else { tx.commit().map_err(SqlError::Sqlite) };
    for job in ran {
        job.answer(outcome.as_ref().map(|_| ()));
    }
}

/// The thread's loop on PostgreSQL: one group per turn on the writer's connection, made again
/// when it was lost.
fn serve_postgres(connector: &Connector, queue: &mpsc::Receiver<Box<dyn Job>>) {
    let mut conn: Option<Pipe> = None;
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        group.extend(queue.try_iter().take(MAX_GROUP - 1));
        if conn.as_ref().is_none_or(Pipe::is_closed) {
            match connector.connect_pipelined() {
                Ok(made) => conn = Some(made),
                Err(e) => {
                    let e = SqlError::Group { message: e.to_string(), connection_lost: true };
                    group.into_iter().for_each(|job| job.answer(Err(&e)));
                    continue;
                }
            }
        }
        let Some(made) = conn.as_mut() else { continue };
        if !postgres_transaction(made, group) {
            conn = None;
        }
    }
}

/// Runs `jobs` in one PostgreSQL transaction under the write lock, each in its own savepoint;
/// commits, then answers each. False when the connection is no longer usable.
fn postgres_transaction(conn: &mut Pipe, jobs: Vec<Box<dyn Job>>) -> bool {
    // Sent with the first job's first statement: if it fails (the lock not taken), so does
    // that job, and with it the group (its savepoint cannot be rolled back to).
    conn.batch_later(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"));
    let mut ran = Vec::new();
    let mut lost = false;
    let alone = jobs.len() == 1;
    let mut jobs = jobs.into_iter();
    {
        let db = Db::pipelined(conn);
        if alone {
            // Alone in its transaction, a job needs no savepoint: its failure rolls the
            // transaction back (two round trips fewer, for every write made with no other).
            for mut job in jobs.by_ref() {
                lost = !job.run(&db);
                ran.push(job);
            }
        } else {
            for mut job in jobs.by_ref() {
                let ok = in_savepoint(&db, job.as_mut());
                ran.push(job);
                if !end_savepoint(&db, ok) {
                    lost = true;
                    break;
                }
            }
        }
    }
    // Jobs left unrun when the transaction was lost are answered with its loss, like those that ran.
    ran.extend(jobs);
    if alone && lost {
        // The job's own error is its answer; nothing of it is kept (what it held back is sent
        // and undone with it).
        let _ = conn.flush();
        let usable = conn.batch("ROLLBACK").is_ok();
        let rolled_back = SqlError::Group { message: "rolled back".into(), connection_lost: !usable };
        ran.into_iter().for_each(|job| job.answer(Err(&rolled_back)));
        return usable && !conn.is_closed();
    }
    let outcome = if lost {
        let _ = conn.batch("ROLLBACK");
        Err(SqlError::Group {
            message: "the transaction carrying this write was lost (the connection to PostgreSQL failed); nothing was saved, try again".into(),
            connection_lost: conn.is_closed(),
        })
    } else {
        conn.batch("COMMIT")
    };
    for job in ran {
        job.answer(outcome.as_ref().map(|_| ()));
    }
    !conn.is_closed() && outcome.as_ref().err().is_none_or(|e| !e.is_connection_lost())
}

fn in_savepoint(tx: &Db<'_>, job: &mut dyn Job) -> bool {
    // Left unrun if the savepoint cannot be made: its ROLLBACK TO fails next, the transaction
    // counts as lost, and the job is answered with that. On PostgreSQL the savepoint goes with
    // the job's first statement, whose failure it then is.
    tx.execute_batch_later("SAVEPOINT job").is_ok() && job.run(tx)
}

/// Keeps a job's writes (it succeeded) or undoes them; false when the transaction is lost.
///
/// On PostgreSQL a `RELEASE` goes with the next statement (the next job's, or the `COMMIT`):
/// it fails only with the connection, which fails that statement and the commit too. What a
/// failed job held back is sent before its `ROLLBACK TO` (its failure is already known).
fn end_savepoint(tx: &Db<'_>, ok: bool) -> bool {
    if ok {
        tx.execute_batch_later("RELEASE job").is_ok()
    } else {
        let _ = tx.flush();
        step(tx, "ROLLBACK TO job; RELEASE job")
    }
}

/// Runs one statement of savepoint bookkeeping; false if it failed.
fn step(tx: &Db<'_>, sql: &str) -> bool {
    tx.execute_batch(sql).is_ok()
}

fn abandoned() -> SqlError {
    SqlError::Group {
        message: "the transaction carrying this write was rolled back by SQLite; nothing was saved, try again".into(),
        connection_lost: false,
    }
}

/// A copy of a group's error for each of its writes (the backends' errors are not `Clone`).
fn duplicate(e: &SqlError) -> Error {
    match e {
        SqlError::Group { message, connection_lost } => {
            Error::Sql(SqlError::Group { message: message.clone(), connection_lost: *connection_lost })
        }
        other => {
            Error::Sql(SqlError::Group { message: other.to_string(), connection_lost: other.is_connection_lost() })
        }
    }
}
