//! Registration against [`FakeOne`]: order, names and tags; idempotence (a second run, a
//! retry after a failed call, a crash between a call and its checkpoint, objects deleted out of
//! band); and the Send bound every stage relies on. Public IPs are tested in `public_ips`.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::one::api::call;
use crate::one::testing::{Recorder, ctx, objects, wait};
use crate::one::{Code, FakeOne, Template, deprovision, teardown::Selection};

fn oneform(template: &Template) -> Vec<(String, String)> {
    template.vector("ONEFORM").expect("ONEFORM tags").to_vec()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Successful allocations, by the object named, with how many times each happened.
fn allocations(fake: &FakeOne) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for c in fake.calls() {
        if c.call.ends_with(".allocate") && !c.failed {
            *seen.entry(c.object).or_insert(0) += 1;
        }
    }
    seen
}

/// Two hosts registered with two public IPs; the second host brings its own drivers.
async fn configured() -> (FakeOne, OneObjects, Recorder) {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1", "10.0.0.2"]);
    let drivers = json!({"im_mad": "dummy", "vmm_mad": "dummy"});
    objects.hosts[1].template = drivers.as_object().cloned();
    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut objects, 2, wait(), &mut rec.progress()).await.unwrap();
    (fake, objects, rec)
}

const TAGS: [(&str, &str); 4] = [("PROVISION_ID", "7"), ("PROVIDER_ID", "3"), ("DRIVER", "sim"), ("TEAM", "infra")];

#[tokio::test]
async fn a_full_run_creates_cluster_datastores_networks_then_hosts() {
    let (fake, objects, rec) = configured().await;
    let allocated: Vec<String> = fake
        .calls()
        .into_iter()
        .filter(|c| c.call.ends_with(".allocate"))
        .map(|c| format!("{} {}", c.call, c.object))
        .collect();
    assert_eq!(
        allocated,
        [
            "one.cluster.allocate cluster 'Sim Cluster (provision_7)'",
            "one.datastore.allocate datastore 'sim_system (provision_7)'",
            "one.datastore.allocate datastore 'sim_image (provision_7)'",
            "one.vn.allocate network 'private (provision_7)'",
            "one.vn.allocate network 'public (provision_7)'",
            "one.host.allocate host '10.0.0.1'",
            "one.host.allocate host '10.0.0.2'",
        ]
    );
    assert_eq!(
        rec.historic(),
        [
            "Cluster 100 created",
            "Datastore 100 created",
            "Datastore 101 created",
            "Network 0 created",
            "Network 1 created",
            "Host 0 created",
            "Host 1 created",
        ]
    );
    let line = "Cluster 'Sim Cluster (provision_7)' created with ID '100'";
    assert!(rec.logs().contains(&line.to_string()));
    assert_eq!(rec.events.last(), Some(&Event::Refreshed));
    assert_eq!(rec.last(), objects, "the final state was checkpointed");
    let cluster = fake.cluster_info(100).await.unwrap();
    let members = (cluster.hosts, cluster.datastores, cluster.vnets);
    assert_eq!(members, (vec![0, 1], vec![100, 101], vec![0, 1]));
}

#[tokio::test]
async fn objects_carry_oneforms_tags_templates_and_drivers() {
    let (fake, objects, _) = configured().await;
    let cluster = fake.cluster_info(100).await.unwrap();
    assert_eq!(oneform(&cluster.template), pairs(&TAGS));
    let host = fake.host_info(0).await.unwrap();
    let mut host_tags = TAGS.to_vec();
    host_tags.push(("RESOURCE_ID", "i-1"));
    assert_eq!(oneform(&host.template), pairs(&host_tags));
    assert_eq!((host.im_mad.as_str(), host.vm_mad.as_str()), ("kvm", "kvm"));
    let custom = fake.host_info(1).await.unwrap();
    assert_eq!((custom.im_mad.as_str(), custom.vm_mad.as_str()), ("dummy", "dummy"));
    let ds = fake.datastore_info(100).await.unwrap();
    assert_eq!(ds.template.single("TYPE"), Some("SYSTEM_DS"));
    assert_eq!(oneform(&ds.template), pairs(&TAGS));
    let private = fake.vn_info(0).await.unwrap();
    assert_eq!(private.ars.len(), 1, "the size-0 AR is dropped");
    assert_eq!(oneform(&private.template), pairs(&TAGS));

    let value = objects.to_value();
    let cluster = json!({"id": 100, "name": "Sim Cluster (provision_7)"});
    assert_eq!(value["cluster"], cluster);
    let host = json!({"id": 0, "name": "10.0.0.1", "resource_id": "i-1", "childs": {}});
    assert_eq!(value["hosts"][0], host);
    let public = fake.vn_info(1).await.unwrap();
    assert_eq!(public.ars.len(), 2);
    let ars: Vec<_> =
        public.ars.iter().map(|ar| json!({"ipam": "sim", "ar_id": ar.ar_id, "ip": ar.external_ip})).collect();
    assert_eq!(value["networks"][1]["template"]["ar"], json!(ars));
}

#[tokio::test]
async fn a_second_run_creates_nothing() {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1", "10.0.0.2"]);
    configure(&fake, &ctx(), &mut objects, 1, wait(), &mut Recorder::default().progress()).await.unwrap();
    let first = objects.clone();
    let before = fake.snapshot();
    fake.clear_calls();

    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut objects, 1, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(fake.count("one.*.allocate"), 0);
    assert_eq!(fake.count("one.*.update"), 0);
    assert_eq!(fake.count(call::VN_ADD_AR) + fake.count(call::VN_RM_AR), 0);
    assert_eq!(rec.events, [Event::Refreshed]);
    assert_eq!(objects, first);
    assert_eq!(fake.snapshot(), before);
}

/// A first run whose third allocation (datastore 'sim_image') fails: the fake, the objects as
/// they were before it, and the last checkpoint it made.
async fn failed_first_run() -> (FakeOne, OneObjects, OneObjects) {
    let fake = FakeOne::new();
    let original = objects(&["10.0.0.1"]);
    fake.fail_nth("one.*.allocate", 3, Code::Internal);
    let mut objects = original.clone();
    let mut rec = Recorder::default();
    let error = configure(&fake, &ctx(), &mut objects, 1, wait(), &mut rec.progress()).await.unwrap_err();
    assert_eq!(error.call(), Some(call::DATASTORE_ALLOCATE));
    let named = "datastore 'sim_image (provision_7)'";
    assert!(error.to_string().contains(named), "{error}");
    (fake, original, rec.last())
}

#[tokio::test]
async fn a_failed_allocation_keeps_what_was_made_recorded() {
    let (_, _, saved) = failed_first_run().await;
    assert_eq!(saved.cluster_id(), Some(100));
    assert_eq!(saved.datastores[0].id, Some(100));
    assert_eq!(saved.datastores[1].id, None);
}

#[tokio::test]
async fn a_retry_without_the_checkpoint_adopts_by_name_and_creates_the_rest() {
    let (fake, original, saved) = failed_first_run().await;
    let mut objects = original;
    let mut retry = Recorder::default();
    configure(&fake, &ctx(), &mut objects, 1, wait(), &mut retry.progress()).await.unwrap();
    assert_eq!(
        retry.logs()[..3],
        [
            "Cluster 'Sim Cluster (provision_7)' added from ID '100'",
            "Datastore 'sim_system (provision_7)' added from ID '100'",
            "Datastore 'sim_image (provision_7)' created with ID '101'",
        ]
    );
    let made = allocations(&fake);
    assert!(made.values().all(|&n| n == 1), "{made:?}");
    assert_eq!(made.len(), 6);

    // Retrying from the checkpoint instead ends in the same place, allocating nothing more.
    let mut again = saved;
    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut again, 1, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(again, objects);
    assert_eq!(allocations(&fake), made);
}

#[tokio::test]
async fn a_crash_between_allocation_and_checkpoint_never_allocates_twice() {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1"]);
    let mut saved = objects.clone();
    let mut seen = 0;
    // The 4th checkpoint (network 'private' created) fails, as if the process died right after
    // one.vn.allocate answered.
    let mut crashing = |current: &OneObjects, _: &Event| {
        seen += 1;
        if seen == 4 {
            return Err(std::io::Error::other("disk full"));
        }
        saved = current.clone();
        Ok(())
    };
    let error = configure(&fake, &ctx(), &mut objects, 0, wait(), &mut crashing).await.unwrap_err();
    assert!(matches!(error, Error::Checkpoint { .. }), "{error}");
    assert!(error.to_string().contains("Network 'private (provision_7)' created with ID '0'"), "{error}");
    assert_eq!(saved.networks[0].id, None);

    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut saved, 0, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(rec.events[0], Event::Adopted { kind: Kind::Network, id: 0, name: "private (provision_7)".into() });
    assert!(allocations(&fake).values().all(|&n| n == 1), "{:?}", allocations(&fake));
    assert_eq!(fake.count(call::VN_ALLOCATE), 2);
}

#[tokio::test]
async fn objects_gone_out_of_band_are_adopted_by_name_or_allocated_again() {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1", "10.0.0.2"]);
    configure(&fake, &ctx(), &mut objects, 0, wait(), &mut Recorder::default().progress()).await.unwrap();
    fake.vn_delete(0).await.unwrap();
    objects.hosts[1].id = Some(99); // a stale id: the host itself is still there, as 1

    let mut rec = Recorder::default();
    configure(&fake, &ctx(), &mut objects, 0, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(rec.historic(), ["Network 2 created"]);
    assert!(rec.events.contains(&Event::Adopted { kind: Kind::Host, id: 1, name: "10.0.0.2".into() }));
    assert_eq!((objects.networks[0].id, objects.hosts[1].id), (Some(2), Some(1)));
    assert_eq!(fake.vn_info(2).await.unwrap().name, "private (provision_7)");
}

#[tokio::test]
async fn tags_missed_by_a_failed_update_are_written_on_retry() {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1"]);
    fake.fail_nth(call::HOST_UPDATE, 1, Code::Internal);
    let mut rec = Recorder::default();
    let error = configure(&fake, &ctx(), &mut objects, 0, wait(), &mut rec.progress()).await.unwrap_err();
    assert_eq!(error.call(), Some(call::HOST_UPDATE));
    assert_eq!(rec.last().hosts[0].id, Some(0), "the host was checkpointed before its update");
    assert!(fake.host_info(0).await.unwrap().template.vector("ONEFORM").is_none());

    let mut retry = Recorder::default();
    configure(&fake, &ctx(), &mut rec.last(), 0, wait(), &mut retry.progress()).await.unwrap();
    assert!(retry.events.contains(&Event::Tagged { kind: Kind::Host, id: 0, name: "10.0.0.1".into() }));
    assert!(fake.host_info(0).await.unwrap().template.vector("ONEFORM").is_some());
    assert_eq!(fake.count(call::HOST_ALLOCATE), 1);
}

#[test]
fn names_follow_oneforms_rule() {
    let ctx = ctx();
    let mut unnamed = Resource::default();
    assert_eq!(resolve_name(&mut unnamed, Kind::Cluster, &ctx), "Sim Cluster (provision_7)");
    assert_eq!(unnamed.name.as_deref(), Some("Sim Cluster (provision_7)"));
    let mut done = Resource { name: Some("net (provision_7)".into()), ..Resource::default() };
    assert_eq!(resolve_name(&mut done, Kind::Network, &ctx), "net (provision_7)");
    let mut other = Resource { name: Some("net (provision_8)".into()), ..Resource::default() };
    assert_eq!(resolve_name(&mut other, Kind::Datastore, &ctx), "net (provision_8) (provision_7)");
    let mut host = Resource { name: Some("10.0.0.1".into()), ..Resource::default() };
    assert_eq!(resolve_name(&mut host, Kind::Host, &ctx), "10.0.0.1");
    assert_eq!(resolve_name(&mut Resource::default(), Kind::Host, &ctx), "Sim Cluster");
}

#[test]
fn the_operations_are_send_so_stages_can_spawn_them() {
    fn assert_send<T: Send>(_: &T) {}
    let fake = FakeOne::new();
    let ctx = ctx();
    let mut objects = objects(&["10.0.0.1"]);
    let mut rec = Recorder::default();
    let mut progress = rec.progress();
    let future = configure(&fake, &ctx, &mut objects, 1, wait(), &mut progress);
    assert_send(&future);
    drop(future);
    let future = deprovision(&fake, &mut objects, &Selection::All, true, wait(), &mut progress);
    assert_send(&future);
}
