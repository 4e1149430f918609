//! Long operations the server runs: the request is answered at once (201 for a create, 204
//! for the rest) and the server works on. The client then follows the operation as the local
//! CLI watches its own: it finds the operation the request started in the provision's
//! operation records (`GET /provisions/:id/operations`), passes the progress events the
//! operation stores (`GET /provisions/:id/events?operation=`) to the caller's [`Observer`],
//! and reads the record until it has ended; the answer is then what the local operation
//! answers ([`Ran`], the public-IP count, …). Everything is read from typed fields
//! ([`Operation`], [`ProgressEvent`]); no message is parsed.
//!
//! [`ProgressEvent`]: crate::service::ProgressEvent

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Client, unwrap_document};
use crate::service::{
    Cancelled, Change, Error, Events, Failure, NewProvision, Observer, Operation, OperationStatus, Progress, Ran,
    Request, Started, State, System,
};

/// How long an accepted request may show no operation before the client gives up following:
/// the server records the operation (running or queued) before it answers, so this is only a
/// bound on a server that does not.
const NO_OPERATION: Duration = Duration::from_secs(30);

/// A log line as the API serves it (`level` is `debug`, `info`, `warning` or `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub text: String,
}

/// `GET /logs/poll` answers.
#[derive(Debug, Deserialize)]
struct Poll {
    pos: u64,
    lines: Vec<LogLine>,
}

impl Client {
    /// `POST /provisions`, then the operation followed to its end (or, `detach`, not).
    pub async fn create(
        &self,
        new: &NewProvision,
        detach: bool,
        mut observer: Box<dyn Observer>,
    ) -> Result<Started, Error> {
        let (deployment, provider_id) = self.create_defaults(new).await?;
        let mut body = json!({"driver": new.driver, "deployment_type": deployment, "provider_id": provider_id,
                              "user_inputs_values": new.values});
        for (key, value) in [("name", &new.name), ("description", &new.description)] {
            if let Some(value) = value {
                body[key] = json!(value);
            }
        }
        let created = unwrap_document(self.post("/provisions", &body).await?, super::provisions::BODY)?;
        let id = created["id"]
            .as_i64()
            .ok_or_else(|| Error::internal("the formwork server answered a created provision without its id"))?;
        if detach {
            let op = self.records(id).await?.into_iter().next();
            let (operation, pid) = op.map_or((0, 0), |op| (op.id, op.owner_pid));
            return Ok(Started::Detached { id, operation, pid: u32::try_from(pid).unwrap_or(0) });
        }
        let name = created["name"].as_str().unwrap_or_default().to_string();
        let driver = created["driver"].as_str().unwrap_or(&new.driver).to_string();
        observer.observe(id, Progress::Created { name, driver });
        Ok(Started::Ran(self.follow(id, None, observer).await?))
    }

    /// A request on an existing provision (scale, deprovision, retry, recover), followed to
    /// its end.
    pub async fn request(&self, id: i64, request: &Request, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        let (action, body) = route(request);
        self.start(id, action, &body, observer).await
    }

    /// `add-ip` / `remove-ip`, followed to its end; returns the number of public IPs after.
    pub async fn change_public_ips(&self, id: i64, change: Change, observer: Box<dyn Observer>) -> Result<u64, Error> {
        let (action, body) = match change {
            Change::Add { amount } => ("add-ip", json!({"amount": amount})),
            Change::Remove { ar_id } => ("remove-ip", json!({"ar_id": ar_id})),
        };
        let ran = self.start(id, action, &body, observer).await?;
        ran.result?;
        Ok(ran.provision["user_inputs_values"]["oneform_public_ips"].as_u64().unwrap_or(0))
    }

    /// `POST /provisions/:id/cancel`; then the operation is read again: one the server closed
    /// at once had waited in its queue and ran nothing.
    pub async fn cancel(&self, id: i64) -> Result<Cancelled, Error> {
        let running = self.records(id).await?.into_iter().find(|op| !op.status.has_ended());
        self.post(&format!("/provisions/{id}/cancel"), &json!({})).await?;
        let op =
            running.ok_or_else(|| Error::not_allowed(format!("provision {id} has no running operation to cancel")))?;
        let after = self.records(id).await?.into_iter().find(|r| r.id == op.id);
        if after.is_some_and(|r| r.status == OperationStatus::Cancelled && !r.started) {
            return Ok(Cancelled::Withdrawn { operation: op.id, kind: op.kind });
        }
        Ok(Cancelled::Requested { operation: op.id, kind: op.kind, owner_pid: op.owner_pid })
    }

    /// The last `last` lines of a provision's log (all with `None`) and the offset after them.
    pub async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        let mut lines = Vec::new();
        let mut pos = 0;
        loop {
            let poll = self.poll(id, pos).await?;
            let done = poll.lines.is_empty() || poll.pos == pos;
            lines.extend(poll.lines);
            pos = poll.pos;
            if done {
                break;
            }
        }
        if let Some(n) = last {
            lines.drain(..lines.len().saturating_sub(n));
        }
        Ok((lines, pos))
    }

    /// The lines after offset `pos`, the new offset, and whether an operation still runs.
    pub async fn log_after(&self, id: i64, pos: u64) -> Result<(Vec<LogLine>, u64, bool), Error> {
        let poll = self.poll(id, pos).await?;
        let running = self.records(id).await?.iter().any(|op| !op.status.has_ended());
        Ok((poll.lines, poll.pos, running))
    }

    async fn poll(&self, id: i64, pos: u64) -> Result<Poll, Error> {
        let answer = self.get(&format!("/provisions/{id}/logs/poll?pos={pos}")).await?;
        serde_json::from_value(answer).map_err(|e| {
            Error::internal(format!("the formwork server answered a log poll that is not {{pos, lines}}: {e}"))
        })
    }

    /// The provision's operations, newest first.
    pub(super) async fn records(&self, id: i64) -> Result<Vec<Operation>, Error> {
        let answer = self.get(&format!("/provisions/{id}/operations")).await?;
        serde_json::from_value(answer).map_err(|e| {
            Error::internal(format!("the formwork server answered an operation list that is not one: {e}"))
        })
    }

    /// Sends `POST /provisions/:id/<action>` and follows the operation it starts.
    async fn start(&self, id: i64, action: &str, body: &Value, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        let newest = self.records(id).await?.first().map(|op| op.id);
        self.post(&format!("/provisions/{id}/{action}"), body).await?;
        self.follow(id, newest, observer).await
    }

    /// Follows the first operation on provision `id` newer than `after` to its end, passing
    /// its progress events on; returns how it ended.
    async fn follow(&self, id: i64, after: Option<i64>, mut observer: Box<dyn Observer>) -> Result<Ran, Error> {
        let asked = Instant::now();
        let mut cursor = 0;
        let ended = loop {
            let records = self.records(id).await?;
            let ours = records.into_iter().filter(|op| after.is_none_or(|a| op.id > a)).min_by_key(|op| op.id);
            match ours {
                Some(op) => {
                    cursor = self.report(id, op.id, cursor, observer.as_mut()).await?;
                    if op.status.has_ended() {
                        // What it reported between the last read and its end.
                        self.report(id, op.id, cursor, observer.as_mut()).await?;
                        break op;
                    }
                }
                None if asked.elapsed() > NO_OPERATION => {
                    return Err(Error::internal(format!(
                        "the server accepted the request but started no operation on provision {id} within {}",
                        crate::units::duration(NO_OPERATION)
                    )));
                }
                None => {}
            }
            tokio::time::sleep(self.poll).await;
        };
        let provision = self.provision_body(id, false).await?;
        let result = outcome(&ended, &provision);
        Ok(Ran { id, provision, result })
    }

    /// Passes on every event of operation `op` after `cursor`; returns the new cursor.
    async fn report(&self, id: i64, op: i64, mut cursor: i64, observer: &mut dyn Observer) -> Result<i64, Error> {
        loop {
            let answer = self.get(&format!("/provisions/{id}/events?operation={op}&after={cursor}")).await?;
            let page: Events = serde_json::from_value(answer).map_err(|e| {
                Error::internal(format!("the formwork server answered an event list that is not {{events, next}}: {e}"))
            })?;
            if page.events.is_empty() || page.next <= cursor {
                return Ok(cursor);
            }
            for event in page.events {
                observer.observe(id, event.event.into_progress());
            }
            cursor = page.next;
        }
    }
}

/// What each request becomes: the action under `/provisions/:id/` and its body.
fn route(request: &Request) -> (&'static str, Value) {
    match request {
        Request::ScaleUp { amount } => ("add-host", json!({"amount": amount})),
        Request::AddHosts { ips } => ("add-host", json!({"ips": ips})),
        Request::ScaleDown { ids, amount, force } => {
            let mut body = json!({"force": force});
            if !ids.is_empty() {
                body["ids"] = json!(ids);
            }
            if let Some(amount) = amount {
                body["amount"] = json!(amount);
            }
            ("remove-host", body)
        }
        Request::Deprovision { force, hosts, networks, datastores } => {
            let mut body = json!({"force": force});
            if !(hosts.is_empty() && networks.is_empty() && datastores.is_empty()) {
                body["resources"] = json!({"hosts": hosts, "networks": networks, "datastores": datastores});
            }
            ("undeploy", body)
        }
        Request::Retry => ("retry", json!({})),
        Request::Recover { target } => ("recover", json!({"recover_state": target.name()})),
    }
}

/// How an ended operation ended, as the local operation's result.
fn outcome(op: &Operation, provision: &Value) -> Result<State, Error> {
    let message =
        || op.error.clone().unwrap_or_else(|| format!("operation {} ({}) {}", op.id, op.kind, op.status.as_str()));
    let failure = || -> Box<Failure> {
        Box::new(Failure { message: message(), provision_id: Some(op.provision_id), stage: op.stage.clone() })
    };
    match op.status {
        OperationStatus::Succeeded => {
            let state = provision["state"].as_str().unwrap_or_default();
            State::parse(state)
                .ok_or_else(|| Error::internal(format!("the formwork server served an unknown state '{state}'")))
        }
        OperationStatus::Failed => {
            Err(Error::Upstream { system: op.system.unwrap_or(System::Formwork), source: failure() })
        }
        OperationStatus::Cancelled => Err(Error::Upstream { system: System::Formwork, source: failure() }),
        OperationStatus::Running | OperationStatus::Interrupted => Err(Error::internal(format!(
            "operation {} ({}) was interrupted on the server: {}; the server finishes it when it starts again",
            op.id,
            op.kind,
            message()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_oneform_routes() {
        let down = Request::ScaleDown { ids: vec![4], amount: None, force: true };
        assert_eq!(route(&down), ("remove-host", json!({"force": true, "ids": [4]})));
        let all = Request::Deprovision { force: false, hosts: vec![], networks: vec![], datastores: vec![] };
        assert_eq!(route(&all), ("undeploy", json!({"force": false})));
        let some = Request::Deprovision { force: false, hosts: vec![1], networks: vec![], datastores: vec![] };
        assert_eq!(route(&some).1["resources"]["hosts"], json!([1]));
        assert_eq!(route(&Request::Recover { target: State::Applying }).1, json!({"recover_state": "APPLYING"}));
    }
}
