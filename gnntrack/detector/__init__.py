"""gnntrack.detector"""
