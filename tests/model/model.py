"""The reference model of `formwork serve` for the model test: the providers and provisions
that exist, who owns them with which permission bits, their secrets and input values, and every
operation the server acknowledged. Each method sends one request, says which answers the
intended behaviour allows (only where it is certain; elsewhere it accepts either and follows the
consequence), and `check_all` compares the whole server with the model after every step.

A secret is found by its canary: every provider token and sensitive input starts with a unique
`CANARY<n>Z`, so it shows in any answer however the rest of the value is escaped."""

from hypothesis import strategies as st

from checks import ADMIN, MANAGE, REFUSED, SENSITIVE, USE, Checks, Violation, canary_of


def hostile_text():
    """Input values with what breaks templates and YAML: quotes, newlines, Jinja delimiters."""
    pieces = st.sampled_from([
        '"', "'", "\n", "\r\n", "\\", "{{", "}}", "{%", "%}", "{% endraw %}", "{#", ": ", "- ", "#", "&a",
        "*a", "!unsafe ", "{{ lookup('pipe','touch /tmp/formwork-model-probe') }}", "$(id)", "`id`",
        "a", "b", "z9", " ", "é", "☃",
    ])
    return st.lists(pieces, min_size=0, max_size=6).map("".join)


class Obj:
    def __init__(self, oid, owner):
        self.id = oid
        self.uid, self.gid, self.mode = owner


class Provider(Obj):
    def __init__(self, oid, owner, token):
        super().__init__(oid, owner)
        self.token = token
        # Every token it ever had: an old one is as secret as the current one.
        self.canaries = {canary_of(token)}


class Op:
    def __init__(self, kind, may_fail, hosts_before):
        self.kind = kind
        self.may_fail = may_fail
        self.hosts_before = hosts_before
        self.ended = None
        self.cancelled = False
        self.queued_when_cancelled = False
        self.state_before = None


class Provision(Obj):
    def __init__(self, oid, owner, provider, values):
        super().__init__(oid, owner)
        self.provider = provider
        self.values = dict(values)
        self.canaries = {canary_of(values[SENSITIVE])}
        self.ops = []
        # As oneadmin last saw it.
        self.state = "PENDING"
        self.hosts = values["oneform_hosts"]
        self.idle = False


class Model(Checks):
    def __init__(self, api, users, max_operations, trace, answers, ignore, ignored, on_violation):
        self.api = api
        self.users = users
        self.max_operations = max_operations
        self.trace = trace
        self.answers = answers
        self.ignore = ignore
        self.ignored = ignored
        self.broken = False
        self.on_violation = on_violation
        self.providers = {}
        self.provisions = {}
        self.deleted_providers = set()
        self.deleted_provisions = set()
        self.issued = {"providers": set(), "provisions": set()}
        self.counter = 0
        self.pending_failures = False
        # While the invariants are checked the requests stay out of the trace.
        self.checking = False

    # Helpers

    def fail(self, invariant, detail):
        """Stops the example, unless the invariant is one the run was told to only count
        (FORMWORK_MODEL_IGNORE, for studying one bug where another is known)."""
        if invariant in self.ignore:
            if not self.ignored[invariant]:
                print(f"model test: ignored '{invariant}' broke (first time): {detail}", flush=True)
            self.ignored[invariant] += 1
            return
        self.broken = True
        violation = Violation(invariant, detail)
        self.on_violation(violation)
        raise violation

    def canary(self):
        self.counter += 1
        return f"CANARY{self.counter:04d}Z"

    def call(self, user, method, path, body=None):
        try:
            answer = self.api.call(user, method, path, body)
        except OSError as e:
            self.fail("server answers", f"{method} {path} as {user}: {e}")
        if not self.checking:
            self.trace.append(f"    {user}: {answer!r}")
        if method != "GET":
            route = path.split("?")[0].strip("/").split("/")
            self.answers[f"{method} {route[0]}{'/' + route[2] if len(route) > 2 else ''} {answer.status}"] += 1
        if answer.status >= 500:
            self.fail("no server error", f"{answer!r}")
        return answer

    def expect(self, answer, allowed, why):
        if answer.status not in allowed:
            self.fail(why, f"expected {sorted(allowed)}, got {answer!r}")

    def is_admin(self, user):
        u = self.users[user]
        return u["uid"] == 0 or u["gid"] == 0

    def allows(self, user, obj, bit):
        """OpenNebula's rule as src/service/access.rs documents it."""
        if self.is_admin(user):
            return True
        u = self.users[user]
        owner = u["uid"] == obj.uid and (obj.mode >> 6) & bit
        group = obj.gid in u["groups"] and (obj.mode >> 3) & bit
        return bool(owner or group or obj.mode & bit)

    def write(self, user, method, path, body):
        """A change: refused with 403 for anyone outside the oneadmin group (then `None`)."""
        answer = self.call(user, method, path, body)
        if not self.is_admin(user):
            self.expect(answer, {403}, "only the oneadmin group changes things")
            return None
        return answer

    def fresh_id(self, kind, answer):
        oid = int(answer.json["DOCUMENT"]["ID"])
        if oid in self.issued[kind]:
            self.fail("no id comes back", f"{kind[:-1]} id {oid} was handed out again: {answer!r}")
            # Ignored: the id names the new object from now on.
            (self.deleted_providers if kind == "providers" else self.deleted_provisions).discard(oid)
        self.issued[kind].add(oid)
        return oid

    def owner_of(self, answer):
        doc = answer.json["DOCUMENT"]
        perms = doc["PERMISSIONS"]
        mode = 0
        for who, shift in (("OWNER", 6), ("GROUP", 3), ("OTHER", 0)):
            for letter, bit in (("U", USE), ("M", MANAGE), ("A", ADMIN)):
                if perms[f"{who}_{letter}"] == "1":
                    mode |= bit << shift
        return int(doc["UID"]), int(doc["GID"]), mode

    # Providers

    def create_provider(self, user, token):
        token = self.canary() + token
        body = {"driver": "sim", "name": f"model-{self.counter}", "connection_values": {"api_token": token}}
        answer = self.write(user, "POST", "/providers", body)
        if answer is None:
            return
        self.expect(answer, {201}, "an admin creates a provider")
        oid = self.fresh_id("providers", answer)
        owner = self.owner_of(answer)
        if owner[0] != self.users[user]["uid"]:
            self.fail("ownership", f"provider {oid} created by {user} is owned by uid {owner[0]}")
        self.providers[oid] = Provider(oid, owner, token)

    def update_provider(self, user, pid, token):
        token = self.canary() + token
        answer = self.write(user, "PATCH", f"/providers/{pid}", {"connection": {"api_token": token}})
        if answer is None:
            return
        self.expect(answer, {200}, "an admin updates a provider")
        provider = self.providers[pid]
        provider.token = token
        provider.canaries.add(canary_of(token))

    def delete_provider(self, user, pid):
        answer = self.write(user, "DELETE", f"/providers/{pid}", None)
        if answer is None:
            return
        used = sorted(i for i, p in self.provisions.items() if p.provider == pid)
        if used:
            self.expect(answer, REFUSED, f"a provider used by provisions {used} is not deleted")
            return
        self.expect(answer, {204}, "an admin deletes an unused provider")
        del self.providers[pid]
        self.deleted_providers.add(pid)

    # Provisions

    def create_provision(self, user, provider, values, may_fail):
        values = dict(values)
        values[SENSITIVE] = self.canary() + values[SENSITIVE]
        body = {
            "driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider,
            "name": f"model-{self.counter}", "user_inputs_values": values,
        }
        answer = self.write(user, "POST", "/provisions", body)
        if answer is None:
            return
        self.expect(answer, {201}, "an admin creates a provision on a provider that exists")
        oid = self.fresh_id("provisions", answer)
        provision = Provision(oid, self.owner_of(answer), provider, values)
        provision.ops.append(Op("create", may_fail, None))
        self.provisions[oid] = provision

    def update_provision(self, user, pid, values):
        values = dict(values)
        provision = self.provisions[pid]
        if SENSITIVE in values:
            values[SENSITIVE] = self.canary() + values[SENSITIVE]
        answer = self.write(user, "PATCH", f"/provisions/{pid}", {"user_inputs_values": values})
        if answer is None:
            return
        # Refused while an operation runs (which the model cannot always know).
        self.expect(answer, {200} | REFUSED, "an update is answered")
        if answer.status == 200:
            provision.values.update(values)
            if SENSITIVE in values:
                provision.canaries.add(canary_of(values[SENSITIVE]))

    def delete_provision(self, user, pid, force):
        answer = self.write(user, "DELETE", f"/provisions/{pid}" + ("?force=true" if force else ""), None)
        if answer is None:
            return
        self.expect(answer, {204} | REFUSED, "a delete is answered")
        if answer.status == 204:
            del self.provisions[pid]
            self.deleted_provisions.add(pid)

    def request(self, user, pid, route, body, kind, may_fail):
        """Work on a provision (add-host, remove-host, undeploy, retry): refused or acknowledged;
        an acknowledged one is an operation the server owes."""
        provision = self.provisions[pid]
        answer = self.write(user, "POST", f"/provisions/{pid}/{route}", body)
        if answer is None:
            return
        self.expect(answer, {204} | REFUSED, f"{route} is answered")
        if answer.status == 204:
            hosts_before = provision.hosts if provision.idle else None
            provision.ops.append(Op(kind, may_fail, hosts_before))
            provision.idle = False

    def cancel(self, user, pid, blocked):
        provision = self.provisions[pid]
        certainly_queued = False
        state_before = None
        if self.is_admin(user) and len(blocked) >= self.max_operations and pid not in blocked:
            ops = self.call("oneadmin", "GET", f"/provisions/{pid}/operations").json or []
            newest = ops[0] if ops else {}
            certainly_queued = newest.get("status") == "running" and newest.get("queued") is True
            if certainly_queued:
                state_before = self.admin_view(pid)["state"]
        answer = self.write(user, "POST", f"/provisions/{pid}/cancel", None)
        if answer is None:
            return
        if certainly_queued:
            self.expect(answer, {204}, "a queued operation can be cancelled")
        else:
            self.expect(answer, {204} | REFUSED, "a cancel is answered")
        if answer.status == 204:
            open_ops = [op for op in provision.ops if op.ended is None]
            if not open_ops:
                self.fail("operations", f"cancel of provision {pid} answered 204 but the model knows no open operation")
            op = open_ops[-1]
            op.cancelled = True
            op.may_fail = True
            op.queued_when_cancelled = certainly_queued
            op.state_before = state_before

    def chmod(self, user, kind, oid, octet):
        answer = self.write(user, "POST", f"/{kind}/{oid}/chmod", {"octet": octet})
        if answer is not None:
            self.expect(answer, {204}, "an admin chmods")
            self.objects(kind)[oid].mode = int(octet, 8)

    def chown(self, user, kind, oid, owner):
        answer = self.write(user, "POST", f"/{kind}/{oid}/chown", {"owner_id": self.users[owner]["uid"]})
        if answer is not None:
            self.expect(answer, {204}, "an admin chowns")
            self.objects(kind)[oid].uid = self.users[owner]["uid"]

    def chgrp(self, user, kind, oid, group):
        answer = self.write(user, "POST", f"/{kind}/{oid}/chgrp", {"group_id": group})
        if answer is not None:
            self.expect(answer, {204}, "an admin chgrps")
            self.objects(kind)[oid].gid = group

    def objects(self, kind):
        return self.providers if kind == "providers" else self.provisions

    def server_killed(self):
        for provision in self.provisions.values():
            for op in provision.ops:
                if op.ended is None:
                    op.may_fail = True

    def failure_injected(self):
        self.pending_failures = True
        for provision in self.provisions.values():
            for op in provision.ops:
                if op.ended is None:
                    op.may_fail = True

    # Reads

    def read_provider(self, user, pid, sensitive):
        answer = self.call(user, "GET", f"/providers/{pid}" + ("?include_sensitive=true" if sensitive else ""))
        if pid in self.deleted_providers:
            self.expect(answer, {404}, "a deleted provider is gone")
            return
        provider = self.providers[pid]
        if not self.allows(user, provider, USE):
            self.expect(answer, {403, 404}, f"{user} may not see provider {pid}")
            return
        if sensitive and not self.allows(user, provider, MANAGE):
            self.expect(answer, {200, 403}, f"{user} reads provider {pid}")
        else:
            self.expect(answer, {200}, f"{user} may see provider {pid}")
        if answer.status == 200:
            self.check_provider_doc(user, answer.json, sensitive, answer.text)

    def read_provision(self, user, pid, with_provider, sensitive):
        query = "&".join(q for q, on in (("include_provider=true", with_provider),
                                          ("include_sensitive=true", sensitive)) if on)
        answer = self.call(user, "GET", f"/provisions/{pid}" + ("?" + query if query else ""))
        if pid in self.deleted_provisions:
            self.expect(answer, {404}, "a deleted provision is gone")
            return
        provision = self.provisions[pid]
        provider = self.providers.get(provision.provider)
        if not self.allows(user, provision, USE):
            self.expect(answer, {403, 404}, f"{user} may not see provision {pid}")
            return
        limited = (sensitive and not self.allows(user, provision, MANAGE)) or (
            with_provider and provider is not None and not self.allows(user, provider, USE))
        self.expect(answer, {200, 403} if limited else {200}, f"{user} reads provision {pid}")
        if answer.status == 200:
            self.check_provision_doc(user, answer.json, with_provider, sensitive)

    def list_provisions(self, user, with_provider, sensitive, all_):
        query = [q for q, on in (("all=true", all_), ("include_provider=true", with_provider),
                                 ("include_sensitive=true", sensitive)) if on]
        answer = self.call(user, "GET", "/provisions" + ("?" + "&".join(query) if query else ""))
        self.expect(answer, {200}, "a list is served")
        visible = {i for i, p in self.provisions.items() if self.allows(user, p, USE)}
        ids = {int(doc["DOCUMENT"]["ID"]) for doc in answer.json}
        if all_ and ids != visible:
            self.fail("visibility", f"{user} lists provisions {sorted(ids)}, the bits allow {sorted(visible)}")
        if not ids <= visible:
            self.fail("visibility", f"{user} lists provisions {sorted(ids - visible)} the bits hide")
        for doc in answer.json:
            self.check_provision_doc(user, doc, with_provider, sensitive)
