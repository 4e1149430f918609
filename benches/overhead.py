#!/usr/bin/env python3
"""Engine overhead benchmark (issue 5).

1. Wall time of `formwork provision create sim` with 3 hosts through RUNNING (real Terraform,
   the sim provider, real ansible-playbook, onesim), divided by the wall time of a plain script
   that runs the same Terraform and Ansible commands in the same order on the same inputs
   (terraform init, plan -out, apply of the plan, ansible-playbook with the inventory and extra
   variables formwork rendered). Aim: <= 1.05.
2. `terraform init` of a provision's folder (what a scale-up re-runs) with the shared plugin
   cache already filled, against a cold one (empty cache and folder).

Run after scripts/setup: `python3 benches/overhead.py [rounds]`. Figures go to
docs/benchmarks.md by hand.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchtools import FORMWORK, ONESIM, PLAYBOOK, ROOT, TERRAFORM, TF_ENV, require, run, start_onesim, timed  # noqa: E402


def formwork_create(work, url, auth, cache):
    """A formwork create of 3 sim hosts; returns (seconds, data dir)."""
    data = tempfile.mkdtemp(dir=work)
    cloud = tempfile.mkdtemp(dir=work)
    env = {"FORMWORK_DATA_DIR": data, "ONE_XMLRPC": url, "ONE_AUTH": auth, "FORMWORK_AUTO_RESUME": "0"}
    provider = json.dumps({"api_token": "bench", "endpoint": cloud})
    run([FORMWORK, "provider", "create", "sim", "--values", "-"], env=env, stdin=provider)
    # The shared plugin cache is warm in both cases: formwork's lives in the data dir.
    os.makedirs(os.path.join(data, "plugin-cache"), exist_ok=True)
    shutil.copytree(cache, os.path.join(data, "plugin-cache"), dirs_exist_ok=True)
    seconds, _ = timed(
        lambda: run([FORMWORK, "provision", "create", "sim", "--values", "-"], env=env, stdin='{"oneform_hosts": 3}')
    )
    return seconds, data


def plain_script(work, data, cache):
    """The same commands, in the same order, without formwork; returns seconds."""
    # Side by side as in formwork's work directory: the sim playbook reads the cloud's folder
    # from ../terraform/terraform.tfstate.
    base = tempfile.mkdtemp(dir=work)
    tf = os.path.join(base, "terraform")
    os.makedirs(tf)
    source = os.path.join(data, "work", "1", "terraform")
    for name in os.listdir(source):
        if name.endswith(".tf"):
            shutil.copy(os.path.join(source, name), tf)
    # formwork removes its variables files when a stage ends (they hold the credentials): write
    # what it writes, the create's inputs, OneForm's tags and the provider's connection.
    values = {
        "oneform_hosts": 3,
        "oneform_tags": {"provision_id": "1", "provider_id": "1", "driver": "sim"},
        "api_token": "bench",
        "endpoint": tempfile.mkdtemp(dir=work),
    }
    with open(os.path.join(tf, "provision.auto.tfvars.json"), "w") as f:
        json.dump(values, f)
    ansible = os.path.join(base, "ansible")
    shutil.copytree(os.path.join(data, "work", "1", "ansible"), ansible)
    with open(os.path.join(ansible, "extra_vars.json"), "w") as f:
        json.dump({"provision_id": 1, "version": "7.0.0", "one_server": "127.0.0.1"}, f)
    env = {**TF_ENV, "TF_PLUGIN_CACHE_DIR": cache}
    ansible_env = {
        "ANSIBLE_CONFIG": os.path.join(ansible, "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": f"{ansible}/roles:{ROOT}/playbooks/roles",
        "ANSIBLE_NOCOLOR": "1",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }

    def steps():
        run([TERRAFORM, "init", "-input=false", "-no-color"], cwd=tf, env=env)
        run([TERRAFORM, "plan", "-input=false", "-no-color", "-json", "-out=plan.tfplan"], cwd=tf, env=env)
        run([TERRAFORM, "apply", "-input=false", "-no-color", "-json", "plan.tfplan"], cwd=tf, env=env)
        run(
            [PLAYBOOK, "-i", "inventory.yaml", "site.yaml", "--tags", "stage2,stage3,network", "-e", "@extra_vars.json"],
            cwd=ansible,
            env=ansible_env,
        )

    return timed(steps)[0]


def init_times(work, data, rounds):
    """`terraform init` of the provision's folder: warm shared cache vs cold."""
    source = os.path.join(data, "work", "1", "terraform")
    warm_cache = os.path.join(data, "plugin-cache")
    warm, cold = [], []
    for _ in range(rounds):
        for cache, into in ((warm_cache, warm), (tempfile.mkdtemp(dir=work), cold)):
            tf = tempfile.mkdtemp(dir=work)
            for name in os.listdir(source):
                if name.endswith(".tf") or name.endswith(".tfvars.json"):
                    shutil.copy(os.path.join(source, name), tf)
            env = {**TF_ENV, "TF_PLUGIN_CACHE_DIR": cache}
            into.append(timed(lambda: run([TERRAFORM, "init", "-input=false", "-no-color"], cwd=tf, env=env))[0])
    return statistics.median(warm), statistics.median(cold)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    require(FORMWORK, ONESIM, TERRAFORM, PLAYBOOK)
    work = tempfile.mkdtemp(prefix="formwork-overhead-")
    sim, url, auth = start_onesim(work)
    try:
        cache = os.path.join(work, "cache")
        os.makedirs(cache)
        # A first, untimed run fills the plugin cache both sides use.
        _, data = formwork_create(work, url, auth, cache)
        shutil.copytree(os.path.join(data, "plugin-cache"), cache, dirs_exist_ok=True)
        fw, plain = [], []
        for _ in range(rounds):
            seconds, data = formwork_create(work, url, auth, cache)
            fw.append(seconds)
            plain.append(plain_script(work, data, cache))
        warm, cold = init_times(work, data, rounds)
    finally:
        sim.terminate()
        sim.wait()
        shutil.rmtree(work, ignore_errors=True)
    f, p = statistics.median(fw), statistics.median(plain)
    print(f"formwork create, 3 sim hosts to RUNNING: {f:.2f} s (median of {rounds}: {', '.join(f'{x:.2f}' for x in fw)})")
    print(f"plain script, same commands:              {p:.2f} s (median of {rounds}: {', '.join(f'{x:.2f}' for x in plain)})")
    print(f"overhead ratio: {f / p:.3f}")
    print(f"terraform init, warm shared cache: {warm * 1000:.0f} ms; cold: {cold * 1000:.0f} ms (median of {rounds})")


if __name__ == "__main__":
    main()
