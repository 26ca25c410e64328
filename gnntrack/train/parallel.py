"""Run per-device step functions over several devices: jax.shard_map (default) or jax.pmap.

    dp = DataParallel(default_parallel_config())          # all local devices
    p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, lr_fn=lr_fn))
    p_eval = dp.eval_step(make_eval_step(model))
    state = dp.put_state(state)                            # replicate (pmap: stack)
    for batch in batch_iterator(graphs, cfg.batching, dp.n_devices, ladder=ladder, ...):
        state, metrics = p_train(state, batch)             # Batch or DeviceBatch, leading [D]
    host_state = dp.get_state(state)                       # one copy, for checkpoints / eval

The batch is never one concatenated GraphsTuple under plain jit (message passing would leak
across devices' graphs): each device gets its own padded graph along the leading axis, and the
step sees it without that axis. The state argument is DONATED: after `p_train(state, batch)` the
old `state` buffers are invalid; use only the returned state.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gnntrack.errors import ConfigError
from gnntrack.graphs.batching import Batch, DeviceBatch

MODES = ("shard_map", "pmap")
DEFAULT_AXIS = "devices"


def default_parallel_config() -> ml_collections.ConfigDict:
    """Parallel defaults (the `parallel` sub-config).

    Keys:
      mode: 'shard_map' (jax.shard_map over a 1-D mesh, jit-compiled) or 'pmap'.
      n_devices: devices to use; 0 = all local devices.
      axis_name: name of the device axis used by the per-device steps.
    """
    c = ml_collections.ConfigDict()
    c.mode = "shard_map"
    c.n_devices = 0
    c.axis_name = DEFAULT_AXIS
    return c


def select_devices(n_devices: int = 0) -> list:
    """The first n local devices (0 = all); ConfigError if more are asked than exist."""
    devices = jax.local_devices()
    if n_devices < 0 or n_devices > len(devices):
        raise ConfigError(f"parallel.n_devices={n_devices} but only {len(devices)} local devices "
                          f"({devices[0].platform}) are available; use 0 for all")
    return devices[:n_devices or len(devices)]


def replicate(tree: Any, devices: list) -> Any:
    """Stacks `tree` over devices with a leading axis (pmap layout)."""
    stacked = jax.tree_util.tree_map(lambda x: np.stack([np.asarray(x)] * len(devices)), tree)
    return shard_stacked(stacked, devices)


def shard_stacked(tree: Any, devices: list) -> Any:
    """Places a tree with a leading device axis [D, ...] one slice per device (pmap layout)."""
    sharding = NamedSharding(Mesh(np.array(devices), ("_stack",)), P("_stack"))
    return jax.device_put(tree, sharding, may_alias=False)


def unreplicate(tree: Any) -> Any:
    """First copy of a pmap-replicated tree (drops the leading device axis)."""
    return jax.tree_util.tree_map(lambda x: x[0], tree)


def _as_device_batch(batch):
    return batch.device_batch() if isinstance(batch, Batch) else batch


class DataParallel:
    """Wraps per-device step functions for the configured devices and mode.

    Attributes:
      mode, axis_name, devices, n_devices; mesh (shard_map only).
    """

    def __init__(self, config: ml_collections.ConfigDict | None = None):
        config = config or default_parallel_config()
        if config.mode not in MODES:
            raise ConfigError(f"parallel.mode must be one of {MODES}, got {config.mode!r}")
        self.mode = config.mode
        self.axis_name = config.axis_name
        self.devices = select_devices(int(config.n_devices))
        self.n_devices = len(self.devices)
        self.mesh = Mesh(np.array(self.devices), (self.axis_name,)) if self.mode == "shard_map" else None

    # -- placement -------------------------------------------------------------------------
    def put_state(self, state: Any) -> Any:
        """Places a single-copy state for the step functions (shard_map: replicated sharding;
        pmap: stacked copies with a leading device axis). Always copies, so `state` itself stays
        valid after the (donating) step functions consume the placed one."""
        if self.mode == "pmap":
            return replicate(state, self.devices)
        # device_put would alias the device-0 shard to `state`'s buffers (even with
        # may_alias=False), and donation would then delete the caller's state: copy first.
        state = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)
        return jax.device_put(state, NamedSharding(self.mesh, P()))

    def get_state(self, state: Any) -> Any:
        """Single-copy state (pmap: first replica; shard_map: as is)."""
        return unreplicate(state) if self.mode == "pmap" else state

    def put_batch(self, batch: Batch | DeviceBatch) -> DeviceBatch:
        """Transfers a stacked [D, ...] batch, one slice per device (optional; the step
        functions also accept numpy batches). D must equal n_devices."""
        batch = _as_device_batch(batch)
        self._check_batch(batch)
        if self.mode == "pmap":
            return shard_stacked(batch, self.devices)
        return jax.device_put(batch, NamedSharding(self.mesh, P(self.axis_name)))

    def _check_batch(self, batch: DeviceBatch) -> None:
        d = batch.y.shape[0]
        if d != self.n_devices:
            raise ConfigError(f"batch has a leading device axis of {d} but the step runs on "
                              f"{self.n_devices} devices (batch_iterator(..., n_devices) must match "
                              "parallel.n_devices)")

    # -- wrapping --------------------------------------------------------------------------
    def parallelize(self, per_device_fn: Callable, *, sharded_out: bool, donate_state: bool,
                    returns_state: bool = False) -> Callable:
        """fn(state, batch) -> out, run on every device. state: replicated; batch: [D, ...].

        sharded_out=False: outputs are the same on all devices (after psum/pmean) and come back
        as one copy; True: outputs get a leading device axis [D, ...].
        returns_state: out is (state, rest); under pmap the state keeps its device axis (it is
        fed back to the next call) and only `rest` is unreplicated.
        """
        axis = self.axis_name
        if self.mode == "pmap":
            pfn = jax.pmap(per_device_fn, axis_name=axis, devices=self.devices,
                           donate_argnums=(0,) if donate_state else ())

            def run_pmap(state, batch):
                batch = _as_device_batch(batch)
                self._check_batch(batch)
                out = pfn(state, batch)
                if sharded_out:
                    return out
                if returns_state:
                    return out[0], unreplicate(out[1])
                return unreplicate(out)
            return run_pmap

        def per_device(state, batch):
            out = per_device_fn(state, jax.tree_util.tree_map(lambda x: x[0], batch))
            return jax.tree_util.tree_map(lambda x: x[None], out) if sharded_out else out

        smap = jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(), P(axis)),
                             out_specs=P(axis) if sharded_out else P())
        jitted = jax.jit(smap, donate_argnums=(0,) if donate_state else ())

        def run_shard_map(state, batch):
            batch = _as_device_batch(batch)
            self._check_batch(batch)
            return jitted(state, batch)
        run_shard_map.jitted = jitted  # for cost analysis / lowering (bench)
        return run_shard_map

    def train_step(self, per_device_train_step: Callable, *, donate_state: bool = True) -> Callable:
        """(state, batch) -> (state, metrics); metrics are single-copy scalars."""
        return self.parallelize(per_device_train_step, sharded_out=False, donate_state=donate_state,
                                returns_state=True)

    def eval_step(self, per_device_eval_step: Callable) -> Callable:
        """(state, batch) -> outputs with a leading device axis [D, ...] (state not donated)."""
        return self.parallelize(per_device_eval_step, sharded_out=True, donate_state=False)

