//! The runner against scripted stages and a real (in-memory or file) SQLite store: the happy
//! path, failure and retry, the lock, a simulated crash and resume, cancellation from another
//! "process", and the empty-provision teardown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::exec::{Severity, Sink, Stream};
use crate::store::{OperationStatus, Owner, Store};

/// A log in memory.
#[derive(Default)]
pub struct MemLog {
    pub lines: Vec<String>,
    bytes: u64,
}

impl Sink for MemLog {
    fn line(&mut self, _: Stream, text: &str) {
        self.note(Severity::Debug, text);
    }
    fn note(&mut self, severity: Severity, text: &str) {
        let line = format!("[{}] {text}", severity.letter());
        self.bytes += line.len() as u64 + 1;
        self.lines.push(line);
    }
}

impl Log for MemLog {
    fn position(&self) -> u64 {
        self.bytes
    }
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Succeed,
    Fail,
    /// Never finishes (the process "dies" here when the test drops the future).
    Hang,
    /// Waits for cancellation, then reports it.
    WaitCancel,
}

/// Stages that do what a script says and count their runs.
#[derive(Clone, Default)]
struct Script {
    acts: Arc<Mutex<HashMap<Stage, Vec<Act>>>>,
    runs: Arc<Mutex<Vec<Stage>>>,
    hosts: usize,
    cluster_exists: bool,
}

impl Script {
    fn with_hosts(hosts: usize) -> Script {
        Script { hosts, ..Script::default() }
    }
    /// The next runs of `stage` do `acts`, in order; afterwards it succeeds.
    fn on(self, stage: Stage, acts: &[Act]) -> Script {
        self.acts.lock().unwrap().insert(stage, acts.to_vec());
        self
    }
    fn runs(&self, stage: Stage) -> usize {
        self.runs.lock().unwrap().iter().filter(|s| **s == stage).count()
    }
    fn outcome(&self, stage: Stage) -> Outcome {
        match stage {
            Stage::Init => Outcome::Init,
            Stage::Planning => Outcome::Planning,
            Stage::Applying => Outcome::Applying,
            Stage::ConfiguringOne => Outcome::ConfiguringOne,
            Stage::ConfiguringProvision => Outcome::ConfiguringProvision { hosts: self.hosts },
            Stage::Scaling => Outcome::Scaling,
            Stage::DeprovisioningOne => Outcome::DeprovisioningOne,
            Stage::Deprovisioning => Outcome::Deprovisioning { cluster_exists: self.cluster_exists },
            Stage::Done => Outcome::Done,
        }
    }
}

impl Stages for Script {
    async fn run(&self, stage: Stage, ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
        self.runs.lock().unwrap().push(stage);
        let act = {
            let mut acts = self.acts.lock().unwrap();
            let list = acts.entry(stage).or_default();
            if list.is_empty() { Act::Succeed } else { list.remove(0) }
        };
        ctx.provision.body.other.insert("last_stage".into(), json!(stage.name()));
        match act {
            Act::Succeed => Ok(self.outcome(stage)),
            Act::Fail => Err(StageError::failed(format!("{} broke", stage.name()))),
            Act::Hang => std::future::pending().await,
            Act::WaitCancel => {
                ctx.cancel.cancelled().await;
                Err(StageError::cancelled("cancelled"))
            }
        }
    }
}

fn runner(store: &Arc<Store>, script: Script, pid: i64) -> Runner<Script> {
    Runner {
        store: Arc::clone(store),
        stages: script,
        owner: Owner { pid, token: format!("{pid}:t") },
        clock: || 1000,
        fault: None,
        lease: crate::exec::Cancel::new(),
    }
}

fn new_provision(store: &Store) -> i64 {
    let provider = store.insert_provider("sim", "sim", &json!({}), 1).unwrap();
    store.insert_provision("p", "sim", provider, &serde_json::from_value(json!({"name": "p"})).unwrap(), 1).unwrap()
}

fn states_seen(store: &Store, id: i64) -> Vec<String> {
    store
        .historic(id)
        .unwrap()
        .into_iter()
        .filter(|h| h.action == "State changed")
        .map(|h| h.description.rsplit(' ').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn create_runs_every_stage_once_to_running() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let id = new_provision(&store);
    let script = Script::with_hosts(2);
    let mut log = MemLog::default();
    let end =
        runner(&store, script.clone(), 1).start(id, "create", &Params::None, Event::Created, &mut log).await.unwrap();
    assert_eq!(end, State::Running);
    assert_eq!(
        states_seen(&store, id),
        ["INIT", "PLANNING", "APPLYING", "CONFIGURING_ONE", "CONFIGURING_PROVISION", "RUNNING"]
    );
    assert_eq!(store.attempts(id).unwrap().len(), 5);
    assert!(store.attempts(id).unwrap().iter().all(|a| a.outcome.as_deref() == Some("succeeded")));
    assert_eq!(
        store.provision(id).unwrap().body.other["last_stage"],
        "CONFIGURING_PROVISION",
        "stage changes are saved"
    );
    assert_eq!(store.operations(id).unwrap()[0].status, OperationStatus::Succeeded);
    assert!(log.lines.contains(&"[I] State changed from PLANNING to APPLYING".to_string()), "{:?}", log.lines);
}

#[tokio::test]
async fn a_failed_stage_lands_in_its_failure_state_and_retry_goes_on_from_there() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let id = new_provision(&store);
    let script = Script::with_hosts(1).on(Stage::Applying, &[Act::Fail]);
    let r = runner(&store, script.clone(), 1);
    let err = r.start(id, "create", &Params::None, Event::Created, &mut MemLog::default()).await.unwrap_err();
    assert!(err.to_string().contains("APPLYING failed: APPLYING broke"), "{err}");
    assert_eq!(store.provision(id).unwrap().state, State::ApplyingFailure);
    assert_eq!(store.operations(id).unwrap()[0].status, OperationStatus::Failed);

    let end = r.start(id, "retry", &Params::None, Event::RetryRequested, &mut MemLog::default()).await.unwrap();
    assert_eq!(end, State::Running);
    assert_eq!((script.runs(Stage::Init), script.runs(Stage::Planning), script.runs(Stage::Applying)), (1, 1, 2));
    let illegal = r.start(id, "retry", &Params::None, Event::RetryRequested, &mut MemLog::default()).await.unwrap_err();
    assert!(illegal.to_string().contains("cannot retry while the provision is RUNNING"), "{illegal}");
    assert_eq!(store.provision(id).unwrap().state, State::Running, "a refused request changes nothing");
}

#[tokio::test]
async fn a_second_operation_is_refused_while_one_runs() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let id = new_provision(&store);
    let script = Script::with_hosts(1).on(Stage::Planning, &[Act::WaitCancel]);
    let first = runner(&store, script.clone(), 1);
    let task = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let r = runner(&store, script, 1);
            r.start(id, "create", &Params::None, Event::Created, &mut MemLog::default()).await
        })
    };
    while store.provision(id).unwrap().state != State::Planning {
        tokio::task::yield_now().await;
    }
    let busy = first
        .start(id, "deprovision", &Params::None, Event::DeprovisionRequested { force: true }, &mut MemLog::default())
        .await;
    let message = busy.unwrap_err().to_string();
    assert!(message.contains("provision 1 is busy: operation 1 (create)"), "{message}");
    assert!(message.ends_with("wait for it to end, or cancel it"), "{message}");

    // Cancel it as another process would: through the database.
    store.request_cancel(id, 2).unwrap();
    let result = task.await.unwrap();
    assert!(matches!(result, Err(Error::Cancelled { state: State::PlanningFailure, .. })), "{result:?}");
    assert_eq!(store.operations(id).unwrap()[0].status, OperationStatus::Cancelled);
    assert_eq!(store.attempts(id).unwrap()[1].outcome.as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn after_a_crash_resume_reruns_only_the_interrupted_stage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("f.db")).unwrap());
    let id = new_provision(&store);
    let script = Script::with_hosts(3).on(Stage::ConfiguringOne, &[Act::Hang]);
    let crashed = runner(&store, script.clone(), 1);
    let (params, mut log) = (Params::None, MemLog::default());
    let run = crashed.start(id, "create", &params, Event::Created, &mut log);
    // The process "dies" while CONFIGURING_ONE runs: the future is dropped mid-stage.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), run).await.is_err());
    assert_eq!(store.provision(id).unwrap().state, State::ConfiguringOne);

    let alive_is_none = |_: &Owner| false;
    let fresh = runner(&store, script.clone(), 2);
    let resumed = fresh.resume(OnInterrupted::Resume, alive_is_none, |_| Box::new(MemLog::default())).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].1.as_ref().unwrap(), &State::Running);
    assert_eq!(script.runs(Stage::ConfiguringOne), 2);
    for stage in [Stage::Init, Stage::Planning, Stage::Applying, Stage::ConfiguringProvision] {
        assert_eq!(script.runs(stage), 1, "{stage:?} finished before the crash and must not run again");
    }
    let attempts = store.attempts(id).unwrap();
    assert_eq!(attempts.iter().filter(|a| a.outcome.as_deref() == Some("interrupted")).count(), 1);
    assert!(store.running_operations().unwrap().is_empty());
    // Nothing left to resume, and a live owner is never taken over.
    assert!(
        fresh.resume(OnInterrupted::Resume, alive_is_none, |_| Box::new(MemLog::default())).await.unwrap().is_empty()
    );
}

#[tokio::test]
async fn resume_can_fail_the_interrupted_stage_instead() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let id = new_provision(&store);
    let script = Script::with_hosts(1).on(Stage::Applying, &[Act::Hang]);
    let (first, params, mut log) = (runner(&store, script.clone(), 1), Params::None, MemLog::default());
    let run = first.start(id, "create", &params, Event::Created, &mut log);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(50), run).await.is_err());
    let live_owner_kept = runner(&store, script.clone(), 2)
        .resume(OnInterrupted::Fail, |o: &Owner| o.pid == 1, |_| Box::new(MemLog::default()))
        .await
        .unwrap();
    assert!(live_owner_kept.is_empty(), "an operation whose owner lives is left alone");
    let failed = runner(&store, script.clone(), 2)
        .resume(OnInterrupted::Fail, |_: &Owner| false, |_| Box::new(MemLog::default()))
        .await
        .unwrap();
    assert_eq!(failed[0].1.as_ref().unwrap(), &State::ApplyingFailure);
    assert_eq!(store.operations(id).unwrap()[0].status, OperationStatus::Interrupted);
    assert_eq!(script.runs(Stage::Applying), 1);
}

#[tokio::test]
async fn an_empty_provision_tears_itself_down_and_scale_down_returns_to_running() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let id = new_provision(&store);
    let end = runner(&store, Script::with_hosts(0), 1)
        .start(id, "create", &Params::None, Event::Created, &mut MemLog::default())
        .await;
    assert_eq!(end.unwrap(), State::Done);
    assert_eq!(states_seen(&store, id)[5..], ["RUNNING", "DEPROVISIONING_ONE", "DEPROVISIONING", "DONE"]);

    let other = store.insert_provision("q", "sim", 1, &ProvisionBody::default(), 1).unwrap();
    let script = Script { hosts: 2, cluster_exists: true, ..Script::default() };
    let r = runner(&store, script, 1);
    r.start(other, "create", &Params::None, Event::Created, &mut MemLog::default()).await.unwrap();
    let end = r
        .start(
            other,
            "scale",
            &Params::Teardown { force: false, resources: Resources { hosts: vec![3], ..Resources::default() } },
            Event::ScaleDownRequested,
            &mut MemLog::default(),
        )
        .await;
    assert_eq!(end.unwrap(), State::Running);
    assert_eq!(states_seen(&store, other)[6..], ["DEPROVISIONING_ONE", "DEPROVISIONING", "RUNNING"]);
}
