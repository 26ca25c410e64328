"""The jet arrays every jet module speaks: constituents as four-momenta, a label and a weight.

Constituents are sorted by decreasing pT and zero-padded to a fixed count C; units are GeV
(files in MeV, like the ATLAS open data, are converted when read).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SIGNAL, BACKGROUND = 1, 0  # label of a top jet / a QCD jet


@dataclasses.dataclass
class JetArrays:
    """J jets with up to C constituents each.

    Attributes:
      constituents: float32 [J, C, 4], (E, px, py, pz) in GeV, zero rows after the last one.
      label: int8 [J], SIGNAL (1, top) or BACKGROUND (0, QCD).
      weight: float32 [J], per-jet training weight (1 where the source has none).
      jet: float32 [J, 4], the jet's (E, px, py, pz) in GeV.
    """

    constituents: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    jet: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def n_constituents(self) -> np.ndarray:
        """int32 [J]: real constituents per jet (rows with E > 0)."""
        return np.sum(self.constituents[..., 0] > 0, axis=1).astype(np.int32)
