"""Benchmark: simulate one mu = 200 event on one core and print a JSON line.

    python scripts/bench_simulate.py [--pileup 200] [--repeats 3] [--seed 1] [--write DIR]

Reports particles, hits, the best and median wall time of `generate_particles` +
`simulate_event` over the repeats (same event each time), and the realism figure: mean hits
per particle for pT > 1 GeV, |eta| < 2.5 (TrackML: ~10.7). With --write, also the time to
write the event as TrackML CSV. Thread pools are limited to one thread before numpy loads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pileup", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", metavar="DIR", help="also time writing the event (CSV) into DIR")
    args = parser.parse_args()

    from gnntrack.detector.simulate import (default_simulation_config, event_rng, generate_particles,
                                            simulate_event)

    config = default_simulation_config()
    config.pileup = args.pileup
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})   # one core
        except OSError:
            pass
    times, event = [], None
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        rng = event_rng(args.seed, 0)
        event = simulate_event(generate_particles(rng, config), rng, config, event_id=1000)
        times.append(time.perf_counter() - t0)
    p = event.particles
    pt = np.hypot(p["px"], p["py"])
    eta = np.arcsinh(p["pz"] / pt)
    sel = (pt > 1.0) & (np.abs(eta) < 2.5)
    result = {
        "pileup": args.pileup, "particles": int(len(p)), "hits": int(len(event.hits)),
        "noise_hits": int((event.truth["particle_id"] == 0).sum()),
        "seconds": round(min(times), 4), "seconds_median": round(statistics.median(times), 4),
        "repeats": len(times), "hits_per_particle_pt1_eta2.5": round(float(p["nhits"][sel].mean()), 3),
        "n_particles_pt1_eta2.5": int(sel.sum()),
    }
    if args.write:
        from gnntrack.io.trackml import write_event

        t0 = time.perf_counter()
        write_event(event, args.write)
        result["write_seconds"] = round(time.perf_counter() - t0, 4)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
