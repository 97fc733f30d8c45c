"""How a signal stops a writer: SIGINT and SIGTERM raise a flag (:class:`Signals`) that the
run's and the sweep's drives read between chunks (:func:`signal_received`); they save a
checkpoint and stop with exit code ``128 + signum`` (130 SIGINT, 143 SIGTERM). A second signal
aborts at once."""

from __future__ import annotations

import signal
import sys


class Signals:
    """Context manager: SIGINT and SIGTERM set ``self.received`` (the signal number) instead of
    killing the process; the driver checks it between chunks. A second signal aborts at once
    (KeyboardInterrupt for SIGINT, SystemExit(143) for SIGTERM). Inactive outside the main thread
    or when ``enabled`` is false."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    active: list = []  # entered instances, innermost last (see :func:`signal_received`)

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled, self.received = enabled, None
        self.stream = stream or sys.stderr
        self._old = {}

    def _handle(self, signum, frame):
        if self.received is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.received = signum
        self.stream.write(f"\nmeta-evo: {signal.Signals(signum).name} received; saving a "
                          "checkpoint at the end of this chunk (send it again to abort now)\n")
        self.stream.flush()

    def __enter__(self):
        import threading
        if self.enabled and threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        Signals.active.append(self)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        if self in Signals.active:
            Signals.active.remove(self)
        return False


def signal_received() -> int | None:
    """The signal number the innermost entered :class:`Signals` caught, else None (what a
    driver that does not hold the context, e.g. the sweep's checkpoint store, checks)."""
    return Signals.active[-1].received if Signals.active else None
