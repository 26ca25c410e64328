"""A model defined in a file outside the package, named by `config.imports`, runs through
`gnntrack train`, `gnntrack sweep --workers 2` and `gnntrack evaluate` with no other change.

Every command is a fresh interpreter (`python -m gnntrack.cli`), so nothing registered in the test
process can help: each process, and each sweep worker, must import the plug-in from the config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "experiments" / "smoke.py"
MODEL = "plugin_edgeconv"

PLUGIN = f'''
"""A small EdgeConv edge classifier: EdgeConv node embeddings, then a dense layer per edge."""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gnntrack.nn.layers.edgeconv import EdgeConv
from gnntrack.nn.registry import register_model


def default_config():
    return ml_collections.ConfigDict(dict(name={MODEL!r}, hidden=8, k=4))


@register_model({MODEL!r}, default_config)
class PluginEdgeConv(nn.Module):
    hidden: int = 8
    k: int = 4

    @nn.compact
    def __call__(self, graph, train=False):
        h = EdgeConv((self.hidden,), self.k, name="edgeconv")(jnp.asarray(graph.nodes), graph.n_node)
        pair = jnp.concatenate([h[graph.senders], h[graph.receivers]], axis=-1)
        return nn.Dense(1, name="edge_head")(pair)[:, 0]
'''

EXPERIMENT = f'''
import runpy

import ml_collections

from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import default_sweep_config

smoke = runpy.run_path({str(SMOKE)!r})


def get_config(arg=None):
    config = smoke["get_config"]()
    config.imports = ("plugin.py",)  # relative to this file
    config.model = ml_collections.ConfigDict(dict(name={MODEL!r}, hidden=8, k=4))
    config.data.n_train, config.data.n_val, config.data.n_test = 2, 1, 1
    config.train.steps = 2
    config.train.eval_every = 2
    config.train.checkpoint_every = 2
    config.train.tensorboard = False
    config.eval.full_events = False
    if arg == "sweep":
        config.sweep = default_sweep_config()
        config.sweep.space = (ss.log_uniform("optimizer.lr", 1e-3, 1e-2, grid=[1e-3, 3e-3]),)
        config.sweep.sampler = "grid"
        config.sweep.n_trials = 2
        config.sweep.metric = "val_auc"
        config.sweep.poll_seconds = 0.2
    return config
'''


def _gnntrack(args: list[str], tmp_path: Path) -> None:
    """Runs `python -m gnntrack.cli ARGS` in a fresh interpreter and fails showing its output
    unless it exits 0. The processes share one persistent compilation cache: the train run and
    both sweep trials compile the same step (the trials differ only in the learning rate)."""
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    proc = subprocess.run([sys.executable, "-m", "gnntrack.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"gnntrack {args[0]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-5000:]}"


@pytest.mark.slow
def test_a_model_in_a_file_outside_the_package_trains_sweeps_and_evaluates(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "plugin.py").write_text(PLUGIN)
    (project / "exp.py").write_text(EXPERIMENT)
    cache = f"--config.data.cache_dir={tmp_path / 'cache'}"  # the sweep reuses train's events

    run = tmp_path / "run"
    _gnntrack(["train", "--config", str(project / "exp.py"), "--workdir", str(run), cache, "--no-progress"],
              tmp_path)
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"] == {"name": MODEL, "hidden": 8, "k": 4}
    assert saved["imports"] == [str(project / "plugin.py")]  # stored absolute
    assert json.loads((run / "result.json").read_text())["steps"] == 2

    sweep = tmp_path / "sweep"
    _gnntrack(["sweep", "--config", f"{project / 'exp.py'}:sweep", "--workdir", str(sweep), "--workers", "2",
               cache], tmp_path)
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["counts"] == {"COMPLETE": 2}
    trial_models = {json.loads((d / "config.json").read_text())["model"]["name"]
                    for d in (sweep / "trials").iterdir()}
    assert trial_models == {MODEL}
    assert json.loads((sweep / summary["best"]["run_dir"] / "config.json").read_text())["model"]["name"] == MODEL

    events = next((tmp_path / "cache").glob("events-*"))  # the TrackML events train simulated
    _gnntrack(["evaluate", "--workdir", str(run), "--input", str(events), "--limit", "1", "--out",
               str(tmp_path / "report"), "--n-boot", "10", "--no-plots", "--no-submissions", "--no-progress"],
              tmp_path)
    assert (tmp_path / "report" / "metrics.json").exists()
