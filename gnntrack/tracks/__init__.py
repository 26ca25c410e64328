"""gnntrack.tracks"""
