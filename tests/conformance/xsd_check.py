#!/usr/bin/env python3
"""Validates onesim's XML answers against OpenNebula's own XSDs (share/doc/xsd, copied
unmodified into tests/conformance/xsd/), with the pure-Python validator xmlschema.

Usage: xsd_check.py ENDPOINT SESSION XSD_DIR
       e.g. xsd_check.py http://127.0.0.1:2633/RPC2 oneadmin:opennebula tests/conformance/xsd

It first fills onesim over plain XML-RPC (a cluster, a host, two networks, one of them with a
leased AR and an IPAM AR, two datastores, an image, a running and a pending VM, two documents),
then asks for every `*.info` and pool answer onesim gives and validates each one whole against
its XSD. Pools must not be empty. oned answers carry no namespace, so OpenNebula's is added to
every element before validating.

The only thing allowed beyond the schemas: inside `AR_POOL/AR`, the attributes in AR_EXTRAS.
oned prints an address range's attributes from its attribute map (AddressRange::to_xml), so
every attribute the AR was made with appears there, including those the XSD does not list; an
IPAM driver's `register_address_range` (OneForm's elastic IPs) answers `AR = [ TYPE, IP,
EXTERNAL_IP, SIZE, IPAM_MAD, ... ]`, and onesim keeps exactly IPAM_MAD and EXTERNAL_IP of those.
They are removed before validating, and at least one AR must have carried them, so the allowance
cannot hide a check that never ran.

`one.vmpool.info` is not validated: oned answers it with the short VM form of vm_pool.xsd,
which the reference copy does not hold (vm.xsd is the `one.vm.info` form). `one.imagepool.info`
is checked member by member against image.xsd, which is all upstream's image_pool.xsd says.
Every answer is checked; exits 1 naming each failing call with its schema violations.
"""

import sys
import xml.etree.ElementTree as ET
import xmlrpc.client
from pathlib import Path

try:
    import xmlschema
except ImportError:
    sys.exit("xsd_check: xmlschema is missing from this Python: run scripts/setup, which installs it into .tools/venv")

NAMESPACE = "http://opennebula.org/XMLSchema"
AR_EXTRAS = {"IPAM_MAD", "EXTERNAL_IP"}


class Invalid(Exception):
    pass


class Onesim:
    """oned's XML-RPC answers: [ok, value, error code, ...]; a failure raises."""

    def __init__(self, endpoint, session):
        self.server = xmlrpc.client.ServerProxy(endpoint)
        self.session = session

    def call(self, method, *args):
        answer = getattr(self.server, method)(self.session, *args)
        if not answer[0]:
            raise Invalid(f"{method}{args} failed: {answer[1]}")
        return answer[1]


def populate(one):
    """Objects of every kind, in the states whose XML differs (leases, IPAM ARs, VLANs)."""
    cid = one.call("one.cluster.allocate", "xsd-cluster")
    one.call("one.cluster.update", cid, 'NOTE = "xsd"\nV = [ A = "1", B = "two" ]', 1)
    hid = one.call("one.host.allocate", "xsd-host", "kvm", "kvm", cid)
    one.call("one.host.update", hid, 'ONEFORM = [ PROVISION_ID = "7" ]', 1)
    net = 'NAME = "xsd-net"\nVN_MAD = "bridge"\nBRIDGE = "br0"\nAR = [ TYPE = "IP4", IP = "10.0.0.10", SIZE = "4" ]'
    vid = one.call("one.vn.allocate", net, cid)
    one.call("one.vn.add_ar", vid, 'AR = [ IPAM_MAD = "aws", PROVISION_ID = "7", SIZE = "1" ]')
    vxlan = 'NAME = "xsd-vxlan"\nVN_MAD = "vxlan"\nVLAN_ID = "7"\nPHYDEV = "eth0"\nAR = [ TYPE = "ETHER", SIZE = "2" ]'
    xid = one.call("one.vn.allocate", vxlan, cid)
    did = one.call("one.datastore.allocate", 'NAME = "xsd-ds"\nTYPE = "IMAGE_DS"\nDS_MAD = "fs"\nTM_MAD = "ssh"', cid)
    sid = one.call("one.datastore.allocate", 'NAME = "xsd-sys"\nTYPE = "SYSTEM_DS"\nTM_MAD = "ssh"', cid)
    image = one.call("one.image.allocate", 'NAME = "xsd-image"', did)
    running = one.call("one.vm.allocate", f'NAME = "xsd-vm"\nNIC = [ NETWORK_ID = "{vid}" ]', False)
    one.call("one.vm.deploy", running, hid)
    pending = one.call("one.vm.allocate", 'NAME = "xsd-pending"', True)
    provision = one.call("one.document.allocate", 'NAME = "xsd-provision"\nBODY = "{\\"a\\": 1}"', 104)
    provider = one.call("one.document.allocate", 'NAME = "xsd-provider"\nBODY = "{}"', 103)
    return {
        "cluster": [0, cid], "host": [hid], "vn": [vid, xid], "datastore": [0, did, sid],
        "image": [image], "vm": [running, pending], "document": [provision, provider], "user": [-1, 1],
        "zone": [0],
    }


def load_schemas(xsd_dir):
    """Root element name -> the schema that declares it."""
    by_file = {name: xmlschema.XMLSchema(str(Path(xsd_dir) / f"{name}.xsd")) for name in
               ["cluster_pool", "host_pool", "datastore_pool", "vnet", "vnet_pool", "document_pool",
                "user", "user_pool", "zone", "zone_pool", "image", "vm"]}
    return {
        "CLUSTER": by_file["cluster_pool"], "CLUSTER_POOL": by_file["cluster_pool"],
        "HOST": by_file["host_pool"], "HOST_POOL": by_file["host_pool"],
        "DATASTORE": by_file["datastore_pool"], "DATASTORE_POOL": by_file["datastore_pool"],
        "VNET": by_file["vnet"], "VNET_POOL": by_file["vnet_pool"],
        "DOCUMENT": by_file["document_pool"], "DOCUMENT_POOL": by_file["document_pool"],
        "USER": by_file["user"], "USER_POOL": by_file["user_pool"], "IMAGE": by_file["image"], "VM": by_file["vm"],
        "ZONE": by_file["zone"], "ZONE_POOL": by_file["zone_pool"],
    }


def strip_ar_extras(root):
    """Removes AR_EXTRAS from every AR_POOL/AR; returns how many were removed."""
    removed = 0
    for ar in root.iter("AR"):
        for child in list(ar):
            if child.tag in AR_EXTRAS:
                ar.remove(child)
                removed += 1
    return removed


def qualify(root):
    for element in root.iter():
        element.tag = f"{{{NAMESPACE}}}{element.tag}"
    return root


def validate(schemas, method, xml, expected_root):
    """Validates one answer whole; returns (members, removed AR extras)."""
    root = ET.fromstring(xml)
    if root.tag != expected_root:
        raise Invalid(f"{method}: root <{root.tag}>, expected <{expected_root}>")
    # Only address ranges may carry extras; an AR element anywhere else is validated as is.
    removed = sum(strip_ar_extras(pool) for pool in root.iter("AR_POOL"))
    members = list(root) if expected_root.endswith("_POOL") else [root]
    if expected_root == "IMAGE_POOL":
        for member in members:
            if member.tag != "IMAGE":
                raise Invalid(f"{method}: <IMAGE_POOL> holds <{member.tag}>")
            report(method, schemas["IMAGE"].iter_errors(qualify(member)))
    else:
        report(method, schemas[expected_root].iter_errors(qualify(root)))
    return len(members), removed


def report(method, errors):
    errors = list(errors)
    if errors:
        # Paths and reasons without the namespace the answers were given for validation.
        plain = lambda text: str(text).replace(f"{{{NAMESPACE}}}", "")
        details = "\n".join(f"  - {plain(e.path)}: {plain(e.reason)}" for e in errors)
        raise Invalid(f"{method}: {len(errors)} schema violation(s):\n{details}")


def answers(one, ids):
    """(method, xml, root element) for every info and pool call onesim answers."""
    calls = []
    for kind, root in [("cluster", "CLUSTER"), ("host", "HOST"), ("vn", "VNET"), ("datastore", "DATASTORE"),
                       ("image", "IMAGE"), ("vm", "VM"), ("document", "DOCUMENT"), ("user", "USER"), ("zone", "ZONE")]:
        for oid in ids[kind]:
            calls.append((f"one.{kind}.info({oid})", one.call(f"one.{kind}.info", oid), root))
    calls += [
        ("one.clusterpool.info()", one.call("one.clusterpool.info"), "CLUSTER_POOL"),
        ("one.hostpool.info()", one.call("one.hostpool.info"), "HOST_POOL"),
        ("one.datastorepool.info()", one.call("one.datastorepool.info"), "DATASTORE_POOL"),
        ("one.vnpool.info(-2, -1, -1)", one.call("one.vnpool.info", -2, -1, -1), "VNET_POOL"),
        ("one.imagepool.info(-2, -1, -1)", one.call("one.imagepool.info", -2, -1, -1), "IMAGE_POOL"),
        ("one.userpool.info()", one.call("one.userpool.info"), "USER_POOL"),
        ("one.zonepool.info()", one.call("one.zonepool.info"), "ZONE_POOL"),
    ]
    for doc_type in (103, 104):
        method = f"one.documentpool.info(-2, -1, -1, {doc_type})"
        calls.append((method, one.call("one.documentpool.info", -2, -1, -1, doc_type), "DOCUMENT_POOL"))
    return calls


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    endpoint, session, xsd_dir = argv[1:]
    one = Onesim(endpoint, session)
    try:
        schemas = load_schemas(xsd_dir)
        ids = populate(one)
        extras, failures = 0, []
        for method, xml, root in answers(one, ids):
            try:
                members, removed = validate(schemas, method, xml, root)
                if root.endswith("_POOL") and members == 0:
                    raise Invalid(f"{method}: the pool is empty, so nothing in it was checked")
            except Invalid as e:
                failures.append(str(e))
                continue
            extras += removed
            print(f"xsd_check: valid {method} <{root}> ({members} checked, {removed} AR extras)", flush=True)
        if failures:
            raise Invalid(f"{len(failures)} answer(s) do not match the XSDs:\n" + "\n".join(failures))
        if extras == 0:
            raise Invalid(f"no AR carried {sorted(AR_EXTRAS)}: the IPAM address range was not checked")
        vms = ET.fromstring(one.call("one.vmpool.info", -2, -1, -1, -1))
        print(f"xsd_check: not validated one.vmpool.info ({len(vms)} VMs): no vm_pool.xsd in the copy", flush=True)
    except (Invalid, xmlschema.XMLSchemaException, ET.ParseError) as e:
        print(f"xsd_check: INVALID {e}", file=sys.stderr)
        return 1
    print("xsd_check: every answer is valid", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
