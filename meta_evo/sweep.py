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

Multi-host JAX starts first when configured
(:func:`meta_evo.distributed.maybe_initialize_distributed`).
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

from meta_evo.arm_progress import ArmCheckpoints, ArmProgress, SweepInterrupted
from meta_evo.config import Config
from meta_evo.cpu_flags import cpu_workaround
from meta_evo.distributed import barrier, is_writer, maybe_initialize_distributed, process_count
from meta_evo.driver import Chunk, Observer, drive
from meta_evo.engine import (
    grid_devices,
    group_size,
    groups,
    initial_states,
    make_grid_chunk,
    make_grid_measure,
    make_mesh,
)
from meta_evo.meta import Meta, pressure_for_intensity
from meta_evo.progress import ArmWork, Progress
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
    """Env steps of one ``make_measure`` call on one theta (rollouts counted, not physics), as
    the learner's measurement counts them (``meta_evo.measure.MEASUREMENTS``)."""
    from meta_evo.measure import measure_env_steps as steps

    return steps(meta)


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
            bar: Progress | None = None, ckpt: ArmCheckpoints | None = None,
            tracker: Tracker | None = None) -> ArmResult:
    """Evolve one arm on every grid point, ``size`` points at a time; measure the mean theta
    at :func:`measure_generations`. ``bar``: the sweep's progress (this arm's work is counted
    in env steps, :func:`arm_work`; on resume what its checkpoint holds counts as done);
    ``ckpt``: its checkpoints (resume from them; SweepInterrupted when the sweep must stop);
    ``tracker``: gets the fitness curves of every grid point per chunk."""
    return _ArmRun(cfg, grid, prog, size, bar, ckpt, tracker).run()


class _ArmRun:
    """One arm's evolution over the groups of the grid (see :func:`run_arm`)."""

    def __init__(self, cfg, grid, prog, size, bar, ckpt, tracker):
        self.cfg, self.grid, self.prog, self.meta = cfg, grid, prog, prog.meta
        self.name = prog.arm.name  # the checkpoint and the progress line name the arm
        self.bar = bar or Progress(1, enabled=False)
        self.ckpt, self.tracker = ckpt, tracker or Tracker()
        self.key = jax.random.fold_in(jax.random.PRNGKey(cfg.measure.seed), 1)
        self.when = measure_generations(cfg)
        self.parts = groups(grid.size, size)
        self.size = size
        self.t0 = time.perf_counter()

    def run(self) -> ArmResult:
        saved = self.ckpt.load(self.name) if self.ckpt is not None else None
        if saved is None:
            self.p = ArmProgress(meas_parts={g: [] for g in self.when},
                                 desc_parts={g: [] for g in self.when})
            self.measure_init()
            self.save()
        else:  # resume: everything gathered before the checkpoint
            self.p = saved
            self.bar.skip(arm_work(self.cfg, self.grid, self.prog, self.size).done_at(
                saved.gi, saved.gen))
        while self.p.gi < len(self.parts):
            self.evolve_group()
        return self.result()

    def save(self, upcoming: bool = False) -> None:
        """Checkpoint the progress; at a group boundary (``upcoming`` False) stop the sweep
        when it is due. In a drive, the chunk's stop was decided before the save."""
        if self.ckpt is None:
            return
        self.ckpt.save(self.name, self.p)
        if not upcoming:
            self.stop_if(self.ckpt.stop_due(self.name, False))

    def stop_if(self, signum: int | None) -> None:
        if signum is not None:
            raise SweepInterrupted(f"stopped by {'the stop_after hook' if signum < 0 else signum}",
                                   None if signum < 0 else signum)

    def measure(self, states, gen: int, real: int, divs) -> None:
        tm = time.perf_counter()
        thetas = self.meta.mean_theta(states)
        out = jax.device_get(self.prog.measure_fn(thetas, self.key, jnp.asarray(divs, jnp.int32)))
        self.p.measure_s += time.perf_counter() - tm
        self.p.meas_parts[gen].append({k: np.asarray(v)[:real] for k, v in out.items()})
        self.p.desc_parts[gen].append({k: v[:real] for k, v in
                                       _describe(self.meta, thetas).items()})
        self.bar.advance(real * self.prog.measure_steps, None if gen == 0 else
                         f"[{self.prog.arm.label}] measured generation {gen}")

    def measure_init(self) -> None:
        """Generation 0 depends on the seed and the diversity alone (every level of a seed
        starts from the same state): measure each (seed, diversity) pair once, in groups of
        the same shape, then give it to its points."""
        g = self.grid
        pairs, pair_of = np.unique(np.stack([g.seed, g.diversity], 1), axis=0,
                                   return_inverse=True)
        pair_of = pair_of.reshape(-1)
        self.bar.note(f"[{self.prog.arm.label}] measuring the meta-init theta of "
                      f"{np.unique(g.seed).shape[0]} seeds (the first call compiles)")
        for part in groups(pairs.shape[0], self.size):
            states = initial_states(self.meta, self.cfg, pairs[part, 0])
            self.measure(states, 0, int(np.unique(part).shape[0]), pairs[part, 1])
        for parts in (self.p.meas_parts, self.p.desc_parts):
            whole = {k: np.concatenate([d[k] for d in parts[0]]) for k in parts[0][0]}
            parts[0] = [{k: v[pair_of] for k, v in whole.items()}]

    def evolve_group(self) -> None:
        """Drive the group ``p.gi`` from ``p.gen`` (fresh, or the checkpoint's states) to the
        last generation, then file its history and thetas."""
        gi, idx, p = self.p.gi, self.parts[self.p.gi], self.p
        real = int(np.unique(idx).shape[0]) if gi == len(self.parts) - 1 else idx.shape[0]
        # host arrays from a checkpoint: the program places them on its mesh as any group
        states = (p.states if p.states is not None
                  else initial_states(self.meta, self.cfg, self.grid.seed[idx]))
        d = drive(self.prog.chunk_fn, states, self.grid.pressure[idx], self.grid.diversity[idx],
                  start=p.gen, total=self.cfg.meta.generations, chunk=chunk_length(self.cfg),
                  observers=[_GroupObserver(self, idx, real)],
                  stop=lambda gen: (None if self.ckpt is None
                                    else self.ckpt.stop_due(self.name, True)))
        self.stop_if(d.interrupted)
        p.hist_parts.append({k: np.concatenate([c[k] for c in p.chunks], axis=1)
                             for k in p.chunks[0]})
        p.theta_parts.append(np.asarray(self.meta.mean_theta(d.states))[:real])
        p.gi, p.gen, p.states, p.chunks = gi + 1, 0, None, []
        self.save()

    def result(self) -> ArmResult:
        def cat(dicts):
            return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}

        p, meta, prog, total = self.p, self.meta, self.prog, self.cfg.meta.generations
        steps = self.grid.size * (total * meta.env_steps_per_generation
                                  + (len(self.when) - 1) * prog.measure_steps)
        steps += np.unique(self.grid.seed).shape[0] * prog.measure_steps
        return ArmResult(
            learner=meta.learner.name, history=cat(p.hist_parts),
            measures={g: cat(v) for g, v in p.meas_parts.items()},
            theta=np.concatenate(p.theta_parts),
            describe={g: cat(v) if v and v[0] else {} for g, v in p.desc_parts.items()},
            env_steps=int(steps), wall_s=time.perf_counter() - self.t0,
            first_chunk_s=float(p.first_chunk_s or 0.0), measure_s=p.measure_s,
            group_size=self.size, groups=len(self.parts), chunk=chunk_length(self.cfg),
            traces={w: prog.traces.get(w, 0) for w in ("chunk", "measure")},
            shared_measure=prog.shared_measure, name=prog.arm.name, reward=prog.arm.reward,
            label=prog.arm.label)


class _GroupObserver(Observer):
    """Between two chunks of a group: record the metrics, measure when due, advance the bar,
    track the curves, and checkpoint (every chunk but the last)."""

    def __init__(self, arm: _ArmRun, idx, real: int):
        self.arm, self.idx, self.real = arm, idx, real

    def on_chunk(self, c: Chunk) -> None:
        arm, p, real, idx = self.arm, self.arm.p, self.real, self.idx
        p.first_chunk_s = c.seconds if p.first_chunk_s is None else p.first_chunk_s
        p.chunks.append({k: v[:real] for k, v in c.metrics.items()})
        p.done_gens += c.n * real
        if c.gen in arm.when:
            arm.measure(c.states, c.gen, real, arm.grid.diversity[idx])
        self.show(c)
        axes = (arm.grid.intensity[idx[:real]], arm.grid.diversity[idx[:real]],
                arm.grid.seed[idx[:real]])
        for step, values in chunk_scalars(arm.name, c.metrics, c.start, *axes):
            arm.tracker.scalars(values, step)
        arm.tracker.flush()
        if not c.done:
            p.gen, p.states = c.gen, c.states
            arm.save(upcoming=True)

    def show(self, c: Chunk) -> None:
        arm, last = self.arm, self.arm.p.chunks[-1]
        fit = float(np.nanmean(last["fitness_mean"][:, -1]))
        extra = (f"  step {float(np.mean(last['mean_step'][:, -1])):+.3f}"
                 if "mean_step" in last else "")
        arm.bar.advance(c.n * self.real * arm.meta.env_steps_per_generation,
                        f"[{arm.prog.arm.label}] group {arm.p.gi + 1}/{len(arm.parts)}  "
                        f"gen {c.gen}/{arm.cfg.meta.generations}  fitness {fit:.3f}{extra}")


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
    eigen_off = cpu_workaround()
    maybe_initialize_distributed()  # multi-host when the environment asks; before any JAX work
    writer = is_writer()  # process 0 writes the run directory; every process computes
    out_dir = _sweep_dir(cfg, out, resume_dir, writer)
    show = (cfg.log.progress if progress is None else progress) and writer
    t0, c0 = time.perf_counter(), time.process_time()
    grid = make_grid(cfg)
    mesh = make_mesh()  # every device of the job on the grid axis (one device: trivial)
    devices = grid_devices(mesh)
    progs = arm_programs(cfg, arms_of(cfg), mesh)
    ckpt = None if out_dir is None else ArmCheckpoints(
        out_dir, cfg, {name: p.meta for name, p in progs.items()}, stop_after, write=writer)
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
        if report and writer:  # the others computed the same arrays; one report
            _report(res, tracker, c0, eigen_off)
    return res


def _sweep_dir(cfg: Config, out, resume_dir, writer: bool) -> Path | None:
    """The sweep's run directory: the one resumed, or ``out`` created (by the writer, with its
    manifest and config) before any other process looks at it; None without one."""
    if resume_dir is not None:
        return Path(resume_dir)
    from meta_evo.config import write_config
    from meta_evo.rundir.layout import create

    if out is not None and writer:
        write_config(create(out, "sweep"), cfg)
    barrier("meta-evo run directory")
    return Path(out) if out is not None else None


def _report(res: SweepResult, tracker, c0: float, eigen_off: bool) -> None:
    """Build the report (with what only this process knows: the CPU time since ``c0``, the XLA
    flags, the devices), write it into the run directory and hand it to the trackers."""
    from meta_evo.config import dump_config
    from meta_evo.report import build_report, write_report

    res.report = build_report(res)
    res.report["cpu_s"] = round(time.process_time() - c0, 1)
    res.report["platform"]["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    res.report["platform"]["device_count"] = res.devices  # the devices of the grid axis
    res.report["platform"]["process_count"] = process_count()
    res.report["platform"]["cpu_multi_thread_eigen_off"] = eigen_off
    if res.out_dir is not None:
        write_report(res.out_dir, res.report)
    track_sweep_report(tracker, res.report, res.out_dir, dump_config(res.cfg))


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
    from meta_evo.arm_progress import check_resumable
    from meta_evo.config import read_run_config
    from meta_evo.errors import RunDirError
    from meta_evo.lock import acquire
    from meta_evo.rundir.layout import kind_of

    run_dir = Path(run_dir)
    if kind_of(run_dir) != "sweep":
        raise RunDirError(f"{run_dir}: not a sweep directory (meta-evo resume {run_dir} "
                          "continues whatever it holds)")
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
