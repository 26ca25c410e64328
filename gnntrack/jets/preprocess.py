"""Constituent preprocessing as jet taggers use it: centre, rotate, flip; ParticleNet's features.

    deta, dphi = standardized_coordinates(jets, centre="jet", rotate="principal", flip=True)
    features, mask = particlenet_features(jets, 100)   # float32 [J, 100, 7], bool [J, 100]
    x = study_array(jets, 80)                           # float32 [J, 4, 80]

- Centre: on the jet axis (the jet four-vector's eta, phi) or on the hardest constituent.
- Rotate: `principal` turns the pT-weighted principal axis of the (d eta, d phi) cloud to the
  d phi direction (vertical in a jet image); `second` turns the second-hardest constituent to
  d phi > 0, d eta = 0; `none` leaves the cloud as it is.
- Flip: mirrors d eta (and, unless rotate="second" already fixed it, d phi) so that the
  pT-weighted sum of each is >= 0 (the harder half of the jet is on the positive side).
Padded constituents (E = 0) get zeros in every output. Pure numpy, vectorised over jets.
Angles in radians, energies and momenta in GeV (inside logarithms: log of the value in GeV).
"""

from __future__ import annotations

import numpy as np

from gnntrack.jets.types import JetArrays

PARTICLENET_FEATURES = ("deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r")
STUDY_FEATURES = ("deta", "dphi", "log_pt", "log_e")
CENTRES = ("jet", "hardest")
ROTATIONS = ("none", "principal", "second")


def kinematics(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pT, eta, phi of four-vectors p [..., 4] = (E, px, py, pz); eta = 0 where pT = 0."""
    pt = np.hypot(p[..., 1], p[..., 2])
    safe = np.where(pt > 0, pt, 1.0)
    return pt, np.where(pt > 0, np.arcsinh(p[..., 3] / safe), 0.0), np.arctan2(p[..., 2], p[..., 1])


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles mapped into [-pi, pi)."""
    return np.mod(dphi + np.pi, 2 * np.pi) - np.pi


def standardized_coordinates(jets: JetArrays, centre: str = "jet", rotate: str = "none", flip: bool = False,
                             n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(d eta, d phi), each float64 [J, n] (n = all constituents if None), zeros on padding.

    See the module docstring for centre / rotate / flip."""
    if centre not in CENTRES or rotate not in ROTATIONS:
        raise ValueError(f"centre must be one of {CENTRES} and rotate one of {ROTATIONS} (got {centre!r}, {rotate!r})")
    p = jets.constituents[:, :n].astype(np.float64)
    mask = p[..., 0] > 0
    pt, eta, phi = kinematics(p)
    if centre == "jet":
        _, eta0, phi0 = kinematics(jets.jet.astype(np.float64))
    else:
        eta0, phi0 = eta[:, 0], phi[:, 0]
    x = np.where(mask, eta - eta0[:, None], 0.0)
    y = np.where(mask, wrap_phi(phi - phi0[:, None]), 0.0)
    w = np.where(mask, pt, 0.0)
    if rotate != "none":
        x, y = _rotate(x, y, _rotation_angle(x, y, w, rotate))
    if flip:
        x = x * _sign_of(np.sum(w * x, axis=1))[:, None]
        if rotate != "second":
            y = y * _sign_of(np.sum(w * y, axis=1))[:, None]
    return np.where(mask, x, 0.0), np.where(mask, y, 0.0)


def _rotation_angle(x: np.ndarray, y: np.ndarray, w: np.ndarray, rotate: str) -> np.ndarray:
    """float64 [J]: the angle that turns each jet's reference direction onto +d phi."""
    if rotate == "principal":
        cxx, cyy, cxy = np.sum(w * x * x, axis=1), np.sum(w * y * y, axis=1), np.sum(w * x * y, axis=1)
        direction = 0.5 * np.arctan2(2 * cxy, cxx - cyy)  # angle of the major axis from +d eta
    else:
        second = min(1, x.shape[1] - 1)
        direction = np.arctan2(y[:, second], x[:, second])  # single-constituent jets: angle 0 -> turned up
    return np.pi / 2 - direction


def _rotate(x: np.ndarray, y: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return x * c - y * s, x * s + y * c


def _sign_of(values: np.ndarray) -> np.ndarray:
    return np.where(values < 0, -1.0, 1.0)


def particlenet_features(jets: JetArrays, n: int = 100, centre: str = "jet", rotate: str = "none",
                         flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """ParticleNet's 7 constituent features for the first `n` (hardest) constituents.

    Returns:
      features: float32 [J, n, 7] = (d eta, d phi, log pT, log E, log pT / pT_jet, log E / E_jet,
        Delta R) (PARTICLENET_FEATURES), relative to the jet axis by default; zeros on padding
        (also where a jet has fewer than n constituents, or the file holds fewer than n columns).
      mask: bool [J, n], True for real constituents.
    """
    p = _padded(jets.constituents, n).astype(np.float64)
    mask = p[..., 0] > 0
    deta, dphi = standardized_coordinates(_with_constituents(jets, p), centre, rotate, flip)
    pt, _, _ = kinematics(p)
    jet_pt, _, _ = kinematics(jets.jet.astype(np.float64))
    log = lambda v: np.log(np.where(mask, v, 1.0))  # noqa: E731  (padding: log 1 = 0)
    features = np.stack([deta, dphi, log(pt), log(p[..., 0]), log(pt / jet_pt[:, None]),
                         log(p[..., 0] / jets.jet[:, None, 0].astype(np.float64)), np.hypot(deta, dphi)], axis=-1)
    return np.where(mask[..., None], features, 0.0).astype(np.float32), mask


def study_array(jets: JetArrays, n: int = 80, centre: str = "jet", rotate: str = "principal",
                flip: bool = True) -> np.ndarray:
    """float32 [J, 4, n]: (d eta, d phi, log pT, log E) (STUDY_FEATURES) of the first `n`
    constituents, features first, after centring, rotation and flip; zeros on padding."""
    p = _padded(jets.constituents, n).astype(np.float64)
    mask = p[..., 0] > 0
    deta, dphi = standardized_coordinates(_with_constituents(jets, p), centre, rotate, flip)
    pt, _, _ = kinematics(p)
    log_pt = np.log(np.where(mask, pt, 1.0))
    log_e = np.log(np.where(mask, p[..., 0], 1.0))
    return np.stack([deta, dphi, log_pt, log_e], axis=1).astype(np.float32)


def _padded(constituents: np.ndarray, n: int) -> np.ndarray:
    """constituents [J, C, 4] cut or zero-padded to [J, n, 4]."""
    out = constituents[:, :n]
    if out.shape[1] < n:
        out = np.concatenate([out, np.zeros((out.shape[0], n - out.shape[1], 4), out.dtype)], axis=1)
    return out


def _with_constituents(jets: JetArrays, constituents: np.ndarray) -> JetArrays:
    return JetArrays(constituents, jets.label, jets.weight, jets.jet)
