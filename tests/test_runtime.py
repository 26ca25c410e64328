"""gnntrack.runtime: huge pages for XLA:CPU's host buffers via glibc's tunable, set by
re-executing the command once. Measurements run in fresh interpreters (glibc reads the tunable
at process start). Ctrl-C during an XLA compilation; workers that stop with their parent."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gnntrack import runtime
from tests.studies.processes import gone, needs_proc, process_group, wait_for

needs_hugepages = pytest.mark.skipif(not runtime.wanted(),
                                     reason="needs Linux/glibc with transparent huge pages enabled")

# Prints JSON: the allocator label and the median minor page faults per call of a jitted function
# with a 64 MB temporary buffer over calls 3-9 (the first calls compile and map memory).
_PROBE = r"""
import json, resource
from gnntrack.runtime import host_allocator_label
import jax, jax.numpy as jnp

x = jnp.arange(16_000_000, dtype=jnp.float32)  # 64 MB
f = jax.jit(lambda x: jnp.sum(jnp.cumsum(jnp.tanh(x)) * x[::-1]))
for _ in range(2):
    f(x).block_until_ready()
per_call = []
for _ in range(7):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    per_call.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
print(json.dumps({"label": host_allocator_label(), "faults": sorted(per_call)[3]}))
"""


def _probe(env) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_hugepages
def test_hugepages_cut_the_page_faults_of_xla_temp_buffers():
    huge = _probe(runtime.allocator_env())
    plain = _probe(runtime._without_tunable(os.environ))
    assert huge["label"].startswith("hugepages") and plain["label"].startswith("default")
    # Without the tunable every 4 KiB page of the fresh 64 MB block faults again on every call.
    assert plain["faults"] > 0.9 * 64e6 / 4096
    # With it the block comes in 2 MiB pages (generous bound: huge pages can run short).
    assert huge["faults"] < 0.5 * plain["faults"]


_REEXEC = r"""
import os, sys
from gnntrack.runtime import reexec_with_hugepages, host_allocator_label
with open(sys.argv[1], "a") as fh:
    fh.write(f"{os.getpid()}\n")
reexec_with_hugepages(sys.argv[2] == "on")
print(host_allocator_label())
"""


@needs_hugepages
@pytest.mark.parametrize("start_with,enable,expect_starts,expect", [
    (False, True, 2, "hugepages"),   # re-executes once, with the tunable
    (True, True, 1, "hugepages"),    # already set: runs on
    (True, False, 2, "default"),     # A/B: re-executes once without it
])
def test_reexec_runs_the_same_command_once(tmp_path, start_with, enable, expect_starts, expect):
    starts = tmp_path / "starts.txt"
    env = runtime.allocator_env() if start_with else runtime._without_tunable(os.environ)
    out = subprocess.run([sys.executable, "-c", _REEXEC, str(starts), "on" if enable else "off"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pids = starts.read_text().split()
    assert len(pids) == expect_starts and len(set(pids)) == 1  # exec keeps the PID and argv
    assert out.stdout.strip().startswith(expect)


def test_tunable_joins_other_tunables_and_opt_out_is_respected(monkeypatch):
    monkeypatch.setattr(runtime, "wanted", lambda: True)
    env = runtime.allocator_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0"})
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + runtime.TUNABLE
    assert runtime.active(env)
    assert runtime._without_tunable(env) == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert runtime._without_tunable({"GLIBC_TUNABLES": runtime.TUNABLE}) == {}
    monkeypatch.setattr(runtime, "wanted", lambda: False)
    assert runtime.allocator_env({"A": "1"}) == {"A": "1"}


def test_wanted_follows_opt_out_and_kernel_mode(monkeypatch, tmp_path):
    mode = tmp_path / "enabled"
    monkeypatch.setattr(runtime, "_THP_MODE", mode)
    assert runtime.transparent_hugepage_mode() == "unavailable"
    mode.write_text("always [madvise] never\n")
    assert runtime.transparent_hugepage_mode() == "madvise"
    monkeypatch.setenv(runtime.ENV_VAR, "default")
    assert runtime.wanted() is False
    monkeypatch.delenv(runtime.ENV_VAR)
    mode.write_text("always madvise [never]\n")
    assert runtime.wanted() is False


def test_child_env_puts_this_process_path_first(monkeypatch):
    monkeypatch.setattr(runtime, "wanted", lambda: True)
    env = runtime.child_env({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(os.pathsep)[-1] == "/elsewhere"
    assert [p for p in sys.path if p][0] == env["PYTHONPATH"].split(os.pathsep)[0]
    assert runtime.active(env)


# A `gnntrack` command whose run() compiles a jitted function that takes seconds to compile (a long
# chain of small matmuls; ~4 s on the 2-core dev machine), announcing the compilation on stdout;
# it runs through the real entry point.
_COMPILING_COMMAND = r"""
import sys, types
from gnntrack import cli

def run(args):
    import jax, jax.numpy as jnp

    def f(x):  # unrolled: seconds of XLA compilation on any CPU, well past the test's 0.5 s wait
        for i in range(600):
            x = jnp.sin(x @ x.T) + i
        return x
    lowered = jax.jit(f).lower(jnp.ones((8, 8)))
    print("compiling", flush=True)
    lowered.compile()
    print("compiled", flush=True)
    return 0

module = types.ModuleType("gnntrack.commands._compile_probe")
module.HELP, module.add_arguments, module.run = "compile a function", lambda parser: None, run
sys.modules[module.__name__] = module
cli.VERBS["compile-probe"] = "_compile_probe"
sys.argv = ["gnntrack", "compile-probe"]
cli.entry_point()
"""


@needs_proc
def test_ctrl_c_during_an_xla_compilation_exits_130_with_one_line(tmp_path):
    # Ctrl-C stops the wait for the compilation, not the compilation: the interpreter's teardown
    # used to destroy the XLA client under the compiling thread (rc -11). The signal goes to the
    # process group, as a terminal sends it.
    log = tmp_path / "command.log"
    with process_group([sys.executable, "-c", _COMPILING_COMMAND], log) as proc:
        wait_for(lambda: "compiling" in log.read_text(), 120, "compilation", proc, log)
        # lets XLA's compiling thread start (a signal during jax's own steps before it leaves no
        # compilation behind); the assertions below hold however the timing falls
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    lines = log.read_text().strip().splitlines()
    assert proc.returncode == runtime.INTERRUPTED, "\n".join(lines[-30:])
    assert lines == ["compiling", "gnntrack compile-probe: interrupted"]


# A parent that starts the worker command given in argv with child_env, then waits; the worker
# calls stop_with_parent (in "thread-only" mode without the parent-death signal) and waits too.
_PARENT = r"""
import subprocess, sys, time
from gnntrack import runtime
subprocess.Popen(sys.argv[1:], env=runtime.child_env())
time.sleep(600)
"""
_WORKER = r"""
import os, sys, time
from gnntrack import runtime
if sys.argv[1] == "thread-only":  # as where prctl is not available
    runtime._set_parent_death_signal = lambda signum: False
print(os.getpid(), runtime.stop_with_parent(), runtime.PARENT_ENV_VAR in os.environ, flush=True)
time.sleep(600)
"""


@needs_proc
@pytest.mark.parametrize("mode", ["prctl", "thread-only", "through-a-shell"])
def test_a_worker_stops_when_its_parent_is_killed(mode):
    worker = [sys.executable, "-c", _WORKER, mode]
    if mode == "through-a-shell":  # a wrapper process in between (sh forks, it does not exec)
        worker = ["sh", "-c", '"$0" "$@"; true', *worker]
    with process_group([sys.executable, "-c", _PARENT, *worker]) as parent:
        pid, watching, inherited = parent.stdout.readline().split()
        assert watching == "True" and inherited == "False"  # its own children do not inherit the variable
        parent.kill()
        parent.wait()
        wait_for(lambda: gone(int(pid)), 30, f"end of the worker {pid} after its parent was killed")


def test_stop_with_parent_needs_child_env(monkeypatch):
    monkeypatch.delenv(runtime.PARENT_ENV_VAR, raising=False)
    assert runtime.stop_with_parent() is False
    assert runtime.child_env({})[runtime.PARENT_ENV_VAR] == str(os.getpid())
