"""`gnntrack inspect PREFIX`: summary of TrackML events (hits per layer, noise, pT/η, hits per particle)."""

from __future__ import annotations

import argparse

HELP = "summarise a TrackML event (prefix, part file or directory): hits per layer, noise, pT/eta"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prefix", metavar="PREFIX",
                        help="event prefix (dir/event000001000), one of its files, or a directory of events")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    parser.add_argument("--parts", default="hits,truth,particles,cells",
                        help="comma-separated parts to read (default: %(default)s; absent parts are skipped)")
    parser.add_argument("--limit", type=int, default=1,
                        help="with a directory: number of events to summarise (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gnntrack.io.summary import event_summary
    from gnntrack.io.trackml import read_event, read_events

    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    if Path(args.prefix).is_dir():
        summaries = [event_summary(ev) for ev in read_events(args.prefix, parts, limit=args.limit)]
    else:
        summaries = [event_summary(read_event(args.prefix, parts))]
    if args.json:
        print(json.dumps(summaries[0] if len(summaries) == 1 else summaries, indent=2))
    else:
        for summary in summaries:
            print_summary(summary)
    return 0


def _fmt(value) -> str:
    """Compact number text for narrow table cells (mm, GeV, counts)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        mag = abs(value)
        if mag >= 100 or value == int(value):
            return f"{value:.0f}"
        return f"{value:.2f}" if mag >= 1 else f"{value:.3f}"
    return str(value)


def print_summary(summary: dict, console=None) -> None:
    """Prints an `event_summary` dict as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    overview = Table(title=f"event {summary['event_id']:09d}", show_header=False)
    overview.add_column("quantity")
    overview.add_column("value", justify="right")
    rows = [
        ("hits", summary["n_hits"]),
        ("noise hits", summary["n_noise_hits"]),
        ("noise fraction", summary["noise_fraction"]),
        ("particles (table)", summary["n_particles"]),
        ("particles with hits", summary["n_particles_with_hits"]),
        ("truth weight sum", summary["truth_weight_sum"]),
        ("cells", summary["n_cells"]),
    ]
    sel = summary.get("selection")
    if sel:
        rows.append((f"mean hits/particle (pT>{sel['pt_min_gev']:g} GeV, |eta|<{sel['abs_eta_max']:g})",
                     sel["mean_hits_per_particle"]))
        rows.append(("  particles in that selection", sel["n_particles"]))
    for name, value in rows:
        overview.add_row(name, _fmt(value))
    console.print(overview)

    layers = Table(title="hits per layer")
    for col in ("volume_id", "layer_id", "hits", "fraction"):
        layers.add_column(col, justify="right")
    n_hits = max(summary["n_hits"], 1)
    for row in summary["hits_per_layer"]:
        layers.add_row(str(row["volume_id"]), str(row["layer_id"]), str(row["n_hits"]),
                       f"{row['n_hits'] / n_hits:.3f}")
    console.print(layers)

    dists = Table(title="distributions")
    keys = ("n", "mean", "min", "q05", "median", "q95", "max")
    dists.add_column("quantity", no_wrap=True)
    for k in keys:
        dists.add_column(k, justify="right")
    for name, key in (("hit r (mm)", "hit_r_mm"), ("hit z (mm)", "hit_z_mm"), ("particle pT (GeV)", "pt_gev"),
                      ("particle eta", "eta"), ("hits per particle", "hits_per_particle")):
        stats = summary.get(key)
        if stats is not None:
            dists.add_row(name, *(_fmt(stats[k]) for k in keys))
    console.print(dists)
