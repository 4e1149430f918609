#!/usr/bin/env python3
"""A stateful, model-based test of `formwork serve` (issue 16), run by tests/api_model.rs.

Hypothesis draws random sequences of REST requests from three users (oneadmin; `ops`, a second
member of the oneadmin group; `alice`, a plain user) against a real server with the fake
`terraform` and `ansible-playbook` and onesim, plus kill -9 and restart of the server, closing
and opening a gate that holds every tool call (so operations queue and cancels race), and
one-shot tool failures (world.py). After every step the server is compared with a small
reference model (model.py, checks.py):

  visibility  what each user sees follows OpenNebula's permission bits; no provider token or
              sensitive input in clear without MANAGE on the object that owns it; a provider
              is embedded in a provision only with USE on that provider; alice changes nothing
  operations  every acknowledged operation is recorded exactly once and ends exactly once, in
              a state that agrees with how it ended; a cancelled queued one runs nothing; an
              operation fails only when the model caused it (a failure, a cancel, a kill);
              its typed progress events belong to its operations and, when nothing cut one
              short, chain the provision's states from PENDING to the one it is in
  ids         no provider or provision id comes back after a delete
  values      input values come back byte for byte

The environment comes from tests/api_model.rs in FORMWORK_MODEL_CONFIG (JSON). Knobs, all
optional: FORMWORK_MODEL_SEED (replay a run), FORMWORK_MODEL_EXAMPLES and FORMWORK_MODEL_STEPS
(size), FORMWORK_MAX_OPERATIONS (1 or 2; drawn from the seed otherwise), FORMWORK_MODEL_SHRINK=1
(shrink a failing example, up to five minutes more), FORMWORK_MODEL_PLAIN_INPUTS (inputs given plain values only, comma separated),
FORMWORK_MODEL_IGNORE (invariants only counted when they break, comma separated).
docs/model-tests.md says how to run and replay it.
"""

import collections
import os
import random
import shutil
import sys

import hypothesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_client import Api, one_users  # noqa: E402
from checks import FAILURES, SENSITIVE, STRING_INPUTS, Violation  # noqa: E402
from model import Model, hostile_text  # noqa: E402
from world import CONFIG, GATE, HOME, Onesim, Server, blocked_provisions, failure_pending, open_gate, scenario  # noqa: E402

SEED = int(os.environ.get("FORMWORK_MODEL_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("FORMWORK_MODEL_EXAMPLES") or 10)
STEPS = int(os.environ.get("FORMWORK_MODEL_STEPS") or 30)
MAX_OPERATIONS = int(os.environ.get("FORMWORK_MAX_OPERATIONS") or random.Random(SEED).choice([1, 2]))
SHRINK = os.environ.get("FORMWORK_MODEL_SHRINK", "0") == "1"
# How long the machine waits for the queue to drain before it says work was left running.
QUIET_WITHIN = 180
IGNORE = {name for name in os.environ.get("FORMWORK_MODEL_IGNORE", "").split(",") if name}
PLAIN = {name for name in os.environ.get("FORMWORK_MODEL_PLAIN_INPUTS", "").split(",") if name}

EXAMPLE = [0]
TRACE = []
# The server of the example running, for its log in a failure report.
CURRENT = []
# What the run did, printed at its end: steps by rule, answers by status, operations by outcome.
STATS = {"steps": collections.Counter(), "answers": collections.Counter(), "operations": collections.Counter(),
         "ignored invariants": collections.Counter()}
OCTETS = ["600", "640", "644", "604", "660", "664", "606", "400", "440", "404", "000", "666", "777"]
USERS = ["oneadmin", "ops", "alice"]
# Where OneForm allows each kind of work, as the model last saw the provision.
SCALABLE = {"RUNNING", "SCALING_FAILURE"}
UNDEPLOYABLE = {"RUNNING", "DEPROVISIONING_ONE_FAILURE", "DEPROVISIONING_FAILURE"}
values_text = hostile_text()
# What each input is drawn from (instance_type is checked against its list).
DRAWN = {"instance_type": st.sampled_from(["small", "medium", "large"]), "motd": values_text, SENSITIVE: values_text}


def drawn(data, name, plain):
    free = name in PLAIN and name != "instance_type"
    return data.draw(st.just(plain + name) if free else DRAWN[name], label=name)


class ServerMachine(RuleBasedStateMachine):
    """The rules; what they should do lives in model.Model, which checks every answer."""

    def __init__(self):
        super().__init__()
        EXAMPLE[0] += 1
        TRACE.clear()
        data_dir = os.path.join(HOME, f"model-data-{EXAMPLE[0]}")
        shutil.rmtree(data_dir, ignore_errors=True)
        for path in (GATE, os.path.join(HOME, "fake-scenario.json")):
            if os.path.exists(path):
                os.remove(path)
        self.onesim = Onesim(data_dir + ".onesim.json")
        self.server = Server(data_dir, self.onesim.url, MAX_OPERATIONS)
        CURRENT[:] = [self.server]
        self.server.start()
        self.api = Api(self.server, CONFIG["passwords"])
        users = one_users(self.onesim.url, CONFIG["passwords"])
        self.model = Model(self.api, users, MAX_OPERATIONS, TRACE, STATS["answers"], IGNORE,
                           STATS["ignored invariants"], remember_first)

    def teardown(self):
        try:
            # After a violation the model no longer describes the server: nothing to check.
            if self.server.proc is not None and not self.model.broken:
                self.step("settle at the end")
                self.model.settle(QUIET_WITHIN, open_gate)
        finally:
            open_gate()
            self.server.kill9()
            self.onesim.stop()
            for provision in self.model.provisions.values():
                for op in provision.ops:
                    STATS["operations"][f"{op.kind} {op.ended or 'unfinished'}"] += 1

    def step(self, text):
        STATS["steps"][sys._getframe(1).f_code.co_name] += 1
        TRACE.append(f"step: {text}")

    # Every draw has the same shape whatever the server answered before (an index into the
    # objects there are, a skip when none fits): Hypothesis replays and shrinks by the draws, and
    # the objects and states come from a server whose timing varies. Only the gate's rules have
    # preconditions; the gate is the machine's own.

    def pick(self, data, ids, label):
        """One of `ids` by a drawn index, or None when there is none."""
        index = data.draw(st.integers(0, 7), label=label)
        ids = sorted(ids)
        return ids[index % len(ids)] if ids else None

    def skip(self, text):
        STATS["steps"]["skipped: " + sys._getframe(1).f_code.co_name] += 1
        TRACE.append(f"step: {text}: nothing fits, skipped")

    # Providers

    @rule(user=st.sampled_from(USERS), token=values_text)
    def create_provider(self, user, token):
        if len(self.model.providers) >= 3:
            return self.skip("create a provider")
        self.step(f"{user} creates a provider (token {token!r})")
        self.model.create_provider(user, token)

    @rule(data=st.data(), user=st.sampled_from(USERS), token=values_text)
    def update_provider(self, data, user, token):
        pid = self.pick(data, self.model.providers, "provider")
        if pid is None:
            return self.skip("update a provider")
        self.step(f"{user} updates provider {pid} (token {token!r})")
        self.model.update_provider(user, pid, token)

    @rule(data=st.data(), user=st.sampled_from(USERS))
    def delete_provider(self, data, user):
        pid = self.pick(data, self.model.providers, "provider")
        if pid is None:
            return self.skip("delete a provider")
        self.step(f"{user} deletes provider {pid}")
        self.model.delete_provider(user, pid)

    # Provisions

    @rule(data=st.data(), user=st.sampled_from(USERS), hosts=st.integers(1, 3))
    def create_provision(self, data, user, hosts):
        pid = self.pick(data, self.model.providers, "provider")
        values = {"oneform_hosts": hosts}
        for name in STRING_INPUTS + [SENSITIVE]:
            values[name] = drawn(data, name, "plain-")
        if pid is None or len(self.model.provisions) >= 6:
            return self.skip("create a provision")
        self.step(f"{user} creates a provision on provider {pid}: {values!r}")
        self.model.create_provision(user, pid, values, failure_pending())

    @rule(data=st.data(), user=st.sampled_from(USERS),
          names=st.lists(st.sampled_from(STRING_INPUTS + [SENSITIVE]), min_size=1, max_size=2, unique=True))
    def update_provision(self, data, user, names):
        pid = self.pick(data, self.model.provisions, "provision")
        values = {n: drawn(data, n, "plain2-") for n in names}
        if pid is None:
            return self.skip("update a provision")
        self.step(f"{user} updates provision {pid}: {values!r}")
        self.model.update_provision(user, pid, values)

    @rule(data=st.data(), user=st.sampled_from(USERS), force=st.booleans())
    def delete_provision(self, data, user, force):
        pid = self.pick(data, self.model.provisions, "provision")
        if pid is None:
            return self.skip("delete a provision")
        self.step(f"{user} deletes provision {pid} (force={force})")
        self.model.delete_provision(user, pid, force)

    # Work on provisions: each picks a provision in a state where OneForm allows it, as last seen.

    def provisions_in(self, states, hosts=range(0, 100)):
        return [i for i, p in self.model.provisions.items() if p.state in states and p.hosts in hosts]

    @rule(data=st.data(), user=st.sampled_from(USERS))
    def add_host(self, data, user):
        pid = self.pick(data, self.provisions_in(SCALABLE, range(1, 4)), "provision")
        if pid is None:
            return self.skip("add a host")
        self.step(f"{user} adds a host to provision {pid}")
        self.model.request(user, pid, "add-host", {"amount": 1}, "scale-up", failure_pending())

    @rule(data=st.data(), user=st.sampled_from(USERS))
    def remove_host(self, data, user):
        pid = self.pick(data, self.provisions_in(SCALABLE, range(2, 100)), "provision")
        if pid is None:
            return self.skip("remove a host")
        self.step(f"{user} removes a host from provision {pid}")
        self.model.request(user, pid, "remove-host", {"amount": 1}, "scale-down", failure_pending())

    @rule(data=st.data(), user=st.sampled_from(USERS), force=st.booleans())
    def undeploy(self, data, user, force):
        pid = self.pick(data, self.provisions_in(UNDEPLOYABLE), "provision")
        if pid is None:
            return self.skip("undeploy")
        self.step(f"{user} undeploys provision {pid} (force={force})")
        self.model.request(user, pid, "undeploy", {"force": force}, "deprovision", failure_pending())

    @rule(data=st.data(), user=st.sampled_from(USERS))
    def retry(self, data, user):
        pid = self.pick(data, self.provisions_in(FAILURES), "provision")
        if pid is None:
            return self.skip("retry")
        self.step(f"{user} retries provision {pid}")
        self.model.request(user, pid, "retry", {}, "retry", failure_pending())

    @rule(data=st.data(), user=st.sampled_from(USERS))
    def cancel(self, data, user):
        # A provision with work the model has not seen end, when there is one: that is what a
        # cancel can race with.
        busy = [i for i, p in self.model.provisions.items() if any(op.ended is None for op in p.ops)]
        pid = self.pick(data, busy or self.model.provisions, "provision")
        if pid is None:
            return self.skip("cancel")
        # Queued for certain: the gate is closed and every slot is held by a blocked tool call,
        # so no slot frees until the gate opens.
        blocked = blocked_provisions() if os.path.exists(GATE) else set()
        self.step(f"{user} cancels provision {pid} (blocked at the gate: {sorted(blocked)})")
        self.model.cancel(user, pid, blocked)

    # Permissions

    @rule(data=st.data(), user=st.sampled_from(USERS), kind=st.sampled_from(["providers", "provisions"]),
          change=st.one_of(st.tuples(st.just("chmod"), st.sampled_from(OCTETS)),
                           st.tuples(st.just("chown"), st.sampled_from(USERS)),
                           st.tuples(st.just("chgrp"), st.sampled_from([0, 1]))))
    def permissions(self, data, user, kind, change):
        """chmod, chown or chgrp of a provider, or of a provision when there is one."""
        live = self.model.provisions if kind == "provisions" else {}
        if not live:
            kind, live = "providers", self.model.providers
        oid = self.pick(data, live, kind[:-1])
        if oid is None:
            return self.skip("change permissions")
        verb, arg = change
        self.step(f"{user} {verb}s {kind} {oid} to {arg}")
        getattr(self.model, verb)(user, kind, oid, arg)

    # Reads

    @rule(data=st.data(), user=st.sampled_from(USERS), what=st.sampled_from(["provider", "provision", "list"]),
          provider=st.booleans(), sensitive=st.booleans(), all_=st.booleans())
    def read(self, data, user, what, provider, sensitive, all_):
        """One read with include_* flags: a provider, a provision (deleted ones too) or the list."""
        kind = "providers" if what == "provider" else "provisions"
        oid = self.pick(data, self.model.issued[kind], what)
        if what == "list":
            self.step(f"{user} lists provisions (all={all_}, include_provider={provider}, "
                      f"include_sensitive={sensitive})")
            self.model.list_provisions(user, provider, sensitive, all_)
        elif oid is None:
            return self.skip(f"read a {what}")
        elif what == "provision":
            self.step(f"{user} reads provision {oid} (include_provider={provider}, include_sensitive={sensitive})")
            self.model.read_provision(user, oid, provider, sensitive)
        else:
            self.step(f"{user} reads provider {oid} (include_sensitive={sensitive})")
            self.model.read_provider(user, oid, sensitive)

    # The world around the server

    @rule()
    def kill_and_restart(self):
        self.step("kill -9 the server and start it again on the same data")
        self.server.kill9()
        self.model.server_killed()
        self.server.start()

    @precondition(lambda self: not os.path.exists(GATE))
    @rule()
    def close_gate(self):
        self.step("close the gate: tool calls wait")
        open(GATE, "w").close()

    @precondition(lambda self: os.path.exists(GATE))
    @rule()
    def open_gate(self):
        self.step("open the gate")
        open_gate()

    @rule(tool=st.sampled_from(["fail_init", "fail_plan", "fail_apply", "fail_destroy", "fail_ansible"]))
    def inject_failure(self, tool):
        self.step(f"the next {tool[5:]} fails once")
        scenario(lambda s: dict(s, **{tool: "n1" if tool == "fail_ansible" else "injected by the model test"}))
        self.model.failure_injected()

    @rule()
    def settle(self):
        self.step("wait until no operation runs")
        open_gate()
        self.model.settle(QUIET_WITHIN, open_gate)

    @initialize(data=st.data())
    def start(self, data):
        """Every example starts with work in flight: a provider and two provisions being made."""
        token = data.draw(values_text, label="token")
        self.step(f"server with max_operations {MAX_OPERATIONS}; oneadmin makes a provider (token {token!r})")
        self.model.create_provider("oneadmin", token)
        pid = max(self.model.providers)
        for _ in range(2):
            values = {"oneform_hosts": data.draw(st.integers(1, 2), label="hosts")}
            for name in STRING_INPUTS + [SENSITIVE]:
                values[name] = drawn(data, name, "plain-")
            self.step(f"oneadmin creates a provision on provider {pid}: {values!r}")
            self.model.create_provision("oneadmin", pid, values, False)

    @invariant()
    def agrees_with_the_model(self):
        self.model.pending_failures = failure_pending()
        self.model.check_all()


# The first violation of the run and the steps that led to it: when a race does not replay,
# Hypothesis reports only that replays differed.
FIRST = []


def remember_first(violation):
    if not FIRST:
        FIRST.append((violation, list(TRACE)))


def report_failure():
    print("\nsteps of the failing example, as run (answers indented):\n  " + "\n  ".join(TRACE), flush=True)
    if CURRENT and CURRENT[0].log_tail():
        print(f"\nthe server's last log lines ({CURRENT[0].log_path}):\n{CURRENT[0].log_tail()}", flush=True)
    print(f"\nseed {SEED}: replay with FORMWORK_MODEL_SEED={SEED} FORMWORK_MAX_OPERATIONS={MAX_OPERATIONS}", flush=True)


def main():
    print(f"model test: seed {SEED} (replay: FORMWORK_MODEL_SEED={SEED}), max_operations {MAX_OPERATIONS}, "
          f"{EXAMPLES} examples of up to {STEPS} steps, shrinking {'on' if SHRINK else 'off'}", flush=True)
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else [])
    config = settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None, phases=phases,
        suppress_health_check=list(HealthCheck), print_blob=False, derandomize=False,
    )
    hypothesis.seed(SEED)(ServerMachine)
    try:
        run_state_machine_as_test(ServerMachine, settings=config)
    except Violation as e:
        print(f"\nmodel test FAILED: invariant '{e.invariant}' broke\n{e.detail}", flush=True)
        report_failure()
        sys.exit(1)
    except hypothesis.errors.Flaky as e:
        # A race: the failing example went otherwise when replayed. Report what broke first.
        print(f"\nHypothesis: {type(e).__name__}: the failing example did not replay the same way", flush=True)
        if not FIRST:
            report_failure()
            raise
        violation, trace = FIRST[0]
        print(f"\nmodel test FAILED: invariant '{violation.invariant}' broke\n{violation.detail}", flush=True)
        TRACE[:] = trace
        report_failure()
        sys.exit(1)
    except Exception:
        report_failure()
        raise
    for name, counts in STATS.items():
        print(f"model test: {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
    print(f"model test: all invariants held (seed {SEED})", flush=True)


if __name__ == "__main__":
    main()
