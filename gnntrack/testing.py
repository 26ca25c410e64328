"""Small synthetic datasets for tests and examples of the node and graph tasks (not physics)."""

from __future__ import annotations

import jraph
import numpy as np

from gnntrack.graphs.types import HitGraph
from gnntrack.pflow.types import ELEMENT_FEATURES, PARTICLE_CLASSES, TARGET_COLUMNS


def random_hit_graph(rng: np.random.Generator, n_node: int, n_edge: int, *, event_id: int = 0,
                     noise_fraction: float = 0.3) -> HitGraph:
    """A random HitGraph whose noise hits (particle_id 0, a `noise_fraction` of the nodes) are
    told by their first feature's sign (positive for noise), for the node task's 'noise' target."""
    noise = rng.random(n_node) < noise_fraction
    nodes = rng.normal(size=(n_node, 3)).astype(np.float32)
    nodes[:, 0] = np.where(noise, 1.0, -1.0) * np.abs(nodes[:, 0]) + 0.1 * rng.normal(size=n_node)
    graph = jraph.GraphsTuple(
        nodes=nodes, edges=rng.normal(size=(n_edge, 2)).astype(np.float32),
        senders=rng.integers(0, n_node, n_edge).astype(np.int32),
        receivers=rng.integers(0, n_node, n_edge).astype(np.int32),
        n_node=np.array([n_node], np.int32), n_edge=np.array([n_edge], np.int32), globals=None)
    particle_id = np.where(noise, 0, 1 + rng.integers(0, 5, n_node)).astype(np.int64)
    return HitGraph(graph=graph, y=(rng.random(n_edge) < 0.3).astype(np.float32),
                    hit_id=np.arange(1, n_node + 1, dtype=np.int64), particle_id=particle_id,
                    layer=np.zeros(n_node, np.int32), edge_pt=np.zeros(n_edge, np.float32),
                    event_id=int(event_id))


def sign_graphs(n_graphs: int, seed: int = 0, *, min_nodes: int = 4, max_nodes: int = 12
                ) -> list[HitGraph]:
    """Graphs labelled by the sign of their nodes' mean first feature (graph_y [1] = 1.0 when
    positive): a graph classification a small network learns in a few dozen steps."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        g = random_hit_graph(rng, n, 3 * n, event_id=i, noise_fraction=0.0)
        shift = rng.choice([-1.0, 1.0])
        g.graph.nodes[:, 0] = shift + 0.5 * rng.normal(size=n).astype(np.float32)
        g.graph_y = np.array([float(g.graph.nodes[:, 0].mean() > 0)], np.float32)
        out.append(g)
    return out


_COLUMN = {name: i for i, name in enumerate(ELEMENT_FEATURES)}
_CHARGED = (1, 4, 5)  # charged hadron, electron, muon: a track each


def pflow_event(rng: np.random.Generator, n_particles: int, *, event_id: int = 0,
                noise_clusters: int = 0) -> HitGraph:
    """A toy particle-flow event (not physics): elements [N, len(ELEMENT_FEATURES)] and targets
    `node_y` [N, len(TARGET_COLUMNS)] in the layouts of `gnntrack.pflow.types`, with
    particle_id (1 + particle index; 0 for a noise cluster) for the bin recall.

    Charged particles give a track (which carries the particle) and, except muons, a cluster
    beside it (target 'none'); neutral ones a cluster (photons in the ECAL, neutral hadrons
    mostly in the HCAL). So telling a neutral hadron's cluster from a charged one's needs the
    nearby track: a task for message passing. Elements come in random order, no edges.
    """
    cls = rng.choice(np.arange(1, len(PARTICLE_CLASSES)), n_particles, p=[0.45, 0.15, 0.3, 0.05, 0.05])
    pt = 0.5 + rng.exponential(4.0, n_particles)
    eta, phi = rng.uniform(-2.5, 2.5, n_particles), rng.uniform(-np.pi, np.pi, n_particles)
    charge = np.where(np.isin(cls, _CHARGED), rng.choice([-1.0, 1.0], n_particles), 0.0)
    truth = np.stack([cls, charge, pt, eta, np.sin(phi), np.cos(phi), pt * np.cosh(eta)], 1)
    rows, targets, owner = [], [], []

    def element(is_track, p, et, d_eta, d_phi, target, e_ecal=0.0, e_hcal=0.0):
        row = np.zeros(len(ELEMENT_FEATURES))
        e, f = eta[p] + d_eta, phi[p] + d_phi
        row[[_COLUMN["is_track"], _COLUMN["is_cluster"]]] = (1.0, 0.0) if is_track else (0.0, 1.0)
        row[[_COLUMN[c] for c in ("pt_or_et", "eta", "sin_phi", "cos_phi", "energy_or_p")]] = (
            et, e, np.sin(f), np.cos(f), et * np.cosh(e))
        row[[_COLUMN[c] for c in ("position_x", "position_y", "position_z")]] = (
            1.5 * np.cos(f), 1.5 * np.sin(f), 1.5 * np.sinh(e))
        if is_track:
            row[_COLUMN["track_chi2"]], row[_COLUMN["track_charge"]] = rng.exponential(1.0), charge[p]
        else:
            row[[_COLUMN[c] for c in ("cluster_e_ecal", "cluster_e_hcal", "cluster_n_cells",
                                      "cluster_width_eta", "cluster_width_phi")]] = (
                e_ecal, e_hcal, 1 + rng.poisson(4), 0.02 + 0.01 * rng.random(), 0.02 + 0.01 * rng.random())
        rows.append(row)
        targets.append(target)
        owner.append(p + 1)

    none = np.zeros(len(TARGET_COLUMNS))
    for p in range(n_particles):
        energy, ecal = truth[p, 6], {1: 0.3, 2: 0.2, 3: 1.0, 4: 0.95, 5: 0.0}[int(cls[p])]
        if charge[p]:
            element(True, p, pt[p] * (1 + 0.02 * rng.normal()), 0.0, 0.0, truth[p])
        if cls[p] != 5:
            smear = 1 + 0.1 * rng.normal()
            element(False, p, pt[p] * smear, 0.02 * rng.normal(), 0.02 * rng.normal(),
                    none if charge[p] else truth[p], ecal * energy * smear, (1 - ecal) * energy * smear)
    for _ in range(noise_clusters):
        rows.append(np.zeros(len(ELEMENT_FEATURES)))
        f, e, et = rng.uniform(-np.pi, np.pi), rng.uniform(-2.5, 2.5), rng.exponential(0.3)
        rows[-1][[_COLUMN[c] for c in ("is_cluster", "pt_or_et", "eta", "sin_phi", "cos_phi", "energy_or_p",
                                       "cluster_e_ecal")]] = (1.0, et, e, np.sin(f), np.cos(f), et * np.cosh(e),
                                                              et * np.cosh(e))
        targets.append(none)
        owner.append(0)
    order = rng.permutation(len(rows))
    nodes = np.asarray(rows, np.float32)[order]
    n = len(nodes)
    graph = jraph.GraphsTuple(nodes=nodes, edges=np.zeros((0, 1), np.float32),
                              senders=np.zeros(0, np.int32), receivers=np.zeros(0, np.int32),
                              n_node=np.array([n], np.int32), n_edge=np.array([0], np.int32), globals=None)
    return HitGraph(graph=graph, y=np.zeros(0, np.float32), hit_id=np.arange(1, n + 1, dtype=np.int64),
                    particle_id=np.asarray(owner, np.int64)[order], layer=np.zeros(n, np.int32),
                    edge_pt=np.zeros(0, np.float32), event_id=int(event_id),
                    node_y=np.asarray(targets, np.float32)[order])


def pflow_events(n_events: int, seed: int = 0, *, min_particles: int = 10, max_particles: int = 40
                 ) -> list[HitGraph]:
    """`n_events` toy particle-flow events (`pflow_event`), a tenth of each event's elements noise."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_particles, max_particles + 1, n_events)
    return [pflow_event(rng, int(m), event_id=i, noise_clusters=int(m) // 8) for i, m in enumerate(sizes)]
