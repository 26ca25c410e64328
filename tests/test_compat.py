"""The JAX-version shims answer the same on this JAX as JAX itself: the device-varying axes of a
value inside shard_map, casting to them, and the XLA clients a process holds."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from gnntrack._compat import varying_axes, vary_like, xla_clients


def test_varying_axes_inside_and_outside_shard_map():
    mesh = jax.make_mesh((1,), ("d",))
    seen = {}

    def per_device(x, w):
        seen["x"], seen["w"] = varying_axes(x), varying_axes(w)
        cast = vary_like(w, x)
        seen["cast"] = varying_axes(cast)
        return x * cast

    x = jax.device_put(jnp.ones(2), jax.NamedSharding(mesh, P("d")))
    out = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P("d"), P()), out_specs=P("d")))(x, jnp.ones(()))
    assert seen == {"x": frozenset({"d"}), "w": frozenset(), "cast": frozenset({"d"})}
    np.testing.assert_array_equal(out, np.ones(2))  # exact: 1 * 1
    assert varying_axes(jnp.ones(2)) == frozenset()
    assert vary_like(jnp.ones(2), jnp.ones(3)).shape == (2,)


def test_xla_clients_empty_before_jax_and_present_after_a_backend_starts():
    code = ("import sys; from gnntrack._compat import xla_clients; assert xla_clients() == []; "
            "assert 'jax' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    jax.devices()
    assert xla_clients()
