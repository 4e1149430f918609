"""What the server must show, checked after every step of the model test: each user's lists
against the permission bits, secrets by their canaries, input values byte for byte, and every
acknowledged operation against how it ended. `Checks` is the half of `model.Model` that reads;
the other half sends the requests and keeps the model."""

import json
import time

# The sim driver's string inputs the model sets (`motd`, free text its inventory quotes, and the
# sensitive `admin_password`, both added by tests/api_model.rs, are drawn hostile) and the
# sensitive one.
STRING_INPUTS = ["instance_type", "motd"]
SENSITIVE = "admin_password"
FAILURES = {
    "INIT_FAILURE", "PLANNING_FAILURE", "APPLYING_FAILURE", "CONFIGURING_ONE_FAILURE",
    "CONFIGURING_PROVISION_FAILURE", "SCALING_FAILURE", "DEPROVISIONING_ONE_FAILURE",
    "DEPROVISIONING_FAILURE", "DONE_FAILURE",
}
# States an operation ends in.
REST = FAILURES | {"RUNNING", "DONE"}
USE, MANAGE, ADMIN = 4, 2, 1
REFUSED = {400, 403, 404, 405, 409}


class Violation(AssertionError):
    def __init__(self, invariant, detail):
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


def canary_of(value):
    return value[: value.index("Z") + 1]


class Checks:
    # What a document may show

    def secrets_in(self, text):
        """(kind, id) of every object whose secret shows in text."""
        found = set()
        for pid, provider in self.providers.items():
            if any(c in text for c in provider.canaries):
                found.add(("provider", pid))
        for pid, provision in self.provisions.items():
            if any(c in text for c in provision.canaries):
                found.add(("provision", pid))
        return found

    def check_secrets(self, user, text, allowed, where):
        for kind, oid in self.secrets_in(text):
            obj = (self.providers if kind == "provider" else self.provisions)[oid]
            if (kind, oid) not in allowed or not self.allows(user, obj, MANAGE):
                self.fail("no secret without MANAGE",
                          f"{where} shows {user} the secret of {kind} {oid} in clear "
                          f"(MANAGE on it: {self.allows(user, obj, MANAGE)})")

    def check_owner(self, kind, oid, doc):
        obj = self.objects(kind)[oid]
        got = (int(doc["UID"]), int(doc["GID"]), doc["PERMISSIONS"])
        want = {f"{who}_{letter}": "1" if (obj.mode >> shift) & bit else "0"
                for who, shift in (("OWNER", 6), ("GROUP", 3), ("OTHER", 0))
                for letter, bit in (("U", USE), ("M", MANAGE), ("A", ADMIN))}
        if got[:2] != (obj.uid, obj.gid) or got[2] != want:
            self.fail("ownership", f"{kind} {oid} is served as uid {got[0]} gid {got[1]} {got[2]}, "
                                   f"the model says uid {obj.uid} gid {obj.gid} mode {obj.mode:03o}")

    def check_provider_doc(self, user, envelope, sensitive, text):
        doc = envelope["DOCUMENT"]
        pid = int(doc["ID"])
        provider = self.providers[pid]
        self.check_owner("providers", pid, doc)
        allowed = {("provider", pid)} if sensitive else set()
        self.check_secrets(user, json.dumps(envelope), allowed, f"provider {pid}")
        token = doc["TEMPLATE"]["PROVIDER_BODY"].get("connection", {}).get("api_token")
        if sensitive and self.allows(user, provider, MANAGE) and token != provider.token:
            self.fail("values come back byte for byte",
                      f"provider {pid}'s token is served to {user} as {token!r}, it was set to {provider.token!r}")

    def check_provision_doc(self, user, envelope, with_provider, sensitive):
        doc = envelope["DOCUMENT"]
        pid = int(doc["ID"])
        provision = self.provisions.get(pid)
        if provision is None:
            self.fail("deleted objects stay deleted", f"provision {pid} is served to {user} but was deleted or never made")
        self.check_owner("provisions", pid, doc)
        body = doc["TEMPLATE"]["PROVISION_BODY"]
        provider = self.providers.get(provision.provider)
        embedded = body.get("provider")
        if embedded is not None:
            if not with_provider:
                self.fail("visibility", f"provision {pid} embeds its provider for {user} without include_provider")
            if provider is None or not self.allows(user, provider, USE):
                self.fail("visibility", f"provision {pid} embeds provider {provision.provider} for {user}, who may "
                                        f"not use it (include_provider={with_provider}, include_sensitive={sensitive})")
        allowed = set()
        if sensitive:
            allowed.add(("provision", pid))
            if with_provider:
                allowed.add(("provider", provision.provider))
        self.check_secrets(user, json.dumps(envelope), allowed, f"provision {pid}")
        served = body.get("user_inputs_values", {})
        for name in STRING_INPUTS:
            if served.get(name) != provision.values[name]:
                self.fail("values come back byte for byte",
                          f"provision {pid} input {name} is served to {user} as {served.get(name)!r}, "
                          f"it was set to {provision.values[name]!r}")
        if sensitive and self.allows(user, provision, MANAGE) and served.get(SENSITIVE) != provision.values[SENSITIVE]:
            self.fail("values come back byte for byte",
                      f"provision {pid} input {SENSITIVE} is served to {user} as {served.get(SENSITIVE)!r}, "
                      f"it was set to {provision.values[SENSITIVE]!r}")

    # After every step

    def admin_view(self, pid):
        answer = self.call("oneadmin", "GET", f"/provisions/{pid}")
        self.expect(answer, {200}, f"oneadmin sees provision {pid}")
        return answer.json["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]

    def check_all(self):
        self.checking = True
        try:
            self.check_everything()
        finally:
            self.checking = False

    def check_everything(self):
        for pid in sorted(self.provisions):
            self.check_operations(pid)
        for user in self.users:
            answer = self.call(user, "GET", "/providers?include_sensitive=true")
            self.expect(answer, {200}, "a list is served")
            visible = {i for i, p in self.providers.items() if self.allows(user, p, USE)}
            ids = {int(doc["DOCUMENT"]["ID"]) for doc in answer.json}
            if ids != visible:
                self.fail("visibility", f"{user} lists providers {sorted(ids)}, the bits allow {sorted(visible)}")
            for doc in answer.json:
                self.check_provider_doc(user, doc, True, None)
            self.list_provisions(user, True, True, True)

    def check_operations(self, pid):
        """Every acknowledged operation of the provision is there once, ends once, and ends in a
        state that agrees with how it ended."""
        provision = self.provisions[pid]
        if self.pending_failures:
            for op in provision.ops:
                op.may_fail = op.may_fail or op.ended is None
        rows = self.call("oneadmin", "GET", f"/provisions/{pid}/operations").json or []
        rows = sorted(rows, key=lambda r: r["id"])
        body = self.admin_view(pid)
        provision.state = body["state"]
        provision.hosts = len((body.get("one_objects") or {}).get("hosts") or [])
        kinds = [r["kind"] for r in rows]
        owed = [op.kind for op in provision.ops]
        if kinds != owed:
            self.fail("every acknowledged operation is recorded once",
                      f"provision {pid} has operations {kinds}, the server acknowledged {owed}")
        for op, row in zip(provision.ops, rows):
            status = row["status"]
            if op.ended is not None and status != op.ended:
                self.fail("an operation ends once", f"provision {pid} operation {row['id']} ({op.kind}) ended "
                                                    f"{op.ended}, now it is {status}: {row}")
            if status != "running":
                op.ended = status
        provision.idle = all(op.ended for op in provision.ops)
        if rows and provision.idle:
            self.check_outcome(pid, provision.ops[-1], rows[-1], body)
            self.check_events(pid, provision, rows, body["state"])

    def check_events(self, pid, provision, rows, state):
        """The typed progress agrees with the records: every event belongs to one of the
        provision's operations and ids grow; unless a kill or an injected failure may have cut an
        operation short between a checkpoint and its event, the state changes chain from PENDING
        to the state the provision is in."""
        events, after = [], 0
        while True:
            answer = self.call("oneadmin", "GET", f"/provisions/{pid}/events?after={after}")
            if answer.status != 200:
                self.fail("progress is typed data", f"provision {pid}: /events answered {answer.status}")
                return
            page = answer.json or {}
            events += page.get("events", [])
            if not page.get("events") or page.get("next", after) <= after:
                break
            after = page["next"]
        ids = [e["id"] for e in events]
        if ids != sorted(set(ids)):
            self.fail("progress is typed data", f"provision {pid}: event ids {ids} do not grow")
        operations = {r["id"] for r in rows}
        stray = [e for e in events if e.get("operation_id") not in operations]
        if stray:
            self.fail("progress is typed data", f"provision {pid}: events of no operation of it: {stray[:3]}")
        if any(op.may_fail for op in provision.ops):
            return
        changes = [(e["from"], e["to"]) for e in events if e["type"] == "state_changed"]
        chained = all(a[1] == b[0] for a, b in zip(changes, changes[1:]))
        ends = changes[-1][1] if changes else "PENDING"
        if not chained or (changes and changes[0][0] != "PENDING") or ends != state:
            self.fail("progress is typed data",
                      f"provision {pid} is {state}; its state-change events are {changes}")

    def check_outcome(self, pid, op, row, body):
        state, status = body["state"], row["status"]
        where = f"provision {pid}, its last operation {row['id']} ({op.kind}) ended {status} and it is {state}"
        # A queued create cancelled leaves its provision PENDING: the only end not at rest.
        if op.queued_when_cancelled:
            if status != "cancelled" or state != op.state_before:
                self.fail("a cancelled queued operation runs nothing",
                          f"{where}; it was queued when cancelled, in state {op.state_before}")
            return
        # A cancel the model could not know found the operation still waiting: closed having run
        # nothing, the provision as it was (PENDING for a create).
        if op.cancelled and status == "cancelled" and row.get("started") is False:
            if state not in REST | {"PENDING"}:
                self.fail("a cancelled queued operation runs nothing", f"{where}; it never started")
            return
        if state not in REST:
            self.fail("an operation ends in a state at rest", where)
        if status == "succeeded":
            wanted = {"create": {"RUNNING"}, "scale-up": {"RUNNING"}, "scale-down": {"RUNNING"},
                      "deprovision": {"DONE"}, "retry": {"RUNNING", "DONE"}}[op.kind]
            if state not in wanted:
                self.fail("a succeeded operation did its work", f"{where}, not {sorted(wanted)}")
            hosts = len((body.get("one_objects") or {}).get("hosts") or [])
            change = {"scale-up": 1, "scale-down": -1}.get(op.kind)
            if change and op.hosts_before is not None and hosts != op.hosts_before + change:
                self.fail("a succeeded operation did its work",
                          f"{where} with {hosts} hosts; it had {op.hosts_before} when {op.kind} was acknowledged")
        elif status in ("failed", "interrupted", "cancelled"):
            if state not in FAILURES and not (status == "cancelled" and op.cancelled):
                self.fail("a failed operation leaves a failure state", where)
            if not op.may_fail:
                self.fail("an operation fails only for a cause",
                          f"{where}: nothing the model did should fail it (no injected failure, cancel or kill); "
                          f"error: {row.get('error')!r}\nlog:\n{self.log_tail(pid)}")
        else:
            self.fail("operations", f"{where}: unknown status {status!r}")

    def log_tail(self, pid):
        answer = self.call("oneadmin", "GET", f"/provisions/{pid}/logs?per_page=15")
        lines = (answer.json or {}).get("lines", []) if answer.status == 200 else []
        return "\n".join(f"      {line.get('text')}" for line in lines)

    def settle(self, within, open_gate):
        """Waits (bounded) until no acknowledged operation runs, then checks everything."""
        open_gate()
        deadline = time.monotonic() + within
        self.checking = True
        while True:
            running = []
            for pid in sorted(self.provisions):
                rows = self.call("oneadmin", "GET", f"/provisions/{pid}/operations").json or []
                running += [f"{pid}:{r['kind']}" for r in rows if r["status"] == "running"]
            if not running:
                break
            if time.monotonic() > deadline:
                self.fail("no operation is left running", f"after {within} s these still run: {running}")
                break
            time.sleep(0.2)
        self.checking = False
        self.check_all()
        for pid, provision in self.provisions.items():
            open_ops = [op.kind for op in provision.ops if op.ended is None]
            if open_ops:
                self.fail("every acknowledged operation ends", f"provision {pid}: {open_ops} never ended")
