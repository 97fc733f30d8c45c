"""The driver: one loop that advances a group of grid points chunk by chunk and tells observers.

``meta-evo run``, ``sweep`` and ``resume`` are compositions of :func:`drive`: the engine's chunk
program (:func:`meta_evo.engine.make_grid_chunk`; a single run is a group of one point) is
called for ``min(chunk, total - gen)`` generations at a time, and after every call each
observer's ``on_chunk`` sees a :class:`Chunk` (the states after it, the metrics on the host,
the generation reached, the seconds it took). What a composition does between chunks is its
observers: the single run's metrics log, progress bar and orbax checkpoints
(:mod:`meta_evo.single_run`), the sweep's metric history, measurement at ``sweep.measure_every``,
progress line and sweep state (:mod:`meta_evo.sweep`).

Stopping: ``stop(gen)`` is asked after every chunk (a caught SIGINT/SIGTERM, or a test's
``stop_at``); when it returns a signal number before the end, the chunk is marked
``stopping`` (so a checkpointing observer saves), the observers run, and the drive returns
with ``interrupted`` set. An observer may also raise to stop (the sweep state does, after its
save, when a signal arrived).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import jax
import numpy as np


@dataclass
class Chunk:
    """One call of the chunk program, as the observers see it."""

    start: int  # generation before the call
    gen: int  # generation after it
    total: int  # generations of the drive
    states: object  # the group's states after the call (device arrays, leading axis [B])
    metrics: dict  # host arrays [B, n]
    seconds: float  # wall time of the call (the first call of a program includes its compile)
    first: bool  # the first call of this drive
    stopping: int | None = None  # a signal number when the drive stops after this chunk early

    @property
    def n(self) -> int:
        return self.gen - self.start

    @property
    def done(self) -> bool:
        return self.gen >= self.total


class Observer:
    """Something that acts between chunks. Override :meth:`on_chunk` (and :meth:`on_end`)."""

    def on_chunk(self, c: Chunk) -> None:  # pragma: no cover - interface
        pass

    def on_end(self, states, gen: int, interrupted: int | None) -> None:
        pass


class OnChunk(Observer):
    """An observer from a function of the chunk."""

    def __init__(self, fn: Callable[[Chunk], None]):
        self.fn = fn

    def on_chunk(self, c: Chunk) -> None:
        self.fn(c)


@dataclass
class Drive:
    """What :func:`drive` returns: the states at ``gen`` and the signal that stopped it."""

    states: object
    gen: int
    interrupted: int | None = None
    first_seconds: float | None = None  # the first call's wall time (compile included)


def drive(program: Callable, states, pressures, diversities, *, start: int, total: int,
          chunk: int, observers: Sequence[Observer] = (),
          stop: Callable[[int], int | None] | None = None) -> Drive:
    """Advance ``states`` (a group ``[B]``) from generation ``start`` to ``total``.

    ``program(states, pressures [B], diversities [B], n) -> (states, metrics [B, n])`` is the
    engine's chunk program; ``n = min(chunk, total - gen)``, so a ``chunk`` that divides the
    remaining generations gives one static length (one compile)."""
    pressures = np.asarray(pressures, np.float32)
    diversities = np.asarray(diversities, np.int32)
    gen, first_s, interrupted = start, None, None
    while gen < total:
        n = min(chunk, total - gen)
        t = time.perf_counter()
        states, metrics = program(states, pressures, diversities, n)
        metrics = jax.device_get(metrics)
        dt = time.perf_counter() - t
        first_s = dt if first_s is None else first_s
        c = Chunk(start=gen, gen=gen + n, total=total, states=states,
                  metrics={k: np.asarray(v) for k, v in metrics.items()}, seconds=dt,
                  first=gen == start)
        gen += n
        if stop is not None and not c.done:
            c.stopping = stop(gen)
        for o in observers:
            o.on_chunk(c)
        if c.stopping is not None:
            interrupted = c.stopping
            break
    for o in observers:
        o.on_end(states, gen, interrupted)
    return Drive(states=states, gen=gen, interrupted=interrupted, first_seconds=first_s)
