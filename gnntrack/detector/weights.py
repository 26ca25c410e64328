"""TrackML phase-1 truth weights: how much each hit counts in the TrackML score.

    truth["weight"] = trackml_weights(truth["particle_id"], truth["tz"], particles)

Shared by the detector simulation and the planes toy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


# TrackML phase-1 order weights: a proposal over 9 support points stretched over the track's hits,
# renormalised per track length; first and last hits matter most.
ORDER_PROPOSAL = np.array([10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0])
ORDER_MIN_HITS, ORDER_MAX_HITS = 4, 20


def order_weight_table(proposal=ORDER_PROPOSAL, min_hits=ORDER_MIN_HITS, max_hits=ORDER_MAX_HITS) -> np.ndarray:
    """float64 [max_hits + 1, max_hits]: weight of hit i on a track of n hits (rows n < min_hits are 0).

    Row n interpolates `proposal` linearly over positions 0..n-1 and is normalised to sum 1.
    """
    table = np.zeros((max_hits + 1, max_hits))
    for n_hits in range(min_hits, max_hits + 1):
        support = np.linspace(0.0, n_hits - 1, len(proposal))
        w = np.interp(np.arange(n_hits), support, proposal)
        table[n_hits, :n_hits] = w / w.sum()
    return table


_ORDER_TABLE = order_weight_table()


def pt_weight(pt) -> np.ndarray:
    """TrackML pT weight: 0 below 0.05 GeV, 0.2 up to 0.5 GeV, linear to 1 at 3 GeV, then 1."""
    return np.interp(np.asarray(pt, np.float64), [0.05, 0.5, 3.0], [0.2, 0.2, 1.0], left=0.0, right=1.0)


def trackml_weights(hit_particle_id, hit_tz, particles: pd.DataFrame, *, hit_order=None) -> np.ndarray:
    """TrackML phase-1 truth weights, float64 [N], summing to 1 (all 0 if no hit counts).

    weight = pT weight(particle) x order weight(rank of |tz - vz| among the particle's hits,
    particle nhits), normalised over the event. Noise (particle_id 0), particles with fewer
    than 4 hits and hits beyond the 20th of a particle weigh 0; nhits above 20 use the
    20-hit row (as in the TrackML library). `hit_order` [N] replaces |tz - vz| as the key that
    orders a particle's hits (the planes toy orders by x).
    """
    pid = np.asarray(hit_particle_id, np.int64)
    tz = np.asarray(hit_tz, np.float64)
    p_ids = particles["particle_id"].to_numpy(np.int64)
    order_p = np.argsort(p_ids, kind="stable")
    pos = np.clip(np.searchsorted(p_ids[order_p], pid), 0, max(len(p_ids) - 1, 0))
    found = (pid != 0) & (p_ids[order_p][pos] == pid) if len(p_ids) else np.zeros(len(pid), bool)
    row = order_p[pos]
    vz = particles["vz"].to_numpy(np.float64)[row]
    nhits = np.where(found, particles["nhits"].to_numpy(np.int64)[row], 0)
    pt = np.hypot(particles["px"].to_numpy(np.float64), particles["py"].to_numpy(np.float64))[row]
    # rank of each hit along its particle, by distance |tz - vz| from the production vertex
    # float32 arithmetic as on values read back from the CSV files (what the TrackML library sees)
    dist = (np.abs(tz.astype(np.float32) - vz.astype(np.float32)) if hit_order is None
            else np.asarray(hit_order, np.float64))
    order = np.lexsort((dist, pid))
    sorted_pid, sorted_dist = pid[order], dist[order]
    pos = np.arange(len(pid))
    new_particle = np.r_[True, sorted_pid[1:] != sorted_pid[:-1]]
    particle_start = np.maximum.accumulate(np.where(new_particle, pos, 0))
    # tied distances (e.g. the two hits of a module overlap) share the truncated average rank,
    # as pandas' rank() in the TrackML library gives them
    new_tie = new_particle | np.r_[True, sorted_dist[1:] != sorted_dist[:-1]]
    tie_start = np.maximum.accumulate(np.where(new_tie, pos, 0))
    tie_end = np.minimum.accumulate(np.where(np.r_[new_tie[1:], True], pos, len(pid))[::-1])[::-1]
    rank = np.empty(len(pid), np.int64)
    rank[order] = (tie_start + tie_end) // 2 - particle_start
    n_cap = np.minimum(nhits, ORDER_MAX_HITS)
    w_order = np.where(rank < ORDER_MAX_HITS, _ORDER_TABLE[n_cap, np.minimum(rank, ORDER_MAX_HITS - 1)], 0.0)
    w = np.where(found, pt_weight(pt) * w_order, 0.0)
    total = w.sum()
    return w / total if total > 0 else w
