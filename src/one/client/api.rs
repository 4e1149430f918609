//! [`OneApi`] for [`Client`]: every call with OneForm's parameter list (spec §5.2; the session
//! goes first, added by `Client::call`). Reads may be repeated after a broken connection,
//! writes only when they were never sent. Objects in errors are named as the fake names them
//! (`network 5`, `cluster 'x'`).

use super::transport::Repeat;
use super::{Client, document, unexpected};
use crate::one::Result;
use crate::one::api::{Cluster, Datastore, Host, HostStatus, Image, OneApi, Vm, Vnet, call};
use crate::one::template::Template;
use crate::one::xmlrpc::{Element, Value};

/// `one.vm.recover` operation 3: delete, whatever the VM's state.
const RECOVER_DELETE: i64 = 3;
/// `*.update` type 1: merge into the template instead of replacing it.
const UPDATE_MERGE: i64 = 1;

fn named(kind: &str, name: &str) -> String {
    format!("{kind} '{name}'")
}

fn id(kind: &str, id: i64) -> String {
    format!("{kind} {id}")
}

/// The object an allocate template creates, by its NAME.
fn template_name(kind: &str, template: &str) -> String {
    let name = Template::parse(template).ok().and_then(|t| t.single("NAME").map(str::to_owned));
    named(kind, name.as_deref().unwrap_or("?"))
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

impl Client {
    /// An allocate: its result is the new object's id.
    async fn allocate(&self, method: &'static str, object: &str, params: &[Value]) -> Result<i64> {
        match self.call(method, object, params, Repeat::OnlyUnsent).await? {
            Value::Int(id) => Ok(id),
            other => Err(unexpected(method, object, &format!("an id, not {other:?}"))),
        }
    }

    /// Any other write; its result (the object's id again) says nothing more.
    async fn write(&self, method: &'static str, object: &str, params: &[Value]) -> Result<()> {
        self.call(method, object, params, Repeat::OnlyUnsent).await.map(drop)
    }

    /// `<id>.info(id, decrypt = false)`.
    async fn read<T>(
        &self,
        method: &'static str,
        object: &str,
        id: i64,
        parse: fn(&Element) -> Result<T, String>,
    ) -> Result<T> {
        self.info(method, object, &[Value::Int(id), Value::Bool(false)], parse).await
    }

    /// A pool call, then the object whose NAME is `name`.
    async fn by_name<T>(
        &self,
        method: &'static str,
        object: &str,
        params: &[Value],
        (pool, item): (&str, &str),
        name: &str,
        parse: fn(&Element) -> Result<T, String>,
    ) -> Result<Option<T>> {
        let root = self.document(method, object, params).await?;
        let found = document::find_named(&root, pool, item, name).and_then(|found| found.map(parse).transpose());
        found.map_err(|what| unexpected(method, object, &what))
    }
}

impl OneApi for Client {
    async fn cluster_allocate(&self, name: &str) -> Result<i64> {
        self.allocate(call::CLUSTER_ALLOCATE, &named("cluster", name), &[text(name)]).await
    }

    async fn cluster_update(&self, cluster: i64, template: &str) -> Result<()> {
        let params = [Value::Int(cluster), text(template), Value::Int(UPDATE_MERGE)];
        self.write(call::CLUSTER_UPDATE, &id("cluster", cluster), &params).await
    }

    async fn cluster_info(&self, cluster: i64) -> Result<Cluster> {
        self.read(call::CLUSTER_INFO, &id("cluster", cluster), cluster, document::cluster).await
    }

    async fn cluster_delete(&self, cluster: i64) -> Result<()> {
        self.write(call::CLUSTER_DELETE, &id("cluster", cluster), &[Value::Int(cluster)]).await
    }

    async fn cluster_by_name(&self, name: &str) -> Result<Option<Cluster>> {
        let object = named("cluster", name);
        self.by_name(call::CLUSTER_POOL, &object, &[], ("CLUSTER_POOL", "CLUSTER"), name, document::cluster).await
    }

    async fn host_allocate(&self, name: &str, im_mad: &str, vmm_mad: &str, cluster_id: i64) -> Result<i64> {
        let params = [text(name), text(im_mad), text(vmm_mad), Value::Int(cluster_id)];
        self.allocate(call::HOST_ALLOCATE, &named("host", name), &params).await
    }

    async fn host_update(&self, host: i64, template: &str) -> Result<()> {
        let params = [Value::Int(host), text(template), Value::Int(UPDATE_MERGE)];
        self.write(call::HOST_UPDATE, &id("host", host), &params).await
    }

    async fn host_status(&self, host: i64, status: HostStatus) -> Result<()> {
        let params = [Value::Int(host), Value::Int(status.number())];
        self.write(call::HOST_STATUS, &id("host", host), &params).await
    }

    async fn host_info(&self, host: i64) -> Result<Host> {
        self.read(call::HOST_INFO, &id("host", host), host, document::host).await
    }

    async fn host_delete(&self, host: i64) -> Result<()> {
        self.write(call::HOST_DELETE, &id("host", host), &[Value::Int(host)]).await
    }

    async fn host_by_name(&self, name: &str) -> Result<Option<Host>> {
        let object = named("host", name);
        self.by_name(call::HOST_POOL, &object, &[], ("HOST_POOL", "HOST"), name, document::host).await
    }

    async fn datastore_allocate(&self, template: &str, cluster_id: i64) -> Result<i64> {
        let object = template_name("datastore", template);
        self.allocate(call::DATASTORE_ALLOCATE, &object, &[text(template), Value::Int(cluster_id)]).await
    }

    async fn datastore_info(&self, datastore: i64) -> Result<Datastore> {
        self.read(call::DATASTORE_INFO, &id("datastore", datastore), datastore, document::datastore).await
    }

    async fn datastore_delete(&self, datastore: i64) -> Result<()> {
        self.write(call::DATASTORE_DELETE, &id("datastore", datastore), &[Value::Int(datastore)]).await
    }

    async fn datastore_by_name(&self, name: &str) -> Result<Option<Datastore>> {
        let object = named("datastore", name);
        let pool = ("DATASTORE_POOL", "DATASTORE");
        self.by_name(call::DATASTORE_POOL, &object, &[], pool, name, document::datastore).await
    }

    async fn vn_allocate(&self, template: &str, cluster_id: i64) -> Result<i64> {
        let object = template_name("network", template);
        self.allocate(call::VN_ALLOCATE, &object, &[text(template), Value::Int(cluster_id)]).await
    }

    async fn vn_info(&self, vnet: i64) -> Result<Vnet> {
        self.read(call::VN_INFO, &id("network", vnet), vnet, document::vnet).await
    }

    async fn vn_delete(&self, vnet: i64) -> Result<()> {
        self.write(call::VN_DELETE, &id("network", vnet), &[Value::Int(vnet)]).await
    }

    async fn vn_add_ar(&self, vnet: i64, template: &str) -> Result<()> {
        self.write(call::VN_ADD_AR, &id("network", vnet), &[Value::Int(vnet), text(template)]).await
    }

    async fn vn_rm_ar(&self, vnet: i64, ar_id: i64) -> Result<()> {
        let object = format!("network {vnet} AR {ar_id}");
        self.write(call::VN_RM_AR, &object, &[Value::Int(vnet), Value::Int(ar_id)]).await
    }

    /// The pool form of a vnet lists its ARs without their leases.
    async fn vn_by_name(&self, name: &str) -> Result<Option<Vnet>> {
        // filter -2 (every object), start -1 and end -1 (the whole pool), as OneForm asks.
        let params = [Value::Int(-2), Value::Int(-1), Value::Int(-1)];
        let object = named("network", name);
        self.by_name(call::VN_POOL, &object, &params, ("VNET_POOL", "VNET"), name, document::vnet).await
    }

    async fn vm_info(&self, vm: i64) -> Result<Vm> {
        self.read(call::VM_INFO, &id("vm", vm), vm, document::vm).await
    }

    async fn vm_delete(&self, vm: i64) -> Result<()> {
        self.write(call::VM_RECOVER, &id("vm", vm), &[Value::Int(vm), Value::Int(RECOVER_DELETE)]).await
    }

    async fn image_info(&self, image: i64) -> Result<Image> {
        self.read(call::IMAGE_INFO, &id("image", image), image, document::image).await
    }

    async fn image_delete(&self, image: i64) -> Result<()> {
        self.write(call::IMAGE_DELETE, &id("image", image), &[Value::Int(image)]).await
    }

    async fn system_version(&self) -> Result<String> {
        Client::system_version(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::Options;
    use super::super::test_server::{TestServer, success};
    use super::*;

    const CLUSTER: &str = "<CLUSTER><ID>0</ID><NAME>c</NAME><HOSTS/><DATASTORES/><VNETS/><TEMPLATE/></CLUSTER>";
    const HOST: &str = "<HOST><ID>1</ID><NAME>h</NAME><STATE>2</STATE><IM_MAD>kvm</IM_MAD><VM_MAD>kvm</VM_MAD>\
                        <CLUSTER_ID>0</CLUSTER_ID><VMS/><TEMPLATE/></HOST>";
    const DATASTORE: &str = "<DATASTORE><ID>2</ID><NAME>d</NAME><TYPE>0</TYPE><STATE>0</STATE><CLUSTERS/>\
                             <IMAGES/><TEMPLATE/></DATASTORE>";
    const VNET: &str = "<VNET><ID>3</ID><NAME>n</NAME><STATE>1</STATE><VN_MAD>bridge</VN_MAD><CLUSTERS/>\
                        <USED_LEASES>0</USED_LEASES><AR_POOL/><TEMPLATE/></VNET>";

    /// What a healthy oned answers to each call formwork makes.
    fn answer(method: &str) -> Value {
        let xml = match method {
            call::CLUSTER_INFO => CLUSTER.to_owned(),
            call::CLUSTER_POOL => format!("<CLUSTER_POOL>{CLUSTER}</CLUSTER_POOL>"),
            call::HOST_INFO => HOST.to_owned(),
            call::HOST_POOL => format!("<HOST_POOL>{HOST}</HOST_POOL>"),
            call::DATASTORE_INFO => DATASTORE.to_owned(),
            call::DATASTORE_POOL => format!("<DATASTORE_POOL>{DATASTORE}</DATASTORE_POOL>"),
            call::VN_INFO => VNET.to_owned(),
            call::VN_POOL => format!("<VNET_POOL>{VNET}</VNET_POOL>"),
            call::VM_INFO => "<VM><ID>4</ID><NAME>v</NAME><STATE>6</STATE></VM>".to_owned(),
            call::IMAGE_INFO => {
                "<IMAGE><ID>5</ID><NAME>i</NAME><STATE>1</STATE><DATASTORE_ID>2</DATASTORE_ID></IMAGE>".to_owned()
            }
            _ => return Value::Int(9),
        };
        Value::String(xml)
    }

    /// Every call of the trait, once, in trait order.
    async fn call_everything(one: &Client) -> Result<()> {
        assert_eq!(one.cluster_allocate("c").await?, 9);
        one.cluster_update(0, "A = \"1\"").await?;
        assert_eq!(one.cluster_info(0).await?.name, "c");
        one.cluster_delete(0).await?;
        assert_eq!(one.cluster_by_name("c").await?.map(|c| c.id), Some(0));
        assert_eq!(one.host_allocate("h", "kvm", "qemu", 0).await?, 9);
        one.host_update(1, "B = \"2\"").await?;
        one.host_status(1, HostStatus::Offline).await?;
        assert_eq!(one.host_info(1).await?.name, "h");
        one.host_delete(1).await?;
        assert!(one.host_by_name("other").await?.is_none());
        assert_eq!(one.datastore_allocate("NAME = \"d\"", 0).await?, 9);
        assert_eq!(one.datastore_info(2).await?.name, "d");
        one.datastore_delete(2).await?;
        assert_eq!(one.datastore_by_name("d").await?.map(|d| d.id), Some(2));
        assert_eq!(one.vn_allocate("NAME = \"n\"", 0).await?, 9);
        assert!(one.vn_info(3).await?.is_ready());
        one.vn_delete(3).await?;
        one.vn_add_ar(3, "AR = [ SIZE = \"1\" ]").await?;
        one.vn_rm_ar(3, 1).await?;
        assert_eq!(one.vn_by_name("n").await?.map(|n| n.id), Some(3));
        assert!(one.vm_info(4).await?.is_done());
        one.vm_delete(4).await?;
        assert_eq!(one.image_info(5).await?.datastore_id, 2);
        one.image_delete(5).await
    }

    #[tokio::test]
    async fn every_call_sends_oneforms_parameter_list() {
        let server = TestServer::start(|_, method, _| success(answer(method))).await;
        let one = Client::new(&server.endpoint, "u:p".to_owned(), Options::default()).unwrap();
        call_everything(&one).await.unwrap();
        let (i, s, b) = (Value::Int, |t: &str| Value::String(t.to_owned()), Value::Bool);
        let expected = [
            (call::CLUSTER_ALLOCATE, vec![s("c")]),
            (call::CLUSTER_UPDATE, vec![i(0), s("A = \"1\""), i(1)]),
            (call::CLUSTER_INFO, vec![i(0), b(false)]),
            (call::CLUSTER_DELETE, vec![i(0)]),
            (call::CLUSTER_POOL, vec![]),
            (call::HOST_ALLOCATE, vec![s("h"), s("kvm"), s("qemu"), i(0)]),
            (call::HOST_UPDATE, vec![i(1), s("B = \"2\""), i(1)]),
            (call::HOST_STATUS, vec![i(1), i(2)]),
            (call::HOST_INFO, vec![i(1), b(false)]),
            (call::HOST_DELETE, vec![i(1)]),
            (call::HOST_POOL, vec![]),
            (call::DATASTORE_ALLOCATE, vec![s("NAME = \"d\""), i(0)]),
            (call::DATASTORE_INFO, vec![i(2), b(false)]),
            (call::DATASTORE_DELETE, vec![i(2)]),
            (call::DATASTORE_POOL, vec![]),
            (call::VN_ALLOCATE, vec![s("NAME = \"n\""), i(0)]),
            (call::VN_INFO, vec![i(3), b(false)]),
            (call::VN_DELETE, vec![i(3)]),
            (call::VN_ADD_AR, vec![i(3), s("AR = [ SIZE = \"1\" ]")]),
            (call::VN_RM_AR, vec![i(3), i(1)]),
            (call::VN_POOL, vec![i(-2), i(-1), i(-1)]),
            (call::VM_INFO, vec![i(4), b(false)]),
            (call::VM_RECOVER, vec![i(4), i(3)]),
            (call::IMAGE_INFO, vec![i(5), b(false)]),
            (call::IMAGE_DELETE, vec![i(5)]),
        ];
        let calls = server.calls();
        assert_eq!(calls.len(), expected.len());
        for ((method, params), (want_method, want_params)) in calls.into_iter().zip(expected) {
            assert_eq!((method.as_str(), &params[0]), (want_method, &s("u:p")));
            assert_eq!(params[1..], want_params, "parameters of {method}");
        }
    }

    #[tokio::test]
    async fn allocate_errors_name_the_object_from_the_template() {
        let server =
            TestServer::start(|_, _, _| super::super::test_server::failure("[one.vn.allocate] no", 0x4000, -1)).await;
        let one = Client::new(&server.endpoint, "u:p".to_owned(), Options::default()).unwrap();
        let error = one.vn_allocate("NAME = \"public\"\nVN_MAD = \"elastic\"", 0).await.unwrap_err();
        assert!(matches!(error, crate::one::Error::Allocate { .. }), "{error:?}");
        assert!(error.to_string().starts_with("one.vn.allocate for network 'public' failed"), "{error}");
        let error = one.vn_rm_ar(5, 2).await.unwrap_err();
        assert!(error.to_string().contains("network 5 AR 2"), "{error}");
    }
}
