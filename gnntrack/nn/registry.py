"""Message/aggregation functions, registered by name and selected by `model.message` in a config.

A message function turns node features and per-edge values into per-node aggregated messages:

    fn(x, e, senders, receivers) -> m

      x          float [N, D]   node features (N may include jraph padding nodes)
      e          float [E, K]   per-edge values: the segment classifier passes its edge weights
                                (sigmoid of the edge network, K = 1); the interaction network
                                passes the relational MLP's messages (K = its message width)
      senders    int32 [E]      source node of each edge (inner hit)
      receivers  int32 [E]      target node of each edge (outer hit)
      returns    float [N, M]   aggregated messages; M is free (the next MLP infers its width)

Aggregate with `jax.ops.segment_sum(..., num_segments=x.shape[0])` (static, so jit sees fixed
shapes). jraph padding edges connect padding nodes only, so a sum/mean/max over incoming edges
never mixes padding into real nodes. Adding one is one function plus one decorator line:

    @register_message("weighted_mean_in")
    def weighted_mean_in(x, e, senders, receivers):
        n = x.shape[0]
        total = jax.ops.segment_sum(e * x[senders], receivers, num_segments=n)
        weight = jax.ops.segment_sum(e, receivers, num_segments=n)
        return total / (weight + 1e-6)
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from gnntrack.errors import ConfigError

MessageFn = Callable[[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray], jnp.ndarray]

_MESSAGES: dict[str, MessageFn] = {}


def register_message(name: str) -> Callable[[MessageFn], MessageFn]:
    """Decorator registering `fn(x, e, senders, receivers) -> [N, M]` under `name`.

    Re-registering a name replaces the earlier function (handy in notebooks).
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"message name must be a non-empty string, got {name!r}")

    def decorator(fn: MessageFn) -> MessageFn:
        _MESSAGES[name] = fn
        return fn

    return decorator


def get_message(name: str) -> MessageFn:
    """The message function registered as `name`; ConfigError listing the known names otherwise."""
    try:
        return _MESSAGES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown message function {name!r} (config key 'model.message'); "
                          f"available: {', '.join(available_messages())}") from None


def available_messages() -> list[str]:
    """Sorted names of all registered message functions."""
    return sorted(_MESSAGES)


def _segment_sum(data: jnp.ndarray, segment_ids: jnp.ndarray, num_segments: int) -> jnp.ndarray:
    return jax.ops.segment_sum(data, segment_ids, num_segments=num_segments)


# ---------------------------------------------------------------------------------------------
# Built-in message functions.


@register_message("bidirectional_weighted_sum")
def bidirectional_weighted_sum(x, e, senders, receivers):
    """HEP.TrkX node-network input: [Σ_in w·x_src, Σ_out w·x_dst] -> [N, 2D] (e = w, [E, 1])."""
    n = x.shape[0]
    incoming = _segment_sum(e * x[senders], receivers, n)
    outgoing = _segment_sum(e * x[receivers], senders, n)
    return jnp.concatenate([incoming, outgoing], axis=-1)


@register_message("weighted_sum_in")
def weighted_sum_in(x, e, senders, receivers):
    """Incoming direction only: Σ_in w·x_src -> [N, D]."""
    return _segment_sum(e * x[senders], receivers, x.shape[0])


@register_message("bidirectional_weighted_mean")
def bidirectional_weighted_mean(x, e, senders, receivers):
    """Weight-normalised means in both directions -> [N, 2D] (robust to node degree)."""
    n = x.shape[0]
    incoming = _segment_sum(e * x[senders], receivers, n)
    outgoing = _segment_sum(e * x[receivers], senders, n)
    w_in = _segment_sum(e, receivers, n)
    w_out = _segment_sum(e, senders, n)
    return jnp.concatenate([incoming / (w_in + 1e-6), outgoing / (w_out + 1e-6)], axis=-1)


@register_message("sum_incoming")
def sum_incoming(x, e, senders, receivers):
    """Interaction-network aggregation: Σ of edge messages at the receiver -> [N, K]."""
    del senders
    return _segment_sum(e, receivers, x.shape[0])


@register_message("sum_bidirectional")
def sum_bidirectional(x, e, senders, receivers):
    """Edge messages summed at both ends: [Σ_in e, Σ_out e] -> [N, 2K]."""
    n = x.shape[0]
    return jnp.concatenate([_segment_sum(e, receivers, n), _segment_sum(e, senders, n)], axis=-1)
