"""Shared fixtures of the training tests."""

import jax
import pytest


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory):
    """Runs with the same model compile the same steps: share them through JAX's persistent cache
    (per xdist worker: the base temp dir is the worker's). Module scope: module fixtures that
    train (a reference run shared by several tests) use it too."""
    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes")
    old = {k: jax.config.values[k] for k in keys}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.getbasetemp() / "jax-cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for k, v in old.items():
        jax.config.update(k, v)


@pytest.fixture(scope="session")
def luxe_crossings(tmp_path_factory):
    """Three small LUXE-like crossings (300 positrons each) as TrackML CSV: the training tests of
    sections, whole-event updates and history tables."""
    from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_events

    out = tmp_path_factory.mktemp("luxe_crossings")
    config = default_luxe_config()
    config.n_particles = 300
    simulate_luxe_events(out, 3, config, seed=3)
    return out
