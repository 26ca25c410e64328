"""gnntrack.studies"""
