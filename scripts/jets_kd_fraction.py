"""Student AUC vs the fraction of training jets, with and without distillation from a teacher.

    python scripts/jets_kd_fraction.py --teacher runs/pnl --out runs/kd_fraction \\
        --jets top.h5 qcd.h5 --fractions 0.02 0.05 0.1 0.3 1.0 --steps 400

For each fraction, one student trained on that share of the training jets alone and one
distilled from the teacher's run (`gnntrack.configs.jets.student_kd_config`: T = 2, lambda =
0.5), both through the engine (`train_and_evaluate`) with the same seed, steps and validation
choice of checkpoint; their test AUC (the same test jets for every run: the split does not depend
on the fraction) with the task's bootstrap interval. Finished runs are reused. Writes
fraction.json, fraction.md and fraction.png into --out and prints the table.

With several --seeds, every point is trained once per seed, and each fraction gets the mean over
seeds of AUC(distilled) - AUC(without) with a 95 % paired bootstrap interval: the same resamples
of the test jets for every run, the difference of the seed-averaged AUCs per resample.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gnntrack.configs.jets import jets_config, student_kd_config
from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.report.plots import _pyplot, save_figure
from gnntrack.train.loop import train_and_evaluate
from gnntrack.train.metrics import roc_auc


def student_config(args: argparse.Namespace, fraction: float, distilled: bool):
    """The student's config at `fraction`, distilled from args.teacher or not."""
    config = (student_kd_config(str(Path(args.teacher).resolve()), args.model, fraction) if distilled
              else jets_config(args.model))
    config.data.jets.paths = tuple(str(Path(p).resolve()) for p in args.jets)
    config.data.jets.fraction = fraction
    config.data.cache_dir = str(Path(args.out).resolve() / "cache")
    config.batching.graphs_per_step = args.batch
    train = config.train
    train.steps, train.progress = args.steps, False
    train.eval_every = train.checkpoint_every = max(args.steps // 4, 1)
    config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, max(args.steps // 10, 1))
    return config


def run_point(args: argparse.Namespace, fraction: float, distilled: bool, seed: int) -> dict:
    """Trains (or reads the finished) student run and returns its test numbers."""
    name = f"{'kd' if distilled else 'plain'}_f{fraction:g}_s{seed}"
    config = student_config(args, fraction, distilled)
    config.seed = seed
    result = train_and_evaluate(config, Path(args.out) / name)
    return {"fraction": fraction, "distilled": distilled, "seed": seed, "run": name,
            "n_train": result.get("n_train_graphs"),
            "test_auc": result["test_auc"], "test_auc_low": result.get("test_auc_low"),
            "test_auc_high": result.get("test_auc_high")}


def test_scores(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of a run's test jets, ordered by jet id (every run has the same test jets)."""
    with np.load(run_dir / "test_predictions.npz") as f:
        order = np.argsort(f["event_id"])
        return np.asarray(f["scores"])[order].ravel(), np.asarray(f["targets"])[order, 0].astype(np.int64)


def distillation_gain(out: Path, points: list[dict], fraction: float, n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean over seeds of AUC(distilled) - AUC(without) at `fraction`, with its 95 % paired
    bootstrap interval over the test jets (module docstring)."""
    runs = {p["distilled"]: [] for p in points}
    for p in points:
        if p["fraction"] == fraction:
            runs[p["distilled"]].append(test_scores(out / p["run"]))
    labels = runs[False][0][1]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(labels), len(labels))
        means = {d: np.mean([roc_auc(s[pick], labels[pick]) for s, _ in r]) for d, r in runs.items()}
        draws.append(means[True] - means[False])
    point = np.mean([roc_auc(s, labels) for s, _ in runs[True]]) - np.mean([roc_auc(s, labels) for s, _ in runs[False]])
    return {"fraction": fraction, "seeds": len(runs[True]), "auc_gain": float(point),
            "low": float(np.percentile(draws, 2.5)), "high": float(np.percentile(draws, 97.5))}


def plot_fraction(points: list[dict], out_png: Path, title: str) -> Path:
    """Test AUC (with its interval) vs training fraction (log), one line with and one without KD."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for distilled, label in ((False, "without distillation"), (True, "distilled")):
        rows = sorted((p for p in points if p["distilled"] == distilled and p["seed"] == points[0]["seed"]),
                      key=lambda p: p["fraction"])
        x = [p["fraction"] for p in rows]
        y = [p["test_auc"] for p in rows]
        err = [[p["test_auc"] - (p["test_auc_low"] or p["test_auc"]) for p in rows],
               [(p["test_auc_high"] or p["test_auc"]) - p["test_auc"] for p in rows]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, lw=1.5, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of the training jets")
    ax.set_ylabel("student test AUC")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    ax.set_title(title)
    return save_figure(fig, out_png)


def markdown(points: list[dict]) -> str:
    """Table: fraction, training jets, AUC without and with distillation, difference."""
    lines = ["| fraction | training jets | AUC without KD | AUC distilled | distilled - without |",
             "| --- | --- | --- | --- | --- |"]
    by = {(p["fraction"], p["distilled"]): p for p in points if p["seed"] == points[0]["seed"]}

    def cell(p):
        if p["test_auc_low"] is None:
            return f"{p['test_auc']:.4f}"
        return f"{p['test_auc']:.4f} [{p['test_auc_low']:.4f}, {p['test_auc_high']:.4f}]"

    for fraction in sorted({p["fraction"] for p in points}):
        plain, kd = by[(fraction, False)], by[(fraction, True)]
        lines.append(f"| {fraction:g} | {plain['n_train'] or '-'} | {cell(plain)} | {cell(kd)} | "
                     f"{kd['test_auc'] - plain['test_auc']:+.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="the teacher's run directory")
    parser.add_argument("--jets", nargs="+", required=True, help="jet files (any layout gnntrack reads)")
    parser.add_argument("--out", required=True, help="directory for the student runs and the outputs")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.02, 0.05, 0.1, 0.3, 1.0])
    parser.add_argument("--model", default="jet_fc", help="student model (jet_fc or jet_pfn)")
    parser.add_argument("--steps", type=int, default=400, help="training steps of every student")
    parser.add_argument("--batch", type=int, default=128, help="jets per step")
    parser.add_argument("--seed", type=int, default=0, help="the seed (one per run)")
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds: adds the mean distillation gain")
    args = parser.parse_args(argv)
    seeds = args.seeds or [args.seed]
    points = []
    for seed in seeds:
        for fraction in args.fractions:
            for distilled in (False, True):
                points.append(run_point(args, fraction, distilled, seed))
                print(json.dumps(points[-1]), file=sys.stderr, flush=True)
    out = Path(args.out)
    text = markdown(points)
    gains = [distillation_gain(out, points, f) for f in args.fractions] if len(seeds) > 1 else []
    if gains:
        text += (f"\nMean over seeds {seeds} of AUC(distilled) - AUC(without), 95 % paired bootstrap over the "
                 "test jets:\n\n" + "\n".join(f"- fraction {g['fraction']:g}: {g['auc_gain']:+.4f} "
                                                 f"[{g['low']:+.4f}, {g['high']:+.4f}]" for g in gains) + "\n")
    write_json_atomic(out / "fraction.json", {"teacher": str(Path(args.teacher).resolve()), "model": args.model,
                                              "steps": args.steps, "seeds": seeds, "points": points,
                                              "distillation_gain": gains})
    write_text_atomic(out / "fraction.md", text)
    plot_fraction(points, out / "fraction.png", f"{args.model} student: AUC vs training data")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
