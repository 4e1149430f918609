//! The server's operations: a request is checked, its operation row is written (holding the
//! provision's lock, marked queued) and the caller is answered at once; the work then runs as
//! a task once one of the `max_operations` slots is free. The queue is those rows, and a row
//! holds everything needed to start its work (kind, params, the event that begins it), so a
//! server that stops loses nothing: at start, [`Service::recover_queue`] takes over every
//! operation whose process is gone and queues it again; one that had not started a stage
//! starts from the beginning, one interrupted half way resumes from its last checkpoint
//! ([`crate::engine::Runner::resume_one`]). A queued operation that is cancelled is closed in
//! the same transaction (`Store::request_cancel`), so no slot ever starts it.

use std::sync::Arc;

use tracing::Instrument;

use super::access::{Caller, Kind, Ownership};
use super::documents::{Document, Include};
use super::progress::Silent;
use super::provisions::{NewProvision, build};
use super::public_ips::Change;
use super::requests::{Request, plan};
use super::{Error, Service, presence};
use crate::engine::{Event, OnInterrupted, Params};
use crate::store::{self, OperationStatus};

/// How long a request waits for an operation that is only closing its row.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// What a queued operation does once it has a slot.
#[derive(Debug)]
enum Work {
    /// Run the lifecycle from this event.
    Drive(Event),
    /// Make the public-IP change, to this count.
    PublicIps { change: Change, target: u64 },
    /// An operation taken over from a dead process: started or resumed from its row, read
    /// again once it has a slot.
    TakenOver,
}

impl Service {
    /// `POST /provisions`: validates, records the provision (PENDING, owned by the caller) and
    /// its create operation, and queues the work; answers with the PENDING document.
    pub async fn submit_create(self: &Arc<Self>, caller: &Caller, new: &NewProvision) -> Result<Document, Error> {
        caller.must_be_admin()?;
        let now = store::now();
        let (name, driver, provider_id, body) = build(&self.catalog, &self.store, new, now)?;
        let owner = Ownership::of(caller);
        let id = self.store.insert_provision_of(&name, &driver, provider_id, &body, &owner, now)?;
        tracing::info!(provision_id = id, %driver, user = %caller.uname, "provision created");
        if let Ok(mut log) = self.log(id) {
            crate::engine::Log::info(&mut log, &format!("Provision '{name}' allocated"));
        }
        let event = Event::Created;
        self.queue_work(id, "create", &Params::None, Some(event), Work::Drive(event))?;
        self.provision_for(caller, id, Include::default())
    }

    /// Waits (at most [`SETTLE`]) while the provision's operation is only closing: its
    /// provision already rests (RUNNING, DONE, a failure state), the operation is past the
    /// queue and its process is alive. The last checkpoint and the operation's end are two
    /// writes; a client that acts as soon as it sees the state (OneForm's clients poll and act)
    /// is then not refused as busy in between.
    pub async fn settle(&self, id: i64) {
        let deadline = std::time::Instant::now() + SETTLE;
        while std::time::Instant::now() < deadline {
            let closing = match (self.store.running_operation(id), self.store.provision(id)) {
                (Ok(Some(op)), Ok(row)) => !op.queued && row.state.is_at_rest() && self.alive(&op.owner()),
                _ => false,
            };
            if !closing {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Scale, deprovision, retry, recover: checked as `request` checks them, then queued.
    /// Returns the operation's id.
    pub async fn submit(self: &Arc<Self>, caller: &Caller, id: i64, request: &Request) -> Result<i64, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        self.settle(id).await;
        let row = self.store.provision(id)?;
        if let Some(op) = self.store.running_operation(id)? {
            return Err(Error::busy(id, &op));
        }
        let (kind, params, event) = plan(&self.store, &self.catalog, &row, request)?;
        self.refuse_unmanaged(&row.body, &params).await?;
        self.queue_work(id, kind, &params, Some(event), Work::Drive(event))
    }

    /// add-ip / remove-ip: checked, then queued. Returns the operation's id.
    pub async fn submit_public_ips(self: &Arc<Self>, caller: &Caller, id: i64, change: Change) -> Result<i64, Error> {
        self.may_change(caller, Kind::Provision, id)?;
        self.settle(id).await;
        let target = self.plan_public_ips(id, change)?;
        let (kind, params) = super::public_ips::params(change, target);
        self.queue_work(id, kind, &params, None, Work::PublicIps { change, target })
    }

    /// At server start: every running operation whose process is gone is taken over and
    /// queued again (started from its event if no stage of it began, else resumed from its
    /// last checkpoint), and a provision left PENDING with no operation at all (its create was
    /// recorded but never queued) gets its create queued. Returns the provisions queued.
    pub fn recover_queue(self: &Arc<Self>) -> Result<Vec<i64>, Error> {
        let mut queued = Vec::new();
        let me = self.me();
        for op in self.store.running_operations()? {
            let previous = op.owner();
            if self.alive(&previous) || !self.store.take_over(op.id, &previous, &me, store::now())? {
                continue;
            }
            queued.push(op.provision_id);
            self.dispatch(op.provision_id, op.id, Work::TakenOver);
        }
        for id in self.store.unqueued_creates()? {
            let event = Event::Created;
            let op = self.store.enqueue_operation(id, "create", &Params::None, Some(event), &me, store::now())?;
            queued.push(id);
            self.dispatch(id, op, Work::Drive(event));
        }
        Ok(queued)
    }

    /// On a database several servers share: every [`presence::RENEW`], takes over the
    /// operations of servers whose lease ended and claims those queued by servers that run
    /// none (`--role api`), and queues them here as [`Service::recover_queue`] does at start.
    /// Runs until the process ends.
    pub async fn keep_taking_over(self: Arc<Self>) {
        let woken = self.store.listen_for_work();
        loop {
            tokio::select! {
                () = tokio::time::sleep(presence::RENEW) => {}
                () = woken.notified() => {}
            }
            let service = Arc::clone(&self);
            let found = tokio::task::spawn_blocking(move || service.take_over_now()).await;
            match found {
                Ok(Ok(taken)) if !taken.is_empty() => {
                    tracing::info!(?taken, "took over operations of servers that are gone")
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot look for operations to take over"),
                Err(e) => tracing::warn!(error = %e, "the look for operations to take over failed"),
            }
        }
    }

    /// One look of [`Service::keep_taking_over`]; returns the provisions queued.
    fn take_over_now(self: &Arc<Self>) -> Result<Vec<i64>, Error> {
        let me = self.me();
        let now = store::now();
        let mut taken = Vec::new();
        let free = self.slots.available_permits();
        let claimed = if free > 0 { self.store.claim_queued(&me, free, now)? } else { Vec::new() };
        for op in self.store.take_over_expired(&me, now)?.into_iter().chain(claimed) {
            let row = self.store.operation(op)?;
            taken.push(row.provision_id);
            self.dispatch(row.provision_id, op, Work::TakenOver);
        }
        // Runs whose guard died on this machine before recording their end (the machine
        // restarted, the guard was killed): the state they left is here, and the provision's
        // next run waits for it.
        for mark in self.store.tool_runs()? {
            if let Some(how) = super::guard::recover(&self.store, &mark)? {
                tracing::warn!(provision = mark.provision_id, server = %mark.server, "{how}");
            }
        }
        Ok(taken)
    }

    /// Queues an operation: this server's, dispatched to its slots; or, on a server that runs
    /// none (`--role api`), nobody's yet, for a worker to claim, woken at once.
    fn queue_work(
        self: &Arc<Self>,
        id: i64,
        kind: &str,
        params: &Params,
        event: Option<Event>,
        work: Work,
    ) -> Result<i64, Error> {
        if self.runs_operations() {
            let op = self.store.enqueue_operation(id, kind, params, event, &self.me(), store::now())?;
            self.dispatch(id, op, work);
            return Ok(op);
        }
        let nobody = store::Owner { pid: 0, token: String::new() };
        let op = self.store.enqueue_operation(id, kind, params, event, &nobody, store::now())?;
        if let Err(e) = self.store.notify_work() {
            tracing::warn!(error = %e, "cannot wake the workers; they find the operation at their next look");
        }
        Ok(op)
    }

    /// Runs `work` as a task once a slot is free, unless its operation was cancelled while it
    /// waited. Its outcome is in the provision (state, historic, log) and the operation row; a
    /// failure is also traced.
    fn dispatch(self: &Arc<Self>, provision_id: i64, op: i64, work: Work) {
        let service = Arc::clone(self);
        let span = tracing::info_span!("operation", provision_id, operation = op);
        tokio::spawn(
            async move {
                // The semaphore is never closed, so acquiring only waits.
                let _slot = service.slots.acquire().await.ok();
                match service.store.call(move |s| s.dequeue(op).and_then(|_| s.operation(op))).await {
                    Ok(row) if row.status != OperationStatus::Running => {
                        tracing::info!(status = row.status.as_str(), "operation closed before it started");
                        return;
                    }
                    Ok(_) => {}
                    // Deleted with its provision while it waited for a slot.
                    Err(store::Error::NotFound { .. }) => {
                        tracing::info!("operation deleted with its provision before it started");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot mark the operation started"),
                }
                let mut result = service.work(provision_id, op, work).await;
                // The database went away under the operation: it could not be carried on, nor
                // closed. Once the database is back, the operation resumes from its last
                // checkpoint here, as a restart would resume it (it is still this server's).
                while let Err(Error::Unavailable { message }) = &result {
                    tracing::warn!(error = %message, "the database went away under the operation; it resumes once the database is back");
                    match service.wait_for_own_operation(op).await {
                        Some(true) => result = service.work(provision_id, op, Work::TakenOver).await,
                        _ => return,
                    }
                }
                if let Err(e) = result {
                    tracing::warn!(error = %e, "operation ended in failure");
                }
            }
            .instrument(span),
        );
    }

    /// Waits until the database answers again; then whether operation `op` is still running
    /// and this server's (None: the process is stopping).
    async fn wait_for_own_operation(self: &Arc<Self>, op: i64) -> Option<bool> {
        loop {
            tokio::time::sleep(presence::RENEW).await;
            match self.store.call(move |s| s.operation(op)).await.map_err(Error::from) {
                Ok(row) => return Some(row.status == OperationStatus::Running && row.owner_token == self.me().token),
                Err(Error::Unavailable { .. }) => continue,
                Err(_) => return Some(false),
            }
        }
    }

    async fn work(self: &Arc<Self>, provision_id: i64, op: i64, work: Work) -> Result<(), Error> {
        let mut log = self.operation_log(provision_id, Box::new(Silent));
        match work {
            Work::Drive(event) => {
                self.runner()?.continue_operation(op, event, &mut log).await?;
            }
            Work::PublicIps { change, target } => {
                self.finish_public_ips(provision_id, op, change, target, &mut log).await?;
            }
            Work::TakenOver => {
                let row = self.store.call(move |s| s.operation(op)).await?;
                self.finish_taken_over(&row, OnInterrupted::Resume, &mut log).await?;
            }
        }
        Ok(())
    }

    /// How many operations wait for a slot.
    pub fn queue_length(&self) -> Result<i64, Error> {
        Ok(self.store.queue_length()?)
    }
}
