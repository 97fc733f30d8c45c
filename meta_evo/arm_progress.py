"""A sweep arm's progress, its checkpoints and when the sweep stops.

:class:`ArmProgress` is what one arm has gathered: the group and generation reached, the group's
states, and the histories, measurements and thetas of the groups before. :class:`ArmCheckpoints`
writes it after every chunk to ``RUN_DIR/sweep_state/{arm}/`` through the run directory's one
store (:mod:`meta_evo.rundir.store`, :mod:`meta_evo.snapshot`; the newest :data:`KEEP` kept) and
reads the newest good one back for ``meta-evo resume``. It also decides when the sweep stops
(:meth:`ArmCheckpoints.stop_due`): a SIGINT/SIGTERM caught by :class:`meta_evo.rundir.signals.
Signals`, agreed by every process of a multi-host job, or the ``stop_after`` test hook. The
sweep asks it exactly as a single run asks its signal: through the driver's ``stop`` callback,
so the chunk that stops is checkpointed first, then :class:`SweepInterrupted` unwinds the sweep.

In a multi-host job every process holds one (each counts its saves and stops alike) but only
process 0 writes; on load the writer goes first (moving damage aside) and the others read after
it.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from meta_evo import snapshot
from meta_evo.rundir.store import CheckpointError, Store

KEEP = 2  # checkpoints kept per arm: the newest and the one a damaged newest falls back to
STATE_DIR, DAMAGED = "sweep_state", "sweep_state.damaged"


@dataclass
class ArmProgress:
    """What one arm has gathered (host arrays); a checkpoint holds exactly these fields."""

    gi: int = 0  # the group being evolved (groups before it are finished)
    gen: int = 0  # the generation that group reached
    states: object = None  # its states at ``gen`` (None at gen 0: they start fresh)
    chunks: list = field(default_factory=list)  # its metrics per chunk so far
    hist_parts: list = field(default_factory=list)  # per finished group: metric -> [B, gens]
    theta_parts: list = field(default_factory=list)  # per finished group: mean theta [B, D]
    meas_parts: dict = field(default_factory=dict)  # generation -> [measurement dicts]
    desc_parts: dict = field(default_factory=dict)  # generation -> [describe dicts]
    done_gens: int = 0  # point-generations evolved
    first_chunk_s: float | None = None  # the first chunk's wall time (its compile included)
    measure_s: float = 0.0  # wall time of the measurements

    def payload(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class SweepInterrupted(RuntimeError):
    """The sweep stopped after a checkpoint: a signal (``signum``), or the ``stop_after`` test
    hook (``signum`` None). ``meta-evo resume RUN_DIR`` continues it."""

    def __init__(self, message: str, signum: int | None = None):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """``128 + signum`` (130 SIGINT, 143 SIGTERM); 1 for the test hook."""
        return 128 + int(self.signum) if self.signum is not None else 1


class ArmCheckpoints:
    """The checkpoints of every arm of the sweep in ``run_dir`` (see the module docstring).

    ``metas``: ``{arm: Meta}``, whose ``init`` gives the structure a stored state is rebuilt
    into; ``stop_after``: stop after that many saves (tests); ``write``: this process writes.
    """

    def __init__(self, run_dir: str | Path, cfg, metas: dict, stop_after: int | None = None,
                 write: bool = True, warn=None):
        from meta_evo.distributed import process_count

        self.run_dir, self.cfg, self.metas = Path(run_dir).absolute(), cfg, dict(metas)
        self.stop_after, self.write, self.saves = stop_after, write, 0
        self.processes = process_count()
        self.warn = warn or (lambda m: sys.stderr.write(f"meta-evo: warning: {m}\n"))
        self._stores: dict[str, Store] = {}

    def store(self, arm: str) -> Store:
        if arm not in self._stores:
            import jax

            root = self.run_dir / STATE_DIR
            self._stores[arm] = Store(
                root / arm, self.run_dir / DAMAGED / arm, keep=KEEP, write=self.write,
                process=jax.process_index() if self.processes > 1 else None)
        return self._stores[arm]

    def save(self, arm: str, progress: ArmProgress) -> None:
        """Write the next checkpoint of ``arm`` (the writer only); every process counts it."""
        if self.write:
            store = self.store(arm)
            steps = store.steps()
            snapshot.save(store, steps[-1] + 1 if steps else 0, progress.payload(), self.cfg,
                          kind="sweep", arm=arm)
        self.saves += 1

    def stop_due(self, arm: str, upcoming_save: bool) -> int | None:
        """The signal to stop on after this checkpoint (every process agrees), -1 for the
        ``stop_after`` hook once the save ``upcoming_save`` counts reaches it, else None; when
        it says stop it tells the user how to resume."""
        from meta_evo.distributed import agreed_signal
        from meta_evo.rundir.signals import signal_received

        signum = agreed_signal(signal_received())
        hook = self.stop_after is not None and self.saves + upcoming_save >= self.stop_after
        if signum is not None:
            sys.stderr.write(f"meta-evo: sweep interrupted in the {arm} arm; resume with: "
                             f"meta-evo resume {shlex.quote(str(self.run_dir))}\n")
            sys.stderr.flush()
            return signum
        return -1 if hook else None

    def load(self, arm: str) -> ArmProgress | None:
        """The newest good progress of ``arm``, or None (the arm starts over). A damaged
        checkpoint is reported (one warning), moved aside and the previous one used; one whose
        config differs from the sweep's raises RunDirError."""
        if self.processes == 1:
            return self._load(arm)
        from meta_evo.distributed import barrier

        if not self.write:
            barrier(f"meta-evo sweep state {arm}")  # the writer has moved any damage aside
            return self._load(arm)
        try:
            return self._load(arm)
        finally:  # also when it raises: the others are not left waiting
            barrier(f"meta-evo sweep state {arm}")

    def _load(self, arm: str) -> ArmProgress | None:
        if not (self.run_dir / STATE_DIR / arm).is_dir():
            return None
        if arm not in self.metas:  # a programming error, not damage: never discard progress
            raise KeyError(f"sweep checkpoint: no state structure known for arm {arm!r}")

        def check(step, extra, payload):
            if extra.get("kind") != "sweep" or extra.get("arm") != arm:
                raise CheckpointError(f"metadata does not describe a sweep checkpoint of {arm}")
            if not isinstance(payload, dict) or set(payload) != set(ArmProgress().payload()):
                raise CheckpointError("not a sweep progress payload")

        found = snapshot.load(self.store(arm), self.cfg, snapshot.state_template(self.metas[arm]),
                              self.warn, lambda s: f"sweep checkpoint {arm}/{s}", check)
        return None if found is None else ArmProgress(**found[1])

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()


def check_resumable(run_dir: str | Path, cfg) -> None:
    """Refuse to resume the sweep in ``run_dir`` (RunDirError, one line) when its config.yaml
    differs from the config recorded with any arm's newest readable checkpoint (naming the
    key). Damaged checkpoints are skipped here; :meth:`ArmCheckpoints.load` reports them."""
    root = Path(run_dir) / STATE_DIR
    for arm in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        store = Store(root / arm, Path(run_dir) / DAMAGED / arm, write=False)
        try:
            for step in reversed(store.steps()):
                try:
                    extra = store.read_extra(step)
                except CheckpointError:
                    continue
                snapshot.check_config(run_dir, f"sweep checkpoint {arm}/{step}",
                                      extra.get("config"), cfg)
                break
        finally:
            store.close()
