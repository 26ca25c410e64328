"""Realism check of the detector simulation: hits per particle versus |eta| (pT > 1 GeV).

    python experiments/simulation/realism.py [--events 3] [--pileup 200] [--seed 1]

Prints one JSON object: the mean number of hits per particle for pT > 1 GeV in |eta| bins, the
headline figure for |eta| < 2.5 (acceptance window 9 - 12.5; real TrackML events give ~10.7),
hits and particles per event and the noise fraction.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from gnntrack.detector.simulate import default_simulation_config, event_rng, generate_particles, simulate_event

ETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--pileup", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = default_simulation_config()
    config.pileup = args.pileup
    nhits, pts, etas, n_hits, n_noise = [], [], [], 0, 0
    for k in range(args.events):
        rng = event_rng(args.seed, k)
        ev = simulate_event(generate_particles(rng, config), rng, config, event_id=k)
        p = ev.particles
        pt = np.hypot(p.px, p.py).to_numpy(np.float64)
        nhits.append(p.nhits.to_numpy())
        pts.append(pt)
        etas.append(np.arcsinh(p.pz.to_numpy(np.float64) / pt))
        n_hits += len(ev.hits)
        n_noise += int((ev.truth.particle_id == 0).sum())
    nhits, pt, eta = np.concatenate(nhits), np.concatenate(pts), np.abs(np.concatenate(etas))
    hard = pt > 1.0
    bins = {f"{lo}-{hi}": round(float(nhits[hard & (eta >= lo) & (eta < hi)].mean()), 2)
            for lo, hi in zip(ETA_EDGES[:-1], ETA_EDGES[1:])}
    print(json.dumps({
        "events": args.events, "pileup": args.pileup,
        "hits_per_particle_pt1_eta2.5": round(float(nhits[hard & (eta < 2.5)].mean()), 3),
        "particles_pt1_eta2.5": int((hard & (eta < 2.5)).sum()),
        "hits_per_particle_pt1_by_abs_eta": bins,
        "hits_per_particle_all": round(float(nhits.mean()), 3),
        "hits_per_event": n_hits / args.events, "particles_per_event": len(nhits) / args.events,
        "noise_fraction": round(n_noise / n_hits, 4)}, indent=1))


if __name__ == "__main__":
    main()
