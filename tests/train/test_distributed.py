"""Two CPU processes on 127.0.0.1 (jax.distributed + gloo, one device each) train exactly like
one process with two devices on the same global batches; process slicing and env parsing; a
killed process is named by the launcher, which stops the others."""

import os
import signal
import sys
from pathlib import Path

os.environ.setdefault("PJRT_NPROC", "8")  # enough CPU client threads for the forced devices' collectives

import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.train import distributed as dist
from tests.studies.processes import children, gone, needs_proc, process_group, wait_for
from tests.train.distributed_agreement import agreement_run

AGREEMENT = Path(__file__).with_name("distributed_agreement.py")


def test_two_processes_agree_with_one(tmp_path):
    out = tmp_path / "mp.npz"
    rc = dist.launch_local([sys.executable, str(AGREEMENT), str(out), "3"], 2,
                           devices_per_process=1, timeout_s=240, log_dir=tmp_path / "logs")
    assert rc == 0, (tmp_path / "logs" / "process_1.log").read_text()[-2000:]
    multi = dict(np.load(out))
    assert int(multi["n_processes"]) == 2 and int(multi["n_devices"]) == 2
    single = agreement_run(3, n_devices=2)
    assert int(single["n_devices"]) == 2
    np.testing.assert_allclose(multi["losses"], single["losses"], rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(single["losses"]) < 0)  # it trains
    np.testing.assert_allclose(multi["params"], single["params"], rtol=1e-5, atol=1e-6)


def test_local_device_range_and_slice():
    assert dist.local_device_range(4, 1, 2) == slice(2, 4)
    x = {"a": np.arange(8).reshape(4, 2)}
    np.testing.assert_array_equal(dist.process_slice(x, dist.local_device_range(4, 0, 2))["a"], [[0, 1], [2, 3]])
    with pytest.raises(ConfigError):
        dist.local_device_range(4, 2, 2)


def test_distributed_env_parsing():
    assert dist.distributed_env({}) is None
    env = {dist.ENV_COORDINATOR: "127.0.0.1:1234", dist.ENV_NUM_PROCESSES: "2", dist.ENV_PROCESS_ID: "1"}
    assert dist.distributed_env(env) == ("127.0.0.1:1234", 2, 1)
    with pytest.raises(ConfigError, match=dist.ENV_PROCESS_ID):
        dist.distributed_env({**env, dist.ENV_PROCESS_ID: "2"})
    with pytest.raises(ConfigError, match="missing"):
        dist.distributed_env({dist.ENV_COORDINATOR: "127.0.0.1:1"})
    penv = dist.process_env(1, 2, "127.0.0.1:9", devices_per_process=3, base={"XLA_FLAGS": "--foo"})
    assert penv[dist.ENV_PROCESS_ID] == "1" and "--foo" in penv["XLA_FLAGS"]
    assert "--xla_force_host_platform_device_count=3" in penv["XLA_FLAGS"]


def test_launch_from_args_builds_the_child_command(monkeypatch):
    import argparse

    seen = {}

    def fake_launch(command, n, **kw):
        seen.update(command=command, n=n, **kw)
        return 0

    for key in (dist.ENV_COORDINATOR, dist.ENV_NUM_PROCESSES, dist.ENV_PROCESS_ID, dist.ENV_AUTO):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(dist, "launch_local", fake_launch)
    args = argparse.Namespace(config="exp.py", workdir="run", resume=False, no_progress=True,
                              overrides=["--config.train.steps=5"], num_processes=2, devices_per_process=1)
    assert dist.launch_from_args(args) == 0
    assert seen["n"] == 2 and seen["devices_per_process"] == 1 and seen["log_dir"] == Path("run") / "logs"
    assert seen["command"][1:] == ["-m", "gnntrack", "train", "--config", "exp.py", "--workdir", "run", "--restart",
                                   "--no-progress", "--config.train.steps=5"]
    monkeypatch.setattr(dist, "initialize_from_env", lambda: False)
    assert dist.launch_from_args(argparse.Namespace(num_processes=1)) is None


def _train_records(path):
    import json

    return [r for r in map(json.loads, path.read_text().splitlines()) if "lr" in r]


def test_gnntrack_train_num_processes_matches_one_process_with_two_devices(tmp_path):
    """`gnntrack train --num-processes 2` (one CPU device each) logs the same losses and test
    metrics as one process over two devices; process 0 alone writes checkpoints, process 1 its
    metrics in process_1/, and rerunning the command finds the run complete in both (results untouched)."""
    import json
    import subprocess

    from gnntrack.train.loop import train_and_evaluate
    from gnntrack.config import load_config

    smoke = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"
    multi = tmp_path / "multi"
    command = [sys.executable, "-m", "gnntrack", "train", "--config", str(smoke), "--workdir", str(multi),
               "--num-processes", "2", "--devices-per-process", "1", "--no-progress",
               "--config.parallel.n_devices=0", "--config.train.steps=4"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (multi / "report.md").exists() and (multi / "checkpoints").is_dir()
    assert (multi / "process_1" / "metrics.jsonl").exists() and not (multi / "process_1" / "checkpoints").exists()

    config = load_config(smoke, ["--config.parallel.n_devices=2", "--config.train.steps=4"])
    single = train_and_evaluate(config, tmp_path / "single")
    losses = [r["loss"] for r in _train_records(tmp_path / "single" / "metrics.jsonl")]
    assert len(losses) == 4
    for run in (multi, multi / "process_1"):
        np.testing.assert_allclose([r["loss"] for r in _train_records(run / "metrics.jsonl")], losses, rtol=1e-5)
    result = json.loads((multi / "result.json").read_text())
    np.testing.assert_allclose(result["test_auc"], single["test_auc"], rtol=1e-5)
    assert result["steps"] == 4 and result["resumed_from"] is None

    before = {run: (run / "result.json").read_bytes() for run in (multi, multi / "process_1")}
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already complete" in again.stdout
    for run, data in before.items():  # a finished run's results are left as they were
        assert (run / "result.json").read_bytes() == data


def test_the_first_failure_named_is_a_signal_before_an_error():
    # found ended in one poll: process 1 killed, process 0 exited 1 on its broken collective
    assert dist.first_failure([1, -9, None], [0, 1]) == 1
    assert dist.first_failure([2, 1, None], [0, 1]) == 0
    assert dist.first_failure([0, None], [0]) is None
    assert dist.describe_exit(-9) == "was killed by SIGKILL" and dist.describe_exit(3) == "exited with status 3"


def _process_index(pid: int) -> int | None:
    """GNNTRACK_PROCESS_ID of a launched process (from /proc/<pid>/environ)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in environ:
        if entry.startswith(dist.ENV_PROCESS_ID.encode() + b"="):
            return int(entry.split(b"=", 1)[1])
    return None


@needs_proc
@pytest.mark.slow
def test_a_killed_process_of_a_two_process_run_is_named_and_the_other_stopped(tmp_path):
    """kill -9 of process 1 mid-run: the launcher names it (index, pid, signal) in one last line,
    exit 2, and stops process 0 at once (whose Gloo error is not the headline)."""
    smoke = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"
    run, log = tmp_path / "run", tmp_path / "launcher.log"
    command = [sys.executable, "-m", "gnntrack", "train", "--config", str(smoke), "--workdir", str(run),
               "--num-processes", "2", "--devices-per-process", "1", "--no-progress",
               "--config.parallel.n_devices=0", "--config.train.steps=100000", "--config.train.eval_every=100000",
               "--config.train.checkpoint_every=100000"]
    with process_group(command, log) as launcher:
        metrics = run / "process_1" / "metrics.jsonl"
        wait_for(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2, 300,
                 "process 1 training", launcher, log)
        launched = children(launcher.pid)
        victim = next(pid for pid in launched if _process_index(pid) == 1)
        os.kill(victim, signal.SIGKILL)
        launcher.wait(timeout=120)
    lines = log.read_text().strip().splitlines()
    assert launcher.returncode == 2, "\n".join(lines[-30:])
    assert lines[-1].startswith(f"gnntrack train: error: process 1 of 2 (pid {victim}) was killed by SIGKILL")
    assert str(run / "logs" / "process_1.log") in lines[-1]
    assert len(launched) == 2 and all(gone(pid) for pid in launched)  # process 0 was stopped too
