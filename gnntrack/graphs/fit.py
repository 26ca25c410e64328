"""Training of the learned graph stages with JAX + optax: the metric-learning embedding (on hit
pairs) and the edge filter (on the edges of a constructed graph).

    params = fit_embedding(train_events, config)                 # config: a graph config
    save_embedding("embedding.npz", params, config)
    config.method = "metric"; config.metric.embedding = "embedding.npz"
    params = fit_filter(train_events, config)
    save_filter("filter.npz", params, config)

Both are small pure functions (events and config in, numpy params out, a tqdm bar) that train a
tanh MLP (gnntrack.graphs.mlp) with Adam on fixed-size batches (one compiled step). They need
events with truth. Graph building applies the result with numpy (metric_learning, filter).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.spatial import cKDTree
from tqdm import tqdm

from gnntrack.errors import InputError
from gnntrack.graphs import truth as truth_lib
from gnntrack.graphs.build import find_graph_edges, prepare, select_nodes
from gnntrack.graphs.filter import edge_inputs
from gnntrack.graphs.metric_learning import embed, hit_inputs
from gnntrack.graphs.mlp import apply_mlp, init_mlp


@dataclasses.dataclass
class _PairEvent:
    """One training event for the embedding: x float32 [N, F] hit inputs, pairs int64 [T, 2]
    true segments, positives [P, 2] those sampled as positive pairs, particle_id int64 [N];
    whole_particle: any two hits of one particle form a positive pair (else true segments only)."""

    x: np.ndarray
    pairs: np.ndarray
    positives: np.ndarray
    particle_id: np.ndarray
    whole_particle: bool = False


def _truth_nodes(event, config, layers):
    if event.truth is None:
        raise InputError(f"event {event.event_id} has no truth: the learned graph stages train on truth")
    nodes = select_nodes(event, config, layers)
    pairs = truth_lib.true_pairs(nodes.particle_id, nodes.layer, nodes.half, nodes.key)
    return nodes, pairs


def _adam_loop(params, loss_fn, next_batch, steps: int, learning_rate: float, desc: str, progress: bool,
               on_step=None):
    """Minimises loss_fn(params, *batch) with Adam for `steps` steps; returns numpy params.
    on_step(step, params) runs on the host before each step (e.g. to mine new pairs)."""
    opt = optax.adam(learning_rate)
    params = jax.tree.map(jnp.asarray, params)
    state = opt.init(params)

    @jax.jit
    def step(params, state, *batch):
        loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress)
    for i in bar:
        if on_step is not None:
            on_step(i, params)
        params, state, loss = step(params, state, *next_batch(i))
        if i % 50 == 0:
            bar.set_postfix(loss=f"{float(loss):.4g}")
    return [(np.asarray(w), np.asarray(b)) for w, b in params]


def _pair_labels(data: _PairEvent, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(label, weight) float32 [B] of hit pairs: 1 for a true segment; 0 for hits of different
    particles or noise; weight 0 for two non-consecutive hits of one particle (neither pulled
    together nor pushed apart: the graph does not need them, but they are not wrong either)."""
    pid = data.particle_id
    other = (pid[a] != pid[b]) | (pid[a] <= 0)
    if data.whole_particle:
        return (~other).astype(np.float32), np.ones(len(a), np.float32)
    y = truth_lib.label_edges(a, b, data.pairs, len(data.x), pid)
    return y.astype(np.float32), (y | other).astype(np.float32)


def particle_pairs(particle_id: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """int64 [P, 2]: every pair of hits (i < j in a particle's run) of one particle, over the
    hits with `eligible` [N] true and particle_id > 0."""
    hits = np.flatnonzero(eligible & (particle_id > 0))
    order = hits[np.argsort(particle_id[hits], kind="stable")]
    pid = particle_id[order]
    start = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    length = np.diff(np.r_[start, pid.size])
    out = [np.zeros((0, 2), np.int64)]
    for n in np.unique(length[length > 1]):
        i, j = np.triu_indices(n, 1)
        s = start[length == n][:, None]
        out.append(np.stack([order[s + i].ravel(), order[s + j].ravel()], axis=1))
    return np.concatenate(out)


def fit_embedding(events, config, *, progress: bool = True, detector=None) -> list:
    """Trains the hit embedding of the metric-learning graph.

    Each step takes one event (round robin) and `metric.batch_pairs` pairs of each kind:
    positives of particles with pT >= `metric.train_pt_min` (true segments, or with
    metric.positives = 'particle' any two hits of one particle; pulled together: loss d^2),
    random hit pairs, and hard negatives (pushed apart to `metric.margin`: loss
    max(0, margin - d)^2). Hard negatives are the `metric.hard_k`
    nearest neighbours, in the current embedding, of batch_pairs random hits of each event,
    mined again every `metric.mine_every` steps.

    Args:
      events: Event objects with truth; hits are selected with the graph config (selection,
        truth cuts) as the graph builder selects them.
      config: graph config (its `metric` group sets the model and the training).
    Returns:
      params: list of (W, b) numpy arrays, inputs hit_inputs -> metric.dim.
    """
    config, layers, _ = prepare(_without_filter(config, "geometric"), detector, np.zeros((0, 2), np.int32))
    m = config.metric
    data = []
    for event in events:
        nodes, pairs = _truth_nodes(event, config, layers)
        whole = m.positives == "particle"
        if whole:
            positives = particle_pairs(nodes.particle_id, nodes.pt >= float(m.train_pt_min))
        else:
            positives = pairs[nodes.pt[pairs[:, 0]] >= float(m.train_pt_min)]
        if len(positives):
            data.append(_PairEvent(hit_inputs(nodes), pairs, positives, nodes.particle_id, whole))
    if not data:
        raise InputError("fit_embedding: no true segment in the training events (too few hits selected?)")
    rng = np.random.default_rng(int(m.seed))
    sizes = (data[0].x.shape[1],) + (int(m.hidden),) * int(m.n_layers) + (int(m.dim),)
    params = init_mlp(rng, sizes)
    bsz, margin = int(m.batch_pairs), float(m.margin)
    pools: list = [None] * len(data)

    def mine(i, params):
        if i % int(m.mine_every):
            return
        host = [(np.asarray(w), np.asarray(b)) for w, b in params]
        for k, d in enumerate(data):
            emb = embed(host, d.x)
            query = rng.choice(len(d.x), size=min(bsz, len(d.x)), replace=False)
            kk = min(int(m.hard_k) + 1, len(d.x))
            _, nbr = cKDTree(emb).query(emb[query], k=kk)
            a = np.repeat(query, kk)
            b = nbr.reshape(-1)
            keep = a != b
            pools[k] = (a[keep], b[keep])

    def next_batch(i):
        d = data[i % len(data)]
        n = len(d.x)
        pos = d.positives[rng.integers(len(d.positives), size=bsz)]
        ra, rb = rng.integers(n, size=bsz), rng.integers(n, size=bsz)
        pa, pb = pools[i % len(data)]
        pick = rng.integers(len(pa), size=bsz)
        a = np.concatenate([pos[:, 0], ra, pa[pick]])
        b = np.concatenate([pos[:, 1], rb, pb[pick]])
        y, w = _pair_labels(d, a, b)
        return d.x[a], d.x[b], y, w

    def loss_fn(params, xa, xb, y, w):
        d2 = jnp.sum((apply_mlp(params, xa, jnp) - apply_mlp(params, xb, jnp)) ** 2, axis=-1)
        push = jax.nn.relu(margin - jnp.sqrt(d2 + 1e-12)) ** 2
        return jnp.sum(w * jnp.where(y > 0, d2, push)) / jnp.maximum(jnp.sum(w), 1.0)

    return _adam_loop(params, loss_fn, next_batch, int(m.steps), float(m.learning_rate), "fit embedding",
                      progress, on_step=mine)


def _without_filter(config, method=None):
    """A copy of the config without the filter (the stages train before it exists) and, given
    `method`, with that edge search (the embedding trains on hits alone: method 'geometric')."""
    config = config.copy_and_resolve_references()
    config.filter.path = ""
    if method is not None:
        config.method = method
    return config


def fit_filter(events, config, *, progress: bool = True, detector=None, fakes_per_true: int = 8) -> list:
    """Trains the edge filter on the graphs `config` builds (its `filter` group sets the model
    and the training): balanced batches of true and fake edges, binary cross-entropy.

    Each event gives all its true edges and at most `fakes_per_true` times as many random fakes
    (bounded memory: a mu = 200 metric graph has millions of edges).

    Returns:
      params: list of (W, b) numpy arrays, filter.edge_inputs -> 1 logit.
    """
    config, layers, layer_pairs = prepare(_without_filter(config), detector)
    f = config.filter
    rng = np.random.default_rng(int(f.seed))
    true_x, fake_x = [], []
    for event in events:
        nodes, pairs = _truth_nodes(event, config, layers)
        senders, receivers = find_graph_edges(nodes, layer_pairs, config)
        y = truth_lib.label_edges(senders, receivers, pairs, len(nodes), nodes.particle_id)
        t = np.flatnonzero(y)
        fk = np.flatnonzero(~y)
        fk = rng.choice(fk, size=min(fk.size, max(1, fakes_per_true * t.size)), replace=False)
        true_x.append(edge_inputs(nodes, senders[t], receivers[t]))
        fake_x.append(edge_inputs(nodes, senders[fk], receivers[fk]))
    true_x, fake_x = np.concatenate(true_x), np.concatenate(fake_x)
    if not len(true_x) or not len(fake_x):
        raise InputError("fit_filter: the training graphs need both true and fake edges")
    params = init_mlp(rng, (true_x.shape[1],) + (int(f.hidden),) * int(f.n_layers) + (1,))
    half = int(f.batch_edges) // 2 or 1
    y = np.r_[np.ones(half, np.float32), np.zeros(half, np.float32)]

    def next_batch(i):
        x = np.concatenate([true_x[rng.integers(len(true_x), size=half)],
                            fake_x[rng.integers(len(fake_x), size=half)]])
        return x, y

    def loss_fn(params, x, y):
        return jnp.mean(optax.sigmoid_binary_cross_entropy(apply_mlp(params, x, jnp)[:, 0], y))

    return _adam_loop(params, loss_fn, next_batch, int(f.steps), float(f.learning_rate), "fit filter", progress)
