#!/usr/bin/env python
"""Throughput of meta-evo's engine against the simulator bound and the usual evosax composition.

Modes (``--mode``):

- ``single`` (default): one meta-evolution. Measures, in this process, after warm-up, in
  ``--rounds`` alternating rounds (the order rotates each round):
    * **simulator**: the same env, backend and batch size (``M * tasks * P`` envs) stepping
      random actions in one jitted ``lax.scan`` (episodes of T steps from a reset, as the engine's
      rollouts), accumulating the observations and rewards so XLA cannot drop the physics;
    * **peer**: evosax ``ask`` / ``tell`` as separate jitted calls with a Python loop around
      them and a jitted, vmapped evaluation of the lifetimes in between (``meta.fitness``; the
      PureJaxRL meta-evolution walkthrough's composition);
    * **engine**: the program ``meta-evo run`` runs, :func:`meta_evo.engine.make_run_chunk`
      (a grid of one point; ``--generations`` meta-generations fused in one scan).
- ``sweep``: ``--grid`` grid points (pressures x diversities): the engine's one vmapped program
  (sharded over local devices, :mod:`meta_evo.engine`) against the peer looping over grid
  points in Python; plus the simulator bound at the sweep's batch size.
- ``scaling``: engine throughput and time per meta-generation as the meta-population, the
  candidates and the grid points double (``--scale-points`` values each); JSON and a PNG plot.
- ``memory``: peak memory of chunked sweeps of growing size (each in a fresh subprocess), the
  group picked from a memory budget by :func:`meta_evo.engine.fit_group`, against unchunked.

Env steps are counted as ``Meta.env_steps_per_generation`` does: ``M * tasks * (K * P + E) * T``
per meta-generation and grid point (``--learner rl2``: ``M * tasks * K * T``, K episodes of one
env a lifetime, so the bound steps ``M * tasks`` envs for ``K`` episodes a generation). Compile
time is reported apart (JAX's own compile events); ``compiles_in_timed_runs`` must be 0.

    python benchmarks/throughput.py                                # single, default workload
    python benchmarks/throughput.py --mode sweep --grid 16
    python benchmarks/throughput.py --mode scaling --generations 1 --rounds 3
    python benchmarks/throughput.py --mode memory --grids 4 8 16 32
    python benchmarks/throughput.py --learner gru                  # black-box learner over phi
    python benchmarks/throughput.py --learner rl2 --tasks-per-member 16 --set learner.hidden=32
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

PATHS = ("simulator", "peer", "engine")


# --- measurement helpers -------------------------------------------------------------------------
class CompileMeter:
    """Sums JAX's compile events (trace, lowering, backend compile) and counts backend compiles."""

    EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
              "/jax/core/compile/jaxpr_to_mlir_module_duration",
              "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        self.secs = collections.defaultdict(float)
        self.compiles = 0
        jax.monitoring.register_event_duration_secs_listener(self._on)

    def _on(self, name, secs, **_):
        if name in self.EVENTS:
            self.secs[name] += secs
            if name.endswith("backend_compile_duration"):
                self.compiles += 1

    def total(self) -> float:
        return sum(self.secs.values())

    @contextmanager
    def measure(self, into: dict, key: str):
        t0, c0 = self.total(), self.compiles
        yield
        into[key] = {"compile_s": round(self.total() - t0, 3), "compiles": self.compiles - c0}


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    jax.block_until_ready(out)
    return time.perf_counter() - t, out


def spread(xs):
    xs = [float(x) for x in xs]
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "runs": [round(x, 6) for x in xs]}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_peak_mb():
    try:
        st = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU backends may not report
        return None
    b = st.get("peak_bytes_in_use")
    return None if b is None else round(b / 2**20, 1)


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "brax", "evosax", "flax", "optax", "numpy", "mujoco"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def device_info() -> dict:
    d = jax.devices()[0]
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    return {"platform": d.platform, "device_kind": d.device_kind,
            "device_count": jax.device_count(), "host_cpu": cpu,
            "host_cores": os.cpu_count(), "node": platform.node()}


# --- the workload --------------------------------------------------------------------------------
def make_cfg(args, **over):
    from meta_evo.config import apply_overrides, config_from_dict
    v = {**vars(args), **over}
    data = {
        "seed": v["seed"],
        "task": {"family": v["family"], "backend": v["backend"],
                 "episode_length": v["episode_length"], "tasks_per_member": v["tasks_per_member"],
                 "eval_episodes": v["eval_episodes"], "diversity": v["diversity"]},
        "agent": {"kind": v["agent"]},
        "learner": {"kind": v["learner"], "lifetime": v["lifetime"],
                    "candidates": v["candidates"]},
        "meta": {"population": v["population"], "strategy": v["strategy"]},
        "log": {"progress": False},
    }
    apply_overrides(data, list(v.get("set") or []))
    return config_from_dict(data)


def workload(meta) -> dict:
    c = meta.cfg
    return {"family": c.task.family, "backend": c.task.backend, "agent": c.agent.kind,
            "learner": c.learner.kind, "strategy": c.meta.strategy,
            "population": c.meta.population, "lifetime": c.learner.lifetime,
            "candidates": c.learner.candidates, "hidden": c.learner.hidden,
            "reward": c.learner.reward, "tasks_per_member": c.task.tasks_per_member,
            "eval_episodes": c.task.eval_episodes, "episode_length": c.task.episode_length,
            "env_batch": env_batch(meta),
            "env_steps_per_generation": meta.env_steps_per_generation}


def env_batch(meta) -> int:
    """Envs stepped side by side in the engine's widest phase: ``M * tasks * P`` (``rl2``: one
    env a lifetime, ``M * tasks``)."""
    t = meta.cfg.task
    if getattr(meta, "rl2", False):
        return meta.population * t.tasks_per_member
    return meta.population * t.tasks_per_member * max(meta.learner.num_candidates,
                                                      t.eval_episodes)


# --- (a) the simulator bound ---------------------------------------------------------------------
def make_bound(family, batch: int, episode_length: int, episodes: int):
    """Jitted ``fn(key) -> scalar``: ``batch`` envs, ``episodes`` episodes of ``episode_length``
    random-action steps each (reset at each episode start, like the engine's rollouts), all in
    one ``lax.scan`` (over episodes) of a ``lax.scan`` (over steps). Observations and rewards are
    accumulated and returned, so the physics cannot be dead-code-eliminated.
    Env steps per call: ``batch * episode_length * episodes``."""
    env = family.env
    tau = jnp.zeros(family.task_dim)

    def episode(acc, key):
        k_reset, k_act = jax.random.split(key)
        ps = jax.vmap(lambda k: env.reset(k).pipeline_state)(jax.random.split(k_reset, batch))

        def step(carry, k):
            ps, acc = carry
            a = jax.random.uniform(k, (batch, env.action_size), minval=-1.0, maxval=1.0)
            ps1 = jax.vmap(env.pipeline_step)(ps, a)
            obs = jax.vmap(family.observe)(ps1)
            r = jax.vmap(family.reward, (0, 0, 0, None))(ps, ps1, a, tau)
            return (ps1, acc + jnp.sum(obs) + jnp.sum(r)), None

        (_, acc), _ = jax.lax.scan(step, (ps, acc), jax.random.split(k_act, episode_length))
        return acc, None

    @jax.jit
    def bound(key):
        acc, _ = jax.lax.scan(episode, jnp.zeros(()), jax.random.split(key, episodes))
        return acc

    return bound


# --- (b) the peer --------------------------------------------------------------------------------
class Peer:
    """evosax ask / tell, each its own jitted call, around a jitted vmapped evaluation of the
    lifetimes, in a Python loop (the PureJaxRL meta-evolution walkthrough's composition).
    Same pieces and key schedule as ``Meta.step``: it does the engine's work, unfused."""

    def __init__(self, meta):
        from meta_evo.meta import member_weights, rank_weights
        strat, params, sign = meta.strategy, meta.es_params, meta.sign
        sel, m = meta.cfg.meta.selection, meta.population
        self.ask = jax.jit(lambda k, s: strat.ask(k, s, params))
        self.fitness = jax.jit(meta.fitness)

        def tell(k, thetas, fit, es_state, pressure):
            fit = jnp.where(jnp.isfinite(fit), fit, jnp.nan)
            w = member_weights(fit, rank_weights(sel, m, pressure))
            new, _ = strat.tell(k, thetas, sign * w, es_state, params)
            return new

        self.tell = jax.jit(tell)

    def run(self, es_state, key, pressure, diversity, n: int):
        for _ in range(n):
            key, k_ask, k_fit, k_tell = jax.random.split(key, 4)
            thetas, es_state = self.ask(k_ask, es_state)
            fit, _ = self.fitness(thetas, k_fit, diversity)
            es_state = self.tell(k_tell, thetas, fit, es_state, pressure)
        return es_state, key

    def sweep(self, es_states, keys, pressures, diversities, n: int):
        """The peer's sweep: a Python loop over grid points (each a Python loop of generations)."""
        out = []
        for g in range(len(keys)):
            es = jax.tree.map(lambda x, g=g: x[g], es_states)
            out.append(self.run(es, keys[g], pressures[g], diversities[g], n)[0])
        return out


# --- mode: single --------------------------------------------------------------------------------
def rotate(seq, r):
    r %= len(seq)
    return list(seq[r:]) + list(seq[:r])


def ratio_stats(num: list, den: list) -> dict:
    per_round = [a / b for a, b in zip(num, den, strict=True)]
    return {"median": statistics.median(num) / statistics.median(den),
            "per_round_median": statistics.median(per_round),
            "min": min(per_round), "max": max(per_round),
            "runs": [round(x, 4) for x in per_round]}


def mode_single(args, meter) -> dict:
    from meta_evo.meta import Meta
    meta = Meta(make_cfg(args))
    n, fam = args.generations, meta.family
    pressure = np.float32(meta.cfg.meta.pressure)
    diversity = np.int32(meta.cfg.task.diversity)
    init = jax.jit(meta.init)
    steps = {"engine": n * meta.env_steps_per_generation,
             "peer": n * meta.env_steps_per_generation}
    comp: dict = {}
    runs = {}
    has_bound = hasattr(fam, "env")
    if has_bound:
        episodes = max(1, round(steps["engine"] / (env_batch(meta) * meta.cfg.task.episode_length)))
        bound = make_bound(fam, env_batch(meta), meta.cfg.task.episode_length, episodes)
        steps["simulator"] = env_batch(meta) * meta.cfg.task.episode_length * episodes
        runs["simulator"] = lambda r: timed(bound, jax.random.PRNGKey(r))
    peer = Peer(meta)

    def peer_run(r):
        s = init(jax.random.PRNGKey(r))
        jax.block_until_ready(s)
        return timed(lambda: peer.run(s.es_state, s.key, pressure, diversity, n)[0])

    from meta_evo import engine
    run_chunk = engine.make_run_chunk(meta)  # the product path of `meta-evo run`
    pressures, diversities = np.float32([pressure]), np.int32([diversity])

    def engine_run(r):
        s = engine.as_group(init(jax.random.PRNGKey(r)))
        jax.block_until_ready(s)
        return timed(run_chunk, s, pressures, diversities, n)

    runs["peer"], runs["engine"] = peer_run, engine_run
    with meter.measure(comp, "init"):
        jax.block_until_ready(init(jax.random.PRNGKey(0)))
    first = {}
    for p in runs:  # warm-up: compile, then one more call so lazily compiled pieces are in
        with meter.measure(comp, p):
            first[p] = runs[p](1000)[0]
            runs[p](1001)
    # the engine and the peer must do the same work: same start, same keys, same final mean
    s0 = init(jax.random.PRNGKey(7))
    peer_es, _ = peer.run(s0.es_state, s0.key, pressure, diversity, n)
    eng, _ = run_chunk(engine.as_group(init(jax.random.PRNGKey(7))), pressures, diversities, n)
    same = float(jnp.max(jnp.abs(peer_es.mean - eng.es_state.mean[0])))
    c0 = meter.compiles
    secs = {p: [] for p in runs}
    order = list(runs)
    for r in range(args.rounds):
        for p in rotate(order, r):
            secs[p].append(runs[p](r)[0])
        print(f"  round {r + 1}/{args.rounds}: " + "  ".join(
            f"{p} {steps[p] / secs[p][-1]:,.0f}/s" for p in order), flush=True)
    rate = {p: [steps[p] / s for s in secs[p]] for p in runs}
    out = {"mode": "single", "workload": workload(meta), "generations_per_call": n,
           "rounds": args.rounds, "env_steps_per_call": steps,
           "seconds_per_call": {p: spread(v) for p, v in secs.items()},
           "peer_steps_per_s": spread(rate["peer"]),
           "engine_steps_per_s": spread(rate["engine"]),
           "ratio_engine_to_peer": ratio_stats(rate["engine"], rate["peer"]),
           "engine_seconds_per_generation": statistics.median(secs["engine"]) / n,
           "peer_seconds_per_generation": statistics.median(secs["peer"]) / n,
           "engine_peer_max_abs_mean_diff": same,
           "compile_s": {p: comp[p]["compile_s"] for p in comp},
           "compiles": {p: comp[p]["compiles"] for p in comp},
           "first_call_s": first,
           "compiles_in_timed_runs": meter.compiles - c0}
    if has_bound:
        out["simulator_steps_per_s"] = spread(rate["simulator"])
        out["ratio_engine_to_simulator"] = ratio_stats(rate["engine"], rate["simulator"])
        out["ratio_peer_to_simulator"] = ratio_stats(rate["peer"], rate["simulator"])
    return out


# --- mode: sweep ---------------------------------------------------------------------------------
_VINIT: dict = {}


def grid_args(meta, g: int, seed: int = 0):
    """``g`` grid points: elite fractions spread over (0, 1] crossed with diversities {1, 0}."""
    press = np.linspace(0.1, 1.0, max(1, (g + 1) // 2), dtype=np.float32)
    pressures = np.resize(np.repeat(press, 2), g).astype(np.float32)
    diversities = np.resize(np.array([1, 0], np.int32), g)
    if id(meta) not in _VINIT:  # one jit (one compile) per Meta, kept beside it
        _VINIT[id(meta)] = (meta, jax.jit(jax.vmap(meta.init)))
    vinit = _VINIT[id(meta)][1]
    states = vinit(jax.random.split(jax.random.PRNGKey(seed), g))
    return states, jnp.asarray(pressures), jnp.asarray(diversities)


def engine_sweep_fn(meta, n: int):
    """The engine's sweep chunk, the program ``meta-evo sweep`` runs:
    :func:`meta_evo.engine.make_grid_chunk` (``jit(vmap(run_chunk))``, the grid axis sharded
    over every local device; the grid padded to a multiple of the devices)."""
    from meta_evo import engine
    fn = engine.make_grid_chunk(meta)
    mult = engine.grid_devices(fn.mesh)

    def run(states, pressures, diversities):
        size = -(-engine.grid_size(states) // mult) * mult
        return fn(*engine.pad_grid((states, pressures, diversities), size), n)

    return run, (f"meta_evo.engine.make_grid_chunk over {mult} device(s) "
                 "(jit(vmap(Meta.run_chunk)), grid axis sharded)")


def mode_sweep(args, meter) -> dict:
    from meta_evo.meta import Meta
    meta = Meta(make_cfg(args))
    n, g, fam = args.generations, args.grid, meta.family
    comp: dict = {}
    steps = {"engine": g * n * meta.env_steps_per_generation,
             "peer": g * n * meta.env_steps_per_generation}
    eng, eng_name = engine_sweep_fn(meta, n)
    peer = Peer(meta)
    runs = {}
    if hasattr(fam, "env") and not args.no_bound:
        b = g * env_batch(meta)
        episodes = max(1, round(steps["engine"] / (b * meta.cfg.task.episode_length)))
        bound = make_bound(fam, b, meta.cfg.task.episode_length, episodes)
        steps["simulator"] = b * meta.cfg.task.episode_length * episodes
        runs["simulator"] = lambda r: timed(bound, jax.random.PRNGKey(r))

    def peer_run(r):
        st, pr, dv = grid_args(meta, g, r)
        pr, dv = list(np.asarray(pr)), list(np.asarray(dv))
        keys = list(st.key)
        jax.block_until_ready(st)
        return timed(lambda: peer.sweep(st.es_state, keys, pr, dv, n))

    def engine_run(r):
        a = grid_args(meta, g, r)
        jax.block_until_ready(a)
        return timed(eng, *a)

    runs["peer"], runs["engine"] = peer_run, engine_run
    first = {}
    for p in runs:
        with meter.measure(comp, p):
            first[p] = runs[p](1000)[0]
            runs[p](1001)
    c0 = meter.compiles
    secs = {p: [] for p in runs}
    for r in range(args.rounds):
        for p in rotate(list(runs), r):
            secs[p].append(runs[p](r)[0])
        print(f"  round {r + 1}/{args.rounds}: " + "  ".join(
            f"{p} {steps[p] / secs[p][-1]:,.0f}/s" for p in runs), flush=True)
    rate = {p: [steps[p] / s for s in secs[p]] for p in runs}
    out = {"mode": "sweep", "workload": workload(meta), "grid_points": g,
           "generations_per_call": n, "rounds": args.rounds, "engine_sweep": eng_name,
           "peer_sweep": "Python loop over grid points of Python loops of jitted ask/fitness/tell",
           "env_steps_per_call": steps,
           "seconds_per_call": {p: spread(v) for p, v in secs.items()},
           "peer_steps_per_s": spread(rate["peer"]),
           "engine_steps_per_s": spread(rate["engine"]),
           "ratio_engine_to_peer": ratio_stats(rate["engine"], rate["peer"]),
           "engine_seconds_per_generation": statistics.median(secs["engine"]) / n,
           "peer_seconds_per_generation": statistics.median(secs["peer"]) / n,
           "compile_s": {p: comp[p]["compile_s"] for p in comp},
           "compiles": {p: comp[p]["compiles"] for p in comp},
           "first_call_s": first, "compiles_in_timed_runs": meter.compiles - c0}
    if "simulator" in runs:
        out["simulator_steps_per_s"] = spread(rate["simulator"])
        out["ratio_engine_to_simulator"] = ratio_stats(rate["engine"], rate["simulator"])
    return out


# --- mode: scaling -------------------------------------------------------------------------------
def mode_scaling(args, meter, out_path: Path | None) -> dict:
    from meta_evo import engine
    from meta_evo.meta import Meta
    n = args.generations
    k = args.scale_points
    axes = {"population": [args.scale_population * 2**i for i in range(k)],
            "candidates": [args.scale_candidates * 2**i for i in range(k)],
            "grid": [args.scale_grid * 2**i for i in range(k)]}
    result = {"mode": "scaling", "generations_per_call": n, "rounds": args.rounds,
              "base": {"population": args.population, "candidates": args.candidates, "grid": 1},
              "axes": {a: [] for a in axes}}
    for axis in (args.scale_axes or list(axes)):
        for v in axes[axis]:
            over = {"population": v} if axis == "population" else (
                {"candidates": v} if axis == "candidates" else {})
            meta = Meta(make_cfg(args, **over))
            g = v if axis == "grid" else 1
            comp: dict = {}
            if axis == "grid":
                fn, _ = engine_sweep_fn(meta, n)
                call = lambda r, meta=meta, g=g, fn=fn: timed(fn, *grid_args(meta, g, r))
            else:
                init = jax.jit(meta.init)
                one = engine.make_run_chunk(meta)
                pr = np.float32([meta.cfg.meta.pressure])
                dv = np.int32([meta.cfg.task.diversity])
                call = lambda r, init=init, one=one, pr=pr, dv=dv: timed(
                    one, engine.as_group(init(jax.random.PRNGKey(r))), pr, dv, n)
            with meter.measure(comp, "engine"):
                call(1000)
            secs = [call(r)[0] for r in range(args.rounds)]
            steps = g * n * meta.env_steps_per_generation
            row = {"value": v, "grid_points": g, "env_batch": g * env_batch(meta),
                   "env_steps_per_call": steps,
                   "engine_steps_per_s": spread([steps / s for s in secs]),
                   "seconds_per_generation": spread([s / n for s in secs]),
                   "compile_s": comp["engine"]["compile_s"], "peak_rss_mb": peak_rss_mb()}
            result["axes"][axis].append(row)
            print(f"  {axis}={v}: {row['engine_steps_per_s']['median']:,.0f} steps/s, "
                  f"{row['seconds_per_generation']['median']:.3f} s/generation "
                  f"(compile {row['compile_s']:.1f} s)", flush=True)
            if out_path is not None:  # partial results survive a time limit
                write_json(out_path, {**result, **common()})
    if out_path is not None:
        plot_scaling({**result, "device": device_info()}, out_path.with_suffix(".png"))
    return result


def plot_scaling(result: dict, png: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    axes = [a for a in result["axes"] if result["axes"][a]]
    if not axes:
        return
    fig, ax = plt.subplots(2, len(axes), figsize=(4 * len(axes), 6), squeeze=False)
    for j, a in enumerate(axes):
        rows = result["axes"][a]
        x = [r["value"] for r in rows]
        for i, (key, label) in enumerate((("engine_steps_per_s", "env steps / s"),
                                          ("seconds_per_generation", "s / meta-generation"))):
            med = [r[key]["median"] for r in rows]
            lo = [r[key]["median"] - r[key]["min"] for r in rows]
            hi = [r[key]["max"] - r[key]["median"] for r in rows]
            ax[i, j].errorbar(x, med, yerr=[lo, hi], marker="o", capsize=3)
            ax[i, j].set_xscale("log", base=2)
            ax[i, j].set_yscale("log")
            ax[i, j].set_xlabel({"population": "meta-population M", "candidates": "candidates P",
                                 "grid": "grid points G"}[a])
            ax[i, j].set_ylabel(label)
            ax[i, j].grid(True, which="both", alpha=0.3)
    dev = result.get("device") or device_info()
    fig.suptitle(f"meta-evo engine scaling ({dev['platform']}: {dev['device_kind']})")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


# --- mode: memory --------------------------------------------------------------------------------
def proc_status_mb(field: str):
    """``VmRSS`` / ``VmHWM`` of this process from /proc (Linux), in MB; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def mode_memchild(args) -> dict:
    """One chunked sweep in this fresh process. The chunk program is compiled ahead of time
    (compilation's own memory peak is not the sweep's), the peak RSS is reset, and the compiled
    program runs every chunk: ``run_added_mb`` is what the sweep run adds on top of the process.
    ``program_mb`` is XLA's own account of the chunk program (temp + argument + output bytes)."""
    from meta_evo import engine
    from meta_evo.meta import Meta
    meta = Meta(make_cfg(args))
    fn = engine.make_grid_chunk(meta)
    a = grid_args(meta, args.grid, 0)
    first = engine.pad_grid(jax.tree.map(lambda x: x[:args.chunk], a), args.chunk)
    lowered = fn.lower(*first, args.generations).compile()

    def compiled(*group):
        return lowered(*fn.place(*group, args.generations)[:3])
    ma = lowered.memory_analysis()
    program = None if ma is None else (ma.temp_size_in_bytes + ma.argument_size_in_bytes
                                       + ma.output_size_in_bytes) / 2**20
    del first
    before = proc_status_mb("VmRSS")
    reset = reset_peak_rss()
    t = time.perf_counter()
    out = engine.run_in_groups(compiled, a, args.chunk)
    jax.block_until_ready(out)
    wall = time.perf_counter() - t
    run_peak = proc_status_mb("VmHWM") if reset else None
    return {"grid": args.grid, "chunk": args.chunk, "wall_s": wall, "program_mb": program,
            "rss_before_run_mb": before, "run_peak_rss_mb": run_peak,
            "run_added_mb": None if run_peak is None else run_peak - before,
            "peak_rss_mb": peak_rss_mb(), "device_peak_mb": device_peak_mb()}


def mode_memory(args, meter) -> dict:
    from meta_evo import engine
    from meta_evo.meta import Meta
    meta = Meta(make_cfg(args))
    t = time.perf_counter()
    per_point, source = engine.point_bytes(meta), "engine.point_bytes"
    est_s = time.perf_counter() - t
    budget = (args.memory_budget_mb * 2**20 if args.memory_budget_mb
              else args.budget_points * per_point)
    chunk = engine.fit_group(max(args.grids), per_point, budget)
    rows = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for g in args.grids:
        for c in (min(chunk, g), g) if chunk < g else (g,):
            cmd = [sys.executable, __file__, "--mode", "memchild", "--grid", str(g),
                   "--chunk", str(c), *child_flags(args)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode:
                raise RuntimeError(f"memory child failed: {res.stderr[-2000:]}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row["chunked"] = c < g
            rows.append(row)
            added = row["run_added_mb"]
            print(f"  grid {g:4d} chunk {c:4d}: program {row['program_mb'] or 0:,.1f} MB, "
                  f"process peak RSS {row['peak_rss_mb']:,.0f} MB"
                  + (f", the sweep run adds {added:,.1f} MB" if added is not None else "")
                  + (f", device peak {row['device_peak_mb']:,.0f} MB"
                     if row["device_peak_mb"] is not None else "")
                  + f", {row['wall_s']:.1f} s", flush=True)
    return {"mode": "memory", "workload": workload(meta), "generations_per_call":
            args.generations, "bytes_per_point": per_point, "bytes_per_point_source": source,
            "estimate_s": round(est_s, 2), "budget_mb": round(budget / 2**20, 2),
            "chunk": chunk, "runs": rows}


def child_flags(args) -> list[str]:
    out = []
    for k in ("family", "backend", "agent", "learner", "strategy", "population", "lifetime",
              "candidates", "tasks_per_member", "eval_episodes", "episode_length", "diversity",
              "generations", "seed"):
        out += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    for s in args.set or []:
        out += ["--set", s]
    return out


# --- output --------------------------------------------------------------------------------------
def common() -> dict:
    return {"device": device_info(), "versions": versions(), "peak_rss_mb": peak_rss_mb(),
            "device_peak_mb": device_peak_mb(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_json(path: Path, obj: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float) + "\n")
    tmp.replace(path)


def fmt_rate(s):
    return f"{s['median']:>12,.0f}  [{s['min']:,.0f} .. {s['max']:,.0f}]"


def print_table(res: dict):
    dev = res["device"]
    print(f"\n{res['mode']} on {dev['platform']} ({dev['device_kind']}, "
          f"{dev['device_count']} device(s), host {dev['host_cores']} cores)")
    if res["mode"] in ("single", "sweep"):
        w = res["workload"]
        print(f"workload: {w['family']}/{w['backend']} agent={w['agent']} "
              f"learner={w['learner']} M={w['population']} tasks={w['tasks_per_member']} "
              f"K={w['lifetime']} P={w['candidates']} T={w['episode_length']} "
              f"batch={w['env_batch']}" + (f" grid={res['grid_points']}"
                                           if res["mode"] == "sweep" else ""))
        print(f"{'path':<11}{'env steps/s median':>20}  [min .. max]      compile s")
        for p in PATHS:
            key = f"{p}_steps_per_s"
            if key in res:
                print(f"{p:<11}{fmt_rate(res[key])}   {res['compile_s'].get(p, 0):6.1f}")
        for key in ("ratio_engine_to_simulator", "ratio_engine_to_peer",
                    "ratio_peer_to_simulator"):
            if key in res:
                r = res[key]
                print(f"{key:<28} {r['median']:.3f}  (per round {r['min']:.3f} .. "
                      f"{r['max']:.3f})")
        print(f"compiles during timed runs: {res['compiles_in_timed_runs']}; "
              f"peak RSS {res['peak_rss_mb']:,.0f} MB")
    elif res["mode"] == "memory":
        print(f"bytes per grid point {res['bytes_per_point']:,} ({res['bytes_per_point_source']}),"
              f" budget {res['budget_mb']} MB -> chunk {res['chunk']}")
        print("  grid  chunk  program MB  process peak RSS MB  RSS added by the run MB  "
              "device peak MB")
        for r in res["runs"]:
            added = r.get("run_added_mb")
            print(f"  {r['grid']:4d}  {r['chunk']:5d}  {r.get('program_mb') or 0:10,.1f}  "
                  f"{r['peak_rss_mb']:19,.0f}  "
                  f"{'n/a' if added is None else format(added, ',.1f'):>23}  "
                  f"{r['device_peak_mb']}")


def _cell(st, digits=0, scale=1.0):
    f = f"{{:,.{digits}f}}"
    return (f"{f.format(st['median'] / scale)} ({f.format(st['min'] / scale)} .. "
            f"{f.format(st['max'] / scale)})")


def markdown(paths: list[str]) -> str:
    """Markdown tables (for README.md) from result JSON files."""
    rows, scal, mem = [], [], []
    for p in paths:
        r = json.loads(Path(p).read_text())
        dev = r["device"]
        card = dev["device_kind"] if dev["platform"] != "cpu" else f"CPU, {dev['host_cores']} cores"
        if r["mode"] in ("single", "sweep"):
            w = r["workload"]
            lr = w.get("learner", "es")
            if lr == "rl2":
                who = (f"{w['family']}, rl2 (H={w.get('hidden')}), M={w['population']} x "
                       f"{w['tasks_per_member']} tasks, K={w['lifetime']} episodes")
            else:
                who = (f"{w['family']} ({w['agent']}){'' if lr == 'es' else ', ' + lr}, "
                       f"M={w['population']}, K x P={w['lifetime']}x{w['candidates']}")
            what = (f"{r['mode']}: {who}, T={w['episode_length']}"
                    + (f", G={r['grid_points']}" if r["mode"] == "sweep" else ""))
            na = "n/a"
            rows.append(
                f"| {card} | {what} | "
                + (_cell(r["simulator_steps_per_s"]) if "simulator_steps_per_s" in r else na)
                + f" | {_cell(r['peer_steps_per_s'])} | {_cell(r['engine_steps_per_s'])} | "
                + (f"{_cell(r['ratio_engine_to_simulator'], 3)}"
                   if "ratio_engine_to_simulator" in r else na)
                + f" | {_cell(r['ratio_engine_to_peer'], 3)} | "
                f"{r['engine_seconds_per_generation']:.3f} / {r['peer_seconds_per_generation']:.3f}"
                f" | {r['compile_s'].get('engine', 0):.0f} | {r['peak_rss_mb']:,.0f} | "
                f"{r['rounds']} | `{Path(p).name}` |")
        elif r["mode"] == "scaling":
            for axis, pts in r["axes"].items():
                if not pts:
                    continue
                scal.append(
                    f"| {card} | {axis} | " + " / ".join(str(q["value"]) for q in pts) + " | "
                    + " / ".join(f"{q['env_batch']:,}" for q in pts) + " | "
                    + " / ".join(f"{q['engine_steps_per_s']['median'] / 1e6:.3g}M"
                                 for q in pts) + " | "
                    + " / ".join(f"{q['seconds_per_generation']['median']:.3g}" for q in pts)
                    + " |")
        elif r["mode"] == "memory":
            for q in r["runs"]:
                added = q.get("run_added_mb")
                mem.append(f"| {card} | {q['grid']} | {q['chunk']} | "
                           f"{q.get('program_mb') or 0:,.1f} | "
                           f"{'n/a' if added is None else format(added, ',.1f')} | "
                           f"{q['peak_rss_mb']:,.0f} | {q['wall_s']:.1f} |")
    out = []
    if rows:
        out += ["| device | workload | simulator steps/s | peer steps/s | engine steps/s | "
                "engine / simulator | engine / peer | s per generation (engine / peer) | "
                "engine compile s | peak RSS MB | rounds | file |",
                "| --- " * 12 + "|", *rows, ""]
    if scal:
        out += ["| device | axis | values | env batch | engine env steps/s (median) | "
                "s per meta-generation (median; all grid points) |", "| --- " * 6 + "|",
                *scal, ""]
    if mem:
        out += ["| device | grid points | chunk | chunk program MB (XLA) | "
                "RSS added by the sweep run MB | process peak RSS MB | wall s |",
                "| --- " * 7 + "|", *mem, ""]
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--mode", default="single",
                   choices=["single", "sweep", "scaling", "memory", "memchild"])
    p.add_argument("--family", default="reacher_goal")
    p.add_argument("--backend", default="spring")
    p.add_argument("--agent", default="pd", help="pd (reacher only) | mlp | direct (analytic)")
    p.add_argument("--learner", default="es")
    p.add_argument("--strategy", default="Open_ES")
    p.add_argument("--population", type=int, default=16, help="meta-population M")
    p.add_argument("--lifetime", type=int, default=10, help="K updates per lifetime")
    p.add_argument("--candidates", type=int, default=16, help="P candidates per update")
    p.add_argument("--tasks-per-member", type=int, default=1)
    p.add_argument("--eval-episodes", type=int, default=1, help="E")
    p.add_argument("--episode-length", type=int, default=50, help="T")
    p.add_argument("--diversity", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", help="extra config override key=value")
    p.add_argument("--generations", type=int, default=2, help="meta-generations per timed call")
    p.add_argument("--rounds", type=int, default=5, help="alternating timed rounds")
    p.add_argument("--grid", type=int, default=16, help="sweep: grid points")
    p.add_argument("--no-bound", action="store_true", help="sweep: skip the simulator bound")
    p.add_argument("--chunk", type=int, default=0, help="memchild: grid points per chunk")
    p.add_argument("--scale-points", type=int, default=4)
    p.add_argument("--scale-population", type=int, default=8, help="scaling: first M")
    p.add_argument("--scale-candidates", type=int, default=4, help="scaling: first P")
    p.add_argument("--scale-grid", type=int, default=2, help="scaling: first grid size")
    p.add_argument("--scale-axes", nargs="*", choices=["population", "candidates", "grid"])
    p.add_argument("--grids", type=int, nargs="+", default=[4, 8, 16, 32],
                   help="memory: grid sizes")
    p.add_argument("--memory-budget-mb", type=float, default=0.0,
                   help="memory: budget; 0 = --budget-points grid points' worth")
    p.add_argument("--budget-points", type=int, default=4)
    p.add_argument("--cache", default="", help="persistent compilation cache dir ('' = off)")
    p.add_argument("--out", default="", help="JSON path (PNG beside it for scaling)")
    p.add_argument("--plot", default="", help="only redraw the PNG of a scaling JSON")
    p.add_argument("--markdown", nargs="+", help="only print README tables of result JSONs")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.markdown:
        print(markdown(args.markdown))
        return
    if args.plot:
        plot_scaling(json.loads(Path(args.plot).read_text()), Path(args.plot).with_suffix(".png"))
        return
    from meta_evo.distributed import maybe_initialize_distributed
    maybe_initialize_distributed()  # multi-host when JAX_COORDINATOR_ADDRESS etc. ask for it
    if args.cache:
        jax.config.update("jax_compilation_cache_dir", args.cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    if args.mode == "memchild":
        print(json.dumps(mode_memchild(args), default=float))
        return
    meter = CompileMeter()
    out = Path(args.out) if args.out else None
    t0 = time.perf_counter()
    print(f"meta-evo throughput: mode {args.mode} on {jax.devices()[0].device_kind}", flush=True)
    if args.mode == "single":
        res = mode_single(args, meter)
    elif args.mode == "sweep":
        res = mode_sweep(args, meter)
    elif args.mode == "scaling":
        res = mode_scaling(args, meter, out)
    else:
        res = mode_memory(args, meter)
    res.update(common())
    res["command"] = "python benchmarks/throughput.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    res["total_s"] = round(time.perf_counter() - t0, 1)
    print_table(res)
    if out is not None:
        write_json(out, res)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
