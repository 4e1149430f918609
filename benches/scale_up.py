#!/usr/bin/env python3
"""Scale-up cost: the whole play (OneForm's behaviour) against the play limited to the
front-end and the new host (`scale-up-configures: new-hosts`).

Two RUNNING sim provisions of 20 hosts (real Terraform with the sim provider, real
ansible-playbook, onesim over XML-RPC): one of the built-in `sim` driver, which declares
new-hosts, and one of `plain`, a copy of it without formwork's keys. Each round, in turns:

1. `formwork provision add-host ID --amount 1` (20 -> 21 hosts) is timed end to end
   (Terraform init/plan/apply, OpenNebula registration, the play);
2. the play alone is timed again in the provision's work folder on the same 21-host
   inventory, once whole and once with `--limit frontend,<new host>` (what the two drivers'
   scale-ups ran);
3. `formwork provision del-host ID --amount 1` (untimed) goes back to 20 hosts.

Aim: the limited scale-up <= 0.3x the full one.

Run after scripts/setup and `cargo build --release --bin formwork --bin onesim`:
`python3 benches/scale_up.py [rounds]` (the binaries are looked for in $CARGO_TARGET_DIR, or
target/, /release). Figures go to docs/benchmarks.md by hand.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchtools import FORMWORK, ONESIM, PLAYBOOK, ROOT, require, run, start_onesim, timed  # noqa: E402

HOSTS = 20
TAGS = "stage2,stage3,network"


def plain_driver(work):
    """A drivers folder holding `plain`: the sim driver without formwork's keys."""
    root = os.path.join(work, "drivers")
    plain = os.path.join(root, "plain")
    shutil.copytree(os.path.join(ROOT, "drivers", "sim"), plain)
    conf = os.path.join(plain, "driver.conf")
    with open(conf) as f:
        text = f.read().split("\nformwork:")[0]
    with open(conf, "w") as f:
        f.write(text)
    return root


class Provision:
    """A RUNNING 20-host provision of `driver` in its own data dir and sim cloud."""

    def __init__(self, work, driver, env):
        self.data = tempfile.mkdtemp(dir=work)
        cloud = tempfile.mkdtemp(dir=work)
        self.cloud = cloud
        self.env = {**env, "FORMWORK_DATA_DIR": self.data}
        self.driver = driver
        provider = json.dumps({"api_token": "bench", "endpoint": cloud})
        run([FORMWORK, "provider", "create", driver, "--values", "-"], env=self.env, stdin=provider)
        values = json.dumps({"oneform_hosts": HOSTS})
        run([FORMWORK, "provision", "create", driver, "--values", "-"], env=self.env, stdin=values)

    def formwork(self, *args):
        return run([FORMWORK, "--json", *args], env=self.env)

    def scale_up(self):
        """Seconds of `add-host --amount 1`, and the inventory name of the new host."""
        before = {h["id"] for h in json.loads(self.formwork("provision", "show", "1"))["one_objects"]["hosts"]}
        seconds, out = timed(lambda: self.formwork("provision", "add-host", "1", "--amount", "1"))
        shown = json.loads(out)
        assert shown["state"] == "RUNNING", shown["state"]
        hosts = shown["one_objects"]["hosts"]
        assert len(hosts) == HOSTS + 1
        new = [i for i, h in enumerate(hosts) if h["id"] not in before]
        assert len(new) == 1, new
        return seconds, f"n{new[0] + 1}"  # the sim template names nodes n1.. in host order

    def play(self, limit=None):
        """Seconds of the play alone in the provision's work folder, whole or limited.

        formwork removes what the play reads beside it when its stage ends (the extra
        variables hold an API session, the Terraform state the provision's secrets): the bench
        writes what the sim play uses of them, and removes its state file after, so that the
        provision's next stage does not take it for a state a killed stage left."""
        work = os.path.join(self.data, "work", "1")
        ansible = os.path.join(work, "ansible")
        with open(os.path.join(ansible, "extra_vars.json"), "w") as f:
            json.dump({"provision_id": 1, "version": "7.0.0", "one_server": "127.0.0.1"}, f)
        state = os.path.join(work, "terraform", "terraform.tfstate")
        with open(state, "w") as f:
            json.dump({"outputs": {"sim_cloud": {"value": self.cloud}}}, f)
        env = {
            "ANSIBLE_CONFIG": os.path.join(ansible, "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": f"{ansible}/roles:{ROOT}/playbooks/roles",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        argv = [PLAYBOOK, "-i", "inventory.yaml", "site.yaml", "--tags", TAGS, "-e", "@extra_vars.json"]
        if limit:
            argv += ["--limit", limit]
        try:
            return timed(lambda: run(argv, cwd=ansible, env=env))[0]
        finally:
            os.remove(state)

    def scale_down(self):
        self.formwork("provision", "del-host", "1", "--amount", "1")


def summary(label, values):
    listed = ", ".join(f"{v:.2f}" for v in values)
    print(f"{label:<44} {statistics.median(values):6.2f} s  ({listed})")
    return statistics.median(values)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    require(FORMWORK, ONESIM, PLAYBOOK)
    work = tempfile.mkdtemp(prefix="formwork-scale-up-")
    sim, url, auth = start_onesim(work)
    try:
        env = {"ONE_XMLRPC": url, "ONE_AUTH": auth, "FORMWORK_AUTO_RESUME": "0",
               "FORMWORK_DRIVERS_DIRS": plain_driver(work)}
        limited, full = Provision(work, "sim", env), Provision(work, "plain", env)
        times = {k: [] for k in ("up_full", "up_limited", "play_full", "play_limited")}
        for _ in range(rounds):
            for p, key in ((full, "up_full"), (limited, "up_limited")):
                seconds, new = p.scale_up()
                times[key].append(seconds)
                if p is limited:
                    times["play_full"].append(p.play())
                    times["play_limited"].append(p.play(f"frontend,{new}"))
                p.scale_down()
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"scale-up by one host of a {HOSTS}-host sim provision, median of {rounds}:")
    up_full = summary("add-host, whole play (driver without the key)", times["up_full"])
    up_limited = summary("add-host, new-hosts-only (sim)", times["up_limited"])
    play_full = summary("the play alone, all 21 hosts", times["play_full"])
    play_limited = summary("the play alone, --limit frontend,<new host>", times["play_limited"])
    print(f"ratio, whole scale-up: {up_limited / up_full:.2f}; the play alone: {play_limited / play_full:.2f}")


if __name__ == "__main__":
    main()
