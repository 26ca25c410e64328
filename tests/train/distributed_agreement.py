"""A deterministic few-step training run, for the agreement check between one process with N
devices and N processes (tests/train/test_distributed.py runs this file as each launched process).
"""

import signal
import sys

import jax
import numpy as np

from gnntrack.graphs.batching import batch_iterator, default_batching_config, synthetic_hit_graph
from gnntrack.io.atomic import atomic_path
from gnntrack.nn.models import build_model, default_model_config
from gnntrack.runtime import stop_with_parent
from gnntrack.train.distributed import initialize_from_env, make_data_parallel
from gnntrack.train.losses import default_loss_config, resolve_loss_config
from gnntrack.train.optim import default_optimizer_config, make_optimizer
from gnntrack.train.parallel import default_parallel_config
from gnntrack.train.state import device_slice, init_train_state
from gnntrack.train.step import make_train_step


def agreement_run(n_steps: int = 3, *, graphs_per_step: int = 8, seed: int = 0, n_devices: int = 0
                  ) -> dict[str, np.ndarray]:
    """Trains a tiny interaction network for `n_steps` on fixed synthetic graphs over all devices
    of all processes (single process: the first `n_devices` local devices, 0 = all).

    Returns {'losses': [n_steps], 'params': flat concatenation of all parameters, 'n_devices',
    'n_processes'} on every process."""
    rng = np.random.default_rng(seed)
    graphs = [synthetic_hit_graph(rng, int(rng.integers(6, 14)), int(rng.integers(10, 40)), event_id=i)
              for i in range(4 * graphs_per_step)]
    mc = default_model_config("interaction_network")
    mc.hidden = 8
    model = build_model(mc)
    oc = default_optimizer_config()
    oc.lr = 1e-2
    tx, lr_fn = make_optimizer(oc, graphs_per_step)
    loss_cfg = resolve_loss_config(default_loss_config(), (g.y for g in graphs))
    pc = default_parallel_config()
    pc.n_devices = int(n_devices)
    dp = make_data_parallel(pc)
    bc = default_batching_config()
    bc.graphs_per_step = graphs_per_step
    bc.max_buckets = 1
    batches = list(batch_iterator(graphs, bc, dp.n_devices, seed=seed))
    host_state = jax.device_get(init_train_state(model, tx, device_slice(batches[0].graph), seed=seed))
    state = dp.put_state(host_state)
    p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, lr_fn=lr_fn))
    losses = []
    for i in range(n_steps):
        state, metrics = p_train(state, batches[i % len(batches)])
        losses.append(float(np.asarray(metrics["loss"])))
    params = dp.get_state(state).params
    flat = np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree_util.tree_leaves(params)])
    return {"losses": np.asarray(losses), "params": flat, "n_devices": np.int64(dp.n_devices),
            "n_processes": np.int64(jax.process_count())}


def _agreement_main(out_path: str, n_steps: int) -> None:
    """Entry of a launched process: initialise from the environment, run, process 0 writes."""
    stop_with_parent(signal.SIGKILL)
    initialize_from_env()
    result = agreement_run(n_steps)
    if jax.process_index() == 0:
        with atomic_path(out_path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **result)
    jax.distributed.shutdown()


if __name__ == "__main__":  # python distributed_agreement.py OUT.npz STEPS
    if len(sys.argv) >= 2:
        _agreement_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    else:
        print("usage: python distributed_agreement.py OUT.npz [STEPS]", file=sys.stderr)
        sys.exit(2)
