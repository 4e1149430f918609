//! Every verification failure, data-driven: each case breaks a copy of the built-in `sim`
//! driver in one way and names the words the ERROR message must carry. The driver must be in
//! ERROR with that message, survive a restart in that state, and come back after a fix + sync.

mod common;

use std::fs;
use std::path::Path;

use common::Home;

type Break = fn(&Path);

fn write(dir: &Path, rel: &str, text: &str) {
    fs::write(dir.join(rel), text).unwrap();
}

fn remove(dir: &Path, rel: &str) {
    let p = dir.join(rel);
    if p.is_dir() { fs::remove_dir_all(p) } else { fs::remove_file(p) }.unwrap();
}

const TEMPLATE: &str = "ansible/templates/sim_cluster.j2";

/// (case name, how to break it, words the error must contain)
const CASES: &[(&str, Break, &[&str])] = &[
    (
        "no driver.conf",
        |d| remove(d, "driver.conf"),
        &["driver.conf is missing", "name, description, version and fireedge"],
    ),
    (
        "no terraform dir",
        |d| remove(d, "terraform"),
        &["terraform/ is missing", "main.tf, outputs.tf, provider.tf and variables.tf"],
    ),
    ("no main.tf", |d| remove(d, "terraform/main.tf"), &["terraform/main.tf is missing"]),
    ("no outputs.tf", |d| remove(d, "terraform/outputs.tf"), &["terraform/outputs.tf is missing", "provisioned_hosts"]),
    (
        "no provider.tf",
        |d| remove(d, "terraform/provider.tf"),
        &["terraform/provider.tf is missing", "connection inputs"],
    ),
    ("no variables.tf", |d| remove(d, "terraform/variables.tf"), &["terraform/variables.tf is missing", "user inputs"]),
    ("no ansible dir", |d| remove(d, "ansible"), &["ansible/ is missing"]),
    ("no ansible.cfg", |d| remove(d, "ansible/ansible.cfg"), &["ansible/ansible.cfg is missing"]),
    (
        "no inventory.yaml",
        |d| remove(d, "ansible/inventory.yaml"),
        &["ansible/inventory.yaml is missing", "plugin: opennebula_form"],
    ),
    ("no site.yaml", |d| remove(d, "ansible/site.yaml"), &["ansible/site.yaml is missing", "playbook"]),
    ("no templates dir", |d| remove(d, "ansible/templates"), &["ansible/templates/ is missing"]),
    ("empty templates dir", |d| remove(d, TEMPLATE), &["ansible/templates/ holds no .j2 template"]),
    (
        "template without metadata",
        |d| write(d, TEMPLATE, "all:\n  vars: {}\n"),
        &["sim_cluster.j2 has no `{# ... #}` metadata block"],
    ),
    ("empty elastic dir", |d| fs::create_dir(d.join("elastic")).unwrap(), &["elastic/ is empty"]),
    (
        "incomplete ipam dir",
        |d| {
            fs::create_dir(d.join("ipam")).unwrap();
            write(d, "ipam/allocate_address", "#!/bin/sh\n");
        },
        &["ipam/free_address is missing"],
    ),
    ("driver.conf not YAML", |d| write(d, "driver.conf", "name: [unclosed\n"), &["driver.conf is not valid YAML"]),
    ("driver.conf a list", |d| write(d, "driver.conf", "- a\n- b\n"), &["driver.conf must be a YAML mapping"]),
    (
        "driver.conf without version",
        |d| write(d, "driver.conf", "name: a\ndescription: b\nfireedge: {}\n"),
        &["driver.conf has no `version`"],
    ),
    (
        "driver.conf without fireedge",
        |d| write(d, "driver.conf", "name: a\ndescription: b\nversion: 1\n"),
        &["driver.conf has no `fireedge`"],
    ),
    (
        "driver.conf with an unknown add-host way",
        |d| {
            write(d, "driver.conf", "name: a\ndescription: b\nversion: 1\nfireedge:\n  operations: {add-host: count}\n")
        },
        &["`fireedge.operations.add-host` names 'count'", "amount or ips"],
    ),
    (
        "driver.conf with a misspelt formwork key",
        |d| {
            write(
                d,
                "driver.conf",
                "name: a\ndescription: b\nversion: 1\nfireedge: {}\nformwork: {scale-up: new-hosts}\n",
            )
        },
        &["driver.conf `formwork`: unknown field `scale-up`", "scale-up-configures"],
    ),
    (
        "variables.tf not HCL",
        |d| write(d, "terraform/variables.tf", "variable \"x\" {\n  type = \n"),
        &["terraform/variables.tf is not valid HCL"],
    ),
    ("provider.tf not HCL", |d| write(d, "terraform/provider.tf", "}}}"), &["terraform/provider.tf is not valid HCL"]),
    (
        "unknown input type",
        |d| write(d, "terraform/variables.tf", "variable \"x\" {\n  type = set(string)\n}\n"),
        &["terraform/variables.tf", "input 'x' has type 'set(string)'"],
    ),
    (
        "untyped input",
        |d| write(d, "terraform/variables.tf", "variable \"x\" {\n  default = 1\n}\n"),
        &["input 'x' has no type"],
    ),
    (
        "validators not literal",
        |d| write(d, "terraform/validators.tf", "locals {\n  validators = local.other\n}\n"),
        &["terraform/validators.tf", "must be a literal value"],
    ),
    (
        "bad regex rule",
        |d| {
            write(
                d,
                "terraform/validators.tf",
                "locals {\n  validators = {\n    cidr_block = { type = \"string\", values = { regex = \"([\" } }\n  }\n}\n",
            )
        },
        &["input 'cidr_block' has a bad match rule", "does not compile"],
    ),
    (
        "grouped_by unknown input",
        |d| {
            write(
                d,
                "terraform/validators.tf",
                "locals {\n  validators = {\n    zone = { type = \"map\", grouped_by = \"continent\", values = { eu = [\"a\"] } }\n  }\n}\n",
            )
        },
        &["grouped by 'continent'", "not an input"],
    ),
    (
        "outputs without provisioned_hosts",
        |d| write(d, "terraform/outputs.tf", "output \"hosts\" {\n  value = []\n}\n"),
        &["terraform/outputs.tf has no `output \"provisioned_hosts\"`"],
    ),
    (
        "template metadata not YAML",
        |d| write(d, TEMPLATE, "{# name: [x #}\nall: {}\n"),
        &["sim_cluster.j2: the metadata block is not valid YAML"],
    ),
    (
        "template without networks",
        |d| {
            write(
                d,
                TEMPLATE,
                "{#\nname: a\ndescription: b\n#}\nall:\n  vars:\n    ds: {config: {SYSTEM_DS: {s: {}}}}\n",
            )
        },
        &["networks template definition not found"],
    ),
    (
        "template without datastores",
        |d| write(d, TEMPLATE, "{#\nname: a\ndescription: b\n#}\nall:\n  vars:\n    vn: {net: {}}\n"),
        &["datastores template definition not found"],
    ),
    (
        "template not Jinja",
        |d| write(d, TEMPLATE, "{#\nname: a\ndescription: b\n#}\n{% if x %}\nall: {}\n"),
        &["sim_cluster.j2 is not a valid Jinja2 template"],
    ),
    (
        "template input without type",
        |d| {
            write(
                d,
                TEMPLATE,
                "{#\nname: a\ndescription: b\nuser_inputs:\n  - name: extra\n#}\nall: {vars: {vn: {n: {}}, ds: {config: {S: {s: {}}}}}}\n",
            )
        },
        &["sim_cluster.j2", "input 'extra' has no type"],
    ),
    (
        "oversized file",
        |d| write(d, "terraform/main.tf", &"#".repeat(2 * 1024 * 1024 + 1)),
        &["terraform/main.tf is 2097153 bytes", "at most 2097152 bytes"],
    ),
    (
        "binary file",
        |d| fs::write(d.join("terraform/variables.tf"), [0xff, 0xfe, 0x00]).unwrap(),
        &["terraform/variables.tf is not UTF-8 text"],
    ),
    (
        "symlink out of the folder",
        |d| std::os::unix::fs::symlink("/etc/passwd", d.join("terraform/passwd")).unwrap(),
        &["terraform/passwd is a symlink to '/etc/passwd', outside the driver folder"],
    ),
];

#[test]
fn every_broken_driver_is_in_error_with_its_reason() {
    for (case, breaks, words) in CASES {
        let home = Home::empty();
        let dir = home.add_driver("sim", "sim");
        breaks(&dir);
        let shown = home.run(&["--json", "driver", "show", "sim"]).ok().json();
        assert_eq!(shown["state"], "ERROR", "case {case:?}: {shown}");
        assert_eq!(shown["name"], "sim", "case {case:?}");
        let message = shown["error_msg"].as_str().unwrap_or_default();
        for word in *words {
            assert!(message.contains(word), "case {case:?}: error {message:?} lacks {word:?}");
        }
        // The state survives a restart, and using the driver is refused with the reason.
        home.run(&["provision", "validate", "sim"]).fails_with("driver 'sim' is in ERROR state");
        let listed = home.run(&["--json", "driver", "list"]).ok().json();
        assert_eq!(listed[0]["state"], "ERROR", "case {case:?}");
    }
}

#[test]
fn an_error_driver_stays_in_error_until_sync() {
    let home = Home::empty();
    let dir = home.add_driver("sim", "sim");
    let conf = fs::read(dir.join("driver.conf")).unwrap();
    remove(&dir, "driver.conf");
    assert_eq!(home.run(&["--json", "driver", "show", "sim"]).ok().json()["state"], "ERROR");

    fs::write(dir.join("driver.conf"), conf).unwrap();
    let still = home.run(&["--json", "driver", "show", "sim"]).ok().json();
    assert_eq!(still["state"], "ERROR", "OneForm keeps ERROR until sync");
    home.run(&["driver", "enable", "sim"]).fails_with("ERROR state");

    let report = home.run(&["--json", "driver", "sync"]).ok().json();
    assert_eq!(report["success"], serde_json::json!(["sim"]));
    assert_eq!(home.run(&["--json", "driver", "show", "sim"]).ok().json()["state"], "ENABLED");
}

#[test]
fn a_driver_that_breaks_while_enabled_turns_error() {
    let home = Home::empty();
    let dir = home.add_driver("sim", "sim");
    assert_eq!(home.run(&["--json", "driver", "show", "sim"]).ok().json()["state"], "ENABLED");
    remove(&dir, "ansible/site.yaml");
    let shown = home.run(&["--json", "driver", "show", "sim"]).ok().json();
    assert_eq!(shown["state"], "ERROR");
    assert!(shown["error_msg"].as_str().unwrap().contains("ansible/site.yaml is missing"));
}

#[test]
fn sync_reports_failures_and_exits_nonzero() {
    let home = Home::empty();
    home.add_driver("sim", "good");
    let bad = home.add_driver("sim", "bad");
    remove(&bad, "terraform/main.tf");
    let run = home.run(&["--json", "driver", "sync"]);
    assert_eq!(run.code(), 1);
    let report = run.json();
    assert_eq!(report["success"], serde_json::json!(["good"]));
    assert_eq!(report["failed"][0]["name"], "bad");
    assert!(report["failed"][0]["error"].as_str().unwrap().contains("terraform/main.tf is missing"));
    assert!(run.stderr().contains("1 of 2 drivers failed verification"));
}
