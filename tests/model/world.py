"""The world the model test's server lives in: the fake tools behind the gate, onesim and
`formwork serve` started, killed and restarted, and the fake tools' scenario (one-shot
failures). Paths come from FORMWORK_MODEL_CONFIG (tests/api_model.rs)."""

import json
import os
import subprocess
import threading

CONFIG = json.loads(os.environ["FORMWORK_MODEL_CONFIG"])
HOME = CONFIG["home"]
GATE = os.path.join(HOME, "model-gate")
BLOCKED = os.path.join(HOME, "model-blocked")
# A pause before every tool call, so stages last long enough to queue behind each other.
TOOL_PAUSE = "0.2"

WRAPPER = """#!/bin/sh
# A tool as the model test runs it: while $HOME/model-gate exists the call waits (recorded in
# $HOME/model-blocked/<pid> with its working directory, and given up when formwork dies), then
# the fake runs after a short pause.
gate="$HOME/model-gate"
if [ -e "$gate" ]; then
    mark="$HOME/model-blocked/$$"
    mkdir -p "$HOME/model-blocked"
    echo "$PWD" > "$mark"
    trap 'rm -f "$mark"; exit 130' INT TERM
    while [ -e "$gate" ]; do
        kill -0 "$PPID" 2>/dev/null || { rm -f "$mark"; exit 1; }
        sleep 0.05
    done
    rm -f "$mark"
fi
sleep {pause}
exec '{fake}' "$@"
"""


def write_wrappers():
    """The tools the server runs: the fakes behind the gate; their paths by variable."""
    out = {}
    for variable in ("FORMWORK_TERRAFORM", "FORMWORK_ANSIBLE_PLAYBOOK"):
        fake = CONFIG["server_env"][variable]
        path = os.path.join(HOME, "model-" + os.path.basename(fake))
        with open(path, "w") as f:
            f.write(WRAPPER.replace("{pause}", TOOL_PAUSE).replace("{fake}", fake))
        os.chmod(path, 0o755)
        out[variable] = path
    return out


TOOLS = write_wrappers()


class Onesim:
    """A fresh OpenNebula stand-in for one example, with the three users."""

    def __init__(self, state):
        args = [CONFIG["onesim"], "--port", "0", "--password", CONFIG["passwords"]["oneadmin"], "--state", state]
        for user in CONFIG["onesim_users"]:
            args += ["--user", user]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        self.url = line.rsplit(" ", 1)[-1]
        if not self.url.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"onesim did not start: {line!r}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Server:
    """One `formwork serve` on a data dir: started, killed with SIGKILL, started again."""

    def __init__(self, data_dir, endpoint, max_operations):
        self.data_dir = data_dir
        self.endpoint = endpoint
        self.max_operations = max_operations
        self.proc = None
        self.addr = None
        self.log_path = data_dir + ".server.log"

    def start(self):
        env = dict(CONFIG["server_env"], **TOOLS)
        env["FORMWORK_DATA_DIR"] = self.data_dir
        env["ONE_XMLRPC"] = self.endpoint
        env["FORMWORK_MAX_OPERATIONS"] = str(self.max_operations)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [CONFIG["formwork"], "serve", "--listen", "127.0.0.1:0"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
        )
        log.close()
        line = self.proc.stdout.readline().decode()
        prefix = "formwork listening on http://"
        if not line.startswith(prefix):
            self.proc.kill()
            raise RuntimeError(f"formwork serve did not start ({line!r}); its log: {self.log_path}")
        self.addr = line[len(prefix):].strip()
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def kill9(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except FileNotFoundError:
            return ""


def blocked_provisions():
    """Provisions whose tool call waits at the gate now (markers of live wrappers only)."""
    ids = set()
    for name in os.listdir(BLOCKED) if os.path.isdir(BLOCKED) else []:
        path = os.path.join(BLOCKED, name)
        try:
            os.kill(int(name), 0)
            with open(path) as f:
                cwd = f.read().strip()
        except (OSError, ValueError):
            continue
        parts = cwd.split("/work/")
        if len(parts) > 1 and parts[-1].split("/")[0].isdigit():
            ids.add(int(parts[-1].split("/")[0]))
    return ids


def scenario(update):
    """Changes the fake tools' scenario file (one-shot failures)."""
    path = os.path.join(HOME, "fake-scenario.json")
    try:
        with open(path) as f:
            current = json.load(f)
    except (FileNotFoundError, ValueError):
        current = {}
    current = update(current)
    with open(path + ".tmp", "w") as f:
        json.dump(current, f)
    os.replace(path + ".tmp", path)
    return current


def open_gate():
    if os.path.exists(GATE):
        os.remove(GATE)


def failure_pending():
    """Whether a one-shot failure waits in the scenario (so whatever runs now may fail)."""
    current = scenario(lambda s: s)
    return any(k.startswith("fail_") for k in current)
