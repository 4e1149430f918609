//! `formwork store copy --to URL`: a SQLite installation made through the CLI with the fake
//! tools (a provider with a secret, provisions RUNNING, scaled and DONE, an operation killed
//! mid-create) copied into a fresh PostgreSQL database, then run there: the same records, the
//! interrupted operation resumed, a scale-up and two deprovisions. And every refusal (a target
//! that is not empty, a `--to` that is not PostgreSQL, a source in use — by an operation or an
//! idle `formwork serve` —, a source already on PostgreSQL) leaving both sides as they were.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;

use common::Home;
use common::postgres::fresh_database;
use postgres::{Client, NoTls};
use serde_json::{Value, json};

const TOKEN: &str = "tok-copy-5e91c2d7";

fn home() -> Home {
    let mut home = Home::with_fakes();
    home.env.push(("FORMWORK_AUTO_RESUME".into(), "0".into()));
    home
}

fn json_of(home: &Home, args: &[&str]) -> Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    home.run(&full).ok().json()
}

fn create(home: &Home, hosts: u64) -> Value {
    let values = json!({"oneform_hosts": hosts}).to_string();
    home.run_with_stdin(&["--json", "provision", "create", "sim", "--values", "-"], Some(&values)).ok().json()
}

/// A home with a provider holding TOKEN and provision 1 RUNNING.
fn small_installation() -> Home {
    let home = home();
    let connection = json!({"api_token": TOKEN}).to_string();
    home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&connection)).ok();
    assert_eq!(create(&home, 1)["state"], "RUNNING");
    home
}

fn sqlite(home: &Home) -> rusqlite::Connection {
    rusqlite::Connection::open(home.data_dir().join("formwork.db")).unwrap()
}

fn pg(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap()
}

/// Every row count of the SQLite database, by table.
fn sqlite_counts(home: &Home) -> BTreeMap<String, i64> {
    let conn = sqlite(home);
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .map(|t| {
            let n = conn.query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |r| r.get(0)).unwrap();
            (t, n)
        })
        .collect()
}

/// Every row count of the PostgreSQL database's tables, by table.
fn pg_counts(url: &str) -> BTreeMap<String, i64> {
    let mut client = pg(url);
    let names: Vec<String> = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names
        .into_iter()
        .map(|t| {
            let n: i64 = client.query_one(&format!("SELECT count(*) FROM \"{t}\""), &[]).unwrap().get(0);
            (t, n)
        })
        .collect()
}

/// Every text value of every table of the PostgreSQL database, with where it is.
fn pg_texts(url: &str) -> Vec<(String, String)> {
    let mut client = pg(url);
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND data_type = 'text'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut texts = Vec::new();
    for (table, column) in columns {
        for row in client.query(&format!("SELECT \"{column}\" FROM \"{table}\""), &[]).unwrap() {
            if let Some(text) = row.get::<_, Option<String>>(0) {
                texts.push((format!("{table}.{column}"), text));
            }
        }
    }
    texts
}

fn copy(home: &Home, to: &str) -> common::Run {
    home.run(&["--json", "store", "copy", "--to", to])
}

#[test]
fn an_installation_copied_to_postgres_runs_on_there() {
    let mut home = small_installation();
    let scaled = json_of(&home, &["provision", "add-host", "1", "--amount", "1"]);
    assert_eq!(scaled["user_inputs_values"]["oneform_hosts"], 2);
    assert_eq!(create(&home, 1)["state"], "RUNNING");
    assert_eq!(create(&home, 1)["id"], 3);
    assert_eq!(json_of(&home, &["provision", "deprovision", "3"])["state"], "DONE");
    // Provision 4's create is killed as it enters APPLYING: its operation stays running with
    // a dead owner, waiting to be taken over.
    home.env.push(("FORMWORK_CRASH_AT".into(), "entered:APPLYING".into()));
    let killed = home.run_with_stdin(&["provision", "create", "sim", "--values", "-"], Some(r#"{"oneform_hosts": 1}"#));
    home.env.pop();
    assert_eq!(killed.0.status.signal(), Some(9), "{}", killed.stderr());
    let waiting: i64 = sqlite(&home)
        .query_row("SELECT count(*) FROM operations WHERE status = 'running' AND provision_id = 4", [], |r| r.get(0))
        .unwrap();
    assert_eq!(waiting, 1);

    let listed = json_of(&home, &["provision", "list", "--all"]);
    let shown: Vec<Value> = (1..=4).map(|id| json_of(&home, &["provision", "show", &id.to_string()])).collect();
    let before = sqlite_counts(&home);

    let target = fresh_database();
    let run = copy(&home, &target).ok();
    let copied = run.json();
    assert!(run.stderr().contains("providers: 2 rows"), "progress on stderr:\n{}", run.stderr());
    let tables: BTreeMap<String, i64> = copied["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["rows"].as_i64().unwrap()))
        .collect();
    let mut data = before.clone();
    data.remove("servers").expect("the source has a servers table");
    assert_eq!(tables, data, "every table, every row (the processes in servers are no data)");
    assert_eq!(pg_counts(&target), before, "the target holds exactly the source's rows");
    assert!(copied["tables"].as_array().unwrap().iter().all(|t| t["digest"].as_str().unwrap().len() == 64));
    let position = |name: &str| copied["tables"].as_array().unwrap().iter().position(|t| t["name"] == name).unwrap();
    assert!(position("providers") < position("provisions") && position("provisions") < position("operations"));
    let key_id: String = sqlite(&home).query_row("SELECT key_id FROM sealing", [], |r| r.get(0)).unwrap();
    assert_eq!(copied["key_id"], key_id.as_str());
    assert!(copied["keys"].as_str().unwrap().contains("secret.key"), "{copied}");
    assert_eq!(sqlite_counts(&home), before, "the source is unchanged");

    // Sealed text copied verbatim: the token is nowhere in clear, its seal is.
    let texts = pg_texts(&target);
    let found: Vec<&String> = texts.iter().filter(|(_, t)| t.contains(TOKEN)).map(|(w, _)| w).collect();
    assert!(found.is_empty(), "the token is in clear in {found:?}");
    assert!(texts.iter().any(|(w, t)| w == "providers.body" && t.contains("$sealed")));
    let source_migrations: Vec<(i64, String, i64)> = sqlite(&home)
        .prepare("SELECT version, name, applied_time FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let target_migrations: Vec<(i64, String, i64)> = pg(&target)
        .query("SELECT version, name, applied_time FROM schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(target_migrations, source_migrations);

    // The same data dir (the key file, OpenNebula's model, the fake cloud), the database on
    // PostgreSQL.
    home.env.push(("FORMWORK_DATABASE".into(), target.clone()));
    assert_eq!(json_of(&home, &["provision", "list", "--all"]), listed);
    for (id, want) in (1..=4).zip(&shown) {
        assert_eq!(&json_of(&home, &["provision", "show", &id.to_string()]), want, "provision {id}");
    }
    let provider = json_of(&home, &["provider", "show", "2", "--include-sensitive"]);
    assert_eq!(provider["connection"]["api_token"], TOKEN, "the sealed token opens on PostgreSQL");
    assert_eq!(json_of(&home, &["provision", "resume"]), json!([{"id": 4, "state": "RUNNING"}]));
    let grown = json_of(&home, &["provision", "add-host", "2", "--amount", "1"]);
    assert_eq!(grown["user_inputs_values"]["oneform_hosts"], 2);
    for id in ["1", "2"] {
        assert_eq!(json_of(&home, &["provision", "deprovision", id])["state"], "DONE", "provision {id}");
    }
    // New rows took new ids: the identity sequences were moved past the copied ones.
    let mut client = pg(&target);
    let newest: i64 = client.query_one("SELECT max(id) FROM operations", &[]).unwrap().get(0);
    assert!(newest > before["operations"], "operation ids continue after the copied ones");
    let sqlite_after = sqlite_counts(&home);
    assert_eq!(sqlite_after, before, "the SQLite database was left alone");
    common::postgres::drop_database(&target);
}

#[test]
fn a_target_that_is_not_empty_is_refused_and_left_alone() {
    let first = small_installation();
    let target = fresh_database();
    copy(&first, &target).ok();
    let held = pg_counts(&target);

    let second = small_installation();
    let refused = copy(&second, &target).fails_with("is not empty: it holds");
    assert!(refused.stderr().contains("1 provisions") && refused.stderr().contains("new, empty database"));
    assert_eq!(pg_counts(&target), held, "nothing changed in the target");
    // A database whose schema a store made (migrations, a sealing row of another key, id
    // counters at 0) holds no data: that counts as empty, and its bookkeeping becomes the
    // source's.
    let opened = fresh_database();
    drop(formwork::store::Store::open_postgres(&opened, formwork::secrets::Source::Ephemeral).unwrap());
    assert_eq!(pg_counts(&opened)["sealing"], 1);
    copy(&second, &opened).ok();
    assert_eq!(pg_counts(&opened), sqlite_counts(&second));
    let key: String = pg(&opened).query_one("SELECT key_id FROM sealing", &[]).unwrap().get(0);
    let source_key: String = sqlite(&second).query_row("SELECT key_id FROM sealing", [], |r| r.get(0)).unwrap();
    assert_eq!(key, source_key, "the sealing row is the source's");
    for url in [target, opened] {
        common::postgres::drop_database(&url);
    }
}

#[test]
fn a_to_that_is_not_postgres_is_refused() {
    let home = small_installation();
    let file = home.tmp.path().join("other.db");
    let to = file.to_str().unwrap();
    copy(&home, to).fails_with("--to must name a PostgreSQL database as postgres://");
    assert!(!file.exists(), "nothing was made");
    // A password in --to is never printed, whatever fails.
    let run = copy(&home, "postgres://fw:hunter2-pw@127.0.0.1:1/nowhere");
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(!format!("{}{}", run.stdout(), run.stderr()).contains("hunter2-pw"), "{}", run.stderr());
}

/// This process's owner token, as engine::owner writes it: `<pid>:<start time in ticks>`.
fn own_token() -> (i64, String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    // Fields from the third on; the start time is field 22.
    let start = after.split_whitespace().nth(22 - 3).unwrap();
    let pid = std::process::id() as i64;
    (pid, format!("{pid}:{start}"))
}

#[test]
fn a_source_in_use_is_refused_and_a_dead_owners_operation_is_copied_as_it_is() {
    let home = small_installation();
    let (pid, token) = own_token();
    sqlite(&home)
        .execute(
            "INSERT INTO operations (provision_id, kind, params, status, owner_pid, owner_token, heartbeat_time,
                                     created_time, queued, event)
             VALUES (1, 'scale', '{}', 'running', ?1, ?2, 0, 0, 1, NULL)",
            rusqlite::params![pid, token],
        )
        .unwrap();
    let target = fresh_database();
    copy(&home, &target).fails_with("stop formwork serve");
    assert!(pg_counts(&target).is_empty(), "no table was made in the target");

    // The same operation, its owner gone: queued for whichever server comes next, copied.
    sqlite(&home)
        .execute(
            "UPDATE operations SET owner_pid = 999999999, owner_token = '999999999:1' WHERE status = 'running'",
            [],
        )
        .unwrap();
    copy(&home, &target).ok();
    let row = pg(&target)
        .query_one("SELECT status, queued, owner_pid FROM operations WHERE status = 'running'", &[])
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), ("running".into(), 1, 999999999));
    common::postgres::drop_database(&target);
}

#[test]
fn a_source_an_idle_server_works_on_is_refused() {
    let mut home = small_installation();
    let sim = common::onesim::Onesim::start(&home.tmp.path().join("onesim.json"));
    common::onesim::use_endpoint(&mut home, &sim);
    let server = common::server::Server::start(&home);
    let target = fresh_database();
    let refused = copy(&home, &target).fails_with("formwork serve (role all");
    assert!(refused.stderr().contains(&format!("process {}", server.pid())), "{}", refused.stderr());
    assert!(pg_counts(&target).is_empty(), "no table was made in the target");
    drop(server);
    copy(&home, &target).ok();
    // The killed server's row would hold its operations back on PostgreSQL until its lease ran
    // out: processes are not copied.
    assert_eq!(sqlite(&home).query_row("SELECT count(*) FROM servers", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
    assert_eq!(pg_counts(&target)["servers"], 0);
    common::postgres::drop_database(&target);
}

#[test]
fn a_source_already_on_postgres_is_refused() {
    let home = small_installation();
    let source = fresh_database();
    copy(&home, &source).ok();
    let target = fresh_database();
    let refused = home.run(&["--database", &source, "store", "copy", "--to", &target]);
    refused.fails_with("the database is already PostgreSQL");
    assert!(pg_counts(&target).is_empty(), "nothing was made in the target");
    for url in [source, target] {
        common::postgres::drop_database(&url);
    }
}

#[test]
fn a_source_of_another_schema_is_refused() {
    let home = small_installation();
    let target = fresh_database();
    sqlite(&home)
        .execute("INSERT INTO schema_migrations (version, name, applied_time) VALUES (999, 'later', 0)", [])
        .unwrap();
    copy(&home, &target).fails_with("copy it with the formwork that made it");
    sqlite(&home).execute("DELETE FROM schema_migrations WHERE version >= (SELECT max(version) FROM schema_migrations WHERE version < 999)", []).unwrap();
    copy(&home, &target).fails_with("run this formwork once on it first");
    assert!(pg_counts(&target).is_empty(), "nothing was made in the target");
    common::postgres::drop_database(&target);
}
