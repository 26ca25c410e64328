"""gnntrack.io"""
