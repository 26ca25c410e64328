"""A TrackML-like silicon tracker described as data: one row per sensitive layer.

    det = default_detector()
    idx = det.layer_index(hits.volume_id, hits.layer_id)      # int32 [N], -1 where unknown

Each layer is an idealised surface: a barrel layer is a cylinder of radius `position` (mm) around
the beam (z) axis covering `min_extent <= z <= max_extent`; an endcap layer is a disk at
z = `position` covering `min_extent <= r <= max_extent`. Layers carry the TrackML ids
(volume_id, layer_id), a coarse module tiling (n_phi x n_long modules; long = z for barrels, r
for disks) so that `module_id` means something, the single-hit resolution (mm) across (r·phi)
and along (z for barrels, r for disks) the strip direction, the material thickness x/X0 and the
hit efficiency.

The layout follows the TrackML detector (ids and approximate positions):
  volume 8  pixel barrel        r = 32, 72, 116, 172        |z| < 455
  volume 13 short-strip barrel  r = 260, 360, 500, 660      |z| < 1030
  volume 17 long-strip barrel   r = 820, 1020               |z| < 1030
  volumes 7 / 9   pixel disks        |z| = 600 ... 1500 (7)  r 30 - 175
  volumes 12 / 14 short-strip disks  |z| = 1220 ... 2950 (6) r 230 - 700
  volumes 16 / 18 long-strip disks   |z| = 1220 ... 2950 (6) r 700 - 1025
Layer ids are 2, 4, 6, ... counted outwards from the interaction point, except on the -z side
(volumes 7, 12, 16) where, as in TrackML, layer 2 is the outermost disk (most negative z).

The tables below (`VOLUMES`) are the whole description; `build_detector` only expands them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

PIXEL_VOLUMES = (7, 8, 9)

# One entry per volume. Keys:
#   barrel: cylinders (True) or disks (False); positions: radii (barrel) or |z| (disks), inner
#   first; side: +1 / -1 for disks (z sign), 0 for barrels; extent: (min, max) z for barrels,
#   r for disks; module: (phi size, long size) in mm of one module tile; res: (sigma across,
#   sigma along) in mm; x0: x/X0 per layer; eff: hit efficiency; half_thickness: extent of the
#   layer's envelope normal to its surface (mm), used only for r_min/r_max or z_min/z_max.
# Resolutions: pixel 50 um pitch -> 0.015 mm in both directions; short strips 80 um x 1.2 mm,
# long strips 120 um x 10.8 mm, i.e. pitch / sqrt(12) across and length / sqrt(12) along.
_PIXEL = dict(module=(16.8, 72.0), res=(0.015, 0.015), x0=0.02, eff=0.985, half_thickness=2.0)
_SHORT = dict(module=(48.0, 108.0), res=(0.023, 0.35), x0=0.025, eff=0.98, half_thickness=4.0)
_LONG = dict(module=(96.0, 216.0), res=(0.035, 3.1), x0=0.03, eff=0.98, half_thickness=4.0)
_PIXEL_Z = (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0)
_STRIP_Z = (1220.0, 1500.0, 1800.0, 2150.0, 2550.0, 2950.0)

VOLUMES: tuple[dict, ...] = (
    dict(volume_id=7, barrel=False, side=-1, positions=_PIXEL_Z, extent=(30.0, 175.0), **_PIXEL),
    dict(volume_id=8, barrel=True, side=0, positions=(32.0, 72.0, 116.0, 172.0), extent=(-455.0, 455.0),
         **_PIXEL),
    dict(volume_id=9, barrel=False, side=+1, positions=_PIXEL_Z, extent=(30.0, 175.0), **_PIXEL),
    dict(volume_id=12, barrel=False, side=-1, positions=_STRIP_Z, extent=(230.0, 700.0), **_SHORT),
    dict(volume_id=13, barrel=True, side=0, positions=(260.0, 360.0, 500.0, 660.0), extent=(-1030.0, 1030.0),
         **_SHORT),
    dict(volume_id=14, barrel=False, side=+1, positions=_STRIP_Z, extent=(230.0, 700.0), **_SHORT),
    dict(volume_id=16, barrel=False, side=-1, positions=_STRIP_Z, extent=(700.0, 1025.0), **_LONG),
    dict(volume_id=17, barrel=True, side=0, positions=(820.0, 1020.0), extent=(-1030.0, 1030.0), **_LONG),
    dict(volume_id=18, barrel=False, side=+1, positions=_STRIP_Z, extent=(700.0, 1025.0), **_LONG),
)


@dataclasses.dataclass(frozen=True, eq=False)
class Detector:
    """One row per layer, rows sorted by (volume_id, layer_id). All arrays have shape [L].

    volume_id, layer_id: int32 TrackML ids.
    is_barrel: bool; barrel layers are cylinders, the others disks.
    position: float64 mm; cylinder radius (barrel) or signed disk z.
    min_extent, max_extent: float64 mm; z range (barrel) or r range (disk) of the sensitive area.
    n_phi, n_long: int32 module tiling in phi and along z (barrel) / r (disk).
    sigma_across, sigma_along: float64 mm; Gaussian hit resolution across (r·phi) and along
      (z for barrels, r for disks) the strip direction.
    x_over_x0: float64, material per crossing at normal incidence (radiation lengths).
    efficiency: float64 in [0, 1], probability that a crossing leaves a hit.
    half_thickness: float64 mm, envelope normal to the surface (for r_min/r_max, z_min/z_max).
    """

    volume_id: np.ndarray
    layer_id: np.ndarray
    is_barrel: np.ndarray
    position: np.ndarray
    min_extent: np.ndarray
    max_extent: np.ndarray
    n_phi: np.ndarray
    n_long: np.ndarray
    sigma_across: np.ndarray
    sigma_along: np.ndarray
    x_over_x0: np.ndarray
    efficiency: np.ndarray
    half_thickness: np.ndarray
    pixel_volumes: tuple[int, ...] = PIXEL_VOLUMES

    def __len__(self) -> int:
        return len(self.volume_id)

    @property
    def n_layers(self) -> int:
        return len(self.volume_id)

    @property
    def is_pixel(self) -> np.ndarray:
        """bool [L]: layer belongs to a pixel volume."""
        return np.isin(self.volume_id, np.asarray(self.pixel_volumes))

    # Envelope of each layer in r and z (mm), the shape the graph builder's LayerTable uses.
    @property
    def r_min(self) -> np.ndarray:
        return np.where(self.is_barrel, self.position - self.half_thickness, self.min_extent)

    @property
    def r_max(self) -> np.ndarray:
        return np.where(self.is_barrel, self.position + self.half_thickness, self.max_extent)

    @property
    def z_min(self) -> np.ndarray:
        return np.where(self.is_barrel, self.min_extent, self.position - self.half_thickness)

    @property
    def z_max(self) -> np.ndarray:
        return np.where(self.is_barrel, self.max_extent, self.position + self.half_thickness)

    @property
    def n_modules(self) -> np.ndarray:
        """int32 [L]: modules per layer (module ids run 1..n_modules)."""
        return (self.n_phi * self.n_long).astype(np.int32)

    def layer_index(self, volume_id, layer_id) -> np.ndarray:
        """int32 array (shape of the inputs): row of each (volume_id, layer_id), -1 if unknown."""
        keys = _layer_key(self.volume_id, self.layer_id)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        query = _layer_key(np.asarray(volume_id), np.asarray(layer_id))
        pos = np.clip(np.searchsorted(sorted_keys, query), 0, len(keys) - 1)
        return np.where(sorted_keys[pos] == query, order[pos], -1).astype(np.int32)

    def module_id(self, layer: np.ndarray, phi: np.ndarray, long_coord: np.ndarray) -> np.ndarray:
        """int32 [N] module id in 1..n_modules of each position.

        Args:
          layer: int [N] layer rows; phi: [N] azimuth (rad); long_coord: [N] z (barrel) or r (disk), mm.
        Module = iphi * n_long + ilong + 1 (see `module_indices`).
        """
        iphi, ilong = self.module_indices(layer, phi, long_coord)
        return (iphi * self.n_long[layer] + ilong + 1).astype(np.int32)

    def module_indices(self, layer: np.ndarray, phi: np.ndarray, long_coord: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """int64 [N] module column in phi (0..n_phi-1) and row along z / r (0..n_long-1) of each
        position (arguments as in `module_id`); positions outside the extent go to the edge module."""
        n_phi, n_long = self.n_phi[layer], self.n_long[layer]
        lo, hi = self.min_extent[layer], self.max_extent[layer]
        iphi = np.floor(np.mod(phi, 2 * np.pi) / (2 * np.pi) * n_phi).astype(np.int64)
        ilong = np.floor((long_coord - lo) / (hi - lo) * n_long).astype(np.int64)
        return np.clip(iphi, 0, n_phi - 1), np.clip(ilong, 0, n_long - 1)

    def surface_area(self) -> np.ndarray:
        """float64 [L] sensitive area in mm^2."""
        barrel = 2 * np.pi * self.position * (self.max_extent - self.min_extent)
        disk = np.pi * (self.max_extent ** 2 - self.min_extent ** 2)
        return np.where(self.is_barrel, barrel, disk)

    def table(self):
        """The layer table as a pandas DataFrame (for printing and docs)."""
        import pandas as pd

        cols = [f.name for f in dataclasses.fields(self) if f.name != "pixel_volumes"]
        return pd.DataFrame({c: getattr(self, c) for c in cols})


def _layer_key(volume_id, layer_id) -> np.ndarray:
    return np.asarray(volume_id, np.int64) * 10000 + np.asarray(layer_id, np.int64)


def build_detector(volumes=VOLUMES, pixel_volumes=PIXEL_VOLUMES) -> Detector:
    """Expands per-volume specs (see `VOLUMES`) into the per-layer `Detector` table.

    Disks on the -z side (side = -1) are numbered from the outermost disk, as in TrackML.
    The module tiling is chosen from the module size: n_phi = ceil(2 pi r / phi size) with r the
    layer radius (barrel) or outer radius (disk); n_long = ceil(extent length / long size).
    """
    rows = []
    for spec in volumes:
        positions = np.asarray(spec["positions"], np.float64)
        lo, hi = spec["extent"]
        if spec["side"] < 0:
            positions = -positions[::-1]           # outermost first -> layer_id 2
        elif not spec["barrel"]:
            positions = positions * spec["side"]
        for i, pos in enumerate(positions):
            radius = pos if spec["barrel"] else hi
            n_phi = max(4, int(np.ceil(2 * np.pi * radius / spec["module"][0])))
            n_long = max(1, int(np.ceil((hi - lo) / spec["module"][1])))
            rows.append(dict(
                volume_id=spec["volume_id"], layer_id=2 * (i + 1), is_barrel=spec["barrel"], position=pos,
                min_extent=lo, max_extent=hi, n_phi=n_phi, n_long=n_long,
                sigma_across=spec["res"][0], sigma_along=spec["res"][1], x_over_x0=spec["x0"],
                efficiency=spec["eff"], half_thickness=spec["half_thickness"]))
    rows.sort(key=lambda r: (r["volume_id"], r["layer_id"]))
    dtypes = dict(volume_id=np.int32, layer_id=np.int32, is_barrel=bool, n_phi=np.int32, n_long=np.int32)
    arrays = {k: np.array([r[k] for r in rows], dtype=dtypes.get(k, np.float64)) for k in rows[0]}
    return Detector(**arrays, pixel_volumes=tuple(pixel_volumes))


_DEFAULT: Detector | None = None


def default_detector() -> Detector:
    """The TrackML-like detector of this module (built once, shared; arrays are not to be mutated)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_detector()
    return _DEFAULT
