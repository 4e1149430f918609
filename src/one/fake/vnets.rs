//! The fake's virtual networks and VMs: address ranges with their AR ids, leases held by VMs,
//! and OpenNebula's refusals (a vnet with leases in use, an AR with leases, no free lease).
//! VMs are deleted as `one.vm.recover(id, 3)` does: they leave host and leases and stay DONE.

use super::super::Code;
use super::super::api::{AddressRange, Vm, Vnet};
use super::super::template::{Attribute, Template, field};
use super::world::{Outcome, VmRec, VnetRec, World, missing, parse, required, take, taken};

const VM_ACTIVE: i64 = 3;

impl World {
    pub fn vn_allocate(&mut self, next: &mut i64, text: &str, cluster: i64) -> Outcome<i64> {
        let parsed = parse(text)?;
        let name = required(&parsed, "NAME")?;
        let vn_mad = required(&parsed, "VN_MAD")?;
        taken(&self.vnets, |r| &r.name, &name, "NET")?;
        let cluster_id = self.cluster_for(cluster)?;
        let id = *next;
        let mut ars = Vec::new();
        let mut template = Template::default();
        for (attr, value) in parsed.attributes() {
            match value {
                Attribute::Vector(fields) if attr == "AR" => ars.push(address_range(id, ars.len() as i64, fields)?),
                Attribute::Vector(_) | Attribute::Single(_) => template.push(attr.clone(), value.clone()),
            }
        }
        take(next);
        self.vnets.insert(id, VnetRec { name, vn_mad, cluster_id, template, ars });
        Ok(id)
    }

    pub fn vnet(&self, id: i64) -> Outcome<Vnet> {
        let Some(rec) = self.vnets.get(&id) else {
            return missing("virtual network", id);
        };
        let mut ars = rec.ars.clone();
        for ar in &mut ars {
            ar.leases =
                self.live_vms().filter(|(_, vm)| vm.leases.contains(&(id, ar.ar_id))).map(|(i, _)| *i).collect();
        }
        Ok(Vnet {
            id,
            name: rec.name.clone(),
            state: Vnet::READY,
            vn_mad: rec.vn_mad.clone(),
            clusters: vec![rec.cluster_id],
            used_leases: ars.iter().map(|ar| ar.leases.len() as i64).sum(),
            ars,
            template: rec.template.clone(),
        })
    }

    pub fn vn_delete(&mut self, id: i64) -> Outcome<()> {
        let vnet = self.vnet(id)?;
        if vnet.used_leases > 0 {
            return Err((
                Code::Action,
                format!("Cannot delete virtual network {id}: leases in use by VMs {:?}.", vnet.leased_vms()),
            ));
        }
        self.vnets.remove(&id);
        Ok(())
    }

    pub fn vn_add_ar(&mut self, id: i64, text: &str) -> Outcome<()> {
        let parsed = parse(text)?;
        let fields = parsed.vector("AR").ok_or((Code::Action, "No AR in template.".to_string()))?;
        let Some(rec) = self.vnets.get(&id) else {
            return missing("virtual network", id);
        };
        let ar_id = rec.ars.iter().map(|ar| ar.ar_id + 1).max().unwrap_or(0);
        let ar = address_range(id, ar_id, fields)?;
        if let Some(rec) = self.vnets.get_mut(&id) {
            rec.ars.push(ar);
        }
        Ok(())
    }

    pub fn vn_rm_ar(&mut self, id: i64, ar_id: i64) -> Outcome<()> {
        let vnet = self.vnet(id)?;
        match vnet.ars.iter().find(|ar| ar.ar_id == ar_id) {
            None => Err((Code::Action, format!("Address Range {ar_id} does not exist."))),
            Some(ar) if !ar.leases.is_empty() => {
                Err((Code::Action, format!("Address Range {ar_id} has leases in use.")))
            }
            Some(_) => {
                if let Some(rec) = self.vnets.get_mut(&id) {
                    rec.ars.retain(|ar| ar.ar_id != ar_id);
                }
                Ok(())
            }
        }
    }

    pub fn vm(&self, id: i64) -> Outcome<Vm> {
        let Some(rec) = self.vms.get(&id) else {
            return missing("virtual machine", id);
        };
        Ok(Vm { id, name: rec.name.clone(), state: rec.state })
    }

    /// `one.vm.recover(id, 3)`: the VM leaves its host and leases and stays, DONE.
    pub fn vm_delete(&mut self, id: i64) -> Outcome<()> {
        match self.vms.get_mut(&id) {
            Some(rec) if rec.state != Vm::DONE => {
                *rec = VmRec { name: rec.name.clone(), state: Vm::DONE, host: None, leases: Vec::new() };
                Ok(())
            }
            Some(_) => Err((Code::Action, format!("Virtual machine {id} is already DONE."))),
            None => missing("virtual machine", id),
        }
    }

    /// A VM on `host` (if any) with a lease from the first AR with room in each vnet.
    pub fn vm_place(&mut self, next: &mut i64, name: &str, host: Option<i64>, vnets: &[i64]) -> Outcome<i64> {
        if let Some(host) = host {
            self.host(host)?;
        }
        let mut leases = Vec::new();
        for vnet_id in vnets {
            let vnet = self.vnet(*vnet_id)?;
            let ar = vnet.ars.iter().find(|ar| (ar.leases.len() as i64) < ar.size);
            let ar = ar.ok_or((Code::Action, format!("No free leases in virtual network {vnet_id}.")))?;
            leases.push((*vnet_id, ar.ar_id));
        }
        let id = take(next);
        self.vms.insert(id, VmRec { name: name.into(), state: VM_ACTIVE, host, leases });
        Ok(id)
    }
}

/// An AR from its template fields; an IPAM-managed AR gets a public IP, as the IPAM driver of
/// an elastic network would hand out.
fn address_range(vnet: i64, ar_id: i64, fields: &[(String, String)]) -> Outcome<AddressRange> {
    let size = field(fields, "SIZE").and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0);
    if size <= 0 {
        return Err((Code::Allocate, "Wrong SIZE for address range".to_string()));
    }
    let ipam_mad = field(fields, "IPAM_MAD").map(str::to_string);
    let external_ip = ipam_mad.as_ref().map(|_| format!("203.0.113.{}", (vnet * 16 + ar_id) % 254 + 1));
    let ip = field(fields, "IP").map(str::to_string).or_else(|| external_ip.clone());
    Ok(AddressRange { ar_id, ip, size, ipam_mad, external_ip, leases: Vec::new() })
}
