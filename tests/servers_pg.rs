//! Several `formwork serve` on one PostgreSQL database (a throwaway cluster,
//! tests/common/postgres.rs), each with a data directory of its own and the same key:
//!
//! - three servers share thirty creates posted round-robin (fake tools): all end RUNNING, and
//!   each operation's tool calls were made by exactly one server;
//! - the server running a real `sim` apply is killed with SIGKILL: another one takes the
//!   operation over when its lease ends and finishes it, with exactly the hosts asked for in the
//!   sim cloud and in onesim;
//! - the server running a real apply is frozen (SIGSTOP) past its lease and thawed: another one
//!   finishes the operation, nothing is created twice, and the thawed server writes no stale
//!   transition;
//! - a server is cut off from the database (a TCP proxy the test cuts): its tools stop before its
//!   lease ends; and when its Terraform was creating hosts, the server that takes over waits for
//!   the state of what it created (on the cut-off server's disk until the database answers it
//!   again) and creates nothing twice.
//!
//! `scripts/setup` installs the real tools; without them the real-tool tests fail and say so.

// Tests spawn formwork and onesim and signal them.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::Home;
use common::check::{Want, assert_registered, hosts_in_cloud, set_faults};
use common::onesim::{Onesim, use_endpoint};
use common::server::{Client, Server};
use serde_json::{Value, json};

const TOKEN: &str = "shared-secret-token";

/// Servers' homes on one database, one OpenNebula (onesim) and one sim cloud.
struct Cluster {
    database: String,
    homes: Vec<Home>,
    _sim: Onesim,
    onesim_state: PathBuf,
    cloud: PathBuf,
    _shared: tempfile::TempDir,
}

impl Cluster {
    fn new(servers: usize, fake_tools: bool) -> Cluster {
        if !fake_tools {
            let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
            for needed in ["bin/terraform", "terraformrc", "venv/bin/ansible-playbook"] {
                assert!(tools.join(needed).exists(), ".tools/{needed} is missing: run scripts/setup first");
            }
        }
        let database = common::postgres::fresh_database();
        let shared = tempfile::tempdir().unwrap();
        let onesim_state = shared.path().join("onesim.json");
        let cloud = shared.path().join("cloud");
        let sim = Onesim::start(&onesim_state);
        let mut homes = Vec::new();
        for _ in 0..servers {
            let mut home = if fake_tools { Home::with_fakes() } else { Home::with_builtin() };
            // The fake Terraform's cloud (`$HOME/fake-cloud`) is one for all, as the sim cloud is.
            std::fs::create_dir_all(shared.path().join("fake-cloud")).unwrap();
            std::os::unix::fs::symlink(shared.path().join("fake-cloud"), home.tmp.path().join("fake-cloud")).unwrap();
            use_endpoint(&mut home, &sim);
            home.env.push(("FORMWORK_DATABASE".into(), database.clone()));
            home.env.push(("FORMWORK_MAX_OPERATIONS".into(), "16".into()));
            homes.push(home);
        }
        // The first start makes the key; every server gets the same one.
        homes[0].run(&["provider", "list"]).ok();
        let key = std::fs::read(homes[0].data_dir().join("secret.key")).unwrap();
        for home in &homes[1..] {
            write_private(&home.data_dir(), &key);
        }
        Cluster { database, homes, _sim: sim, onesim_state, cloud, _shared: shared }
    }

    fn start(&self, i: usize) -> Server {
        Server::start(&self.homes[i])
    }

    /// The sim provider, made through `server`; returns its id.
    fn provider(&self, server: &Server) -> i64 {
        let provider = json!({"driver": "sim", "connection_values": {"api_token": TOKEN, "endpoint": self.cloud}});
        let doc = admin(server).post("/api/v1/providers", &provider).expect(201).json();
        doc["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap()
    }

    /// The provision's log as server `i` wrote it on its disk.
    fn log(&self, i: usize, id: i64) -> String {
        std::fs::read_to_string(self.homes[i].data_dir().join(format!("logs/{id}.log"))).unwrap_or_default()
    }

    /// The provision's latest Terraform state, from the database.
    fn state_hosts(&self, id: i64) -> usize {
        let keys = formwork::secrets::Source::File(self.homes[0].data_dir().join("secret.key"));
        let store = formwork::store::Store::open_postgres(&self.database, keys).unwrap();
        let text = store.latest_tfstate(id).unwrap().expect("a saved state");
        let state: Value = serde_json::from_str(&text).unwrap();
        state["resources"].as_array().unwrap().iter().map(|r| r["instances"].as_array().unwrap().len()).sum()
    }
}

fn write_private(dir: &Path, key: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("secret.key");
    std::fs::write(&path, key).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn admin(server: &Server) -> Client {
    server.client("oneadmin", "pw")
}

fn create(server: &Server, provider: i64, hosts: usize) -> i64 {
    let request = json!({
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
        "user_inputs_values": {"oneform_hosts": hosts},
    });
    let created = admin(server).post("/api/v1/provisions", &request).expect(201).json();
    created["DOCUMENT"]["ID"].as_str().unwrap().parse().unwrap()
}

/// Waits (bounded) until provision `id` is RUNNING as `server` answers; returns its body.
fn wait_running(server: &Server, id: i64, within: Duration, why: impl Fn() -> String) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let doc = admin(server).get(&format!("/api/v1/provisions/{id}")).expect(200).json();
        let body = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"].clone();
        let state = body["state"].as_str().unwrap().to_owned();
        if state == "RUNNING" {
            return body;
        }
        assert!(!state.ends_with("_FAILURE"), "provision {id} failed in {state}:\n{}", why());
        assert!(Instant::now() < deadline, "provision {id} still {state} after {within:?}:\n{}", why());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until server `i`'s log of provision `id` holds `text`.
fn wait_log(cluster: &Cluster, i: usize, id: i64, text: &str, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cluster.log(i, id).contains(text) {
        assert!(server.is_running(), "server {i} exited before {text:?}:\n{}", server.log());
        assert!(Instant::now() < deadline, "{text:?} never showed in server {i}'s log:\n{}", cluster.log(i, id));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_servers_share_thirty_creates_and_each_runs_on_exactly_one() {
    let cluster = Cluster::new(3, true);
    let servers: Vec<Server> = (0..3).map(|i| cluster.start(i)).collect();
    let provider = cluster.provider(&servers[0]);
    let ids: Vec<i64> = (0..30).map(|n| create(&servers[n % 3], provider, 1)).collect();
    for (n, id) in ids.iter().enumerate() {
        // Any server answers for any provision.
        let logs = || (0..3).map(|i| format!("server {i}:\n{}", cluster.log(i, *id))).collect::<Vec<_>>().join("\n");
        wait_running(&servers[(n + 1) % 3], *id, Duration::from_secs(180), logs);
    }
    // Every tool call names its provision's work directory; each provision's calls were all made
    // by one server, and never at the same time as another server's for it.
    for id in &ids {
        let marker = format!("/work/{id}/");
        let ran: Vec<usize> =
            (0..3).filter(|i| cluster.homes[*i].calls().iter().any(|c| c.to_string().contains(&marker))).collect();
        assert_eq!(ran.len(), 1, "provision {id}'s tools ran on servers {ran:?}");
    }
    let listed = admin(&servers[2]).get("/api/v1/servers").expect(200).json();
    let alive = listed.as_array().unwrap().iter().filter(|s| s["alive"] == true && s["role"] == "all").count();
    assert_eq!(alive, 3, "{listed:#}");
}

/// Servers A and B, and a real create of two hosts (each taking 2.5 s to create) posted to A,
/// returned once A's Terraform is creating them.
fn applying_on_a(cluster: &Cluster) -> (Server, Server, i64) {
    let mut a = cluster.start(0);
    let b = cluster.start(1);
    let provider = cluster.provider(&a);
    set_faults(&cluster.cloud, &json!({"delay_ms": 2500}));
    let id = create(&a, provider, 2);
    wait_log(cluster, 0, id, "Creating...", &mut a);
    (a, b, id)
}

#[test]
fn a_server_killed_mid_apply_is_taken_over_and_nothing_is_created_twice() {
    let cluster = Cluster::new(2, false);
    let (mut a, b, id) = applying_on_a(&cluster);
    a.kill9();
    let killed = Instant::now();
    set_faults(&cluster.cloud, &json!({}));
    let body = wait_running(&b, id, Duration::from_secs(180), || format!("{}\n{}", cluster.log(1, id), b.log()));
    let took = killed.elapsed();
    eprintln!("taken over and finished {took:?} after the kill");
    assert!(cluster.log(1, id).contains("Resuming"), "server B resumed it:\n{}", cluster.log(1, id));
    assert_registered("takeover", &body, &cluster.onesim_state, Want::sim(2, 0));
    assert_eq!(hosts_in_cloud(&cluster.cloud).len(), 2, "exactly the hosts asked for in the sim cloud");
    assert_eq!(cluster.state_hosts(id), 2, "and in the Terraform state");
}

#[test]
fn a_frozen_server_is_taken_over_and_writes_nothing_stale_when_thawed() {
    let cluster = Cluster::new(2, false);
    let (a, b, id) = applying_on_a(&cluster);
    let pid = a.pid().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    // Past its lease: B takes the operation over, and waits for A's stage to let go.
    std::thread::sleep(Duration::from_secs(15));
    set_faults(&cluster.cloud, &json!({}));
    std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    let body = wait_running(&b, id, Duration::from_secs(180), || format!("{}\n{}", cluster.log(1, id), b.log()));
    assert_registered("frozen", &body, &cluster.onesim_state, Want::sim(2, 0));
    assert_eq!(hosts_in_cloud(&cluster.cloud).len(), 2, "nothing created twice in the sim cloud");
    assert_eq!(cluster.state_hosts(id), 2);
    // The thawed server gave the operation up: its log says so, and it wrote no transition
    // after B took over (B's historic is the only one after the takeover).
    std::thread::sleep(Duration::from_secs(3));
    let a_log = cluster.log(0, id);
    assert!(a_log.contains("lost its lease") || a_log.contains("taken over"), "A's log:\n{a_log}");
    let historic = body["historic"].as_array().cloned().unwrap_or_default();
    let failures = historic.iter().filter(|h| h.to_string().contains("FAILURE")).count();
    assert_eq!(failures, 0, "no failure state was written by the thawed server: {historic:#?}");
}

/// B took over from a frozen A and waits for A's stage to let go; cancelled meanwhile, the
/// operation ends cancelled at once, in the stage's failure state, rather than staying
/// "running" under B's live lease where nobody would ever take it over.
#[test]
fn an_operation_cancelled_while_waiting_for_a_frozen_servers_stage_ends_cancelled() {
    let cluster = Cluster::new(2, true);
    cluster.homes[0].scenario(json!({"hang_apply": true}));
    let mut a = cluster.start(0);
    let b = cluster.start(1);
    let provider = cluster.provider(&a);
    let id = create(&a, provider, 1);
    wait_log(&cluster, 0, id, "Running", &mut a);
    while !cluster.homes[0].calls().iter().any(|c| c["argv"][0] == "apply") {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = a.pid().to_string();
    std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.log(1, id).contains("Waiting for the server that ran this provision's last stage") {
        assert!(Instant::now() < deadline, "B never waited for A's stage:\n{}\n{}", cluster.log(1, id), b.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    admin(&b).post(&format!("/api/v1/provisions/{id}/cancel"), &json!({})).expect(204);
    let cancelled = Instant::now();
    let deadline = cancelled + Duration::from_secs(30);
    let ops = loop {
        let ops = admin(&b).get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
        if ops[0]["status"] != "running" {
            break ops;
        }
        assert!(Instant::now() < deadline, "still running 30 s after the cancel:\n{}\n{}", cluster.log(1, id), b.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    std::process::Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    assert_eq!(ops[0]["status"], "cancelled", "{ops:#}");
    let doc = admin(&b).get(&format!("/api/v1/provisions/{id}")).expect(200).json();
    let state = doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].as_str().unwrap().to_string();
    assert!(state.ends_with("_FAILURE"), "the stage's failure state: {state}");
    eprintln!("cancelled {:?} after the request, in {state}", cancelled.elapsed());
}

/// A throwaway cluster of this test's own (it is stopped and started under the server).
struct OwnCluster {
    dir: PathBuf,
    url: String,
}

impl OwnCluster {
    fn start() -> OwnCluster {
        let dir = std::env::temp_dir().join(format!("fw-outage-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres");
        let out = std::process::Command::new(&script).arg("start").arg(&dir).output().unwrap();
        assert!(out.status.success(), "scripts/postgres start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        OwnCluster { dir, url }
    }

    fn run(&self, what: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres");
        let out = std::process::Command::new(&script).arg(what).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "scripts/postgres {what}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres");
        let _ = std::process::Command::new(&script).arg("stop").arg(&self.dir).output();
    }
}

#[test]
fn requests_during_a_database_outage_get_503_and_the_work_goes_on_after_it() {
    let cluster = OwnCluster::start();
    let shared = tempfile::tempdir().unwrap();
    let sim = Onesim::start(&shared.path().join("onesim.json"));
    let mut home = Home::with_fakes();
    use_endpoint(&mut home, &sim);
    home.env.push(("FORMWORK_DATABASE".into(), cluster.url.clone()));
    let server = cluster_server(&home);
    let provider = {
        let body = json!({"driver": "sim", "connection_values": {"api_token": TOKEN, "endpoint": shared.path()}});
        let doc = admin(&server).post("/api/v1/providers", &body).expect(201).json();
        doc["DOCUMENT"]["ID"].as_str().unwrap().parse::<i64>().unwrap()
    };
    let before: Vec<i64> = (0..5).map(|_| create(&server, provider, 1)).collect();
    cluster.run("pause");
    let asked = Instant::now();
    let answer = admin(&server).get(&format!("/api/v1/provisions/{}", before[0]));
    assert_eq!(answer.status, 503, "a read during the outage: {}", answer.text());
    assert!(asked.elapsed() < Duration::from_secs(10), "answered after {:?}", asked.elapsed());
    assert!(answer.text().contains("database"), "{}", answer.text());
    let request = json!({"driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
                         "user_inputs_values": {"oneform_hosts": 1}});
    assert_eq!(admin(&server).post("/api/v1/provisions", &request).status, 503, "a create during the outage");
    std::thread::sleep(Duration::from_secs(3));
    cluster.run("resume");
    let log = || server.log();
    for id in &before {
        wait_running(&server, *id, Duration::from_secs(120), log);
    }
    let after = create(&server, provider, 1);
    wait_running(&server, after, Duration::from_secs(60), log);
    for id in before.iter().chain([&after]) {
        let ops = admin(&server).get(&format!("/api/v1/provisions/{id}/operations")).expect(200).json();
        let ops = ops.as_array().unwrap();
        assert_eq!(ops.len(), 1, "provision {id}: one create, not run twice: {ops:#?}");
        assert_eq!(ops[0]["status"], "succeeded", "provision {id}: {ops:#?}");
    }
}

fn cluster_server(home: &Home) -> Server {
    Server::start(home)
}

#[test]
fn an_api_server_queues_and_a_worker_runs_woken_at_once() {
    let cluster = Cluster::new(2, true);
    let api = Server::start_with(&cluster.homes[0], &["--role", "api"]);
    let mut worker = cluster.homes[1].spawn(&["serve", "--role", "worker"]);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(worker.stdout.take().unwrap()), &mut first).unwrap();
    assert_eq!(first.trim(), "formwork worker running");
    let provider = cluster.provider(&api);
    let started = Instant::now();
    let ids: Vec<i64> = (0..5).map(|_| create(&api, provider, 1)).collect();
    for id in &ids {
        wait_running(&api, *id, Duration::from_secs(120), || cluster.log(1, *id));
    }
    eprintln!("five creates queued by the API server ran on the worker in {:?}", started.elapsed());
    assert!(cluster.homes[0].calls().is_empty(), "the API server ran no tool");
    assert_eq!(cluster.homes[1].calls().iter().filter(|c| c.to_string().contains("apply")).count(), 5);
    let servers = admin(&api).get("/api/v1/servers").expect(200).json();
    let roles: Vec<&str> = servers.as_array().unwrap().iter().filter_map(|s| s["role"].as_str()).collect();
    assert!(roles.contains(&"api") && roles.contains(&"worker"), "{servers:#}");
    let _ = worker.kill();
    let _ = worker.wait();
}

#[test]
fn a_role_needs_a_shared_database() {
    let home = Home::with_fakes();
    std::fs::create_dir_all(home.tmp.path().join(".one")).unwrap();
    std::fs::write(home.tmp.path().join(".one/one_auth"), "oneadmin:pw\n").unwrap();
    let run = home.run(&["serve", "--role", "worker", "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("PostgreSQL") && run.stderr().contains("--role"), "{}", run.stderr());
}

/// A TCP proxy to PostgreSQL that the test can cut: every connection through it is shut down
/// and new ones are closed at once.
struct Proxy {
    addr: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut2, conns2) = (cut.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut2.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else { continue };
                let mut kept = conns2.lock().unwrap();
                kept.push(client.try_clone().unwrap());
                kept.push(server.try_clone().unwrap());
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }

    /// New connections pass again.
    fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Server A's database URL through a new proxy, which A's home now uses.
fn through_proxy(cluster: &mut Cluster) -> Proxy {
    let (host_port, rest) = cluster.database.split_once("@").unwrap().1.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_string());
    let through = cluster.database.replace(host_port, &proxy.addr);
    assert!(through.ends_with(rest));
    cluster.homes[0].env.retain(|(k, _)| k != "FORMWORK_DATABASE");
    cluster.homes[0].env.push(("FORMWORK_DATABASE".into(), through));
    proxy
}

#[test]
fn a_server_cut_off_from_the_database_stops_its_tools_before_its_lease_ends() {
    let mut cluster = Cluster::new(2, true);
    // Server A reaches the database through the proxy.
    let proxy = through_proxy(&mut cluster);
    cluster.homes[0].scenario(json!({"hang_apply": true}));
    let mut a = cluster.start(0);
    let b = cluster.start(1);
    let provider = cluster.provider(&a);
    let id = create(&a, provider, 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    let apply = loop {
        if let Some(call) = cluster.homes[0].calls().into_iter().find(|c| c["argv"][0] == "apply") {
            break call;
        }
        assert!(a.is_running() && Instant::now() < deadline, "A never started the apply:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    // The apply's parent: its guard on PostgreSQL, in the tool's process group.
    let guard = apply["ppid"].as_i64().unwrap().to_string();
    proxy.cut();
    let cut = Instant::now();
    while std::process::Command::new("kill").args(["-0", &guard]).status().unwrap().success() {
        assert!(cut.elapsed() < Duration::from_secs(10), "A's tool still runs {:?} after the cut", cut.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = cut.elapsed();
    eprintln!("A's tool stopped {stopped:?} after the cut (its lease ends 10 s after its last renewal)");
    let body = wait_running(&b, id, Duration::from_secs(120), || format!("{}\n{}", cluster.log(1, id), b.log()));
    assert_eq!(body["one_objects"]["hosts"].as_array().unwrap().len(), 2);
    let applies = |i: usize| cluster.homes[i].calls().iter().filter(|c| c["argv"][0] == "apply").count();
    assert_eq!((applies(0), applies(1)), (1, 1), "A's hung apply, then B's");
    assert!(a.is_running(), "A lives on, cut off");
    drop(proxy);
}

/// A's Terraform is creating two hosts when A is cut off from the database: A stops it, and the
/// state of what it created is on A's disk only. B takes the operation over but runs no
/// Terraform until that state reaches the database (A's guard, once A is reachable again); then
/// it goes on from it, creating nothing twice.
#[test]
fn a_server_cut_off_while_terraform_creates_keeps_what_it_created_and_nothing_is_created_twice() {
    let mut cluster = Cluster::new(2, false);
    let proxy = through_proxy(&mut cluster);
    let (_a, b, id) = applying_on_a(&cluster);
    proxy.cut();
    let cut = Instant::now();
    // A stops its Terraform and its guard before its lease ends, the state of the two hosts
    // kept on A's disk. Either B waits for it (A's guard would record it once the database
    // answers again), or B's server, on the same machine as A here, finds A's guard gone and
    // records it. The old code did neither and went on from the stored state; past 30 s the
    // proxy heals anyway and the hosts are counted.
    let waited = || cluster.log(1, id).contains("waiting for the Terraform state");
    let recovered = || b.log().contains("the state it left in");
    while !waited() && !recovered() && cut.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{:?} after the cut: B waited {}, B's server recovered A's state {}",
        cut.elapsed(),
        waited(),
        recovered()
    );
    std::thread::sleep(Duration::from_secs(2));
    set_faults(&cluster.cloud, &json!({}));
    proxy.heal();
    let body = wait_running(&b, id, Duration::from_secs(180), || format!("{}\n{}", cluster.log(1, id), b.log()));
    let b_log = cluster.log(1, id);
    let logs = format!("A:\n{}\nB:\n{b_log}", cluster.log(0, id));
    assert_eq!(hosts_in_cloud(&cluster.cloud).len(), 2, "nothing created twice in the sim cloud:\n{logs}");
    assert_registered("cut off", &body, &cluster.onesim_state, Want::sim(2, 0));
    assert_eq!(cluster.state_hosts(id), 2, "and in the Terraform state");
    assert!(waited() || recovered(), "B waited for A's state or recovered it:\n{logs}\n{}", b.log());
    assert!(b_log.contains("Plan: 0 to add"), "B went on from A's state:\n{b_log}");
    drop(proxy);
}

#[test]
fn a_database_reached_over_tls_when_the_url_asks_for_it() {
    let cluster = OwnCluster::start();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    for (from, to) in [("cert.pem", "server.crt"), ("key.pem", "server.key")] {
        let dest = cluster.dir.join(to);
        std::fs::copy(fixtures.join(from), &dest).unwrap();
        std::process::Command::new("chmod").arg("600").arg(&dest).status().unwrap();
        let owner = format!("--reference={}", cluster.dir.display());
        assert!(std::process::Command::new("chown").arg(owner).arg(&dest).status().unwrap().success());
    }
    let mut admin_db = ::postgres::Client::connect(&cluster.url, ::postgres::NoTls).unwrap();
    for setting in [
        "ALTER SYSTEM SET ssl = on".to_string(),
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cluster.dir.join("server.crt").display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", cluster.dir.join("server.key").display()),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin_db.batch_execute(&setting).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let url = format!("{}?sslmode=require&sslrootcert={}", cluster.url, fixtures.join("cert.pem").display());
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_DATABASE".into(), url));
    std::fs::create_dir_all(home.tmp.path().join(".one")).unwrap();
    std::fs::write(home.tmp.path().join(".one/one_auth"), "oneadmin:pw\n").unwrap();
    home.run(&["provider", "list"]).ok();
    let server = Server::start(&home);
    admin(&server).get("/api/v1/provisions").expect(200);
    let (tls, plain): (i64, i64) = {
        let row = admin_db
            .query_one(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
                 FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name LIKE 'formwork%'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(tls > 0 && plain == 0, "formwork's connections: {tls} over TLS, {plain} in clear");
    drop(server);
    // A certificate nobody vouches for (the system's CAs do not know the test's): refused, named.
    let mut untrusted = Home::with_fakes();
    untrusted.env.push(("FORMWORK_DATABASE".into(), format!("{}?sslmode=require", cluster.url)));
    let run = untrusted.run(&["provider", "list"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().to_lowercase().contains("certificate"), "{}", run.stderr());
}

#[test]
fn a_key_rotation_on_a_shared_database_is_refused_and_changes_nothing() {
    let cluster = Cluster::new(1, true);
    let key = std::fs::read(cluster.homes[0].data_dir().join("secret.key")).unwrap();
    let run = cluster.homes[0].run(&["secrets", "rotate"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("several servers share"), "{}", run.stderr());
    assert_eq!(
        std::fs::read(cluster.homes[0].data_dir().join("secret.key")).unwrap(),
        key,
        "the key file is unchanged"
    );
}
