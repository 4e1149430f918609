#!/usr/bin/env python3
"""How long another server takes to take over the operation of a server killed with SIGKILL,
several `formwork serve` sharing one PostgreSQL database (docs/several-servers.md).

Each run: a fresh database on the cluster `FORMWORK_BENCH_POSTGRES` names (a role that may
create databases; `postgres://user@host:port/db`), an in-memory onesim, and two `formwork serve`
(release binaries, `--listen 127.0.0.1:0`) with their own homes and data dirs, the same key
(made by a first `formwork provider list` of A, copied to B), the fake Terraform and Ansible of
tests/fakes. A's fake Terraform hangs in `apply` (`hang_apply` in A's $HOME/fake-scenario.json);
B's does not. A sim provider and a 1-host create are posted to A; once A's log of the provision
shows the apply running, A is killed with SIGKILL. Measured from the kill:

  - takeover: until B's log of the provision says `Resuming` (B took the operation over and
    resumes the interrupted stage from its checkpoint), polled every 20 ms;
  - RUNNING: until B answers the provision RUNNING (B's apply does not hang), polled every 100 ms.

Usage: FORMWORK_BENCH_POSTGRES=postgres://… python3 benches/takeover.py [RUNS]   (10 by default)
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchtools import FORMWORK, ONESIM, ROOT, require  # noqa: E402

FAKES = os.path.join(ROOT, "tests", "fakes")
AUTH = "Basic " + base64.b64encode(b"oneadmin:pw").decode()
WITHIN = 120  # seconds: a run that takes longer has failed


def psql(admin, sql):
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, capture_output=True)


def request(addr, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method)
    req.add_header("Authorization", AUTH)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.loads(answer.read())


class Server:
    """One `formwork serve` on its own home; its stderr in home/serve.log."""

    def __init__(self, home, env):
        self.home = home
        log = open(os.path.join(home, "serve.log"), "ab")
        self.proc = subprocess.Popen(
            [FORMWORK, "serve", "--listen", "127.0.0.1:0"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        line = self.proc.stdout.readline().strip()
        prefix = "formwork listening on http://"
        if not line.startswith(prefix):
            sys.exit(f"formwork serve printed {line!r}; see {home}/serve.log")
        self.addr = line[len(prefix):]

    def provision_log(self, pid):
        try:
            with open(os.path.join(self.home, "data", "logs", f"{pid}.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_env(home, database, sim_url, auth):
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "FORMWORK_DATA_DIR": os.path.join(home, "data"),
        "FORMWORK_BUILTIN_DRIVERS": os.path.join(ROOT, "drivers"),
        "FORMWORK_TERRAFORM": os.path.join(FAKES, "terraform"),
        "FORMWORK_ANSIBLE_PLAYBOOK": os.path.join(FAKES, "ansible-playbook"),
        "FORMWORK_DATABASE": database,
        "ONE_XMLRPC": sim_url,
        "ONE_AUTH": auth,
    }


def wait_for(what, check, every):
    deadline = time.monotonic() + WITHIN
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(every)
    raise TimeoutError(what)


def one_run(admin, run, work):
    base = admin.rsplit("/", 1)[0]
    name = f"fw_bench_takeover_{os.getpid()}_{run}"
    psql(admin, f'CREATE DATABASE "{name}" TEMPLATE template0')
    database = f"{base}/{name}"
    sim = subprocess.Popen([ONESIM, "--port", "0", "--password", "pw"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    servers = []
    try:
        sim_url = sim.stdout.readline().strip().rsplit(" ", 1)[-1]
        auth = os.path.join(work, "one_auth")
        with open(auth, "w") as f:
            f.write("oneadmin:pw\n")
        os.chmod(auth, 0o600)
        homes = [os.path.join(work, f"{x}{run}") for x in "ab"]
        for home in homes:
            os.makedirs(home)
        envs = [server_env(h, database, sim_url, auth) for h in homes]
        # The first command makes the schema and the key; B gets the same key.
        subprocess.run([FORMWORK, "provider", "list"], env=envs[0], check=True, capture_output=True)
        os.makedirs(os.path.join(homes[1], "data"), mode=0o700)
        shutil.copy(os.path.join(homes[0], "data", "secret.key"), os.path.join(homes[1], "data", "secret.key"))
        os.chmod(os.path.join(homes[1], "data", "secret.key"), 0o600)
        with open(os.path.join(homes[0], "fake-scenario.json"), "w") as f:
            json.dump({"hang_apply": True}, f)
        a = Server(homes[0], envs[0])
        servers.append(a)
        b = Server(homes[1], envs[1])
        servers.append(b)
        provider = request(a.addr, "POST", "/api/v1/providers",
                           {"driver": "sim", "name": "bench", "connection_values": {"api_token": "bench-token"}})
        provider_id = int(provider["DOCUMENT"]["ID"])
        created = request(a.addr, "POST", "/api/v1/provisions",
                          {"driver": "sim", "deployment_type": "sim_cluster", "provider_id": provider_id,
                           "name": f"takeover-{run}", "user_inputs_values": {"oneform_hosts": 1}})
        pid = int(created["DOCUMENT"]["ID"])
        wait_for("A's apply hangs", lambda: "Still working" in a.provision_log(pid), 0.05)
        os.kill(a.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        a.proc.wait()
        taken = wait_for("B resumes", lambda: "Resuming" in b.provision_log(pid), 0.02)

        def running():
            doc = request(b.addr, "GET", f"/api/v1/provisions/{pid}")
            return doc["DOCUMENT"]["TEMPLATE"]["PROVISION_BODY"]["state"] == "RUNNING"

        done = wait_for("RUNNING on B", running, 0.1)
        return taken - killed, done - killed
    finally:
        for s in servers:
            s.stop()
        sim.terminate()
        sim.wait()
        # Give A's tool guard time to end before the database goes.
        time.sleep(0.5)
        psql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    admin = os.environ.get("FORMWORK_BENCH_POSTGRES")
    if not admin:
        sys.exit("set FORMWORK_BENCH_POSTGRES=postgres://user@host:port/db (a role that may create databases)")
    require(FORMWORK, ONESIM)
    takeovers, finishes = [], []
    with tempfile.TemporaryDirectory(prefix="formwork-takeover-") as work:
        for run in range(1, runs + 1):
            took, done = one_run(admin, run, work)
            takeovers.append(took)
            finishes.append(done)
            print(f"run {run}: taken over {took:.2f} s after the kill, RUNNING on B after {done:.2f} s; load {load()}",
                  flush=True)
    print(f"takeover after kill -9, {runs} runs: median {statistics.median(takeovers):.2f} s, "
          f"min {min(takeovers):.2f} s, max {max(takeovers):.2f} s")
    print(f"RUNNING on B after the kill: median {statistics.median(finishes):.2f} s, max {max(finishes):.2f} s")


if __name__ == "__main__":
    main()
