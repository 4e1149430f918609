#!/usr/bin/env python3
"""A OneForm client written from OneForm's documented behaviour, run against `formwork serve`.

It does what OpenNebula's own clients do (spec §4.3, §4.4, §7.5): the `oneprovider` and
`oneprovision` CLIs (Basic auth, JSON in and out, `OneForm Error (<err_code>): <message>` on a
non-2xx answer, bodies unwrapped from `DOCUMENT`), the `opennebula_form` Ansible inventory
plugin (credentials from a `user:password` one_auth string split at the first ':', `GET
/provisions/:id`, reading `DOCUMENT.ID` and `DOCUMENT.TEMPLATE.PROVISION_BODY`) and
`oneprovision logs` (polls `/logs/poll?pos=` once a second). The server runs fake tools, so
each stage takes well under a second.

usage: oneform_client.py URL ONE_AUTH_FILE
Exits 0 after the whole lifecycle; prints each step, and fails with the step and the answer.
"""
import json
import sys
import time

import requests

STEP_TIMEOUT = 90  # seconds a provision may take to reach a state
FAILURES = {
    "INIT_FAILURE", "PLANNING_FAILURE", "APPLYING_FAILURE", "CONFIGURING_PROVISION_FAILURE",
    "CONFIGURING_ONE_FAILURE", "SCALING_FAILURE", "DEPROVISIONING_ONE_FAILURE",
    "DEPROVISIONING_FAILURE", "DONE_FAILURE",
}


class OneFormError(Exception):
    """What the Ruby client raises for a non-2xx answer."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        text = "OneForm Error ({}): {}".format(body.get("err_code"), body.get("message"))
        for field, messages in (body.get("context") or {}).items():
            text += "\n  * {}: {}".format(field, messages)
        super().__init__(text)


class Client:
    """`OneForm::Client`: a base URL, `/api/v1`, Basic auth from one_auth."""

    def __init__(self, url, one_auth):
        # The inventory plugin splits one_auth at the first ':' (a token may hold more).
        user, password = one_auth.strip().split(":", 1)
        self.base = url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.headers.update({
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "OpenNebula 7.0.0 (CLI)",
        })

    def call(self, method, path, body=None, expect=None):
        # Like the CLI: POSTs always send a body (`{}` at least).
        data = None if body is None else json.dumps(body)
        response = self.session.request(method, self.base + path, data=data, timeout=60)
        if not 200 <= response.status_code < 300:
            try:
                payload = response.json()
            except ValueError:
                raise AssertionError("{} {}: {} with a non-JSON error body: {!r}".format(
                    method, path, response.status_code, response.text))
            check(payload.get("err_code") == response.status_code,
                  "err_code {!r} is the status {}".format(payload.get("err_code"), response.status_code))
            raise OneFormError(response.status_code, payload)
        if expect is not None:
            check(response.status_code == expect,
                  "{} {} answers {} (expected {}): {}".format(method, path, response.status_code, expect, response.text))
        if response.status_code == 204:
            check(response.content == b"", "204 has no body: {!r}".format(response.content))
            return None
        check(response.headers.get("Content-Type", "").startswith("application/json"),
              "{} {}: JSON content type, got {!r}".format(method, path, response.headers.get("Content-Type")))
        return response.json()

    # The inventory plugin's only call (share/ansible/plugins/lib/oneform_client.py).
    def get_provision(self, provision_id):
        return self.call("GET", "/provisions/{}".format(provision_id))


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def say(text):
    print(text, flush=True)


def document(doc, kind):
    """Checks OneForm's document wrapper and returns (id, body)."""
    check(isinstance(doc, dict) and "DOCUMENT" in doc, "a DOCUMENT wrapper: {}".format(doc))
    d = doc["DOCUMENT"]
    for key in ("ID", "UID", "GID", "TYPE"):
        check(isinstance(d.get(key), str) and d[key].isdigit(), "DOCUMENT.{} is a numeric string: {!r}".format(key, d.get(key)))
    for key in ("UNAME", "GNAME", "NAME"):
        check(isinstance(d.get(key), str), "DOCUMENT.{} is a string".format(key))
    bits = d.get("PERMISSIONS", {})
    names = [w + "_" + r for w in ("OWNER", "GROUP", "OTHER") for r in ("U", "M", "A")]
    check(sorted(bits) == sorted(names) and all(bits[n] in ("0", "1") for n in names),
          "PERMISSIONS has the nine bits as \"0\"/\"1\": {}".format(bits))
    tag, doc_type = {"provider": ("PROVIDER_BODY", "103"), "provision": ("PROVISION_BODY", "104")}[kind]
    check(d["TYPE"] == doc_type, "a {} is TYPE {}: {}".format(kind, doc_type, d["TYPE"]))
    body = d.get("TEMPLATE", {}).get(tag)
    check(isinstance(body, dict), "DOCUMENT.TEMPLATE.{} is an object".format(tag))
    return int(d["ID"]), body


def inventory_view(client, provision_id):
    """What the `opennebula_form` inventory plugin reads: DOCUMENT.ID and the body."""
    doc = client.get_provision(provision_id)
    pid, body = document(doc, "provision")
    check(pid == provision_id, "DOCUMENT.ID is the provision asked for: {} != {}".format(pid, provision_id))
    for key in ("name", "state", "one_objects", "user_inputs_values", "provider_id", "deployment_file"):
        check(key in body, "PROVISION_BODY has {}: {}".format(key, sorted(body)))
    check(isinstance(body["state"], str), "state is served as a name: {!r}".format(body["state"]))
    check("tfstate" not in body, "tfstate is never served")
    return body


def wait_state(client, provision_id, state, hosts=None):
    """Polls as `oneprovision show` would until `state` (and `hosts` hosts, if given)."""
    deadline = time.time() + STEP_TIMEOUT
    while True:
        body = inventory_view(client, provision_id)
        count = len(body["one_objects"].get("hosts") or [])
        if body["state"] == state and (hosts is None or count == hosts):
            return body
        check(body["state"] not in FAILURES, "provision {} failed: {}".format(provision_id, body["state"]))
        check(time.time() < deadline, "provision {} is {} with {} hosts after {}s, waiting for {}".format(
            provision_id, body["state"], count, STEP_TIMEOUT, state))
        time.sleep(0.2)


def poll_logs(client, provision_id, pos):
    """One `oneprovision logs` poll (its first one sends `?pos=`, here pos None); returns (new
    pos, lines)."""
    answer = client.call("GET", "/provisions/{}/logs/poll?pos={}".format(provision_id, "" if pos is None else pos))
    pos = -1 if pos is None else pos
    check(isinstance(answer.get("pos"), int) and answer["pos"] >= max(pos, 0), "pos moves forward: {}".format(answer))
    for line in answer["lines"]:
        check(set(line) >= {"level", "text"} and line["level"] in ("info", "debug", "error", "warning"),
              "a log line is {{level, text}}: {}".format(line))
    return answer["pos"], [line["text"] for line in answer["lines"]]


def main():
    url, auth_file = sys.argv[1], sys.argv[2]
    with open(auth_file) as f:
        client = Client(url, f.read())

    # oneform list -e: the sim driver is enabled, its id is the folder's basename.
    drivers = client.call("GET", "/drivers?enabled=true")
    names = [d["system_path"].rstrip("/").rsplit("/", 1)[-1] for d in drivers]
    check("sim" in names, "the sim driver is listed: {}".format(names))
    sim = client.call("GET", "/drivers/sim")
    inventories = [d["inventory"] for d in sim["deployment_confs"]]
    check(inventories == ["sim_cluster"], "the sim driver's deployments: {}".format(inventories))
    say("drivers: {}".format(names))

    # oneprovider create sim provider.json
    created = client.call("POST", "/providers", {
        "driver": "sim", "name": "conformance", "description": "made by oneform_client.py",
        "connection_values": {"api_token": "conformance-token"},
    }, expect=201)
    provider_id, provider = document(created, "provider")
    check(provider["driver"] == "sim" and provider["connection"]["api_token"] == "__redacted__",
          "the provider body, token redacted: {}".format(provider))
    shown = client.call("GET", "/providers/{}?include_sensitive=true".format(provider_id))
    check(document(shown, "provider")[1]["connection"]["api_token"] == "conformance-token",
          "oneprovider show -s shows the token")
    say("provider {}".format(provider_id))

    # oneprovision create sim provision.json -p <provider> -d sim_cluster
    created = client.call("POST", "/provisions", {
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider_id,
        "name": "conformance", "user_inputs_values": {"oneform_hosts": 1},
    }, expect=201)
    provision_id, body = document(created, "provision")
    check(body["state"] == "PENDING", "201 carries the document as allocated: {}".format(body["state"]))
    say("ID: {}".format(provision_id))
    listed = client.call("GET", "/provisions")
    check(provision_id in [int(d["DOCUMENT"]["ID"]) for d in listed], "oneprovision list shows it")
    pos, _ = poll_logs(client, provision_id, None)
    body = wait_state(client, provision_id, "RUNNING", hosts=1)
    say("RUNNING with hosts {}".format([h["name"] for h in body["one_objects"]["hosts"]]))
    pos, lines = poll_logs(client, provision_id, 0)
    check(any("to RUNNING" in t for t in lines), "the log tells the provision reached RUNNING: {}".format(lines[-5:]))
    again, more = poll_logs(client, provision_id, pos)
    check(again == pos and more == [], "a poll at the end returns nothing new: {} {}".format(again, more))

    # oneprovision add-host <id> -a 1 (CLI 7.x sends scale up)
    check(client.call("POST", "/provisions/{}/scale".format(provision_id), {"direction": "up", "nodes": 1}, expect=204) is None,
          "scale answers nothing")
    body = wait_state(client, provision_id, "RUNNING", hosts=2)
    check(body["user_inputs_values"]["oneform_hosts"] == 2, "oneform_hosts follows the scale")
    pos, lines = poll_logs(client, provision_id, pos)
    check(any("SCALING" in t for t in lines), "the poll from the earlier end shows the scale: {}".format(lines))
    say("scaled to 2 hosts")

    # A refused request: the CLI's error text.
    try:
        client.call("POST", "/provisions/{}/retry".format(provision_id), {})
        raise AssertionError("retry of a RUNNING provision was accepted")
    except OneFormError as e:
        check(e.status == 405, "retry of RUNNING is 405: {}".format(e))
        say(str(e))

    # oneprovision deprovision <id>
    client.call("POST", "/provisions/{}/undeploy".format(provision_id), {"force": False}, expect=204)
    body = wait_state(client, provision_id, "DONE")
    check(not any(h.get("id") is not None for h in body["one_objects"].get("hosts") or []), "DONE has no registered host")
    check(provision_id not in [int(d["DOCUMENT"]["ID"]) for d in client.call("GET", "/provisions")],
          "a DONE provision is listed only with --all")
    check(provision_id in [int(d["DOCUMENT"]["ID"]) for d in client.call("GET", "/provisions?all=true")],
          "oneprovision list --all shows it")
    say("DONE")

    # oneprovision delete <id>, oneprovider delete <provider>
    client.call("DELETE", "/provisions/{}".format(provision_id), expect=204)
    try:
        client.get_provision(provision_id)
        raise AssertionError("a deleted provision is still served")
    except OneFormError as e:
        check(e.status == 404, "a deleted provision is 404: {}".format(e))
    say("deleted")

    # OpenNebula never hands a document id out again, and `oneprovision logs --all` of the next
    # provision shows its own lines only.
    created = client.call("POST", "/provisions", {
        "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider_id,
        "name": "second", "user_inputs_values": {"oneform_hosts": 1},
    }, expect=201)
    second, _ = document(created, "provision")
    check(second > provision_id, "a new provision gets a new id: {} after {}".format(second, provision_id))
    wait_state(client, second, "RUNNING", hosts=1)
    lines = [line["text"] for line in client.call("GET", "/provisions/{}/logs?all=true".format(second))["lines"]]
    check(lines and not any("SCALING" in t or "'conformance'" in t for t in lines),
          "the new provision's log holds none of the deleted one's lines: {}".format(lines[:5]))
    client.call("POST", "/provisions/{}/undeploy".format(second), {"force": False}, expect=204)
    wait_state(client, second, "DONE")
    client.call("DELETE", "/provisions/{}".format(second), expect=204)
    client.call("DELETE", "/providers/{}".format(provider_id), expect=204)
    say("provision {} after {}: ids are never reused".format(second, provision_id))
    print("oneform_client: all steps passed")


if __name__ == "__main__":
    main()
