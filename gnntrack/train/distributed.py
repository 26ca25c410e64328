"""Multi-process data parallelism with `jax.distributed`: initialisation, per-process batch
slices, a global-mesh DataParallel, and a local launcher.

One training job = N processes (one per host, or several on one host), each with its local
devices; the mesh spans all devices of all processes in (process, local device) order. Every
process builds the SAME global batch for the step (the data order is a pure function of
(seed, epoch)), keeps only its own devices' slice ([D_global, ...] -> [D_local, ...]) and hands
it to `jax.make_array_from_process_local_data`; the jit-compiled shard_map step then runs as in a
single process (psum over all devices), so parameters stay identical everywhere and the result
equals a single process with D_global devices on the same global batch (up to float summation
order).

    # every process (env set by `launch_local`, by scripts/launch_slurm.sh, or by hand):
    initialize_from_env()              # jax.distributed.initialize(...) from GNNTRACK_* vars
    dp = ProcessDataParallel(config.parallel)
    p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, lr_fn=lr_fn))
    state = dp.put_state(host_state)   # host_state identical on every process (same seed)
    for batch in batch_iterator(graphs, config.batching, dp.n_devices, ...):  # GLOBAL device count
        state, metrics = p_train(state, batch)   # slices this process's devices internally

Environment (read by `initialize_from_env`):
  GNNTRACK_COORDINATOR     host:port of process 0's coordinator (e.g. 127.0.0.1:12355)
  GNNTRACK_NUM_PROCESSES   N
  GNNTRACK_PROCESS_ID      0 .. N-1
  GNNTRACK_DISTRIBUTED=auto  instead of the three above: jax.distributed.initialize() with no
                           arguments (cluster auto-detection: SLURM, Open MPI, ...)
CPU processes talk through gloo (jax_cpu_collectives_implementation).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from gnntrack.errors import ConfigError, GnnTrackError
from gnntrack.runtime import child_env, stop_with_parent

ENV_COORDINATOR = "GNNTRACK_COORDINATOR"
ENV_NUM_PROCESSES = "GNNTRACK_NUM_PROCESSES"
ENV_PROCESS_ID = "GNNTRACK_PROCESS_ID"
ENV_AUTO = "GNNTRACK_DISTRIBUTED"


# ---------------------------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------------------------

def distributed_env(environ: dict | None = None) -> tuple[str, int, int] | None:
    """(coordinator, num_processes, process_id) from the GNNTRACK_* variables, or None when
    unset; ConfigError naming the variable when they are incomplete or inconsistent."""
    env = os.environ if environ is None else environ
    keys = (ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID)
    present = [k for k in keys if env.get(k)]
    if not present:
        return None
    missing = [k for k in keys if not env.get(k)]
    if missing:
        raise ConfigError(f"multi-process run: {', '.join(present)} set but {', '.join(missing)} missing")
    try:
        n, pid = int(env[ENV_NUM_PROCESSES]), int(env[ENV_PROCESS_ID])
    except ValueError:
        raise ConfigError(f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be integers, got "
                          f"{env[ENV_NUM_PROCESSES]!r}, {env[ENV_PROCESS_ID]!r}") from None
    if n < 1 or not 0 <= pid < n:
        raise ConfigError(f"{ENV_PROCESS_ID}={pid} must lie in [0, {ENV_NUM_PROCESSES}={n})")
    if ":" not in env[ENV_COORDINATOR]:
        raise ConfigError(f"{ENV_COORDINATOR} must be host:port, got {env[ENV_COORDINATOR]!r}")
    return env[ENV_COORDINATOR], n, pid


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, timeout_s: int = 300) -> None:
    """jax.distributed.initialize (call before any other JAX use). With all arguments None JAX
    auto-detects the cluster (SLURM, Open MPI, ...). CPU collectives go through gloo."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict[str, Any] = {"initialization_timeout": int(timeout_s)}
    if coordinator_address is not None:
        kwargs.update(coordinator_address=coordinator_address, num_processes=int(num_processes),
                      process_id=int(process_id))
    jax.distributed.initialize(**kwargs)


def initialize_from_env(environ: dict | None = None) -> bool:
    """Initialises jax.distributed from the GNNTRACK_* variables (see module docstring).
    Returns True when this is a multi-process run, False when no variable is set."""
    env = os.environ if environ is None else environ
    if env.get(ENV_AUTO, "").lower() == "auto":
        initialize()
        return True
    spec = distributed_env(env)
    if spec is None:
        return False
    initialize(*spec)
    return True


# ---------------------------------------------------------------------------------------------
# Process slices of a global batch
# ---------------------------------------------------------------------------------------------

def local_device_range(n_global: int, process_index: int, n_local: int) -> slice:
    """The rows [D_global] of a global batch that belong to one process: process p owns global
    devices p*L .. (p+1)*L - 1 (the mesh order of `global_devices`)."""
    lo = int(process_index) * int(n_local)
    if lo + n_local > n_global:
        raise ConfigError(f"process {process_index} with {n_local} local devices does not fit a global "
                          f"batch over {n_global} devices")
    return slice(lo, lo + int(n_local))


def process_slice(tree: Any, rows: slice) -> Any:
    """The [rows] slice of every leaf with a leading device axis (numpy)."""
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[rows], tree)


def global_devices() -> list:
    """All devices of all processes, ordered by (process index, local device id)."""
    import jax

    return sorted(jax.devices(), key=lambda d: (d.process_index, d.id))


class ProcessDataParallel:
    """DataParallel over the devices of ALL processes (shard_map on a global 1-D mesh).

    Same interface as gnntrack.train.parallel.DataParallel: n_devices is the GLOBAL count (give
    it to batch_iterator), train_step/eval_step take a full global Batch / DeviceBatch ([D_global,
    ...] numpy) and use only this process's rows. Train metrics come back as this process's
    (identical) copy. Evaluation runs on the local devices only (no collectives), so every process
    can score any graphs by itself.
    """

    def __init__(self, config: ml_collections.ConfigDict | None = None):
        import jax
        from jax.sharding import Mesh

        from gnntrack.train.parallel import default_parallel_config

        config = config or default_parallel_config()
        if config.mode != "shard_map":
            raise ConfigError("multi-process training needs parallel.mode='shard_map' (pmap is single-process here)")
        if int(config.n_devices) not in (0, jax.local_device_count()):
            raise ConfigError(f"multi-process training uses every local device: parallel.n_devices must be 0 "
                              f"or {jax.local_device_count()}, got {config.n_devices}")
        self.mode = "shard_map"
        self.axis_name = config.axis_name
        self.devices = global_devices()
        self.n_devices = len(self.devices)
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        self.n_local = len(self.local_devices)
        self.process_index = jax.process_index()
        self.process_count = jax.process_count()
        self.rows = local_device_range(self.n_devices, self.process_index, self.n_local)
        self.mesh = Mesh(np.array(self.devices), (self.axis_name,))
        self.local_mesh = Mesh(np.array(self.local_devices), (self.axis_name,))

    # -- placement -------------------------------------------------------------------------
    def put_state(self, state: Any) -> Any:
        """Globally replicated arrays from a host state that is identical on every process."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec as P

        sharding = NamedSharding(self.mesh, P())

        def place(x):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
        return jax.tree_util.tree_map(place, jax.device_get(state))

    def get_state(self, state: Any) -> Any:
        """This process's copy of a replicated state (numpy)."""
        import jax

        return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)), state)

    def put_batch(self, batch) -> Any:
        """Global array [D_global, ...] from the full numpy batch (this process's rows only)."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec as P

        from gnntrack.graphs.batching import Batch

        db = batch.device_batch() if isinstance(batch, Batch) else batch
        if np.asarray(db.y).shape[0] != self.n_devices:
            raise ConfigError(f"batch has a leading device axis of {np.asarray(db.y).shape[0]}; a multi-process "
                              f"step needs the GLOBAL device count {self.n_devices} (batch_iterator(..., dp.n_devices))")
        sharding = NamedSharding(self.mesh, P(self.axis_name))
        local = process_slice(db, self.rows)
        return jax.tree_util.tree_map(
            lambda x: jax.make_array_from_process_local_data(sharding, x, (self.n_devices,) + x.shape[1:]), local)

    # -- wrapping --------------------------------------------------------------------------
    def train_step(self, per_device_train_step: Callable, *, donate_state: bool = True) -> Callable:
        """(state, global batch) -> (state, metrics as this process's local copy)."""
        import jax
        from jax.sharding import PartitionSpec as P

        axis = self.axis_name

        def per_device(state, batch):
            return per_device_train_step(state, jax.tree_util.tree_map(lambda x: x[0], batch))

        smap = jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P(axis)), out_specs=P())
        jitted = jax.jit(smap, donate_argnums=(0,) if donate_state else ())

        def run(state, batch):
            placed = batch if _is_global(batch) else self.put_batch(batch)
            state, metrics = jitted(state, placed)
            return state, jax.tree_util.tree_map(lambda x: x.addressable_data(0), metrics)
        run.jitted = jitted
        return run

    def eval_step(self, per_device_eval_step: Callable) -> Callable:
        """(state, global batch) -> outputs [D_global, ...] (numpy), computed on the LOCAL devices
        in chunks of n_local rows (the eval step has no collectives)."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec as P

        from gnntrack.graphs.batching import Batch

        axis = self.axis_name

        def per_device(state, batch):
            out = per_device_eval_step(state, jax.tree_util.tree_map(lambda x: x[0], batch))
            return jax.tree_util.tree_map(lambda x: x[None], out)

        jitted = jax.jit(jax.shard_map(per_device, mesh=self.local_mesh, in_specs=(P(), P(axis)), out_specs=P(axis)))
        local_rep = NamedSharding(self.local_mesh, P())
        local_split = NamedSharding(self.local_mesh, P(axis))

        def run(state, batch):
            db = batch.device_batch() if isinstance(batch, Batch) else batch
            host_state = jax.device_put(self.get_state(state), local_rep)
            n = np.asarray(db.y).shape[0]
            outs = []
            for lo in range(0, n, self.n_local):
                chunk = process_slice(db, slice(lo, lo + self.n_local))
                k = np.asarray(chunk.y).shape[0]
                if k < self.n_local:  # pad the last chunk with copies of its first row
                    chunk = jax.tree_util.tree_map(
                        lambda x: np.concatenate([x] + [x[:1]] * (self.n_local - k)), chunk)
                out = jax.device_get(jitted(host_state, jax.device_put(chunk, local_split)))
                outs.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:k], out))
            return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *outs)
        return run


def _is_global(batch) -> bool:
    import jax

    leaves = jax.tree_util.tree_leaves(batch)
    return bool(leaves) and isinstance(leaves[0], jax.Array) and not leaves[0].is_fully_addressable


def make_data_parallel(config: ml_collections.ConfigDict):
    """DataParallel (one process) or ProcessDataParallel (after jax.distributed.initialize with
    more than one process)."""
    import jax

    if jax.process_count() > 1:
        return ProcessDataParallel(config)
    from gnntrack.train.parallel import DataParallel

    return DataParallel(config)


# ---------------------------------------------------------------------------------------------
# Local launcher
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (for the coordinator)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_env(process_id: int, num_processes: int, coordinator: str, *, devices_per_process: int = 0,
                base: dict | None = None) -> dict[str, str]:
    """Environment of one launched process: GNNTRACK_* variables, and on CPU hosts
    `devices_per_process` forced host devices (0 = leave XLA_FLAGS alone)."""
    env = child_env(os.environ if base is None else base)  # huge pages, see gnntrack/runtime.py
    env[ENV_COORDINATOR] = coordinator
    env[ENV_NUM_PROCESSES] = str(int(num_processes))
    env[ENV_PROCESS_ID] = str(int(process_id))
    env.pop(ENV_AUTO, None)
    if devices_per_process:
        flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={int(devices_per_process)}"])
        env.setdefault("PJRT_NPROC", str(max(2 * int(devices_per_process), 4)))
    return env


class ProcessFailed(GnnTrackError):
    """A launched process ended with an error or by a signal; the launcher stopped the others."""

    def __init__(self, message: str, *, index: int, pid: int, returncode: int):
        super().__init__(message)
        self.index, self.pid, self.returncode = index, pid, returncode


def describe_exit(returncode: int) -> str:
    """'was killed by SIGKILL' (negative Popen return codes) or 'exited with status 1'."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def first_failure(codes: Sequence[int | None], ended_now: Sequence[int]) -> int | None:
    """Which of the processes `ended_now` (indices; found ended in the same poll) to name as the
    one that failed first: a process killed by a signal before one that exited with an error
    (the others' errors are usually their reaction to it: a collective whose peer vanished),
    then the lowest index. None when all of them exited with 0."""
    failed = [i for i in ended_now if codes[i] != 0]
    return min(failed, key=lambda i: (codes[i] >= 0, i)) if failed else None


def launch_local(command: Sequence[str], num_processes: int, *, port: int | None = None,
                 devices_per_process: int = 0, timeout_s: float | None = None,
                 log_dir: str | os.PathLike | None = None, quiet_workers: bool = True, hint: str = "",
                 interrupt_grace_s: float = 10.0) -> int:
    """Runs `command` as `num_processes` processes on this host, coordinated on 127.0.0.1:port.

    Process 0's output goes to this terminal; the others' to `log_dir/process_<i>.log` (or are
    discarded when quiet_workers and no log_dir). Each process stops when this one dies (also by
    kill -9) if `command` calls gnntrack.runtime.stop_with_parent, as `gnntrack train` does.

    Returns 0 when every process exits with 0. When one fails (an exit status other than 0, or a
    signal), the others are killed at once (a process of a jax.distributed run cannot go on
    without its peers, and JAX catches SIGTERM for its preemption notice), and ProcessFailed
    names the first that failed: index, pid, exit status or signal, its log file, then `hint`.
    Ctrl-C: the processes (which got it from the terminal too) get `interrupt_grace_s` seconds
    to stop by themselves. Raises GnnTrackError on timeout.
    """
    if num_processes < 1:
        raise ConfigError(f"--num-processes must be >= 1, got {num_processes}")
    coordinator = f"127.0.0.1:{port or free_port()}"
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    log_paths: dict[int, Path] = {}
    try:
        for index in range(num_processes):
            out = None
            if index > 0 and (log_dir is not None or quiet_workers):
                if log_dir is not None:
                    Path(log_dir).mkdir(parents=True, exist_ok=True)
                    log_paths[index] = Path(log_dir) / f"process_{index}.log"
                    out = open(log_paths[index], "ab")
                else:
                    out = open(os.devnull, "wb")
                logs.append(out)
            env = process_env(index, num_processes, coordinator, devices_per_process=devices_per_process)
            procs.append(subprocess.Popen(list(command), env=env, stdout=out,
                                          stderr=subprocess.STDOUT if out else None))
        deadline = None if timeout_s is None else time.monotonic() + float(timeout_s)
        codes: list[int | None] = [None] * num_processes
        while any(c is None for c in codes):
            ended = [i for i, p in enumerate(procs) if codes[i] is None and p.poll() is not None]
            for i in ended:
                codes[i] = procs[i].returncode
            failed = first_failure(codes, ended)
            if failed is not None:
                _kill_all(procs)
                where = f"; its output: {log_paths[failed]}" if failed in log_paths else ""
                raise ProcessFailed(
                    f"process {failed} of {num_processes} (pid {procs[failed].pid}) "
                    f"{describe_exit(int(codes[failed]))}{where}; the other process(es) were stopped"
                    + (f"; {hint}" if hint else ""),
                    index=failed, pid=procs[failed].pid, returncode=int(codes[failed]))
            if deadline is not None and time.monotonic() > deadline:
                raise GnnTrackError(f"multi-process run timed out after {timeout_s} s")
            time.sleep(0.05)
        return 0
    except KeyboardInterrupt:
        end = time.monotonic() + interrupt_grace_s
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(end - time.monotonic(), 0.0))
        raise
    finally:
        _kill_all(procs)
        for f in logs:
            f.close()


def _kill_all(procs: Sequence[subprocess.Popen]) -> None:
    """SIGKILL to the processes still running, and reaps them."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def add_launch_arguments(parser) -> None:
    """`--num-processes N` and `--devices-per-process K` for a CLI verb (gnntrack train)."""
    parser.add_argument("--num-processes", type=int, default=1,
                        help="launch N local processes coordinated by jax.distributed on 127.0.0.1 (each "
                             "uses its local devices; the global batch is split by process, then device)")
    parser.add_argument("--devices-per-process", type=int, default=0,
                        help="CPU hosts: forced host devices per launched process (0 = XLA default)")


def launch_from_args(args, verb: str = "train") -> int | None:
    """For `gnntrack <verb> --num-processes N`: in the launching process, start N copies of the
    command (without the flag) and return the exit code; in a launched process (GNNTRACK_*
    set) or a single-process run, initialise jax.distributed if needed and return None."""
    n = int(getattr(args, "num_processes", 1) or 1)
    if n < 1:
        raise ConfigError(f"--num-processes must be >= 1, got {n}")
    if n > 1 and distributed_env() is None and os.environ.get(ENV_AUTO, "").lower() != "auto":
        command = [sys.executable, "-m", "gnntrack", verb, "--config", str(args.config), "--workdir", str(args.workdir)]
        if getattr(args, "resume", True) is False:
            command.append("--restart")
        if getattr(args, "no_progress", False):
            command.append("--no-progress")
        command += list(getattr(args, "overrides", []) or [])
        # workers' output goes to WORKDIR/logs/process_<i>.log (process 0 prints here)
        return launch_local(command, n, devices_per_process=int(getattr(args, "devices_per_process", 0) or 0),
                            log_dir=Path(args.workdir) / "logs",
                            hint="rerun the same command to resume from the last checkpoint")
    if distributed_env() is not None:
        # started by launch_local: stop with the launcher (SIGKILL: JAX catches SIGTERM; checkpoints
        # are written atomically, so a kill loses only the steps since the last one)
        stop_with_parent(signal.SIGKILL)
    initialize_from_env()
    return None
