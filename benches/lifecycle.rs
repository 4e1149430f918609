//! Benchmark of the lifecycle's own cost, with stages that finish at once (issue 3's aims):
//! checkpointed transitions per second for one provision and for 200 at once (aim ≥ 5,000/s
//! with every commit fsynced, `synchronous = FULL`: the store's writer groups the commits of
//! concurrent provisions), peak memory with 1,000 provisions in flight (aim ≤ 100 MB), and
//! listing 10,000 provisions (aim < 50 ms). One provision at a time waits for an fsync per
//! write, so that figure follows the disk's fsync latency. Run with
//! `cargo bench --bench lifecycle`; results in docs/benchmarks.md.
//!
//! With `FORMWORK_BENCH_POSTGRES=postgres://user@host:port/db` (a role that may create
//! databases), the 200-at-once case also runs on PostgreSQL, each on a fresh database
//! (`fw_bench_<pid>_<n>`, dropped at the end): one store, then three stores on one database
//! (three "servers" in one process: three `Store`s, three `Runner`s with their own owners, the
//! provisions split between them). `-- --postgres-only` skips the SQLite cases.
//!
//! On PostgreSQL every running stage holds the provision's stage lock on a connection of its
//! own (opened when the stage starts), so 200 stages at once would need more connections than a
//! default PostgreSQL allows (`max_connections = 100`, this project's test cluster 200). A
//! server bounds them with its `max_operations` slots; the bench does the same: all 200
//! provisions are started at once, and at most `FORMWORK_BENCH_PG_SLOTS` (a comma-separated
//! list of totals, `16,60` by default; each total split evenly between the stores) run their
//! operations at a time, the rest waiting for a slot. `FORMWORK_BENCH_PG_SYNC_OFF=1` sets
//! `synchronous_commit = off` on the bench's databases: a diagnostic (is the WAL flush the
//! bound?), never the figure to record.

// The bench reads its own settings (FORMWORK_BENCH_POSTGRES and the rest) from the environment.
#![allow(clippy::disallowed_methods)]

#[path = "common/database.rs"]
mod database;

use database::Database;
use std::sync::Arc;
use std::time::{Duration, Instant};

use formwork::engine::{Ctx, Event, Log, Outcome, Params, Runner, Stage, StageError, Stages};
use formwork::exec::{Severity, Sink, Stream};
use formwork::store::{Owner, Store};
use serde_json::json;

/// Stages that succeed at once, optionally waiting on a gate first (to hold provisions in flight).
#[derive(Clone)]
struct Instant0 {
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Stages for Instant0 {
    async fn run(&self, stage: Stage, _ctx: &mut Ctx<'_>) -> Result<Outcome, StageError> {
        if let (Some(gate), Stage::Applying) = (&self.gate, stage) {
            let _ = gate.acquire().await;
        }
        Ok(match stage {
            Stage::Init => Outcome::Init,
            Stage::Planning => Outcome::Planning,
            Stage::Applying => Outcome::Applying,
            Stage::ConfiguringOne => Outcome::ConfiguringOne,
            Stage::ConfiguringProvision => Outcome::ConfiguringProvision { hosts: 1 },
            Stage::Scaling => Outcome::Scaling,
            Stage::DeprovisioningOne => Outcome::DeprovisioningOne,
            Stage::Deprovisioning => Outcome::Deprovisioning { cluster_exists: false },
            Stage::Done => Outcome::Done,
        })
    }
}

#[derive(Default)]
struct NoLog(u64);

impl Sink for NoLog {
    fn line(&mut self, _: Stream, text: &str) {
        self.0 += text.len() as u64;
    }
    fn note(&mut self, _: Severity, text: &str) {
        self.0 += text.len() as u64;
    }
}

impl Log for NoLog {
    fn position(&self) -> u64 {
        self.0
    }
}

/// Create → RUNNING (6 transitions) then deprovision → DONE (4): 10 checkpoints per provision.
const TRANSITIONS_PER_PROVISION: u64 = 10;

fn runner(store: &Arc<Store>, stages: Instant0) -> Arc<Runner<Instant0>> {
    runner_as(store, stages, "bench")
}

fn runner_as(store: &Arc<Store>, stages: Instant0, token: &str) -> Arc<Runner<Instant0>> {
    Arc::new(Runner {
        store: Arc::clone(store),
        stages,
        owner: Owner { pid: 1, token: token.into() },
        clock: || 0,
        fault: None,
        lease: formwork::exec::Cancel::new(),
    })
}

async fn lifecycle(runner: Arc<Runner<Instant0>>, id: i64) {
    let mut log = NoLog::default();
    runner.start(id, "create", &Params::None, Event::Created, &mut log).await.expect("create");
    let deprovision = Event::DeprovisionRequested { force: false };
    runner
        .start(
            id,
            "deprovision",
            &Params::Teardown { force: false, resources: Default::default() },
            deprovision,
            &mut log,
        )
        .await
        .expect("deprovision");
}

fn provisions(store: &Store, n: usize) -> Vec<i64> {
    let provider = store.insert_provider("bench", "sim", &json!({}), 0).unwrap();
    (0..n)
        .map(|i| {
            store
                .insert_provision(
                    &format!("p{i}"),
                    "sim",
                    provider,
                    &serde_json::from_value(json!({"name": "p"})).unwrap(),
                    0,
                )
                .unwrap()
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let postgres_only = std::env::args().any(|a| a == "--postgres-only");
    if !postgres_only {
        sqlite_cases(&rt, tmp.path());
    }
    match std::env::var("FORMWORK_BENCH_POSTGRES") {
        Ok(url) if !url.is_empty() => postgres_cases(&rt, tmp.path(), &url),
        _ => println!("PostgreSQL cases skipped: set FORMWORK_BENCH_POSTGRES=postgres://user@host:port/db to run them"),
    }
}

/// 200 provisions at once on PostgreSQL: one store, then three stores (three servers) on one
/// database. Each case on a fresh database, dropped afterwards.
fn postgres_cases(rt: &tokio::runtime::Runtime, tmp: &std::path::Path, url: &str) {
    let keys = || formwork::secrets::Source::File(tmp.join("pg-secret.key"));
    let totals: Vec<usize> = std::env::var("FORMWORK_BENCH_PG_SLOTS")
        .unwrap_or_else(|_| "16,60".into())
        .split(',')
        .map(|n| n.trim().parse().expect("FORMWORK_BENCH_PG_SLOTS: numbers, comma-separated"))
        .collect();
    let cases = totals.iter().flat_map(|total| [(*total, 1usize), (*total, 3)]);
    for (case, (total, stores)) in cases.enumerate() {
        let database = Database::create(url, "lifecycle", case);
        if std::env::var("FORMWORK_BENCH_PG_SYNC_OFF").is_ok_and(|v| v == "1") {
            println!("(diagnostic: synchronous_commit = off on {})", database.name);
            database.admin(&format!("ALTER DATABASE \"{}\" SET synchronous_commit = off", database.name));
        }
        let stores: Vec<Arc<Store>> = (0..stores)
            .map(|_| Arc::new(Store::open_postgres(&database.url, keys()).expect("open PostgreSQL")))
            .collect();
        let ids = provisions(&stores[0], 200);
        let runners: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| runner_as(s, Instant0 { gate: None }, &format!("bench-{i}")))
            .collect();
        let slots: Vec<_> =
            (0..stores.len()).map(|_| Arc::new(tokio::sync::Semaphore::new(total.div_ceil(stores.len())))).collect();
        let start = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(k, id)| {
                    let (runner, slots, id) =
                        (Arc::clone(&runners[k % runners.len()]), Arc::clone(&slots[k % runners.len()]), *id);
                    tokio::spawn(async move {
                        let _slot = slots.acquire_owned().await.expect("never closed");
                        lifecycle(runner, id).await;
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let per = total.div_ceil(stores.len());
        let what = if stores.len() == 1 {
            format!("200 provisions at once, {per} running at a time, one store on PostgreSQL")
        } else {
            format!(
                "200 provisions at once, {} stores (servers) on one PostgreSQL database, {per} running at a time in each",
                stores.len()
            )
        };
        report(&what, start.elapsed(), 200);
        drop(runners);
        drop(stores);
    }
}

fn sqlite_cases(rt: &tokio::runtime::Runtime, tmp: &std::path::Path) {
    let store = Arc::new(Store::open(&tmp.join("serial.db")).unwrap());
    let ids = provisions(&store, 200);
    let r = runner(&store, Instant0 { gate: None });
    let start = Instant::now();
    rt.block_on(async {
        for id in &ids {
            lifecycle(Arc::clone(&r), *id).await;
        }
    });
    report("one provision at a time (200 in a row, file-backed SQLite)", start.elapsed(), 200);

    let store = Arc::new(Store::open(&tmp.join("parallel.db")).unwrap());
    let ids = provisions(&store, 200);
    let r = runner(&store, Instant0 { gate: None });
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = ids.iter().map(|id| tokio::spawn(lifecycle(Arc::clone(&r), *id))).collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    report("200 provisions at once (file-backed SQLite, synchronous = FULL)", start.elapsed(), 200);

    let before = peak_rss_mb();
    let store = Arc::new(Store::open(&tmp.join("inflight.db")).unwrap());
    let ids = provisions(&store, 1000);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let r = runner(&store, Instant0 { gate: Some(Arc::clone(&gate)) });
    let peak = rt.block_on(async {
        let tasks: Vec<_> = ids.iter().map(|id| tokio::spawn(lifecycle(Arc::clone(&r), *id))).collect();
        while store.running_operations().unwrap().len() < 1000 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let in_flight = peak_rss_mb();
        gate.add_permits(1_000_000);
        for t in tasks {
            t.await.unwrap();
        }
        in_flight
    });
    println!(
        "1,000 provisions in flight (all held in APPLYING): peak RSS {peak:.1} MB (process before: {before:.1} MB)"
    );

    let store = Store::open(&tmp.join("list.db")).unwrap();
    provisions(&store, 10_000);
    let mut times: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            let rows = store.provisions(true).unwrap();
            let served: Vec<_> = rows.iter().map(|r| formwork::service::serve_provision(r, &[], false)).collect();
            assert_eq!(served.len(), 10_000);
            start.elapsed()
        })
        .collect();
    times.sort();
    println!("list 10,000 provisions (read + serve): {:.1} ms (median of 7)", times[3].as_secs_f64() * 1e3);
}

fn report(what: &str, took: Duration, provisions: u64) {
    let transitions = provisions * TRANSITIONS_PER_PROVISION;
    println!(
        "{what}: {transitions} checkpointed transitions in {:.0} ms = {:.0} transitions/s",
        took.as_secs_f64() * 1e3,
        transitions as f64 / took.as_secs_f64()
    );
}
