"""Models and message functions, registered by name and selected by `model.name` / `model.message`.

Models: a Flax module class (or a factory `fn(model_config) -> nn.Module`) registered with the
function returning its default config group, kept next to the model (init2winit's habit):

    def default_config():
        return ml_collections.ConfigDict(dict(name="my_model", hidden=32))

    @register_model("my_model", default_config)
    class MyModel(nn.Module):
        hidden: int = 32
        @nn.compact
        def __call__(self, graph, train=False): ...   # outputs for the task, e.g. logits [E]

`build_model(config.model)` checks the group's keys against the model's defaults and calls the
class with every key but `name` (a factory gets the whole group, defaults filled in).
Setting `model.name` in a config swaps the whole `model` group (`gnntrack.config.set_by_path`).
A model registered in an experiment file reaches other processes through `config.imports`.

A message function turns node features and per-edge values into per-node aggregated messages:

    fn(x, e, senders, receivers) -> m

      x          float [N, D]   node features (N may include jraph padding nodes)
      e          float [E, K]   per-edge values: the segment classifier passes its edge weights
                                (sigmoid of the edge network, K = 1); the interaction network
                                passes the relational MLP's messages (K = its message width)
      senders    int32 [E]      source node of each edge (inner hit)
      receivers  int32 [E]      target node of each edge (outer hit)
      returns    float [N, M]   aggregated messages; M is free (the next MLP infers its width)

Aggregate with `gnntrack.nn.ops` (segment_sum, gather_sum, gather_mean, ...: CPU kernels
forward and backward where they apply, XLA elsewhere) or `jax.ops.segment_sum`, with
`num_segments=x.shape[0]` (static, so jit sees fixed shapes). jraph padding edges connect
padding nodes only, so a sum/mean/max over incoming edges never mixes padding into real nodes.
Adding one is one function plus one decorator line:

    @register_message("weighted_mean_in")
    def weighted_mean_in(x, e, senders, receivers):   # Σ_in w·x_src / (Σ_in w + 1e-6)
        return ops.gather_mean(x, senders, receivers, x.shape[0], weights=e[:, 0], eps=1e-6)
"""

from __future__ import annotations

import inspect
from typing import Callable

import jax.numpy as jnp
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.keys import check_known_keys
from gnntrack.nn import ops

ModelDefaults = Callable[[], ml_collections.ConfigDict]
_MODELS: dict[str, tuple[Callable, ModelDefaults]] = {}


def register_model(name: str, default_config: ModelDefaults) -> Callable:
    """Decorator registering a Flax module class or a factory `fn(model_config) -> nn.Module` as
    model `name`; `default_config()` returns its config group (with `name` = `name`).

    Re-registering a name replaces the earlier model (handy in notebooks).
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"model name must be a non-empty string, got {name!r}")
    if not callable(default_config):
        raise ConfigError(f"register_model({name!r}, default_config): default_config must be a "
                          f"function returning the model's ConfigDict group")

    def decorator(model):
        _MODELS[name] = (model, default_config)
        return model

    return decorator


def available_models() -> list[str]:
    """Names of all registered models, in registration order (the built-in ones first)."""
    return list(_MODELS)


def _lookup_model(name: str) -> tuple[Callable, ModelDefaults]:
    try:
        return _MODELS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model {name!r} (config key 'model.name'); available: "
                          f"{', '.join(available_models())}; a model registered in another file "
                          f"is found when the config lists that file in 'imports'") from None


def default_model_config(name: str = "segment_classifier") -> ml_collections.ConfigDict:
    """A fresh copy of model `name`'s default config group (ConfigError for an unknown name)."""
    _, defaults = _lookup_model(name)
    config = defaults()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"the default config of model {name!r} must be an ml_collections.ConfigDict, "
                          f"got {type(config).__name__}")
    if "name" not in config:
        with config.unlocked():
            config.name = name
    return config


def build_model(model_config: ml_collections.ConfigDict | dict):
    """The Flax module described by `model_config` (unknown keys or names -> ConfigError)."""
    cfg = model_config if isinstance(model_config, ml_collections.ConfigDict) \
        else ml_collections.ConfigDict(dict(model_config))
    name = cfg.get("name", "segment_classifier")
    model, _ = _lookup_model(name)
    reference = default_model_config(name)
    check_known_keys(cfg, reference, where="model")
    values = ml_collections.ConfigDict({**reference.to_dict(), **cfg.to_dict()})
    if inspect.isclass(model):
        fields = values.to_dict()
        del fields["name"]
        return model(**fields)
    return model(values)


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


def _weighted_gather_sum(x, e, src, dst, grouping_dst, grouping_src):
    """Σ_{edges to n} e·x[src] -> [N, D] for e [E, 1] (per-edge weights) or [E, D]."""
    n = x.shape[0]
    if e.shape[-1] == 1:
        return ops.gather_sum(x, src, dst, n, e[:, 0], groupings=(grouping_dst, grouping_src))
    return ops.segment_sum(e * ops.gather(x, src, grouping=grouping_src), dst, n,
                           grouping=grouping_dst)


def _groupings(x, senders, receivers):
    """(edges grouped by receiver, by sender), sorted once for all of a message's sums."""
    n, kernels = x.shape[0], ops.kernels_apply(x)
    return ops.group(receivers, n, kernels=kernels), ops.group(senders, n, kernels=kernels)


# ---------------------------------------------------------------------------------------------
# Built-in message functions (sums in gnntrack.nn.ops: CPU kernels where they apply).


@register_message("bidirectional_weighted_sum")
def bidirectional_weighted_sum(x, e, senders, receivers):
    """HEP.TrkX node-network input: [Σ_in w·x_src, Σ_out w·x_dst] -> [N, 2D] (e = w, [E, 1])."""
    by_r, by_s = _groupings(x, senders, receivers)
    incoming = _weighted_gather_sum(x, e, senders, receivers, by_r, by_s)
    outgoing = _weighted_gather_sum(x, e, receivers, senders, by_s, by_r)
    return jnp.concatenate([incoming, outgoing], axis=-1)


@register_message("weighted_sum_in")
def weighted_sum_in(x, e, senders, receivers):
    """Incoming direction only: Σ_in w·x_src -> [N, D]."""
    return _weighted_gather_sum(x, e, senders, receivers, *_groupings(x, senders, receivers))


@register_message("bidirectional_weighted_mean")
def bidirectional_weighted_mean(x, e, senders, receivers):
    """Weight-normalised means in both directions -> [N, 2D] (robust to node degree)."""
    n = x.shape[0]
    by_r, by_s = _groupings(x, senders, receivers)
    incoming = _weighted_gather_sum(x, e, senders, receivers, by_r, by_s)
    outgoing = _weighted_gather_sum(x, e, receivers, senders, by_s, by_r)
    w_in = ops.segment_sum(e, receivers, n, grouping=by_r)
    w_out = ops.segment_sum(e, senders, n, grouping=by_s)
    return jnp.concatenate([incoming / (w_in + 1e-6), outgoing / (w_out + 1e-6)], axis=-1)


@register_message("sum_incoming")
def sum_incoming(x, e, senders, receivers):
    """Interaction-network aggregation: Σ of edge messages at the receiver -> [N, K]."""
    del senders
    return ops.segment_sum(e, receivers, x.shape[0])


@register_message("sum_bidirectional")
def sum_bidirectional(x, e, senders, receivers):
    """Edge messages summed at both ends: [Σ_in e, Σ_out e] -> [N, 2K]."""
    n = x.shape[0]
    return jnp.concatenate([ops.segment_sum(e, receivers, n), ops.segment_sum(e, senders, n)],
                           axis=-1)
