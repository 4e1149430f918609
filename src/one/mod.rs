//! OpenNebula objects for the lifecycle: the typed calls formwork makes to oned ([`OneApi`]),
//! a provision's `one_objects` exactly as OneForm stores them ([`OneObjects`]), their
//! registration (the CONFIGURING_ONE core, [`configure()`]), public IPs on the elastic network
//! ([`public_ips`]), unmanaged children ([`unmanaged`]) and teardown (the DEPROVISIONING_ONE
//! core, [`deprovision`]), plus [`FakeOne`], the in-memory OpenNebula the tests run against.
//!
//! Invariants:
//! - every object created or adopted is reported through the caller's `progress` callback
//!   (which checkpoints) before the next OpenNebula call is made;
//! - an object without a recorded id is looked up by name before it is allocated, so a crash
//!   between two calls never allocates anything twice;
//! - nothing here parses XML: [`OneApi`] returns domain structs ([`api`]), whatever speaks
//!   XML-RPC behind it.

pub mod api;
pub mod children;
pub mod client;
pub mod configure;
mod dispatch;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod fake;
pub mod objects;
mod poll;
pub mod public_ips;
pub mod raw;
pub mod teardown;
pub mod template;
#[cfg(test)]
mod testing;
pub mod xmlrpc;

use std::fmt;
use std::time::Duration;

pub use api::{AddressRange, Cluster, Datastore, Host, HostStatus, Image, OneApi, Vm, Vnet};
pub use children::{Unmanaged, unmanaged};
pub use client::Client;
pub use configure::configure;
pub use endpoint::Endpoint;
pub use error::{Code, Error};
pub use event::{Context, Event, Historic, Level, Log};
pub use fake::FakeOne;
pub use objects::{OneObjects, Resource};
pub use public_ips::{refresh_ars, remove_public_ip, sync_public_ips};
pub use teardown::{Selection, deprovision, force_update_hosts};
pub use template::{Attribute, Template};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The OpenNebula object types a provision owns, in OneForm's creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Cluster,
    Datastore,
    Network,
    Host,
}

impl Kind {
    /// Creation order (`one_resources`); deletion runs it backwards.
    pub const CREATION_ORDER: [Kind; 4] = [Kind::Cluster, Kind::Datastore, Kind::Network, Kind::Host];

    /// OneForm's `resource_type.capitalize`, used in log lines and historic entries.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Cluster => "Cluster",
            Kind::Datastore => "Datastore",
            Kind::Network => "Network",
            Kind::Host => "Host",
        }
    }

    /// The `one_objects` key (and `resources` key of a deprovision request).
    pub fn collection(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::Datastore => "datastores",
            Kind::Network => "networks",
            Kind::Host => "hosts",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Cluster => "cluster",
            Kind::Datastore => "datastore",
            Kind::Network => "network",
            Kind::Host => "host",
        })
    }
}

/// Objects that are not the provision's but live inside its objects ("unmanaged").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChildKind {
    Vm,
    Image,
}

impl ChildKind {
    /// The key OneForm uses in `childs` and in the unmanaged map.
    pub fn key(self) -> &'static str {
        match self {
            ChildKind::Vm => "vm",
            ChildKind::Image => "image",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ChildKind::Vm => "Vm",
            ChildKind::Image => "Image",
        }
    }
}

/// How long to wait for OpenNebula to finish something asynchronous (an object to disappear
/// after delete, a vnet to be READY, a new address range to appear), and how often to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub timeout: Duration,
    pub interval: Duration,
}

impl Default for Wait {
    /// OneForm's values: 60 s, polled every 2 s.
    fn default() -> Wait {
        Wait { timeout: Duration::from_secs(60), interval: Duration::from_secs(2) }
    }
}
