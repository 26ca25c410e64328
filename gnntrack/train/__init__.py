"""gnntrack.train"""
