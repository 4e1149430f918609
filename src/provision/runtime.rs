//! Everything a command needs to run provisions, assembled once from [`Settings`]: the
//! database, the driver catalogue, the tools, the OpenNebula endpoint and the runner.

use std::sync::Arc;
use std::time::Duration;

use crate::driver::Catalog;
use crate::engine::{Log, Runner, owner};
use crate::exec::{Masker, ProvisionLog};
use crate::one::{Client, Endpoint, FakeOne};
use crate::settings::Settings;
use crate::stages::{Real, Tools};
use crate::store::{self, Store};

/// The OpenNebula endpoint the stages talk to: oned or onesim over XML-RPC when `one_xmlrpc`
/// is set, otherwise the OpenNebula model of `one::FakeOne` saved after every call in the
/// data directory (`one-sim.json`), so objects outlive each run and each crash as in oned.
pub type OneEndpoint = Endpoint;

/// The grace period a stopped tool gets between SIGINT and SIGKILL.
const GRACE: Duration = Duration::from_secs(20);

pub struct Runtime {
    pub settings: Settings,
    pub store: Arc<Store>,
    pub catalog: Catalog,
    pub one: OneEndpoint,
}

impl Runtime {
    /// Opens the database (creating and migrating it), the catalogue, the OpenNebula endpoint,
    /// and makes sure the `onprem` provider exists.
    pub fn open(settings: Settings) -> Result<Runtime, super::Error> {
        let store = Arc::new(Store::open(&settings.database())?);
        let catalog = settings.catalog()?;
        crate::provider::ensure_onprem(&catalog, &store, store::now())
            .map_err(|e| super::Error::Refused(e.to_string()))?;
        let one = match &settings.one_xmlrpc {
            Some(url) => {
                let auth = settings.one_auth.clone().unwrap_or_default();
                let client = Client::from_auth_file(url, &auth, Default::default())
                    .map_err(|e| super::Error::Refused(format!("OpenNebula endpoint {url}: {e}")))?;
                Endpoint::Xmlrpc(Box::new(client))
            }
            None => Endpoint::Model(
                FakeOne::persistent(&settings.data_dir.join("one-sim.json"))
                    .map_err(|e| super::Error::Refused(format!("cannot read the OpenNebula model's state: {e}")))?,
            ),
        };
        Ok(Runtime { settings, store, catalog, one })
    }

    /// The runner for this process, with the real stages.
    pub fn runner(&self) -> Runner<Real<OneEndpoint>> {
        let settings = &self.settings;
        let tools = Tools {
            terraform: settings.terraform.clone(),
            ansible_playbook: settings.ansible_playbook.clone(),
            env: settings.child_env.clone(),
            plugin_cache: settings.data_dir.join("plugin-cache"),
            terraform_config: settings.terraform_config.clone(),
            stage_timeout: settings.stage_timeout,
            grace: GRACE,
            lock_timeout: settings.lock_timeout,
        };
        let stages = Real {
            catalog: self.catalog.clone(),
            tools,
            work_root: settings.work_root(),
            one: self.one.clone(),
            frontend_ip: self.frontend_ip(),
            shared_roles: settings.shared_roles.clone(),
        };
        let fault = settings.crash_at.as_deref().and_then(crate::engine::Fault::parse);
        Runner { store: Arc::clone(&self.store), stages, owner: owner::current(), clock: store::now, fault }
    }

    /// The host of the XML-RPC endpoint (OneForm's `one_server`); 127.0.0.1 for the model.
    fn frontend_ip(&self) -> String {
        let uri = self.settings.one_xmlrpc.as_deref().and_then(|url| url.parse::<hyper::Uri>().ok());
        uri.and_then(|u| u.host().map(str::to_owned)).unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    /// Opens a provision's log with every secret it may see masked.
    pub fn log(&self, provision_id: i64) -> Result<ProvisionLog, super::Error> {
        let row = self.store.provision(provision_id)?;
        let provider = self.store.provider(row.provider_id)?;
        let mut secrets = crate::provider::connection(&provider).1;
        secrets.extend(crate::stages::sensitive_values(&row.body));
        ProvisionLog::open(&self.settings.log_path(provision_id), Masker::new(secrets))
            .map_err(|e| super::Error::Refused(e.to_string()))
    }
}

impl Log for ProvisionLog {
    fn position(&self) -> u64 {
        ProvisionLog::position(self)
    }
}
