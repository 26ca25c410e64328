"""gnntrack.report"""
