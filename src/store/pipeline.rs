//! The writer's PostgreSQL connection, which pipelines. A write's statements whose answers it
//! does not read (an `INSERT` of a history line, the savepoint bookkeeping around each write)
//! are held back and sent together with the next statement whose answer it reads, or at the end
//! of the write: one round trip for several statements instead of one each. The writer is one
//! thread through which every write of the server passes, so its round trips are what bound the
//! writes per second; the readers and session locks keep the blocking client ([`super::db::PgConn`]).
//!
//! Held-back statements run in the order they were given, before the next one; the first of them
//! to fail is the failure of the call that sent them (`Statement::execute_later`). A write's
//! failure is its own either way: the writer sends what a write held back before ending its
//! savepoint ([`super::db::Db::flush`]).
//!
//! It is the async client of the blocking one's project, driven the way the blocking one drives
//! it: a current-thread runtime of its own that runs the connection while a call waits.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::TryStreamExt;
use tokio_postgres::{Row, Statement};

use super::db::{PgParam, SqlError, Value, numbered_parameters};

/// Statements kept prepared; the store runs fewer distinct ones than this.
const STATEMENTS: usize = 256;

/// A PostgreSQL connection that sends held-back statements with the next one.
pub struct Pipe {
    /// `None` only while dropping: the client goes first, then the runtime its connection runs on.
    client: Option<tokio_postgres::Client>,
    runtime: tokio::runtime::Runtime,
    statements: HashMap<String, Statement>,
    /// Held back, in order, until the next call that waits for an answer.
    pending: Vec<Request>,
}

/// One statement to send.
enum Request {
    Execute(Statement, Vec<Value>),
    Query(Statement, Vec<Value>),
    /// Statements without parameters, in the simple protocol (`SAVEPOINT job`).
    Batch(String),
}

/// What a request answered.
enum Answer {
    Count(u64),
    Rows(Vec<Row>),
    Done,
}

type Pending<'c> = Pin<Box<dyn Future<Output = Result<Answer, tokio_postgres::Error>> + 'c>>;

impl Drop for Pipe {
    fn drop(&mut self) {
        // The client's end closes the connection, which then ends on the runtime.
        drop(self.client.take());
    }
}

impl Pipe {
    /// Connects with `config` (and `tls`, when given); runs nowhere but a plain thread (the writer's).
    pub fn connect<T>(config: &tokio_postgres::Config, tls: T) -> Result<Pipe, tokio_postgres::Error>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
        T::Stream: Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds (it needs no threads)");
        let (client, connection) = runtime.block_on(config.connect(tls))?;
        // Runs whenever a call blocks on the runtime; its end (an error) shows as the client's.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Pipe { client: Some(client), runtime, statements: HashMap::new(), pending: Vec::new() })
    }

    pub fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(tokio_postgres::Client::is_closed)
    }

    fn client(&self) -> &tokio_postgres::Client {
        self.client.as_ref().expect("a pipe has its client until dropped")
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        // What is held back goes first: a statement that fails to prepare aborts the transaction,
        // which must not happen before the savepoint held back for it.
        self.flush()?;
        let client = self.client.as_ref().expect("a pipe has its client until dropped");
        let statement = self.runtime.block_on(client.prepare(&numbered_parameters(sql)))?;
        if self.statements.len() >= STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Holds `sql` back until the next call that waits.
    pub fn execute_later(&mut self, sql: &str, values: Vec<Value>) -> Result<(), SqlError> {
        let statement = self.statement(sql)?;
        self.pending.push(Request::Execute(statement, values));
        Ok(())
    }

    /// Holds statements without parameters back until the next call that waits; next to others
    /// held back, they go in one message (`RELEASE job; SAVEPOINT job`), which stops at the
    /// first that fails.
    pub fn batch_later(&mut self, sql: &str) {
        match self.pending.last_mut() {
            Some(Request::Batch(held)) => {
                held.push_str("; ");
                held.push_str(sql);
            }
            _ => self.pending.push(Request::Batch(sql.to_string())),
        }
    }

    pub fn execute(&mut self, sql: &str, values: Vec<Value>) -> Result<u64, SqlError> {
        let statement = self.statement(sql)?;
        match self.send(Some(Request::Execute(statement, values)))? {
            Answer::Count(n) => Ok(n),
            Answer::Rows(_) | Answer::Done => unreachable!("an execute answers a count"),
        }
    }

    pub fn query(&mut self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>, SqlError> {
        let statement = self.statement(sql)?;
        match self.send(Some(Request::Query(statement, values)))? {
            Answer::Rows(rows) => Ok(rows),
            Answer::Count(_) | Answer::Done => unreachable!("a query answers rows"),
        }
    }

    pub fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.send(Some(Request::Batch(sql.to_string()))).map(drop)
    }

    /// Sends what is held back; the first failure among it is the answer.
    pub fn flush(&mut self) -> Result<(), SqlError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.send(None).map(drop)
    }

    /// Sends the held-back requests and `last` in one go, in order, and waits for every answer:
    /// the first failure, else `last`'s answer.
    fn send(&mut self, last: Option<Request>) -> Result<Answer, SqlError> {
        let mut requests = std::mem::take(&mut self.pending);
        requests.extend(last);
        let params: Vec<Vec<PgParam<'_>>> = requests.iter().map(|r| r.values().iter().map(PgParam).collect()).collect();
        let client = self.client();
        let mut futures: Vec<Pending<'_>> = requests.iter().zip(&params).map(|(r, p)| r.send(client, p)).collect();
        let mut answers: Vec<Option<Result<Answer, tokio_postgres::Error>>> = futures.iter().map(|_| None).collect();
        // A request is sent when its future is first polled; each turn polls them in order, so
        // the first turn sends every request, in order, before any answer is awaited.
        self.runtime.block_on(std::future::poll_fn(|cx| {
            let mut done = true;
            for (future, answer) in futures.iter_mut().zip(answers.iter_mut()).filter(|(_, a)| a.is_none()) {
                match future.as_mut().poll(cx) {
                    Poll::Ready(answered) => *answer = Some(answered),
                    Poll::Pending => done = false,
                }
            }
            if done { Poll::Ready(()) } else { Poll::Pending }
        }));
        let mut last = Answer::Done;
        for answer in answers.into_iter().flatten() {
            last = answer?;
        }
        Ok(last)
    }
}

impl Request {
    fn values(&self) -> &[Value] {
        match self {
            Request::Execute(_, values) | Request::Query(_, values) => values,
            Request::Batch(_) => &[],
        }
    }

    fn send<'c>(&'c self, client: &'c tokio_postgres::Client, params: &'c [PgParam<'c>]) -> Pending<'c> {
        match self {
            Request::Execute(statement, _) => {
                Box::pin(async move { client.execute_raw(statement, params).await.map(Answer::Count) })
            }
            Request::Query(statement, _) => Box::pin(async move {
                let rows = client.query_raw(statement, params).await?;
                rows.try_collect().await.map(Answer::Rows)
            }),
            Request::Batch(sql) => Box::pin(async move { client.batch_execute(sql).await.map(|()| Answer::Done) }),
        }
    }
}
