"""A run directory with an untrained tiny GNN, for tests of the paths that read trained runs."""

import numpy as np


def save_untrained_run(cfg, run, val_f1_by_step) -> None:
    """Writes `cfg` (model.hidden 8, one iteration) as `run`/config.json and checkpoints of one
    untrained state at each step of `val_f1_by_step` ({step: val_f1}, the best metric)."""
    import optax

    from gnntrack.config import save_config
    from gnntrack.graphs.batching import synthetic_hit_graph
    from gnntrack.nn.models import build_model
    from gnntrack.train.checkpoint import Checkpointer
    from gnntrack.train.state import init_train_state

    cfg.model.hidden = 8
    cfg.model.n_iters = 1
    save_config(cfg, run)
    model = build_model(cfg.model)
    example = synthetic_hit_graph(np.random.default_rng(0), 10, 20, n_node_features=len(cfg.graph.features.node),
                                  n_edge_features=len(cfg.graph.features.edge))
    state = init_train_state(model, optax.adam(1e-3), example.graph)
    with Checkpointer(run / "checkpoints", best_metric="val_f1") as ckpt:
        for step, val_f1 in val_f1_by_step.items():
            ckpt.save(step, state, {}, {"val_f1": val_f1})
