"""`gnntrack quickstart [--workdir DIR]`: simulate -> build graphs -> train -> tracks -> report.

The workdir is an ordinary run directory (see gnntrack.train.loop) plus `tracks/` (tracks built
from the model's edge scores on the held-out test events, with the TrackML score, track
efficiency and fake rate: `gnntrack evaluate`'s report) and `report.md`, `loss.png`, `roc.png`.
"""

from __future__ import annotations

import argparse

HELP = "simulate a small data set, train the segment classifier and write a report (minutes on a CPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    add_config_arguments(parser, required=False)
    parser.epilog = ("any config key can be overridden: --config.a.b=value, e.g. "
                     "--config.optimizer.lr=1e-3 --config.train.steps=500")
    parser.add_argument("--workdir", default="quickstart", help="run directory (default ./quickstart)")
    parser.add_argument("--restart", dest="resume", action="store_false", default=True,
                        help="ignore checkpoints already in --workdir and start from step 0")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gnntrack.config import apply_overrides, load_config
    from gnntrack.configs.quickstart import quickstart_config
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.report.run import write_report
    from gnntrack.train.evaluation import print_summary
    from gnntrack.train.loop import train_and_evaluate

    check_directory_path(args.workdir, "--workdir")
    if args.config:
        config = load_config(args.config, args.overrides)
    else:
        config = quickstart_config()
        config.lock()
        apply_overrides(config, args.overrides)
    if args.no_progress:
        with config.unlocked():
            config.train.progress = False
    workdir = Path(args.workdir)
    result = train_and_evaluate(config, workdir, resume=args.resume)
    print_summary(result, title="gnntrack quickstart")
    if result.get("already_complete"):  # its report is already there; nothing was rewritten
        print(f"{workdir}: the quickstart run is already complete (step {result['steps']} of "
              f"{result['total_steps']}); its results are unchanged (--restart to start over)")
        report = workdir / "report.md"
    else:
        tracks = build_test_tracks(workdir, result, progress=not args.no_progress)
        if tracks is not None:
            print_track_summary(tracks)
        report = write_report(workdir, result, title="gnntrack quickstart", tracks=tracks)
    print(f"report: {report}")
    return 0


def build_test_tracks(workdir, result: dict, *, progress: bool = True) -> dict | None:
    """Tracks from the trained model on the run's held-out test events (`gnntrack evaluate` on
    them, into `<workdir>/tracks/`); its metrics, or None when the run has no test events on disk."""
    from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run

    data = result.get("data") or {}
    if not data.get("events_dir") or not data.get("test_events"):
        return None
    config = default_evaluation_config()
    config.event_ids = tuple(data["test_events"])
    config.progress = progress
    return evaluate_run(workdir, data["events_dir"], workdir / "tracks", config=config)


def print_track_summary(metrics: dict) -> None:
    """One line: the TrackML score, track efficiency and fake rate on the test events."""
    t = metrics["tracks"]
    print(f"tracks on {metrics['n_events']} test events ({t['method']}, cut {t['cut']:g}): TrackML score "
          f"{t['trackml_score']:.4f} (graph hits {t['trackml_score_graph_hits']:.4f}), efficiency "
          f"{t['efficiency']:.4f}, fake rate {t['fake_rate']:.4f}")
