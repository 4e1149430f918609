//! Secrets at rest in the store, on real files: sealed on disk and clear when read (bodies'
//! sensitive values, Terraform states whole), the key checked at open (a wrong key is refused
//! and nothing changes), clear values and states of older databases sealed by the migrations,
//! and rotation (whole, killed half way and finished by the next open, and seen by a process
//! that opened the database before it).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::engine::{ProvisionBody, State};
use crate::secrets::{KeyText, Source};

const CONNECTION_CANARY: &str = "conn-canary-5e5e";
const INPUT_CANARY: &str = "input-canary-7a7a";
const STATE_CANARY: &str = "state-canary-9c9c";

/// A Terraform state holding a sensitive value in an output and in a resource, as Terraform
/// writes them: in clear.
fn tfstate(serial: i64) -> String {
    format!(
        r#"{{"version": 4, "serial": {serial}, "outputs": {{"admin": {{"value": "{STATE_CANARY}", "type": "string", "sensitive": true}}}},
  "resources": [{{"mode": "managed", "type": "terraform_data", "name": "admin", "instances": [{{"attributes": {{"input": "{STATE_CANARY}"}}, "sensitive_attributes": [[{{"type": "get_attr", "value": "input"}}]]}}]}}]}}
"#
    )
}

/// The Terraform states as stored, read past the store.
fn raw_states(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT state FROM tfstates ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn provider_body(token: &str) -> Value {
    json!({
        "name": "sim",
        "user_inputs": [{"name": "api_token", "type": "string", "sensitive": true}, {"name": "endpoint", "type": "string"}],
        "connection": {"api_token": token, "endpoint": "/tmp/cloud"}
    })
}

fn provision_body(password: &str) -> ProvisionBody {
    serde_json::from_value(json!({
        "name": "p",
        "user_inputs": [{"name": "admin_password", "type": "string", "sensitive": true}, {"name": "oneform_hosts", "type": "number"}],
        "user_inputs_values": {"admin_password": password, "oneform_hosts": 2}
    }))
    .unwrap()
}

/// A store with one provider and one provision holding the canaries; returns their ids.
fn populate(store: &Store) -> (i64, i64) {
    let provider = store.insert_provider("sim", "sim", &provider_body(CONNECTION_CANARY), 1).unwrap();
    let provision = store.insert_provision("p", "sim", provider, &provision_body(INPUT_CANARY), 2).unwrap();
    (provider, provision)
}

/// The database's files (main file, WAL), as bytes.
fn database_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.extend(std::fs::read(path.with_file_name("formwork.db-wal")).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The bodies as stored, read past the store.
fn raw_bodies(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT body FROM providers UNION ALL SELECT body FROM provisions").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

fn key_file_ids(path: &Path) -> Vec<String> {
    let ring = Keyring::new(Source::File(path.to_path_buf()));
    ring.load(false).unwrap();
    ring.ids()
}

fn db(dir: &tempfile::TempDir) -> (PathBuf, PathBuf) {
    (dir.path().join("formwork.db"), dir.path().join(KEY_FILE))
}

#[test]
fn sensitive_values_are_sealed_on_disk_and_clear_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    let store = Store::open(&path).unwrap();
    let (provider, provision) = populate(&store);
    let mut body = store.provision(provision).unwrap().body;
    body.user_inputs_values.insert("oneform_hosts".into(), json!(3));
    store.save_body(provision, &body, &[], 3).unwrap();
    let checkpoint = Checkpoint {
        provision_id: provision,
        from: State::Pending,
        to: State::Init,
        body: Some(&body),
        historic: vec![],
        attempt: None,
        start: None,
        time: 4,
        fence: None,
    };
    store.checkpoint(&checkpoint).unwrap();
    store.update_provider(provider, "renamed", &provider_body(CONNECTION_CANARY)).unwrap();
    store.save_tfstate(provision, None, &tfstate(1), 5).unwrap();
    store.save_tfstate(provision, None, &tfstate(2), 6).unwrap();

    assert_eq!(store.latest_tfstate(provision).unwrap(), Some(tfstate(2)), "the newest, byte for byte");
    assert_eq!(store.provider(provider).unwrap().body["connection"]["api_token"], CONNECTION_CANARY);
    assert_eq!(store.providers().unwrap()[0].body["connection"]["endpoint"], "/tmp/cloud");
    let read = store.provision(provision).unwrap().body;
    assert_eq!(read.user_inputs_values["admin_password"], INPUT_CANARY);
    assert_eq!(read.user_inputs_values["oneform_hosts"], 3);
    assert_eq!(store.provisions(true).unwrap()[0].body, read);

    let bytes = database_bytes(&path);
    assert!(contains(&bytes, "/tmp/cloud"), "the search sees clear values, so it can see a secret");
    for canary in [CONNECTION_CANARY, INPUT_CANARY, STATE_CANARY] {
        assert!(!contains(&bytes, canary), "{canary} is clear on disk");
    }
    let (key_id, resealed) = store.sealing().unwrap();
    assert!(resealed && key_file_ids(&key_file) == [key_id.clone()]);
    assert!(raw_bodies(&path).iter().all(|b| b.contains(&format!("\"$sealed\":\"v2:{key_id}:"))));
    let states = raw_states(&path);
    assert_eq!(states.len(), 2);
    assert!(states.iter().all(|s| s.starts_with(&format!("{{\"$sealed\":\"v2:{key_id}:"))), "{states:?}");
}

#[test]
fn a_database_opened_without_its_key_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    let key_id = {
        let store = Store::open(&path).unwrap();
        populate(&store);
        store.sealing().unwrap().0
    };
    let kept = dir.path().join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let before = snapshot(dir.path());

    let err = Store::open(&path).err().expect("opened without its key").to_string();
    assert!(err.contains(&format!("sealed with key {key_id}")), "{err}");
    assert!(err.contains(&key_file.display().to_string()) && err.contains("does not exist"), "{err}");
    assert!(err.contains("FORMWORK_SECRET_KEY"), "{err}");
    let wrong = Store::open_with_keys(&path, Source::Given(KeyText::new(ZERO_KEY)));
    let err = wrong.err().expect("opened with a wrong key").to_string();
    assert!(err.contains(&format!("sealed with key {key_id}")) && err.contains("FORMWORK_SECRET_KEY"), "{err}");
    assert_eq!(snapshot(dir.path()), before, "a refused open changes no file, creates no key");

    std::fs::rename(&kept, &key_file).unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.provider(1).unwrap().body["connection"]["api_token"], CONNECTION_CANARY);
}

/// A valid key that sealed nothing here: 32 zero bytes.
const ZERO_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Every file under `dir` with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_key_given_by_the_environment_opens_what_the_key_file_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    populate(&Store::open(&path).unwrap());
    let text = std::fs::read_to_string(&key_file).unwrap();
    let key = text.lines().find(|l| !l.starts_with('#')).unwrap().to_string();
    std::fs::remove_file(&key_file).unwrap();
    let store = Store::open_with_keys(&path, Source::Given(KeyText::new(key))).unwrap();
    assert_eq!(store.provision(1).unwrap().body.user_inputs_values["admin_password"], INPUT_CANARY);
    assert!(!key_file.exists(), "a key from the environment writes no key file");
}

/// A database made before sealing existed keeps its values clear; the first open seals them.
#[test]
fn the_migration_seals_the_clear_values_of_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql")).unwrap();
        conn.execute_batch(include_str!("../../migrations/0002_owners_queue.sql")).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_time INTEGER NOT NULL);
             INSERT INTO schema_migrations VALUES (1, '0001_init', 1), (2, '0002_owners_queue', 1);",
        )
        .unwrap();
        let insert =
            "INSERT INTO providers (id, name, driver, body, registration_time) VALUES (1, 'sim', 'sim', ?1, 1)";
        conn.execute(insert, [provider_body(CONNECTION_CANARY).to_string()]).unwrap();
        let insert =
            "INSERT INTO provisions (id, name, driver, provider_id, state, body, registration_time, updated_time)
                      VALUES (2, 'p', 'sim', 1, 3, ?1, 1, 1)";
        conn.execute(insert, [serde_json::to_string(&provision_body(INPUT_CANARY)).unwrap()]).unwrap();
    }
    assert!(contains(&database_bytes(&path), CONNECTION_CANARY), "the old database holds the secret in clear");
    let store = Store::open(&path).unwrap();
    assert!(key_file.exists());
    assert_eq!(store.migrations().unwrap().len(), super::MIGRATIONS.len(), "every migration ran");
    let raw = raw_bodies(&path);
    assert!(raw.iter().all(|b| !b.contains(CONNECTION_CANARY) && !b.contains(INPUT_CANARY)), "{raw:?}");
    assert_eq!(store.provider(1).unwrap().body, provider_body(CONNECTION_CANARY));
    assert_eq!(store.provision(2).unwrap().body, provision_body(INPUT_CANARY));
    drop(store);
    let bytes = database_bytes(&path);
    assert!(
        !contains(&bytes, CONNECTION_CANARY) && !contains(&bytes, INPUT_CANARY),
        "nothing of the clear rows is left"
    );
    let again = Store::open(&path).unwrap();
    assert_eq!(raw_bodies(&path), raw, "sealing runs once");
    assert_eq!(again.provider(1).unwrap().body, provider_body(CONNECTION_CANARY));
}

/// A database sealed before Terraform states were (migrations 1 to 3) keeps its states clear;
/// the first open seals them, and the file keeps no clear copy.
#[test]
fn the_first_open_after_migration_4_seals_the_clear_states_of_an_older_database() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = db(&dir);
    let (provision, key_id) = {
        let store = Store::open(&path).unwrap();
        let (_, provision) = populate(&store);
        (provision, store.sealing().unwrap().0)
    };
    {
        // Back to what formwork wrote before migration 4: clear states, no record of migration 4.
        back_to_migration_4(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM schema_migrations WHERE version = 4", []).unwrap();
        let insert = "INSERT INTO tfstates (provision_id, serial, state, saved_time) VALUES (?1, ?2, ?3, 1)";
        for serial in [1, 2] {
            conn.execute(insert, rusqlite::params![provision, serial, tfstate(serial)]).unwrap();
        }
    }
    assert!(contains(&database_bytes(&path), STATE_CANARY), "the old database holds the state in clear");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.migrations().unwrap().len(), super::MIGRATIONS.len(), "every migration ran");
    assert_eq!(store.sealing().unwrap(), (key_id.clone(), true), "the same key, every row under it");
    let states = raw_states(&path);
    assert_eq!(states.len(), 2);
    assert!(states.iter().all(|s| s.starts_with(&format!("{{\"$sealed\":\"v2:{key_id}:"))), "{states:?}");
    assert_eq!(store.latest_tfstate(provision).unwrap(), Some(tfstate(2)));
    assert_eq!(store.provision(provision).unwrap().body, provision_body(INPUT_CANARY), "bodies are untouched");
    drop(store);
    assert!(!contains(&database_bytes(&path), STATE_CANARY), "nothing of the clear states is left");
    let again = Store::open(&path).unwrap();
    assert_eq!(raw_states(&path), states, "sealing runs once");
    assert_eq!(again.latest_tfstate(provision).unwrap(), Some(tfstate(2)));
}

#[test]
fn rotation_seals_everything_with_a_new_key_and_retires_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    let store = Store::open(&path).unwrap();
    for _ in 0..3 {
        populate(&store);
    }
    store.save_tfstate(2, None, &tfstate(1), 3).unwrap();
    let old = store.sealing().unwrap().0;
    let mut steps = Vec::new();
    let done = store.rotate_secrets(&mut |s| steps.push(s)).unwrap();
    assert_ne!(done.key_id, old);
    assert_eq!((done.rows, done.retired.clone(), done.by_hand), (7, vec![old.clone()], false));
    assert_eq!(
        steps,
        [
            RotationStep::KeyAdded,
            RotationStep::Switched,
            RotationStep::Batch(1),
            RotationStep::Batch(2),
            RotationStep::Batch(3),
            RotationStep::Resealed
        ]
    );
    let states = raw_states(&path);
    assert!(states.len() == 1 && states[0].contains(&format!("v2:{}:", done.key_id)), "{states:?}");
    assert_eq!(key_file_ids(&key_file), std::slice::from_ref(&done.key_id));
    assert_eq!(store.sealing().unwrap(), (done.key_id.clone(), true));
    let raw = raw_bodies(&path);
    assert!(raw.iter().all(|b| b.contains(&done.key_id) && !b.contains(&old)), "{raw:?}");
    drop(store);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.latest_tfstate(2).unwrap(), Some(tfstate(1)));
    assert_eq!(reopened.provider(3).unwrap().body, provider_body(CONNECTION_CANARY));
    assert_eq!(reopened.provision(3).unwrap().body, provision_body(INPUT_CANARY));
    copy_value(&path, "providers", "connection", "api_token", 1, 2);
    let err = reopened.provider(2).unwrap_err().to_string();
    assert!(err.contains("'api_token' in provider 2 does not open"), "re-sealed values stay bound to their row: {err}");
}

#[test]
fn a_rotation_stopped_half_way_keeps_both_keys_and_the_next_open_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    let store = Store::open(&path).unwrap();
    let (provider, provision) = populate(&store);
    let old = store.sealing().unwrap().0;
    // Stopped after the providers' batch, before the provisions': what a kill leaves, since
    // every batch is committed on its own.
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.rotate_secrets(&mut |s| assert_ne!(s, RotationStep::Batch(1), "killed here")).unwrap()
    }));
    assert!(stopped.is_err());
    let ids = key_file_ids(&key_file);
    assert_eq!((ids.len(), ids[1].clone()), (2, old.clone()), "both keys are kept");
    let new = ids[0].clone();
    assert_eq!(store.sealing().unwrap(), (new.clone(), false));
    let raw = raw_bodies(&path);
    assert!(raw[0].contains(&new) && raw[1].contains(&old), "half done: {raw:?}");
    assert_eq!(store.provider(provider).unwrap().body, provider_body(CONNECTION_CANARY), "both keys open values");
    assert_eq!(store.provision(provision).unwrap().body, provision_body(INPUT_CANARY));
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.sealing().unwrap(), (new.clone(), true), "the next open finished it");
    assert_eq!(key_file_ids(&key_file), std::slice::from_ref(&new));
    assert!(raw_bodies(&path).iter().all(|b| b.contains(&new) && !b.contains(&old)));
    assert_eq!(store.provision(provision).unwrap().body, provision_body(INPUT_CANARY));
}

/// A server that opened the database before another process rotated keeps reading (it finds
/// the new key in the file) and what it writes afterwards is sealed with the new key, so
/// retiring the old key loses nothing.
#[test]
fn a_process_that_opened_the_database_before_a_rotation_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_file) = db(&dir);
    let server = Store::open(&path).unwrap();
    let (provider, provision) = populate(&server);
    let rotating = Store::open(&path).unwrap();
    let done = rotating.rotate_secrets(&mut |_| {}).unwrap();
    assert_eq!(key_file_ids(&key_file), std::slice::from_ref(&done.key_id), "the old key is gone from disk");

    assert_eq!(server.provider(provider).unwrap().body, provider_body(CONNECTION_CANARY));
    server.save_body(provision, &provision_body("after-rotation"), &[], 5).unwrap();
    let id = server.insert_provider("sim", "sim", &provider_body("newer"), 6).unwrap();
    server.save_tfstate(provision, None, &tfstate(1), 7).unwrap();
    let raw = raw_bodies(&path);
    assert!(raw.iter().all(|b| b.contains(&format!("v2:{}:", done.key_id))), "{raw:?}");
    assert!(raw_states(&path)[0].contains(&format!("v2:{}:", done.key_id)), "a state is sealed with the new key too");
    let fresh = Store::open(&path).unwrap();
    assert_eq!(fresh.provision(provision).unwrap().body, provision_body("after-rotation"));
    assert_eq!(fresh.provider(id).unwrap().body, provider_body("newer"));
}

#[test]
fn a_second_rotation_at_the_same_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = db(&dir);
    let store = Store::open(&path).unwrap();
    populate(&store);
    let other = Store::open(&path).unwrap();
    let mut refused = None;
    store
        .rotate_secrets(&mut |step| {
            if step == RotationStep::Switched {
                refused = Some(other.rotate_secrets(&mut |_| {}).unwrap_err().to_string());
            }
        })
        .unwrap();
    let refused = refused.unwrap();
    assert!(refused.contains("another formwork process is rotating"), "{refused}");
}

#[test]
fn a_sealed_plan_opens_only_for_its_provision_and_not_after_its_key_is_retired() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = db(&dir);
    let store = Store::open(&path).unwrap();
    // A plan file is binary (a zip archive) and holds the variables' values.
    let plan = [b"PK\x03\x04\x00\xff".as_slice(), STATE_CANARY.as_bytes()].concat();
    let sealed = store.seal_plan(4, &plan).unwrap();
    assert!(!contains(sealed.as_bytes(), STATE_CANARY), "{sealed}");
    assert_eq!(store.open_plan(4, &sealed).unwrap(), plan);
    let err = store.open_plan(5, &sealed).unwrap_err().to_string();
    assert!(err.contains("terraform plan of provision 5") && err.contains("changed or damaged"), "{err}");
    let err = store.open_plan(4, "plan bytes").unwrap_err().to_string();
    assert!(err.contains("terraform plan of provision 4 is stored in clear"), "{err}");
    store.rotate_secrets(&mut |_| {}).unwrap();
    let err = store.open_plan(4, &sealed).unwrap_err().to_string();
    assert!(err.contains("is not in"), "a retired key no longer opens it: {err}");
    assert_eq!(store.open_plan(4, &store.seal_plan(4, &plan).unwrap()).unwrap(), plan, "the new key seals and opens");
}

/// Replaces, by hand past the store, the value `name` of row `to` in `table` with row `from`'s
/// (sealed) one: what someone who can write the database file but lacks the key can do.
fn copy_value(path: &Path, table: &str, values: &str, name: &str, from: i64, to: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let body = |id: i64| -> Value {
        let text: String =
            conn.query_row(&format!("SELECT body FROM {table} WHERE id = ?1"), [id], |r| r.get(0)).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let value = body(from)[values][name].clone();
    assert!(value.get("$sealed").is_some(), "{value}");
    let mut target = body(to);
    target[values][name] = value;
    conn.execute(&format!("UPDATE {table} SET body = ?2 WHERE id = ?1"), rusqlite::params![to, target.to_string()])
        .unwrap();
}

/// A sealed value is bound to its row: copied onto the same input of another provider (or
/// provision) it does not open there, and the error names the row and the input.
#[test]
fn a_sealed_value_copied_into_another_row_is_refused_there() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = db(&dir);
    let store = Store::open(&path).unwrap();
    let (a, p) = populate(&store);
    let b = store.insert_provider("b", "sim", &provider_body("b-token"), 3).unwrap();
    let q = store.insert_provision("q", "sim", b, &provision_body("q-password"), 4).unwrap();
    copy_value(&path, "providers", "connection", "api_token", a, b);
    copy_value(&path, "provisions", "user_inputs_values", "admin_password", p, q);

    let read = store.provider(b);
    let opened = read.as_ref().map(|r| r.body["connection"]["api_token"].clone());
    assert!(read.is_err(), "provider {a}'s token opened in provider {b}: {opened:?}");
    let err = read.unwrap_err().to_string();
    assert!(err.contains(&format!("provider {b}")) && err.contains("'api_token'"), "{err}");
    assert!(store.providers().is_err(), "the listing refuses it too");
    let read = store.provision(q);
    let opened = read.as_ref().map(|r| r.body.user_inputs_values["admin_password"].clone());
    assert!(read.is_err(), "provision {p}'s password opened in provision {q}: {opened:?}");
    let err = read.unwrap_err().to_string();
    assert!(err.contains(&format!("provision {q}")) && err.contains("'admin_password'"), "{err}");
    assert_eq!(store.provider(a).unwrap().body, provider_body(CONNECTION_CANARY), "the row it came from still opens");
    assert_eq!(store.provision(p).unwrap().body, provision_body(INPUT_CANARY));

    // What the error says to do works: remove the value by hand, set it again.
    assert!(
        err.contains(&format!("remove `user_inputs_values.admin_password` from the body of provision {q}")),
        "{err}"
    );
    let fix = "UPDATE provisions SET body = json_remove(body, '$.user_inputs_values.admin_password') WHERE id = ?1";
    rusqlite::Connection::open(&path).unwrap().execute(fix, [q]).unwrap();
    assert!(!store.provision(q).unwrap().body.user_inputs_values.contains_key("admin_password"));
    let revision = store.provision(q).unwrap().revision;
    store.update_provision(q, "q", &provision_body("q-password"), revision, 5).unwrap();
    assert_eq!(store.provision(q).unwrap().body, provision_body("q-password"));
}

/// Takes a database back to what formwork wrote before migration 6: no record of it, and a
/// `sealing` row without `bound`.
fn back_to_migration_4(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("DELETE FROM schema_migrations WHERE version = 6; ALTER TABLE sealing DROP COLUMN bound;")
        .unwrap();
}

/// A database as formwork wrote it before values were bound to their row: three providers and
/// provisions (from [`populate`]) and a state of provision 2, every value sealed in `v1`, whose
/// associated data names only the input (or the document). Returns its paths and key id.
fn v1_database(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let (path, key_file) = db(dir);
    let store = Store::open(&path).unwrap();
    for _ in 0..3 {
        populate(&store);
    }
    drop(store);
    back_to_migration_4(&path);
    let ring = Keyring::new(Source::File(key_file));
    ring.load(false).unwrap();
    let key = ring.sealing().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v1 = |name: &str, clear: &str| crate::secrets::seal_v1(&key, name, json!(clear).to_string().as_bytes());
    for (table, values, name, clear) in [
        ("providers", "connection", "api_token", CONNECTION_CANARY),
        ("provisions", "user_inputs_values", "admin_password", INPUT_CANARY),
    ] {
        let mut stmt = conn.prepare(&format!("SELECT id, body FROM {table}")).unwrap();
        let rows: Vec<(i64, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap();
        for (id, text) in rows {
            let mut body: Value = serde_json::from_str(&text).unwrap();
            body[values][name] = v1(name, clear);
            let sql = format!("UPDATE {table} SET body = ?2 WHERE id = ?1");
            conn.execute(&sql, rusqlite::params![id, body.to_string()]).unwrap();
        }
    }
    let state = crate::secrets::seal_v1(&key, "terraform state of provision 2", tfstate(1).as_bytes());
    let insert = "INSERT INTO tfstates (provision_id, serial, state, saved_time) VALUES (2, 1, ?1, 1)";
    conn.execute(insert, [state.to_string()]).unwrap();
    (path, key.id().to_string())
}

fn all_sealed_as(path: &Path, tag: &str) -> bool {
    let sealed = format!("\"$sealed\":\"{tag}:");
    raw_bodies(path).iter().chain(&raw_states(path)).all(|text| text.contains(&sealed))
}

/// The migration step: the first open after migration 6 opens every `v1` seal with its old
/// associated data and seals it again bound to its row, under the same key; a second open
/// changes nothing; a `v1` seal put back afterwards is refused, not bound.
#[test]
fn the_first_open_after_migration_6_binds_v1_seals_to_their_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_id) = v1_database(&dir);
    assert!(all_sealed_as(&path, "v1"), "{:?}", raw_bodies(&path));
    let v1_provider: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT body FROM providers WHERE id = 2", [], |r| r.get(0))
        .unwrap();

    let store = Store::open(&path).unwrap();
    assert!(store.migrations().unwrap().contains(&(6, "0006_bound_seals".to_string())), "migration 6 ran again");
    assert_eq!(store.sealing().unwrap(), (key_id, true), "the same key, every row bound");
    assert!(all_sealed_as(&path, "v2"), "{:?}", raw_bodies(&path));
    for id in 1..=3 {
        assert_eq!(store.provider(id).unwrap().body, provider_body(CONNECTION_CANARY));
        assert_eq!(store.provision(id).unwrap().body, provision_body(INPUT_CANARY));
    }
    assert_eq!(store.latest_tfstate(2).unwrap(), Some(tfstate(1)));
    let bound = (raw_bodies(&path), raw_states(&path));
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!((raw_bodies(&path), raw_states(&path)), bound, "binding runs once");

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE providers SET body = ?1 WHERE id = 1", [v1_provider])
        .unwrap();
    store.rotate_secrets(&mut |_| {}).unwrap();
    let err = store.provider(1).unwrap_err().to_string();
    assert!(err.contains("'api_token' in provider 1 is sealed in an older format (v1)"), "{err}");
    assert!(err.contains("remove `connection.api_token`") && err.contains("by updating provider 1"), "{err}");
    assert_eq!(store.provider(2).unwrap().body, provider_body(CONNECTION_CANARY), "the other rows moved on");
}

/// The migration step killed half way: while another process holds the step, this one refuses
/// the unbound values (saying to wait); a pass stopped after its first batch keeps
/// `bound = 0`, and the next open binds the rest.
#[test]
fn binding_v1_seals_stopped_half_way_is_finished_by_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = v1_database(&dir);
    let lock = std::fs::File::create(dir.path().join("formwork.db.secrets-lock")).unwrap();
    lock.try_lock().unwrap();
    let store = Store::open(&path).unwrap();
    let err = store.provision(1).unwrap_err().to_string();
    assert!(
        err.contains("'admin_password' in provision 1 is sealed in an older format") && err.contains("wait"),
        "{err}"
    );
    drop(lock);

    // Stopped after the providers' batch, before the provisions': what a kill leaves.
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.rotate_secrets(&mut |s| assert_ne!(s, RotationStep::Batch(1), "killed here")).unwrap()
    }));
    assert!(stopped.is_err());
    let raw = raw_bodies(&path);
    assert!(raw[..3].iter().all(|b| b.contains("v2:")) && raw[3..].iter().all(|b| b.contains("v1:")), "{raw:?}");
    assert_eq!(store.provider(1).unwrap().body, provider_body(CONNECTION_CANARY));
    drop(store);

    let store = Store::open(&path).unwrap();
    assert!(store.sealing().unwrap().1);
    assert!(all_sealed_as(&path, "v2"), "{:?}", raw_bodies(&path));
    for id in 1..=3 {
        assert_eq!(store.provision(id).unwrap().body, provision_body(INPUT_CANARY));
    }
    assert_eq!(store.latest_tfstate(2).unwrap(), Some(tfstate(1)));
}
