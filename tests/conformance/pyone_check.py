#!/usr/bin/env python3
"""Checks onesim against OpenNebula's own Python client (pyone, from PyPI).

Usage: pyone_check.py ENDPOINT SESSION USER_SESSION SERVERADMIN_SECRET
       e.g. pyone_check.py http://127.0.0.1:2633/RPC2 oneadmin:opennebula alice:secret s3cret

SESSION is oneadmin's; USER_SESSION a user of the `users` group only (onesim: `--user
alice:secret`), through which the check reads users, groups and documents as a plain user may;
SERVERADMIN_SECRET what serveradmin's auth file holds after `serveradmin:` (onesim:
`--serveradmin-password`). With it the check makes `serveradmin:<user>:<token>` sessions as
OpenNebula's Ruby ServerCipherAuth (OneForm's and Sunstone's CloudAuth) and FireEdge make them,
and uses them through pyone; expired and tampered ones must be refused.

For clusters, hosts, virtual networks (with add_ar/rm_ar), datastores and documents it
allocates, reads, updates, renames and deletes through pyone, reads the pools, and asserts that
every answer parses into pyone's generated bindings with the expected values. Every XML answer
is also checked for the elements its XSD marks required, in the XSD's order. OpenNebula's
rules and error codes are checked on the way (unique names, a non-empty cluster, missing
objects, wrong credentials, who may read which user, group and document, server admin
sessions). Exits 1 with a message naming the step at the first mismatch.
"""

import base64
import hashlib
import json
import sys
import time
import traceback

import pyone
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# Required top-level elements per object, in XSD order (share/doc/xsd; VNET as in 7.x, with
# TEMPLATE_ID).
REQUIRED = {
    "CLUSTER": ["ID", "NAME", "HOSTS", "DATASTORES", "VNETS", "TEMPLATE"],
    "HOST": ["ID", "NAME", "STATE", "PREV_STATE", "IM_MAD", "VM_MAD", "CLUSTER_ID", "CLUSTER",
             "HOST_SHARE", "VMS", "TEMPLATE", "MONITORING"],
    "DATASTORE": ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "PERMISSIONS", "DS_MAD", "TM_MAD",
                  "BASE_PATH", "TYPE", "DISK_TYPE", "STATE", "CLUSTERS", "TOTAL_MB", "FREE_MB",
                  "USED_MB", "IMAGES", "TEMPLATE"],
    "VNET": ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "PERMISSIONS", "CLUSTERS", "BRIDGE",
             "STATE", "PREV_STATE", "PARENT_NETWORK_ID", "TEMPLATE_ID", "VN_MAD", "PHYDEV",
             "VLAN_ID_AUTOMATIC", "OUTER_VLAN_ID_AUTOMATIC", "USED_LEASES", "VROUTERS",
             "UPDATED_VMS", "OUTDATED_VMS", "UPDATING_VMS", "ERROR_VMS", "TEMPLATE", "AR_POOL"],
    "VM": ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "PERMISSIONS", "LAST_POLL", "STATE", "LCM_STATE",
           "PREV_STATE", "PREV_LCM_STATE", "RESCHED", "STIME", "ETIME", "DEPLOY_ID", "MONITORING",
           "SCHED_ACTIONS", "TEMPLATE", "USER_TEMPLATE", "HISTORY_RECORDS", "BACKUPS"],
    "IMAGE": ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "PERMISSIONS", "TYPE", "DISK_TYPE", "PERSISTENT",
              "REGTIME", "MODTIME", "SOURCE", "PATH", "FORMAT", "FS", "SIZE", "STATE", "PREV_STATE",
              "RUNNING_VMS", "CLONING_OPS", "CLONING_ID", "TARGET_SNAPSHOT", "DATASTORE_ID", "DATASTORE",
              "VMS", "CLONES", "APP_CLONES", "TEMPLATE", "SNAPSHOTS", "BACKUP_INCREMENTS"],
    "AR": ["AR_ID", "MAC", "NEXT_INDEX", "SIZE", "TYPE", "USED_LEASES"],
    "DOCUMENT": ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "TYPE", "PERMISSIONS", "TEMPLATE"],
    "USER": ["ID", "GID", "GROUPS", "GNAME", "NAME", "PASSWORD", "AUTH_DRIVER", "ENABLED",
             "TEMPLATE", "DEFAULT_USER_QUOTAS"],
    "GROUP": ["ID", "NAME", "TEMPLATE", "USERS", "DEFAULT_GROUP_QUOTAS"],
    "ZONE": ["ID", "NAME", "STATE", "TEMPLATE", "SERVER_POOL"],
    "PERMISSIONS": ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A",
                    "OTHER_U", "OTHER_M", "OTHER_A"],
    "HOST_SHARE": ["MEM_USAGE", "CPU_USAGE", "TOTAL_MEM", "TOTAL_CPU", "MAX_MEM", "MAX_CPU",
                   "RUNNING_VMS", "VMS_THREAD", "DATASTORES", "PCI_DEVICES", "NUMA_NODES"],
}

# Sub-elements whose own children are checked too.
NESTED = {"PERMISSIONS", "HOST_SHARE"}


class Mismatch(Exception):
    pass


STEP = ["start"]


def step(name):
    STEP[0] = name
    print(f"pyone_check: {name}", flush=True)


def check(condition, what):
    if not condition:
        raise Mismatch(what)


def eq(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def shape(element, tag=None):
    """The element (and its known sub-elements) has the XSD's required children, in order."""
    tag = tag or element.tag
    eq(element.tag, tag, "root element")
    children = [child.tag for child in element]
    at = 0
    for name in REQUIRED.get(tag, []):
        check(name in children[at:], f"<{tag}> lacks required <{name}> (after position {at}); children: {children}")
        at = children.index(name, at) + 1
    for child in element:
        if child.tag in NESTED:
            shape(child)
        if child.tag == "AR_POOL":
            for ar in child:
                shape(ar, "AR")


def node(obj):
    """The XML element pyone's binding was built from."""
    element = getattr(obj, "gds_elementtree_node_", None)
    check(element is not None, f"{type(obj).__name__} keeps no XML element")
    return element


def parsed(obj, tag):
    """`obj` is pyone's binding for `tag`, and its XML has the required shape."""
    eq(type(obj).__name__.removesuffix("Sub"), tag, "pyone binding class")
    shape(node(obj), tag)
    return obj


def refused(exception, call, *args):
    """The call fails with pyone's exception for the expected OpenNebula error code."""
    try:
        call(*args)
    except exception as e:
        return str(e)
    except pyone.OneException as e:
        raise Mismatch(f"expected {exception.__name__}, got {type(e).__name__}: {e}")
    raise Mismatch(f"expected {exception.__name__}, the call succeeded")


def pool_ids(pool, member):
    return [o.ID for o in getattr(pool, member)]


def check_system(one, endpoint):
    step("system.version and user.info")
    eq(one.system.version(), "7.2.0", "one.system.version")
    user = parsed(one.user.info(-1), "USER")
    eq((user.ID, user.NAME, user.GID, user.GNAME), (0, "oneadmin", 0, "oneadmin"), "user.info(-1)")
    eq(user.GROUPS.ID, [0], "USER/GROUPS/ID")
    step("wrong credentials")
    wrong = pyone.OneServer(endpoint, session="oneadmin:not-the-password")
    message = refused(pyone.OneAuthenticationException, wrong.user.info, -1)
    check("authenticated" in message, f"authentication message: {message!r}")


def check_users_and_groups(one, endpoint, user_session):
    step("user.info and group.info by id, as oneadmin and as a plain user")
    name = user_session.split(":", 1)[0]
    plain = pyone.OneServer(endpoint, session=user_session)
    me = parsed(plain.user.info(-1), "USER")
    eq((me.NAME, me.GID, me.GNAME, me.GROUPS.ID), (name, 1, "users", [1]), "the plain user's user.info(-1)")
    check(me.ID > 0, f"the plain user's id {me.ID}")
    eq(parsed(plain.user.info(me.ID), "USER").NAME, name, "a user reads itself by id")
    other = parsed(one.user.info(me.ID), "USER")
    eq((other.ID, other.NAME, other.GID), (me.ID, name, 1), "oneadmin reads another user")
    password = user_session.split(":", 1)[1]
    eq(other.PASSWORD, hashlib.sha256(password.encode()).hexdigest(), "USER/PASSWORD: oned's SHA-256 of it")
    eq(other.AUTH_DRIVER, "core", "USER/AUTH_DRIVER")
    token_password = me.TEMPLATE.get("TOKEN_PASSWORD", "")
    check(len(token_password) == 64 and all(c in "0123456789abcdef" for c in token_password),
          f"USER/TEMPLATE/TOKEN_PASSWORD: {token_password!r}")
    eq(other.TEMPLATE["TOKEN_PASSWORD"], token_password, "the same TOKEN_PASSWORD on every read")
    refused(pyone.OneAuthenticationException, pyone.OneServer(endpoint, session=f"{name}:{other.PASSWORD}").user.info, -1)
    users = parsed(one.userpool.info(), "USER_POOL")
    eq([u.NAME for u in users.USER][:2], ["oneadmin", "serveradmin"], "oned's bootstrap users first")
    check(name in [u.NAME for u in users.USER], f"{name} in the user pool")
    eq([u.NAME for u in plain.userpool.info().USER], [name], "a plain user's user pool")
    message = refused(pyone.OneAuthorizationException, plain.user.info, 0)
    check("not authorized" in message, f"authorization message: {message!r}")
    refused(pyone.OneNoExistsException, one.user.info, 99999)
    refused(pyone.OneNoExistsException, plain.user.info, 99999)

    users = parsed(one.group.info(1), "GROUP")
    eq((users.ID, users.NAME), (1, "users"), "group.info(1)")
    check(me.ID in users.USERS.ID and 0 not in users.USERS.ID, f"USERS of users: {users.USERS.ID}")
    admins = parsed(one.group.info(-1), "GROUP")
    eq((admins.ID, admins.NAME), (0, "oneadmin"), "oneadmin's group.info(-1)")
    check(0 in admins.USERS.ID and me.ID not in admins.USERS.ID, f"USERS of oneadmin: {admins.USERS.ID}")
    eq(parsed(plain.group.info(-1), "GROUP").ID, 1, "a user reads its own group")
    refused(pyone.OneAuthorizationException, plain.group.info, 0)
    refused(pyone.OneNoExistsException, one.group.info, 99999)


def cipher_session(server, key, user, expires):
    """`server:user:token` as ServerCipherAuth#login_token makes it: AES-256-CBC of
    `server:user:expires`, PKCS#7, key `key` (32 characters), IV its first 16, base64."""
    padder = padding.PKCS7(128).padder()
    text = padder.update(f"{server}:{user}:{expires}".encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(key[:16].encode())).encryptor()
    sealed = encryptor.update(text) + encryptor.finalize()
    return f"{server}:{user}:{base64.b64encode(sealed).decode()}"


def check_server_admin(one, endpoint, user_session, secret):
    step("serveradmin sessions: made as OneForm/Sunstone (Ruby) and FireEdge make them")
    name = user_session.split(":", 1)[0]
    # Ruby's ServerCipherAuth: the key is the first 32 characters of sha256(secret).
    ruby_key = hashlib.sha256(secret.encode()).hexdigest()[:32]
    expires = int(time.time()) + 3600
    acting = pyone.OneServer(endpoint, session=cipher_session("serveradmin", ruby_key, name, expires))
    me = parsed(acting.user.info(-1), "USER")
    eq((me.NAME, me.GID), (name, 1), "user.info(-1) through serveradmin is the target user")
    refused(pyone.OneAuthorizationException, acting.user.info, 0)
    doc = acting.document.allocate('NAME = "by-serveradmin"', 104)
    eq(one.document.info(doc).UNAME, name, "a document made through serveradmin is the user's")
    one.document.delete(doc)
    # FireEdge: the key is the first 32 characters of serveradmin's PASSWORD in user.info.
    admin = [u for u in one.userpool.info().USER if u.NAME == "serveradmin"]
    eq([(u.ID, u.GID, u.AUTH_DRIVER) for u in admin], [(1, 0, "server_cipher")], "serveradmin in the pool")
    fireedge_key = admin[0].PASSWORD[:32]
    eq(fireedge_key, ruby_key, "serveradmin's PASSWORD is the digest of its secret")
    itself = pyone.OneServer(endpoint, session=cipher_session("serveradmin", fireedge_key, "serveradmin", expires))
    eq(parsed(itself.user.info(-1), "USER").NAME, "serveradmin", "serveradmin acting as itself")
    step("serveradmin sessions: expired, tampered, under another key, or plain are refused")
    valid = cipher_session("serveradmin", ruby_key, name, expires)
    sealed = bytearray(base64.b64decode(valid.rsplit(":", 1)[1]))
    sealed[5] ^= 0x01
    bad = {
        "expired": cipher_session("serveradmin", ruby_key, name, int(time.time()) - 1),
        "tampered": f"serveradmin:{name}:{base64.b64encode(bytes(sealed)).decode()}",
        "another key": cipher_session("serveradmin", hashlib.sha256(b"guess").hexdigest()[:32], name, expires),
        "plain secret": f"serveradmin:{secret}",
        "not a server admin": f"{name}:{name}:{valid.rsplit(':', 1)[1]}",
    }
    for what, session in bad.items():
        message = refused(pyone.OneAuthenticationException, pyone.OneServer(endpoint, session=session).user.info, -1)
        check("authenticated" in message, f"{what}: {message!r}")


def check_zones(one, endpoint, user_session):
    step("zonepool.info and zone.info: one zone at this endpoint")
    plain = pyone.OneServer(endpoint, session=user_session)
    pool = parsed(plain.zonepool.info(), "ZONE_POOL")
    eq([(z.ID, z.NAME, z.STATE) for z in pool.ZONE], [(0, "OpenNebula", 0)], "zone pool")
    shape(node(pool.ZONE[0]), "ZONE")
    zone = parsed(one.zone.info(0), "ZONE")
    eq(node(zone).findtext("TEMPLATE/ENDPOINT"), endpoint, "ZONE/TEMPLATE/ENDPOINT")
    refused(pyone.OneNoExistsException, one.zone.info, 1)


def check_documents_a_user_may_see(one, endpoint, user_session):
    step("documentpool.info as a plain user: only what it owns or may use")
    plain = pyone.OneServer(endpoint, session=user_session)
    private = one.document.allocate('NAME = "admin-private"', 104)
    shared = one.document.allocate('NAME = "admin-shared"', 104)
    one.document.chmod(shared, 1, 1, 0, 0, 0, 0, 1, 0, 0)
    mine = plain.document.allocate('NAME = "mine"', 104)
    listed = lambda client, flag: sorted(pool_ids(client.documentpool.info(flag, -1, -1, 104), "DOCUMENT"))
    eq(listed(plain, -2), sorted([shared, mine]), "a plain user's -2 (all it may use)")
    eq(listed(plain, -3), [mine], "a plain user's -3 (mine)")
    eq(listed(plain, -1), [mine], "a plain user's -1 (mine and my group's)")
    eq(listed(plain, 0), [shared], "a plain user's view of oneadmin's documents")
    check({private, shared, mine} <= set(listed(one, -2)), "oneadmin lists every document")
    for document in (private, shared, mine):
        one.document.delete(document)


def check_cluster(one):
    step("cluster allocate/info/update/rename")
    cid = one.cluster.allocate("pyone-cluster")
    check(isinstance(cid, int) and cid >= 100, f"cluster id {cid!r}: oned's first free cluster id is 100")
    cluster = parsed(one.cluster.info(cid), "CLUSTER")
    eq((cluster.ID, cluster.NAME, cluster.HOSTS.ID), (cid, "pyone-cluster", []), "new cluster")
    refused(pyone.OneException, one.cluster.allocate, "pyone-cluster")
    eq(one.cluster.update(cid, {"ONEFORM_TAG": "x", "OTHER": "1"}, 1), cid, "cluster.update answer")
    eq(one.cluster.update(cid, {"TEMPLATE": {"OTHER": "2", "V": {"A": "1", "B": "two"}}}, 1), cid, "xml update")
    template = one.cluster.info(cid).TEMPLATE
    eq((template["ONEFORM_TAG"], template["OTHER"], template["V"]["B"]), ("x", "2", "two"), "merged template")
    one.cluster.update(cid, "ONLY = \"this\"", 0)
    eq(dict(one.cluster.info(cid).TEMPLATE), {"ONLY": "this"}, "replaced template")
    eq(one.cluster.rename(cid, "pyone-cluster-2"), cid, "cluster.rename answer")
    eq(one.cluster.info(cid).NAME, "pyone-cluster-2", "renamed cluster")
    refused(pyone.OneActionException, one.cluster.rename, cid, "default")
    refused(pyone.OneNoExistsException, one.cluster.info, 99999)
    pool = parsed(one.clusterpool.info(), "CLUSTER_POOL")
    check({0, cid} <= set(pool_ids(pool, "CLUSTER")), f"cluster pool ids {pool_ids(pool, 'CLUSTER')}")
    for member in pool.CLUSTER:
        shape(node(member), "CLUSTER")
    return cid


def check_host(one, cid):
    step("host allocate/info/status/update/rename")
    hid = one.host.allocate("pyone-host", "dummy", "dummy", cid)
    host = parsed(one.host.info(hid), "HOST")
    eq((host.NAME, host.IM_MAD, host.VM_MAD, host.CLUSTER_ID), ("pyone-host", "dummy", "dummy", cid), "new host")
    eq(host.CLUSTER, "pyone-cluster-2", "HOST/CLUSTER names the cluster")
    check(host.HOST_SHARE.MAX_CPU > 0 and host.HOST_SHARE.MAX_MEM > 0, "HOST_SHARE capacity")
    refused(pyone.OneException, one.host.allocate, "pyone-host", "dummy", "dummy", cid)
    eq(one.cluster.info(cid).HOSTS.ID, [hid], "CLUSTER/HOSTS/ID")
    one.host.status(hid, pyone.HOST_STATUS.DISABLED)
    eq(one.host.info(hid).STATE, pyone.HOST_STATES.DISABLED, "disabled host STATE")
    one.host.status(hid, pyone.HOST_STATUS.ENABLED)
    one.host.update(hid, {"ONEFORM": "tag"}, 1)
    eq(one.host.info(hid).TEMPLATE["ONEFORM"], "tag", "host template")
    one.host.rename(hid, "pyone-host-2")
    pool = parsed(one.hostpool.info(), "HOST_POOL")
    eq([h.NAME for h in pool.HOST if h.ID == hid], ["pyone-host-2"], "host pool")
    return hid


def check_vnet(one, cid):
    step("vn allocate/info/add_ar/rm_ar/update/rename")
    template = {"TEMPLATE": {"NAME": "pyone-net", "VN_MAD": "bridge", "BRIDGE": "br0",
                             "AR": {"TYPE": "IP4", "IP": "10.0.0.10", "SIZE": "4"}}}
    vid = one.vn.allocate(template, cid)
    vnet = parsed(one.vn.info(vid), "VNET")
    eq((vnet.NAME, vnet.VN_MAD, vnet.BRIDGE, vnet.STATE), ("pyone-net", "bridge", "br0", 1), "new vnet")
    eq(vnet.CLUSTERS.ID, [cid], "VNET/CLUSTERS/ID")
    eq(len(vnet.AR_POOL.AR), 1, "AR count after allocate")
    ar = vnet.AR_POOL.AR[0]
    eq((ar.AR_ID, ar.IP, ar.SIZE, ar.TYPE), ("0", "10.0.0.10", 4, "IP4"), "first AR")
    eq(node(ar).findtext("IP_END"), "10.0.0.13", "AR IP_END")
    refused(pyone.OneException, one.vn.allocate, 'NAME = "pyone-net"\nVN_MAD = "bridge"', cid)
    eq(one.vn.add_ar(vid, 'AR = [ IPAM_MAD = "aws", PROVISION_ID = "7", SIZE = "1" ]'), vid, "add_ar answer")
    ars = one.vn.info(vid).AR_POOL.AR
    eq([a.AR_ID for a in ars], ["0", "1"], "AR ids after add_ar")
    eq(node(ars[1]).findtext("IPAM_MAD"), "aws", "IPAM_MAD of the added AR")
    check(ars[1].IP, "an IPAM AR gets an IP")
    eq(one.vn.rm_ar(vid, 1), vid, "rm_ar answer")
    eq([a.AR_ID for a in one.vn.info(vid).AR_POOL.AR], ["0"], "AR ids after rm_ar")
    refused(pyone.OneActionException, one.vn.rm_ar, vid, 1)
    one.vn.update(vid, {"DESCRIPTION": "d"}, 1)
    eq(one.vn.info(vid).TEMPLATE["DESCRIPTION"], "d", "vnet template")
    one.vn.rename(vid, "pyone-net-2")
    pool = parsed(one.vnpool.info(-2, -1, -1), "VNET_POOL")
    mine = [v for v in pool.VNET if v.ID == vid]
    eq([(v.NAME, len(v.AR_POOL.AR)) for v in mine], [("pyone-net-2", 1)], "vnet pool entry")
    eq(pool_ids(one.vnpool.info(-2, vid, vid), "VNET"), [vid], "vnet pool id range")
    return vid


def check_datastore(one, cid):
    step("datastore allocate/info/update/rename")
    did = one.datastore.allocate('NAME = "pyone-ds"\nTYPE = "IMAGE_DS"\nDS_MAD = "fs"\nTM_MAD = "ssh"', cid)
    ds = parsed(one.datastore.info(did), "DATASTORE")
    eq((ds.NAME, ds.TYPE, ds.DS_MAD, ds.TM_MAD, ds.STATE), ("pyone-ds", 0, "fs", "ssh", 0), "new datastore")
    eq(ds.CLUSTERS.ID, [cid], "DATASTORE/CLUSTERS/ID")
    sid = one.datastore.allocate({"TEMPLATE": {"NAME": "pyone-sys", "TYPE": "SYSTEM_DS", "TM_MAD": "ssh"}}, cid)
    eq(one.datastore.info(sid).TYPE, pyone.DATASTORE_TYPES.SYSTEM, "system datastore TYPE")
    refused(pyone.OneException, one.datastore.allocate, 'NAME = "pyone-ds"', cid)
    one.datastore.update(did, {"LIMIT_MB": "10"}, 1)
    eq(one.datastore.info(did).TEMPLATE["LIMIT_MB"], "10", "datastore template")
    one.datastore.rename(did, "pyone-ds-2")
    pool = parsed(one.datastorepool.info(), "DATASTORE_POOL")
    names = {d.ID: d.NAME for d in pool.DATASTORE}
    eq((names.get(0), names.get(did), names.get(sid)), ("system", "pyone-ds-2", "pyone-sys"), "datastore pool")
    return [did, sid]


def check_document(one):
    step("document allocate/info/update/rename/chown/chmod")
    body = json.dumps({"name": "p", "state": 3, "tags": {"a": "<b>"}})
    doc = one.document.allocate({"TEMPLATE": {"NAME": "pyone-doc", "PROVISION_BODY": body}}, 104)
    info = parsed(one.document.info(doc, True), "DOCUMENT")
    eq((info.ID, info.NAME, info.TYPE, info.UNAME), (doc, "pyone-doc", "104", "oneadmin"), "new document")
    eq(json.loads(info.TEMPLATE["PROVISION_BODY"]), json.loads(body), "document body")
    changed = json.dumps({"name": "p", "state": 4})
    one.document.update(doc, {"TEMPLATE": {"PROVISION_BODY": changed}}, 1)
    eq(json.loads(one.document.info(doc).TEMPLATE["PROVISION_BODY"])["state"], 4, "updated body")
    eq(one.document.rename(doc, "pyone-doc-2"), doc, "document.rename answer")
    eq(one.document.chown(doc, -1, -1), doc, "document.chown answer")
    one.document.chmod(doc, 1, 1, 1, 1, 0, 0, -1, -1, -1)
    perms = one.document.info(doc).PERMISSIONS
    got = (perms.OWNER_U, perms.OWNER_M, perms.OWNER_A, perms.GROUP_U, perms.GROUP_M, perms.OTHER_U)
    eq(got, (1, 1, 1, 1, 0, 0), "document permissions")
    other = one.document.allocate('NAME = "pyone-provider"\nBODY = "{}"', 103)
    pool = parsed(one.documentpool.info(-2, -1, -1, 104), "DOCUMENT_POOL")
    eq([(d.ID, d.NAME) for d in pool.DOCUMENT if d.ID in (doc, other)], [(doc, "pyone-doc-2")], "provisions")
    eq(pool_ids(one.documentpool.info(-3, -1, -1, 103), "DOCUMENT"), [other], "providers of mine")
    for member in pool.DOCUMENT:
        shape(node(member), "DOCUMENT")
    for document in (doc, other):
        eq(one.document.delete(document), document, "document.delete answer")
    refused(pyone.OneNoExistsException, one.document.info, doc)
    refused(pyone.OneNoExistsException, one.document.delete, doc)


def check_children(one, hid, vid, did):
    step("unmanaged children: vm allocate/deploy/info/recover, image allocate/info/delete")
    image = one.image.allocate('NAME = "pyone-image"', did)
    info = parsed(one.image.info(image), "IMAGE")
    eq((info.NAME, info.DATASTORE_ID, info.DATASTORE, info.STATE), ("pyone-image", did, "pyone-ds-2", 1), "image")
    eq(one.datastore.info(did).IMAGES.ID, [image], "DATASTORE/IMAGES/ID")
    refused(pyone.OneActionException, one.datastore.delete, did)
    vm = one.vm.allocate({"TEMPLATE": {"NAME": "pyone-vm", "NIC": {"NETWORK_ID": str(vid)}}}, False)
    eq(parsed(one.vm.info(vm), "VM").STATE, pyone.VM_STATE.PENDING, "allocated VM state")
    eq(one.vm.deploy(vm, hid), vm, "vm.deploy answer")
    running = one.vm.info(vm)
    eq((running.NAME, running.STATE, running.LCM_STATE), ("pyone-vm", 3, 3), "deployed VM")
    eq(one.host.info(hid).HOST_SHARE.RUNNING_VMS, 1, "HOST_SHARE/RUNNING_VMS")
    eq(one.host.info(hid).VMS.ID, [vm], "HOST/VMS/ID")
    leases = node(one.vn.info(vid).AR_POOL.AR[0]).findall("LEASES/LEASE/VM")
    eq([int(lease.text) for lease in leases], [vm], "AR_POOL/AR/LEASES/LEASE/VM")
    eq(one.vn.info(vid).USED_LEASES, 1, "VNET/USED_LEASES")
    refused(pyone.OneActionException, one.host.delete, hid)
    refused(pyone.OneActionException, one.vn.delete, vid)
    eq([v.ID for v in parsed(one.vmpool.info(-2, -1, -1, -1), "VM_POOL").VM], [vm], "vm pool")
    eq(one.vm.recover(vm, 3), vm, "vm.recover(delete) answer")
    eq(one.vm.info(vm).STATE, pyone.VM_STATE.DONE, "recovered VM state")
    eq(one.host.info(hid).VMS.ID, [], "host VMs after recover")
    eq(len(one.vmpool.info(-2, -1, -1, -1).VM), 0, "vm pool without DONE VMs")
    eq([i.ID for i in parsed(one.imagepool.info(-2, -1, -1), "IMAGE_POOL").IMAGE], [image], "image pool")
    eq(one.image.delete(image), image, "image.delete answer")


def check_teardown(one, cid, hid, vid, datastores):
    step("delete: a non-empty cluster is refused, members first, then the cluster")
    refused(pyone.OneActionException, one.cluster.delete, cid)
    eq(one.host.delete(hid), hid, "host.delete answer")
    eq(one.vn.delete(vid), vid, "vn.delete answer")
    for did in datastores:
        eq(one.datastore.delete(did), did, "datastore.delete answer")
    eq(one.cluster.delete(cid), cid, "cluster.delete answer")
    for call, oid in [(one.host.info, hid), (one.vn.info, vid), (one.cluster.info, cid), (one.cluster.delete, cid)]:
        refused(pyone.OneNoExistsException, call, oid)
    eq(pool_ids(one.clusterpool.info(), "CLUSTER"), [0], "only the default cluster is left")


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    endpoint, session, user_session, secret = argv[1:]
    one = pyone.OneServer(endpoint, session=session)
    try:
        check_system(one, endpoint)
        check_users_and_groups(one, endpoint, user_session)
        check_server_admin(one, endpoint, user_session, secret)
        check_zones(one, endpoint, user_session)
        check_documents_a_user_may_see(one, endpoint, user_session)
        cid = check_cluster(one)
        hid = check_host(one, cid)
        vid = check_vnet(one, cid)
        datastores = check_datastore(one, cid)
        check_document(one)
        check_children(one, hid, vid, datastores[0])
        check_teardown(one, cid, hid, vid, datastores)
    except Mismatch as e:
        print(f"pyone_check: MISMATCH in '{STEP[0]}': {e}", file=sys.stderr)
        return 1
    except Exception as e:  # an answer pyone could not take at all
        traceback.print_exc()
        print(f"pyone_check: FAILED in '{STEP[0]}': {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("pyone_check: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
