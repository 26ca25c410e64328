"""One table and one ROC plot for several evaluated jet taggers (teacher, student, distilled...).

    gnntrack evaluate --workdir runs/pnl --input test --out runs/pnl/evaluation    # each model first
    python scripts/jets_compare_table.py --out runs/jets_table teacher=runs/pnl/evaluation \\
        student=runs/fc/evaluation distilled=runs/fc_kd/evaluation

Reads each evaluation's metrics.json and roc.npz (`gnntrack.report.jets`); the models should have
been evaluated on the same jets (the table states the first one's). Writes comparison.md,
comparison.json and plots/roc_comparison.png into --out and prints the table.
"""

from __future__ import annotations

import argparse
import sys

from gnntrack.errors import InputError
from gnntrack.report.jets import write_jets_comparison


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("evaluations", nargs="+", metavar="NAME=DIR", help="a name and an evaluation directory")
    args = parser.parse_args(argv)
    named = {}
    for item in args.evaluations:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"expected NAME=DIR, got {item!r}")
        named[name] = path
    print(write_jets_comparison(args.out, named, plots=not args.no_plots), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
