"""The sweep driver: every arm evolved and measured on a grid of selection pressures, through
the engine (:mod:`meta_evo.engine`: the compiled programs, the mesh, memory groups).

The grid is ``sweep.intensities x seeds x sweep.diversities`` (diversity outermost, then
intensity, then seed). Pressure is given as a selection intensity ``i`` and turned into the
strategy's raw pressure (elite fraction or Boltzmann beta) with
:func:`meta_evo.meta.pressure_for_intensity`; both go into the report.

Design (one compile per arm, bounded memory, a paired design):

- every grid point with seed index ``s`` starts from the same state
  ``meta.init(fold_in(PRNGKey(cfg.seed), s))`` whatever its pressure or diversity, so levels
  are compared on common random numbers;
- the engine's chunk program (``vmap(meta.run_chunk)`` with ``n`` static, the grid axis sharded
  over every local device) runs a group of grid points for ``n`` generations; the driver loops
  over chunks of generations (a progress line between chunks) and over groups of grid points
  sized to ``sweep.memory_budget_mb`` (a multiple of the device count); the last group is
  padded to the same size, so neither chunks nor groups recompile;
- the engine's measurement program (``vmap(make_measure(meta))``) measures every evolved mean
  ``theta`` at generation 0 (the meta-init theta: the no-learning baseline, measured once per
  seed), every ``sweep.measure_every`` generations and at the end, with one fixed measurement
  key (common random numbers across the grid);
- the control arm (``sweep.control``) evolves the same learner on the same grid with the same
  seeds, keys, ``theta`` layout and compute, differing only in its reward channel (``shuffled``:
  the returns its candidates earn on an independent task; ``blind``: zeros), or the
  ``amortized`` learner; every arm is measured with the given reward, through the learner arm's
  compiled program where the control embeds in it (``Learner.control_embedding``).

Multi-host JAX starts first when configured (:func:`meta_evo.engine.maybe_initialize_distributed`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from meta_evo.config import Config
from meta_evo.cpu_flags import cpu_workaround
from meta_evo.distributed import barrier, is_writer, process_count
from meta_evo.driver import Chunk, OnChunk, drive
from meta_evo.engine import (  # noqa: F401 - point_bytes and group_size re-exported
    grid_devices,
    group_size,
    groups,
    initial_states,
    make_grid_chunk,
    make_grid_measure,
    make_mesh,
    maybe_initialize_distributed,
    point_bytes,
)
from meta_evo.meta import Meta, pressure_for_intensity
from meta_evo.progress import ArmWork, Progress
from meta_evo.sweep_state import SweepCheckpoint, SweepInterrupted  # noqa: F401 - re-exported
from meta_evo.tracking import Tracker, chunk_scalars, open_trackers, track_sweep_report


@dataclass(frozen=True)
class Arm:
    """One arm of a sweep: ``name`` (``learner``, ``control`` or ``reference``), the learner
    ``kind``, the reward channel it is evolved with, and whether it is evolved on the whole
    task distribution (``unrestricted``: the reference arm of a shift experiment) instead of
    the config's training region."""

    name: str
    kind: str
    reward: str
    unrestricted: bool = False

    @property
    def label(self) -> str:
        base = self.kind if self.kind == "amortized" else f"{self.kind} (reward {self.reward})"
        return f"{base}, no training region" if self.unrestricted else base

    def config(self, cfg: Config) -> Config:
        """The config this arm evolves under: ``cfg``, or without its training region."""
        if not self.unrestricted:
            return cfg
        return cfg.replace(task=dataclasses.replace(cfg.task, train_region="none",
                                                    outside_share=0.0))



# --- the grid -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """Flat grid of G points; every field is a numpy array ``[G]``."""

    intensity: np.ndarray  # [G] float, selection intensity
    pressure: np.ndarray  # [G] float32, raw pressure (elite fraction or beta)
    seed: np.ndarray  # [G] int, seed index 0..S-1
    diversity: np.ndarray  # [G] int32, task diversity (0 = unlimited)
    level: np.ndarray  # [G] int, intensity level index 0..L-1
    div_index: np.ndarray  # [G] int, diversity level index

    @property
    def size(self) -> int:
        return int(self.intensity.shape[0])


def make_grid(cfg: Config) -> Grid:
    """The grid of ``cfg.sweep``: diversity outermost, then intensity, then seed."""
    sw, m = cfg.sweep, cfg.meta
    rows = [(di, li, s) for di in range(len(sw.diversities))
            for li in range(len(sw.intensities)) for s in range(sw.seeds)]
    di, li, s = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    ints = np.asarray(sw.intensities, np.float64)[li]
    raw = {i: float(pressure_for_intensity(m.selection, m.population, i))
           for i in sw.intensities}
    return Grid(intensity=ints, pressure=np.array([raw[i] for i in ints], np.float32),
                seed=s, diversity=np.asarray(sw.diversities, np.int32)[di], level=li,
                div_index=di)


def chunk_length(cfg: Config) -> int:
    """Generations per chunk: the largest ``n <= meta.chunk`` dividing the generation count
    (and ``sweep.measure_every``), so every chunk has the same static length (one compile)."""
    g = cfg.meta.generations
    period = math.gcd(g, cfg.sweep.measure_every) if cfg.sweep.measure_every else g
    return max(d for d in range(1, min(cfg.meta.chunk, period) + 1) if period % d == 0)


def measure_generations(cfg: Config) -> list[int]:
    """Generations at which every theta is measured: 0, each ``measure_every``, the end."""
    g, every = cfg.meta.generations, cfg.sweep.measure_every
    gens = {0, g}
    if every:
        gens.update(range(every, g, every))
    return sorted(gens)


# --- cost accounting ------------------------------------------------------------------------------
def measure_env_steps(meta: Meta) -> int:
    """Env steps of one ``make_measure`` call on one theta (rollouts counted, not physics)."""
    cfg, lr = meta.cfg, meta.learner
    ms, t = cfg.measure, cfg.task
    if getattr(meta, "rl2", False):
        # per held-out task: the lifetime and R reference policies (K-episode lifetimes of
        # which the first episode is read; the matrix re-scores the recorded last episode: no
        # env steps); per pool row a lifetime
        rows = ms.heldout_tasks * (1 + ms.reference_samples) * lr.K
        rows += getattr(ms, "pool_tasks", 0) * lr.K
        if getattr(t, "train_region", "none") != "none":
            rows += ms.heldout_tasks * lr.K  # the out-of-distribution rows
        return rows * lr.T
    k, p, e = lr.lifetime, lr.num_candidates, t.eval_episodes
    n_cols = ms.heldout_tasks + (int(meta.family.proxy_tasks().shape[0]) if ms.proxies else 0)
    per_task = (k * p if p else 0) + (k + 1) * e + n_cols * e + ms.reference_samples * e
    per_task += k * ms.alignment_samples
    steps = 1 if meta.family.name == "analytic" else t.episode_length
    return ms.heldout_tasks * per_task * steps


# --- the driver ---------------------------------------------------------------------------------
@dataclass
class ArmResult:
    """One learner evolved on the whole grid. Arrays have a leading grid axis ``[G]``."""

    learner: str  # the learner kind
    history: dict  # metric -> [G, generations] (meta-generation metrics, e.g. fitness_mean)
    measures: dict  # generation -> {kernel output -> [G, ...]}
    theta: np.ndarray  # [G, D_theta] evolved mean theta at the end
    describe: dict  # generation -> {name -> [G]} learner.describe of the mean theta
    env_steps: int
    wall_s: float
    first_chunk_s: float  # includes the compile of the chunk program
    measure_s: float  # includes the compile of the measure program
    group_size: int
    groups: int
    chunk: int
    traces: dict = field(default_factory=dict)  # {"chunk": n, "measure": n} traces (compiles)
    shared_measure: bool = False  # measured through the learner arm's program (no own compile)
    name: str = "learner"  # the arm: learner | control
    reward: str = "given"  # the reward channel it was evolved with
    label: str = ""  # e.g. "gru (reward shuffled)"


@dataclass
class SweepResult:
    """What :func:`sweep` returns. ``arms`` maps the arm name (``learner``, then ``control``)
    -> :class:`ArmResult`."""

    cfg: Config
    grid: Grid
    arms: dict
    out_dir: Path | None
    wall_s: float
    env_steps: int
    report: dict | None = None
    devices: int = 1  # local devices the grid axis was sharded over
    resumed: bool = False  # continued from checkpoints: wall_s counts this process only


def _describe(meta: Meta, thetas) -> dict:
    out = jax.vmap(meta.learner.describe)(jnp.asarray(thetas))
    return {k: np.asarray(v) for k, v in out.items()}


@dataclass
class ArmPrograms:
    """An arm's compiled programs and what they cost: see :func:`arm_programs`."""

    meta: Meta
    arm: Arm
    chunk_fn: object  # the engine's grid chunk program: vmap(run_chunk), n static
    measure_fn: object  # fn(thetas [B, D_arm], key, divs [B]) -> dict of [B, ...]
    measure_steps: int  # env steps of one measurement of one theta
    traces: dict  # {"chunk": n, "measure": n}, filled in as jax traces
    shared_measure: bool = False  # measured through another arm's program


def arm_programs(cfg: Config, arms: list[Arm], mesh=None) -> dict[str, ArmPrograms]:
    """Build each arm's programs on ``mesh`` (default: every local device on the grid axis;
    nothing compiles until first called). Every arm is measured with the given reward, so a
    control of the same learner (another reward channel) reuses the learner arm's measurement
    program as it is, and the amortized control does where the learner embeds it
    (``Learner.control_embedding``)."""
    mesh = make_mesh() if mesh is None else mesh
    out: dict[str, ArmPrograms] = {}
    first: ArmPrograms | None = None
    for arm in arms:
        meta = Meta(arm.config(cfg), arm.kind, arm.reward)
        traces: dict[str, int] = {}
        chunk_fn = make_grid_chunk(meta, traces, mesh)
        if first is None:
            prog = ArmPrograms(meta, arm, chunk_fn, make_grid_measure(meta, traces, mesh),
                               measure_env_steps(meta), traces)
            first = prog
        elif arm.kind == first.arm.kind:
            prog = ArmPrograms(meta, arm, chunk_fn, first.measure_fn, first.measure_steps,
                               traces, shared_measure=True)
        else:
            embed = first.meta.learner.control_embedding(meta.learner)
            if embed is not None:
                def measure_fn(thetas, key, divs, base=first.measure_fn, embed=embed):
                    return base(embed(thetas), key, divs)
                prog = ArmPrograms(meta, arm, chunk_fn, measure_fn, first.measure_steps,
                                   traces, shared_measure=True)
            else:
                prog = ArmPrograms(meta, arm, chunk_fn, make_grid_measure(meta, traces, mesh),
                                   measure_env_steps(meta), traces)
        out[arm.name] = prog
    return out


def arm_work(cfg: Config, grid: Grid, prog: ArmPrograms, size: int) -> ArmWork:
    """The env steps :func:`run_arm` does for one arm, group by group (the progress bar's
    schedule): generation 0 measured once per (seed, diversity) pair, then every real grid
    point of each group evolved and measured at :func:`measure_generations`."""
    parts = groups(grid.size, size)
    real = [int(np.unique(idx).shape[0]) if gi == len(parts) - 1 else int(idx.shape[0])
            for gi, idx in enumerate(parts)]
    pairs = np.unique(np.stack([grid.seed, grid.diversity], 1), axis=0).shape[0]
    return ArmWork(group_points=tuple(real), generations=cfg.meta.generations,
                   steps_per_generation=int(prog.meta.env_steps_per_generation),
                   measure_steps=int(prog.measure_steps),
                   measured=tuple(g for g in measure_generations(cfg) if g > 0),
                   init_thetas=int(pairs))


def run_arm(cfg: Config, grid: Grid, prog: ArmPrograms, size: int, *,
            bar: Progress | None = None, ckpt: SweepCheckpoint | None = None,
            tracker: Tracker | None = None) -> ArmResult:
    """Evolve one arm on every grid point, ``size`` points at a time; measure the mean theta
    at :func:`measure_generations`. ``bar``: the sweep's progress (this arm's work is counted
    in env steps, :func:`arm_work`; on resume what its checkpoint holds counts as done);
    ``tracker``: gets the fitness curves of every grid point per chunk."""
    meta = prog.meta
    learner = prog.arm.name  # the checkpoint and the progress line name the arm
    bar = bar or Progress(1, enabled=False)
    tracker = tracker or Tracker()
    t_arm = time.perf_counter()
    key = jax.random.fold_in(jax.random.PRNGKey(cfg.measure.seed), 1)
    n = chunk_length(cfg)
    total = cfg.meta.generations
    when = measure_generations(cfg)
    parts = groups(grid.size, size)
    hist_parts: list[dict] = []
    meas_parts: dict[int, list[dict]] = {g: [] for g in when}
    desc_parts: dict[int, list[dict]] = {g: [] for g in when}
    theta_parts = []
    first_chunk_s, measure_s = None, 0.0
    done_gens = 0

    def measure(states, gen, real, divs):
        nonlocal measure_s
        tm = time.perf_counter()
        thetas = meta.mean_theta(states)
        out = jax.device_get(prog.measure_fn(thetas, key, jnp.asarray(divs, jnp.int32)))
        measure_s += time.perf_counter() - tm
        meas_parts[gen].append({k: np.asarray(v)[:real] for k, v in out.items()})
        desc_parts[gen].append({k: v[:real] for k, v in _describe(meta, thetas).items()})
        bar.advance(real * prog.measure_steps,
                    None if gen == 0 else f"[{prog.arm.label}] measured generation {gen}")

    # Generation 0 depends on the seed and the diversity alone (every level of a seed starts
    # from the same state): measure each (seed, diversity) pair once, in groups of the same
    # shape, then give it to its points.
    pairs, pair_of = np.unique(np.stack([grid.seed, grid.diversity], 1), axis=0,
                               return_inverse=True)
    pair_of = pair_of.reshape(-1)
    seeds = np.unique(grid.seed)
    saved = ckpt.load(learner) if ckpt is not None else None
    start_gi, start_gen, saved_states, saved_chunks = 0, 0, None, []
    if saved is not None:  # resume: everything gathered before the checkpoint
        hist_parts, theta_parts = saved["hist_parts"], saved["theta_parts"]
        meas_parts, desc_parts = saved["meas_parts"], saved["desc_parts"]
        done_gens, first_chunk_s = saved["done_gens"], saved["first_chunk_s"]
        measure_s = saved["measure_s"]
        start_gi, start_gen = saved["gi"], saved["gen"]
        saved_states, saved_chunks = saved["states"], saved["chunks"]
        bar.skip(arm_work(cfg, grid, prog, size).done_at(start_gi, start_gen))

    def save(gi, gen, states, chunks):
        if ckpt is None:
            return
        ckpt.save(learner, {
            "gi": gi, "gen": gen, "states": states, "chunks": chunks,
            "hist_parts": hist_parts, "theta_parts": theta_parts, "meas_parts": meas_parts,
            "desc_parts": desc_parts, "done_gens": done_gens, "first_chunk_s": first_chunk_s,
            "measure_s": measure_s})

    if saved is None:
        bar.note(f"[{prog.arm.label}] measuring the meta-init theta of {seeds.shape[0]} seeds "
                 "(the first call compiles)")
    for part in (groups(pairs.shape[0], size) if saved is None else []):
        states = initial_states(meta, cfg, pairs[part, 0])
        measure(states, 0, int(np.unique(part).shape[0]), pairs[part, 1])
    if saved is None:
        by_pair = {k: np.concatenate([d[k] for d in meas_parts[0]]) for k in meas_parts[0][0]}
        meas_parts[0] = [{k: v[pair_of] for k, v in by_pair.items()}]
        if desc_parts[0][0]:
            d0 = {k: np.concatenate([d[k] for d in desc_parts[0]]) for k in desc_parts[0][0]}
            desc_parts[0] = [{k: v[pair_of] for k, v in d0.items()}]
        else:
            desc_parts[0] = [{}]
        save(0, 0, None, [])

    for gi, idx in enumerate(parts):
        if gi < start_gi:
            continue
        real = int(np.unique(idx).shape[0]) if gi == len(parts) - 1 else idx.shape[0]
        states = initial_states(meta, cfg, grid.seed[idx])
        chunks: list[dict] = []
        gen = 0
        if gi == start_gi and saved_states is not None:
            # host arrays: the program places them on its mesh as any group (no recompile)
            states = saved_states
            chunks, gen = list(saved_chunks), start_gen

        def record(c: Chunk, real=real, chunks=chunks):
            nonlocal first_chunk_s, done_gens
            first_chunk_s = c.seconds if first_chunk_s is None else first_chunk_s
            chunks.append({k: v[:real] for k, v in c.metrics.items()})
            done_gens += c.n * real

        def measure_due(c: Chunk, real=real, idx=idx):
            if c.gen in when:
                measure(c.states, c.gen, real, grid.diversity[idx])

        def show(c: Chunk, real=real, chunks=chunks, gi=gi):
            fit = float(np.nanmean(chunks[-1]["fitness_mean"][:, -1]))
            extra = ""
            if "mean_step" in chunks[-1]:
                extra = f"  step {float(np.mean(chunks[-1]['mean_step'][:, -1])):+.3f}"
            bar.advance(c.n * real * meta.env_steps_per_generation,
                        f"[{prog.arm.label}] group {gi + 1}/{len(parts)}  gen {c.gen}/{total}  "
                        f"fitness {fit:.3f}{extra}")

        def track(c: Chunk, real=real, idx=idx):
            axes = (grid.intensity[idx[:real]], grid.diversity[idx[:real]], grid.seed[idx[:real]])
            for step, values in chunk_scalars(learner, c.metrics, c.start, *axes):
                tracker.scalars(values, step)
            tracker.flush()

        def checkpoint(c: Chunk, chunks=chunks, gi=gi):
            if not c.done:  # saves, then stops the sweep if a signal arrived (SweepInterrupted)
                save(gi, c.gen, c.states, chunks)

        d = drive(prog.chunk_fn, states, grid.pressure[idx], grid.diversity[idx], start=gen,
                  total=total, chunk=n, observers=[OnChunk(f) for f in
                                                   (record, measure_due, show, track,
                                                    checkpoint)])
        hist_parts.append({k: np.concatenate([c[k] for c in chunks], axis=1) for k in chunks[0]})
        theta_parts.append(np.asarray(meta.mean_theta(d.states))[:real])
        save(gi + 1, 0, None, [])

    def cat(dicts):
        return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}

    steps = grid.size * (total * meta.env_steps_per_generation
                         + (len(when) - 1) * prog.measure_steps)
    steps += seeds.shape[0] * prog.measure_steps
    return ArmResult(
        learner=meta.learner.name, history=cat(hist_parts),
        measures={g: cat(v) for g, v in meas_parts.items()},
        theta=np.concatenate(theta_parts),
        describe={g: cat(v) if v and v[0] else {} for g, v in desc_parts.items()},
        env_steps=int(steps), wall_s=time.perf_counter() - t_arm,
        first_chunk_s=float(first_chunk_s or 0.0), measure_s=measure_s, group_size=size,
        groups=len(parts), chunk=n,
        traces={w: prog.traces.get(w, 0) for w in ("chunk", "measure")},
        shared_measure=prog.shared_measure, name=prog.arm.name, reward=prog.arm.reward,
        label=prog.arm.label)


def has_reference(cfg: Config) -> bool:
    """Whether the sweep has a reference arm (``sweep.reference``; ``auto``: with a region)."""
    ref = cfg.sweep.reference
    return ref == "unrestricted" or (ref == "auto" and cfg.task.train_region != "none")


def arms_of(cfg: Config) -> list[Arm]:
    """The arms a sweep evolves: the configured learner, then its control (``sweep.control``):
    the same learner with reward ``shuffled`` or ``blind``, the ``amortized`` learner, or
    none; then, in a shift experiment, the reference (``sweep.reference``): the same learner,
    reward, keys and compute evolved on the whole task distribution. Every arm is measured by
    the learner arm's program (the same held-out tasks in and out of the region, the same
    proxy columns)."""
    lr, control = cfg.learner, cfg.sweep.control
    arms = [Arm("learner", lr.kind, lr.reward)]
    if control in ("shuffled", "blind"):
        arms.append(Arm("control", lr.kind, control))
    elif control == "amortized" and lr.kind != "amortized":
        arms.append(Arm("control", "amortized", "given"))
    if has_reference(cfg):
        arms.append(Arm("reference", lr.kind, lr.reward, unrestricted=True))
    return arms


def sweep(cfg: Config, out: str | Path | None = None, *, progress: bool | None = None,
          report: bool = True, resume_dir: str | Path | None = None,
          stop_after: int | None = None) -> SweepResult:
    """Run the sweep of ``cfg.sweep`` (every arm), then write the report when ``out`` is given.

    Returns a :class:`SweepResult`; with ``out`` the run directory holds ``config.yaml``,
    ``report.json``, ``report.md``, ``sweep.npz`` and the PNG plots.
    """
    from meta_evo.runs import create_run_dir, write_config

    eigen_off = cpu_workaround()
    maybe_initialize_distributed()  # multi-host when the environment asks; before any JAX work
    writer = is_writer()  # process 0 writes the run directory; every process computes
    if resume_dir is not None:
        out_dir = Path(resume_dir)
    else:
        out_dir = create_run_dir(out) if out is not None and writer else None
        if out_dir is not None:
            write_config(out_dir, cfg)
        barrier("meta-evo run directory")  # created before any other process looks at it
        out_dir = Path(out) if out is not None else None
    show = (cfg.log.progress if progress is None else progress) and writer
    t0, c0 = time.perf_counter(), time.process_time()
    grid = make_grid(cfg)
    mesh = make_mesh()  # every device of the job on the grid axis (one device: trivial)
    devices = grid_devices(mesh)
    progs = arm_programs(cfg, arms_of(cfg), mesh)
    ckpt = None if out_dir is None else SweepCheckpoint(
        out_dir / "sweep_state", cfg, {name: p.meta for name, p in progs.items()}, stop_after,
        write=writer)
    # one group size for every arm (a multiple of the devices), so a shared measurement program
    # sees one shape
    size = min(group_size(p.meta, grid.size, devices) for p in progs.values())
    # one bar for the whole sweep: every arm's env steps (on resume, run_arm skips what its
    # checkpoint holds); the writer alone shows it and tracks (meta_evo.tracking)
    bar = Progress(sum(arm_work(cfg, grid, p, size).total() for p in progs.values()),
                   enabled=show)
    tracker = open_trackers(cfg, out_dir if writer else None, "sweep")
    with closing(tracker), closing(bar):
        arms = {name: run_arm(cfg, grid, p, size, bar=bar, ckpt=ckpt, tracker=tracker)
                for name, p in progs.items()}
        bar.close()
        res = SweepResult(cfg=cfg, grid=grid, arms=arms, out_dir=out_dir,
                          wall_s=time.perf_counter() - t0,
                          env_steps=sum(a.env_steps for a in arms.values()), devices=devices,
                          resumed=resume_dir is not None)
        if out_dir is not None and writer:
            save_arrays(out_dir / "sweep.npz", res)
        report = report and writer  # the others computed the same arrays; one report
        if report:
            from meta_evo.config import dump_config
            from meta_evo.report import build_report, write_report

            res.report = build_report(res)
            res.report["cpu_s"] = round(time.process_time() - c0, 1)
            res.report["platform"]["xla_flags"] = os.environ.get("XLA_FLAGS", "")
            res.report["platform"]["device_count"] = devices  # the devices of the grid axis
            res.report["platform"]["process_count"] = process_count()
            res.report["platform"]["cpu_multi_thread_eigen_off"] = eigen_off
            if out_dir is not None:
                write_report(out_dir, res.report)
            track_sweep_report(tracker, res.report, out_dir, dump_config(cfg))
    return res


def save_arrays(path: Path, res: SweepResult) -> None:
    """Every array of the sweep in one ``.npz``: grid axes, and per arm the final thetas,
    histories and every measured output (``{arm}/{generation}/{name}``)."""
    g = res.grid
    arrays = {f"grid/{k}": getattr(g, k) for k in
              ("intensity", "pressure", "seed", "diversity", "level", "div_index")}
    for name, a in res.arms.items():
        arrays[f"{name}/theta"] = a.theta
        arrays.update({f"{name}/history/{k}": v for k, v in a.history.items()})
        for gen, meas in a.measures.items():
            arrays.update({f"{name}/{gen}/{k}": v for k, v in meas.items()})
    np.savez_compressed(path, **arrays)


def resume_sweep(run_dir: str | Path, *, progress: bool | None = None,
                 stop_after: int | None = None) -> SweepResult:
    """Continue the sweep in ``run_dir`` from its per-arm checkpoints and write its report.

    The resumed sweep runs the same programs from the saved states, so its arrays (and the
    report's figures) equal an uninterrupted sweep's on the same platform. Raises RunDirError
    (one line) when another process holds the directory's lock (:mod:`meta_evo.lock`), or
    when config.yaml differs from the config recorded with the checkpoints (naming the key).
    """
    from meta_evo.lock import acquire
    from meta_evo.runs import RunDirError, read_run_config
    from meta_evo.sweep_state import check_resumable

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    if not (run_dir / "sweep_state").is_dir():
        raise RunDirError(f"{run_dir}: no sweep checkpoint to resume from")
    maybe_initialize_distributed()
    if is_writer():  # in a multi-host job process 0 alone writes (and locks)
        acquire(run_dir)  # one writer at a time; held until the process exits
    if (run_dir / "report.json").is_file():
        raise RunDirError(f"{run_dir}: this sweep has finished (report.json exists)")
    check_resumable(run_dir, cfg)
    return sweep(cfg, progress=progress, resume_dir=run_dir, stop_after=stop_after)
