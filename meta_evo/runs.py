"""Run directories and the driver: jitted chunks of generations, Python only between them.

A run directory holds ``config.yaml`` (fully resolved), ``metrics.jsonl`` (one JSON object per
meta-generation), ``checkpoints/`` (orbax, see :mod:`meta_evo.checkpoint`), ``summary.json`` once
finished and, when asked, TensorBoard event files under ``tb/``. ``meta-evo run`` never overwrites
an existing run directory; ``meta-evo resume`` continues one. ``.lock`` (:mod:`meta_evo.lock`)
keeps a second process from writing a directory that one is writing.

Signals: while a run writes checkpoints, SIGINT and SIGTERM only raise a flag (:class:`Signals`);
the driver saves a checkpoint at the next chunk boundary and stops with exit code ``128 + signum``
(130 for SIGINT, 143 for SIGTERM). A second signal aborts at once. A sweep does the same at its
next per-arm checkpoint (:func:`signal_received`, :mod:`meta_evo.sweep_state`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from meta_evo.config import Config, dump_config
from meta_evo.errors import RunDirError  # noqa: F401 - re-exported

TIMING_FIELDS = ("wall_s", "steps_per_s")


def default_out(cfg: Config, kind: str = "run") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{kind}-{cfg.task.family}-{stamp}"


def create_run_dir(out: str | Path) -> Path:
    """Create ``out`` (and parents) and lock it (:mod:`meta_evo.lock`); refuse if it exists
    already, whatever it holds."""
    out = Path(out)
    try:
        exists = out.exists()
    except (OSError, ValueError) as e:  # e.g. a NUL byte or an unencodable name
        raise RunDirError(f"{str(out)!r}: not a usable path ({e})") from None
    if exists:
        from meta_evo.lock import holder

        pid = holder(out) if out.is_dir() else None
        if pid is not None:
            who = f"pid {pid}" if pid > 0 else "pid unknown"
            raise RunDirError(f"{out}: run directory exists already and is in use by another "
                              f"meta-evo process ({who}); choose another --out")
        raise RunDirError(f"{out}: run directory exists already; choose another --out "
                          f"(or `meta-evo resume {out}` to continue it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
    except OSError as e:
        raise RunDirError(f"{out}: cannot create run directory ({e.strerror})") from None
    from meta_evo.lock import acquire

    acquire(out)  # held until the process exits: no second writer (see meta_evo.lock)
    return out


def versions() -> dict:
    """meta-evo's, Python's and the computing libraries' versions (installed distributions,
    :mod:`importlib.metadata`; None for one that is not installed)."""
    from meta_evo.provenance import versions as _versions

    return _versions()


def provenance() -> dict:
    """What produced a result (``summary.json`` and ``report.json`` record it): meta-evo's
    version, the git commit when run from a checkout (None otherwise), :func:`versions`, the
    command line, the host and this process's start time (UTC, ISO 8601)."""
    from meta_evo.provenance import provenance as _provenance

    return _provenance()


def platform_info() -> dict:
    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": getattr(dev, "device_kind", str(dev)),
            "device_count": jax.device_count(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}


def to_py(x):
    """JSON-ready Python scalars from JAX / numpy values (NaN and inf become None)."""
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    return [to_py(v) for v in a]


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file, then rename): never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False))
    os.replace(tmp, path)


@dataclass
class RunResult:
    """What ``meta_evo.run`` returns.

    ``metrics``: one dict per generation; ``mean_theta``: the strategy mean ``[D_theta]``;
    ``best_theta``: best member seen ``[D_theta]``; ``summary``: what summary.json holds.
    """

    out_dir: Path | None
    metrics: list[dict]
    summary: dict
    mean_theta: np.ndarray
    best_theta: np.ndarray
    state: object = field(repr=False, default=None)
    meta: object = field(repr=False, default=None)
    generation: int = 0  # generations done
    interrupted: int | None = None  # the signal number that stopped the run early, else None
    resumed_from: int | None = None  # the checkpoint generation this process started from
    noop: bool = False  # resume found the run finished already and did nothing
    program: object = field(repr=False, default=None)  # the engine's chunk program it ran

    @property
    def exit_code(self) -> int:
        """0 when finished; ``128 + signum`` when stopped by a signal (130 SIGINT, 143 SIGTERM)."""
        return 0 if self.interrupted is None else 128 + int(self.interrupted)


def metrics_rows(metrics: dict, first_gen: int, env_steps_before: int, steps_per_gen: int,
                 wall_s: float) -> list[dict]:
    """Turn stacked chunk metrics (leading axis [n]) into one dict per generation."""
    host = {k: np.asarray(v) for k, v in metrics.items()}
    n = next(iter(host.values())).shape[0]
    rows = []
    for i in range(n):
        gen = first_gen + i + 1
        row = {"generation": gen}
        row.update({k: to_py(v[i]) for k, v in host.items()})
        row["env_steps"] = env_steps_before + (i + 1) * steps_per_gen
        row["wall_s"] = round(wall_s, 4)
        rows.append(row)
    return rows


def append_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_lines(path: Path, lines: list[str]) -> None:
    """Replace ``path`` atomically by ``lines`` (each without its newline)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a torn last line (a process killed mid-write) is ignored."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


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


def read_run_config(run_dir: Path) -> Config:
    """The config of an existing run directory; RunDirError (one line) when there is none."""
    try:
        is_dir, has_cfg = run_dir.is_dir(), (run_dir / "config.yaml").is_file()
    except (OSError, ValueError) as e:  # e.g. a NUL byte or an unencodable name
        raise RunDirError(f"{str(run_dir)!r}: not a usable path ({e})") from None
    if not is_dir:
        raise RunDirError(f"{run_dir}: no such run directory")
    if not has_cfg:
        raise RunDirError(f"{run_dir}: not a run directory (no config.yaml)")
    from meta_evo.config import load_config
    return load_config(run_dir / "config.yaml")


def write_config(out: Path, cfg: Config) -> None:
    tmp = out / "config.yaml.tmp"
    tmp.write_text(dump_config(cfg))
    os.replace(tmp, out / "config.yaml")
