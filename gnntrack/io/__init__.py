"""TrackML-format input/output.

`gnntrack.io.read_event(prefix)` and friends are re-exported lazily, so that light modules
(config, atomic writes) can import `gnntrack.io.atomic` without pulling in pandas.
"""

_EXPORTS = {
    "read_event": "gnntrack.io.trackml", "read_events": "gnntrack.io.trackml",
    "read_table": "gnntrack.io.trackml", "write_event": "gnntrack.io.trackml",
    "list_event_prefixes": "gnntrack.io.trackml", "validate_event": "gnntrack.io.trackml",
    "event_summary": "gnntrack.io.summary", "Event": "gnntrack.io.event",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gnntrack.io' has no attribute {name!r}")
