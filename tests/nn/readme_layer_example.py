import flax.linen as nn, jax.numpy as jnp, ml_collections
from gnntrack.nn import ops, register_model
class GatedMean(nn.Module):  # a parametrised message: a learned gate per edge, weighted mean of senders
    width: int
    @nn.compact
    def __call__(self, x, senders, receivers):
        gate = nn.sigmoid(nn.Dense(1)(jnp.concatenate([ops.gather(x, senders), ops.gather(x, receivers)], -1)))
        return ops.gather_mean(nn.Dense(self.width)(x), senders, receivers, x.shape[0], weights=gate[:, 0])
def gated_edges_config():  # the model's defaults live next to it; --config.model.hidden=32 overrides one
    return ml_collections.ConfigDict(dict(name="gated_edges", hidden=16, n_iters=2))
@register_model("gated_edges", gated_edges_config)
class GatedEdges(nn.Module):  # (graph) -> one logit per edge, as the edge task wants
    hidden: int = 16
    n_iters: int = 2
    @nn.compact
    def __call__(self, graph, train=False):
        x = nn.Dense(self.hidden)(graph.nodes)
        for _ in range(self.n_iters):
            x = nn.LayerNorm()(x + nn.tanh(GatedMean(self.hidden)(x, graph.senders, graph.receivers)))
        pair = jnp.concatenate([ops.gather(x, graph.senders), ops.gather(x, graph.receivers)], -1)
        return nn.Dense(1)(nn.tanh(nn.Dense(self.hidden)(pair)))[:, 0]
