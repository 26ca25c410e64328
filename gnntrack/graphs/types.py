"""The hit graph: the contract between graph building, training and track building.

A `HitGraph` holds one event's (or one section's) graph as a numpy `jraph.GraphsTuple` with a
single graph in it, plus the truth that rides beside it. Edges point outward along the
trajectory: `senders` is the inner hit (earlier on the particle's path), `receivers` the outer.
"""

from __future__ import annotations

import dataclasses

import jraph
import numpy as np

# Node features are (r / R_SCALE, phi / pi, z / Z_SCALE) by default, as in HEP.TrkX.
R_SCALE_MM = 1000.0
Z_SCALE_MM = 1000.0


@dataclasses.dataclass
class HitGraph:
    """One graph and its truth, all numpy.

    Attributes:
      graph: GraphsTuple with n_node=[N], n_edge=[E]; nodes float32 [N, F_node];
        edges float32 [E, F_edge]; senders/receivers int32 [E]; globals None.
      y: float32 [E], 1.0 for a true edge (consecutive hits of one particle), else 0.0.
      hit_id: int64 [N], TrackML hit ids of the nodes (to write submissions).
      particle_id: int64 [N], truth particle per node (0 = noise; -1 when the event has no truth).
      layer: int32 [N], index of the node's layer in the detector's layer table.
      edge_pt: float32 [E], transverse momentum (GeV) of the particle of a true edge, 0 for fakes.
      event_id: the TrackML event id.
      section: section index when the event was split into n_phi x n_eta sections, else -1.
      node_y: float32 [N, K] per-node targets of a node task (`gnntrack.tasks`), else None.
      graph_y: float32 [K] per-graph targets of a graph task, else None.
      edge_mask: bool [E], the edges the loss and metrics count (an exact section's core edges;
        the others are its halo), or None: all of them.
    """

    graph: jraph.GraphsTuple
    y: np.ndarray
    hit_id: np.ndarray
    particle_id: np.ndarray
    layer: np.ndarray
    edge_pt: np.ndarray
    event_id: int
    section: int = -1
    node_y: np.ndarray | None = None
    graph_y: np.ndarray | None = None
    edge_mask: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return int(self.graph.n_node.sum())

    @property
    def n_edges(self) -> int:
        return int(self.graph.n_edge.sum())
