//! Realistic oned answers (written after the XSDs, with the elements formwork ignores) read
//! into the domain structs.

use super::*;

fn parse<T>(xml: &str, read: fn(&Element) -> Parsed<T>) -> Parsed<T> {
    read(&Element::parse(xml).unwrap())
}

const CLUSTER: &str = r#"<CLUSTER>
  <ID>100</ID>
  <NAME>aws-cluster</NAME>
  <HOSTS><ID>3</ID><ID>4</ID></HOSTS>
  <DATASTORES><ID>101</ID></DATASTORES>
  <VNETS/>
  <TEMPLATE>
    <ONEFORM><![CDATA[provision_id=7]]></ONEFORM>
    <RESERVED_CPU><![CDATA[]]></RESERVED_CPU>
  </TEMPLATE>
  <PLAN><ID>-1</ID><STATE>0</STATE></PLAN>
</CLUSTER>"#;

#[test]
fn a_cluster_reads_its_members_and_template() {
    let cluster = parse(CLUSTER, cluster).unwrap();
    assert_eq!((cluster.id, cluster.name.as_str()), (100, "aws-cluster"));
    assert_eq!((cluster.hosts, cluster.datastores, cluster.vnets), (vec![3, 4], vec![101], vec![]));
    assert_eq!(cluster.template.single("ONEFORM"), Some("provision_id=7"));
    assert_eq!(cluster.template.single("RESERVED_CPU"), Some(""));
}

const HOST: &str = r#"<HOST><ID>3</ID><NAME>10.0.0.5</NAME><STATE>2</STATE><PREV_STATE>2</PREV_STATE>
<IM_MAD><![CDATA[kvm]]></IM_MAD><VM_MAD><![CDATA[kvm]]></VM_MAD><CLUSTER_ID>100</CLUSTER_ID>
<CLUSTER>aws-cluster</CLUSTER><HOST_SHARE><MEM_USAGE>0</MEM_USAGE><DATASTORES><DISK_USAGE>0</DISK_USAGE>
<DS><FREE_MB>1</FREE_MB><ID>0</ID><TOTAL_MB>2</TOTAL_MB><USED_MB>1</USED_MB></DS></DATASTORES>
<PCI_DEVICES/></HOST_SHARE><VMS><ID>12</ID><ID>15</ID></VMS>
<TEMPLATE><ARCH><![CDATA[x86_64]]></ARCH><ONEFORM><![CDATA[provision_id=7]]></ONEFORM>
<PCI><CLASS>0300</CLASS><VENDOR>10de</VENDOR></PCI></TEMPLATE>
<MONITORING><TIMESTAMP>1700000000</TIMESTAMP><CAPACITY><FREE_CPU>800</FREE_CPU></CAPACITY></MONITORING></HOST>"#;

#[test]
fn a_host_ignores_shares_and_monitoring() {
    let host = parse(HOST, host).unwrap();
    assert_eq!((host.id, host.name.as_str(), host.state, host.cluster_id), (3, "10.0.0.5", Host::MONITORED, 100));
    assert_eq!((host.im_mad.as_str(), host.vm_mad.as_str(), host.vms), ("kvm", "kvm", vec![12, 15]));
    assert_eq!(host.template.single("ARCH"), Some("x86_64"));
    let pci = host.template.vector("PCI").unwrap();
    assert_eq!(pci, &[("CLASS".to_owned(), "0300".to_owned()), ("VENDOR".to_owned(), "10de".to_owned())]);
}

const DATASTORE: &str = r#"<DATASTORE><ID>101</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME>
<GNAME>oneadmin</GNAME><NAME>aws-image</NAME><PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M>
<OWNER_A>0</OWNER_A><GROUP_U>1</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U>
<OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS><DS_MAD><![CDATA[fs]]></DS_MAD>
<TM_MAD><![CDATA[ssh]]></TM_MAD><BASE_PATH><![CDATA[/var/lib/one//datastores/101]]></BASE_PATH>
<TYPE>0</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE><CLUSTERS><ID>100</ID></CLUSTERS>
<TOTAL_MB>0</TOTAL_MB><FREE_MB>0</FREE_MB><USED_MB>0</USED_MB><IMAGES><ID>7</ID></IMAGES>
<TEMPLATE><DS_MAD><![CDATA[fs]]></DS_MAD><TYPE><![CDATA[IMAGE_DS]]></TYPE></TEMPLATE></DATASTORE>"#;

#[test]
fn a_datastore_reads_type_clusters_and_images() {
    let ds = parse(DATASTORE, datastore).unwrap();
    assert_eq!((ds.id, ds.name.as_str(), ds.ds_type, ds.state), (101, "aws-image", 0, 0));
    assert_eq!((ds.clusters, ds.images), (vec![100], vec![7]));
    assert_eq!(ds.template.single("TYPE"), Some("IMAGE_DS"));
}

const VNET: &str = r#"<VNET><ID>5</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>
<NAME>public</NAME><PERMISSIONS><OWNER_U>1</OWNER_U></PERMISSIONS><CLUSTERS><ID>100</ID></CLUSTERS>
<BRIDGE><![CDATA[onebr5]]></BRIDGE><STATE>1</STATE><PREV_STATE>0</PREV_STATE>
<PARENT_NETWORK_ID><![CDATA[]]></PARENT_NETWORK_ID><VN_MAD><![CDATA[elastic]]></VN_MAD>
<PHYDEV><![CDATA[]]></PHYDEV><VLAN_ID_AUTOMATIC>0</VLAN_ID_AUTOMATIC>
<OUTER_VLAN_ID_AUTOMATIC>0</OUTER_VLAN_ID_AUTOMATIC><USED_LEASES>3</USED_LEASES><VROUTERS/>
<UPDATED_VMS/><OUTDATED_VMS/><UPDATING_VMS/><ERROR_VMS/>
<TEMPLATE><NAME><![CDATA[public]]></NAME><ONEFORM><![CDATA[provision_id=7]]></ONEFORM></TEMPLATE>
<AR_POOL>
  <AR><AR_ID><![CDATA[0]]></AR_ID><IP><![CDATA[10.1.0.1]]></IP><MAC><![CDATA[02:00:0a:01:00:01]]></MAC>
    <SIZE><![CDATA[4]]></SIZE><TYPE><![CDATA[IP4]]></TYPE><USED_LEASES>3</USED_LEASES>
    <LEASES>
      <LEASE><IP><![CDATA[10.1.0.1]]></IP><MAC><![CDATA[02:00:0a:01:00:01]]></MAC><VM><![CDATA[12]]></VM></LEASE>
      <LEASE><IP><![CDATA[10.1.0.2]]></IP><VM><![CDATA[-1]]></VM></LEASE>
      <LEASE><IP><![CDATA[10.1.0.3]]></IP><VROUTER><![CDATA[2]]></VROUTER></LEASE>
      <LEASE><IP><![CDATA[10.1.0.4]]></IP><VM><![CDATA[12]]></VM></LEASE>
    </LEASES></AR>
  <AR><AR_ID><![CDATA[1]]></AR_ID><IP><![CDATA[3.4.5.6]]></IP><MAC><![CDATA[02:00:03:04:05:06]]></MAC>
    <SIZE><![CDATA[1]]></SIZE><TYPE><![CDATA[IP4]]></TYPE><IPAM_MAD><![CDATA[aws]]></IPAM_MAD>
    <EXTERNAL_IP><![CDATA[54.1.2.3]]></EXTERNAL_IP><PROVISION_ID><![CDATA[7]]></PROVISION_ID>
    <USED_LEASES>0</USED_LEASES></AR>
</AR_POOL></VNET>"#;

#[test]
fn a_vnet_reads_address_ranges_and_vm_leases_only() {
    let vnet = parse(VNET, vnet).unwrap();
    assert_eq!((vnet.id, vnet.name.as_str(), vnet.vn_mad.as_str(), vnet.used_leases), (5, "public", "elastic", 3));
    assert!(vnet.is_ready());
    assert_eq!(vnet.clusters, vec![100]);
    let [plain, public] = vnet.ars.as_slice() else { panic!("two ARs expected: {:?}", vnet.ars) };
    assert_eq!(
        (plain.ar_id, plain.ip.as_deref(), plain.size, plain.leases.clone()),
        (0, Some("10.1.0.1"), 4, vec![12])
    );
    assert_eq!((plain.ipam_mad.as_deref(), plain.external_ip.as_deref()), (None, None));
    assert_eq!(
        (public.ar_id, public.ipam_mad.as_deref(), public.external_ip.as_deref()),
        (1, Some("aws"), Some("54.1.2.3"))
    );
    assert!(public.leases.is_empty());
    assert_eq!(vnet.leased_vms(), vec![12]);
}

#[test]
fn vms_images_and_users_read_what_teardown_needs() {
    let xml = "<VM><ID>12</ID><UID>0</UID><NAME>web-0</NAME><LAST_POLL>0</LAST_POLL><STATE>3</STATE>\
               <LCM_STATE>3</LCM_STATE><TEMPLATE><CPU>1</CPU></TEMPLATE></VM>";
    assert_eq!(parse(xml, vm).unwrap(), Vm { id: 12, name: "web-0".to_owned(), state: 3 });
    let xml = "<IMAGE><ID>7</ID><NAME>ubuntu</NAME><TYPE>0</TYPE><STATE>1</STATE><DATASTORE_ID>101</DATASTORE_ID>\
               <DATASTORE>aws-image</DATASTORE><VMS/></IMAGE>";
    let expected = Image { id: 7, name: "ubuntu".to_owned(), state: 1, datastore_id: 101 };
    assert_eq!(parse(xml, image).unwrap(), expected);
    let xml = "<USER><ID>0</ID><GID>0</GID><GROUPS><ID>0</ID><ID>1</ID></GROUPS><GNAME>oneadmin</GNAME>\
               <NAME>oneadmin</NAME><PASSWORD>x</PASSWORD><AUTH_DRIVER>core</AUTH_DRIVER><ENABLED>1</ENABLED>\
               <TEMPLATE/></USER>";
    let user = parse(xml, user).unwrap();
    assert_eq!(
        (user.id, user.name.as_str(), user.gid, user.gname.as_str(), user.groups),
        (0, "oneadmin", 0, "oneadmin", vec![0, 1])
    );
}

#[test]
fn groups_read_their_name_and_members() {
    let xml = "<GROUP><ID>1</ID><NAME>users</NAME><TEMPLATE><SUNSTONE><VIEWS>user</VIEWS></SUNSTONE></TEMPLATE>\
               <USERS><ID>2</ID><ID>5</ID></USERS><ADMINS/><DATASTORE_QUOTA/><DEFAULT_GROUP_QUOTAS/></GROUP>";
    let expected = Group { id: 1, name: "users".to_owned(), users: vec![2, 5] };
    assert_eq!(parse(xml, group).unwrap(), expected);
    let empty = parse("<GROUP><ID>100</ID><NAME>dev</NAME><TEMPLATE/><USERS/><ADMINS/></GROUP>", group).unwrap();
    assert_eq!(empty.users, Vec::<i64>::new());
    let error = parse("<GROUP><ID>1</ID><NAME>users</NAME></GROUP>", group).unwrap_err();
    assert!(error.contains("<GROUP> 1 lacks <USERS>"), "{error}");
    assert!(parse("<USER><ID>1</ID></USER>", group).unwrap_err().contains("expected a <GROUP>"));
}

#[test]
fn pools_are_searched_by_exact_name() {
    let pool = Element::parse(&format!(
        "<CLUSTER_POOL><CLUSTER><ID>0</ID><NAME>default</NAME></CLUSTER>{CLUSTER}</CLUSTER_POOL>"
    ))
    .unwrap();
    let found = find_named(&pool, "CLUSTER_POOL", "CLUSTER", "aws-cluster").unwrap().unwrap();
    assert_eq!(cluster(found).unwrap().id, 100);
    assert!(find_named(&pool, "CLUSTER_POOL", "CLUSTER", "aws").unwrap().is_none());
    let empty = Element::parse("<HOST_POOL/>").unwrap();
    assert!(find_named(&empty, "HOST_POOL", "HOST", "x").unwrap().is_none());
    assert!(find_named(&empty, "CLUSTER_POOL", "CLUSTER", "x").unwrap_err().contains("<CLUSTER_POOL>"));
}

#[test]
fn missing_or_bad_elements_are_named() {
    let no_state = HOST.replace("<STATE>2</STATE>", "");
    assert_eq!(parse(&no_state, host).unwrap_err(), "<HOST> 3 lacks <STATE>");
    let bad_id = CLUSTER.replace("<ID>4</ID>", "<ID>four</ID>");
    assert_eq!(parse(&bad_id, cluster).unwrap_err(), "<HOSTS> of <CLUSTER> 100 holds a bad <ID>");
    let bad_size = VNET.replace("<SIZE><![CDATA[4]]></SIZE>", "<SIZE>lots</SIZE>");
    assert_eq!(parse(&bad_size, vnet).unwrap_err(), "<SIZE> of <AR> 0 holds 'lots', not an integer (in <VNET> 5)");
    assert!(parse(CLUSTER, host).unwrap_err().contains("expected a <HOST> document, found <CLUSTER>"));
    let no_template = DATASTORE.split("<TEMPLATE>").next().unwrap().to_owned() + "</DATASTORE>";
    assert_eq!(parse(&no_template, datastore).unwrap_err(), "<DATASTORE> 101 lacks <TEMPLATE>");
}
