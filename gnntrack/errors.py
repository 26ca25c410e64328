"""Error types raised at the edges (files, configs, CLI flags).

Every error names the offending file, column or key in one message, so that the CLI can print it
without a traceback.
"""


class GnnTrackError(Exception):
    """Base class for errors the CLI reports as one clear line (exit code 2)."""


class InputError(GnnTrackError, ValueError):
    """Malformed or missing input data (files, columns, values)."""


class ConfigError(GnnTrackError, KeyError):
    """Unknown or invalid experiment-config key / value."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
