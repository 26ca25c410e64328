"""Particle flow: tracks and calorimeter clusters (elements) -> particles; data, targets, baseline."""
