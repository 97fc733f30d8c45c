"""The public Python API; the CLI is a thin layer over these functions.

>>> cfg = meta_evo.load_config()                   # built-in quickstart
>>> res = meta_evo.run(cfg, out="runs/demo")       # RunResult
>>> res.metrics[-1]["fitness_mean"], res.mean_theta.shape   # (float, (D_theta,))
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax
import numpy as np

from meta_evo.config import Config
from meta_evo.meta import Meta
from meta_evo.runs import (
    Progress,
    RunResult,
    append_jsonl,
    create_run_dir,
    metrics_rows,
    platform_info,
    to_py,
    versions,
    write_config,
    write_json,
)

DEFAULT_CACHE = Path.home() / ".cache" / "meta-evo" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str:
    """Turn on JAX's persistent compilation cache (``$JAX_COMPILATION_CACHE_DIR`` or
    ``~/.cache/meta-evo/jax``): a Brax program compiled once is reused by later processes."""
    where = str(path or os.environ.get("JAX_COMPILATION_CACHE_DIR") or DEFAULT_CACHE)
    Path(where).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", where)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return where


def run(cfg: Config, out: str | Path | None = None, *, progress: bool | None = None,
        meta: Meta | None = None) -> RunResult:
    """Run one meta-evolution as configured; write a run directory when ``out`` is given.

    Generations run in jitted chunks of ``cfg.meta.chunk`` (a ``lax.scan``); between chunks the
    driver appends to ``metrics.jsonl``, logs, and updates the progress line. Returns a
    :class:`RunResult` (metrics per generation, final mean ``theta [D_theta]``, summary).
    """
    out_dir = create_run_dir(out) if out is not None else None
    show = cfg.log.progress if progress is None else progress
    meta = meta or Meta(cfg)
    if out_dir is not None:
        write_config(out_dir, cfg)
    tb = None
    if out_dir is not None and cfg.log.tensorboard:
        from tensorboardX import SummaryWriter
        tb = SummaryWriter(str(out_dir / "tb"))

    m = cfg.meta
    pressure = np.float32(m.pressure)
    diversity = np.int32(cfg.task.diversity)
    state = meta.init(jax.random.PRNGKey(cfg.seed))
    bar = Progress(m.generations, show)
    rows_all: list[dict] = []
    t0 = time.perf_counter()
    compile_s = 0.0
    gen, env_steps = 0, 0
    while gen < m.generations:
        n = min(m.chunk, m.generations - gen)
        tc = time.perf_counter()
        state, metrics = meta.jit_chunk(state, pressure, diversity, n)
        jax.block_until_ready(metrics)
        dt = time.perf_counter() - tc
        if gen == 0:
            compile_s = dt  # first chunk includes compilation
        wall = time.perf_counter() - t0
        rows = metrics_rows(metrics, gen, env_steps, meta.env_steps_per_generation, wall)
        gen += n
        env_steps += n * meta.env_steps_per_generation
        for r in rows:
            r["steps_per_s"] = round(n * meta.env_steps_per_generation / dt, 1)
        rows_all += rows
        if out_dir is not None:
            append_jsonl(out_dir / "metrics.jsonl", rows)
        if tb is not None:
            for r in rows:
                for k, v in r.items():
                    if k != "generation" and isinstance(v, (int, float)):
                        tb.add_scalar(k, v, r["generation"])
            tb.flush()
        last = rows[-1]
        bar.update(gen, last["fitness_best"] or float("nan"), last["fitness_mean"] or float("nan"),
                   last["steps_per_s"], wall)
    bar.close()
    if tb is not None:
        tb.close()
    wall = time.perf_counter() - t0
    mean_theta = np.asarray(meta.mean_theta(state))
    summary = {
        "generations": gen,
        "final": {k: v for k, v in rows_all[-1].items()},
        "best_fitness": to_py(state.best_fitness),
        "mean_theta": {k: to_py(v) for k, v in meta.learner.describe(mean_theta).items()},
        "env_steps": env_steps,
        "wall_s": round(wall, 3),
        "compile_s": round(compile_s, 3),
        "env_steps_per_s": round(env_steps / max(wall, 1e-9), 1),
        "versions": versions(),
        "platform": platform_info(),
    }
    if out_dir is not None:
        write_json(out_dir / "summary.json", summary)
    return RunResult(out_dir=out_dir, metrics=rows_all, summary=summary, mean_theta=mean_theta,
                     best_theta=np.asarray(state.best_theta), state=state, meta=meta)
