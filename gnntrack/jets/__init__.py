"""Jet tagging: generated (Pythia 8 + FastJet) and public jet files, preprocessing, the data source."""
