import jax, jax.numpy as jnp, jraph, optax
from gnntrack.nn import build_model, default_model_config, register_message
@register_message("weighted_mean_in")  # a new message function: one function + this line
def weighted_mean_in(x, e, senders, receivers):  # x [N, D] node features, e [E, 1] edge weights
    total = jax.ops.segment_sum(e * x[senders], receivers, num_segments=x.shape[0])
    return total / (jax.ops.segment_sum(e, receivers, num_segments=x.shape[0]) + 1e-6)
config = default_model_config("segment_classifier")  # select it by name in any model config
config.message, config.hidden, config.n_iters = "weighted_mean_in", 16, 2
model = build_model(config)
graph = jraph.GraphsTuple(nodes=jax.random.normal(jax.random.key(0), (6, 3)), edges=None, globals=None, n_node=jnp.array([6]),
                          n_edge=jnp.array([6]), senders=jnp.array([0, 1, 2, 3, 4, 0]), receivers=jnp.array([1, 2, 3, 4, 5, 3]))
labels = jnp.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
params = model.init(jax.random.key(1), graph)["params"]
tx = optax.adam(1e-2); opt_state = tx.init(params)
loss_fn = lambda p: optax.sigmoid_binary_cross_entropy(model.apply({"params": p}, graph), labels).mean()
grad_fn = jax.jit(jax.value_and_grad(loss_fn))
for step in range(30):
    loss, grads = grad_fn(params)
    updates, opt_state = tx.update(grads, opt_state); params = optax.apply_updates(params, updates)
print(f"final loss {loss:.4f}")
