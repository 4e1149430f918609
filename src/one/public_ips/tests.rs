//! Public IPs against [`FakeOne`]: growing and shrinking the elastic network's ARs (newest
//! first, each one checkpointed), removing one by AR id, and what happens without (or with
//! two) elastic networks.

use serde_json::json;

use super::*;
use crate::one::testing::{Recorder, ctx, objects, wait};
use crate::one::{AddressRange, Error, FakeOne, configure};

#[tokio::test]
async fn public_ips_grow_and_shrink_newest_first() {
    let fake = FakeOne::new();
    let mut objects = objects(&["10.0.0.1"]);
    configure(&fake, &ctx(), &mut objects, 1, wait(), &mut Recorder::default().progress()).await.unwrap();
    let ar_ids = |o: &OneObjects| -> Vec<i64> {
        let ars = o.networks[1].template.as_ref().unwrap()["ar"].as_array().unwrap().clone();
        ars.iter().map(|a| a["ar_id"].as_i64().unwrap()).collect()
    };
    assert_eq!(ar_ids(&objects), [0]);

    let mut rec = Recorder::default();
    sync_public_ips(&fake, &ctx(), &mut objects, 3, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(ar_ids(&objects), [0, 1, 2]);
    let live = fake.vn_info(1).await.unwrap();
    let public_ip = |ar: &AddressRange| ar.size == 1 && ar.ipam_mad.as_deref() == Some("sim");
    assert!(live.ars.iter().all(public_ip), "{:?}", live.ars);
    assert!(matches!(rec.events[..], [Event::ArAdded { ar_id: 1, .. }, Event::ArAdded { ar_id: 2, .. }]));
    assert_eq!(ar_ids(&rec.checkpoints[0]), [0, 1], "each AR is checkpointed as it comes");

    let mut rec = Recorder::default();
    sync_public_ips(&fake, &ctx(), &mut objects, 1, wait(), &mut rec.progress()).await.unwrap();
    assert_eq!(rec.events, [Event::ArRemoved { network: 1, ar_id: 2 }, Event::ArRemoved { network: 1, ar_id: 1 }]);
    assert_eq!(ar_ids(&objects), [0]);
    assert_eq!(fake.vn_info(1).await.unwrap().ars.len(), 1);

    let unknown = remove_public_ip(&fake, &mut objects, 9, &mut Recorder::default().progress()).await;
    assert!(matches!(unknown, Err(Error::UnknownAr { network: 1, ar_id: 9 })));
    remove_public_ip(&fake, &mut objects, 0, &mut Recorder::default().progress()).await.unwrap();
    assert_eq!(ar_ids(&objects), Vec::<i64>::new());
}

#[tokio::test]
async fn without_an_elastic_network_ips_are_skipped_and_two_are_refused() {
    let fake = FakeOne::new();
    let mut plain = objects(&[]);
    plain.networks.truncate(1);
    configure(&fake, &ctx(), &mut plain, 2, wait(), &mut Recorder::default().progress()).await.unwrap();
    assert_eq!(fake.count(call::VN_ADD_AR), 0);
    let refused = sync_public_ips(&fake, &ctx(), &mut plain, 1, wait(), &mut Recorder::default().progress()).await;
    assert!(matches!(refused, Err(Error::NoElasticNetwork)));

    let fake = FakeOne::new();
    let mut two = objects(&[]);
    two.networks[0].template.as_mut().unwrap().insert("vn_mad".into(), json!("elastic"));
    let error = configure(&fake, &ctx(), &mut two, 0, wait(), &mut Recorder::default().progress()).await.unwrap_err();
    assert!(matches!(error, Error::MultipleElastic { .. }), "{error}");
    assert_eq!(fake.count("one.*.allocate"), 0);
}
