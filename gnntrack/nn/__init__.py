"""gnntrack.nn: model and message-function registries and the built-in graph networks (Flax Linen)."""

from gnntrack.nn.models import SegmentClassifier, InteractionNetwork, count_params
from gnntrack.nn.graph_net import GraphNet  # after the edge models: available_models() order
from gnntrack.nn.registry import (available_messages, available_models, build_model, default_model_config,
                                  get_message, register_message, register_model)

__all__ = ["GraphNet", "SegmentClassifier", "InteractionNetwork", "build_model", "count_params",
           "default_model_config", "available_messages", "available_models", "get_message",
           "register_message", "register_model"]
from gnntrack.nn import zoo  # noqa: E402,F401 -- registers the example models ("edgeconv")
from gnntrack.nn import mlpf  # noqa: E402,F401 -- registers the particle-flow model ("mlpf")
from gnntrack.nn import particlenet, students  # noqa: E402,F401 -- the jet taggers (particlenet, jet_fc, ...)
