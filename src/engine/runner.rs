//! The runner: takes the per-provision lock (an operation row), feeds events to the pure
//! machine, writes each transition in one transaction *before* performing its effects, and runs
//! stages. A crash at any point leaves a provision in a state whose stage can simply run again;
//! `resume` finds operations whose owner is gone and does exactly that.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::body::ProvisionBody;
use super::fault::{Fault, FaultPoint, Work};
use super::machine::{self, Effect, Event, Outcome, Stage, System};
use super::params::Params;
use super::state::State;
use crate::exec::{Cancel, Severity, Sink};
use crate::store::{
    self, AttemptEnd, Checkpoint, HistoricEntry, NewAttempt, OperationRow, OperationStatus, Owner, ProvisionRow, Store,
};

/// What a stage sees: the provision (its body is the stage's to change), the operation that
/// asked for the work, the log, the cancellation flag, and historic entries to record with the
/// checkpoint that ends the stage.
pub struct Ctx<'a> {
    pub provision: ProvisionRow,
    pub operation: &'a OperationRow,
    pub attempt_id: i64,
    pub store: &'a Store,
    pub log: &'a mut dyn Log,
    pub cancel: &'a Cancel,
    pub historic: Vec<HistoricEntry>,
    /// The runner's clock: the time stages record (historic, saved states).
    pub clock: fn() -> i64,
    /// The stage running.
    pub stage: Stage,
    /// The crash point of the crash tests, if any, and how many times this stage has saved
    /// its OpenNebula objects so far (see [`Fault`]).
    pub fault: Option<Fault>,
    pub saves: u32,
}

/// The per-provision log as the engine needs it: a sink that knows how far it has written,
/// told of each state change as a typed event (a front end shows progress from it, never by
/// reading log lines back).
pub trait Log: Sink {
    fn position(&self) -> u64;
    fn info(&mut self, text: &str) {
        self.note(Severity::Info, text);
    }
    /// The provision moved from one state to another; the transition is already checkpointed.
    fn state_changed(&mut self, from: State, to: State) {
        self.info(&format!("State changed from {from} to {to}"));
    }
}

/// Why a stage did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    pub message: String,
    pub cancelled: bool,
    /// The exit status of the tool that failed, if a tool did.
    pub exit_status: Option<i32>,
}

impl StageError {
    pub fn failed(message: impl Into<String>) -> StageError {
        StageError { message: message.into(), cancelled: false, exit_status: None }
    }

    pub fn cancelled(message: impl Into<String>) -> StageError {
        StageError { message: message.into(), cancelled: true, exit_status: None }
    }
}

/// A tool's failure as a stage's: its message, whether it was cancelled, its exit status.
impl From<crate::exec::Error> for StageError {
    fn from(e: crate::exec::Error) -> StageError {
        let exit_status = match &e {
            crate::exec::Error::Failed { status, .. } => status.code(),
            _ => None,
        };
        let cancelled = matches!(e, crate::exec::Error::Cancelled { .. });
        StageError { message: e.to_string(), cancelled, exit_status }
    }
}

/// The work of each stage. The real implementation runs Terraform, OpenNebula calls and
/// Ansible; tests and benchmarks use scripted ones.
pub trait Stages: Send + Sync {
    fn run(&self, stage: Stage, ctx: &mut Ctx<'_>) -> impl Future<Output = Result<Outcome, StageError>> + Send;

    /// The interrupted stage of provision `provision_id` is failed without running again
    /// (`resume --on-interrupted fail`, a cancel of an operation whose process is gone): put
    /// away what it left on disk. Nothing to do by default.
    fn put_away(&self, provision_id: i64, store: &Store, time: i64, log: &mut dyn Log) -> Result<(), StageError> {
        let _ = (provision_id, store, time, log);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("provision {provision_id}: {source}")]
    Illegal { provision_id: i64, source: machine::IllegalTransition },
    #[error(
        "provision {provision_id}: {stage} failed: {message}. Fix the cause, then retry the provision; its log shows the output"
    )]
    StageFailed { provision_id: i64, stage: &'static str, system: System, message: String },
    #[error(
        "provision {provision_id}: {stage} was cancelled; it is now in {state}. Retrying the provision runs the stage again"
    )]
    Cancelled { provision_id: i64, stage: &'static str, state: State },
    #[error("provision {provision_id}: operation {operation} {reason}; nothing ran and the provision is still {state}")]
    NotStarted { provision_id: i64, operation: i64, state: State, reason: String },
    #[error(
        "provision {provision_id}: operation {operation} was given up by this server, which lost its lease; another server resumes it from its last checkpoint"
    )]
    Abandoned { provision_id: i64, operation: i64 },
}

impl Error {
    /// The provision the error is about, when it is about one.
    pub fn provision_id(&self) -> Option<i64> {
        match self {
            Error::Store(_) => None,
            Error::Illegal { provision_id, .. }
            | Error::StageFailed { provision_id, .. }
            | Error::Cancelled { provision_id, .. }
            | Error::NotStarted { provision_id, .. }
            | Error::Abandoned { provision_id, .. } => Some(*provision_id),
        }
    }

    /// The stage that failed or was cancelled.
    pub fn stage(&self) -> Option<&'static str> {
        match self {
            Error::StageFailed { stage, .. } | Error::Cancelled { stage, .. } => Some(stage),
            Error::Store(_) | Error::Illegal { .. } | Error::NotStarted { .. } | Error::Abandoned { .. } => None,
        }
    }
}

/// What `resume` does with an operation whose process died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInterrupted {
    /// Run the interrupted stage again from its checkpoint.
    Resume,
    /// Mark the provision `<STAGE>_FAILURE` and leave it for `retry`.
    Fail,
}

/// How often a running operation looks for a cancellation requested by another process.
const CANCEL_POLL: Duration = Duration::from_millis(300);

/// The lifecycle runner for one process.
pub struct Runner<S> {
    pub store: Arc<Store>,
    pub stages: S,
    pub owner: Owner,
    pub clock: fn() -> i64,
    /// A point where this process kills itself (reliability tests only; see [`Fault`]).
    pub fault: Option<Fault>,
    /// Cancelled when the owner's lease is lost (several servers on one database): the
    /// operations stop, their tools within the grace it carries, and nothing more is written;
    /// the server that takes them over resumes them. Never cancelled for a lone process.
    pub lease: Cancel,
}

impl<S: Stages> Runner<S> {
    /// Starts an operation on a provision: takes the lock, applies `event`, drives the work to
    /// its end and releases the lock. Refused with `store::Error::Busy` if another operation runs.
    pub async fn start(
        &self,
        provision_id: i64,
        kind: &str,
        params: &Params,
        event: Event,
        log: &mut dyn Log,
    ) -> Result<State, Error> {
        let now = (self.clock)();
        let (kind, params, owner) = (kind.to_string(), params.clone(), self.owner.clone());
        let op_id =
            self.store.call(move |s| s.begin_operation(provision_id, &kind, &params, Some(event), &owner, now)).await?;
        self.continue_operation(op_id, event, log).await
    }

    /// Drives an operation this process owns, beginning with `event`. One cancelled before any
    /// of its stages started (between leaving the queue and here) ends cancelled, running nothing.
    pub async fn continue_operation(&self, op_id: i64, event: Event, log: &mut dyn Log) -> Result<State, Error> {
        let operation = self.store.call(move |s| s.operation(op_id)).await?;
        if operation.cancel_requested && !self.store.call(move |s| s.has_started_stages(op_id)).await? {
            return self.withdraw(&operation, store::NOT_STARTED, log).await;
        }
        let cancel = Cancel::new();
        let watcher = self.watch_cancel(op_id, cancel.clone());
        let result = self.drive(&operation, event, log, &cancel).await;
        watcher.abort();
        if self.lease.is_cancelled() {
            return Err(match result {
                Err(e @ Error::Abandoned { .. }) => e,
                _ => self.abandon(&operation, log),
            });
        }
        let now = (self.clock)();
        let (status, error) = match &result {
            Ok(_) => (OperationStatus::Succeeded, None),
            Err(Error::Cancelled { .. }) => {
                (OperationStatus::Cancelled, result.as_ref().err().map(ToString::to_string))
            }
            Err(e) => (OperationStatus::Failed, Some(e.to_string())),
        };
        let fence = operation.fence();
        self.store.call(move |s| s.finish_operation(fence, status, error.as_deref(), now)).await?;
        result
    }

    /// Takes the provision's stage lock (several servers on one database): held for the whole
    /// stage on a connection of its own, so a server that took the operation over from one that
    /// is frozen, not dead, waits here until that one is gone or has given the stage up (its
    /// session ends, or its next write is fenced off). None on a lone database. Cancelled while
    /// waiting, the stage ends cancelled without running (the inner error); the operation is
    /// given up when this server's lease is lost meanwhile.
    async fn lock_stage(
        &self,
        op: &OperationRow,
        log: &mut dyn Log,
        cancel: &Cancel,
    ) -> Result<Result<Option<store::postgres::SessionLock>, StageError>, Error> {
        let name = format!("formwork stage: provision {} operation {} ({})", op.provision_id, op.id, self.owner.token);
        let Some(mut lock) = self.store.session_lock(&name, store::postgres::STAGE_LOCK, op.provision_id)? else {
            return Ok(Ok(None));
        };
        let stopped = async {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = self.lease.cancelled() => {}
            }
        };
        let waiting = |holders: &str| {
            log.note(
                Severity::Warning,
                &format!(
                    "Waiting for the server that ran this provision's last stage to let it go (held by: {holders})"
                ),
            );
        };
        match lock.acquire(STAGE_LOCK_RETRY, waiting, stopped).await? {
            Some(_) => Ok(Ok(Some(lock))),
            None if self.lease.is_cancelled() => Err(self.abandon(op, log)),
            None => Ok(Err(StageError::cancelled(
                "cancelled while waiting for the server that ran this provision's last stage to let it go",
            ))),
        }
    }

    /// The end of an operation this server gave up (its lease was lost): nothing is written.
    fn abandon(&self, op: &OperationRow, log: &mut dyn Log) -> Error {
        let error = Error::Abandoned { provision_id: op.provision_id, operation: op.id };
        log.note(Severity::Error, &error.to_string());
        error
    }

    fn watch_cancel(&self, op_id: i64, cancel: Cancel) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(&self.store);
        let clock = self.clock;
        let lease = self.lease.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(CANCEL_POLL) => {}
                    () = lease.cancelled() => {
                        cancel.cancel_within(lease.grace(Duration::MAX));
                        return;
                    }
                }
                if store.call(move |s| s.is_cancel_requested(op_id)).await.unwrap_or(false) {
                    cancel.cancel();
                    return;
                }
                let now = clock();
                let _ = store.call(move |s| s.heartbeat(op_id, now)).await;
            }
        })
    }

    /// Takes over every running operation whose owner process is gone and finishes it: the
    /// interrupted stage runs again (`Resume`), or the provision is marked `<STAGE>_FAILURE`
    /// (`Fail`). Returns each provision taken over with how its operation ended.
    pub async fn resume(
        &self,
        policy: OnInterrupted,
        is_alive: impl Fn(&Owner) -> bool,
        mut open_log: impl FnMut(i64) -> Box<dyn Log>,
    ) -> Result<Vec<(i64, Result<State, Error>)>, Error> {
        let mut done = Vec::new();
        for op in self.store.call(|s| s.running_operations()).await? {
            let previous = op.owner();
            if is_alive(&previous) || !self.take_over(op.id, &previous).await? {
                continue;
            }
            let mut log = open_log(op.provision_id);
            log.note(
                Severity::Warning,
                &format!("operation {} ({}) was interrupted: its process {} is gone", op.id, op.kind, op.owner_pid),
            );
            // Read again: the takeover started a new epoch, which this process writes under.
            let op_id = op.id;
            let op = self.store.call(move |s| s.operation(op_id)).await?;
            let result = self.resume_one(&op, policy, log.as_mut()).await;
            done.push((op.provision_id, result));
        }
        Ok(done)
    }

    /// Finishes an operation this process took over from a dead owner, by `policy`. One that
    /// never started a stage (it waited in a queue, or its process died before its first
    /// checkpoint) has done nothing: it starts from its recorded event. One whose cancel was
    /// asked for is failed, as the cancel would have done.
    pub async fn resume_one(
        &self,
        op: &OperationRow,
        policy: OnInterrupted,
        log: &mut dyn Log,
    ) -> Result<State, Error> {
        // On a shared database the previous owner may be another machine's, or alive and
        // frozen: its tools are left to their guards and the stage lock, never signalled.
        if !self.store.is_shared() {
            super::owner::stop_left_behind(&self.store, op.id, log).await?;
        }
        let now = (self.clock)();
        let (op_id, id, position) = (op.id, op.provision_id, log.position() as i64);
        if !self.store.call(move |s| s.has_started_stages(op_id)).await? {
            return self.start_request(op, policy, log).await;
        }
        let policy = if op.cancel_requested { OnInterrupted::Fail } else { policy };
        self.store.call(move |s| s.interrupt_attempts(op_id, position, now)).await?;
        let state = self.store.call(move |s| s.provision(id)).await?.state;
        if Stage::of(state).is_none() && state != State::Pending {
            // The work had ended; only closing the operation was lost.
            let status = if state.is_failure() { OperationStatus::Failed } else { OperationStatus::Succeeded };
            let fence = op.fence();
            self.store.call(move |s| s.finish_operation(fence, status, None, now)).await?;
            return Ok(state);
        }
        match policy {
            OnInterrupted::Resume => {
                log.info(&format!("Resuming {state} from its last checkpoint"));
                self.continue_operation(op.id, Event::Resumed, log).await
            }
            OnInterrupted::Fail => {
                let (to, _) = machine::next(state, Event::Interrupted)
                    .map_err(|source| Error::Illegal { provision_id: op.provision_id, source })?;
                if let Err(e) = self.stages.put_away(id, &self.store, now, log) {
                    log.note(
                        Severity::Warning,
                        &format!("What the interrupted stage left was not put away: {}", e.message),
                    );
                }
                let entry = HistoricEntry::new("Operation interrupted", format!("{state} was interrupted"), now);
                self.transition(op, state, to, None, vec![entry], None, None, log).await?;
                let (interrupted, fence) = (OperationStatus::Interrupted, op.fence());
                self.store.call(move |s| s.finish_operation(fence, interrupted, Some("interrupted"), now)).await?;
                Ok(to)
            }
        }
    }

    /// Starts, from the beginning, an operation none of whose stages began: its event is in its
    /// row (a create's is known for rows written before events were kept). Told to fail
    /// interrupted work instead, or without an event to start from, it is closed as cancelled
    /// and the provision is left as it is.
    async fn start_request(&self, op: &OperationRow, policy: OnInterrupted, log: &mut dyn Log) -> Result<State, Error> {
        let event = op.event.or_else(|| (op.kind == "create").then_some(Event::Created));
        let Some(event) = event else {
            let reason = "not started: recorded by an older formwork without its event; request it again";
            return self.withdraw(op, reason, log).await;
        };
        if op.cancel_requested {
            return self.withdraw(op, store::NOT_STARTED, log).await;
        }
        match policy {
            OnInterrupted::Resume => {
                log.info(&format!(
                    "Starting operation {} ({}) from the beginning: process {} stopped before it began",
                    op.id, op.kind, op.owner_pid
                ));
                self.continue_operation(op.id, event, log).await
            }
            OnInterrupted::Fail => {
                self.withdraw(op, "not started: its process stopped first and interrupted work is failed", log).await
            }
        }
    }

    /// Closes an operation that ran nothing as cancelled, with `reason`; the provision keeps
    /// its state.
    async fn withdraw(&self, op: &OperationRow, reason: &str, log: &mut dyn Log) -> Result<State, Error> {
        let (op_id, id, now) = (op.id, op.provision_id, (self.clock)());
        let message = format!("operation {op_id} ({}) {reason}", op.kind);
        log.note(Severity::Warning, &message);
        let (cancelled, fence) = (OperationStatus::Cancelled, op.fence());
        let error = reason.to_string();
        self.store.call(move |s| s.finish_operation(fence, cancelled, Some(&error), now)).await?;
        let state = self.store.call(move |s| s.provision(id)).await?.state;
        Err(Error::NotStarted { provision_id: id, operation: op_id, state, reason: reason.to_string() })
    }

    /// Applies events and performs effects until there is nothing left to do.
    async fn drive(&self, op: &OperationRow, first: Event, log: &mut dyn Log, cancel: &Cancel) -> Result<State, Error> {
        let id = op.provision_id;
        let mut queue = VecDeque::from([Effect::Follow(first)]);
        let mut state = self.store.call(move |s| s.provision(id)).await?.state;
        // The attempt the last checkpoint started for the stage it leads to.
        let mut started: Option<(Stage, i64)> = None;
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Follow(event) => {
                    let (to, effects) =
                        machine::next(state, event).map_err(|source| Error::Illegal { provision_id: id, source })?;
                    let start = next_attempt(op, &effects, log);
                    let attempt = self.transition(op, state, to, None, vec![], None, start, log).await?;
                    started = first_stage(&effects).zip(attempt);
                    state = to;
                    queue.extend(effects);
                }
                Effect::Run(stage) => {
                    let attempt = started.take().filter(|(s, _)| *s == stage).map(|(_, id)| id);
                    let (to, effects, next) = self.run_stage(op, stage, state, attempt, log, cancel).await?;
                    started = first_stage(&effects).zip(next);
                    state = to;
                    queue.extend(effects);
                }
            }
        }
        Ok(state)
    }

    /// Runs one stage (in `attempt`, when the checkpoint that entered its state started one)
    /// and checkpoints its end (success or failure) with everything it changed; that checkpoint
    /// also starts the attempt of the stage that follows, whose id it returns.
    async fn run_stage(
        &self,
        op: &OperationRow,
        stage: Stage,
        state: State,
        attempt: Option<i64>,
        log: &mut dyn Log,
        cancel: &Cancel,
    ) -> Result<(State, Vec<Effect>, Option<i64>), Error> {
        let id = op.provision_id;
        let stage_lock = self.lock_stage(op, log, cancel).await?;
        let provision = self.store.call(move |s| s.provision(id)).await?;
        let attempt_id = match attempt {
            Some(attempt) => attempt,
            None => {
                let (fence, position, now) = (op.fence(), log.position() as i64, (self.clock)());
                self.store.call(move |s| s.start_attempt(fence, id, stage.name(), position, now)).await?
            }
        };
        let mut ctx = Ctx {
            provision,
            operation: op,
            attempt_id,
            store: &self.store,
            log,
            cancel,
            historic: vec![],
            clock: self.clock,
            stage,
            fault: self.fault,
            saves: 0,
        };
        let span = tracing::info_span!("stage", provision_id = id, stage = stage.name(), attempt_id);
        let result = match &stage_lock {
            Ok(_) => {
                Fault::strike(self.fault, FaultPoint::Entered, Work::Stage(stage));
                self.stages.run(stage, &mut ctx).instrument(span).await
            }
            Err(cancelled) => Err(cancelled.clone()),
        };
        match &result {
            Ok(outcome) => tracing::info!(provision_id = id, stage = stage.name(), ?outcome, "stage succeeded"),
            Err(e) => tracing::info!(provision_id = id, stage = stage.name(), error = %e, "stage failed"),
        }
        if result.is_ok() {
            Fault::strike(self.fault, FaultPoint::Finished, Work::Stage(stage));
        }
        let Ctx { provision, historic, log, .. } = ctx;
        let (event, outcome, error) = match &result {
            Ok(outcome) => (Event::StageSucceeded(*outcome), OperationStatus::Succeeded, None),
            Err(e) if e.cancelled => (Event::StageFailed, OperationStatus::Cancelled, Some(e.message.clone())),
            Err(e) => (Event::StageFailed, OperationStatus::Failed, Some(e.message.clone())),
        };
        if let Some(message) = &error {
            log.note(Severity::Error, &format!("{} failed: {message}", stage.name()));
        }
        let (to, effects) =
            machine::next(state, event).map_err(|source| Error::Illegal { provision_id: id, source })?;
        let exit_status = result.as_ref().err().and_then(|e| e.exit_status);
        let end = AttemptEnd { attempt_id, outcome, error: error.clone(), exit_status, log_end: 0 };
        let start = next_attempt(op, &effects, log);
        let next = self.transition(op, state, to, Some(provision.body), historic, Some(end), start, log).await?;
        match result {
            Ok(_) => Ok((to, effects, next)),
            Err(e) if e.cancelled => Err(Error::Cancelled { provision_id: id, stage: stage.name(), state: to }),
            Err(e) => Err(Error::StageFailed {
                provision_id: id,
                stage: stage.name(),
                system: stage.system(),
                message: e.message,
            }),
        }
    }

    /// Writes one transition: state, body, historic, the end of one attempt and the start of
    /// the next in one transaction; returns the started attempt's id.
    #[allow(clippy::too_many_arguments)] // one checkpoint's worth of parts, each distinct
    async fn transition(
        &self,
        op: &OperationRow,
        from: State,
        to: State,
        body: Option<ProvisionBody>,
        historic: Vec<HistoricEntry>,
        attempt: Option<AttemptEnd>,
        start: Option<NewAttempt>,
        log: &mut dyn Log,
    ) -> Result<Option<i64>, Error> {
        let attempt = attempt.map(|mut a| {
            a.log_end = log.position() as i64;
            a
        });
        if self.lease.is_cancelled() {
            return Err(self.abandon(op, log));
        }
        let (id, fence, time) = (op.provision_id, Some(op.fence()), (self.clock)());
        let started = self
            .store
            .call(move |s| {
                let body = body.as_ref();
                s.checkpoint(&Checkpoint { provision_id: id, from, to, body, historic, attempt, start, time, fence })
            })
            .await?;
        if from != to {
            log.state_changed(from, to);
        }
        Ok(started)
    }

    async fn take_over(&self, op_id: i64, previous: &Owner) -> Result<bool, Error> {
        let (previous, owner, now) = (previous.clone(), self.owner.clone(), (self.clock)());
        Ok(self.store.call(move |s| s.take_over(op_id, &previous, &owner, now)).await?)
    }
}

/// How often a stage waiting for the provision's stage lock tries again.
const STAGE_LOCK_RETRY: Duration = Duration::from_millis(500);

/// The stage the effects run first, if they start with one.
fn first_stage(effects: &[Effect]) -> Option<Stage> {
    match effects.first() {
        Some(Effect::Run(stage)) => Some(*stage),
        Some(Effect::Follow(_)) | None => None,
    }
}

/// The attempt a checkpoint starts when its effects run a stage next.
fn next_attempt(op: &OperationRow, effects: &[Effect], log: &dyn Log) -> Option<NewAttempt> {
    let stage = first_stage(effects)?;
    Some(NewAttempt { operation_id: op.id, stage: stage.name().to_string(), log_start: log.position() as i64 })
}
