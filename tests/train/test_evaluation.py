"""The prediction path's metrics: only the edges a graph counts (`edge_mask`) enter them."""

import dataclasses

import numpy as np
import pytest

from gnntrack.graphs.batching import synthetic_hit_graph
from gnntrack.train.evaluation import edge_summary


def test_edge_summary_counts_only_the_edges_of_the_edge_mask():
    rng = np.random.default_rng(0)
    g = synthetic_hit_graph(rng, 6, 8)
    g = dataclasses.replace(g, y=np.array([1, 1, 0, 0, 1, 0, 1, 0], np.float32))
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.0, 0.0, 0.0, 0.0], np.float32)  # halo edges scored 0
    core = np.array([True] * 4 + [False] * 4)
    masked = edge_summary([scores], [dataclasses.replace(g, edge_mask=core)], prefix="t_")
    assert masked["n_t_edges"] == 4 and masked["t_recall"] == 1.0 and masked["t_auc"] == 1.0
    whole = edge_summary([scores], [g], prefix="t_")   # the halo's true edges would count as missed
    assert whole["n_t_edges"] == 8 and whole["t_recall"] == pytest.approx(0.5)


def test_the_summary_table_shows_a_task_without_edge_recall():
    """A jet run reports accuracy / AUC / loss but no recall: its rows are still printed."""
    import io

    from rich.console import Console

    from gnntrack.train.evaluation import print_summary

    out = io.StringIO()
    print_summary({"n_test_items": 8000, "test_accuracy": 0.9195, "test_auc": 0.9618, "test_loss": 0.2206},
                  console=Console(file=out, width=120))
    row = [line for line in out.getvalue().splitlines() if "test (held-out events)" in line]
    assert row and "8,000" in row[0] and "0.9618" in row[0] and "0.9195" in row[0]
