"""The one checkpoint store of a run directory, for single runs and sweeps alike (orbax).

A checkpoint is a flat ``{name: ndarray}`` and a JSON ``extra``; what they encode (a
``MetaState``, a sweep's progress) is the caller's business (:mod:`meta_evo.snapshot`), so this
module needs no JAX. ``<directory>/<step>/`` holds two orbax items:

- ``arrays``: the flat arrays (``StandardSave``);
- ``extra``: the caller's JSON fields, plus ``format``, the dtype and shape of every array and a
  SHA-256 digest over the array bytes, their specs and the caller's ``structure`` (what the
  arrays mean), checked on every read (orbax itself does not notice every damaged data file).
  Descriptive fields (the config, the generation) are checked by the caller instead, so an
  older checkpoint whose config lacks a key added since still reads.

Writes are synchronous and atomic: orbax writes into ``<step>.orbax-checkpoint-tmp-*`` and
renames it when complete, so a write killed half-way never looks like a checkpoint; such a
partial write, and a checkpoint that fails to read or verify, is moved to the ``damaged``
directory (never deleted) and the previous checkpoint used (:meth:`Store.newest_good`).
Reading uses only JSON and raw array bytes: nothing in a directory someone hands over can run
code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

FORMAT = 2
ARRAYS, EXTRA = "arrays", "extra"
DIGESTED = ("format", "specs", "structure")  # the fields of extra the digest covers


class CheckpointError(RuntimeError):
    """One checkpoint cannot be used (partial, corrupted, inconsistent). One-line message."""


def one_line(e: BaseException, limit: int = 160) -> str:
    """An exception as one short line (its type unless it is a CheckpointError)."""
    text = " ".join(str(e).split()) or type(e).__name__
    text = f"{type(e).__name__}: {text}" if not isinstance(e, CheckpointError) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def digest(arrays: dict[str, np.ndarray], fields: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, then the JSON ``fields``."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(f"{name}{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


@contextlib.contextmanager
def quiet():
    """Silence orbax/tensorstore chatter (absl log lines, unraisable coroutine errors) while
    probing checkpoints that may be damaged: the caller reports one line itself."""
    loggers = [logging.getLogger(n) for n in ("absl", "orbax")]
    levels = [lg.level for lg in loggers]
    hook = sys.unraisablehook
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.unraisablehook = lambda *_: None
    try:
        yield
    finally:
        import gc
        gc.collect()  # finalize abandoned coroutines while the hook is muted
        sys.unraisablehook = hook
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


class Store:
    """Numbered checkpoints under ``directory``; damaged ones go to ``damaged``.

    ``keep``: the newest checkpoints kept (``None``: all), plus the steps in ``keep_steps``
    (a single run keeps generation 0, the meta-init); ``write=False`` opens for reading only
    (analysis, and the non-writing processes of a multi-host sweep); ``process``: this
    process's index in a multi-process job (its manager then acts alone, without barriers).
    """

    def __init__(self, directory: str | Path, damaged: str | Path, *, keep: int | None = None,
                 keep_steps: tuple[int, ...] = (), write: bool = True,
                 process: int | None = None):
        import orbax.checkpoint as ocp
        from orbax.checkpoint import checkpoint_managers as cm

        self.ocp = ocp
        self.directory, self.damaged = Path(directory).absolute(), Path(damaged).absolute()
        self.write = write
        policy = None
        if keep is not None:
            rules = [cm.LatestN(n=keep)] + ([cm.CustomSteps(steps=list(keep_steps))]
                                            if keep_steps else [])
            policy = rules[0] if len(rules) == 1 else cm.AnyPreservationPolicy(rules)
        multi = {}
        if process is not None:
            multi["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
                primary_host=process, active_processes={process})
        if write:  # made here: orbax cannot create it for one of several processes
            self.directory.mkdir(parents=True, exist_ok=True)
        with quiet():  # read_only logs a warning about save_interval_steps
            opts = ocp.CheckpointManagerOptions(
                enable_async_checkpointing=False, create=False, read_only=not write,
                preservation_policy=policy, cleanup_tmp_directories=False, **multi)
            self.mgr = ocp.CheckpointManager(self.directory, item_names=(ARRAYS, EXTRA),
                                             options=opts)

    def steps(self) -> list[int]:
        """The finalized checkpoints on disk, ascending."""
        self.mgr.reload()
        return sorted(int(s) for s in self.mgr.all_steps())

    def save(self, step: int, arrays: dict[str, np.ndarray], extra: dict) -> None:
        """Write checkpoint ``step`` (blocking; atomic; prunes old ones)."""
        specs = {k: [np.asarray(a).dtype.str, list(np.shape(a))] for k, a in arrays.items()}
        fields = {**extra, "format": FORMAT, "specs": specs}
        fields["sha256"] = digest(arrays, {k: fields.get(k) for k in DIGESTED})
        ocp = self.ocp
        self.mgr.save(int(step), force=True, args=ocp.args.Composite(
            **{ARRAYS: ocp.args.StandardSave(dict(arrays)), EXTRA: ocp.args.JsonSave(fields)}))
        self.mgr.wait_until_finished()

    def read_extra(self, step: int) -> dict:
        """The JSON item of ``step``. Raises CheckpointError."""
        ocp = self.ocp
        try:
            with quiet():
                out = self.mgr.restore(step, args=ocp.args.Composite(
                    **{EXTRA: ocp.args.JsonRestore()}))
            extra = dict(out[EXTRA])
        except Exception as e:  # noqa: BLE001 - any failure means this checkpoint is unusable
            raise CheckpointError(one_line(e)) from None
        if extra.get("format") != FORMAT or not isinstance(extra.get("specs"), dict):
            raise CheckpointError(f"checkpoint {step}: not written by this store (format "
                                  f"{extra.get('format')!r})")
        return extra

    def read(self, step: int, extra: dict) -> dict[str, np.ndarray]:
        """The arrays of ``step``, verified against the digest in ``extra``."""
        ocp = self.ocp
        try:
            specs = extra["specs"]
            if any(np.dtype(dt).kind not in "biufc" for dt, _ in specs.values()):
                raise CheckpointError("holds a non-numeric array")
            target = {k: np.empty(shape, np.dtype(dt)) for k, (dt, shape) in specs.items()}
            arrays = {}
            if target:
                with quiet():
                    out = self.mgr.restore(step, args=ocp.args.Composite(
                        **{ARRAYS: ocp.args.StandardRestore(target)}))
                arrays = {k: np.asarray(v) for k, v in out[ARRAYS].items()}
            ok = digest(arrays, {k: extra.get(k) for k in DIGESTED}) == extra.get("sha256")
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(one_line(e)) from None
        if not ok:
            raise CheckpointError("bytes do not match the stored SHA-256 digest")
        return arrays

    def partial_writes(self) -> list[Path]:
        """Unfinished writes (orbax temporary directories) left by a killed process."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if ".orbax-checkpoint-tmp" in p.name)

    def quarantine(self, path_or_step) -> Path:
        """Move a damaged checkpoint (or a partial write) into ``damaged``; never deleted."""
        src = (self.directory / str(path_or_step) if isinstance(path_or_step, int)
               else Path(path_or_step))
        self.damaged.mkdir(parents=True, exist_ok=True)
        dest, i = self.damaged / src.name, 1
        while dest.exists():
            dest, i = self.damaged / f"{src.name}.{i}", i + 1
        shutil.move(str(src), str(dest))
        self.mgr.reload()
        return dest

    def newest_good(self, accept: Callable[[int, dict, dict], object], warn,
                    label: Callable[[int], str]):
        """``(step, accepted)`` of the newest checkpoint that reads, verifies and that
        ``accept(step, extra, arrays)`` turns into a value (it raises CheckpointError for a
        checkpoint it cannot use; any other error propagates: e.g. a config that differs), or
        None when there is none. Partial writes and damaged checkpoints are moved aside (when
        writing) and reported through ``warn`` (one line each); ``label(step)`` names one."""
        if self.write:
            for p in self.partial_writes():
                warn(f"{p.name}: unfinished checkpoint write (process killed while saving); "
                     f"moved to {self.quarantine(p)}")
        steps = self.steps()
        for i, step in enumerate(reversed(steps)):
            try:
                extra = self.read_extra(step)
                return step, accept(step, extra, self.read(step, extra))
            except CheckpointError as e:
                older = steps[len(steps) - 2 - i] if i + 1 < len(steps) else None
                moved = f"; moved to {self.quarantine(step)}" if self.write else ""
                nxt = f"using {label(older)}" if older is not None else "no older one"
                warn(f"{label(step)} is damaged ({e}){moved}; {nxt}")
        return None

    def close(self) -> None:
        self.mgr.close()
