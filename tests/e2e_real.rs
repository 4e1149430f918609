//! End to end with the real tools: Terraform (from `.tools`, with the `sim` provider from its
//! filesystem mirror), ansible-playbook (from `.tools/venv`) and onesim as OpenNebula. Each
//! test has its own formwork home, sim cloud folder and onesim. `scripts/setup` installs the
//! tools; without them these tests fail and say so.

// Tests spawn formwork and onesim and kill them.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Home;
use common::check::{Want, assert_provisioned_in, assert_registered, assert_unregistered};
use common::onesim::{Onesim, objects, use_endpoint};
use serde_json::{Value, json};

/// A formwork home wired to real tools, a sim cloud and onesim.
struct World {
    home: Home,
    cloud: PathBuf,
    onesim_state: PathBuf,
    sim: Option<Onesim>,
}

impl World {
    fn new() -> World {
        let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools");
        for needed in ["bin/terraform", "terraformrc", "venv/bin/ansible-playbook"] {
            assert!(tools.join(needed).exists(), ".tools/{needed} is missing: run scripts/setup first");
        }
        let mut home = Home::with_builtin();
        let cloud = home.tmp.path().join("cloud");
        let onesim_state = home.tmp.path().join("onesim.json");
        let sim = Onesim::start(&onesim_state);
        use_endpoint(&mut home, &sim);
        World { home, cloud, onesim_state, sim: Some(sim) }
    }

    /// The sim provider, pointed at this world's cloud folder.
    fn sim_provider(&self) {
        let values = json!({"api_token": "e2e-secret-token", "endpoint": self.cloud});
        self.home.run_with_stdin(&["provider", "create", "sim", "--values", "-"], Some(&values.to_string())).ok();
    }

    fn create(&self, driver: &str, values: Value) -> common::Run {
        self.home.run_with_stdin(&["--json", "provision", "create", driver, "--values", "-"], Some(&values.to_string()))
    }

    fn show(&self, id: &str) -> Value {
        self.home.run(&["--json", "provision", "show", id]).ok().json()
    }

    fn faults(&self, faults: Value) {
        common::check::set_faults(&self.cloud, &faults);
    }

    /// Host records in the sim cloud: (id, ip), sorted.
    fn cloud_hosts(&self) -> Vec<(String, String)> {
        common::check::hosts_in_cloud(&self.cloud)
    }

    /// The addresses of the sim cloud's hosts, sorted.
    fn cloud_ips(&self) -> Vec<String> {
        let mut ips: Vec<String> = self.cloud_hosts().into_iter().map(|(_, ip)| ip).collect();
        ips.sort();
        ips
    }

    /// Hosts onesim holds, by name (their address).
    fn one_hosts(&self) -> Vec<String> {
        objects(&self.onesim_state).into_iter().filter_map(|n| n.strip_prefix("hosts:").map(str::to_owned)).collect()
    }

    /// How many times Ansible configured the sim host at `ip` (lines of its runs.log).
    fn runs(&self, ip: &str) -> usize {
        std::fs::read_to_string(self.cloud.join("machines").join(ip).join("runs.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Asserts that onesim holds exactly the provision's objects (`want`), and the sim cloud and
    /// the Terraform state exactly its hosts.
    fn assert_exact(&self, label: &str, provision: &Value, want: Want) {
        assert_registered(label, provision, &self.onesim_state, want);
        assert_provisioned_in(label, self.cloud_hosts(), &self.home, provision, want.hosts);
    }

    fn stop(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.stop();
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ips(provision: &Value) -> Vec<String> {
    let mut ips: Vec<String> = provision["one_objects"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap().to_owned())
        .collect();
    ips.sort();
    ips
}

/// The AR ids of the public-IP ranges on the elastic network.
fn elastic_ar_ids(provision: &Value) -> Vec<i64> {
    let networks = provision["one_objects"]["networks"].as_array().unwrap();
    let elastic = networks.iter().find(|n| n["template"]["vn_mad"] == "elastic").expect("an elastic network");
    elastic["template"]["ar"].as_array().into_iter().flatten().map(|a| a["ar_id"].as_i64().unwrap()).collect()
}

/// Every machine runs these tests with the Terraform `scripts/setup` pins (1.0.3 on
/// linux_amd64, the one a fresh machine gets), not with whatever Terraform is on PATH: a test
/// that needs a newer Terraform fails here, not on a fresh machine only.
#[test]
fn the_real_tools_tests_run_the_terraform_setup_pins() {
    let world = World::new();
    let terraform = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/terraform");
    let out = Command::new(&terraform).arg("version").env("CHECKPOINT_DISABLE", "1").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        assert!(!terraform.is_symlink(), ".tools/bin/terraform must be the pinned download, not a link to PATH's");
        assert_eq!(version, "Terraform v1.0.3", "scripts/setup pins Terraform 1.0.3: run it again");
    }
    assert!(version.starts_with("Terraform v1."), "{version}");
    // formwork resolves that Terraform when nothing else is configured.
    let resolved = world.home.env.iter().any(|(k, _)| k == "FORMWORK_TERRAFORM");
    assert!(!resolved, "the real-tools tests must not name another Terraform");
}

#[test]
fn sim_create_scale_ips_and_deprovision_with_real_terraform_and_ansible() {
    let world = World::new();
    world.sim_provider();
    let created = world.create("sim", json!({"oneform_hosts": 2}));
    let p = created.ok().json();
    assert_eq!(p["state"], "RUNNING");
    let first = ips(&p);
    assert_eq!(first.len(), 2);
    let cloud = world.cloud_ips();
    assert_eq!(cloud, first, "the sim cloud holds the provision's hosts");
    assert_eq!(world.one_hosts(), first, "onesim holds them too");
    world.assert_exact("created", &p, Want::sim(2, 0));
    for ip in &first {
        assert_eq!(world.runs(ip), 1, "Ansible configured {ip} once");
        let conf = std::fs::read_to_string(world.cloud.join("machines").join(ip).join("node.conf")).unwrap();
        assert!(conf.contains(ip), "node.conf of {ip} names it: {conf}");
    }

    let scaled = world.home.run(&["--json", "provision", "add-host", "1", "--amount", "2"]).ok().json();
    assert_eq!(scaled["state"], "RUNNING");
    let four = ips(&scaled);
    assert_eq!(four.len(), 4);
    assert!(first.iter().all(|ip| four.contains(ip)), "scaling up keeps the first hosts: {four:?}");
    world.assert_exact("scaled up", &scaled, Want::sim(4, 0));
    let new: Vec<&String> = four.iter().filter(|ip| !first.contains(ip)).collect();
    assert_eq!(new.len(), 2, "{four:?}");
    for ip in new {
        assert!(world.runs(ip) >= 1, "Ansible configured the new host {ip}");
    }

    let victim = scaled["one_objects"]["hosts"][1]["id"].as_i64().unwrap().to_string();
    let victim_ip = scaled["one_objects"]["hosts"][1]["name"].as_str().unwrap().to_owned();
    let down = world.home.run(&["--json", "provision", "del-host", "1", "--ids", &victim]).ok().json();
    assert_eq!(down["state"], "RUNNING");
    let three = ips(&down);
    assert_eq!(three.len(), 3);
    assert!(!three.contains(&victim_ip));
    let cloud = world.cloud_ips();
    assert!(!cloud.contains(&victim_ip) && cloud.len() == 3, "Terraform destroyed exactly that host: {cloud:?}");
    assert!(!world.cloud.join("machines").join(&victim_ip).exists());
    assert!(!world.one_hosts().contains(&victim_ip));
    world.assert_exact("scaled down", &down, Want::sim(3, 0));

    let with_ips = world.home.run(&["--json", "provision", "add-ip", "1", "--amount", "2"]).ok().json();
    assert_eq!(elastic_ar_ids(&with_ips).len(), 2);
    world.assert_exact("with public IPs", &with_ips, Want::sim(3, 2));
    let ars = elastic_ar_ids(&with_ips);
    let fewer = world.home.run(&["--json", "provision", "del-ip", "1", &ars[0].to_string()]).ok().json();
    assert_eq!(elastic_ar_ids(&fewer), ars[1..].to_vec());
    world.assert_exact("one public IP fewer", &fewer, Want::sim(3, 1));

    let done = world.home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert!(world.cloud_hosts().is_empty(), "the sim cloud ends empty");
    assert!(world.one_hosts().is_empty(), "onesim ends without hosts");
    assert_unregistered("done", &world.onesim_state, 1);
    let logs = world.home.run(&["provision", "logs", "1", "--all"]).ok().stdout();
    assert!(logs.contains("Creation complete"), "Terraform's progress is in the log");
    assert!(!logs.contains("e2e-secret-token"), "the provider's token never shows in the log");
}

/// The sim driver declares `scale-up-configures: new-hosts`: a scale-up runs the real play on
/// the front-end and the new host only, and the provision still ends RUNNING with every host
/// configured and the front-end's record naming them all.
#[test]
fn a_sim_scale_up_limited_to_the_new_host_leaves_every_host_configured() {
    let world = World::new();
    world.sim_provider();
    let first = ips(&world.create("sim", json!({"oneform_hosts": 3})).ok().json());
    let scaled = world.home.run(&["--json", "provision", "add-host", "1", "--amount", "1"]).ok().json();
    assert_eq!(scaled["state"], "RUNNING");
    world.assert_exact("scaled up", &scaled, Want::sim(4, 0));
    let all = ips(&scaled);
    let new: Vec<&String> = all.iter().filter(|ip| !first.contains(ip)).collect();
    assert_eq!(new.len(), 1, "{all:?}");
    for ip in &all {
        assert_eq!(world.runs(ip), 1, "{ip} was configured once (the old hosts at create, the new one now)");
        let conf = std::fs::read_to_string(world.cloud.join("machines").join(ip).join("node.conf")).unwrap();
        assert!(conf.contains(&format!("address: \"{ip}\"")), "node.conf of {ip} names it: {conf}");
    }
    let record = world.cloud.join("frontend/provision-1.yaml");
    let record = std::fs::read_to_string(&record).unwrap();
    for ip in &all {
        assert!(record.contains(&format!("address: \"{ip}\"")), "the front-end's record names {ip}: {record}");
    }
    let log = world.home.run(&["provision", "logs", "1"]).ok().stdout();
    assert!(log.contains("Configuring only the front-end and the new hosts: frontend, n4"), "{log}");
}

#[test]
fn a_failed_first_apply_names_the_provider_error_and_retry_finishes() {
    let world = World::new();
    world.sim_provider();
    world.faults(json!({"fail_create_host": 2}));
    let run = world.create("sim", json!({"oneform_hosts": 2}));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("injected failure"), "the provider's message is shown: {}", run.stderr());
    let failed = world.show("1");
    assert_eq!(failed["state"], "APPLYING_FAILURE");
    assert_eq!(world.cloud_hosts().len(), 1, "the first host was made");
    let done = world.home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    world.assert_exact("retried", &done, Want::sim(2, 0));
}

#[test]
fn deprovision_straight_after_a_failed_first_apply_destroys_what_was_made() {
    let world = World::new();
    world.sim_provider();
    world.faults(json!({"fail_create_host": 2}));
    assert_eq!(world.create("sim", json!({"oneform_hosts": 3})).code(), 1);
    assert_eq!(world.show("1")["state"], "APPLYING_FAILURE");
    assert!(!world.cloud_hosts().is_empty());
    // OneForm's gating: a provision that never reached RUNNING is torn down with --force.
    let done = world.home.run(&["--json", "provision", "deprovision", "1", "--force"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert!(world.cloud_hosts().is_empty(), "what the failed apply made is destroyed");
}

#[test]
fn onprem_runs_no_terraform_and_ansible_configures_each_address() {
    let mut world = World::new();
    // Any Terraform run would be recorded by the fake, which is all this test lets formwork find.
    let fakes = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
    world.home.env.push(("FORMWORK_TERRAFORM".into(), fakes.join("terraform").display().to_string()));
    let nodes = world.home.tmp.path().join("nodes");
    let values = json!({
        "oneform_onprem_hosts": ["127.0.0.1", "127.0.0.2", "127.0.0.3"],
        "node_connection": "local",
        "node_state_dir": nodes,
    });
    let p = world.create("onprem", values).ok().json();
    assert_eq!(p["state"], "RUNNING");
    assert_eq!(world.one_hosts(), ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    assert_registered("created", &p, &world.onesim_state, Want::onprem(3));
    for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        assert!(nodes.join(ip).join("node.conf").exists(), "Ansible configured {ip}");
    }
    let scaled = world.home.run(&["--json", "provision", "add-host", "1", "--ips", "127.0.0.4"]).ok().json();
    assert_registered("scaled", &scaled, &world.onesim_state, Want::onprem(4));
    assert!(nodes.join("127.0.0.4").join("node.conf").exists());
    let done = world.home.run(&["--json", "provision", "deprovision", "1"]).ok().json();
    assert_eq!(done["state"], "DONE");
    assert_unregistered("done", &world.onesim_state, 1);
    assert!(world.home.calls().is_empty(), "no Terraform process ran: {:?}", world.home.calls());
}

/// Starts `formwork provision create sim` of `hosts` hosts in the background and returns once
/// provision 1 is in `state` (formwork still running).
fn create_until(world: &World, hosts: usize, state: &str) -> std::process::Child {
    let mut child = world.home.spawn(&["provision", "create", "sim", "--values", "-"]);
    {
        use std::io::Write;
        let values = json!({"oneform_hosts": hosts}).to_string();
        child.stdin.take().unwrap().write_all(values.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the provision never reached {state}");
        assert!(child.try_wait().unwrap().is_none(), "formwork finished before reaching {state}");
        let run = world.home.run(&["--json", "provision", "show", "1"]);
        if run.code() == 0 && run.json()["state"] == state {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Starts a create, kills formwork with SIGKILL once the provision is in `state`, resumes it,
/// and checks the end: RUNNING with exactly the requested hosts everywhere.
fn kill_during(state: &str, hosts: usize) {
    let world = World::new();
    world.sim_provider();
    // Slow creates keep APPLYING long enough to be caught.
    world.faults(json!({"delay_ms": 1500}));
    let mut child = create_until(&world, hosts, state);
    Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
    let resumed = world.home.run(&["--json", "provision", "resume"]);
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr());
    let p = world.show("1");
    assert_eq!(p["state"], "RUNNING", "after a kill -9 in {state}");
    world.assert_exact(&format!("killed in {state}"), &p, Want::sim(hosts, 0));
    for ip in ips(&p) {
        assert!(world.runs(&ip) >= 1, "Ansible configured {ip}");
    }
}

#[test]
fn kill_9_during_applying_then_resume_reaches_running_with_exactly_its_hosts() {
    kill_during("APPLYING", 2);
}

#[test]
fn kill_9_during_configuring_provision_then_resume_reaches_running_with_exactly_its_hosts() {
    kill_during("CONFIGURING_PROVISION", 2);
}

#[test]
fn cancel_during_a_real_apply_stops_terraform_gracefully_and_retry_finishes() {
    let world = World::new();
    world.sim_provider();
    world.faults(json!({"delay_ms": 2000}));
    let child = create_until(&world, 3, "APPLYING");
    // Cancel once the provider is creating (each create takes 2 s), so SIGINT meets it mid-work.
    let log_path = world.home.data_dir().join("logs/1.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log_path).unwrap_or_default().contains("Creating...") {
        assert!(Instant::now() < deadline, "the apply never started creating");
        std::thread::sleep(Duration::from_millis(50));
    }
    world.home.run(&["provision", "cancel", "1"]).ok();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("was cancelled"), "{stderr}");
    assert_eq!(world.show("1")["state"], "APPLYING_FAILURE");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("Interrupt received"), "Terraform got SIGINT, not a kill:\n{log}");
    // The provider ignores SIGINT: the creates in flight finished and Terraform saved them, so
    // the cloud holds no host the saved state does not know (the retry below would add more)...
    let made = world.cloud_hosts().len();
    assert!(made >= 1, "the creates in flight finished: {log}");
    // ...except where Terraform itself lost an answer: on SIGINT it sends StopProvider, which
    // tf-provider 0.2 answers by shutting its gRPC server down, and a create that finished just
    // then is reported "Request cancelled" while its host exists (Terraform's own "data loss
    // may occur"). Only those may be missing from the state.
    let lost = log.matches("Request cancelled").count();
    world.faults(json!({}));
    let done = world.home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    let in_state: Vec<String> = common::check::state_hosts(&world.home, 1).into_iter().map(|(_, id, _)| id).collect();
    let (known, orphans): (Vec<_>, Vec<_>) = world.cloud_hosts().into_iter().partition(|(id, _)| in_state.contains(id));
    assert!(orphans.len() <= lost, "hosts no answer was lost for are missing from the state: {orphans:?}\n{log}");
    assert_registered("retried", &done, &world.onesim_state, Want::sim(3, 0));
    assert_provisioned_in("retried", known, &world.home, &done, 3);
}

#[test]
fn credentials_live_only_in_private_files() {
    let world = World::new();
    world.sim_provider();
    world.create("sim", json!({"oneform_hosts": 1})).ok();
    use std::os::unix::fs::PermissionsExt;
    let mut holders = Vec::new();
    for entry in walkdir::WalkDir::new(world.home.tmp.path()).into_iter().flatten().filter(|e| e.file_type().is_file())
    {
        let bytes = std::fs::read(entry.path()).unwrap();
        if bytes.windows(16).any(|w| w == b"e2e-secret-token") {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & 0o077,
                0,
                "{} holds the token and is readable by others ({mode:o})",
                entry.path().display()
            );
            holders.push(entry.path().strip_prefix(world.home.tmp.path()).unwrap().display().to_string());
        }
    }
    // Terraform got the token: `api_token` has no default and the sim provider refuses an
    // empty one, so the create could not succeed without it. Once its stage ended no file holds
    // it in clear: the database has it sealed, the variables file and the applied plan are gone.
    assert!(holders.is_empty(), "{holders:?}");
    assert!(!world.home.data_dir().join("work/1/terraform/terraform.tfstate").exists(), "the state outlived its stage");
}

#[test]
fn a_held_terraform_lock_is_reported_as_such() {
    let mut world = World::new();
    world.sim_provider();
    world.create("sim", json!({"oneform_hosts": 2})).ok();
    // Another process holds the state lock (Terraform's local backend locks the state file
    // with fcntl, as lockf does). The file is on disk only while a stage runs: the holder
    // creates it, and the next stage writes the saved state into that same file.
    let state = world.home.data_dir().join("work/1/terraform/terraform.tfstate");
    let holder = "import fcntl, sys, time\nf = open(sys.argv[1], 'a+')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(120)";
    let mut lock = Command::new("python3")
        .args(["-c", holder, state.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(lock.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    world.home.env.push(("FORMWORK_TERRAFORM_LOCK_TIMEOUT".into(), "1".into()));
    let run = world.home.run(&["provision", "del-host", "1", "--amount", "1"]);
    assert!(state.exists(), "a state file another process holds locked is left to it");
    lock.kill().unwrap();
    lock.wait().unwrap();
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("the Terraform state is locked by another Terraform process"), "{}", run.stderr());
    assert!(run.stderr().contains("force-unlock"), "{}", run.stderr());
    assert_eq!(world.show("1")["state"], "DEPROVISIONING_FAILURE");
    let done = world.home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    world.assert_exact("retried", &done, Want::sim(1, 0));
}

#[test]
fn a_host_ansible_fails_on_is_named_with_its_address_and_retry_finishes() {
    let world = World::new();
    let nodes = world.home.tmp.path().join("nodes");
    std::fs::create_dir_all(&nodes).unwrap();
    // A file where 127.0.0.2's state folder must go: the one_node role fails on that host.
    std::fs::write(nodes.join("127.0.0.2"), "in the way").unwrap();
    let values = json!({
        "oneform_onprem_hosts": ["127.0.0.1", "127.0.0.2"],
        "node_connection": "local",
        "node_state_dir": nodes,
    });
    let run = world.create("onprem", values);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("failed hosts: n2 (127.0.0.2)"), "{}", run.stderr());
    assert_eq!(world.show("1")["state"], "CONFIGURING_PROVISION_FAILURE");
    std::fs::remove_file(nodes.join("127.0.0.2")).unwrap();
    let done = world.home.run(&["--json", "provision", "retry", "1"]).ok().json();
    assert_eq!(done["state"], "RUNNING");
    assert!(nodes.join("127.0.0.2/node.conf").exists());
}
