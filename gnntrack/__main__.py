from gnntrack.cli import entry_point

entry_point()
