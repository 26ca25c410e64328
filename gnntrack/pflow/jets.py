"""Jets of particle lists: anti-kT clustering with FastJet and gen-reco jet matching.

All events go through FastJet's array interface at once (awkward arrays of per-event particle
lists); the matching is array code too, so there is no Python loop per event or particle.
Particles are taken as massless from (pt, eta, phi): a jet's pT then depends on the
transverse momenta and directions only, not on a regressed energy that may be below |p|.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys

import awkward as ak
import numpy as np


@dataclasses.dataclass
class Jets:
    """Jets of many events, flat: pt (GeV), eta, phi float64 [J]; event int64 [J] (index of the
    event in the clustered list), ordered by event, then by decreasing pt."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    event: np.ndarray


@dataclasses.dataclass
class JetMatch:
    """Gen jets above the threshold and their matched reco jet: gen_pt, reco_pt float64 [G]
    (reco_pt nan when unmatched), event int64 [G]."""

    gen_pt: np.ndarray
    reco_pt: np.ndarray
    event: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        return np.isfinite(self.reco_pt)


@contextlib.contextmanager
def _stdout_to_stderr():
    """FastJet prints its banner on the C-level stdout at first use; sending it to stderr keeps
    stdout for the command's own output (e.g. `--json`)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def cluster_jets(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, counts: np.ndarray, *,
                 radius: float = 0.4, min_pt: float = 0.0) -> Jets:
    """Anti-kT jets of R = `radius` with pT >= `min_pt` (GeV) in every event.

    Args:
      pt, eta, phi: float [P] the particles of all events, concatenated in event order.
      counts: int [n_events] particles per event (an event may have none).
    """
    import fastjet

    pt, eta, phi = (np.asarray(a, np.float64) for a in (pt, eta, phi))
    counts = np.asarray(counts, np.int64)
    particles = ak.unflatten(ak.zip({"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta),
                                     "E": pt * np.cosh(eta)}), counts)
    with _stdout_to_stderr():
        jets = fastjet.ClusterSequence(particles, fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
                                       ).inclusive_jets(min_pt=min_pt)
    px, py, pz = (ak.to_numpy(ak.flatten(jets[c])) for c in ("px", "py", "pz"))
    event = np.repeat(np.arange(len(counts)), ak.to_numpy(ak.num(jets)))
    jet_pt = np.hypot(px, py)
    jet_eta = np.arcsinh(pz / np.maximum(jet_pt, 1e-12))
    jet_phi = np.arctan2(py, px)
    order = np.lexsort((-jet_pt, event))  # FastJet's inclusive jets come unordered
    return Jets(pt=jet_pt[order], eta=jet_eta[order], phi=jet_phi[order], event=event[order])


def delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """sqrt(d_eta^2 + d_phi^2) with d_phi wrapped into [-pi, pi) (broadcasts)."""
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _by_event(jets: Jets, n_events: int) -> ak.Array:
    counts = np.bincount(jets.event, minlength=n_events)
    return ak.unflatten(ak.zip({"pt": jets.pt, "eta": jets.eta, "phi": jets.phi}), counts)


def match_jets(gen: Jets, reco: Jets, n_events: int, *, pt_min: float = 20.0, eta_max: float = 2.5,
               max_dr: float = 0.1) -> JetMatch:
    """Each gen jet with pT > `pt_min` (GeV) and |eta| < `eta_max` to the nearest reco jet of its
    event within delta R < `max_dr` (anti-kT jets of R = 0.4 lie >= ~R apart, so two gen jets
    never claim one reco jet at max_dr = 0.1)."""
    keep = (gen.pt > pt_min) & (np.abs(gen.eta) < eta_max)
    g = _by_event(Jets(gen.pt[keep], gen.eta[keep], gen.phi[keep], gen.event[keep]), n_events)
    r = _by_event(reco, n_events)
    pairs = ak.cartesian({"g": g, "r": r}, axis=1, nested=True)  # [event, gen jet, reco jet]
    dr = delta_r(pairs.g.eta, pairs.g.phi, pairs.r.eta, pairs.r.phi)
    nearest = ak.argmin(dr, axis=2, keepdims=True)
    best_dr = ak.fill_none(ak.flatten(dr[nearest], axis=2), np.inf)
    best_pt = ak.fill_none(ak.flatten(pairs.r.pt[nearest], axis=2), np.nan)
    best_dr, best_pt = ak.to_numpy(ak.flatten(best_dr)), ak.to_numpy(ak.flatten(best_pt))
    return JetMatch(gen_pt=gen.pt[keep], reco_pt=np.where(best_dr < max_dr, best_pt, np.nan), event=gen.event[keep])
