//! Benchmark of the REST API: the release `formwork serve`, started as a child process on a
//! throw-away data dir (`--listen 127.0.0.1:0`, the port read from its first stdout line),
//! driven over 127.0.0.1 by a hyper HTTP/1.1 client in this process, authenticated as the
//! ONE_AUTH pair (no ONE_XMLRPC: the server accepts that one pair).
//!
//! - Creates: 200 `POST /api/v1/provisions` (sim driver, 1 host each) sent at once on 200
//!   connections, with the fake `terraform` and `ansible-playbook` of tests/fakes. Timed until
//!   every one is RUNNING (`GET /provisions?all=true` polled every 500 ms); then the server's
//!   peak RSS (`VmHWM`), its CPU and its tools' CPU, and the mean stage times from `/metrics`.
//!   Aim ≤ 150 MB. Each round is a new server on a new data dir.
//! - Reads: `GET /api/v1/provisions/:id` over 10,000 provisions (the last round's 200 real ones
//!   copied through the store up to 10,000, all RUNNING) from 32 kept-alive connections, ids
//!   drawn at random, for a fixed time after a 2 s warm-up: requests/s and p50/p99 latency.
//!   Aim ≥ 5,000 req/s with p99 < 20 ms. The client is closed-loop (each connection sends its
//!   next request when the last answer arrived) and runs on one thread of the same machine.
//!   Then `GET /provisions?all=true` of all 10,000, timed, and the server's peak RSS.
//!
//! OpenNebula is formwork's own model saved in the data dir unless `--onesim` is given: then
//! the release onesim runs in memory as another child process and the server reaches it over
//! XML-RPC (ONE_XMLRPC), which also checks the logins (remembered for 60 s).
//!
//! Run with `cargo bench --bench api`; options after `--`: `--rounds N` (3), `--seconds N`
//! (10, per read round), `--max-operations N`, `--onesim`, `--poll-ms N`, `--poll-metrics`
//! (poll `/metrics` instead of the list), `--server-env KEY=VALUE`, `--keep` (leave the last
//! home), `--tls` (the server speaks HTTPS with the test certificate of tests/fixtures/tls, and
//! the client trusts only it; every connection is a TLS session, kept alive like the others),
//! `--postgres URL` (the server's store on PostgreSQL: each round makes a fresh database
//! `fw_bench_api_<pid>_<round>` on the server URL names, with a role that may create databases,
//! and passes it as `FORMWORK_DATABASE`; the reads seed and read that of the last round; the
//! databases are dropped at the end). Results in docs/benchmarks.md.

// The bench starts formwork and onesim as a user would, with an explicit environment.
#![allow(clippy::disallowed_methods)]

#[path = "common/database.rs"]
mod database;

use database::Database;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use formwork::engine::State;
use formwork::store::{Checkpoint, Store};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// The pair in the server's ONE_AUTH file (and onesim's oneadmin password): a throw-away
/// server's throw-away login, never printed.
const USER: &str = "oneadmin";
const PASSWORD: &str = "bench-pw";
const CREATES: usize = 200;
const PROVISIONS: usize = 10_000;
const CONNECTIONS: usize = 32;
const WARM_UP: Duration = Duration::from_secs(2);
/// Lists of every provision timed after the reads.
const LISTS: usize = 3;

/// What `--` options asked for.
struct Options {
    onesim: bool,
    max_operations: Option<usize>,
    rounds: usize,
    seconds: u64,
    /// How often the creates' progress is polled.
    poll: Duration,
    /// Poll `/metrics` instead of the provision list while creates run (to tell the list's
    /// cost from the creates').
    poll_metrics: bool,
    /// Extra environment for the server (`--server-env MALLOC_ARENA_MAX=2`).
    server_env: Vec<(String, String)>,
    /// Leave the last home (data dir with 10,000 provisions, `serve.log`) for a closer look.
    keep: bool,
    /// HTTPS with the test certificate.
    tls: bool,
    /// The store on PostgreSQL: the server URL on which each round makes a fresh database.
    postgres: Option<String>,
}

impl Options {
    /// Reads the options it knows and skips the rest (cargo passes `--bench`).
    fn parse() -> Options {
        let mut o = Options {
            onesim: false,
            max_operations: None,
            rounds: 3,
            seconds: 10,
            poll: Duration::from_millis(500),
            poll_metrics: false,
            server_env: Vec::new(),
            keep: false,
            tls: false,
            postgres: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut number = || args.next().and_then(|v| v.parse::<usize>().ok()).expect("a number after the option");
            match arg.as_str() {
                "--onesim" => o.onesim = true,
                "--max-operations" => o.max_operations = Some(number()),
                "--rounds" => o.rounds = number().max(1),
                "--seconds" => o.seconds = number().max(1) as u64,
                "--poll-metrics" => o.poll_metrics = true,
                "--poll-ms" => o.poll = Duration::from_millis(number() as u64),
                "--keep" => o.keep = true,
                "--tls" => o.tls = true,
                "--postgres" => o.postgres = Some(args.next().expect("a postgres:// URL after --postgres")),
                "--server-env" => {
                    let pair = args.next().expect("KEY=VALUE after --server-env");
                    let (k, v) = pair.split_once('=').expect("KEY=VALUE after --server-env");
                    o.server_env.push((k.to_string(), v.to_string()));
                }
                _ => {}
            }
        }
        o
    }
}

fn main() {
    let options = Options::parse();
    if options.tls {
        TLS.set(connector()).unwrap_or_else(|_| unreachable!("set once"));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let one = if options.onesim { "onesim (in memory) over XML-RPC" } else { "formwork's model in the data dir" };
    let slots = options.max_operations.map_or("default (2 per core)".to_string(), |n| n.to_string());
    let poll = if options.poll_metrics { "/metrics" } else { "GET /provisions?all=true" };
    let scheme = if options.tls { "HTTPS (TLS)" } else { "HTTP" };
    let store = if options.postgres.is_some() { "PostgreSQL (a fresh database per round)" } else { "SQLite file" };
    println!(
        "OpenNebula: {one}; max_operations: {slots}; polled with {poll} every {} ms; server env {:?}; {scheme}; store: {store}",
        options.poll.as_millis(),
        options.server_env
    );
    let mut last = None;
    let mut databases = Vec::new();
    for round in 1..=options.rounds {
        let database = options.postgres.as_deref().map(|admin| Database::create(admin, "api", round));
        last = Some(create_round(&rt, &options, round, database.as_ref().map(|d| d.url.as_str())));
        databases.extend(database);
    }
    let (home, sim) = last.expect("at least one round");
    read_rounds(&rt, &options, home.path(), sim.as_ref(), databases.last().map(|d| d.url.as_str()));
    if options.keep {
        println!("kept {}", home.keep().display());
    }
}

/// A new server on a new home: [`CREATES`] creates, then its peak RSS, CPU and stage times.
/// Returns the home (and onesim) for the reads.
fn create_round(
    rt: &tokio::runtime::Runtime,
    options: &Options,
    round: usize,
    database: Option<&str>,
) -> (tempfile::TempDir, Option<Onesim>) {
    let home = tempfile::tempdir().expect("temporary home");
    let sim = options.onesim.then(Onesim::start);
    let server = Server::start(home.path(), sim.as_ref().map(|s| s.url.as_str()), options, database);
    let created = rt.block_on(creates(&server, options));
    let peak = server.peak_rss_mb();
    let (own, tools) = server.cpu_seconds();
    let stages = rt.block_on(stage_means(server.addr));
    server.stop();
    println!(
        "round {round}: {CREATES} creates answered 201 in {:.0} ms (server peak RSS then {:.1} MB), all RUNNING after {:.2} s; server peak RSS {peak:.1} MB",
        created.posted.as_secs_f64() * 1e3,
        created.peak_after_posts,
        created.running.as_secs_f64()
    );
    println!("  CPU: formwork serve {own:.1} s, its tools {tools:.1} s; load average {}", load_average());
    println!("  mean stage durations (/metrics): {stages}");
    (home, sim)
}

/// The creates' provisions copied up to [`PROVISIONS`], a new server on them, the timed GETs,
/// then the lists of all of them.
fn read_rounds(
    rt: &tokio::runtime::Runtime,
    options: &Options,
    home: &Path,
    sim: Option<&Onesim>,
    database: Option<&str>,
) {
    let start = Instant::now();
    let store = match database {
        Some(url) => Store::open_postgres(url, formwork::secrets::Source::File(home.join("data/secret.key")))
            .expect("open the server's PostgreSQL database"),
        None => Store::open(&home.join("data/formwork.db")).expect("open the server's database"),
    };
    let ids = seed(&store, PROVISIONS);
    drop(store);
    println!("seeded {} provisions through the store in {:.1} s", ids.len(), start.elapsed().as_secs_f64());
    let server = Server::start(home, sim.map(|s| s.url.as_str()), options, database);
    println!("server peak RSS once started on {PROVISIONS} provisions: {:.1} MB", server.peak_rss_mb());
    rt.block_on(reads(server.addr, &ids, options.rounds, Duration::from_secs(options.seconds)));
    let (own, _) = server.cpu_seconds();
    println!(
        "server peak RSS after the reads: {:.1} MB; its CPU: {own:.1} s; load average {}",
        server.peak_rss_mb(),
        load_average()
    );
    rt.block_on(lists(server.addr));
    println!("server peak RSS after the lists: {:.1} MB", server.peak_rss_mb());
    server.stop();
}

/// The machine's 1-minute load average: other work on the 2 cores shows in every figure.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split(' ').next().unwrap_or("?").to_string()
}

/// A `formwork serve` child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Where its data dir and `serve.log` are.
    home: PathBuf,
}

impl Server {
    /// Starts the server on `home/data` with the fake tools; its diagnostics go to
    /// `home/serve.log`.
    fn start(home: &Path, one_xmlrpc: Option<&str>, options: &Options, database: Option<&str>) -> Server {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let auth = home.join("one_auth");
        std::fs::write(&auth, format!("{USER}:{PASSWORD}\n")).expect("write ONE_AUTH");
        std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).expect("chmod ONE_AUTH");
        let log = std::fs::File::options().create(true).append(true).open(home.join("serve.log")).expect("log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            // The system's python3 for the fakes, not a version manager's shim (pyenv's costs
            // a bash and several processes per call, more than the fake itself).
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", home)
            .env("FORMWORK_DATA_DIR", home.join("data"))
            .env("FORMWORK_BUILTIN_DRIVERS", repo.join("drivers"))
            .env("FORMWORK_TERRAFORM", repo.join("tests/fakes/terraform"))
            .env("FORMWORK_ANSIBLE_PLAYBOOK", repo.join("tests/fakes/ansible-playbook"))
            .env("ONE_AUTH", &auth)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(url) = one_xmlrpc {
            cmd.env("ONE_XMLRPC", url);
        }
        if let Some(url) = database {
            cmd.env("FORMWORK_DATABASE", url);
        }
        if let Some(n) = options.max_operations {
            cmd.env("FORMWORK_MAX_OPERATIONS", n.to_string());
        }
        cmd.envs(options.server_env.iter().map(|(k, v)| (k, v)));
        if options.tls {
            let fixtures = repo.join("tests/fixtures/tls");
            cmd.arg("--tls-cert").arg(fixtures.join("cert.pem")).arg("--tls-key").arg(fixtures.join("key.pem"));
        }
        let mut child = cmd.spawn().expect("formwork serve starts");
        let prefix = if options.tls { "formwork listening on https://" } else { "formwork listening on http://" };
        let url = first_line_url(&mut child, prefix);
        let addr = url.parse().unwrap_or_else(|_| panic!("formwork serve printed {url:?}; see {}", home.display()));
        Server { child, addr, home: home.to_path_buf() }
    }

    /// The server's peak resident memory so far (`VmHWM`), in MB.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("server status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kb / 1024.0
    }

    /// CPU seconds (user + system) of the server itself and of its finished children (the
    /// fake tools), from `/proc/PID/stat`.
    fn cpu_seconds(&self) -> (f64, f64) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("server stat");
        // Fields after the command name, which is in parentheses: state is field 3.
        let fields: Vec<f64> =
            stat.rsplit_once(") ").expect("stat").1.split(' ').map(|f| f.parse().unwrap_or(0.0)).collect();
        // In USER_HZ, which Linux fixes at 100 for /proc.
        ((fields[11] + fields[12]) / 100.0, (fields[13] + fields[14]) / 100.0)
    }

    /// SIGTERM, then waits for the graceful stop.
    fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release onesim.
struct Onesim {
    child: Child,
    url: String,
}

impl Onesim {
    /// onesim in memory: no state file, so no save (and fsync) after every call.
    fn start() -> Onesim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_onesim"))
            .args(["--port", "0", "--password", PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("onesim starts");
        let url = first_line_url(&mut child, "");
        let url = url.rsplit(' ').next().unwrap_or_default().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "onesim printed {url:?}");
        Onesim { child, url }
    }
}

impl Drop for Onesim {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

fn terminate(child: &mut Child) {
    use nix::sys::signal::{Signal, kill};
    let _ = kill(nix::unistd::Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let _ = child.wait();
}

/// The child's first stdout line after `prefix`.
fn first_line_url(child: &mut Child, prefix: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).expect("first line");
    line.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("unexpected first line {line:?}")).to_string()
}

/// With `--tls`: how every connection sets up its TLS session.
static TLS: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();

/// A TLS client that trusts only the test certificate (ring, TLS 1.2 and 1.3).
fn connector() -> tokio_rustls::TlsConnector {
    let pem = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/cert.pem")).expect("cert");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::pem::PemObject::from_pem_slice(&pem).expect("a PEM certificate")).expect("trusted");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One kept-alive HTTP/1.1 connection (over TLS with `--tls`), authenticated as the ONE_AUTH
/// pair.
struct Conn {
    send: SendRequest<Full<Bytes>>,
    authorization: String,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect to formwork serve");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let send = match TLS.get() {
            Some(tls) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let stream = tls.connect(name, stream).await.expect("TLS handshake with the test certificate");
                handshake(hyper_util::rt::TokioIo::new(stream)).await
            }
            None => handshake(hyper_util::rt::TokioIo::new(stream)).await,
        };
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        Conn { send, authorization: format!("Basic {pair}") }
    }

    /// Sends one request (a JSON body when given) and reads the whole answer.
    async fn call(&mut self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Bytes) {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "127.0.0.1")
            .header(AUTHORIZATION, &self.authorization);
        let body = match body {
            Some(value) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(value.to_string()))
            }
            None => Full::default(),
        };
        self.send.ready().await.expect("connection still open");
        let response = self.send.send_request(request.body(body).expect("request")).await.expect("an answer");
        let status = response.status();
        (status, response.into_body().collect().await.expect("the whole body").to_bytes())
    }
}

/// HTTP/1.1 over `io`, its connection driven by a task of its own.
async fn handshake<T>(io: T) -> SendRequest<Full<Bytes>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(io).await.expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    send
}

fn json_of(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

struct Created {
    /// Until the last `201 Created` arrived.
    posted: Duration,
    /// Until the poll saw every provision RUNNING.
    running: Duration,
    /// The server's peak RSS when the last 201 arrived, in MB.
    peak_after_posts: f64,
}

/// A sim provider, then [`CREATES`] creates at once; waits until all are RUNNING.
async fn creates(server: &Server, options: &Options) -> Created {
    let addr = server.addr;
    let mut admin = Conn::open(addr).await;
    let provider = json!({"driver": "sim", "name": "bench", "connection_values": {"api_token": "bench-token"}});
    let (status, body) = admin.call(Method::POST, "/api/v1/providers", Some(&provider)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let provider_id: i64 = json_of(&body)["DOCUMENT"]["ID"].as_str().and_then(|id| id.parse().ok()).expect("ID");

    let conns = futures_util::future::join_all((0..CREATES).map(|_| Conn::open(addr))).await;
    let start = Instant::now();
    let posts: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            let new = json!({"driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider_id,
                             "name": format!("bench-{i}"), "user_inputs_values": {"oneform_hosts": 1}});
            tokio::spawn(async move { conn.call(Method::POST, "/api/v1/provisions", Some(&new)).await })
        })
        .collect();
    for post in posts {
        let (status, body) = post.await.expect("post task");
        assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    }
    let posted = start.elapsed();
    let peak_after_posts = server.peak_rss_mb();
    while options.poll_metrics && running_count(&mut admin).await < CREATES {
        tokio::time::sleep(options.poll).await;
    }

    loop {
        let states = states(&mut admin).await;
        assert_eq!(states.len(), CREATES, "every create made a provision");
        if let Some((id, state)) = states.iter().find(|(_, s)| s.ends_with("FAILURE")) {
            let log = std::fs::read_to_string(server.home.join(format!("data/logs/{id}.log"))).unwrap_or_default();
            panic!("provision {id} is {state}; its log:\n{log}");
        }
        if states.iter().all(|(_, s)| s == "RUNNING") {
            return Created { posted, running: start.elapsed(), peak_after_posts };
        }
        tokio::time::sleep(options.poll).await;
    }
}

/// `stage mean (count)` for every stage in the server's `/metrics`.
async fn stage_means(addr: SocketAddr) -> String {
    let (status, body) = Conn::open(addr).await.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body).into_owned();
    let metric = |line: &str, name: &str| -> Option<(String, f64)> {
        let rest = line.strip_prefix(name)?.strip_prefix("{stage=\"")?;
        let (stage, value) = rest.split_once("\"} ")?;
        Some((stage.to_string(), value.parse().ok()?))
    };
    let sums: Vec<_> = text.lines().filter_map(|l| metric(l, "formwork_stage_duration_seconds_sum")).collect();
    let counts: Vec<_> = text.lines().filter_map(|l| metric(l, "formwork_stage_duration_seconds_count")).collect();
    let means: Vec<String> = sums
        .iter()
        .filter_map(|(stage, sum)| {
            let (_, n) = counts.iter().find(|(s, _)| s == stage)?;
            Some(format!("{stage} {:.2} s ({n})", sum / n))
        })
        .collect();
    means.join(", ")
}

/// `formwork_provisions{state="RUNNING"}` from `/metrics`; stops counting (returns every
/// create) once one failed, for the list to show which.
async fn running_count(conn: &mut Conn) -> usize {
    let (status, body) = conn.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body).into_owned();
    let count = |state: &str| -> usize {
        let gauge = text.lines().filter(|l| l.starts_with("formwork_provisions{state=") && l.contains(state));
        gauge.filter_map(|l| l.rsplit(' ').next()?.parse::<usize>().ok()).sum()
    };
    if count("FAILURE\"") > 0 { CREATES } else { count("\"RUNNING\"") }
}

/// The id and state of every provision, from `GET /provisions?all=true`.
async fn states(conn: &mut Conn) -> Vec<(String, String)> {
    let (status, body) = conn.call(Method::GET, "/api/v1/provisions?all=true", None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let docs = json_of(&body);
    let docs = docs.as_array().expect("an array of DOCUMENTs");
    docs.iter()
        .map(|d| {
            let id = d["DOCUMENT"]["ID"].as_str().expect("ID").to_string();
            (id, d["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"].as_str().expect("state").to_string())
        })
        .collect()
}

/// Copies the RUNNING provisions in the database (body, owner, historic) until there are
/// `total`, from 32 threads so that the store's writer groups their commits. Returns every id.
fn seed(store: &Store, total: usize) -> Vec<i64> {
    let rows = store.provisions(true).expect("provisions");
    let templates: Vec<_> = rows
        .iter()
        .filter(|r| r.state == State::Running)
        .map(|r| (r, store.historic(r.id).expect("historic")))
        .collect();
    assert!(!templates.is_empty(), "no RUNNING provision to copy");
    let missing = total.saturating_sub(rows.len());
    let threads = 32;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let templates = &templates;
            scope.spawn(move || {
                for k in (t..missing).step_by(threads) {
                    let (row, historic) = &templates[k % templates.len()];
                    let name = format!("{}-copy-{k}", row.name);
                    let id = store
                        .insert_provision_of(
                            &name,
                            &row.driver,
                            row.provider_id,
                            &row.body,
                            &row.owner,
                            row.registration_time,
                        )
                        .expect("insert");
                    let running = Checkpoint {
                        provision_id: id,
                        from: State::Pending,
                        to: State::Running,
                        body: None,
                        historic: historic.clone(),
                        attempt: None,
                        start: None,
                        time: row.updated_time,
                        fence: None,
                    };
                    store.checkpoint(&running).expect("checkpoint to RUNNING");
                }
            });
        }
    });
    let ids: Vec<i64> = store.provisions(true).expect("provisions").iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), total.max(rows.len()));
    ids
}

/// Latencies (µs) of one connection's requests and the bytes it read.
struct Load {
    conn: Conn,
    latencies: Vec<u32>,
    bytes: u64,
    /// Requests slower than [`SLOW`]: when each was sent (since the round's start) and its time.
    slow: Vec<(Duration, Duration)>,
}

/// A request this slow is listed with the time it was sent, to tell a stall that hits every
/// connection at once (something periodic, or shared) from one that hits a connection alone.
const SLOW: Duration = Duration::from_millis(200);

/// A warm-up, then `rounds` timed rounds of GETs on [`CONNECTIONS`] connections.
async fn reads(addr: SocketAddr, ids: &[i64], rounds: usize, duration: Duration) {
    let mut conns = futures_util::future::join_all((0..CONNECTIONS).map(|_| Conn::open(addr))).await;
    check_one(&mut conns[0], ids[ids.len() / 2]).await;
    conns = load(conns, ids, WARM_UP, 0).await.0;
    for round in 1..=rounds {
        let (back, mut latencies, bytes, took, mut slow) = load(conns, ids, duration, round as u64).await;
        conns = back;
        latencies.sort_unstable();
        let n = latencies.len();
        let at = |q: f64| f64::from(latencies[((n as f64 * q) as usize).min(n - 1)]) / 1e3;
        println!(
            "GET /provisions/:id, {CONNECTIONS} connections, {} provisions, round {round}: {n} requests in {:.1} s = {:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.1} KB per answer",
            ids.len(),
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64(),
            at(0.50),
            at(0.99),
            at(1.0),
            bytes as f64 / n as f64 / 1024.0
        );
        if !slow.is_empty() {
            slow.sort();
            let listed: Vec<String> = slow
                .iter()
                .map(|(at, took)| format!("{:.0} ms at {:.3} s", took.as_secs_f64() * 1e3, at.as_secs_f64()))
                .collect();
            println!("  slower than {} ms: {} requests: {}", SLOW.as_millis(), slow.len(), listed.join(", "));
        }
    }
}

/// `GET /provisions?all=true` of every provision, [`LISTS`] times, one at a time.
async fn lists(addr: SocketAddr) {
    let mut conn = Conn::open(addr).await;
    for _ in 0..LISTS {
        let start = Instant::now();
        let (status, body) = conn.call(Method::GET, "/api/v1/provisions?all=true", None).await;
        let took = start.elapsed();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(json_of(&body).as_array().map(Vec::len), Some(PROVISIONS));
        println!(
            "GET /provisions?all=true of {PROVISIONS}: {:.0} ms, {:.1} MB",
            took.as_secs_f64() * 1e3,
            body.len() as f64 / 1e6
        );
    }
}

/// One answer read in full: the provision asked for, RUNNING.
async fn check_one(conn: &mut Conn, id: i64) {
    let (status, body) = conn.call(Method::GET, &format!("/api/v1/provisions/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let doc = json_of(&body);
    assert_eq!(doc["DOCUMENT"]["ID"], id.to_string());
    assert_eq!(doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"], "RUNNING");
}

/// Every connection sends GETs of random ids, one after another, until `duration` has passed.
#[allow(clippy::type_complexity)] // one round's results, each distinct
async fn load(
    conns: Vec<Conn>,
    ids: &[i64],
    duration: Duration,
    seed: u64,
) -> (Vec<Conn>, Vec<u32>, u64, Duration, Vec<(Duration, Duration)>) {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            let ids = ids.to_vec();
            let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15 ^ (seed << 32) ^ (i as u64 + 1));
            tokio::spawn(async move {
                let mut load = Load { conn, latencies: Vec::with_capacity(1 << 16), bytes: 0, slow: Vec::new() };
                while Instant::now() < deadline {
                    let id = ids[(rng.draw() % ids.len() as u64) as usize];
                    let sent = Instant::now();
                    let (status, body) = load.conn.call(Method::GET, &format!("/api/v1/provisions/{id}"), None).await;
                    assert_eq!(status, StatusCode::OK, "provision {id}: {}", String::from_utf8_lossy(&body));
                    let took = sent.elapsed();
                    load.latencies.push(took.as_micros().min(u32::MAX as u128) as u32);
                    if took > SLOW {
                        load.slow.push((sent - start, took));
                    }
                    load.bytes += body.len() as u64;
                }
                load
            })
        })
        .collect();
    let (mut conns, mut latencies, mut bytes, mut slow) = (Vec::new(), Vec::new(), 0, Vec::new());
    for task in tasks {
        let load = task.await.expect("load task");
        conns.push(load.conn);
        latencies.extend(load.latencies);
        bytes += load.bytes;
        slow.extend(load.slow);
    }
    (conns, latencies, bytes, start.elapsed(), slow)
}

/// Marsaglia's xorshift64: enough to spread requests over the ids.
struct Xorshift(u64);

impl Xorshift {
    fn draw(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
