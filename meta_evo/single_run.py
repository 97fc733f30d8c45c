"""A single run: one meta-evolution in its own run directory, started or resumed.

>>> cfg = meta_evo.load_config()                   # built-in quickstart
>>> res = meta_evo.run(cfg, out="runs/demo")       # RunResult
>>> res.metrics[-1]["fitness_mean"], res.mean_theta.shape   # (float, (D_theta,))
>>> res = meta_evo.resume("runs/demo")             # continue a killed or interrupted run
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from meta_evo import snapshot
from meta_evo.config import Config, read_run_config, write_config
from meta_evo.driver import Chunk, Observer, drive
from meta_evo.engine import as_group, make_run_chunk, point_of
from meta_evo.errors import RunDirError
from meta_evo.meta import Meta
from meta_evo.progress import Progress
from meta_evo.provenance import platform_info, provenance, versions
from meta_evo.rundir import layout
from meta_evo.rundir.io import append_jsonl, to_py, write_json, write_lines
from meta_evo.rundir.signals import Signals


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


def run(cfg: Config, out: str | Path | None = None, *, progress: bool | None = None,
        meta: Meta | None = None, program=None, stop_at: int | None = None) -> RunResult:
    """Run one meta-evolution as configured; write a run directory when ``out`` is given.

    A single run is a grid of one point on the engine (:func:`meta_evo.engine.make_run_chunk`,
    the program ``meta-evo sweep`` runs, with the meta-population sharded over the local devices
    when it divides over them), driven by :func:`meta_evo.driver.drive` in chunks of
    ``cfg.meta.chunk`` generations (a ``lax.scan``). Between chunks its observers append to
    ``metrics.jsonl``, log, update the progress line and, with a run directory, write orbax
    checkpoints (generation 0, every ``cfg.checkpoint.every`` generations rounded up to a chunk
    boundary, and the last). SIGINT/SIGTERM stop the run at the next chunk boundary with a
    checkpoint (``result.interrupted`` is the signal number). ``stop_at`` acts like a signal
    arriving at generation ``stop_at`` (for tests). ``program``: a chunk program to reuse (a
    previous ``result.program`` of the same ``meta``: no new compile). Returns a
    :class:`RunResult` (metrics per generation, final mean ``theta [D_theta]``, summary).
    """
    _one_host()
    out_dir = layout.create(out, "run") if out is not None else None
    meta = meta or Meta(cfg)
    state = meta.init(jax.random.PRNGKey(cfg.seed))
    store = None
    if out_dir is not None:
        write_config(out_dir, cfg)
        store = snapshot.run_store(out_dir, cfg)
        snapshot.save_run(store, 0, state, [], cfg)
    return _drive(cfg, meta, program, state, 0, [], out_dir, store, progress, stop_at)


def resume(run_dir: str | Path, *, progress: bool | None = None, meta: Meta | None = None,
           program=None, stop_at: int | None = None, warn=None) -> RunResult:
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
    _one_host()
    warn = warn or _warn
    run_dir = Path(run_dir)
    kind = layout.kind_of(run_dir)
    if kind != "run":
        raise RunDirError(f"{run_dir}: a {kind} directory, not a single run's "
                          f"(meta-evo resume {run_dir} continues it)")
    cfg = read_run_config(run_dir)
    ck = run_dir / "checkpoints"
    # killed before its first checkpoint: refused before building anything or taking the lock
    if not ck.is_dir() or not any(p.name.isdigit() or ".orbax-checkpoint-tmp" in p.name
                                  for p in ck.iterdir()):
        raise RunDirError(f"{run_dir}: no checkpoint to resume from (start a new run)")
    from meta_evo.lock import acquire

    acquire(run_dir)  # one writer at a time; held until the process exits
    store = snapshot.run_store(run_dir, cfg)
    step, state, lines, meta = latest_good(store, meta, cfg, warn)
    if step >= cfg.meta.generations and (run_dir / "summary.json").is_file():
        rows = [json.loads(x) for x in lines]
        summary = json.loads((run_dir / "summary.json").read_text())
        return RunResult(out_dir=run_dir, metrics=rows, summary=summary,
                         mean_theta=np.asarray(meta.mean_theta(state)),
                         best_theta=np.asarray(state.best_theta), state=state, meta=meta,
                         generation=step, resumed_from=step, noop=True, program=program)
    write_lines(run_dir / "metrics.jsonl", lines)
    return _drive(cfg, meta, program, state, step, lines, run_dir, store, progress, stop_at,
                  resumed_from=step)


def _one_host() -> None:
    """A single run uses one host's devices (its meta-population sharded over them); a job of
    several processes (``jax.distributed``) runs sweeps, whose grid spans every host."""
    from meta_evo.distributed import process_count

    if process_count() > 1:
        raise RunDirError(f"a single run uses one host; this job has {process_count()} "
                          "processes (jax.distributed): run `meta-evo sweep` across hosts")


def _warn(msg: str) -> None:
    sys.stderr.write(f"meta-evo: warning: {msg}\n")
    sys.stderr.flush()


def latest_good(store, meta: Meta | None, cfg: Config, warn):
    """``(generation, state, metrics lines, meta)`` of the run's newest checkpoint that reads,
    verifies and was written with ``cfg`` (else RunDirError naming the key). Damaged ones are
    reported through ``warn`` (one line each) and moved to ``checkpoints.damaged/``. ``meta`` is
    built (None: from ``cfg``) only once a checkpoint's config matched."""
    built = [meta]

    def template():
        built[0] = built[0] or Meta(cfg)
        return snapshot.state_template(built[0])()

    found = snapshot.load(store, cfg, template, warn, snapshot.run_label, snapshot.check_run)
    if found is None:
        raise RunDirError(f"{store.directory.parent}: no readable checkpoint")
    step, payload, _ = found
    state = jax.tree.map(jnp.asarray, payload["state"])
    return step, state, list(payload["metrics"]), built[0] or Meta(cfg)


def _number(v) -> float:
    """A metrics value for display: None (a NaN or inf in ``metrics.jsonl``) is nan; 0.0 stays
    0.0."""
    return float("nan") if v is None else float(v)


def run_status(row: dict, total: int) -> str:
    """The progress text of a single run after the generation of ``row`` (a metrics row)."""
    return (f"gen {row['generation']}/{total}  best {_number(row.get('fitness_best')):.3f}  "
            f"mean {_number(row.get('fitness_mean')):.3f}")


class _RunLog(Observer):
    """The single run's metrics: rows per generation in memory, ``metrics.jsonl``, the trackers
    (:mod:`meta_evo.tracking`: TensorBoard, W&B) and the progress bar (:mod:`meta_evo.progress`;
    on resume the generations already run count as done, not into its rate)."""

    def __init__(self, cfg: Config, meta: Meta, start: int, lines: list[str],
                 out_dir: Path | None, show: bool):
        from meta_evo.tracking import open_trackers

        self.meta, self.out_dir = meta, out_dir
        self.total = cfg.meta.generations
        self.lines = list(lines)
        self.rows: list[dict] = [json.loads(x) for x in lines]
        self.wall0 = float(self.rows[-1].get("wall_s") or 0.0) if self.rows else 0.0
        spg = meta.env_steps_per_generation
        self.env_steps = start * spg
        self.bar = Progress(self.total * spg, enabled=show)
        self.bar.skip(start * spg)
        self.tracker = open_trackers(cfg, out_dir, "run", purge_step=start + 1 if start else None)
        self.t0 = time.perf_counter()

    def on_chunk(self, c: Chunk) -> None:
        spg = self.meta.env_steps_per_generation
        wall = self.wall0 + time.perf_counter() - self.t0
        rows = metrics_rows({k: v[0] for k, v in c.metrics.items()}, c.start, self.env_steps,
                            spg, wall)
        self.env_steps += c.n * spg
        for r in rows:
            r["steps_per_s"] = round(c.n * spg / c.seconds, 1)
        self.rows += rows
        self.lines += [json.dumps(r) for r in rows]
        if self.out_dir is not None:
            append_jsonl(self.out_dir / "metrics.jsonl", rows)
        for r in rows:
            self.tracker.scalars({k: v for k, v in r.items()
                                  if k != "generation" and isinstance(v, (int, float))},
                                 r["generation"])
        self.tracker.flush()
        self.bar.advance(c.n * spg, run_status(rows[-1], self.total))

    def on_end(self, states, gen: int, interrupted: int | None) -> None:
        self.bar.close()
        self.tracker.close()


class _RunCheckpoints(Observer):
    """Checkpoints of the run's one grid point: every ``checkpoint.every`` generations (at the
    chunk boundary that passes it), at the end, and when a signal stops the run."""

    def __init__(self, cfg: Config, store, log: _RunLog):
        self.cfg, self.store, self.log = cfg, store, log

    def on_chunk(self, c: Chunk) -> None:
        every = self.cfg.checkpoint.every
        if c.done or c.gen // every > c.start // every or c.stopping is not None:
            snapshot.save_run(self.store, c.gen, point_of(c.states), self.log.lines, self.cfg)


def _drive(cfg: Config, meta: Meta, program, state, start: int, lines: list[str],
           out_dir: Path | None, store, progress: bool | None, stop_at: int | None,
           resumed_from: int | None = None) -> RunResult:
    """Drive the run's one grid point from generation ``start`` to the end on the engine;
    ``lines`` are the metrics rows so far."""
    show = cfg.log.progress if progress is None else progress
    m = cfg.meta
    program = program or make_run_chunk(meta)
    log = _RunLog(cfg, meta, start, lines, out_dir, show)
    observers: list[Observer] = [log]
    if store is not None:
        observers.append(_RunCheckpoints(cfg, store, log))
    t0 = time.perf_counter()
    with Signals(enabled=store is not None) as sig:
        def stop(gen: int) -> int | None:
            if sig.received is None and stop_at is not None and gen >= stop_at:
                sig.received = int(signal.SIGINT)
            return sig.received

        d = drive(program, as_group(state), [m.pressure], [cfg.task.diversity], start=start,
                  total=m.generations, chunk=m.chunk, observers=observers, stop=stop)
    wall = time.perf_counter() - t0
    state = point_of(d.states)
    mean_theta = np.asarray(meta.mean_theta(state))
    result = RunResult(out_dir=out_dir, metrics=log.rows, summary={}, mean_theta=mean_theta,
                       best_theta=np.asarray(state.best_theta), state=state, meta=meta,
                       generation=d.gen, interrupted=d.interrupted, resumed_from=resumed_from,
                       program=program)
    if d.interrupted is not None:
        _warn_interrupted(out_dir, d.gen)
        return result
    result.summary = {
        "generations": d.gen,
        "final": {k: v for k, v in log.rows[-1].items()},
        "best_fitness": to_py(state.best_fitness),
        "mean_theta": {k: to_py(v) for k, v in meta.learner.describe(mean_theta).items()},
        "env_steps": log.env_steps,
        "wall_s": round(log.wall0 + wall, 3),
        "compile_s": round(d.first_seconds or 0.0, 3),
        "env_steps_per_s": round((log.env_steps - start * meta.env_steps_per_generation)
                                 / max(wall, 1e-9), 1),
        "resumed_from": resumed_from,
        "checkpoints": store.steps() if store is not None else [],
        "versions": versions(),
        "platform": platform_info(),
        "provenance": provenance(),
    }
    if out_dir is not None:
        write_json(out_dir / "summary.json", result.summary)
    return result


def _warn_interrupted(out_dir: Path, gen: int) -> None:
    sys.stderr.write(f"meta-evo: interrupted at generation {gen}; resume with: "
                     f"meta-evo resume {shlex.quote(str(out_dir))}\n")
    sys.stderr.flush()
