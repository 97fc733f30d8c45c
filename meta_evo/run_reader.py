"""A single run's directory opened read-only (``meta_evo.load_run``): its config, metrics rows,
summary and checkpoints (through the run directory's one store, :mod:`meta_evo.snapshot`)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from meta_evo.config import read_run_config
from meta_evo.errors import RunDirError
from meta_evo.rundir.io import read_jsonl


class Run:
    """A run directory opened read-only: config, metrics rows, summary and checkpoints.

    ``config``: the :class:`~meta_evo.config.Config` of ``config.yaml``; ``metrics``: the rows of
    ``metrics.jsonl``; ``summary``: ``summary.json`` or ``None`` while unfinished; ``steps``:
    generations with a finalized checkpoint; ``restore(step)``: that checkpoint's ``MetaState``.
    """

    def __init__(self, path: str | Path):
        from meta_evo.rundir.layout import kind_of

        self.path = Path(path)
        kind = kind_of(self.path)
        if kind != "run":
            raise RunDirError(f"{self.path}: a {kind} directory; analysis reads a single run's "
                              "checkpoints (a sweep's results: meta_evo.load_sweep)")
        self.config = read_run_config(self.path)
        self.metrics = read_jsonl(self.path / "metrics.jsonl")
        s = self.path / "summary.json"
        self.summary = json.loads(s.read_text()) if s.is_file() else None

    def __repr__(self):
        return (f"Run({str(self.path)!r}, generations={len(self.metrics)}/"
                f"{self.config.meta.generations}, checkpoints={self.steps})")

    @functools.cached_property
    def _ckpt(self):
        from meta_evo.snapshot import run_store
        return run_store(self.path, write=False) if (self.path / "checkpoints").is_dir() else None

    @property
    def steps(self) -> list[int]:
        return self._ckpt.steps() if self._ckpt is not None else []

    @functools.cached_property
    def meta(self):
        """The :class:`~meta_evo.meta.Meta` built from the config (family, agent, learner)."""
        from meta_evo.meta import Meta
        return Meta(self.config)

    def _check(self, step: int | None) -> int:
        steps = self.steps
        if not steps:
            raise RunDirError(f"{self.path}: no checkpoints")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise RunDirError(f"{self.path}: no checkpoint at generation {step} "
                              f"(kept: {', '.join(map(str, steps))})")
        return step

    def read(self, step: int | None = None) -> tuple:
        """``(MetaState, metrics lines)`` of checkpoint ``step`` (default: the newest),
        verified. Raises :class:`~meta_evo.rundir.store.CheckpointError` when it is damaged."""
        from meta_evo.snapshot import read_run
        return read_run(self._ckpt, self._check(step), self.meta)

    def restore(self, step: int | None = None):
        """The ``MetaState`` of checkpoint ``step`` (default: the newest), verified."""
        return self.read(step)[0]

    def checkpoint_metrics(self, step: int | None = None) -> list[dict]:
        """The metrics rows stored in checkpoint ``step`` (generations 1..step)."""
        return [json.loads(x) for x in self.read(step)[1]]

    def mean_theta(self, step: int | None = None) -> np.ndarray:
        """The strategy mean ``theta [D_theta]`` at checkpoint ``step``."""
        return np.asarray(self.meta.mean_theta(self.restore(step)))


def load_run(path: str | Path) -> Run:
    """Open a run directory for analysis (nothing is written)."""
    return Run(path)
