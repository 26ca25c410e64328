"""gnntrack.graphs"""
