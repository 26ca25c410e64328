"""Track-to-particle matching: efficiency, fake rate and duplicate rate.

Inputs are per hit: the truth particle and the reconstructed track of each evaluated hit (for a
pixel-only graph, the pixel hits; particle hit counts are counted in that same hit set).

For a reconstructed track t with n_t hits, its majority particle m (most hits; ties: smallest id)
has n_tm hits in t and n_m hits in the evaluated set. purity = n_tm / n_t, completeness = n_tm / n_m.
A track is *matched* to m under a scheme:

  double_majority  purity > 0.5 and completeness > 0.5 (TrackML); at most one track per particle,
                   so its duplicate rate is 0 by construction.
  lhc              purity >= 0.75 (ATLAS/CMS style; several tracks may match one particle).
  perfect          the track holds exactly the particle's hits (purity = completeness = 1).

Only candidate tracks (>= `min_track_hits` hits) count; smaller ones are left-over hits. A matched
track whose majority is noise (particle 0) is not matched. Then:

  efficiency      = reconstructable particles with >= 1 matched track / reconstructable particles
  fake_rate       = candidate tracks not matched to any particle / candidate tracks
  duplicate_rate  = (tracks matched to reconstructable particles - such particles matched)
                    / tracks matched to reconstructable particles

A particle is reconstructable when it is not noise, pT >= pt_min (GeV), |eta| <= eta_max and it
has >= min_hits hits in the evaluated set.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np
import pandas as pd

SCHEMES = ("double_majority", "lhc", "perfect")
COUNT_KEYS = ("n_particles", "n_tracks", "n_matched_tracks", "n_matched_particles", "n_matched_tracks_rec")


def default_matching_config() -> ml_collections.ConfigDict:
    """Reconstructable-particle cuts and candidate-track size (GeV, hits)."""
    c = ml_collections.ConfigDict()
    c.pt_min = 1.0          # GeV
    c.eta_max = 4.0         # |eta|
    c.min_hits = 3          # hits of the particle in the evaluated hit set
    c.min_track_hits = 3    # hits of a reconstructed track to count as a track candidate
    c.lhc_purity = 0.75
    c.pt_bins = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0)
    c.eta_bins = tuple(np.round(np.linspace(-4.0, 4.0, 17), 3).tolist())
    return c


def particle_kinematics(particles: pd.DataFrame) -> pd.DataFrame:
    """particle_id-indexed pt (GeV) and eta from a TrackML particles table."""
    px = particles["px"].to_numpy(np.float64)
    py = particles["py"].to_numpy(np.float64)
    pz = particles["pz"].to_numpy(np.float64)
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / pt, np.sign(pz) * np.inf))
    return pd.DataFrame({"pt": pt, "eta": eta}, index=particles["particle_id"].to_numpy(np.int64))


@dataclasses.dataclass
class MatchResult:
    """Matching of one event.

    Attributes:
      particles: per particle with hits in the evaluated set: particle_id, nhits, pt, eta,
        reconstructable, and per scheme `matched_<scheme>` (bool) and `n_tracks_<scheme>` (int).
      tracks: per candidate track: track_id, nhits, major_particle_id, major_nhits,
        major_particle_nhits, purity, completeness, `matched_<scheme>` (bool).
      counts: per scheme dict of COUNT_KEYS (integers; ratios are made from these so that
        events can be pooled and bootstrapped).
    """

    particles: pd.DataFrame
    tracks: pd.DataFrame
    counts: dict[str, dict[str, int]]

    def rates(self) -> dict[str, dict[str, float]]:
        return {scheme: rates_from_counts(c) for scheme, c in self.counts.items()}


def rates_from_counts(c: dict[str, float]) -> dict[str, float]:
    """efficiency, fake_rate, duplicate_rate from (possibly summed) counts; empty ratios are nan."""
    def ratio(a, b):
        return float(a) / float(b) if b else float("nan")
    return {
        "efficiency": ratio(c["n_matched_particles"], c["n_particles"]),
        "fake_rate": ratio(c["n_tracks"] - c["n_matched_tracks"], c["n_tracks"]),
        "duplicate_rate": ratio(c["n_matched_tracks_rec"] - c["n_matched_particles"], c["n_matched_tracks_rec"]),
    }


def match_tracks(hit_particle: np.ndarray, hit_track: np.ndarray, particles: pd.DataFrame | None,
                 config: ml_collections.ConfigDict | None = None) -> MatchResult:
    """Matches reconstructed tracks to truth particles over one event's evaluated hits.

    Args:
      hit_particle: int [n] truth particle_id per hit (0 = noise).
      hit_track: int [n] reconstructed track id per hit.
      particles: TrackML particles table (particle_id, px, py, pz) for pT and eta; None means no
        kinematic cuts can be applied (pt/eta are nan and only the hit cut is used).
      config: `default_matching_config()` or a variant.
    """
    config = config or default_matching_config()
    hit_particle = np.asarray(hit_particle, np.int64).ravel()
    hit_track = np.asarray(hit_track, np.int64).ravel()
    if hit_particle.shape != hit_track.shape:
        raise ValueError(f"hit_particle {hit_particle.shape} and hit_track {hit_track.shape} differ in shape")

    # per particle: hits in the evaluated set and kinematics
    pids, p_nhits = np.unique(hit_particle, return_counts=True)
    part = pd.DataFrame({"particle_id": pids, "nhits": p_nhits})
    if particles is not None and len(particles):
        kin = particle_kinematics(particles)
        kin = kin[~kin.index.duplicated()]
        part["pt"] = kin["pt"].reindex(pids).to_numpy()
        part["eta"] = kin["eta"].reindex(pids).to_numpy()
        kin_ok = (part["pt"].to_numpy() >= config.pt_min) & (np.abs(part["eta"].to_numpy()) <= config.eta_max)
    else:
        part["pt"] = np.nan
        part["eta"] = np.nan
        kin_ok = np.ones(pids.size, bool)
    part["reconstructable"] = (pids != 0) & (p_nhits >= config.min_hits) & kin_ok

    # per (track, particle) hit counts -> majority particle per track
    pairs = (pd.DataFrame({"track_id": hit_track, "particle_id": hit_particle})
             .value_counts(sort=False).rename("major_nhits").reset_index())
    t_nhits = pairs.groupby("track_id", sort=True)["major_nhits"].sum()
    pairs = pairs.sort_values(["track_id", "major_nhits", "particle_id"], ascending=[True, False, True],
                              kind="stable").drop_duplicates("track_id").set_index("track_id")
    tracks = pd.DataFrame({"track_id": t_nhits.index.to_numpy(np.int64), "nhits": t_nhits.to_numpy(np.int64)})
    tracks["major_particle_id"] = pairs.loc[t_nhits.index, "particle_id"].to_numpy(np.int64)
    tracks["major_nhits"] = pairs.loc[t_nhits.index, "major_nhits"].to_numpy(np.int64)
    tracks["major_particle_nhits"] = (part.set_index("particle_id")["nhits"]
                                      .reindex(tracks["major_particle_id"]).to_numpy(np.int64))
    tracks = tracks[tracks["nhits"] >= config.min_track_hits].reset_index(drop=True)
    n_t = tracks["nhits"].to_numpy()
    n_tm = tracks["major_nhits"].to_numpy()
    n_m = tracks["major_particle_nhits"].to_numpy()
    tracks["purity"] = n_tm / np.maximum(n_t, 1)
    tracks["completeness"] = n_tm / np.maximum(n_m, 1)
    real = tracks["major_particle_id"].to_numpy() != 0
    # integer comparisons where the definitions are exact fractions
    matched = {
        "double_majority": real & (2 * n_tm > n_t) & (2 * n_tm > n_m),
        "lhc": real & (n_tm >= config.lhc_purity * n_t),
        "perfect": real & (n_tm == n_t) & (n_tm == n_m),
    }
    rec_by_pid = part.set_index("particle_id")["reconstructable"]
    track_rec = rec_by_pid.reindex(tracks["major_particle_id"]).fillna(False).to_numpy(bool)
    counts = {}
    for scheme in SCHEMES:
        m = matched[scheme]
        tracks[f"matched_{scheme}"] = m
        n_per_particle = pd.Series(tracks["major_particle_id"].to_numpy()[m]).value_counts()
        part[f"n_tracks_{scheme}"] = n_per_particle.reindex(pids).fillna(0).to_numpy(np.int64)
        part[f"matched_{scheme}"] = part[f"n_tracks_{scheme}"].to_numpy() > 0
        rec = part["reconstructable"].to_numpy()
        counts[scheme] = {
            "n_particles": int(rec.sum()),
            "n_tracks": int(len(tracks)),
            "n_matched_tracks": int(m.sum()),
            "n_matched_particles": int((part[f"matched_{scheme}"].to_numpy() & rec).sum()),
            "n_matched_tracks_rec": int((m & track_rec).sum()),
        }
    return MatchResult(particles=part, tracks=tracks, counts=counts)


def binned_efficiency(particles: pd.DataFrame, variable: str, bins, scheme: str = "double_majority",
                      config: ml_collections.ConfigDict | None = None) -> pd.DataFrame:
    """Efficiency per bin of `variable` ('pt' or 'eta') with binomial errors.

    The cut on the binned variable itself is not applied (efficiency vs pT shows the turn-on below
    pt_min); the other reconstructability cuts are.

    Args:
      particles: `MatchResult.particles` of one event or several concatenated.
      bins: bin edges [B+1].

    Returns:
      DataFrame [B]: lo, hi, center, n_total, n_matched, efficiency, error (sqrt(e(1-e)/n); nan if n=0).
    """
    config = config or default_matching_config()
    bins = np.asarray(bins, np.float64)
    pt = particles["pt"].to_numpy(np.float64)
    eta = particles["eta"].to_numpy(np.float64)
    base = (particles["particle_id"].to_numpy() != 0) & (particles["nhits"].to_numpy() >= config.min_hits)
    if variable == "pt":
        sel = base & (np.abs(eta) <= config.eta_max)
        x = pt
    elif variable == "eta":
        sel = base & (pt >= config.pt_min)
        x = eta
    else:
        raise ValueError(f"variable must be 'pt' or 'eta', got {variable!r}")
    sel &= np.isfinite(x)
    matched = particles[f"matched_{scheme}"].to_numpy(bool)
    idx = np.digitize(x[sel], bins) - 1
    ok = (idx >= 0) & (idx < bins.size - 1)
    n_total = np.bincount(idx[ok], minlength=bins.size - 1)
    n_matched = np.bincount(idx[ok], weights=matched[sel][ok], minlength=bins.size - 1).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(n_total > 0, n_matched / np.maximum(n_total, 1), np.nan)
        err = np.where(n_total > 0, np.sqrt(eff * (1 - eff) / np.maximum(n_total, 1)), np.nan)
    cp_lo, cp_hi = clopper_pearson(n_matched, n_total)
    return pd.DataFrame({"lo": bins[:-1], "hi": bins[1:], "center": 0.5 * (bins[:-1] + bins[1:]),
                         "n_total": n_total, "n_matched": n_matched, "efficiency": eff, "error": err,
                         "cp_low": cp_lo, "cp_high": cp_hi})


def clopper_pearson(k: np.ndarray, n: np.ndarray, level: float = 0.6827) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval for k successes in n trials ([B] each; nan if n = 0).

    Unlike sqrt(e(1-e)/n) it does not collapse to zero width at efficiency 0 or 1.
    """
    from scipy.stats import beta

    k = np.asarray(k, np.float64)
    n = np.asarray(n, np.float64)
    alpha = 1.0 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)
