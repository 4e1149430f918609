//! oned's XML for the infrastructure objects, from [`crate::one::FakeOne`]'s typed answers:
//! CLUSTER, HOST, DATASTORE, VNET (with AR_POOL), VM and IMAGE, each with every element its XSD
//! marks required, in the XSD's order. What the fake does not model gets the value a fresh
//! oned shows (owner oneadmin, zero usage, a 16 GiB / 8 core host, a 100 GiB datastore).

use crate::one::fake::Permissions;
use crate::one::{AddressRange, Cluster, Datastore, Host, Image, Vm, Vnet};

use super::xml::Xml;

/// `um- u-- ---`: what oned gives objects oneadmin creates with the default umask.
const SHARED: Permissions = Permissions([1, 1, 0, 1, 0, 0, 0, 0, 0]);

fn oneadmin(x: &mut Xml) {
    x.leaf("UID", 0).leaf("GID", 0).leaf("UNAME", "oneadmin").leaf("GNAME", "oneadmin");
}

pub fn cluster(x: &mut Xml, c: &Cluster) {
    x.open("CLUSTER").leaf("ID", c.id).leaf("NAME", &c.name);
    x.ids("HOSTS", &c.hosts).ids("DATASTORES", &c.datastores).ids("VNETS", &c.vnets);
    x.template("TEMPLATE", &c.template).close("CLUSTER");
}

pub fn host(x: &mut Xml, h: &Host, cluster_name: &str) {
    const MEM_KB: i64 = 16 * 1024 * 1024;
    const CPU: i64 = 800;
    x.open("HOST").leaf("ID", h.id).leaf("NAME", &h.name).leaf("STATE", h.state).leaf("PREV_STATE", h.state);
    x.leaf("IM_MAD", &h.im_mad)
        .leaf("VM_MAD", &h.vm_mad)
        .leaf("CLUSTER_ID", h.cluster_id)
        .leaf("CLUSTER", cluster_name);
    x.open("HOST_SHARE").leaf("MEM_USAGE", 0).leaf("CPU_USAGE", 0).leaf("TOTAL_MEM", MEM_KB).leaf("TOTAL_CPU", CPU);
    x.leaf("MAX_MEM", MEM_KB).leaf("MAX_CPU", CPU).leaf("RUNNING_VMS", h.vms.len()).leaf("VMS_THREAD", 1);
    x.open("DATASTORES").leaf("DISK_USAGE", 0).leaf("FREE_DISK", 0).leaf("MAX_DISK", 0).leaf("USED_DISK", 0);
    x.close("DATASTORES").empty("PCI_DEVICES").empty("NUMA_NODES").close("HOST_SHARE");
    x.ids("VMS", &h.vms).template("TEMPLATE", &h.template).empty("MONITORING").close("HOST");
}

pub fn datastore(x: &mut Xml, d: &Datastore) {
    const TOTAL_MB: i64 = 100 * 1024;
    let system = d.ds_type == 1;
    let ds_mad = d.template.single("DS_MAD").unwrap_or(if system { "-" } else { "fs" });
    let tm_mad = d.template.single("TM_MAD").unwrap_or("ssh");
    x.open("DATASTORE").leaf("ID", d.id);
    oneadmin(x);
    x.leaf("NAME", &d.name).permissions(SHARED).leaf("DS_MAD", ds_mad).leaf("TM_MAD", tm_mad);
    x.leaf("BASE_PATH", format!("/var/lib/one//datastores/{}", d.id)).leaf("TYPE", d.ds_type).leaf("DISK_TYPE", 0);
    x.leaf("STATE", d.state).ids("CLUSTERS", &d.clusters);
    x.leaf("TOTAL_MB", TOTAL_MB).leaf("FREE_MB", TOTAL_MB).leaf("USED_MB", 0);
    x.ids("IMAGES", &d.images).template("TEMPLATE", &d.template).close("DATASTORE");
}

/// `extended` is oned's `to_xml_extended` flag: true for `one.vn.info`, false for
/// `one.vnpool.info`, whose address ranges are only their stored attributes (vnet_pool.xsd).
pub fn vnet(x: &mut Xml, v: &Vnet, extended: bool) {
    let bridge = v.template.single("BRIDGE").map(str::to_string).unwrap_or_else(|| format!("onebr{}", v.id));
    x.open("VNET").leaf("ID", v.id);
    oneadmin(x);
    x.leaf("NAME", &v.name).permissions(SHARED).ids("CLUSTERS", &v.clusters);
    x.leaf("BRIDGE", bridge).leaf("BRIDGE_TYPE", v.template.single("BRIDGE_TYPE").unwrap_or("linux"));
    x.leaf("STATE", v.state).leaf("PREV_STATE", v.state).leaf("PARENT_NETWORK_ID", "").leaf("TEMPLATE_ID", -1);
    x.leaf("VN_MAD", &v.vn_mad).leaf("PHYDEV", v.template.single("PHYDEV").unwrap_or(""));
    if let Some(vlan) = v.template.single("VLAN_ID") {
        x.leaf("VLAN_ID", vlan);
    }
    x.leaf("VLAN_ID_AUTOMATIC", 0).leaf("OUTER_VLAN_ID_AUTOMATIC", 0).leaf("USED_LEASES", v.used_leases);
    for list in ["VROUTERS", "UPDATED_VMS", "OUTDATED_VMS", "UPDATING_VMS", "ERROR_VMS"] {
        x.empty(list);
    }
    x.template("TEMPLATE", &v.template).open("AR_POOL");
    for ar in &v.ars {
        address_range(x, v.id, ar, extended);
    }
    x.close("AR_POOL").close("VNET");
}

/// An AR as oned writes it: its attributes in name order (as oned's attribute map holds them,
/// IPAM_MAD and EXTERNAL_IP included); `extended` (`one.vn.info`) adds the computed ends,
/// USED_LEASES and the leases, which the pool form has none of (vnet_pool.xsd).
fn address_range(x: &mut Xml, vnet: i64, ar: &AddressRange, extended: bool) {
    let ip = ar.ip.as_deref().and_then(ipv4);
    let mac = match ip {
        Some(ip) => 0x0200_0000_0000 | u64::from(ip),
        None => 0x0200_0000_0000 | ((vnet as u64 & 0xffff) << 24) | ((ar.ar_id as u64 & 0xff) << 16),
    };
    let mut fields: Vec<(&str, String)> = vec![
        ("AR_ID", ar.ar_id.to_string()),
        ("MAC", mac_text(mac)),
        ("NEXT_INDEX", ar.leases.len().to_string()),
        ("SIZE", ar.size.to_string()),
        ("TYPE", if ip.is_some() { "IP4" } else { "ETHER" }.to_string()),
    ];
    let optional = [("IP", &ar.ip), ("IPAM_MAD", &ar.ipam_mad), ("EXTERNAL_IP", &ar.external_ip)];
    fields.extend(optional.into_iter().filter_map(|(name, value)| Some((name, value.clone()?))));
    fields.sort_by(|a, b| a.0.cmp(b.0));
    x.open("AR");
    for (name, value) in &fields {
        x.cdata(name, value);
    }
    if !extended {
        x.close("AR");
        return;
    }
    let last = (ar.size - 1).max(0) as u64;
    x.cdata("MAC_END", &mac_text(mac + last));
    if let Some(ip) = ip {
        x.cdata("IP_END", &ip_text(u64::from(ip) + last));
    }
    x.cdata("USED_LEASES", &ar.leases.len().to_string()).open("LEASES");
    for (index, vm) in ar.leases.iter().enumerate() {
        x.open("LEASE");
        if let Some(ip) = ip {
            x.leaf("IP", ip_text(u64::from(ip) + index as u64));
        }
        x.leaf("MAC", mac_text(mac + index as u64)).leaf("VM", vm).close("LEASE");
    }
    x.close("LEASES").close("AR");
}

fn ipv4(text: &str) -> Option<u32> {
    text.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

fn ip_text(ip: u64) -> String {
    std::net::Ipv4Addr::from((ip & 0xffff_ffff) as u32).to_string()
}

fn mac_text(mac: u64) -> String {
    let bytes = mac.to_be_bytes();
    bytes[2..].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `<VM>`: the fake models a name and a state; the rest is what a VM without history shows.
pub fn vm(x: &mut Xml, vm: &Vm) {
    const ACTIVE: i64 = 3;
    const RUNNING: i64 = 3;
    let lcm = if vm.state == ACTIVE { RUNNING } else { 0 };
    x.open("VM").leaf("ID", vm.id);
    oneadmin(x);
    x.leaf("NAME", &vm.name).permissions(Permissions::DEFAULT).leaf("LAST_POLL", 0);
    x.leaf("STATE", vm.state).leaf("LCM_STATE", lcm).leaf("PREV_STATE", vm.state).leaf("PREV_LCM_STATE", lcm);
    x.leaf("RESCHED", 0).leaf("STIME", 0).leaf("ETIME", 0).leaf("DEPLOY_ID", "").empty("MONITORING");
    // vm.xsd requires TM_MAD_SYSTEM: the transfer driver of the system datastore (ssh, as
    // onesim's default system datastore has).
    x.empty("SCHED_ACTIONS").open("TEMPLATE").cdata("TM_MAD_SYSTEM", "ssh").cdata("VMID", &vm.id.to_string());
    x.close("TEMPLATE");
    x.empty("USER_TEMPLATE").empty("HISTORY_RECORDS");
    x.open("BACKUPS").empty("BACKUP_CONFIG").empty("BACKUP_IDS").close("BACKUPS").close("VM");
}

/// `<IMAGE>`: a ready, non-persistent OS image in `datastore`.
pub fn image(x: &mut Xml, image: &Image, datastore: &str) {
    x.open("IMAGE").leaf("ID", image.id);
    oneadmin(x);
    x.leaf("NAME", &image.name).permissions(Permissions::DEFAULT).leaf("TYPE", 0).leaf("DISK_TYPE", 0);
    x.leaf("PERSISTENT", 0).leaf("REGTIME", 0).leaf("MODTIME", 0);
    x.leaf("SOURCE", format!("/var/lib/one//datastores/{}/{}", image.datastore_id, image.id));
    x.leaf("PATH", "").leaf("FORMAT", "raw").leaf("FS", "").leaf("SIZE", 0);
    x.leaf("STATE", image.state).leaf("PREV_STATE", image.state).leaf("RUNNING_VMS", 0);
    x.leaf("CLONING_OPS", 0).leaf("CLONING_ID", -1).leaf("TARGET_SNAPSHOT", -1);
    x.leaf("DATASTORE_ID", image.datastore_id).leaf("DATASTORE", datastore);
    x.empty("VMS").empty("CLONES").empty("APP_CLONES").empty("TEMPLATE");
    x.open("SNAPSHOTS").leaf("ALLOW_ORPHANS", "NO").leaf("CURRENT_BASE", -1).leaf("NEXT_SNAPSHOT", 0);
    x.close("SNAPSHOTS").empty("BACKUP_INCREMENTS").close("IMAGE");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one::Template;

    #[test]
    fn address_ranges_list_their_attributes_in_name_order_then_ends_and_leases() {
        let ar = AddressRange {
            ar_id: 1,
            ip: Some("10.0.0.254".into()),
            size: 4,
            ipam_mad: Some("aws".into()),
            external_ip: None,
            leases: vec![7],
        };
        let mut x = Xml::default();
        address_range(&mut x, 0, &ar, true);
        let xml = x.finish();
        let tags =
            ["<AR_ID>", "<IP>", "<IPAM_MAD>", "<MAC>", "<NEXT_INDEX>", "<SIZE>", "<TYPE>", "<MAC_END>", "<IP_END>"];
        let positions: Vec<usize> = tags.iter().map(|tag| xml.find(tag).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(xml.contains("<MAC><![CDATA[02:00:0a:00:00:fe]]></MAC>"), "{xml}");
        assert!(xml.contains("<IP_END><![CDATA[10.0.1.1]]></IP_END>"), "{xml}");
        assert!(xml.contains("<LEASE><IP>10.0.0.254</IP><MAC>02:00:0a:00:00:fe</MAC><VM>7</VM></LEASE>"), "{xml}");
    }

    #[test]
    fn a_vnet_names_its_bridge_and_its_pool_form_has_only_the_stored_ar_attributes() {
        let ar = AddressRange { ar_id: 0, ip: None, size: 2, ipam_mad: None, external_ip: None, leases: vec![3] };
        let template = Template::parse("BRIDGE = br0").unwrap();
        let v = Vnet {
            id: 5,
            name: "n".into(),
            state: 1,
            vn_mad: "bridge".into(),
            clusters: vec![0],
            used_leases: 1,
            ars: vec![ar],
            template,
        };
        let mut x = Xml::default();
        vnet(&mut x, &v, false);
        let xml = x.finish();
        assert!(xml.contains("<BRIDGE>br0</BRIDGE>") && xml.contains("<TYPE><![CDATA[ETHER]]></TYPE>"), "{xml}");
        assert!(xml.contains("<USED_LEASES>1</USED_LEASES>"), "the VNET counts its leases: {xml}");
        let ar = &xml[xml.find("<AR>").unwrap()..xml.find("</AR>").unwrap()];
        for computed in ["<MAC_END>", "<USED_LEASES>", "<LEASES>"] {
            assert!(!ar.contains(computed), "vnet_pool.xsd has no {computed} in an AR: {ar}");
        }
    }
}
