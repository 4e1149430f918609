//! Providers and provisions as a given caller may see and change them: each comes back as a
//! [`Document`] (the served body with its owner, group and permission bits, which the API
//! wraps in OneForm's `DOCUMENT`), filtered and checked by [`Caller::may`]; chmod, chown and
//! chgrp change the bits and owners. Every service method that reads or changes a provider or
//! a provision checks its caller here ([`Service::may`]).
//!
//! What needs which right: reading needs USE, sensitive values in clear and changes MANAGE
//! (changes also the oneadmin group), chown/chgrp and the admin bits ADMIN. A provider embedded
//! in a provision (`include_provider`) is served as the provider itself would be to the caller:
//! only with USE on it — without, the provision keeps its `provider_id`, as when the provider
//! is not asked for — and its sensitive values only with MANAGE on it, whatever the caller may
//! do with the provision.

use serde_json::Value;

use super::access::{Caller, Kind, Mode, Ownership, Right};
use super::providers::{self, NewProvider};
use super::provisions::serve;
use super::{Error, Service};
use crate::store::{ProviderRow, ProvisionRow};

/// Rows read at once by a listing.
const PAGE: usize = 100;

/// A provider or provision as served: its body (OneForm's PROVIDER_BODY / PROVISION_BODY)
/// with its owner and permission bits.
#[derive(Debug, Clone)]
pub struct Document {
    pub kind: Kind,
    pub id: i64,
    pub name: String,
    pub owner: Ownership,
    pub body: Value,
}

/// What a provision read asks for beyond the body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    /// Sensitive values in clear (needs MANAGE on the object).
    pub sensitive: bool,
    /// The provider's body embedded as `provider` (in place of `provider_id`).
    pub provider: bool,
}

/// The refusal for an object the caller may not see or change.
fn refused(caller: &Caller, kind: Kind, id: i64, right: Right) -> Error {
    let what = match right {
        Right::Use => "use",
        Right::Manage => "manage",
        Right::Admin => "administer",
    };
    Error::Forbidden {
        message: format!(
            "user '{}' may not {what} {} {id}: its permissions do not allow it (ask its owner or a oneadmin to chmod or chown it)",
            caller.uname,
            kind.noun()
        ),
    }
}

fn check(caller: &Caller, kind: Kind, id: i64, owner: &Ownership, right: Right) -> Result<(), Error> {
    if caller.may(right, kind, id, owner) { Ok(()) } else { Err(refused(caller, kind, id, right)) }
}

/// Reading secrets needs MANAGE, as changing the object does.
fn sensitive_right(include_sensitive: bool) -> Right {
    if include_sensitive { Right::Manage } else { Right::Use }
}

impl Service {
    fn provider_document(row: &ProviderRow, include_sensitive: bool) -> Document {
        Document {
            kind: Kind::Provider,
            id: row.id,
            name: row.name.clone(),
            owner: row.owner.clone(),
            body: providers::serve(row, include_sensitive),
        }
    }

    /// Providers the caller may use.
    pub fn providers_for(&self, caller: &Caller, include_sensitive: bool) -> Result<Vec<Document>, Error> {
        let rows = self.store.providers()?;
        let may = |row: &ProviderRow, right| caller.may(right, Kind::Provider, row.id, &row.owner);
        let visible = rows.iter().filter(|r| may(r, Right::Use));
        Ok(visible.map(|r| Self::provider_document(r, include_sensitive && may(r, Right::Manage))).collect())
    }

    pub fn provider_for(&self, caller: &Caller, id: i64, include_sensitive: bool) -> Result<Document, Error> {
        let row = self.store.provider(id)?;
        check(caller, Kind::Provider, id, &row.owner, sensitive_right(include_sensitive))?;
        Ok(Self::provider_document(&row, include_sensitive))
    }

    /// Creates a provider owned by the caller (who must be an admin, as in OneForm).
    pub fn create_provider_for(&self, caller: &Caller, new: &NewProvider) -> Result<Document, Error> {
        caller.must_be_admin()?;
        let row =
            providers::create_owned(&self.catalog, &self.store, new, &Ownership::of(caller), crate::store::now())?;
        Ok(Self::provider_document(&row, false))
    }

    /// A provider's driver folder (OneForm's `GET /providers/:id/path`, read by IPAM scripts).
    pub fn provider_path(&self, caller: &Caller, id: i64) -> Result<std::path::PathBuf, Error> {
        let row = self.store.provider(id)?;
        check(caller, Kind::Provider, id, &row.owner, Right::Use)?;
        Ok(match self.catalog.load(&row.driver)? {
            crate::driver::Loaded::Ready(driver) => driver.system_path,
            crate::driver::Loaded::Broken(broken) => broken.system_path,
        })
    }

    /// A provision as `caller` may see it; `include.sensitive` was checked against the
    /// provision already, the embedded provider is checked here (see the module's rule).
    fn provision_document(&self, caller: &Caller, row: &ProvisionRow, include: Include) -> Result<Document, Error> {
        let mut body = serve(row, &self.store.historic(row.id)?, include.sensitive);
        if include.provider
            && let Value::Object(fields) = &mut body
        {
            let provider = self.store.provider(row.provider_id)?;
            let may = |right| caller.may(right, Kind::Provider, provider.id, &provider.owner);
            if may(Right::Use) {
                fields.shift_remove("provider_id");
                fields.insert("provider".into(), providers::serve(&provider, include.sensitive && may(Right::Manage)));
            }
        }
        Ok(Document { kind: Kind::Provision, id: row.id, name: row.name.clone(), owner: row.owner.clone(), body })
    }

    /// Provisions the caller may use, DONE ones only with `all`.
    pub fn provisions_for(&self, caller: &Caller, all: bool, include: Include) -> Result<Vec<Document>, Error> {
        let mut out = Vec::new();
        self.each_provision_for(caller, all, include, |doc| {
            out.push(doc);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Service::provisions_for`] one document at a time, read [`PAGE`] rows at a time: a
    /// listing of many provisions never holds more than a page of them.
    pub fn each_provision_for(
        &self,
        caller: &Caller,
        all: bool,
        include: Include,
        mut each: impl FnMut(Document) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let may = |row: &ProvisionRow, right| caller.may(right, Kind::Provision, row.id, &row.owner);
        let mut after = 0;
        loop {
            let rows = self.store.provisions_after(all, after, Some(PAGE))?;
            let Some(last) = rows.last() else { return Ok(()) };
            after = last.id;
            for row in rows.iter().filter(|r| may(r, Right::Use)) {
                let include = Include { sensitive: include.sensitive && may(row, Right::Manage), ..include };
                each(self.provision_document(caller, row, include)?)?;
            }
        }
    }

    pub fn provision_for(&self, caller: &Caller, id: i64, include: Include) -> Result<Document, Error> {
        let row = self.store.provision(id)?;
        check(caller, Kind::Provision, id, &row.owner, sensitive_right(include.sensitive))?;
        self.provision_document(caller, &row, include)
    }

    /// Checks that the caller holds `right` on an object (which must exist).
    pub(super) fn may(&self, caller: &Caller, right: Right, kind: Kind, id: i64) -> Result<(), Error> {
        check(caller, kind, id, &self.ownership(kind, id)?, right)
    }

    /// Checks that the caller may use an object (before reading a provision's log or
    /// operations, or queueing work on it).
    pub(super) fn may_use(&self, caller: &Caller, kind: Kind, id: i64) -> Result<(), Error> {
        self.may(caller, Right::Use, kind, id)
    }

    /// Checks that the caller may change an object: the oneadmin group and MANAGE on it.
    pub(super) fn may_change(&self, caller: &Caller, kind: Kind, id: i64) -> Result<(), Error> {
        caller.must_be_admin()?;
        self.may(caller, Right::Manage, kind, id)
    }

    fn ownership(&self, kind: Kind, id: i64) -> Result<Ownership, Error> {
        Ok(match kind {
            Kind::Provider => self.store.provider(id)?.owner,
            Kind::Provision => self.store.provision(id)?.owner,
        })
    }

    /// `chmod`: new permission bits from an octet such as "640" (needs MANAGE; the admin bits
    /// need ADMIN, as in OpenNebula).
    pub fn chmod(&self, caller: &Caller, kind: Kind, id: i64, octet: &str) -> Result<(), Error> {
        caller.must_be_admin()?;
        let mode = Mode::parse(octet)?;
        let mut owner = self.ownership(kind, id)?;
        check(caller, kind, id, &owner, Right::Manage)?;
        if mode.0 & 0o111 != owner.mode.0 & 0o111 {
            check(caller, kind, id, &owner, Right::Admin)?;
        }
        owner.mode = mode;
        Ok(self.store.set_ownership(kind.table(), id, &owner)?)
    }

    /// `chown` / `chgrp`: a new owner and/or group, looked up in OpenNebula so the names are
    /// right (needs ADMIN on the object).
    pub async fn chown(
        &self,
        caller: &Caller,
        kind: Kind,
        id: i64,
        uid: Option<i64>,
        gid: Option<i64>,
    ) -> Result<(), Error> {
        caller.must_be_admin()?;
        let mut owner = self.ownership(kind, id)?;
        check(caller, kind, id, &owner, Right::Admin)?;
        if let Some(uid) = uid {
            owner.uid = uid;
            owner.uname = self.user_name(uid).await?;
        }
        if let Some(gid) = gid {
            owner.gid = gid;
            owner.gname = self.group_name(gid).await?;
        }
        Ok(self.store.set_ownership(kind.table(), id, &owner)?)
    }
}

/// Owner and group names, from OpenNebula.
impl Service {
    async fn user_name(&self, uid: i64) -> Result<String, Error> {
        match self.one()? {
            crate::one::Endpoint::Xmlrpc(client) => match client.user_by_id(uid).await {
                Ok(user) => Ok(user.name),
                Err(e) if e.is_no_exists() => Err(Error::not_found(format!("user {uid} does not exist in OpenNebula"))),
                Err(e) => Err(e.into()),
            },
            crate::one::Endpoint::Model(_) => builtin_name(uid, "user", "oneadmin"),
        }
    }

    async fn group_name(&self, gid: i64) -> Result<String, Error> {
        match self.one()? {
            crate::one::Endpoint::Xmlrpc(client) => match client.group_by_id(gid).await {
                Ok(group) => Ok(group.name),
                Err(e) if e.is_no_exists() => {
                    Err(Error::not_found(format!("group {gid} does not exist in OpenNebula")))
                }
                Err(e) => Err(e.into()),
            },
            crate::one::Endpoint::Model(_) => match gid {
                1 => Ok("users".into()),
                _ => builtin_name(gid, "group", "oneadmin"),
            },
        }
    }
}

/// Without an OpenNebula endpoint only oned's built-in user and groups exist.
fn builtin_name(id: i64, what: &str, zero: &str) -> Result<String, Error> {
    match id {
        0 => Ok(zero.to_string()),
        _ => Err(Error::not_found(format!(
            "{what} {id} does not exist: without an OpenNebula endpoint (ONE_XMLRPC) only oneadmin and users are known"
        ))),
    }
}

/// What the API reads beyond documents: a provision's unmanaged objects, its whole log, its
/// operations, and the counts behind `/metrics`.
impl Service {
    /// VMs and images formwork did not create on the provision's objects (OneForm's
    /// `/unmanaged` shape).
    pub async fn unmanaged(&self, caller: &Caller, id: i64) -> Result<Value, Error> {
        let row = self.store.provision(id)?;
        check(caller, Kind::Provision, id, &row.owner, Right::Use)?;
        let mut objects = super::public_ips::one_objects(&row.body)?;
        let found = crate::one::unmanaged(self.one()?, &mut objects).await?;
        Ok(serde_json::to_value(&found)?)
    }

    /// Every line of a provision's log (none yet is an empty log), as far as one read goes
    /// (`exec::log::MAX_READ_BYTES`).
    pub fn log_lines(&self, caller: &Caller, id: i64) -> Result<Vec<crate::exec::LogLine>, Error> {
        self.may_use(caller, Kind::Provision, id)?;
        Ok(super::logs::read(&self.store, id, &self.settings.log_path(id), 0)?.0)
    }

    /// The log's length in bytes: where a poll without a position starts.
    pub fn log_end(&self, caller: &Caller, id: i64) -> Result<u64, Error> {
        self.may_use(caller, Kind::Provision, id)?;
        super::logs::import(&self.store, id, &self.settings.log_path(id))
    }

    /// At most `limit` progress events of a provision after the cursor `after` (of
    /// `operation` only, when given), and the cursor to ask from next.
    pub fn events(
        &self,
        caller: &Caller,
        id: i64,
        operation: Option<i64>,
        after: i64,
        limit: usize,
    ) -> Result<super::Events, Error> {
        self.may_use(caller, Kind::Provision, id)?;
        let rows = self.store.events(id, operation, after, limit)?;
        let next = rows.last().map_or(after, |row| row.id);
        let events = rows.into_iter().filter_map(super::ProgressEvent::from_row).collect();
        Ok(super::Events { events, next })
    }

    /// A provision's operations, newest first.
    pub fn operations(&self, caller: &Caller, id: i64) -> Result<Vec<super::Operation>, Error> {
        self.may_use(caller, Kind::Provision, id)?;
        let mut last_stage = std::collections::HashMap::new();
        for attempt in self.store.attempts(id)? {
            last_stage.insert(attempt.operation_id, attempt.stage);
        }
        let mut ops: Vec<_> = self
            .store
            .operations(id)?
            .iter()
            .map(|row| super::Operation::from_row(row, last_stage.get(&row.id).map(String::as_str)))
            .collect();
        ops.sort_by_key(|op| std::cmp::Reverse(op.id));
        Ok(ops)
    }

    pub fn metrics(&self) -> Result<Metrics, Error> {
        let raw = self.store.metrics()?;
        let provisions = raw
            .provisions
            .iter()
            .map(|(n, count)| {
                (crate::engine::State::from_number(*n).map_or(n.to_string(), |s| s.name().to_string()), *count)
            })
            .collect();
        Ok(Metrics { provisions, ..Metrics::from(raw) })
    }
}

/// `/metrics`' counts, with states by name.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub operations: Vec<(String, String, i64)>,
    pub provisions: Vec<(String, i64)>,
    pub queued: i64,
    pub running: i64,
    pub stages: Vec<crate::store::StageMetrics>,
}

impl From<crate::store::Metrics> for Metrics {
    fn from(m: crate::store::Metrics) -> Metrics {
        Metrics {
            operations: m.operations,
            provisions: Vec::new(),
            queued: m.queued,
            running: m.running,
            stages: m.stages,
        }
    }
}
