//! Long operations the server runs: the request is answered at once (201 for a create, 204
//! for the rest) and the server works on. The client then follows the operation as the local
//! CLI watches its own: it reads the provision's log from where it stood before the request
//! (`GET /provisions/:id/logs/poll?pos=`) and turns its state changes and warnings into
//! [`Progress`] for the caller's [`Observer`], and reads the operation's record
//! (`GET /provisions/:id/operations`) until it has ended; the answer is then what the local
//! operation answers ([`Ran`], the public-IP count, …).
//!
//! The log is the only progress the REST API serves (OneForm's `/logs/poll` and formwork's
//! `/logs/stream` both carry `{level, text}` lines), so state changes are read from the line
//! the engine writes for each (`State changed from A to B`), the same text OneForm writes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Client, answer, unwrap_document};
use crate::service::{
    Cancelled, Change, Error, NewProvision, Observer, Progress, Ran, Request, Started, State, System,
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

/// The `error` of an operation the server closed while it waited in its queue.
const WITHDRAWN: &str = "cancelled before it started";

/// The part of an operation record the follower reads.
#[derive(Debug, Clone, Deserialize)]
struct Record {
    id: i64,
    status: String,
    #[serde(default)]
    owner_pid: i64,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    error: Option<String>,
}

impl Record {
    /// Whether the operation has ended (anything else — running, queued — goes on).
    fn has_ended(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "cancelled" | "interrupted")
    }
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
        Ok(Started::Ran(self.follow(id, None, 0, observer).await?))
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
        let running = self.records(id).await?.into_iter().find(|op| !op.has_ended());
        self.post(&format!("/provisions/{id}/cancel"), &json!({})).await?;
        let op =
            running.ok_or_else(|| Error::not_allowed(format!("provision {id} has no running operation to cancel")))?;
        let after = self.records(id).await?.into_iter().find(|r| r.id == op.id);
        if after.is_some_and(|r| r.status == "cancelled" && r.error.as_deref() == Some(WITHDRAWN)) {
            return Ok(Cancelled::Withdrawn { operation: op.id, kind: op.kind });
        }
        Ok(Cancelled::Requested { operation: op.id, kind: op.kind, owner_pid: op.owner_pid })
    }

    /// The last `last` lines of a provision's log (all with `None`) and the offset after them.
    pub async fn log_tail(&self, id: i64, last: Option<usize>) -> Result<(Vec<LogLine>, u64), Error> {
        let mut lines = Vec::new();
        let mut pos = 0;
        loop {
            let poll = self.poll(id, Some(pos)).await?;
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
        let poll = self.poll(id, Some(pos)).await?;
        let running = self.records(id).await?.iter().any(|op| !op.has_ended());
        Ok((poll.lines, poll.pos, running))
    }

    async fn poll(&self, id: i64, pos: Option<u64>) -> Result<Poll, Error> {
        let query = pos.map(|p| format!("?pos={p}")).unwrap_or_default();
        let answer = self.get(&format!("/provisions/{id}/logs/poll{query}")).await?;
        serde_json::from_value(answer).map_err(|e| {
            Error::internal(format!("the formwork server answered a log poll that is not {{pos, lines}}: {e}"))
        })
    }

    /// The provision's operations, newest first.
    async fn records(&self, id: i64) -> Result<Vec<Record>, Error> {
        let answer = self.get(&format!("/provisions/{id}/operations")).await?;
        serde_json::from_value(answer).map_err(|e| {
            Error::internal(format!("the formwork server answered an operation list that is not one: {e}"))
        })
    }

    /// Sends `POST /provisions/:id/<action>` and follows the operation it starts.
    async fn start(&self, id: i64, action: &str, body: &Value, observer: Box<dyn Observer>) -> Result<Ran, Error> {
        let newest = self.records(id).await?.first().map(|op| op.id);
        // Where the log ends now: the operation's lines come after. A provision without a log
        // yet starts at its beginning.
        let pos = match self.poll(id, None).await {
            Ok(poll) => poll.pos,
            Err(Error::NotFound { .. }) => 0,
            Err(e) => return Err(e),
        };
        self.post(&format!("/provisions/{id}/{action}"), body).await?;
        self.follow(id, newest, pos, observer).await
    }

    /// Follows the first operation on provision `id` newer than `after` to its end, reporting
    /// the log's progress from `pos`; returns how it ended.
    async fn follow(
        &self,
        id: i64,
        after: Option<i64>,
        mut pos: u64,
        observer: Box<dyn Observer>,
    ) -> Result<Ran, Error> {
        let mut watch = Watch { id, observer, since: Instant::now() };
        let asked = Instant::now();
        let ended = loop {
            pos = self.report(&mut watch, pos).await?;
            let records = self.records(id).await?;
            let ours = records.into_iter().filter(|op| after.is_none_or(|a| op.id > a)).min_by_key(|op| op.id);
            match ours {
                Some(op) if op.has_ended() => break op,
                None if asked.elapsed() > NO_OPERATION => {
                    return Err(Error::internal(format!(
                        "the server accepted the request but started no operation on provision {id} within {}; see `formwork provision show {id}`",
                        crate::units::duration(NO_OPERATION)
                    )));
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        };
        self.report(&mut watch, pos).await?;
        let provision = self.provision_body(id, false).await?;
        let result = outcome(&ended, &provision);
        Ok(Ran { id, provision, result })
    }

    /// Reports every complete line after `pos`; returns the new offset.
    async fn report(&self, watch: &mut Watch, mut pos: u64) -> Result<u64, Error> {
        loop {
            let poll = match self.poll(watch.id, Some(pos)).await {
                Ok(poll) => poll,
                // No log yet: nothing to report.
                Err(Error::NotFound { .. }) => return Ok(pos),
                Err(e) => return Err(e),
            };
            let more = !poll.lines.is_empty() && poll.pos > pos;
            for line in &poll.lines {
                watch.line(line);
            }
            pos = poll.pos;
            if !more {
                return Ok(pos);
            }
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
fn outcome(op: &Record, provision: &Value) -> Result<State, Error> {
    let message = || op.error.clone().unwrap_or_else(|| format!("operation {} ({}) {}", op.id, op.kind, op.status));
    match op.status.as_str() {
        "succeeded" => {
            let state = provision["state"].as_str().unwrap_or_default();
            State::parse(state)
                .ok_or_else(|| Error::internal(format!("the formwork server served an unknown state '{state}'")))
        }
        "failed" => Err(Error::Upstream { system: answer::system_of(&message()), source: message().into() }),
        "cancelled" => Err(Error::Upstream { system: System::Formwork, source: message().into() }),
        _ => Err(Error::internal(format!(
            "operation {} ({}) was interrupted on the server: {}; the server finishes it when it starts again",
            op.id,
            op.kind,
            message()
        ))),
    }
}

/// Log lines turned into the progress a local operation reports.
struct Watch {
    id: i64,
    observer: Box<dyn Observer>,
    /// When the current state was entered (as seen from here).
    since: Instant,
}

impl Watch {
    fn line(&mut self, line: &LogLine) {
        let text = message(&line.text);
        match line.level.as_str() {
            "info" => {
                if let Some((from, to)) = state_change(text) {
                    let took = self.since.elapsed();
                    self.since = Instant::now();
                    self.observer.observe(self.id, Progress::StateChanged { from, to, took });
                }
            }
            "warning" => self.observer.observe(self.id, Progress::Warning(text.to_string())),
            _ => {}
        }
    }
}

/// A log line's message: the text after its `[X] ` marker (OneForm's line format puts the
/// date first).
fn message(text: &str) -> &str {
    ["[D] ", "[I] ", "[W] ", "[E] "]
        .iter()
        .filter_map(|m| text.find(m).map(|at| &text[at + m.len()..]))
        .next()
        .unwrap_or(text)
}

/// `State changed from A to B`.
fn state_change(text: &str) -> Option<(State, State)> {
    let (from, to) = text.strip_prefix("State changed from ")?.split_once(" to ")?;
    Some((State::parse(from.trim())?, State::parse(to.trim())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_changes_and_warnings_are_read_from_log_lines() {
        let line = |level: &str, text: &str| LogLine { level: level.into(), text: text.into() };
        assert_eq!(
            message("Mon Feb 03 06:02:30 2025 [I] State changed from INIT to PLANNING"),
            "State changed from INIT to PLANNING"
        );
        assert_eq!(state_change("State changed from INIT to PLANNING"), Some((State::Init, State::Planning)));
        assert_eq!(state_change("State changed from INIT to NOWHERE"), None);
        #[derive(Clone, Default)]
        struct Heard(std::sync::Arc<std::sync::Mutex<Vec<Progress>>>);
        impl Observer for Heard {
            fn observe(&mut self, _: i64, p: Progress) {
                self.0.lock().unwrap().push(p);
            }
        }
        let heard = Heard::default();
        let mut watch = Watch { id: 1, observer: Box::new(heard.clone()), since: Instant::now() };
        for l in [
            line("info", "Mon Feb 03 06:02:30 2025 [I] Provision 'x' allocated"),
            line("info", "Mon Feb 03 06:02:30 2025 [I] State changed from PENDING to INIT"),
            line("error", "Mon Feb 03 06:02:31 2025 [E] tool stderr"),
            line("warning", "Mon Feb 03 06:02:31 2025 [W] slow host"),
        ] {
            watch.line(&l);
        }
        let heard = heard.0.lock().unwrap().clone();
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(matches!(heard[0], Progress::StateChanged { from: State::Pending, to: State::Init, .. }));
        assert_eq!(heard[1], Progress::Warning("slow host".into()));
    }

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
