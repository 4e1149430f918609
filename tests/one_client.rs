//! The XML-RPC client against onesim over real HTTP: a provision's OpenNebula objects are
//! registered (configure) and torn down (deprovision) through `one::Client`, and what the
//! client reads back matches what onesim holds.

use std::convert::Infallible;
use std::time::Duration;

use formwork::one::client::Options;
use formwork::one::{Client, Context, Error, Event, OneApi, OneObjects, Selection, Wait, configure, deprovision};
use formwork::onesim::{Sim, serve};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const PASSWORD: &str = "s3cret-pa55";

/// onesim on 127.0.0.1:0 until the returned sender is dropped or fired.
async fn onesim(sim: Sim) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/RPC2", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, sim, async move {
        let _ = stopped.await;
    }));
    (endpoint, stop, server)
}

fn ctx() -> Context {
    Context {
        provision_id: 7,
        provision_name: "Sim Cluster".into(),
        provider_id: 3,
        driver: "sim".into(),
        tags: json!({"team": "infra"}).as_object().unwrap().clone(),
    }
}

fn objects() -> OneObjects {
    OneObjects::from_value(json!({
        "cluster": {},
        "hosts": [{"id": null, "resource_id": "i-1", "name": "10.0.0.5"},
                  {"id": null, "resource_id": "i-2", "name": "10.0.0.6"}],
        "networks": [
            {"id": null, "name": "private", "template": {"vn_mad": "vxlan",
                "ar": [{"type": "IP4", "ip": "10.0.0.10", "size": 10}]}},
            {"id": null, "name": "public", "template": {"vn_mad": "elastic"}}
        ],
        "datastores": [
            {"id": null, "name": "sim_system", "template": {"type": "SYSTEM_DS", "tm_mad": "ssh"}},
            {"id": null, "name": "sim_image", "template": {"type": "IMAGE_DS", "ds_mad": "fs", "tm_mad": "ssh"}}
        ]
    }))
    .unwrap()
}

fn wait() -> Wait {
    Wait { timeout: Duration::from_secs(10), interval: Duration::from_millis(10) }
}

fn ids(resources: &[formwork::one::Resource]) -> Vec<i64> {
    resources.iter().map(|r| r.id.expect("registered")).collect()
}

#[tokio::test]
async fn configure_then_deprovision_through_xml_rpc() {
    let (endpoint, stop, server) = onesim(Sim::new(formwork::one::FakeOne::new(), PASSWORD)).await;
    let client = Client::new(&endpoint, format!("oneadmin:{PASSWORD}"), Options::default()).unwrap();
    assert_eq!(client.user_info().await.unwrap().name, "oneadmin");
    assert!(!client.system_version().await.unwrap().is_empty());

    let (mut objects, mut events) = (objects(), Vec::new());
    let mut progress = |_: &OneObjects, event: &Event| -> Result<(), Infallible> {
        events.push(event.clone());
        Ok(())
    };
    configure(&client, &ctx(), &mut objects, 1, wait(), &mut progress).await.unwrap();
    let cluster_id = objects.cluster.as_ref().and_then(|c| c.id).expect("the cluster is registered");
    let cluster = client.cluster_info(cluster_id).await.unwrap();
    assert_eq!(cluster.hosts, ids(&objects.hosts));
    assert_eq!(cluster.vnets, ids(&objects.networks));
    assert_eq!(cluster.datastores, ids(&objects.datastores));
    let tag = cluster.template.vector("ONEFORM").expect("the cluster is tagged");
    assert!(tag.contains(&("PROVISION_ID".to_owned(), "7".to_owned())), "{tag:?}");
    let public = client.vn_by_name(objects.networks[1].name.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(public.vn_mad, "elastic");
    assert_eq!(client.vn_info(public.id).await.unwrap().ars.len(), 1, "one public IP was asked for");

    let registered = objects.clone();
    configure(&client, &ctx(), &mut objects, 1, wait(), &mut progress).await.unwrap();
    assert_eq!(objects, registered, "a second configure finds everything and allocates nothing");

    deprovision(&client, &mut objects, &Selection::All, false, wait(), &mut progress).await.unwrap();
    assert!(client.cluster_info(cluster_id).await.unwrap_err().is_no_exists());
    for host in ids(&registered.hosts) {
        assert!(client.host_info(host).await.unwrap_err().is_no_exists());
    }
    assert!(client.cluster_by_name(&cluster.name).await.unwrap().is_none());
    assert!(!events.is_empty());

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_wrong_password_is_an_authentication_error_without_the_session() {
    let (endpoint, stop, server) = onesim(Sim::new(formwork::one::FakeOne::new(), PASSWORD)).await;
    let client = Client::new(&endpoint, "oneadmin:wrong-guess".to_owned(), Options::default()).unwrap();
    let error = client.cluster_info(0).await.unwrap_err();
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");
    assert!(!error.to_string().contains("wrong-guess"), "{error}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
