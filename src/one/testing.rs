//! Fixtures shared by the one module's tests: a provision context, `one_objects` as driver
//! extraction and the apply stage leave them, and a progress callback that records every event
//! and checkpoint.

use std::convert::Infallible;
use std::time::Duration;

use serde_json::json;

use super::{Context, Event, Historic, OneObjects, Wait};

pub(crate) fn ctx() -> Context {
    Context {
        provision_id: 7,
        provision_name: "Sim Cluster".into(),
        provider_id: 3,
        driver: "sim".into(),
        tags: json!({"team": "infra"}).as_object().unwrap().clone(),
    }
}

/// Two datastores (system, image), two networks (a vxlan one whose second AR has size 0, an
/// elastic one) and one host per IP, as the apply stage adds them.
pub(crate) fn objects(hosts: &[&str]) -> OneObjects {
    let hosts: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(i, ip)| json!({"id": null, "resource_id": format!("i-{}", i + 1), "name": ip}))
        .collect();
    OneObjects::from_value(json!({
        "cluster": {},
        "hosts": hosts,
        "networks": [
            {"id": null, "name": "private", "template": {"vn_mad": "vxlan",
                "ar": [{"type": "IP4", "ip": "10.0.0.10", "size": 10},
                       {"type": "IP4", "ip": "10.1.0.1", "size": 0}]}},
            {"id": null, "name": "public", "template": {"vn_mad": "elastic"}}
        ],
        "datastores": [
            {"id": null, "name": "sim_system", "template": {"type": "SYSTEM_DS", "tm_mad": "ssh"}},
            {"id": null, "name": "sim_image", "template": {"type": "IMAGE_DS", "ds_mad": "fs", "tm_mad": "ssh"}}
        ]
    }))
    .unwrap()
}

/// Waits that end quickly: the fake never makes anything wait.
pub(crate) fn wait() -> Wait {
    Wait { timeout: Duration::from_millis(200), interval: Duration::from_millis(10) }
}

/// Records what `progress` receives; `checkpoints[i]` is the objects handed with `events[i]`.
#[derive(Default)]
pub(crate) struct Recorder {
    pub events: Vec<Event>,
    pub checkpoints: Vec<OneObjects>,
}

impl Recorder {
    pub fn progress(&mut self) -> impl FnMut(&OneObjects, &Event) -> Result<(), Infallible> + '_ {
        move |objects: &OneObjects, event: &Event| {
            self.events.push(event.clone());
            self.checkpoints.push(objects.clone());
            Ok(())
        }
    }

    /// The historic descriptions, in order.
    pub fn historic(&self) -> Vec<String> {
        let entries = self.events.iter().filter_map(Event::historic);
        entries.map(|Historic { description, .. }| description).collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.events.iter().filter_map(Event::log).map(|l| l.message).collect()
    }

    pub fn last(&self) -> OneObjects {
        self.checkpoints.last().cloned().unwrap_or_default()
    }
}
