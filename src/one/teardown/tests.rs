//! Teardown against [`FakeOne`]: a full create + deprovision leaves OpenNebula exactly as it
//! was; unmanaged children refuse an unforced teardown and are deleted by a forced one;
//! selections; objects already gone; a refusal by oned surfacing with its call; a retry after a
//! failure; and the hosts' force update.

use serde_json::json;

use super::*;
use crate::one::api::call;
use crate::one::fake::Snapshot;
use crate::one::testing::{Recorder, ctx, objects, wait};
use crate::one::{ChildKind, Code, FakeOne, configure, unmanaged};

/// A fake and the objects registered in it (two public IPs), with the fake's state before.
async fn provisioned(hosts: &[&str]) -> (FakeOne, OneObjects, Snapshot) {
    let fake = FakeOne::new();
    let start = fake.snapshot();
    let mut objects = objects(hosts);
    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut objects, 2, wait(), &mut rec.progress()).await.unwrap();
    fake.clear_calls();
    (fake, objects, start)
}

fn all_ids(objects: &OneObjects) -> Vec<Option<i64>> {
    Kind::CREATION_ORDER.iter().flat_map(|&k| objects.of(k).iter().map(|r| r.id)).collect()
}

#[tokio::test]
async fn create_then_deprovision_leaves_opennebula_exactly_as_it_started() {
    let (fake, mut objects, start) = provisioned(&["10.0.0.1", "10.0.0.2"]).await;
    assert_ne!(fake.snapshot(), start);
    let mut rec = Recorder::default();
    deprovision(&fake, &mut objects, &Selection::All, false, wait(), &mut rec.progress()).await.unwrap();

    assert_eq!(fake.snapshot(), start);
    assert!(all_ids(&objects).iter().all(Option::is_none));
    assert_eq!(
        rec.historic(),
        [
            "Host 0 deleted",
            "Host 1 deleted",
            "Network 0 deleted",
            "Network 1 deleted",
            "Datastore 100 deleted",
            "Datastore 101 deleted",
            "Cluster 100 deleted",
        ]
    );
    assert!(rec.logs().contains(&"Host '10.0.0.1' with ID '0' deleted".to_string()));
    let calls: Vec<&str> = fake.calls().iter().map(|c| c.call).collect();
    let first_delete = calls.iter().position(|c| *c == call::HOST_DELETE).unwrap();
    assert_eq!(calls.iter().filter(|c| **c == call::HOST_STATUS).count(), 2);
    assert!(
        calls[..first_delete].iter().filter(|c| **c == call::HOST_STATUS).count() == 2,
        "every host is disabled before the first deletion: {calls:?}"
    );
    assert_eq!(rec.last(), objects, "the last checkpoint has every id nulled");
}

/// A provision with a VM on host 0, a VM leasing from network 0 and an image in datastore 101;
/// returns their ids too.
async fn with_children() -> (FakeOne, OneObjects, [i64; 3]) {
    let (fake, objects, _) = provisioned(&["10.0.0.1", "10.0.0.2"]).await;
    let on_host = fake.add_vm("web", Some(0), &[]).unwrap();
    let leasing = fake.add_vm("db", None, &[0]).unwrap();
    let image = fake.add_image("disk", 101).unwrap();
    (fake, objects, [on_host, leasing, image])
}

#[tokio::test]
async fn unmanaged_children_refuse_an_unforced_teardown_before_anything_is_touched() {
    let (fake, mut objects, [on_host, leasing, image]) = with_children().await;
    let before = fake.snapshot();
    let mut rec = Recorder::default();
    let refused =
        deprovision(&fake, &mut objects, &Selection::All, false, wait(), &mut rec.progress()).await.unwrap_err();
    let Error::Unmanaged { unmanaged: found } = &refused else {
        panic!("expected the unmanaged map, got {refused}");
    };
    let expected = json!({"hosts": {"0": {"vm": [on_host]}}, "networks": {"0": {"vm": [leasing]}},
                          "datastores": {"101": {"image": [image]}}});
    assert_eq!(serde_json::to_value(found).unwrap(), expected);
    assert!(refused.to_string().contains("use the `force` option"), "{refused}");
    assert_eq!(fake.snapshot(), before, "nothing was touched, not even a host status");
    let line = "Unmanaged resource found: vm 0 in provision hosts".to_string();
    assert!(rec.logs().contains(&line));
    assert_eq!(objects.hosts[0].childs.as_ref().unwrap()["vm"], vec![on_host]);
    assert_eq!(unmanaged(&fake, &mut objects).await.unwrap(), *found);
}

#[tokio::test]
async fn a_forced_teardown_deletes_the_children_first() {
    let (fake, mut objects, [on_host, _, image]) = with_children().await;
    let mut rec = Recorder::default();
    deprovision(&fake, &mut objects, &Selection::All, true, wait(), &mut rec.progress()).await.unwrap();
    let historic = rec.historic();
    assert_eq!(historic[..4], ["Vm 0 deleted", "Host 0 deleted", "Host 1 deleted", "Vm 1 deleted"]);
    assert_eq!(historic[4], "Network 0 deleted");
    assert!(historic.contains(&"Image 0 deleted".to_string()));
    let parent = Event::ChildDeleted { kind: ChildKind::Image, id: image, parent: Kind::Datastore, parent_id: 101 };
    assert!(rec.events.contains(&parent));
    assert!(fake.vm_info(on_host).await.unwrap().is_done());
    assert!(fake.image_info(image).await.unwrap_err().is_no_exists());
    assert!(fake.cluster_info(100).await.unwrap_err().is_no_exists());
    assert!(all_ids(&objects).iter().all(Option::is_none));
}

#[tokio::test]
async fn selecting_one_host_deletes_only_that_host() {
    let (fake, mut objects, _) = provisioned(&["10.0.0.1", "10.0.0.2", "10.0.0.3"]).await;
    fake.add_vm("elsewhere", Some(0), &[]).unwrap();
    let mut rec = Recorder::default();
    deprovision(&fake, &mut objects, &Selection::hosts(vec![1]), false, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(rec.historic(), ["Host 1 deleted"]);
    assert_eq!(fake.count(call::HOST_STATUS), 1);
    assert_eq!(fake.count("one.*.delete"), 1);
    let ids: Vec<Option<i64>> = objects.hosts.iter().map(|h| h.id).collect();
    assert_eq!(ids, [Some(0), None, Some(2)]);
    assert_eq!(objects.cluster_id(), Some(100));

    let unknown =
        deprovision(&fake, &mut objects, &Selection::hosts(vec![1]), false, wait(), &mut rec.progress()).await;
    assert!(matches!(unknown, Err(Error::NotInProvision { kind: Kind::Host, id: 1, .. })));
}

#[test]
fn selections_come_from_the_request_and_refuse_unknown_types() {
    let read = |v: serde_json::Value| Selection::from_resources(v.as_object().unwrap());
    assert_eq!(read(json!({})).unwrap(), Selection::All);
    assert_eq!(
        read(json!({"hosts": ["1", 2], "datastores": []})).unwrap(),
        Selection::Only { hosts: vec![1, 2], networks: vec![], datastores: vec![] }
    );
    let invalid = read(json!({"hosts": [1], "force": true})).unwrap_err();
    assert!(matches!(&invalid, Error::InvalidResourceTypes { types } if types == &["force"]));
    assert!(invalid.to_string().contains("force"), "{invalid}");
    assert!(matches!(read(json!({"hosts": "x"})), Err(Error::InvalidSelection { .. })));
    assert!(matches!(read(json!({"networks": [true]})), Err(Error::InvalidSelection { .. })));
    assert!(!Selection::hosts(vec![1]).includes(Kind::Cluster, 100));
    assert!(Selection::All.includes(Kind::Cluster, 100));
}

#[tokio::test]
async fn a_cluster_oned_will_not_delete_fails_with_the_call_named() {
    let (fake, mut objects, _) = provisioned(&["10.0.0.1"]).await;
    let stray = fake.host_allocate("stray", "kvm", "kvm", 100).await.unwrap();
    let mut rec = Recorder::default();
    let error =
        deprovision(&fake, &mut objects, &Selection::All, false, wait(), &mut rec.progress()).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Action));
    assert_eq!(error.call(), Some(call::CLUSTER_DELETE));
    assert!(error.to_string().starts_with("one.cluster.delete on cluster 100 failed"), "{error}");
    assert!(error.to_string().contains(&format!("hosts [{stray}]")), "{error}");
    assert_eq!(rec.last().cluster_id(), Some(100));
    assert_eq!(rec.last().hosts[0].id, None, "what was deleted stays recorded as deleted");
}

#[tokio::test]
async fn objects_already_gone_are_skipped_and_nulled() {
    let (fake, mut objects, start) = provisioned(&["10.0.0.1", "10.0.0.2"]).await;
    fake.host_delete(0).await.unwrap();
    let mut rec = Recorder::default();
    deprovision(&fake, &mut objects, &Selection::All, false, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(rec.events[0], Event::Vanished { kind: Kind::Host, id: 0, name: "10.0.0.1".into() });
    assert!(rec.logs()[0].starts_with("Skipping deletion of Host '10.0.0.1' with ID '0'"));
    assert_eq!(rec.checkpoints[0].hosts[0].id, None, "nulled before it is reported");
    assert_eq!(rec.historic()[0], "Host 1 deleted");
    assert!(all_ids(&objects).iter().all(Option::is_none));
    assert_eq!(fake.snapshot(), start);
}

#[tokio::test]
async fn a_teardown_that_failed_half_way_finishes_on_retry() {
    let (fake, mut objects, start) = provisioned(&["10.0.0.1"]).await;
    fake.fail_nth(call::VN_DELETE, 2, Code::Locked);
    let mut rec = Recorder::default();
    let error =
        deprovision(&fake, &mut objects, &Selection::All, false, wait(), &mut rec.progress()).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Locked));
    let saved = rec.last();
    assert_eq!((saved.hosts[0].id, saved.networks[0].id, saved.networks[1].id), (None, None, Some(1)));

    let mut saved = saved;
    deprovision(&fake, &mut saved, &Selection::All, false, wait(), &mut Recorder::default().progress()).await.unwrap();
    assert_eq!(fake.snapshot(), start);
}

#[tokio::test]
async fn hosts_are_forced_offline_then_enabled() {
    let (fake, objects, _) = provisioned(&["10.0.0.1", "10.0.0.2"]).await;
    fake.host_status(1, crate::one::HostStatus::Disabled).await.unwrap();
    fake.clear_calls();
    let mut rec = Recorder::default();
    force_update_hosts(&fake, &objects, &mut rec.progress()).await.unwrap();
    assert_eq!(rec.logs(), ["Activating host 0...", "Activating host 1..."]);
    assert_eq!(fake.count(call::HOST_STATUS), 4);
    let host = fake.host_info(1).await.unwrap();
    assert_eq!(host.state, crate::one::Host::MONITORED);
}
