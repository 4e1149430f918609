//! Operations that run stages: create, the requests on an existing provision (scale,
//! deprovision, retry, recover), cancel, resume, and the hand-over to a background formwork
//! (`--detach`, automatic resume). Each operation runs as a task that owns its log and its
//! progress observer; every check that can refuse a request runs before anything is written.

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument;

use super::access::{Caller, Kind};
use super::progress::{Observer, Progress, Silent};
use super::provisions::{NewProvision, build};
use super::requests::{Request, plan};
use super::{Error, Service};
use crate::engine::{Event, OnInterrupted, Params, ProvisionBody, State};
use crate::store::{self, OperationRow};

/// How an operation this process started ended.
#[derive(Debug)]
pub struct Ran {
    pub id: i64,
    /// The provision as served after the operation, whatever its result.
    pub provision: Value,
    pub result: Result<State, Error>,
}

/// How a create began.
#[derive(Debug)]
pub enum Started {
    /// Ran in this process to its end.
    Ran(Ran),
    /// Handed to a background formwork process after the lock was taken.
    Detached { id: i64, operation: i64, pid: u32 },
}

/// What `cancel` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting in the server's queue: closed as cancelled, having run nothing.
    Withdrawn { operation: i64, kind: String },
    /// The owner process is alive and was asked to stop; it stops the running tool gracefully.
    Requested { operation: i64, kind: String, owner_pid: i64 },
    /// Nobody was working on it: the interrupted stage is marked failed now.
    Failed { operation: i64, state: Option<Result<State, String>> },
}

/// One provision `resume` took over.
#[derive(Debug)]
pub struct Resumed {
    pub id: i64,
    pub result: Result<State, Error>,
}

/// Orphaned operations handed to a background `resume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphans {
    pub provisions: Vec<i64>,
    pub pid: u32,
}

impl Service {
    /// Creates a provision and runs it to its end here, or (`detach`) in a background process.
    pub async fn create(
        self: &Arc<Self>,
        caller: &Caller,
        new: &NewProvision,
        detach: bool,
        mut observer: Box<dyn Observer>,
    ) -> Result<Started, Error> {
        caller.must_be_admin()?;
        let now = store::now();
        let (name, driver, provider_id, body) = build(&self.catalog, &self.store, new, now)?;
        let id = self.store.insert_provision(&name, &driver, provider_id, &body, now)?;
        tracing::info!(provision_id = id, %driver, "provision created");
        if let Ok(mut log) = self.log(id) {
            crate::engine::Log::info(&mut log, &format!("Provision '{name}' allocated"));
        }
        if detach {
            let op = self.store.begin_operation(id, "create", &Params::None, Some(Event::Created), &self.me(), now)?;
            let event = serde_json::to_string(&Event::Created)?;
            let pid = self.background(&["provision", "drive", &op.to_string(), "--event", &event])?;
            return Ok(Started::Detached { id, operation: op, pid });
        }
        observer.observe(id, Progress::Created { name, driver });
        Ok(Started::Ran(self.run(id, "create", Params::None, Event::Created, observer).await?))
    }

    /// Runs a request on an existing provision here, after every check that can refuse it.
    pub async fn request(
        self: &Arc<Self>,
        caller: &Caller,
        id: i64,
        request: &Request,
        observer: Box<dyn Observer>,
    ) -> Result<Ran, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        self.settle(id).await;
        let row = self.store.provision(id)?;
        // A running operation explains a refusal better than the state it has put the provision in.
        if let Some(op) = self.store.running_operation(id)? {
            return Err(Error::busy(id, &op));
        }
        let (kind, params, event) = plan(&self.store, &self.catalog, &row, request)?;
        self.refuse_unmanaged(&row.body, &params).await?;
        self.run(id, kind, params, event, observer).await
    }

    /// Starts an operation as a task that owns its log, and waits for it.
    async fn run(
        self: &Arc<Self>,
        id: i64,
        kind: &'static str,
        params: Params,
        event: Event,
        observer: Box<dyn Observer>,
    ) -> Result<Ran, Error> {
        let service = Arc::clone(self);
        let span = tracing::info_span!("operation", provision_id = id, kind);
        let task = tokio::spawn(
            async move {
                let mut log = service.operation_log(id, observer);
                service.runner()?.start(id, kind, &params, event, &mut log).await.map_err(Error::from)
            }
            .instrument(span),
        );
        let result = task.await.map_err(Error::internal)?;
        Ok(Ran { id, provision: self.served(id)?, result })
    }

    /// Drives an operation another formwork process began and handed over (`--detach`).
    pub async fn drive(self: &Arc<Self>, caller: &Caller, operation: i64, event: &str) -> Result<State, Error> {
        caller.must_be_admin()?;
        let event: Event = serde_json::from_str(event)
            .map_err(|e| Error::invalid(format!("'{event}' is not an operation event: {e}")))?;
        let op = self.store.operation(operation)?;
        let previous = op.owner();
        if !self.store.take_over(op.id, &previous, &self.me(), store::now())? {
            return Err(Error::Conflict {
                message: format!("operation {operation} is no longer running or was taken over by another process"),
            });
        }
        let mut log = self.operation_log(op.provision_id, Box::new(Silent));
        Ok(self.runner()?.continue_operation(op.id, event, &mut log).await?)
    }

    /// Starts `formwork <args>` in the background with this process's settings.
    fn background(&self, args: &[&str]) -> Result<u32, Error> {
        let exe = std::env::current_exe()?;
        let cmd = crate::exec::Cmd::new(exe).args(args.iter().copied()).envs(self.settings.formwork_env());
        let stderr = self.settings.data_dir.join("logs/background.log");
        crate::exec::spawn_detached(&cmd, &stderr).map_err(Error::internal)
    }

    /// Nothing may stay in a transitional state with nobody working on it: if an operation's
    /// process died, a background `resume` takes it over (unless automatic resume is off).
    pub fn adopt_orphans(&self) -> Result<Option<Orphans>, Error> {
        if !self.settings.auto_resume {
            return Ok(None);
        }
        let provisions: Vec<i64> = self
            .store
            .running_operations()?
            .into_iter()
            .filter(|op| !self.alive(&op.owner()))
            .map(|op| op.provision_id)
            .collect();
        if provisions.is_empty() {
            return Ok(None);
        }
        let pid = self.background(&["provision", "resume"])?;
        tracing::info!(?provisions, pid, "resuming interrupted operations in the background");
        Ok(Some(Orphans { provisions, pid }))
    }

    /// A teardown that is not forced is refused up front, changing nothing, while VMs or images
    /// that formwork did not make still use the objects it would delete (OneForm's 405).
    pub(super) async fn refuse_unmanaged(&self, body: &ProvisionBody, params: &Params) -> Result<(), Error> {
        let Params::Teardown { force: false, resources } = params else { return Ok(()) };
        let selection = crate::stages::selection(resources);
        let mut objects = super::public_ips::one_objects(body)?;
        let found = crate::one::unmanaged(self.one()?, &mut objects).await?.only(&selection);
        if found.is_empty() {
            return Ok(());
        }
        let context = serde_json::to_value(&found)?;
        Err(Error::NotAllowed {
            message: format!(
                "VMs or images formwork did not create still use these objects: {context}; remove them, or force the request to delete them too"
            ),
            context: Some(context),
        })
    }

    /// Asks the running operation of a provision to stop. One still waiting in the server's
    /// queue is closed at once, having run nothing. One whose process is gone is taken over and
    /// failed here (its interrupted stage marked `<STAGE>_FAILURE`, a public-IP change
    /// finished): that operation only, never another provision's.
    pub async fn cancel(self: &Arc<Self>, caller: &Caller, id: i64) -> Result<Cancelled, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        let Some(op) = self.store.request_cancel(id, store::now())? else {
            return Err(Error::not_allowed(format!("provision {id} has no running operation to cancel")));
        };
        if op.queued {
            if let Ok(mut log) = self.log(id) {
                let text = format!("Operation {} ({}) cancelled before it started", op.id, op.kind);
                crate::engine::Log::info(&mut log, &text);
            }
            return Ok(Cancelled::Withdrawn { operation: op.id, kind: op.kind });
        }
        let previous = op.owner();
        if self.alive(&previous) || !self.store.take_over(op.id, &previous, &self.me(), store::now())? {
            return Ok(Cancelled::Requested { operation: op.id, kind: op.kind, owner_pid: op.owner_pid });
        }
        let op = self.store.operation(op.id)?;
        let mut log = self.operation_log(id, Box::new(Silent));
        let result = self.finish_taken_over(&op, OnInterrupted::Fail, &mut log).await;
        Ok(Cancelled::Failed { operation: op.id, state: Some(result.map_err(|e| e.to_string())) })
    }

    /// Finishes an operation this process took over from a dead owner: a public-IP change is
    /// made again (it has no stage to fail into), any other is started, resumed or failed by
    /// the runner under `policy`.
    pub(super) async fn finish_taken_over(
        self: &Arc<Self>,
        op: &OperationRow,
        policy: OnInterrupted,
        log: &mut dyn crate::engine::Log,
    ) -> Result<State, Error> {
        if op.params.is_public_ip_change() {
            return self.resume_public_ips(op, log).await.map(|_| State::Running);
        }
        Ok(self.runner()?.resume_one(op, policy, log).await?)
    }

    /// Takes over every operation whose process died and finishes it by `policy`. Public-IP
    /// changes have no stage to fail into: they are always finished (made again, idempotently).
    pub async fn resume(
        self: &Arc<Self>,
        caller: &Caller,
        policy: OnInterrupted,
        observer: &(dyn Fn() -> Box<dyn Observer> + Sync),
    ) -> Result<Vec<Resumed>, Error> {
        caller.must_be_admin()?;
        let mut done = self.resume_public_ip_changes(observer).await?;
        let runner = self.runner()?;
        let staged = runner
            .resume(
                policy,
                |o| self.alive(o),
                |id| Box::new(self.operation_log(id, observer())) as Box<dyn crate::engine::Log>,
            )
            .await?;
        done.extend(staged.into_iter().map(|(id, result)| Resumed { id, result: result.map_err(Error::from) }));
        Ok(done)
    }

    async fn resume_public_ip_changes(
        self: &Arc<Self>,
        observer: &(dyn Fn() -> Box<dyn Observer> + Sync),
    ) -> Result<Vec<Resumed>, Error> {
        let mut done = Vec::new();
        for op in self.store.call(|s| s.running_operations()).await? {
            if !op.params.is_public_ip_change() {
                continue;
            }
            let previous = op.owner();
            if self.alive(&previous) || !self.store.take_over(op.id, &previous, &self.me(), store::now())? {
                continue;
            }
            let mut log = self.operation_log(op.provision_id, observer());
            let result = self.resume_public_ips(&op, &mut log).await.map(|_| State::Running);
            done.push(Resumed { id: op.provision_id, result });
        }
        Ok(done)
    }
}
