//! Store behaviour on both backends, each test run once on a SQLite file and once on a fresh
//! PostgreSQL database (`on_both!`): migrations, the checkpoint transaction, the per-provision
//! lock seen from two stores (as two processes or two servers see it), take-over, and the
//! writer thread's group commit (writes from many threads, a failing write among others,
//! read-your-writes, async callers).

use std::sync::{Arc, mpsc};

use serde_json::json;

use super::*;
use crate::engine::{Params, ProvisionBody, State};
use crate::store::servers::NewServer;

#[path = "../../tests/common/postgres.rs"]
mod pg;

/// One database of either backend; each [`Backend::open`] is another store on the same data, as
/// another process (SQLite) or another server (PostgreSQL) would open it.
pub(super) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, keys: tempfile::TempDir },
}

impl Backend {
    pub(super) fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    pub(super) fn postgres() -> Backend {
        Backend::Postgres { url: pg::fresh_database(), keys: tempfile::tempdir().unwrap() }
    }

    pub(super) fn open(&self) -> Store {
        self.try_open().unwrap()
    }

    pub(super) fn try_open(&self) -> Result<Store, Error> {
        match self {
            Backend::Sqlite(dir) => Store::open(&dir.path().join("formwork.db")),
            Backend::Postgres { url, keys } => Store::open_postgres(url, Source::File(keys.path().join(KEY_FILE))),
        }
    }
}

/// Runs each named test (a `fn(&Backend)`) as two tests, `NAME::sqlite` and `NAME::postgres`;
/// the module calling it has `Backend` in scope.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Backend::sqlite())
            }
            #[test]
            fn postgres() {
                super::$name(&super::Backend::postgres())
            }
        }
    )*};
}
pub(super) use on_both;

on_both!(
    migrations_apply_once,
    checkpoint_moves_state_with_body_and_historic_atomically,
    one_running_operation_per_provision_across_stores,
    take_over_is_compare_and_set,
    providers_in_use_cannot_be_deleted_and_derive_provision_ids,
    tfstates_keep_every_version_and_serve_the_latest,
    listing_hides_done_unless_asked,
    unqueued_creates_are_the_pending_provisions_without_operations,
    a_failed_attempt_keeps_the_tools_exit_status,
    writes_from_many_threads_each_land_exactly_once,
    a_failing_write_fails_alone_in_its_group,
    async_callers_reach_the_store,
    a_panicking_write_reaches_its_caller_and_the_writer_carries_on,
    a_write_is_visible_to_the_next_read_on_every_thread,
    ownership_is_stored_and_changed,
    queued_operations_hold_the_lock_and_count_until_dequeued,
    ids_are_never_handed_out_again_after_a_delete,
    an_update_computed_before_a_checkpoint_does_not_write_over_it,
    an_update_is_refused_while_an_operation_runs,
    a_queued_operation_cancelled_is_closed_and_never_dequeued,
    metrics_count_operations_provisions_and_stage_durations,
    a_takeover_fences_off_every_write_of_the_previous_owner,
    expired_leases_are_taken_over_and_live_ones_are_not,
    two_stores_racing_for_queued_work_each_win_it_once,
    the_newest_terraform_state_is_the_highest_serial,
    a_store_opened_with_another_key_is_refused_before_it_writes,
    a_terraform_run_not_ended_holds_back_the_next_until_its_state_is_saved,
);

fn owner(pid: i64) -> Owner {
    Owner { pid, token: format!("{pid}:1") }
}

pub(super) fn with_provision(store: &Store) -> (i64, i64) {
    let provider = store.insert_provider("sim", "sim", &json!({"connection": {}}), 1).unwrap();
    let provision = store
        .insert_provision("p", "sim", provider, &serde_json::from_value(json!({"name": "p"})).unwrap(), 2)
        .unwrap();
    (provider, provision)
}

fn migrations_apply_once(db: &Backend) {
    let store = db.open();
    let applied: Vec<(i64, String)> = MIGRATIONS.iter().map(|m| (m.version, m.name.to_string())).collect();
    let numbered: Vec<i64> = (1..=applied.len() as i64).collect();
    assert_eq!(applied.iter().map(|(v, _)| *v).collect::<Vec<_>>(), numbered, "numbered 1, 2, … without a gap");
    assert!(applied.iter().all(|(v, name)| name.starts_with(&format!("{v:04}_"))), "{applied:?}");
    assert_eq!(store.migrations().unwrap(), applied);
    drop(store);
    let again = db.open();
    assert_eq!(again.migrations().unwrap(), applied);
}

#[test]
fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db/formwork.db");
    drop(Store::open(&path).unwrap());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
}

fn checkpoint_moves_state_with_body_and_historic_atomically(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 3).unwrap();
    let attempt = store.start_attempt(store.operation(op).unwrap().fence(), id, "INIT", 0, 3).unwrap();
    let body: ProvisionBody = serde_json::from_value(json!({"name": "p", "step": 1})).unwrap();
    let entry = HistoricEntry::new("Resource provisioned", "10.0.0.1 provisioned", 4);
    store
        .checkpoint(&Checkpoint {
            provision_id: id,
            from: State::Pending,
            to: State::Init,
            body: Some(&body),
            historic: vec![entry.clone()],
            attempt: Some(AttemptEnd {
                attempt_id: attempt,
                outcome: OperationStatus::Succeeded,
                error: None,
                exit_status: None,
                log_end: 42,
            }),
            start: None,
            time: 4,
            fence: None,
        })
        .unwrap();
    let row = store.provision(id).unwrap();
    assert_eq!(row.state, State::Init);
    assert_eq!(row.body, body);
    assert_eq!(store.historic(id).unwrap(), vec![HistoricEntry::state_changed(State::Pending, State::Init, 4), entry]);
    let attempts = store.attempts(id).unwrap();
    assert_eq!((attempts[0].outcome.as_deref(), attempts[0].log_end), (Some("succeeded"), Some(42)));

    // A checkpoint from a state the provision is no longer in changes nothing.
    let stale = Checkpoint {
        provision_id: id,
        from: State::Pending,
        to: State::Init,
        body: None,
        historic: vec![],
        attempt: None,
        start: None,
        time: 5,
        fence: None,
    };
    assert!(matches!(store.checkpoint(&stale), Err(Error::Conflict { .. })));
    assert_eq!(store.historic(id).unwrap().len(), 2);
}

fn one_running_operation_per_provision_across_stores(db: &Backend) {
    let (a, b) = (db.open(), db.open());
    let (_, id) = with_provision(&a);
    let first = a.begin_operation(id, "create", &Params::None, None, &owner(100), 1).unwrap();
    match b.begin_operation(id, "scale", &Params::None, None, &owner(200), 2) {
        Err(Error::Busy { operation, .. }) => {
            assert_eq!((operation.id, operation.kind.as_str(), operation.owner_pid), (first, "create", 100));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    a.finish_operation(a.operation(first).unwrap().fence(), OperationStatus::Succeeded, None, 3).unwrap();
    let second =
        b.begin_operation(id, "scale", &Params::AddIps { amount: 1, target: None }, None, &owner(200), 4).unwrap();
    assert_ne!(first, second);
    assert_eq!(a.running_operation(id).unwrap().unwrap().params, Params::AddIps { amount: 1, target: None });
}

fn take_over_is_compare_and_set(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 1).unwrap();
    assert!(store.take_over(op, &owner(1), &owner(2), 2).unwrap());
    assert!(!store.take_over(op, &owner(1), &owner(3), 3).unwrap(), "the old owner is gone already");
    assert_eq!(store.operation(op).unwrap().owner_pid, 2);
    assert!(store.request_cancel(id, 2).unwrap().is_some());
    assert!(store.is_cancel_requested(op).unwrap());
    store
        .finish_operation(
            store.operation(op).unwrap().fence(),
            OperationStatus::Cancelled,
            Some("cancelled by user"),
            4,
        )
        .unwrap();
    assert!(store.request_cancel(id, 2).unwrap().is_none());
    assert!(store.running_operations().unwrap().is_empty());
}

fn providers_in_use_cannot_be_deleted_and_derive_provision_ids(db: &Backend) {
    let store = db.open();
    let (provider, id) = with_provision(&store);
    assert_eq!(store.provider(provider).unwrap().provision_ids, vec![id]);
    assert!(matches!(store.delete_provider(provider), Err(Error::InUse { .. })));
    store
        .checkpoint(&Checkpoint {
            provision_id: id,
            from: State::Pending,
            to: State::Done,
            body: None,
            historic: vec![],
            attempt: None,
            start: None,
            time: 9,
            fence: None,
        })
        .unwrap();
    assert!(store.provider(provider).unwrap().provision_ids.is_empty(), "DONE provisions leave provision_ids");
    store.delete_provision(id).unwrap();
    store.delete_provider(provider).unwrap();
    assert!(matches!(store.provider(provider), Err(Error::NotFound { .. })));
}

fn tfstates_keep_every_version_and_serve_the_latest(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    assert_eq!(store.latest_tfstate(id).unwrap(), None);
    store.save_tfstate(id, None, r#"{"serial": 1}"#, 1).unwrap();
    store.save_tfstate(id, None, r#"{"serial": 2}"#, 2).unwrap();
    assert_eq!(store.latest_tfstate(id).unwrap().as_deref(), Some(r#"{"serial": 2}"#));
    store.delete_provision(id).unwrap();
    assert_eq!(store.latest_tfstate(id).unwrap(), None, "deleting a provision removes its states");
}

fn listing_hides_done_unless_asked(db: &Backend) {
    let store = db.open();
    let (provider, a) = with_provision(&store);
    let b = store.insert_provision("q", "sim", provider, &ProvisionBody::default(), 3).unwrap();
    store
        .checkpoint(&Checkpoint {
            provision_id: a,
            from: State::Pending,
            to: State::Done,
            body: None,
            historic: vec![],
            attempt: None,
            start: None,
            time: 4,
            fence: None,
        })
        .unwrap();
    let ids = |all| store.provisions(all).unwrap().iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(false), vec![b]);
    assert_eq!(ids(true), vec![a, b]);

    // Pages: ids above `after`, at most `limit`, DONE skipped unless asked.
    let c = store.insert_provision("r", "sim", provider, &ProvisionBody::default(), 5).unwrap();
    let page =
        |all, after, limit| store.provisions_after(all, after, limit).unwrap().iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(page(true, 0, Some(2)), vec![a, b]);
    assert_eq!(page(true, b, Some(2)), vec![c]);
    assert_eq!(page(false, 0, Some(1)), vec![b], "DONE rows do not take a place in the page");
    assert_eq!(page(false, b, None), vec![c]);
    assert_eq!(page(true, c, Some(2)), Vec::<i64>::new());
}

fn unqueued_creates_are_the_pending_provisions_without_operations(db: &Backend) {
    let store = db.open();
    let (provider, unqueued) = with_provision(&store);
    let new = |name: &str| store.insert_provision(name, "sim", provider, &ProvisionBody::default(), 3).unwrap();
    let (queued, running, later) = (new("queued"), new("running"), new("later"));
    store.enqueue_operation(queued, "create", &Params::None, None, &owner(1), 4).unwrap();
    let to_running = Checkpoint {
        provision_id: running,
        from: State::Pending,
        to: State::Running,
        body: None,
        historic: vec![],
        attempt: None,
        start: None,
        time: 4,
        fence: None,
    };
    store.checkpoint(&to_running).unwrap();
    assert_eq!(store.unqueued_creates().unwrap(), vec![unqueued, later]);
}

fn a_failed_attempt_keeps_the_tools_exit_status(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 1).unwrap();
    let attempt = store.start_attempt(store.operation(op).unwrap().fence(), id, "APPLYING", 10, 1).unwrap();
    let end = AttemptEnd {
        attempt_id: attempt,
        outcome: OperationStatus::Failed,
        error: Some("quota".into()),
        exit_status: Some(1),
        log_end: 20,
    };
    store.end_attempt(&end, 2).unwrap();
    let row = &store.attempts(id).unwrap()[0];
    assert_eq!(
        (row.exit_status, row.outcome.as_deref(), row.log_start, row.log_end),
        (Some(1), Some("failed"), 10, Some(20))
    );
}

fn writes_from_many_threads_each_land_exactly_once(db: &Backend) {
    let store = Arc::new(db.open());
    let provider = store.insert_provider("sim", "sim", &json!({}), 1).unwrap();
    let (threads, each) = (16, 25);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                (0..each)
                    .map(|i| {
                        let name = format!("t{t}-{i}");
                        (store.insert_provision(&name, "sim", provider, &ProvisionBody::default(), 2).unwrap(), name)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let written: Vec<(i64, String)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let stored = store.provisions(true).unwrap();
    assert_eq!(stored.len(), threads * each);
    let mut expected: Vec<_> = written.clone();
    expected.sort();
    let found: Vec<_> = stored.iter().map(|p| (p.id, p.name.clone())).collect();
    assert_eq!(found, expected, "every acknowledged id holds its own row, and no row is extra");
}

fn a_failing_write_fails_alone_in_its_group(db: &Backend) {
    let store = db.open();
    let (provider, id) = with_provision(&store);
    // The writer is held inside a first write while the others queue up behind it, so the
    // rest reach it together and share one transaction.
    let (release, gate) = mpsc::channel::<()>();
    let held = store.writer.submit(move |_| {
        gate.recv().unwrap();
        Ok(())
    });
    let begin_op = |pid: i64| {
        let owner = owner(pid);
        move |tx: &db::Db<'_>| operations::begin(tx, id, "create", "{}", &owner, 3)
    };
    let first = store.writer.submit(begin_op(100));
    let refused = store.writer.submit(begin_op(200));
    let failing = store.writer.submit(move |tx| {
        tx.execute(
            "INSERT INTO providers (id, name, driver, body, registration_time) VALUES (50, 'lost', 'sim', '{}', 4)",
            (),
        )?;
        Err::<(), _>(Error::NotFound { what: "provision", id: 999 })
    });
    let after = store.writer.submit(move |tx| {
        tx.execute("UPDATE provisions SET name = 'kept' WHERE id = ?1", [id])?;
        Ok(())
    });
    release.send(()).unwrap();
    held.wait().unwrap();
    let first = first.wait().unwrap();
    match refused.wait() {
        Err(Error::Busy { operation, .. }) => assert_eq!((operation.id, operation.owner_pid), (first, 100)),
        other => panic!("expected Busy, got {other:?}"),
    }
    assert!(matches!(failing.wait(), Err(Error::NotFound { id: 999, .. })));
    after.wait().unwrap();
    assert_eq!(store.running_operation(id).unwrap().map(|o| o.id), Some(first));
    assert_eq!(store.operations(id).unwrap().len(), 1, "the refused operation left no row");
    assert_eq!(store.provision(id).unwrap().name, "kept");
    let providers: Vec<_> = store.providers().unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(providers, vec![provider], "the failed write's insert was rolled back");
}

fn a_panicking_write_reaches_its_caller_and_the_writer_carries_on(db: &Backend) {
    let store = db.open();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store
            .writer
            .submit(|tx| -> Result<(), Error> {
                tx.execute(
                    "INSERT INTO providers (name, driver, body, registration_time) VALUES ('x', 'sim', '{}', 1)",
                    (),
                )?;
                panic!("write bug")
            })
            .wait()
    }));
    assert!(panicked.is_err());
    assert!(store.providers().unwrap().is_empty(), "the panicking write was rolled back");
    with_provision(&store);
    assert_eq!(store.providers().unwrap().len(), 1);
}

fn a_write_is_visible_to_the_next_read_on_every_thread(db: &Backend) {
    let store = Arc::new(db.open());
    let provider = store.insert_provider("sim", "sim", &json!({}), 1).unwrap();
    // More threads than read connections, so reads also wait for and reuse each other's.
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let id = store.insert_provision("p", "sim", provider, &ProvisionBody::default(), 1).unwrap();
                for round in 0..25 {
                    let name = format!("t{t}-{round}");
                    // A stale snapshot would also show here: an update from an old revision is refused.
                    let revision = store.provision(id).unwrap().revision;
                    let body = serde_json::from_value(json!({"round": round})).unwrap();
                    store.update_provision(id, &name, &body, revision, round).unwrap();
                    // Read connections are shared between threads and reused: a stale snapshot
                    // on any of them would show an older name here.
                    assert_eq!(store.provision(id).unwrap().name, name);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn async_callers_reach_the_store(db: &Backend) {
    let store = Arc::new(db.open());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    runtime.block_on(async_callers_reach_the_store_through_call(store));
}

async fn async_callers_reach_the_store_through_call(store: Arc<Store>) {
    let provider = store.call(|s| s.insert_provider("sim", "sim", &json!({}), 1)).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .call(move |s| s.insert_provision(&format!("p{i}"), "sim", provider, &ProvisionBody::default(), 2))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.call(|s| s.provisions(true)).await.unwrap().len(), 50);
    // The blocking methods stay usable from a worker (the runner calls them so).
    assert_eq!(store.provider(provider).unwrap().provision_ids.len(), 50);
}

/// A database made before 0002: its rows become oneadmin's (600) and provision bodies gain
/// `cloud_provider` (the driver) and `version` (the provider's).
#[test]
fn migration_2_gives_old_rows_an_owner_and_the_driver_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("formwork.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, '0001_init', 1);
             INSERT INTO providers (id, name, driver, body, registration_time) VALUES (3, 'p', 'sim', '{\"version\":\"1.2\"}', 1);
             INSERT INTO provisions (id, name, driver, provider_id, state, body, registration_time, updated_time)
                 VALUES (5, 'v', 'sim', 3, 3, '{\"name\":\"v\"}', 1, 1);",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let row = store.provision(5).unwrap();
    assert_eq!(row.body.cloud_provider.as_deref(), Some("sim"));
    assert_eq!(row.body.version, json!("1.2"));
    assert_eq!(row.body.name, "v");
    assert_eq!(row.owner, Ownership::default());
    assert_eq!(store.provider(3).unwrap().owner.mode, Mode(0o600));
}

fn ownership_is_stored_and_changed(db: &Backend) {
    let store = db.open();
    let owner = Ownership { uid: 7, uname: "ann".into(), gid: 1, gname: "users".into(), mode: Mode(0o640) };
    let provider = store.insert_provider_of("p", "sim", &json!({}), &owner, 1).unwrap();
    let id = store.insert_provision_of("v", "sim", provider, &ProvisionBody::default(), &owner, 1).unwrap();
    assert_eq!(store.provider(provider).unwrap().owner, owner);
    assert_eq!(store.provision(id).unwrap().owner, owner);
    let moved = Ownership { uid: 8, uname: "bob".into(), mode: Mode(0o604), ..owner.clone() };
    store.set_ownership(Table::Provisions, id, &moved).unwrap();
    assert_eq!(store.provision(id).unwrap().owner, moved);
    assert_eq!(store.provider(provider).unwrap().owner, owner, "only the named table changes");
    assert!(matches!(store.set_ownership(Table::Providers, 99, &moved), Err(Error::NotFound { .. })));
}

fn queued_operations_hold_the_lock_and_count_until_dequeued(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let owner = owner(1);
    let op = store.enqueue_operation(id, "create", &Params::None, None, &owner, 1).unwrap();
    assert!(store.operation(op).unwrap().queued);
    assert_eq!(store.queue_length().unwrap(), 1);
    assert!(matches!(store.begin_operation(id, "retry", &Params::None, None, &owner, 2), Err(Error::Busy { .. })));
    store.dequeue(op).unwrap();
    assert!(!store.operation(op).unwrap().queued);
    assert_eq!(store.queue_length().unwrap(), 0);
}

fn ids_are_never_handed_out_again_after_a_delete(db: &Backend) {
    let store = db.open();
    let provider = store.insert_provider("a", "sim", &json!({}), 1).unwrap();
    let first = store.insert_provision("p", "sim", provider, &ProvisionBody::default(), 1).unwrap();
    let last = store.insert_provision("q", "sim", provider, &ProvisionBody::default(), 1).unwrap();
    // The newest operation goes with its provision: a server still holding its id (queued
    // behind a slot) must never find another provision's operation under it.
    let op = store.begin_operation(last, "create", &Params::None, None, &owner(1), 1).unwrap();
    store.delete_provision(last).unwrap();
    let spare = store.insert_provider("b", "sim", &json!({}), 1).unwrap();
    store.delete_provider(spare).unwrap();
    drop(store);
    // Reopened, as a restarted server would: the highest ids ever given are remembered.
    let store = db.open();
    let next = store.insert_provision("r", "sim", provider, &ProvisionBody::default(), 2).unwrap();
    assert!(next > last, "provision id {next} was handed out again (deleted {last})");
    assert_eq!(store.provision(first).unwrap().name, "p", "existing ids are kept");
    let provider_next = store.insert_provider("c", "sim", &json!({}), 2).unwrap();
    assert!(provider_next > spare, "provider id {provider_next} was handed out again (deleted {spare})");
    let op_next = store.begin_operation(next, "create", &Params::None, None, &owner(1), 2).unwrap();
    assert!(op_next > op, "operation id {op_next} was handed out again (deleted {op})");
}

fn an_update_computed_before_a_checkpoint_does_not_write_over_it(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let read = store.provision(id).unwrap();
    // A stage saves its body between the update's read and its write.
    let mut saved = read.body.clone();
    saved.name = "saved by a stage".into();
    store.save_body(id, &saved, &[], 2).unwrap();
    let mut stale = read.body.clone();
    stale.description = "patched".into();
    match store.update_provision(id, "patched", &stale, read.revision, 3) {
        Err(Error::Stale { what: "provision", id: stale_id }) => assert_eq!(stale_id, id),
        other => panic!("a stale update was not refused: {other:?}"),
    }
    assert_eq!(store.provision(id).unwrap().body.name, "saved by a stage", "the checkpoint is kept");
    // Computed again from the current revision, it is written.
    let current = store.provision(id).unwrap();
    store.update_provision(id, "patched", &current.body, current.revision, 4).unwrap();
    assert_eq!(store.provision(id).unwrap().name, "patched");
}

fn an_update_is_refused_while_an_operation_runs(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let read = store.provision(id).unwrap();
    store.begin_operation(id, "scale", &Params::None, None, &owner(1), 2).unwrap();
    let refused = store.update_provision(id, "patched", &read.body, read.revision, 3);
    assert!(matches!(refused, Err(Error::Busy { .. })), "{refused:?}");
    assert_eq!(store.provision(id).unwrap().revision, read.revision, "nothing was written");
}

fn a_queued_operation_cancelled_is_closed_and_never_dequeued(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let event = Some(crate::engine::Event::DeprovisionRequested { force: false });
    let op = store.enqueue_operation(id, "deprovision", &Params::None, event, &owner(1), 1).unwrap();
    assert_eq!(store.operation(op).unwrap().event, event, "the row holds the event that starts it");
    let cancelled = store.request_cancel(id, 2).unwrap().expect("the queued operation");
    assert!(cancelled.queued, "answered as it was: queued");
    let row = store.operation(op).unwrap();
    assert_eq!((row.status, row.finished_time), (OperationStatus::Cancelled, Some(2)));
    assert!(!store.dequeue(op).unwrap(), "a slot must not start a cancelled operation");
    assert!(store.running_operation(id).unwrap().is_none(), "the provision is free");
    // A started one is only asked to stop.
    let started = store.begin_operation(id, "retry", &Params::None, None, &owner(1), 3).unwrap();
    store.request_cancel(id, 4).unwrap();
    let row = store.operation(started).unwrap();
    assert!(row.cancel_requested && row.status == OperationStatus::Running, "{row:?}");
}

fn metrics_count_operations_provisions_and_stage_durations(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 10).unwrap();
    for (stage, took) in [("INIT", 3), ("PLANNING", 70)] {
        let attempt = store.start_attempt(store.operation(op).unwrap().fence(), id, stage, 0, 10).unwrap();
        let end = AttemptEnd {
            attempt_id: attempt,
            outcome: OperationStatus::Succeeded,
            error: None,
            exit_status: None,
            log_end: 1,
        };
        store.end_attempt(&end, 10 + took).unwrap();
    }
    store.start_attempt(store.operation(op).unwrap().fence(), id, "APPLYING", 0, 90).unwrap();
    let (_, other) = with_provision(&store);
    store.enqueue_operation(other, "create", &Params::None, None, &owner(1), 11).unwrap();
    let m = store.metrics().unwrap();
    assert_eq!(m.operations, vec![("create".to_string(), "running".to_string(), 2)]);
    assert_eq!(m.provisions, vec![(State::Pending.number(), 2)]);
    assert_eq!((m.queued, m.running), (1, 1));
    let cumulative = |bounds: &[i64]| STAGE_BUCKETS.iter().copied().zip(bounds.iter().copied()).collect::<Vec<_>>();
    assert_eq!(
        m.stages,
        vec![
            StageMetrics { stage: "INIT".into(), buckets: cumulative(&[0, 1, 1, 1, 1, 1, 1]), sum: 3, count: 1 },
            StageMetrics { stage: "PLANNING".into(), buckets: cumulative(&[0, 0, 0, 0, 1, 1, 1]), sum: 70, count: 1 },
        ],
        "the unfinished APPLYING attempt is not counted"
    );
}

fn a_takeover_fences_off_every_write_of_the_previous_owner(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 1).unwrap();
    let old = store.operation(op).unwrap().fence();
    let attempt = store.start_attempt(old, id, "INIT", 0, 1).unwrap();
    assert!(store.take_over(op, &owner(1), &owner(2), 2).unwrap());
    let new = store.operation(op).unwrap().fence();
    assert_eq!(new.epoch, old.epoch + 1);
    let checkpoint = |fence| Checkpoint {
        provision_id: id,
        from: State::Pending,
        to: State::Init,
        body: None,
        historic: vec![],
        attempt: None,
        start: None,
        time: 3,
        fence: Some(fence),
    };
    let fenced = |r: Result<_, Error>| matches!(r, Err(Error::Fenced { epoch, current, .. }) if epoch == old.epoch && current == new.epoch);
    assert!(fenced(store.checkpoint(&checkpoint(old)).map(|_| ())), "a stale checkpoint is refused");
    assert!(fenced(store.start_attempt(old, id, "INIT", 0, 3).map(|_| ())));
    assert!(fenced(store.finish_operation(old, OperationStatus::Failed, Some("stale"), 3)));
    assert_eq!(store.provision(id).unwrap().state, State::Pending, "nothing the old owner wrote landed");
    assert_eq!(store.attempts(id).unwrap().iter().map(|a| a.id).collect::<Vec<_>>(), vec![attempt]);
    store.checkpoint(&checkpoint(new)).unwrap();
    store.finish_operation(new, OperationStatus::Succeeded, None, 4).unwrap();
    assert_eq!(store.operation(op).unwrap().status, OperationStatus::Succeeded);
    // Ended, the operation no longer fences anyone: a late end is a no-op, not an error.
    store.finish_operation(old, OperationStatus::Failed, None, 5).unwrap();
    assert_eq!(store.operation(op).unwrap().status, OperationStatus::Succeeded);
}

fn server(id: &str) -> NewServer {
    NewServer {
        id: id.into(),
        host: "h".into(),
        pid: 1,
        role: "all".into(),
        version: "test".into(),
        address: String::new(),
        started_time: 1,
    }
}

fn expired_leases_are_taken_over_and_live_ones_are_not(db: &Backend) {
    let store = db.open();
    let (live, dead, gone) = (server("live"), server("dead"), server("gone"));
    store.register_server(&live, std::time::Duration::from_secs(60)).unwrap();
    store.register_server(&dead, std::time::Duration::from_millis(1)).unwrap();
    let as_owner = |s: &NewServer| Owner { pid: s.pid, token: s.id.clone() };
    let mut ops = Vec::new();
    for who in [&live, &dead, &gone] {
        let (_, id) = with_provision(&store);
        ops.push(store.begin_operation(id, "create", &Params::None, None, &as_owner(who), 1).unwrap());
    }
    // A queued operation nobody owns is claimed, not taken over.
    let (_, unowned) = with_provision(&store);
    let unowned_owner = Owner { pid: 0, token: String::new() };
    let queued = store.enqueue_operation(unowned, "create", &Params::None, None, &unowned_owner, 1).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!store.renew_lease("dead", std::time::Duration::from_secs(60)).unwrap(), "an expired lease is not renewed");
    assert!(store.renew_lease("live", std::time::Duration::from_secs(60)).unwrap());
    let me = Owner { pid: 9, token: "me".into() };
    assert_eq!(store.take_over_expired(&me, 2).unwrap(), vec![ops[1], ops[2]]);
    assert_eq!(store.operation(ops[0]).unwrap().owner_token, "live");
    assert_eq!(
        (store.operation(ops[1]).unwrap().owner_token.as_str(), store.operation(ops[1]).unwrap().epoch),
        ("me", 1)
    );
    assert!(store.take_over_expired(&me, 3).unwrap().is_empty(), "its own operations are not taken again");
    assert_eq!(store.claim_queued(&me, 5, 3).unwrap(), vec![queued]);
    assert!(store.claim_queued(&me, 5, 3).unwrap().is_empty());
    let listed = store.servers().unwrap();
    let names: Vec<_> = listed.iter().map(|s| (s.server.id.as_str(), s.alive())).collect();
    assert_eq!(names, vec![("live", true), ("dead", false)]);
    assert_eq!(listed[0].operations, vec![(ops[0], store.operation(ops[0]).unwrap().provision_id)]);
    store.deregister_server("live").unwrap();
    assert_eq!(store.take_over_expired(&me, 4).unwrap(), vec![ops[0]], "a stopped server's work is taken at once");
}

/// Two stores (two servers) race to claim each of many queued operations; each is won by
/// exactly one of them.
fn two_stores_racing_for_queued_work_each_win_it_once(db: &Backend) {
    let (a, b) = (Arc::new(db.open()), Arc::new(db.open()));
    let unowned = Owner { pid: 0, token: String::new() };
    let mut queued = Vec::new();
    for _ in 0..40 {
        let (_, id) = with_provision(&a);
        queued.push(a.enqueue_operation(id, "create", &Params::None, None, &unowned, 1).unwrap());
    }
    let claim = |store: Arc<Store>, name: &'static str| {
        std::thread::spawn(move || {
            let me = Owner { pid: 1, token: name.into() };
            let mut won = Vec::new();
            loop {
                let got = store.claim_queued(&me, 1, 2).unwrap();
                if got.is_empty() {
                    return won;
                }
                won.extend(got);
            }
        })
    };
    let (ta, tb) = (claim(Arc::clone(&a), "a"), claim(Arc::clone(&b), "b"));
    let (won_a, won_b) = (ta.join().unwrap(), tb.join().unwrap());
    let mut all: Vec<i64> = won_a.iter().chain(&won_b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, queued, "every operation claimed exactly once (a won {}, b won {})", won_a.len(), won_b.len());
    for (won, name) in [(&won_a, "a"), (&won_b, "b")] {
        for op in won {
            let row = a.operation(*op).unwrap();
            assert_eq!((row.owner_token.as_str(), row.epoch), (name, 1));
        }
    }
}

fn the_newest_terraform_state_is_the_highest_serial(db: &Backend) {
    let store = db.open();
    let (_, id) = with_provision(&store);
    let state = |serial: i64| format!(r#"{{"version": 4, "serial": {serial}, "lineage": "l"}}"#);
    store.save_tfstate(id, None, &state(3), 1).unwrap();
    store.save_tfstate(id, None, &state(5), 2).unwrap();
    // Saved late by a run that was fenced off: kept, but it does not win.
    store.save_tfstate(id, None, &state(4), 3).unwrap();
    assert_eq!(store.latest_tfstate(id).unwrap(), Some(state(5)));
    store.save_tfstate(id, None, &state(5).replace("\"l\"", "\"m\""), 4).unwrap();
    assert_eq!(
        store.latest_tfstate(id).unwrap(),
        Some(state(5).replace("\"l\"", "\"m\"")),
        "of one serial, the last saved"
    );
}

/// A second server (or the same one restarted) given another key is refused at open, naming the
/// key the database expects, and nothing is written: the rows and the migrations are as they were.
fn a_store_opened_with_another_key_is_refused_before_it_writes(db: &Backend) {
    let store = db.open();
    let provider = store.insert_provider("p", "sim", &json!({"connection": {}}), 1).unwrap();
    let key_id = store.sealing().unwrap().0;
    let before = (store.providers().unwrap(), store.migrations().unwrap());
    drop(store);
    let other = crate::secrets::KeyText::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let refused = match db {
        Backend::Sqlite(dir) => Store::open_with_keys(&dir.path().join("formwork.db"), Source::Given(other)),
        Backend::Postgres { url, .. } => Store::open_postgres(url, Source::Given(other)),
    };
    let err = refused.err().expect("opened with another key").to_string();
    assert!(err.contains(&format!("sealed with key {key_id}")), "{err}");
    let store = db.open();
    assert_eq!((store.providers().unwrap(), store.migrations().unwrap()), before);
    assert_eq!(store.provider(provider).unwrap().name, "p");
}

fn a_terraform_run_not_ended_holds_back_the_next_until_its_state_is_saved(db: &Backend) {
    use crate::store::{Begun, NewToolRun};
    let store = db.open();
    let (_, id) = with_provision(&store);
    let op = store.begin_operation(id, "create", &Params::None, None, &owner(1), 1).unwrap();
    let first = store.operation(op).unwrap().fence();
    let state = |serial: i64| format!(r#"{{"version": 4, "serial": {serial}, "lineage": "l"}}"#);
    store.save_tfstate(id, None, &state(3), 1).unwrap();
    let run = |guard: &str| NewToolRun {
        host: "a".into(),
        guard: guard.into(),
        state_path: "/w/terraform.tfstate".into(),
        left_path: "/d/left".into(),
    };
    assert_eq!(store.begin_tool_run(id, first, Some(run("10:1")), 2).unwrap(), Begun::Started);
    // The server is cut off; another takes the operation over. Its run waits for the mark.
    assert!(store.take_over(op, &owner(1), &owner(2), 3).unwrap());
    let second = store.operation(op).unwrap().fence();
    let Begun::Waiting(mark) = store.begin_tool_run(id, second, Some(run("20:1")), 4).unwrap() else {
        panic!("a second run started while the first one's state may be unsaved")
    };
    assert_eq!((mark.operation_id, mark.server.as_str(), mark.guard.as_str()), (op, "1:1", "10:1"));
    assert_eq!(store.tool_runs().unwrap(), vec![mark.clone()]);
    // An Ansible run (no state to mark) waits too.
    assert!(matches!(store.begin_tool_run(id, second, None, 4).unwrap(), Begun::Waiting(_)));
    // The old server cannot start anything more: its epoch is gone.
    assert!(matches!(store.begin_tool_run(id, first, None, 5), Err(Error::Fenced { .. })));
    // Another guard's end leaves the mark alone; the first guard's end saves its newer state.
    assert!(!store.end_tool_run(id, "99:9", None, 6).unwrap());
    assert_eq!(store.tool_runs().unwrap().len(), 1);
    assert!(store.end_tool_run(id, "10:1", Some(&state(5)), 7).unwrap());
    assert_eq!(store.tool_runs().unwrap(), vec![]);
    assert_eq!(store.latest_tfstate(id).unwrap(), Some(state(5)));
    assert_eq!(store.begin_tool_run(id, second, Some(run("20:1")), 8).unwrap(), Begun::Started);
    // An older state is not saved over the newer one; the mark goes all the same.
    assert!(!store.end_tool_run(id, "20:1", Some(&state(4)), 9).unwrap());
    assert_eq!(store.tool_runs().unwrap(), vec![]);
    assert_eq!(store.latest_tfstate(id).unwrap(), Some(state(5)));
    // An admin forgets a server: its marks go, others' stay.
    store.begin_tool_run(id, second, Some(run("30:1")), 10).unwrap();
    assert_eq!(store.forget_tool_runs("1:1").unwrap(), vec![]);
    let forgotten = store.forget_tool_runs("2:1").unwrap();
    assert_eq!(forgotten.iter().map(|m| (m.provision_id, m.guard.as_str())).collect::<Vec<_>>(), vec![(id, "30:1")]);
    assert_eq!(store.tool_runs().unwrap(), vec![]);
}
