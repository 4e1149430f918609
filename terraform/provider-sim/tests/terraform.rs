//! The provider under real Terraform: `init` from a filesystem mirror holding this build of the
//! provider, then `apply`/`plan`/`destroy` against a temporary cloud. Uses the built-in `sim`
//! driver's own Terraform files, so the schema is checked against what the driver writes.
//!
//! Needs Terraform: `TERRAFORM`, or `.tools/bin/terraform` as scripts/setup installs it. Without
//! one the tests fail and say so; they are never skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use terraform_provider_sim::cloud::{Cloud, Kind};
use terraform_provider_sim::records::{self, HostRecord};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn terraform_binary() -> PathBuf {
    #[allow(clippy::disallowed_methods, reason = "a test's only input: which terraform to run")]
    let configured = std::env::var_os("TERRAFORM").map(PathBuf::from);
    let path = configured.unwrap_or_else(|| workspace().join(".tools/bin/terraform"));
    assert!(
        path.is_file(),
        "terraform not found at {}: run scripts/setup (it installs Terraform into .tools/bin), \
         or set TERRAFORM to a terraform >= 1.0",
        path.display()
    );
    path
}

/// A Terraform working directory, a CLI config whose filesystem mirror holds this build of the
/// provider, and the cloud's root, all in one temporary directory.
struct Tf {
    tmp: tempfile::TempDir,
    bin: PathBuf,
    work: PathBuf,
    root: PathBuf,
    rc: PathBuf,
}

impl Tf {
    /// A working directory with the `sim` driver's Terraform files and `vars` as tfvars.
    fn with_driver(vars: Value) -> Tf {
        let tf = Tf::empty();
        for entry in fs::read_dir(workspace().join("drivers/sim/terraform")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "tf") {
                fs::copy(&path, tf.work.join(path.file_name().unwrap())).unwrap();
            }
        }
        let mut vars = vars;
        vars["api_token"] = json!("secret-token");
        vars["endpoint"] = json!(tf.root);
        fs::write(tf.work.join("test.auto.tfvars.json"), vars.to_string()).unwrap();
        tf.init();
        tf
    }

    fn empty() -> Tf {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("plugins");
        let platform = mirror.join("formwork.local/formwork/sim/0.1.0/linux_amd64");
        fs::create_dir_all(&platform).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_terraform-provider-sim"), platform.join("terraform-provider-sim_v0.1.0")).unwrap();
        let rc = tmp.path().join("terraformrc");
        let config = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = {mirror:?}\n    include = [\"formwork.local/*/*\"]\n  }}\n  direct {{\n    exclude = [\"formwork.local/*/*\"]\n  }}\n}}\n"
        );
        fs::write(&rc, config).unwrap();
        let work = tmp.path().join("work");
        fs::create_dir(&work).unwrap();
        Tf { bin: terraform_binary(), work, root: tmp.path().join("cloud"), rc, tmp }
    }

    fn init(&self) {
        self.ok(&["init", "-input=false"]);
    }

    fn run(&self, args: &[&str]) -> Output {
        #[allow(clippy::disallowed_methods, reason = "the test drives the real terraform binary")]
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).arg("-no-color").current_dir(&self.work).env_clear();
        cmd.env("HOME", self.tmp.path()).env("TF_CLI_CONFIG_FILE", &self.rc);
        cmd.env("TF_IN_AUTOMATION", "1").env("CHECKPOINT_DISABLE", "1");
        cmd.output().unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(out.status.success(), "terraform {args:?} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes; and its output.
    fn plan(&self) -> (i32, String) {
        let out = self.run(&["plan", "-input=false", "-detailed-exitcode"]);
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), all)
    }

    fn state(&self) -> Vec<String> {
        self.ok(&["state", "list"]).lines().map(str::to_string).collect()
    }

    fn cloud(&self) -> Cloud {
        Cloud::open(&self.root).unwrap()
    }

    fn hosts(&self) -> Vec<HostRecord> {
        let mut hosts: Vec<HostRecord> = self.cloud().list(Kind::Host).unwrap();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        hosts
    }

    /// Every file and directory left under the cloud's `hosts`, `public_ips` and `machines`.
    fn leftovers(&self) -> Vec<PathBuf> {
        ["hosts", "public_ips", "machines"]
            .iter()
            .flat_map(|dir| fs::read_dir(self.root.join(dir)).unwrap().map(|e| e.unwrap().path()))
            .collect()
    }
}

fn apply(tf: &Tf) -> String {
    tf.ok(&["apply", "-input=false", "-auto-approve"])
}

#[test]
fn hosts_are_created_refreshed_recreated_and_destroyed() {
    let tf = Tf::with_driver(json!({"oneform_hosts": 2, "oneform_tags": {"team": "qa"}}));
    apply(&tf);

    let hosts = tf.hosts();
    assert_eq!(hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["host-0", "host-1"]);
    let mut ips: Vec<&str> = hosts.iter().map(|h| h.ip.as_str()).collect();
    ips.sort();
    assert_eq!(ips, ["10.10.0.1", "10.10.0.2"]);
    for host in &hosts {
        assert!(host.id.starts_with("h-") && host.id.len() == 10, "{}", host.id);
        assert_eq!((host.instance_type.as_str(), host.zone.as_deref()), ("small", Some("eu-west-1a")));
        assert_eq!(host.tags.as_ref().unwrap()["team"], "qa");
        assert!(tf.root.join("machines").join(&host.ip).is_dir(), "no machine for {}", host.ip);
    }
    // The driver's output is what formwork reads: ids and addresses of the records.
    let output: Value = serde_json::from_str(&tf.ok(&["output", "-json", "provisioned_hosts"])).unwrap();
    let mut seen: Vec<(String, String)> = output
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["instance_id"].as_str().unwrap().to_string(), h["instance_ip"].as_str().unwrap().to_string()))
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String)> = hosts.iter().map(|h| (h.id.clone(), h.ip.clone())).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(tf.plan().0, 0, "a fresh apply leaves nothing to do");

    // Drift: an edited record shows as an in-place update, a new zone as a replacement.
    let mut edited = hosts[0].clone();
    edited.instance_type = "large".to_string();
    let cloud = tf.cloud();
    cloud.write(&cloud.lock().unwrap(), Kind::Host, &edited.id, &edited).unwrap();
    let (code, plan) = tf.plan();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("instance_type = \"large\" -> \"small\"") && plan.contains("1 to change"), "{plan}");
    let (code, plan) = {
        let out = tf.run(&["plan", "-input=false", "-detailed-exitcode", "-var", "zone=eu-west-1b"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(code, Some(2), "{plan}");
    assert!(plan.contains("forces replacement") && plan.contains("2 to add, 0 to change, 2 to destroy"), "{plan}");
    apply(&tf);
    assert_eq!(tf.hosts()[0].instance_type, "small");

    // A record deleted outside Terraform is dropped from the state and planned again.
    fs::remove_file(tf.root.join(format!("hosts/{}.json", hosts[1].id))).unwrap();
    let (code, plan) = tf.plan();
    assert_eq!(code, 2, "{plan}");
    assert!(plan.contains("sim_host.host[1] will be created") && plan.contains("1 to add, 0 to change"), "{plan}");
    apply(&tf);
    assert_eq!(tf.hosts().len(), 2);
    assert_eq!(tf.plan().0, 0);

    tf.ok(&["destroy", "-input=false", "-auto-approve"]);
    assert_eq!(tf.leftovers(), Vec::<PathBuf>::new(), "destroy leaves the cloud empty");
    assert!(tf.state().is_empty());
}

#[test]
fn an_injected_failure_on_the_second_host_keeps_the_first() {
    let tf = Tf::with_driver(json!({"oneform_hosts": 2}));
    // The provider creates the root on first use; faults must be there before it.
    fs::create_dir_all(&tf.root).unwrap();
    fs::write(tf.root.join("faults.json"), r#"{"fail_create_host": 2}"#).unwrap();
    let out = tf.run(&["apply", "-input=false", "-auto-approve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());

    // Creations run in parallel, so either host may be the second one.
    let state = tf.state();
    assert_eq!(state.len(), 1, "{state:?}");
    let failed = if state[0] == "sim_host.host[0]" { "host-1" } else { "host-0" };
    let message = format!("sim: creating host {failed} failed: injected failure (fail_create_host=2)");
    assert!(stderr.contains(&message), "{stderr}");
    assert!(!stderr.contains("tf_provider::"), "no backtrace in diagnostics: {stderr}");
    let hosts = tf.hosts();
    assert_eq!(hosts.len(), 1);
    assert_ne!(hosts[0].name, failed);

    // The third attempt is not the second: a retry completes the provision.
    apply(&tf);
    assert_eq!(tf.hosts().len(), 2);
    tf.ok(&["destroy", "-input=false", "-auto-approve"]);
    assert_eq!(tf.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn a_failed_delete_keeps_the_host_in_the_state() {
    let tf = Tf::with_driver(json!({"oneform_hosts": 1}));
    apply(&tf);
    fs::write(tf.root.join("faults.json"), r#"{"fail_delete_host": true}"#).unwrap();
    let out = tf.run(&["destroy", "-input=false", "-auto-approve"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sim: deleting host host-0 failed: injected failure (fail_delete_host=true)"), "{stderr}");
    assert_eq!(tf.state(), ["sim_host.host[0]"]);
    assert_eq!(tf.hosts().len(), 1);

    fs::remove_file(tf.root.join("faults.json")).unwrap();
    tf.ok(&["destroy", "-input=false", "-auto-approve"]);
    assert_eq!(tf.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn public_ips_attach_to_hosts_and_import_by_id() {
    let tf = Tf::empty();
    let config = format!(
        r#"
terraform {{
  required_providers {{
    sim = {{ source = "formwork.local/formwork/sim", version = "0.1.0" }}
  }}
}}
provider "sim" {{
  token = "t"
  root  = {root:?}
}}
resource "sim_host" "h" {{
  name          = "gateway"
  instance_type = "small"
  cidr_block    = "10.1.0.0/24"
}}
resource "sim_public_ip" "ip" {{
  host_id = sim_host.h.id
  tags    = {{ role = "ingress" }}
}}
resource "sim_public_ip" "spare" {{}}
"#,
        root = tf.root
    );
    fs::write(tf.work.join("main.tf"), config).unwrap();
    tf.init();
    tf.ok(&["apply", "-input=false", "-auto-approve", "-target=sim_public_ip.ip"]);

    let host = &tf.hosts()[0];
    let ips: Vec<records::PublicIpRecord> = tf.cloud().list(Kind::PublicIp).unwrap();
    assert_eq!(ips.len(), 1);
    assert_eq!((ips[0].address.as_str(), ips[0].host_id.as_deref()), ("198.51.100.1", Some(host.id.as_str())));

    // An address made outside this configuration is adopted with `terraform import`.
    let spare = records::create_public_ip(&tf.cloud(), None, None).unwrap();
    tf.ok(&["import", "-input=false", "sim_public_ip.spare", &spare.id]);
    assert_eq!(tf.plan().0, 0, "the imported address matches its configuration");
    let shown: Value = serde_json::from_str(&tf.ok(&["show", "-json"])).unwrap();
    let resources = shown["values"]["root_module"]["resources"].as_array().unwrap();
    let spare_state = resources.iter().find(|r| r["address"] == "sim_public_ip.spare").unwrap();
    assert_eq!(spare_state["values"]["address"], "198.51.100.2");

    tf.ok(&["destroy", "-input=false", "-auto-approve"]);
    assert_eq!(tf.leftovers(), Vec::<PathBuf>::new());
}
