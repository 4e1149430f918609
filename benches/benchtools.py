"""What the Python benchmarks (overhead.py, scale_up.py) share: where the tools are, running a
command (its failure ends the bench with its output), timing, and a throwaway onesim."""

import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, ".tools")
RELEASE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
FORMWORK = os.path.join(RELEASE, "formwork")
ONESIM = os.path.join(RELEASE, "onesim")
TERRAFORM = os.path.join(TOOLS, "bin", "terraform")
PLAYBOOK = os.path.join(TOOLS, "venv", "bin", "ansible-playbook")
TF_ENV = {"TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.path.join(TOOLS, "terraformrc")}


def require(*tools):
    """Ends the bench naming the first tool that is missing and how to get it."""
    for tool in tools:
        if not os.path.exists(tool):
            sys.exit(f"{tool} is missing: run scripts/setup and cargo build --release --bin formwork --bin onesim first")


def run(argv, cwd=None, env=None, stdin=None):
    """Runs `argv` with only PATH, HOME and `env`; returns its stdout, or ends the bench."""
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    done = subprocess.run(argv, cwd=cwd, env=full, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def timed(fn):
    """(seconds `fn` took, what it returned)."""
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result


def start_onesim(work):
    """A onesim on a free port; (process, XML-RPC URL, ONE_AUTH file in `work`)."""
    sim = subprocess.Popen([ONESIM, "--port", "0", "--password", "bench"], stdout=subprocess.PIPE, text=True)
    url = sim.stdout.readline().strip().rsplit(" ", 1)[-1]
    auth = os.path.join(work, "one_auth")
    with open(auth, "w") as f:
        f.write("oneadmin:bench\n")
    return sim, url, auth
