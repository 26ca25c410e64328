#!/usr/bin/env python
"""Compiled memory of the segment classifier's train step with and without rematerialisation.

    python scripts/remat_memory.py                                  # 80k, 300k, 1M edges
    python scripts/remat_memory.py --edges 1000000 --remat false,iteration --json out.json

Workload (issue 6): hidden 64, 8 iterations, 3 node features, impl="fast", float32, Adam, weighted
BCE, one random graph with nodes = edges / 4. For each size and `model.remat` setting the jitted
train step (`gnntrack.bench.make_train_step`, donated params and optimiser state) is lowered and
compiled on abstract shapes only: nothing is allocated or run, so 1M edges fits on a laptop.
Reported, from XLA's `compiled.memory_analysis()`: argument, output, alias (outputs written into
donated arguments) and temp bytes, and peak = argument + output - alias + temp.

Each setting compiles in a fresh subprocess so XLA_FLAGS / threads do not leak between rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(edges: int, remat, hidden: int, n_iters: int) -> dict:
    from gnntrack.bench import train_step_memory
    from gnntrack.nn.models import FastSegmentClassifier

    start = time.perf_counter()
    model = FastSegmentClassifier(hidden=hidden, n_iters=n_iters, remat=remat)
    result = train_step_memory(model, max(edges // 4, 8), edges)
    result.update(edges=edges, nodes=max(edges // 4, 8), remat=remat,
                  compile_s=time.perf_counter() - start)
    return result


def parse_remat(text: str):
    return {"false": False, "true": True}.get(text.lower(), text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edges", default="80000,300000,1000000", help="comma-separated edge counts")
    p.add_argument("--remat", default="false,true,iteration",
                   help="comma-separated model.remat values (false | true | mlp | iteration)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--n-iters", type=int, default=8)
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        edges, remat = json.loads(args.child)
        print(json.dumps(measure(edges, remat, args.hidden, args.n_iters)))
        return 0
    rows = []
    for edges in [int(v) for v in args.edges.split(",")]:
        for remat in [parse_remat(v) for v in args.remat.split(",")]:
            cmd = [sys.executable, __file__, "--hidden", str(args.hidden), "--n-iters",
                   str(args.n_iters), "--child", json.dumps([edges, remat])]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{edges:>9,} edges, remat={remat!r}: FAILED\n{out.stderr[-2000:]}",
                      flush=True)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{edges:>9,} edges, remat={remat!r}: peak {row['peak_bytes'] / 2**30:.2f} GiB "
                  f"(compile {row['compile_s']:.0f} s)", flush=True)
    print("\n| edges | nodes | model.remat | temp bytes | argument bytes | output bytes "
          "| alias bytes | peak (GiB) |")
    print("|---:|---:|:-:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['edges']:,} | {r['nodes']:,} | {json.dumps(r['remat'])} | {r['temp_bytes']:,} "
              f"| {r['argument_bytes']:,} | {r['output_bytes']:,} | {r['alias_bytes']:,} "
              f"| {r['peak_bytes'] / 2**30:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
