"""Run directories and the driver: jitted chunks of generations, Python only between them.

A run directory holds ``config.yaml`` (fully resolved), ``metrics.jsonl`` (one JSON object per
meta-generation), ``summary.json`` and, when asked, TensorBoard event files under ``tb/``.
An existing run directory is never overwritten.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from meta_evo.config import Config, dump_config

TIMING_FIELDS = ("wall_s", "steps_per_s")


class RunDirError(ValueError):
    """The run directory cannot be used (it exists, or it is not writable)."""


def default_out(cfg: Config, kind: str = "run") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{kind}-{cfg.task.family}-{stamp}"


def create_run_dir(out: str | Path) -> Path:
    """Create ``out`` (and parents); refuse if it exists already, whatever it holds."""
    out = Path(out)
    if out.exists():
        raise RunDirError(f"{out}: run directory exists already; choose another --out "
                          f"(or `meta-evo resume {out}` to continue it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
    except OSError as e:
        raise RunDirError(f"{out}: cannot create run directory ({e.strerror})") from None
    return out


def versions() -> dict:
    import brax
    import evosax
    import orbax.checkpoint as ocp

    return {"jax": jax.__version__, "evosax": getattr(evosax, "__version__", "0.3.2"),
            "brax": brax.__version__, "orbax": getattr(ocp, "__version__", "?"),
            "python": platform.python_version()}


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


class Progress:
    """A one-line progress display between chunks: generation, fitness, steps/s, ETA."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def update(self, gen: int, best: float, mean: float, steps_per_s: float, done_s: float):
        if not self.enabled:
            return
        rate = done_s / max(gen, 1)
        eta = rate * (self.total - gen)
        bar_n = int(20 * gen / max(self.total, 1))
        bar = "#" * bar_n + "." * (20 - bar_n)
        self.stream.write(f"\r[{bar}] gen {gen}/{self.total}  best {best:9.3f}  mean {mean:9.3f}"
                          f"  {steps_per_s / 1e3:7.1f}k steps/s  ETA {eta:5.0f}s")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


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


def write_config(out: Path, cfg: Config) -> None:
    tmp = out / "config.yaml.tmp"
    tmp.write_text(dump_config(cfg))
    os.replace(tmp, out / "config.yaml")
