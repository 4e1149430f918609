//! Tests of the record operations against a real temporary cloud directory: allocation,
//! machine directories, in-place updates, deletion, injected failures and concurrent creation.

use super::*;

fn cloud() -> (tempfile::TempDir, Cloud) {
    let dir = tempfile::tempdir().unwrap();
    let cloud = Cloud::open(&dir.path().join("cloud")).unwrap();
    (dir, cloud)
}

fn spec(name: &str, cidr_block: &str) -> HostSpec {
    HostSpec {
        name: name.to_string(),
        instance_type: "small".to_string(),
        zone: Some("eu-west-1a".to_string()),
        cidr_block: cidr_block.to_string(),
        tags: Some(BTreeMap::from([("env".to_string(), "test".to_string())])),
    }
}

fn no_faults() -> Faults {
    Faults::default()
}

#[test]
fn hosts_get_the_lowest_free_address_a_record_and_a_machine() {
    let (_dir, cloud) = cloud();
    let a = create_host(&cloud, &no_faults(), spec("host-0", "10.10.0.0/24")).unwrap();
    let b = create_host(&cloud, &no_faults(), spec("host-1", "10.10.0.0/24")).unwrap();
    assert_eq!((a.ip.as_str(), b.ip.as_str()), ("10.10.0.1", "10.10.0.2"));
    assert_ne!(a.id, b.id);
    assert!(a.id.starts_with("h-") && a.id.len() == 10, "{}", a.id);
    assert!(cloud.machine_dir("10.10.0.1").is_dir() && cloud.machine_dir("10.10.0.2").is_dir());

    let on_disk: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cloud.root().join(format!("hosts/{}.json", a.id))).unwrap()).unwrap();
    assert_eq!(on_disk["name"], "host-0");
    assert_eq!(on_disk["ip"], "10.10.0.1");
    assert_eq!(on_disk["tags"]["env"], "test");
    assert!(on_disk["created_at"].as_str().unwrap().ends_with('Z'));

    // A freed address is reused, and a host of another block does not take from this one.
    delete_host(&cloud, &no_faults(), &a.id).unwrap();
    assert!(!cloud.machine_dir("10.10.0.1").exists());
    assert_eq!(cloud.read::<HostRecord>(Kind::Host, &a.id).unwrap(), None);
    let other = create_host(&cloud, &no_faults(), spec("host-9", "10.20.0.0/24")).unwrap();
    assert_eq!(other.ip, "10.20.0.1");
    let c = create_host(&cloud, &no_faults(), spec("host-2", "10.10.0.0/24")).unwrap();
    assert_eq!(c.ip, "10.10.0.1");
}

#[test]
fn a_full_block_and_a_bad_block_are_errors() {
    let (_dir, cloud) = cloud();
    create_host(&cloud, &no_faults(), spec("a", "10.0.0.0/30")).unwrap();
    create_host(&cloud, &no_faults(), spec("b", "10.0.0.0/30")).unwrap();
    let full = create_host(&cloud, &no_faults(), spec("c", "10.0.0.0/30")).unwrap_err();
    assert_eq!(full.to_string(), "sim: no free address left in 10.0.0.0/30");
    let bad = create_host(&cloud, &no_faults(), spec("d", "10.0.0/30")).unwrap_err();
    assert!(bad.to_string().contains("is not an IPv4 CIDR block"), "{bad}");
}

#[test]
fn updates_change_name_type_and_tags_only() {
    let (_dir, cloud) = cloud();
    let host = create_host(&cloud, &no_faults(), spec("host-0", "10.10.0.0/24")).unwrap();
    let mut changed = spec("renamed", "10.10.0.0/24");
    changed.instance_type = "large".to_string();
    changed.tags = None;
    let updated = update_host(&cloud, &host.id, changed).unwrap();
    assert_eq!((updated.name.as_str(), updated.instance_type.as_str(), &updated.tags), ("renamed", "large", &None));
    assert_eq!((&updated.ip, &updated.created_at), (&host.ip, &host.created_at));
    assert_eq!(cloud.read::<HostRecord>(Kind::Host, &host.id).unwrap(), Some(updated));

    let moved = update_host(&cloud, &host.id, spec("renamed", "10.30.0.0/24")).unwrap_err();
    assert!(moved.to_string().contains("cannot change in place"), "{moved}");
    let gone = update_host(&cloud, "h-00000000", spec("x", "10.10.0.0/24")).unwrap_err();
    assert_eq!(gone.to_string(), "sim: host h-00000000 does not exist");
}

#[test]
fn deleting_a_missing_host_is_not_an_error() {
    let (_dir, cloud) = cloud();
    delete_host(&cloud, &no_faults(), "h-00000000").unwrap();
}

#[test]
fn injected_failures_count_attempts_over_the_clouds_lifetime() {
    let (_dir, cloud) = cloud();
    let faults = Faults { fail_create_host: Some(2), ..Faults::default() };
    create_host(&cloud, &faults, spec("host-0", "10.10.0.0/24")).unwrap();
    let err = create_host(&cloud, &faults, spec("host-1", "10.10.0.0/24")).unwrap_err();
    assert_eq!(err.to_string(), "sim: creating host host-1 failed: injected failure (fail_create_host=2)");
    // Nothing was made by the failed attempt, and the retry (attempt 3) succeeds.
    assert_eq!(cloud.list::<HostRecord>(Kind::Host).unwrap().len(), 1);
    assert!(!cloud.machine_dir("10.10.0.2").exists());
    let retried = create_host(&cloud, &faults, spec("host-1", "10.10.0.0/24")).unwrap();
    assert_eq!(retried.ip, "10.10.0.2");

    // The counter lives in the cloud, so a new process (a new Cloud) keeps counting.
    let again = Cloud::open(cloud.root()).unwrap();
    let fourth = Faults { fail_create_host: Some(4), ..Faults::default() };
    assert!(create_host(&again, &fourth, spec("host-2", "10.10.0.0/24")).is_err());
}

#[test]
fn named_and_delete_failures() {
    let (_dir, cloud) = cloud();
    let named = Faults { fail_create_host_name: Some("host-1".to_string()), ..Faults::default() };
    create_host(&cloud, &named, spec("host-0", "10.10.0.0/24")).unwrap();
    assert!(create_host(&cloud, &named, spec("host-1", "10.10.0.0/24")).is_err());
    assert!(create_host(&cloud, &named, spec("host-1", "10.10.0.0/24")).is_err());

    let host = create_host(&cloud, &no_faults(), spec("host-2", "10.10.0.0/24")).unwrap();
    let no_delete = Faults { fail_delete_host: true, ..Faults::default() };
    let err = delete_host(&cloud, &no_delete, &host.id).unwrap_err();
    assert_eq!(err.to_string(), "sim: deleting host host-2 failed: injected failure (fail_delete_host=true)");
    assert!(cloud.read::<HostRecord>(Kind::Host, &host.id).unwrap().is_some());
    assert!(cloud.machine_dir(&host.ip).is_dir());
}

#[test]
fn a_stale_machine_directory_is_cleared_for_its_new_host() {
    let (_dir, cloud) = cloud();
    let stale = cloud.machine_dir("10.10.0.1");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("leftover"), "old").unwrap();
    let host = create_host(&cloud, &no_faults(), spec("host-0", "10.10.0.0/24")).unwrap();
    assert_eq!(host.ip, "10.10.0.1");
    assert!(stale.is_dir() && !stale.join("leftover").exists());
}

#[test]
fn concurrent_creations_never_share_an_address() {
    let (_dir, cloud) = cloud();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            // Each thread opens the cloud itself, as separate Terraform processes would.
            let root = cloud.root().to_path_buf();
            std::thread::spawn(move || {
                let cloud = Cloud::open(&root).unwrap();
                create_host(&cloud, &Faults::default(), spec(&format!("host-{i}"), "10.10.0.0/24")).unwrap().ip
            })
        })
        .collect();
    let mut ips: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    ips.sort_by_key(|ip| ip.parse::<Ipv4Addr>().unwrap());
    let expected: Vec<String> = (1..=8).map(|i| format!("10.10.0.{i}")).collect();
    assert_eq!(ips, expected);
}

#[test]
fn public_ips_come_from_the_public_block_and_need_an_existing_host() {
    let (_dir, cloud) = cloud();
    let host = create_host(&cloud, &no_faults(), spec("host-0", "10.10.0.0/24")).unwrap();
    let a = create_public_ip(&cloud, Some(host.id.clone()), None).unwrap();
    let b = create_public_ip(&cloud, None, None).unwrap();
    assert_eq!((a.address.as_str(), b.address.as_str()), ("198.51.100.1", "198.51.100.2"));
    assert!(a.id.starts_with("ip-"), "{}", a.id);
    let err = create_public_ip(&cloud, Some("h-00000000".to_string()), None).unwrap_err();
    assert_eq!(err.to_string(), "sim: host h-00000000 does not exist");

    let moved = update_public_ip(&cloud, &b.id, Some(host.id.clone()), None).unwrap();
    assert_eq!(moved.host_id.as_deref(), Some(host.id.as_str()));
    assert_eq!(moved.address, b.address);
    delete_public_ip(&cloud, &a.id).unwrap();
    delete_public_ip(&cloud, &a.id).unwrap();
    assert_eq!(create_public_ip(&cloud, None, None).unwrap().address, "198.51.100.1");
}
