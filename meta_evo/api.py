"""The public Python API; the CLI is a thin layer over these functions.

>>> cfg = meta_evo.load_config()                   # built-in quickstart
>>> res = meta_evo.run(cfg, out="runs/demo")       # RunResult
>>> res.metrics[-1]["fitness_mean"], res.mean_theta.shape   # (float, (D_theta,))
>>> res = meta_evo.resume("runs/demo")             # continue a killed or interrupted run
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import jax
import numpy as np

from meta_evo.config import Config
from meta_evo.meta import Meta
from meta_evo.runs import (
    Progress,
    RunDirError,
    RunResult,
    Signals,
    append_jsonl,
    create_run_dir,
    metrics_rows,
    platform_info,
    read_run_config,
    to_py,
    versions,
    write_config,
    write_json,
    write_lines,
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
        meta: Meta | None = None, stop_at: int | None = None) -> RunResult:
    """Run one meta-evolution as configured; write a run directory when ``out`` is given.

    Generations run in jitted chunks of ``cfg.meta.chunk`` (a ``lax.scan``); between chunks the
    driver appends to ``metrics.jsonl``, logs, updates the progress line and, with a run
    directory, writes orbax checkpoints (generation 0, every ``cfg.checkpoint.every`` generations
    rounded up to a chunk boundary, and the last). SIGINT/SIGTERM stop the run at the next chunk
    boundary with a checkpoint (``result.interrupted`` is the signal number). ``stop_at`` acts
    like a signal arriving at generation ``stop_at`` (for tests). Returns a :class:`RunResult`
    (metrics per generation, final mean ``theta [D_theta]``, summary).
    """
    out_dir = create_run_dir(out) if out is not None else None
    meta = meta or Meta(cfg)
    state = meta.init(jax.random.PRNGKey(cfg.seed))
    ckpt = None
    if out_dir is not None:
        write_config(out_dir, cfg)
        from meta_evo.checkpoint import Checkpoints
        ckpt = Checkpoints(out_dir / "checkpoints", keep=cfg.checkpoint.keep)
        ckpt.save(0, state, [], cfg.to_dict())
    return _drive(cfg, meta, state, 0, [], out_dir, ckpt, progress, stop_at)


def resume(run_dir: str | Path, *, progress: bool | None = None, meta: Meta | None = None,
           stop_at: int | None = None, warn=None) -> RunResult:
    """Continue the run in ``run_dir`` from its latest good checkpoint and finish it.

    The result equals the uninterrupted run's bitwise on the same platform: the state (PRNG key
    included) comes from the checkpoint, the chunks have the same sizes, and ``metrics.jsonl`` is
    first rewritten to the checkpoint's rows. A damaged newest checkpoint is reported (one
    ``warn`` line each; default: stderr) and moved to ``checkpoints.damaged/`` for the previous
    good one. Raises :class:`RunDirError` (one line) when the directory is missing, holds no
    usable checkpoint, another process holds its lock (:mod:`meta_evo.lock`), or its
    ``config.yaml`` differs from the checkpoint's config. A finished
    run is left as it is (``result.resumed_from == result.generation``).
    """
    from meta_evo.checkpoint import Checkpoints

    warn = warn or _warn
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    ck = run_dir / "checkpoints"
    # e.g. a sweep directory, or killed before its first checkpoint: refused before building
    # anything or taking the lock (which would create RUN_DIR/.lock)
    if not ck.is_dir() or not any(p.name.isdigit() or ".orbax-checkpoint-tmp" in p.name
                                  for p in ck.iterdir()):
        raise RunDirError(f"{run_dir}: no checkpoint to resume from (start a new run)")
    from meta_evo.lock import acquire

    acquire(run_dir)  # one writer at a time; held until the process exits
    built = [meta]

    def get_meta():  # built after the config check: a refused resume stays quick
        built[0] = built[0] or Meta(cfg)
        return built[0]

    ckpt = Checkpoints(run_dir / "checkpoints", keep=cfg.checkpoint.keep)
    for p in ckpt.partial_writes():
        dest = ckpt.quarantine(p)
        warn(f"{p.name}: unfinished checkpoint write (process killed while saving); "
             f"moved to {dest}")
    step, state, extra = latest_good(ckpt, get_meta, cfg, warn, move_damaged=True)
    meta = get_meta()
    # restored arrays are committed to a device, fresh ones are not: jit would compile the chunk
    # a second time for them; a host round trip gives the same (uncommitted) arguments as run()
    state = jax.tree.map(jax.numpy.asarray, jax.device_get(state))
    lines = list(extra["metrics"])
    if step >= cfg.meta.generations and (run_dir / "summary.json").is_file():
        rows = [json.loads(x) for x in lines]
        summary = json.loads((run_dir / "summary.json").read_text())
        return RunResult(out_dir=run_dir, metrics=rows, summary=summary,
                         mean_theta=np.asarray(meta.mean_theta(state)),
                         best_theta=np.asarray(state.best_theta), state=state, meta=meta,
                         generation=step, resumed_from=step, noop=True)
    write_lines(run_dir / "metrics.jsonl", lines)
    return _drive(cfg, meta, state, step, lines, run_dir, ckpt, progress, stop_at,
                  resumed_from=step)


def _warn(msg: str) -> None:
    sys.stderr.write(f"meta-evo: warning: {msg}\n")
    sys.stderr.flush()


def latest_good(ckpt, meta, cfg: Config, warn, move_damaged: bool = False):
    """``(generation, state, extra)`` of the newest checkpoint that restores and verifies.

    ``meta``: a :class:`Meta` or a function returning one (built only once a checkpoint's config
    matched). Damaged ones are reported through ``warn`` (one line each) and, with
    ``move_damaged``, moved out of the way; a checkpoint whose config differs from ``cfg``
    raises RunDirError.
    """
    from meta_evo.checkpoint import CheckpointError, abstract_state, check_config

    steps = ckpt.steps()
    where = ckpt.directory.parent
    if not steps:
        raise RunDirError(f"{where}: no checkpoint to resume from (start a new run)")
    target = None
    for i, step in enumerate(reversed(steps)):
        try:
            extra = ckpt.read_extra(step)
            check_config(where, f"checkpoint {step}", extra["config"], cfg)
            if target is None:
                target = abstract_state(meta() if callable(meta) else meta, cfg.seed)
            state, extra = ckpt.restore(step, target, extra)
            return step, state, extra
        except CheckpointError as e:
            older = steps[len(steps) - 2 - i] if i + 1 < len(steps) else None
            action = ""
            if move_damaged:
                action = f"; moved to {ckpt.quarantine(step)}"
            nxt = f"trying generation {older}" if older is not None else "no older checkpoint"
            warn(f"checkpoint at generation {step} is damaged ({e}){action}; {nxt}")
    raise RunDirError(f"{where}: no readable checkpoint ({len(steps)} damaged)")


def _drive(cfg: Config, meta: Meta, state, start: int, lines: list[str], out_dir: Path | None,
           ckpt, progress: bool | None, stop_at: int | None,
           resumed_from: int | None = None) -> RunResult:
    """Run chunks from generation ``start`` to the end; ``lines`` are the metrics rows so far."""
    show = cfg.log.progress if progress is None else progress
    tb = None
    if out_dir is not None and cfg.log.tensorboard:
        from tensorboardX import SummaryWriter
        tb = SummaryWriter(str(out_dir / "tb"), purge_step=start + 1 if start else None)

    m = cfg.meta
    pressure = np.float32(m.pressure)
    diversity = np.int32(cfg.task.diversity)
    cfg_dict = cfg.to_dict()
    lines = list(lines)
    rows_all: list[dict] = [json.loads(x) for x in lines]
    wall0 = float(rows_all[-1].get("wall_s") or 0.0) if rows_all else 0.0
    bar = Progress(m.generations, show)
    t0 = time.perf_counter()
    compile_s = 0.0
    gen = start
    env_steps = gen * meta.env_steps_per_generation
    interrupted = None
    with Signals(enabled=ckpt is not None) as sig:
        while gen < m.generations:
            n = min(m.chunk, m.generations - gen)
            tc = time.perf_counter()
            state, metrics = meta.jit_chunk(state, pressure, diversity, n)
            jax.block_until_ready(metrics)
            dt = time.perf_counter() - tc
            if gen == start:
                compile_s = dt  # first chunk of this process includes compilation
            wall = wall0 + time.perf_counter() - t0
            rows = metrics_rows(metrics, gen, env_steps, meta.env_steps_per_generation, wall)
            prev, gen = gen, gen + n
            env_steps += n * meta.env_steps_per_generation
            for r in rows:
                r["steps_per_s"] = round(n * meta.env_steps_per_generation / dt, 1)
            rows_all += rows
            new_lines = [json.dumps(r) for r in rows]
            lines += new_lines
            if out_dir is not None:
                append_jsonl(out_dir / "metrics.jsonl", rows)
            if tb is not None:
                for r in rows:
                    for k, v in r.items():
                        if k != "generation" and isinstance(v, (int, float)):
                            tb.add_scalar(k, v, r["generation"])
                tb.flush()
            last = rows[-1]
            bar.update(gen, last["fitness_best"] or float("nan"),
                       last["fitness_mean"] or float("nan"), last["steps_per_s"], wall - wall0)
            done = gen >= m.generations
            due = done or gen // cfg.checkpoint.every > prev // cfg.checkpoint.every
            if stop_at is not None and gen >= stop_at and sig.received is None and not done:
                sig.received = int(signal.SIGINT)
            stop = sig.received is not None and not done
            if ckpt is not None and (due or stop):
                ckpt.save(gen, state, lines, cfg_dict)
            if stop:
                interrupted = sig.received
                break
    bar.close()
    if tb is not None:
        tb.close()
    wall = time.perf_counter() - t0
    mean_theta = np.asarray(meta.mean_theta(state))
    result = RunResult(out_dir=out_dir, metrics=rows_all, summary={}, mean_theta=mean_theta,
                       best_theta=np.asarray(state.best_theta), state=state, meta=meta,
                       generation=gen, interrupted=interrupted, resumed_from=resumed_from)
    if interrupted is not None:
        _warn_interrupted(out_dir, gen)
        return result
    result.summary = {
        "generations": gen,
        "final": {k: v for k, v in rows_all[-1].items()},
        "best_fitness": to_py(state.best_fitness),
        "mean_theta": {k: to_py(v) for k, v in meta.learner.describe(mean_theta).items()},
        "env_steps": env_steps,
        "wall_s": round(wall0 + wall, 3),
        "compile_s": round(compile_s, 3),
        "env_steps_per_s": round((env_steps - start * meta.env_steps_per_generation)
                                 / max(wall, 1e-9), 1),
        "resumed_from": resumed_from,
        "checkpoints": ckpt.steps() if ckpt is not None else [],
        "versions": versions(),
        "platform": platform_info(),
    }
    if out_dir is not None:
        write_json(out_dir / "summary.json", result.summary)
    return result


def _warn_interrupted(out_dir: Path, gen: int) -> None:
    sys.stderr.write(f"meta-evo: interrupted at generation {gen}; resume with: "
                     f"meta-evo resume {shlex.quote(str(out_dir))}\n")
    sys.stderr.flush()
