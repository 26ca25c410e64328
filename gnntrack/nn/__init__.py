"""gnntrack.nn"""
