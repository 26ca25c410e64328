"""Files we write are readable the way the public trackml-library reads them.

The trackml-library (github.com/LAL/trackml-library, trackml/dataset.py; not on PyPI, so not
installed here) is not copied; this test re-implements, independently, the behaviour it relies on:

- `load_event(prefix, parts)`: for each part, the glob `<prefix>-<part>.csv*` must match exactly
  one file, read with `pandas.read_csv(file, header=0, index_col=False, dtype=...)` where the dtypes
  are 4-byte ints for hit_id / volume_id / layer_id / module_id / particle_type / q / nhits /
  ch0 / ch1, 8-byte ints for particle_id and float32 for all real columns (a dtype for a column
  that is absent, e.g. particle_type, is ignored by pandas);
- `load_dataset(dir)`: event prefixes are the names matching `event<9 digits>-<letters>.csv[.gz]`,
  cut at the first '-', sorted; the event id is the integer after `event`.
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np
import pandas as pd
import pytest

from gnntrack.io.trackml import write_event

I4, I8, F4 = "i4", "i8", "f4"
LIBRARY_DTYPES = {
    "hits": {"hit_id": I4, "x": F4, "y": F4, "z": F4, "volume_id": I4, "layer_id": I4, "module_id": I4},
    "truth": {"hit_id": I4, "particle_id": I8, "tx": F4, "ty": F4, "tz": F4, "tpx": F4, "tpy": F4,
              "tpz": F4, "weight": F4},
    "particles": {"particle_id": I8, "particle_type": I4, "vx": F4, "vy": F4, "vz": F4, "px": F4,
                  "py": F4, "pz": F4, "q": I4, "nhits": I4},
    "cells": {"hit_id": I4, "ch0": I4, "ch1": I4, "value": F4},
}


def library_style_load(prefix: str, part: str) -> pd.DataFrame:
    matches = glob.glob(f"{prefix}-{part}.csv*")
    assert len(matches) == 1, matches  # the library raises on zero or several matches
    return pd.read_csv(matches[0], header=0, index_col=False, dtype=LIBRARY_DTYPES[part])


def library_style_prefixes(directory) -> list[str]:
    pattern = re.compile(r".*event\d{9}-[a-zA-Z]+.csv(.gz)?$")
    return sorted({name.split("-", 1)[0] for name in os.listdir(directory) if pattern.match(name)})


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("particle_type", [True, False])
def test_library_style_reading(tmp_path, event_factory, compress, particle_type):
    event = event_factory(event_id=21100, particle_type=particle_type, cells=True)
    write_event(event, tmp_path, compress=compress)
    write_event(event_factory(event_id=5), tmp_path, compress=not compress)
    assert library_style_prefixes(tmp_path) == ["event000000005", "event000021100"]
    assert int(re.findall(r"event(\d+)", "event000021100")[0]) == event.event_id
    prefix = str(tmp_path / "event000021100")
    for part in ("hits", "truth", "particles", "cells"):
        theirs = library_style_load(prefix, part)
        ours = getattr(event, part)
        assert list(theirs.columns) == list(ours.columns)
        for col in ours:
            assert theirs[col].dtype == np.dtype(LIBRARY_DTYPES[part][col]), (part, col)
            np.testing.assert_array_equal(theirs[col].to_numpy(), ours[col].to_numpy(), err_msg=f"{part}.{col}")
