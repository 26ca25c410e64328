"""Jet files: the three public layouts, read into JetArrays (the format is detected by content).

- Top-tagging reference (Kasieczka et al.; also what `gnntrack jets generate` writes): a pandas
  HDF5 table under key `table` with columns E_i, PX_i, PY_i, PZ_i for i = 0 ... 199 (GeV, by
  decreasing pT, zero-padded), then truthE, truthPX, truthPY, truthPZ (the matched top; zeros for
  QCD), ttv (0 train, 1 test, 2 validation) and is_signal_new (1 top, 0 QCD). The jet is the sum
  of its constituents.
- ATLAS Top Tagging Open Data: HDF5 datasets fjet_clus_pt, fjet_clus_eta, fjet_clus_phi,
  fjet_clus_E [N, 200] in MeV (pT = 0 marks padding), jet-level fjet_pt, fjet_eta, fjet_phi,
  fjet_m (MeV), labels and training_weights (carried into JetArrays.weight; a file without them,
  such as a test file, gets weight 1).
- JetNet: particle_features [N, 30, 4] = (eta_rel, phi_rel, pT_rel, mask) with eta_rel = eta -
  eta_jet, phi_rel = phi - phi_jet, pT_rel = pT / pT_jet, and jet_features [N, 4] = (pT, eta, mass,
  number of particles) (Kansal et al., arXiv:2106.11535). Assumptions: the jet's azimuth is not
  stored, so jets are placed at phi = 0 (the taggers only see relative angles); particles are
  massless; the jet type is not stored either, so the label is SIGNAL for a file whose name starts
  with `t` (JetNet's t.hdf5, t150.hdf5) and BACKGROUND otherwise, unless `label` is given.
Every reader returns constituents sorted by decreasing pT. Units of JetArrays: GeV.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path
from gnntrack.jets.types import BACKGROUND, SIGNAL, JetArrays

REFERENCE_KEY = "table"
REFERENCE_COMPONENTS = ("E", "PX", "PY", "PZ")
REFERENCE_TRUTH = ("truthE", "truthPX", "truthPY", "truthPZ")
ATLAS_CONSTITUENTS = ("fjet_clus_pt", "fjet_clus_eta", "fjet_clus_phi", "fjet_clus_E")
ATLAS_JET = ("fjet_pt", "fjet_eta", "fjet_phi", "fjet_m")
JETNET_FIELDS = ("particle_features", "jet_features")
MEV = 1e-3  # GeV per MeV


def read_jets(path: str | os.PathLike, *, limit: int | None = None, label: int | None = None) -> JetArrays:
    """The jets of a reference, ATLAS or JetNet file (first `limit` only if given).

    label: JetNet files only, the label of every jet (default: from the file name, see above).
    Raises InputError naming the file (and the field) for a missing file, an unknown layout, a
    missing field or column, or a NaN.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            if keys & {"fjet_clus_pt", "fjet_pt", "labels"}:
                return _read_atlas(f, path, limit)
            if keys & set(JETNET_FIELDS):
                return _read_jetnet(f, path, limit, label)
    except OSError as exc:
        raise InputError(f"{path}: not an HDF5 file ({exc}); expected a top-tagging reference, "
                         "ATLAS top tagging or JetNet file") from exc
    if REFERENCE_KEY in keys:
        return _read_reference(path, limit)
    raise InputError(f"{path}: unknown jet file layout (top-level keys {sorted(keys)[:8]}); expected key "
                     f"'{REFERENCE_KEY}' (top-tagging reference), fjet_clus_* (ATLAS) or particle_features (JetNet)")


# ---------------------------------------------------------------- top-tagging reference


def reference_columns(n_constituents: int = 200) -> list[str]:
    """Column names of the reference layout, in file order."""
    return [f"{c}_{i}" for i in range(n_constituents) for c in REFERENCE_COMPONENTS] + [
        *REFERENCE_TRUTH, "ttv", "is_signal_new"]


def _read_reference(path: Path, limit: int | None) -> JetArrays:
    import pandas as pd

    try:
        frame = pd.read_hdf(path, key=REFERENCE_KEY, stop=limit)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: key '{REFERENCE_KEY}' is not a pandas table ({exc})") from exc
    columns = set(frame.columns)
    n = 0
    while f"E_{n}" in columns:
        n += 1
    if n == 0:
        raise InputError(f"{path}: missing column E_0 (expected E_i, PX_i, PY_i, PZ_i for each constituent i)")
    wanted = [f"{c}_{i}" for i in range(n) for c in REFERENCE_COMPONENTS] + ["is_signal_new"]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    frame = frame.iloc[:limit]
    values = frame[wanted[:-1]].to_numpy(np.float32).reshape(len(frame), n, 4)
    label = frame["is_signal_new"].to_numpy()
    _check_finite(path, "E_i/PX_i/PY_i/PZ_i", values)
    _check_finite(path, "is_signal_new", label.astype(np.float64))
    constituents = _sorted_by_pt(values)
    return JetArrays(constituents, label.astype(np.int8), np.ones(len(frame), np.float32),
                     constituents.sum(axis=1, dtype=np.float32))


def write_reference_h5(path: str | os.PathLike, jets: JetArrays, truth_top: np.ndarray | None = None,
                       ttv: int = 0) -> Path:
    """Writes `jets` in the top-tagging reference layout (atomically); returns the path.

    truth_top: float [J, 4] (E, px, py, pz) of the matched top, zeros if None. Constituent columns
    are float32, ttv and is_signal_new int64, as in the reference files. The file bytes depend on
    the data only (no creation times, no PyTables index), so the same jets give the same file.
    """
    import pandas as pd

    n_jets, n_constituents, _ = jets.constituents.shape
    truth_top = np.zeros((n_jets, 4), np.float32) if truth_top is None else np.asarray(truth_top, np.float32)
    data = {name: column for name, column in zip(
        reference_columns(n_constituents)[:-2],
        np.concatenate([jets.constituents.reshape(n_jets, -1), truth_top], axis=1).T)}
    data["ttv"] = np.full(n_jets, ttv, np.int64)
    data["is_signal_new"] = jets.label.astype(np.int64)
    frame = pd.DataFrame(data)
    path = Path(path)
    with atomic_path(path) as tmp, pd.HDFStore(tmp, mode="w", complevel=1, complib="zlib") as store:
        store.put(REFERENCE_KEY, frame, format="table", index=False, track_times=False)
    return path


# ---------------------------------------------------------------- ATLAS top tagging open data


def _read_atlas(f, path: Path, limit: int | None) -> JetArrays:
    pt, eta, phi, energy = (_dataset(f, path, name, limit) for name in ATLAS_CONSTITUENTS)
    j_pt, j_eta, j_phi, j_m = (_dataset(f, path, name, limit) for name in ATLAS_JET)
    pt, energy, j_pt, j_m = pt * MEV, energy * MEV, j_pt * MEV, j_m * MEV
    label = _dataset(f, path, "labels", limit)
    weight = _dataset(f, path, "training_weights", limit) if "training_weights" in f else np.ones(label.shape)
    real = pt > 0
    constituents = np.where(real[..., None], np.stack(
        [energy, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1), 0.0)
    jet = np.stack([np.sqrt((j_pt * np.cosh(j_eta)) ** 2 + j_m ** 2), j_pt * np.cos(j_phi),
                    j_pt * np.sin(j_phi), j_pt * np.sinh(j_eta)], axis=-1)
    return JetArrays(_sorted_by_pt(constituents.astype(np.float32)), label.astype(np.int8),
                     weight.astype(np.float32), jet.astype(np.float32))


# ---------------------------------------------------------------- JetNet


def _read_jetnet(f, path: Path, limit: int | None, label: int | None) -> JetArrays:
    particles = _dataset(f, path, "particle_features", limit)
    jet_features = _dataset(f, path, "jet_features", limit)
    if particles.ndim != 3 or particles.shape[-1] < 4 or jet_features.ndim != 2 or jet_features.shape[-1] < 3:
        raise InputError(f"{path}: particle_features must be [N, P, 4] (eta_rel, phi_rel, pt_rel, mask) and "
                         f"jet_features [N, 4] (pt, eta, mass, n); got {particles.shape} and {jet_features.shape}")
    j_pt, j_eta, j_m = jet_features[:, 0:1], jet_features[:, 1:2], jet_features[:, 2:3]
    eta = particles[..., 0] + j_eta
    phi = particles[..., 1]  # the jet sits at phi = 0
    pt = particles[..., 2] * j_pt
    real = (particles[..., 3] > 0) & (pt > 0)
    constituents = np.where(real[..., None], np.stack(
        [pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1), 0.0)
    jet = np.concatenate([np.sqrt((j_pt * np.cosh(j_eta)) ** 2 + j_m ** 2), j_pt, np.zeros_like(j_pt),
                          j_pt * np.sinh(j_eta)], axis=1)
    if label is None:
        label = SIGNAL if path.name.lower().startswith("t") else BACKGROUND
    n = particles.shape[0]
    return JetArrays(_sorted_by_pt(constituents.astype(np.float32)), np.full(n, label, np.int8),
                     np.ones(n, np.float32), jet.astype(np.float32))


# ---------------------------------------------------------------- shared


def concatenate_jets(parts: list[JetArrays]) -> JetArrays:
    """The jets of `parts`, in order (all with the same constituent count C)."""
    join = lambda name: np.concatenate([getattr(part, name) for part in parts])  # noqa: E731
    return JetArrays(join("constituents"), join("label"), join("weight"), join("jet"))


def take_jets(jets: JetArrays, index: np.ndarray) -> JetArrays:
    """The jets selected by `index` (a bool mask [J], integer indices or a slice)."""
    return JetArrays(jets.constituents[index], jets.label[index], jets.weight[index], jets.jet[index])


def _dataset(f, path: Path, name: str, limit: int | None) -> np.ndarray:
    """Dataset `name` of an open h5py file as float64 (first `limit` rows); InputError if absent or NaN."""
    if name not in f:
        raise InputError(f"{path}: missing field {name}")
    values = np.asarray(f[name][:limit], dtype=np.float64)
    _check_finite(path, name, values)
    return values


def _check_finite(path: Path, name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.argwhere(bad)[0]
        raise InputError(f"{path}: field {name} has {int(bad.sum())} NaN or infinite value(s), the first "
                         f"at row {int(first[0])}; remove or fix those jets")


def _sorted_by_pt(constituents: np.ndarray) -> np.ndarray:
    """float32 [J, C, 4] (E, px, py, pz) reordered by decreasing pT within each jet (padding last)."""
    pt = np.hypot(constituents[..., 1], constituents[..., 2])
    order = np.argsort(-pt, axis=1, kind="stable")
    return np.take_along_axis(constituents, order[..., None], axis=1)
