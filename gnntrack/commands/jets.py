"""`gnntrack jets generate|baseline`: generated top / QCD jets and the cut-based baselines.

    gnntrack jets generate --process top --jets 20000 --seed 1 --workers 2 --detector towers --out data/jets
    gnntrack jets generate --process both --jets 1000 --out data/jets      # top and QCD, then the baseline
    gnntrack jets baseline data/jets/top_towers_seed1.h5 data/jets/qcd_towers_seed1.h5

`generate` writes <out>/<process>_<detector>_seed<S>.h5 in the top-tagging reference layout (the
same seed and workers give the same bytes) and <same>.json with the generation statistics; when
the other process's file of the same detector and seed is in <out>, it prints the baselines' AUC.
`baseline` reads any jet files (reference, ATLAS, JetNet) and prints the baselines' ROC AUC.
"""

from __future__ import annotations

import argparse

HELP = "generate top / QCD jets with Pythia 8 + FastJet, or print the jet-mass baseline AUC of jet files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="jets_command", metavar="COMMAND")
    sub.required = True
    gen = sub.add_parser("generate", help="generate jets (pp at 14 TeV, anti-kT 0.8, 550 < pT < 650 GeV)")
    gen.add_argument("--process", choices=["top", "qcd", "both"], required=True,
                     help="top (hadronic ttbar), qcd (dijets) or both (--jets of each)")
    gen.add_argument("--jets", type=int, required=True, help="jets to keep (per process)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--workers", type=int, default=1, help="processes, one Pythia each (default 1)")
    gen.add_argument("--detector", choices=["truth", "towers"], default="towers",
                     help="truth particles or tracks + calorimeter towers (default towers)")
    gen.add_argument("--pt-hat", type=float, nargs=2, metavar=("MIN", "MAX"), default=None,
                     help="Pythia's pT-hat window in GeV (default 550 650)")
    gen.add_argument("--out", required=True, help="output directory")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    base = sub.add_parser("baseline", help="ROC AUC of the jet-mass window (and mass x multiplicity) on jet files")
    base.add_argument("files", nargs="+", metavar="FILE", help="jet files (reference, ATLAS or JetNet layout)")
    base.add_argument("--limit", type=int, default=None, help="read only the first N jets of each file")


def run(args: argparse.Namespace) -> int:
    if args.jets_command == "generate":
        return _generate(args)
    return _baseline(args)


def output_name(process: str, detector: str, seed: int) -> str:
    return f"{process}_{detector}_seed{seed}.h5"


def _generate(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from gnntrack.io.atomic import check_directory_path, write_json_atomic
    from gnntrack.jets.formats import concatenate_jets, read_jets, write_reference_h5
    from gnntrack.jets.generate import GenerationConfig, generate_jets

    out = check_directory_path(args.out, "--out")
    processes = ["top", "qcd"] if args.process == "both" else [args.process]
    window = {} if args.pt_hat is None else {"pt_hat_min": args.pt_hat[0], "pt_hat_max": args.pt_hat[1]}
    made = {}
    for process in processes:
        config = GenerationConfig(process=process, detector=args.detector, **window).validate()
        jets, truth, stats = generate_jets(config, args.jets, args.seed, args.workers, progress=not args.no_progress)
        path = write_reference_h5(out / output_name(process, args.detector, args.seed), jets, truth.top)
        stats["config"] = dataclasses.asdict(config)
        write_json_atomic(path.with_suffix(".json"), stats)
        made[process] = jets
        print(f"{path}: {stats['jets']} {process} jets from {stats['events']} events "
              f"({stats['efficiency']:.1%} kept), {stats['jets_per_cpu_second']:.1f} jets/s per core, "
              f"mean constituents {stats['mean_constituents']:.1f}")
    for other in ("top", "qcd"):
        if other not in made and (Path(out) / output_name(other, args.detector, args.seed)).is_file():
            made[other] = read_jets(Path(out) / output_name(other, args.detector, args.seed))
    if len(made) == 2:
        _print_baselines(concatenate_jets([made["top"], made["qcd"]]), f"top + QCD ({args.detector}, seed {args.seed})")
    return 0


def _baseline(args: argparse.Namespace) -> int:
    from gnntrack.jets.formats import concatenate_jets, read_jets

    jets = concatenate_jets([read_jets(f, limit=args.limit) for f in args.files])
    _print_baselines(jets, ", ".join(args.files))
    return 0


def _print_baselines(jets, what: str) -> None:
    from gnntrack.jets.baseline import baseline_aucs
    from gnntrack.jets.types import SIGNAL

    n_top = int((jets.label == SIGNAL).sum())
    aucs = baseline_aucs(jets)
    print(f"baseline on {what}: {n_top} top, {len(jets) - n_top} QCD jets; ROC AUC mass window "
          f"{aucs['mass_window']:.4f}, mass x constituents likelihood {aucs['mass_count_likelihood']:.4f} (half-split)")
