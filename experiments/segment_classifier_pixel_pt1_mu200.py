"""Segment classifier on full-pixel, pT > 1 GeV graphs of simulated mu = 200 events (CPU-sized).

The quickstart's model (HEP.TrkX segment classifier, hidden 64, 6 iterations, `impl="fast"`,
geometric edge features dr, dphi, dz, dR, phi_slope; 44k parameters) trained on the distribution
that the track-building evaluation at mu = 200 uses: pixel barrel + endcaps (`pixel_config(1.0)`:
truth pT >= 1 GeV, noise and same-layer duplicates removed, phi_slope_max 0.000525 rad/mm,
z0_max 250 mm; ~5.1k nodes, ~19k edges, ~21 % true per event), each event split into 4 rotated
phi sections (~5.1k edges each; no edge is lost, 5 % duplicated in the overlaps), one section per
step. 40 train / 4 validation / 6 test events (data seed 1), 2000 steps (~12.5 epochs), Adam
3e-3 warmup-cosine. Sized for ~15 minutes on 2 CPU cores: ~2.5 min to simulate the 50 events and
build graphs, ~0.33 s per step (2.9 steps/s measured). Whole unsectioned events, 600 steps of one
event each (same wall time) reached only edge F1 0.918 (vs 0.950): more, smaller updates win.

    gnntrack train --config experiments/segment_classifier_pixel_pt1_mu200.py \
        --workdir runs/sc_pixel_pt1_mu200 --no-progress
    gnntrack simulate --out runs/mu200_eval --events 10 --pileup 200 --seed 12345
    gnntrack evaluate --workdir runs/sc_pixel_pt1_mu200 --input runs/mu200_eval \
        --out runs/sc_pixel_pt1_mu200/eval_mu200 [--threshold 0.3]
"""

from gnntrack.configs.quickstart import quickstart_config
from gnntrack.graphs.config import pixel_config


def get_config():
    config = quickstart_config()  # model, optimizer, loss and cadence as the quickstart
    data = config.data
    data.n_train, data.n_val, data.n_test = 40, 4, 6
    data.simulation.pileup = 200.0
    data.workers = 2
    config.graph = pixel_config(1.0)
    config.graph.n_phi_sections = 4  # 4 rotated phi sections (~5.1k edges each), 1 per step
    config.optimizer.end_lr_factor = 0.02
    config.batching.graphs_per_step = 1
    config.batching.max_buckets = 4
    config.train.steps = 2000
    config.train.eval_every = 500
    return config
