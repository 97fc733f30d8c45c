"""``meta-evo run|sweep --dry-run``: what a run or a sweep would do, and about how long it would
take here, without compiling a program or writing a file.

A plan builds the same :class:`~meta_evo.meta.Meta` objects, grid and memory groups as the real
command (Brax environments are built and their state shapes traced, nothing is compiled) and
counts env steps as the run and the sweep count them (``Meta.env_steps_per_generation``,
:func:`meta_evo.sweep.measure_env_steps`, :func:`meta_evo.sweep.run_arm`). The wall-time
estimate divides the env steps by a documented throughput figure (:data:`RATES`: the engine's
figures in ``benchmarks/README.md``, or the README's timing of the built-in CPU default), named
in the output; compile time is not included.
"""

from __future__ import annotations

from pathlib import Path

from meta_evo.config import Config

_BENCH = "benchmarks/README.md"
# (platform, family, mode) -> (env steps/s, where the figure comes from). ``cpu`` figures are
# for 2 CPU cores; ``accelerator`` figures for one NVIDIA H200. mode: run | sweep.
RATES = {
    ("cpu", "reacher_goal", "run"): (
        56_717, f"{_BENCH}: engine, one reacher_goal run (pd, M=16), 2 CPU cores"),
    ("cpu", "reacher_goal", "sweep"): (
        73_629, f"{_BENCH}: engine, reacher_goal sweep of 16 points (pd, M=16), 2 CPU cores"),
    ("cpu", "halfcheetah_vel", "run"): (
        5_646, f"{_BENCH}: engine, one halfcheetah_vel run (mlp, M=16), 2 CPU cores"),
    ("cpu", "analytic", "sweep"): (
        2_841_790, "README: the built-in CPU default sweep, 852,536,832 env steps as counted "
        "here, in about 5 minutes on 2 CPU cores, compile included"),
    ("accelerator", "reacher_goal", "run"): (
        3_548_158, f"{_BENCH}: engine, one reacher_goal run (pd, M=64), one NVIDIA H200"),
    ("accelerator", "reacher_goal", "sweep"): (
        62_426_961, f"{_BENCH}: engine, reacher_goal sweep of 32 points (pd, M=64), one "
        "NVIDIA H200"),
}


def rate_for(platform: str, family: str, mode: str) -> tuple[float | None, str]:
    """``(env steps/s, source)`` for ``family`` on ``platform`` (``cpu`` or an accelerator's
    backend name); ``(None, why)`` where nothing is documented. A missing figure is borrowed
    from the closest documented one, and the source says so."""
    plat = "cpu" if platform == "cpu" else "accelerator"
    for m in (mode, "sweep" if mode == "run" else "run"):
        if (plat, family, m) in RATES:
            rate, src = RATES[(plat, family, m)]
            return rate, src if m == mode else f"{src} (the {m} figure: none for a {mode})"
    if family in ("hopper_vel", "ant_dir"):  # locomotion: halfcheetah's is the closest
        rate, src = rate_for(platform, "halfcheetah_vel", mode)
        if rate is not None:
            return rate, f"{src} (halfcheetah_vel's: none documented for {family})"
    if family != "analytic" and plat == "accelerator":  # assumed: the CPU ratio to reacher
        base, src = rate_for(platform, "reacher_goal", mode)
        slow = RATES[("cpu", "halfcheetah_vel", "run")][0] / RATES[("cpu", "reacher_goal",
                                                                     "run")][0]
        return base * slow, (f"assumed, not measured: {src}, times the 2-core CPU ratio of "
                             "halfcheetah_vel to reacher_goal")
    return None, f"no documented env steps/s figure for {family} on {plat}"


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def _platform() -> tuple[str, int, str]:
    import jax

    dev = jax.devices()[0]
    return jax.default_backend(), jax.local_device_count(), getattr(dev, "device_kind", str(dev))


def plan_run(cfg: Config) -> dict:
    """The plan of ``meta-evo run``: one grid point, no measurement."""
    from meta_evo.engine import point_bytes
    from meta_evo.meta import Meta

    meta = Meta(cfg)
    spg = meta.env_steps_per_generation
    return {"kind": "run", "cfg": cfg, "arms": {"learner": meta.learner.name},
            "grid_points": 1, "group_size": 1, "groups": 1,
            "point_bytes": {"learner": point_bytes(meta)},
            "env_steps_per_generation": spg, "measure_steps": 0,
            "env_steps": {"learner": cfg.meta.generations * spg}}


def plan_sweep(cfg: Config) -> dict:
    """The plan of ``meta-evo sweep`` on this host's devices: the arms, grid, groups, memory
    and env steps (as :func:`meta_evo.sweep.run_arm` counts them)."""
    from meta_evo.engine import grid_devices, groups, make_mesh, point_bytes
    from meta_evo.sweep import (
        arm_programs,
        arms_of,
        group_size,
        make_grid,
        measure_generations,
    )

    subs = _sub_sweeps(cfg)
    if subs:  # one sweep per region (or coverage share): plan each, add up
        plans = [plan_sweep(c) for _, c in subs]
        out = dict(plans[0])
        out["cfg"] = cfg
        out["env_steps"] = {a: sum(p["env_steps"][a] for p in plans) for a in out["env_steps"]}
        out["sub_sweeps"] = [name for name, _ in subs]
        return out
    mesh = make_mesh()
    devices = grid_devices(mesh)
    grid = make_grid(cfg)
    progs = arm_programs(cfg, arms_of(cfg), mesh)  # builds each arm's Meta; compiles nothing
    size = min(group_size(p.meta, grid.size, devices) for p in progs.values())
    when = measure_generations(cfg)
    seeds = len(set(grid.seed.tolist()))
    total = cfg.meta.generations
    steps = {name: grid.size * (total * p.meta.env_steps_per_generation
                                + (len(when) - 1) * p.measure_steps) + seeds * p.measure_steps
             for name, p in progs.items()}  # as run_arm counts them
    first = next(iter(progs.values()))
    return {"kind": "sweep", "cfg": cfg,
            "arms": {name: p.arm.label for name, p in progs.items()},
            "grid_points": grid.size, "group_size": size, "groups": len(groups(grid.size, size)),
            "devices": devices,
            "point_bytes": {name: point_bytes(p.meta) for name, p in progs.items()},
            "env_steps_per_generation": first.meta.env_steps_per_generation,
            "measure_steps": first.measure_steps, "env_steps": steps}


def _sub_sweeps(cfg: Config) -> list[tuple[str, Config]]:
    """The sweeps a config runs one after another: its child sweeps (one per training region
    or coverage share, :func:`meta_evo.child_sweeps.children`), or none."""
    from meta_evo.child_sweeps import children

    return [(c.label, c.cfg) for c in children(cfg)]


def format_plan(plan: dict, out: str | Path | None = None) -> list[str]:
    """The lines ``--dry-run`` prints."""
    cfg, kind = plan["cfg"], plan["kind"]
    t, m, sw = cfg.task, cfg.meta, cfg.sweep
    backend, local, device = _platform()
    lines = [f"meta-evo {kind} --dry-run: no program compiled, nothing written"]
    fam = t.family if t.family == "analytic" else f"{t.family} ({t.backend}, T={t.episode_length})"
    lines.append(f"  config: {fam}, learner {cfg.learner.kind}, {m.strategy} M={m.population}, "
                 f"{m.generations} generations")
    if out is not None:
        note = ""
        try:
            if Path(out).exists():
                note = " (exists already: a new run would be refused)"
        except (OSError, ValueError):
            pass
        lines.append(f"  run directory: {out}{note}")
    per_gen = plan["env_steps_per_generation"]
    total = sum(plan["env_steps"].values())
    if kind == "run":
        lines.append(f"  grid: 1 point (a single run), {local} local device(s)")
        lines.append(f"  memory: about {_mib(plan['point_bytes']['learner'])} "
                     "(meta_evo.engine.point_bytes)")
        lines.append(f"  env steps: {total:,} ({m.generations} generations x {per_gen:,})")
    else:
        lines.append("  arms: " + ", ".join(f"{k} {v}" for k, v in plan["arms"].items()))
        subs = plan.get("sub_sweeps")
        if subs:
            lines.append(f"  sweeps: {len(subs)}, one after another ({', '.join(subs)}); "
                         "the figures below are per sweep, env steps and time for all")
        lines.append(f"  grid: {len(sw.intensities)} intensities x {sw.seeds} seeds x "
                     f"{len(sw.diversities)} diversities = {plan['grid_points']} points per arm")
        lines.append(f"  groups: {plan['groups']} of {plan['group_size']} points per arm "
                     f"(sweep.memory_budget_mb {sw.memory_budget_mb}, {plan['devices']} "
                     "grid device(s))")
        biggest = max(plan["point_bytes"].values())
        lines.append(f"  memory: about {_mib(plan['group_size'] * biggest)} per group "
                     f"({_mib(biggest)} per point, meta_evo.engine.point_bytes)")
        arms = ", ".join(f"{k} {v:,}" for k, v in plan["env_steps"].items())
        lines.append(f"  env steps: {total:,} ({arms}; {per_gen:,} per generation and point, "
                     f"{plan['measure_steps']:,} per measurement of a theta)")
    rate, src = rate_for(backend, t.family, kind)
    if backend == "cpu":
        import os

        here = f"this machine: cpu, {os.cpu_count()} cores"
    else:
        here = f"this machine: {backend}, {local} x {device}"
    if rate is None:
        lines.append(f"  wall time: not estimated ({src}; {here})")
    else:
        scale = local if backend != "cpu" and kind == "sweep" else 1  # a sweep shards devices
        secs = total / (rate * scale)
        x = f" x {scale} devices" if scale > 1 else ""
        comp = "" if "compile included" in src else ", plus compile"
        lines.append(f"  wall time: about {_duration(secs)} at {rate:,.0f} env steps/s{x}{comp} "
                     f"({src}; {here})")
    return lines
