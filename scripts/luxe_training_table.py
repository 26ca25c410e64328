"""LUXE-like training comparison (experiments/luxe/*.py): F1 on whole test crossings with bootstrap
intervals, time per epoch, and the calibration gap of thresholds chosen on particle-sampled graphs.

    python scripts/luxe_training_table.py --events data/luxe10k --runs runs/luxe --json table.json

For each run directory RUNS/<variant> (full, sections, section_steps, sampled, gst, segments that exist):
  * `gnntrack evaluate` on the run's whole test crossings (sections rebuilt as whole graphs):
    accuracy, precision, recall, F1 at cuts 0.3 / 0.5 / 0.7 and the AUC with 68 % bootstrap
    intervals over crossings, four-hit track efficiency vs positron energy (into RUNS/<variant>/
    evaluation);
  * calibration: the F1-best cut on the test crossings thinned to --fraction of their particles
    (as particle sampling trains) against the F1-best cut on the whole crossings, and the F1 on
    whole crossings at each (the gap: what choosing the cut on samples costs);
  * seconds per epoch: training wall time over epochs (one final validation included).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import ml_collections
import numpy as np

from gnntrack.graphs.sampling import particle_sample_epoch
from gnntrack.train.metrics import edge_metrics
from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run, load_run, make_score_fn

VARIANTS = ("full", "sections", "section_steps", "sampled", "gst", "segments")
CUTS = np.round(np.arange(0.02, 0.99, 0.02), 2)


def best_cut(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut of CUTS with the highest F1 (ties: the lowest cut)."""
    f1 = [edge_metrics(scores, labels, float(t))["f1"] for t in CUTS]
    return float(CUTS[int(np.argmax(f1))])


def whole_test_graphs(run) -> list:
    """The run's test crossings as whole graphs (its data cache; sections switched off)."""
    from gnntrack.train.data import prepare_data

    config = ml_collections.ConfigDict(run.config.to_dict())
    config.graph.exact_sections = 0
    config.data.particle_fraction = 0.0
    return prepare_data(config, run.workdir, progress=False).test


def calibration(run, fraction: float) -> dict:
    from gnntrack.train.evaluation import predict_edge_scores
    from gnntrack.tracks.evaluate import _batching_config

    graphs = whole_test_graphs(run)
    samples = particle_sample_epoch(graphs, fraction, seed=0, epoch=0)
    score_fn = make_score_fn(run.model, run.params)
    batching = _batching_config(run.config)

    def scores_labels(gs):
        scores, _ = predict_edge_scores(score_fn, gs, batching, 1)
        return np.concatenate(scores), np.concatenate([np.asarray(g.y) > 0.5 for g in gs])

    s_full, y_full = scores_labels(graphs)
    s_samp, y_samp = scores_labels(samples)
    t_samp, t_full = best_cut(s_samp, y_samp), best_cut(s_full, y_full)
    f1 = lambda t: edge_metrics(s_full, y_full, t)["f1"]  # noqa: E731
    return {"purity_whole": float(y_full.mean()), "purity_sampled": float(y_samp.mean()),
            "cut_sampled": t_samp, "cut_whole": t_full, "f1_whole_at_cut_sampled": f1(t_samp),
            "f1_whole_at_cut_whole": f1(t_full), "f1_sampled_at_cut_sampled": edge_metrics(s_samp, y_samp, t_samp)["f1"],
            "f1_gap": f1(t_full) - f1(t_samp)}


def variant_row(run_dir: Path, events: str, fraction: float, n_boot: int) -> dict:
    result = json.loads((run_dir / "result.json").read_text())
    run = load_run(run_dir, "latest")
    config = default_evaluation_config()
    config.update(checkpoint="latest", edge_thresholds=(0.3, 0.5, 0.7), level=0.68, n_boot=n_boot,
                  energy_bins=(1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0), track_thresholds=(0.5,),
                  event_ids=tuple(int(i) for i in result["data"]["test_events"]),
                  graph_overrides=("exact_sections=0",), write_submissions=False, progress=False)
    config.matching.update(pt_min=0.0, eta_max=100.0, min_hits=4)
    metrics = evaluate_run(run_dir, events, run_dir / "evaluation", config=config)
    epochs = int(run.config.train.epochs)
    return {"variant": run_dir.name, "epochs": epochs, "steps": result["steps"],
            "train_s": result["train_seconds"], "s_per_epoch": result["train_seconds"] / epochs,
            "loss_weights": result["loss_weights"], "edge": metrics["edge"],
            "track_efficiency_4hit": metrics["tracks"]["efficiency"],
            "calibration": calibration(run, fraction)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", required=True, help="the crossings the runs were trained on")
    parser.add_argument("--runs", required=True, help="directory holding full/, sections/, sampled/, gst/")
    parser.add_argument("--fraction", type=float, default=0.3, help="particle fraction of the samples")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    rows = [variant_row(Path(args.runs) / v, args.events, args.fraction, args.n_boot)
            for v in VARIANTS if (Path(args.runs) / v / "result.json").exists()]
    print(f"{'variant':9s} {'cut':>4s} {'F1 [68% CI]':>24s} {'prec':>6s} {'rec':>6s} {'AUC':>6s} "
          f"{'s/epoch':>8s} {'cut samp/whole':>15s} {'F1 gap':>7s}")
    for r in rows:
        cal = r["calibration"]
        for t, m in r["edge"]["at_thresholds"].items():
            lo, hi = m.get("intervals", {}).get("f1", [np.nan, np.nan])
            print(f"{r['variant']:9s} {t:>4s} {m['f1']:8.4f} [{lo:.4f}, {hi:.4f}] {m['precision']:6.4f} "
                  f"{m['recall']:6.4f} {r['edge']['auc']:6.4f} {r['s_per_epoch']:8.1f} "
                  f"{cal['cut_sampled']:7.2f}/{cal['cut_whole']:.2f} {cal['f1_gap']:7.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
