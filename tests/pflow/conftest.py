"""A tiny particle-flow data set (3 ttbar events without pileup, chunks of 2), made once."""

import pytest

from gnntrack.cli import main

TINY_ARGS = ["--events", "3", "--chunk-size", "2", "--seed", "3", "--no-progress"]


@pytest.fixture(scope="session")
def pflow_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pflow") / "events"
    assert main(["pflow", "simulate", "--out", str(out), *TINY_ARGS]) == 0
    return out
