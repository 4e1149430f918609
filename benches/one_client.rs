//! Benchmark of the OpenNebula XML-RPC client against onesim (issue 4): calls per second over
//! one keep-alive connection (a read and a write), and the time to register and to remove a
//! 100-host provision (cluster, 2 datastores, 2 networks, 100 hosts, 2 public-IP ranges).
//! onesim runs in this process on 127.0.0.1, in memory, without faults. Run with
//! `cargo bench --bench one_client`; results in docs/benchmarks.md.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use formwork::one::{self, Client, Context, Event, OneApi, OneObjects, Selection, Wait};
use formwork::onesim::{self, Options, Sim};
use serde_json::json;

const ROUNDS: usize = 5;
const CALLS: usize = 5_000;
const HOSTS: usize = 100;

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let endpoint = format!("http://{}/RPC2", listener.local_addr().expect("bound address"));
    let options = Options { password: "pw".into(), ..Options::default() };
    let sim = Sim::open(&options).expect("onesim opens in memory");
    tokio::spawn(onesim::serve(listener, sim, std::future::pending::<()>()));
    let client = Client::new(&endpoint, "oneadmin:pw".into(), Default::default()).expect("client");

    let cluster = client.cluster_allocate("bench").await.expect("cluster");
    let reads = median(ROUNDS, || async {
        let start = Instant::now();
        for _ in 0..CALLS {
            client.cluster_info(cluster).await.expect("cluster info");
        }
        start.elapsed()
    })
    .await;
    let writes = median(ROUNDS, || async {
        let start = Instant::now();
        for _ in 0..CALLS {
            client.cluster_update(cluster, "NOTE=\"bench\"").await.expect("cluster update");
        }
        start.elapsed()
    })
    .await;
    client.cluster_delete(cluster).await.expect("cluster delete");
    println!("one.cluster.info:   {:>8.0} calls/s ({CALLS} calls, median of {ROUNDS})", rate(reads));
    println!("one.cluster.update: {:>8.0} calls/s ({CALLS} calls, median of {ROUNDS})", rate(writes));

    let mut register = Vec::new();
    let mut remove = Vec::new();
    for round in 0..ROUNDS {
        let ctx = Context {
            provision_id: round as i64 + 1,
            provision_name: "Bench".into(),
            provider_id: 1,
            driver: "sim".into(),
            tags: Default::default(),
        };
        let mut objects = provision(HOSTS);
        let wait = Wait { timeout: Duration::from_secs(10), interval: Duration::from_millis(10) };
        let start = Instant::now();
        one::configure(&client, &ctx, &mut objects, 2, wait, &mut ignore).await.expect("register");
        register.push(start.elapsed());
        assert_eq!(objects.hosts.iter().filter(|h| h.id.is_some()).count(), HOSTS);
        let start = Instant::now();
        one::deprovision(&client, &mut objects, &Selection::All, false, wait, &mut ignore).await.expect("remove");
        remove.push(start.elapsed());
    }
    register.sort();
    remove.sort();
    println!("register {HOSTS}-host provision: {:>8.1} ms (median of {ROUNDS})", ms(register[ROUNDS / 2]));
    println!("remove   {HOSTS}-host provision: {:>8.1} ms (median of {ROUNDS})", ms(remove[ROUNDS / 2]));
}

fn ignore(_: &OneObjects, _: &Event) -> Result<(), Infallible> {
    Ok(())
}

/// `one_objects` as the apply stage leaves them for `hosts` hosts.
fn provision(hosts: usize) -> OneObjects {
    let hosts: Vec<_> = (0..hosts)
        .map(|i| json!({"id": null, "resource_id": format!("i-{i}"), "name": format!("10.9.{}.{}", i / 250, i % 250 + 1)}))
        .collect();
    OneObjects::from_value(json!({
        "cluster": {},
        "hosts": hosts,
        "networks": [
            {"id": null, "name": "private", "template": {"vn_mad": "vxlan",
                "ar": [{"type": "IP4", "ip": "10.0.0.10", "size": 100}]}},
            {"id": null, "name": "public", "template": {"vn_mad": "elastic"}}
        ],
        "datastores": [
            {"id": null, "name": "system", "template": {"type": "SYSTEM_DS", "tm_mad": "ssh"}},
            {"id": null, "name": "image", "template": {"type": "IMAGE_DS", "ds_mad": "fs", "tm_mad": "ssh"}}
        ]
    }))
    .expect("valid one_objects")
}

async fn median<F, Fut>(rounds: usize, mut run: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        times.push(run().await);
    }
    times.sort();
    times[rounds / 2]
}

fn rate(elapsed: Duration) -> f64 {
    CALLS as f64 / elapsed.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
