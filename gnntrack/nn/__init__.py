"""gnntrack.nn: message-function registry and edge-classifying graph networks (Flax Linen)."""

from gnntrack.nn.models import (SegmentClassifier, InteractionNetwork, build_model, count_params,
                                default_model_config)
from gnntrack.nn.registry import available_messages, get_message, register_message

__all__ = ["SegmentClassifier", "InteractionNetwork", "build_model", "count_params",
           "default_model_config", "available_messages", "get_message", "register_message"]
