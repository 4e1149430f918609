//! Unmanaged children made through the API rather than the test hooks: `one.vm.allocate` (a
//! PENDING or HOLD VM holding a lease on each network it names), `one.vm.deploy` (the VM runs
//! on a host from then on) and `one.image.allocate` (an image in a datastore). Unlike
//! [`FakeOne::add_vm`] and [`FakeOne::add_image`], these are logged, may meet injected faults
//! and are persisted, like every other call.

use super::super::{Code, Result};
use super::FakeOne;
use super::world::missing;

const PENDING: i64 = 1;
const HOLD: i64 = 2;
const ACTIVE: i64 = 3;

impl FakeOne {
    /// `one.vm.allocate`: `name` defaults to oned's `one-<id>`; `vnets` are the NICs'
    /// NETWORK_IDs. The VM waits for [`FakeOne::vm_deploy`], on hold if `hold`.
    pub fn vm_allocate(&self, name: Option<&str>, vnets: &[i64], hold: bool) -> Result<i64> {
        let object = format!("vm '{}'", name.unwrap_or("?"));
        self.run("one.vm.allocate", object, |w, n| {
            let default = format!("one-{}", n.vm);
            let id = w.vm_place(&mut n.vm, name.unwrap_or(&default), None, vnets)?;
            if let Some(vm) = w.vms.get_mut(&id) {
                vm.state = if hold { HOLD } else { PENDING };
            }
            Ok(id)
        })
    }

    /// `one.vm.deploy`: a PENDING or HOLD VM starts on `host` (ACTIVE).
    pub fn vm_deploy(&self, id: i64, host: i64) -> Result<()> {
        self.run("one.vm.deploy", format!("vm {id}"), |w, _| {
            w.host(host)?;
            let Some(vm) = w.vms.get_mut(&id) else {
                return missing("virtual machine", id);
            };
            if vm.state != PENDING && vm.state != HOLD {
                return Err((Code::Action, format!("Wrong state to perform action: VM {id} is not PENDING or HOLD.")));
            }
            vm.state = ACTIVE;
            vm.host = Some(host);
            Ok(())
        })
    }

    /// `one.image.allocate`: an image called `name` in `datastore` (not a system datastore).
    pub fn image_allocate(&self, name: &str, datastore: i64) -> Result<i64> {
        self.run("one.image.allocate", format!("image '{name}'"), |w, n| w.image_place(&mut n.image, name, datastore))
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::OneApi;
    use super::super::super::api::Vm;
    use super::*;

    #[tokio::test]
    async fn allocated_vms_hold_leases_and_run_where_deployed() {
        let one = FakeOne::new();
        let host = one.host_allocate("h", "kvm", "kvm", -1).await.unwrap();
        let vnet = one.vn_allocate("NAME = n\nVN_MAD = bridge\nAR = [SIZE = 1]", -1).await.unwrap();
        let vm = one.vm_allocate(None, &[vnet], false).unwrap();
        assert_eq!(one.vm_info(vm).await.unwrap(), Vm { id: vm, name: format!("one-{vm}"), state: PENDING });
        assert_eq!(one.vn_info(vnet).await.unwrap().leased_vms(), [vm]);
        assert_eq!(one.vm_allocate(Some("full"), &[vnet], true).unwrap_err().code(), Some(Code::Action));
        assert!(one.vm_deploy(vm, 99).unwrap_err().is_no_exists());
        one.vm_deploy(vm, host).unwrap();
        assert_eq!(one.host_info(host).await.unwrap().vms, [vm]);
        assert_eq!(one.vm_deploy(vm, host).unwrap_err().code(), Some(Code::Action));
        let ds = one.datastore_allocate("NAME = d", -1).await.unwrap();
        let image = one.image_allocate("img", ds).unwrap();
        assert_eq!(one.datastore_info(ds).await.unwrap().images, [image]);
        assert_eq!(one.image_allocate("img", ds).unwrap_err().code(), Some(Code::Allocate));
    }
}
