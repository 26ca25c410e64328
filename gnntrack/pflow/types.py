"""Column layouts shared by the particle-flow data, task and models.

An event is N elements (tracks and calorimeter clusters). Every element has the same feature
row (ELEMENT_FEATURES; the columns a type lacks are zero) and one target row (TARGET_COLUMNS):
the particle it gives rise to, or class NONE.
"""

from __future__ import annotations

ELEMENT_TYPES = ("track", "cluster")

# float32 [N, len(ELEMENT_FEATURES)]: type one-hot first, then kinematics (GeV, radians).
ELEMENT_FEATURES = (
    "is_track", "is_cluster",
    "pt_or_et", "eta", "sin_phi", "cos_phi", "energy_or_p",
    "track_chi2", "track_charge",
    "cluster_e_ecal", "cluster_e_hcal", "cluster_n_cells", "cluster_width_eta", "cluster_width_phi",
    "position_x", "position_y", "position_z",
)

# Particle classes of the class head; index 0 = no particle from this element.
PARTICLE_CLASSES = ("none", "charged_hadron", "neutral_hadron", "photon", "electron", "muon")

# float32 [N, len(TARGET_COLUMNS)]: class index, charge (-1, 0, +1), pt (GeV), eta, sin phi,
# cos phi, energy (GeV); kinematic targets are zero for class NONE.
TARGET_COLUMNS = ("class", "charge", "pt", "eta", "sin_phi", "cos_phi", "energy")
# the jet and MET numbers `gnntrack evaluate` pairs between two reconstructions (gnntrack.pflow.evaluate)
DIFFERENCE_KEYS = ("jet_resolution", "jet_response", "met_resolution", "met_sigma_gev")
