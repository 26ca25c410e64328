"""gnntrack.detector: the TrackML-like detector as data and the event simulation.

  geometry.py   `Detector` (one row per layer, TrackML ids), `default_detector()`, PIXEL_VOLUMES
  particles.py  particle generator (pileup or fixed count) and TrackML particles.csv reader
  simulate.py   `default_simulation_config()`, `simulate_event(...)`, `simulate_events(...)`
  weights.py    TrackML phase-1 truth weights
  luxe.py       LUXE-like positron tracker (dipole, four layers of overlapping ALPIDE staves) and its crossings
  toy.py        planes toy (2D/3D, straight/curved tracks) in the same TrackML tables
"""
