"""Stop signals: Ctrl-C (SIGINT) and, in a worker, SIGTERM become one KeyboardInterrupt in the
main thread, so that the running trial is handed back and the process stops."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Iterator, Sequence


class _StopSignals:
    """Stop signals (SIGINT: Ctrl-C; SIGTERM in a worker) raise KeyboardInterrupt in the main
    thread, so that the running trial is handed back (`run_trial`) and the process stops.

    Python drops a KeyboardInterrupt raised while the interpreter runs a gc callback or __del__
    (jax registers a gc callback, so a stop request could vanish), so it is raised again every
    `resend_s` seconds until the process has taken it (`take`); after that the signals are
    ignored, so that they cannot interrupt the hand-back: a terminal's Ctrl-C reaches every local
    worker, and the parent's stop request follows it.
    """

    def __init__(self, resend_s: float = 1.0):
        self.resend_s = resend_s
        self.signum: int | None = None
        self.taken = threading.Event()

    def _handler(self, signum, frame):
        if self.taken.is_set():
            return
        if self.signum is None:
            self.signum = signum
            threading.Thread(target=self._resend, name="gnntrack-stop", daemon=True).start()
        raise KeyboardInterrupt(signal.Signals(self.signum).name)

    def _resend(self) -> None:
        while not self.taken.wait(self.resend_s):
            os.kill(os.getpid(), self.signum)

    def take(self) -> None:
        self.taken.set()


_stop_signals: _StopSignals | None = None  # while `stop_on_signals` is active


@contextlib.contextmanager
def stop_on_signals(signums: Sequence[int]) -> Iterator[None]:
    """Handles `signums` with a _StopSignals for the block (main thread only; restores the
    previous handlers after it)."""
    global _stop_signals
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopper, previous = _StopSignals(), {s: signal.getsignal(s) for s in signums}
    for signum in signums:
        signal.signal(signum, stopper._handler)
    _stop_signals = stopper
    try:
        yield
    finally:
        stopper.take()
        _stop_signals = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def take_stop() -> None:
    """This process is stopping (it caught the KeyboardInterrupt): no further one from its stop
    signals."""
    if _stop_signals is not None:
        _stop_signals.take()
