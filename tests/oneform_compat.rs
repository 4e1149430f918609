//! A driver folder written the way OneForm registry drivers are (tests/fixtures/registry),
//! loaded and compared field by field with what OneForm's `driver.rb` computes for it: input
//! order and keys, type text, default coercions, mandatory/sensitive, `match` from
//! validators.tf, deployment metadata, and `one_objects` with `{{ }}` replaced by null.

mod common;

use common::Home;
use serde_json::{Value, json};

fn acme(home: &Home) -> (Value, String) {
    let registry = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry");
    let registry = registry.to_str().unwrap().to_string();
    let shown = home.run(&["--drivers-dir", &registry, "--json", "driver", "show", "acme"]).ok().json();
    (shown, format!("{registry}/acme-registry/acme"))
}

#[test]
fn driver_body_is_what_oneform_computes() {
    let home = Home::empty();
    let (shown, path) = acme(&home);
    let expected = json!({
        "name": "Acme",
        "description": "Acme Cloud Provider",
        "state": "ENABLED",
        "registry": "acme-registry",
        "version": 1.2,
        "system_path": path,
        "fireedge": {
            "logo": "/fireedge/client/assets/images/providers/acme.png",
            "color": "FD6F8E",
            "operations": {"add-host": "amount", "del-host": "ids", "add-ip": "amount", "del-ip": "ids"},
            "layout": {"provider": ["oneform_hosts", "instance_type"], "network": ["cidr_block", "oneform_public_ips"]}
        },
        "connection": [
            {"name": "access_key", "description": "Acme access key", "type": "string", "mandatory": true, "sensitive": false},
            {"name": "secret_key", "description": "Acme secret key", "type": "string", "mandatory": true, "sensitive": true},
            {"name": "region", "description": "Acme region", "type": "string", "default": "eu-central", "mandatory": false, "sensitive": false,
             "match": {"type": "list", "values": ["eu-central", "us-west"]}}
        ],
        "user_inputs": [
            {"name": "oneform_hosts", "description": "Number of instances to create", "type": "number", "default": 2, "mandatory": false, "sensitive": false},
            {"name": "instance_type", "description": "Instance type", "type": "string", "default": "a1.large", "mandatory": false, "sensitive": false,
             "match": {"type": "list", "values": ["a1.large", "a1.xlarge"]}},
            {"name": "region", "description": "Region", "type": "string", "default": "eu-central", "mandatory": false, "sensitive": false,
             "match": {"type": "list", "values": ["eu-central", "us-west"]}},
            {"name": "zone", "description": "Zone inside the region", "type": "string", "default": "eu-central-1", "mandatory": false, "sensitive": false,
             "match": {"type": "map", "grouped_by": "region", "values": {"eu-central": ["eu-central-1", "eu-central-2"], "us-west": ["us-west-1"]}}},
            {"name": "enable_ha", "type": "bool", "default": true, "mandatory": false, "sensitive": false},
            {"name": "disk_size", "description": "Root disk size in GB\n", "type": "number", "default": 40, "mandatory": false, "sensitive": false,
             "match": {"type": "number", "values": {"min": 20}}},
            {"name": "labels", "type": "list(string)", "mandatory": true, "sensitive": false},
            {"name": "oneform_tags", "description": "Tags to assign to the resources", "type": "map(string)", "default": {}, "mandatory": false, "sensitive": false}
        ],
        "deployment_confs": [
            {
                "name": "Acme NFS Cluster",
                "description": "NFS shared storage",
                "inventory": "nfs_cluster",
                "user_inputs": [
                    {"name": "nfs_server", "type": "string", "sensitive": true},
                    {"name": "nfs_path", "type": "string", "default": "/export", "match": {"type": "string", "values": {"regex": "^/"}}}
                ],
                "template_path": format!("{path}/ansible/templates/nfs_cluster.j2"),
                "one_objects": {
                    "cluster": {}, "hosts": [],
                    "networks": [{"id": null, "name": "acme_net", "template": {"vn_mad": "bridge", "dns": "null"}}],
                    "datastores": [
                        {"id": null, "name": "acme_nfs_system", "template": {"type": "SYSTEM_DS", "tm_mad": "shared", "bridge_list": "null:null"}},
                        {"id": null, "name": "acme_nfs_image", "template": {"type": "IMAGE_DS", "ds_mad": "fs", "tm_mad": "shared"}}
                    ]
                }
            },
            {
                "name": "Acme SSH Cluster",
                "description": "<p>SSH datastores and an elastic network.</p>\n",
                "inventory": "ssh_cluster",
                "onedeploy_tags": "stage2,stage3",
                "user_inputs": [
                    {"name": "oneform_public_ips", "description": "Number of public IP addresses", "type": "number", "default": 0, "mandatory": false,
                     "match": {"type": "number", "values": {"min": 0, "max": 5}}}
                ],
                "template_path": format!("{path}/ansible/templates/ssh_cluster.j2"),
                "one_objects": {
                    "cluster": {}, "hosts": [],
                    "networks": [
                        {"id": null, "name": "private_acme_network", "template": {"vn_mad": "vxlan", "automatic_vlan_id": "yes", "guest_mtu": 1450,
                         "network_address": "172.17.2.0", "ar": {"type": "ip4", "ip": "172.17.2.100", "size": 100}}},
                        {"id": null, "name": "public_acme_network", "template": {"vn_mad": "elastic"}}
                    ],
                    "datastores": [
                        {"id": null, "name": "acme_system_ds", "template": {"type": "SYSTEM_DS", "tm_mad": "ssh", "safe_dirs": "/var/tmp /tmp"}}
                    ]
                }
            }
        ],
        // formwork's addition: what the driver supports, from fireedge.operations (OneForm's
        // server takes a host count and public IPs from any driver, so only add-host narrows).
        "capabilities": {"add-host": ["amount"], "del-host": ["ids", "amount"], "add-ip": ["amount"], "del-ip": ["ids"],
                         "scale-up-configures": "all-hosts"}
    });
    // Compare piece by piece first so a difference is easy to read, then the whole.
    for key in expected.as_object().unwrap().keys() {
        assert_eq!(shown[key], expected[key], "field {key} differs");
    }
    assert_eq!(shown, expected);
}

#[test]
fn values_are_checked_with_oneform_rules_and_messages() {
    let home = Home::empty();
    let registry = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry");
    let registry = registry.to_str().unwrap();
    let validate = |deployment: &str, values: &str| {
        let args =
            ["--drivers-dir", registry, "--json", "provision", "validate", "acme", "-d", deployment, "--values", "-"];
        home.run_with_stdin(&args, Some(values))
    };
    let bad = validate("SSH_CLUSTER", r#"{"region": "us-west", "labels": "a", "disk_size": 10, "enable_ha": "yes"}"#);
    assert_eq!(bad.code(), 1);
    assert_eq!(
        bad.json()["errors"],
        json!({
            "zone": ["invalid value 'eu-central-1' for 'zone', choose from: us-west-1."],
            "enable_ha": ["must be a boolean, not a string (\"yes\")"],
            "disk_size": ["invalid value '10' for 'disk_size', should be ≥ 20"],
            "labels": ["must be a list, not a string (\"a\")"]
        })
    );

    let good = validate("nfs_cluster", r#"{"labels": ["x"], "nfs_server": "10.0.0.5"}"#).ok().json();
    assert_eq!(good["user_inputs_values"]["nfs_server"], "__redacted__", "sensitive values never print");
    assert_eq!(good["user_inputs_values"]["oneform_hosts"], 2);
    assert_eq!(
        good["one_objects"]["datastores"][0]["template"]["bridge_list"], "__redacted__:/export",
        "substitution uses the values, and a sensitive one stays hidden"
    );
    assert_eq!(good["one_objects"]["networks"][0]["template"]["dns"], "null", "unknown inputs become null");
    let several = ["--drivers-dir", registry, "provision", "validate", "acme"];
    home.run(&several).fails_with("has several deployments (nfs_cluster, ssh_cluster); choose one with --deployment");
}
