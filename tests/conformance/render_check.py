#!/usr/bin/env python3
"""Renders deployment templates as OneForm's Ansible inventory plugin does, and checks the
inventory it would build from them.

Usage: render_check.py TEMPLATE DOCUMENT [TEMPLATE DOCUMENT ...]

TEMPLATE is a driver's `ansible/templates/<deployment>.j2`; DOCUMENT a JSON file holding the
provision as OneForm's REST API serves it (`{"DOCUMENT": {"ID": ..., "TEMPLATE":
{"PROVISION_BODY": {...}}}}`), which is what the plugin reads back before rendering.

The variables are OneForm's contract (spec §1.7), written here from the spec: the provision
body minus `one_objects` and `tfstate`, `user_inputs_values` renamed `user_inputs`, `id`, and
`one = {version, frontend_ip, nodes, network_ids, system_ds_id, image_ds_id}`. Rendering is
Jinja2 with StrictUndefined, so a template that reads anything else fails here as it fails
under OneForm. The result must be a YAML inventory with what the plugin needs: `all.vars.vn`
and `all.vars.ds.config.<TYPE>` entries named after the provision's objects, and groups
(`frontend`, `node`) of hosts, the node group holding exactly the provision's hosts.
Exits 1 with a message naming the template at the first mismatch.
"""

import json
import os
import re
import sys

import jinja2
import yaml

# What a front-end would give: OpenNebula's version and the host of its XML-RPC endpoint.
ONE_VERSION = "7.0.0"
FRONTEND_IP = "127.0.0.1"


class Mismatch(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def base_name(name):
    """`net (provision_3)` -> `net`: the plugin strips `\\s*\\(.*\\)` to map objects back."""
    return re.sub(r"\s*\(.*\)", "", name)


def first_ds_id(datastores, kind):
    for ds in datastores:
        if str((ds.get("template") or {}).get("type", "")).upper() == kind:
            return ds.get("id")
    return None


def variables(document):
    """OneForm's variable set for a served provision document."""
    doc = document["DOCUMENT"]
    body = doc["TEMPLATE"]["PROVISION_BODY"]
    objects = body.get("one_objects") or {}
    hosts = objects.get("hosts") or []
    networks = objects.get("networks") or []
    datastores = objects.get("datastores") or []
    values = {k: v for k, v in body.items() if k not in ("one_objects", "tfstate", "user_inputs_values")}
    values["user_inputs"] = body.get("user_inputs_values") or {}
    values["id"] = int(doc["ID"])
    values["one"] = {
        "version": ONE_VERSION,
        "frontend_ip": FRONTEND_IP,
        "nodes": [h["name"] for h in hosts],
        "network_ids": [n["id"] for n in networks],
        "system_ds_id": first_ds_id(datastores, "SYSTEM_DS"),
        "image_ds_id": first_ds_id(datastores, "IMAGE_DS"),
    }
    return values, objects


def render(template_path, values):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.dirname(template_path)),
        undefined=jinja2.StrictUndefined,
    )
    try:
        text = env.get_template(os.path.basename(template_path)).render(**values)
    except jinja2.exceptions.UndefinedError as e:
        raise Mismatch(f"does not render with OneForm's variables: {e}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise Mismatch(f"the rendered inventory is not YAML: {e}\n{text}")


def check_entries(where, entries, stored):
    """Entries of `vn` or of one `ds.config.<TYPE>`: mappings with a `template` mapping, each
    named after one of the provision's objects (else the plugin cannot give it its object's
    name and template); a given `id` must be that object's id."""
    expect(isinstance(entries, dict) and entries, f"{where} must be a non-empty mapping, got {entries!r}")
    by_name = {base_name(o["name"]): o for o in stored}
    for name, entry in entries.items():
        expect(isinstance(entry, dict), f"{where}.{name} must be a mapping, got {entry!r}")
        expect(isinstance(entry.get("template"), dict), f"{where}.{name}.template must be a mapping")
        expect(name in by_name, f"{where}.{name} is none of the provision's objects {sorted(by_name)}")
        if "id" in entry:
            want = by_name[name]["id"]
            expect(str(entry["id"]) == str(want), f"{where}.{name}.id is {entry['id']!r}, the object's id is {want!r}")


def check_inventory(inventory, values, objects):
    expect(isinstance(inventory, dict), f"the inventory must be a mapping, got {type(inventory).__name__}")
    all_vars = (inventory.get("all") or {}).get("vars")
    expect(isinstance(all_vars, dict), "all.vars must be a mapping")
    check_entries("all.vars.vn", all_vars.get("vn"), objects.get("networks") or [])
    config = (all_vars.get("ds") or {}).get("config")
    expect(isinstance(config, dict) and config, "all.vars.ds.config must be a non-empty mapping")
    for kind, entries in config.items():
        check_entries(f"all.vars.ds.config.{kind}", entries, objects.get("datastores") or [])

    groups = {k: v for k, v in inventory.items() if k != "all"}
    for name, group in groups.items():
        expect(isinstance(group, dict), f"group {name} must be a mapping")
        extra = set(group) - {"hosts", "vars", "children"}
        expect(not extra, f"group {name} has keys the plugin does not read: {sorted(extra)}")
        for host, host_vars in (group.get("hosts") or {}).items():
            expect(isinstance(host_vars, dict), f"{name}.hosts.{host} must be a mapping, got {host_vars!r}")
    for name in ("frontend", "node"):
        expect(isinstance((groups.get(name) or {}).get("hosts"), dict), f"{name}.hosts must be a mapping")
    expect(groups["frontend"]["hosts"], "frontend.hosts must name the front-end")
    nodes = groups["node"]["hosts"]
    addresses = sorted(str(v.get("ansible_host", k)) for k, v in nodes.items())
    want = sorted(values["one"]["nodes"])
    expect(want, "the provision has no hosts: the check needs a provision with hosts")
    expect(addresses == want, f"node.hosts reach {addresses}, the provision's hosts are {want}")
    return len(nodes), len(all_vars["vn"]), sum(len(e) for e in config.values())


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        sys.exit(__doc__)
    checked = 0
    for template_path, document_path in zip(argv[0::2], argv[1::2]):
        with open(document_path) as f:
            document = json.load(f)
        try:
            values, objects = variables(document)
            inventory = render(template_path, values)
            nodes, networks, datastores = check_inventory(inventory, values, objects)
        except Mismatch as e:
            print(f"render_check: {template_path}: {e}", file=sys.stderr)
            return 1
        print(f"render_check: {template_path} ok ({nodes} nodes, {networks} networks, {datastores} datastores)")
        checked += 1
    print(f"render_check: {checked} templates render under OneForm's variables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
