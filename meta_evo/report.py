"""The sweep report: ``report.json``, ``report.md`` and PNG plots in the run directory.

``build_report(result)`` turns a :class:`meta_evo.sweep.SweepResult` into a JSON-ready dict:

- ``points``: per grid point and arm: learner, selection intensity, raw pressure, seed,
  diversity, every scalar kernel metric at the end and at each measured generation, the
  learner's readable parameters (e.g. the evolved step size), final fitness, fitness history;
- ``levels``: per arm, diversity, intensity and metric: mean over seeds with a 95 % t-interval;
- ``onsets``: per metric and diversity, ``kernels.emergence_onset`` of the learner arm against
  the ``amortized`` arm at the same level and seed (paired), with the onset interval and the
  logistic midpoint with its interval, or "none in range";
- env steps, wall time, compile evidence (trace counts), versions and platform.

``write_report(out_dir, report)`` writes the files; the plots are drawn from the report dict
alone (:mod:`meta_evo.report_plots`, matplotlib with the Agg backend), so they can be redrawn
from a saved ``report.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import kernels
from meta_evo.measure import SCALARS

# Metrics of the table and the phase diagram: (key, label). "step" comes from the learner's
# describe(theta) (the inner ES step size); the amortized control has none (its step is 0).
KEY_METRICS = (
    ("lifetime_gain", "lifetime gain"),
    ("objective_sensitivity", "objective sensitivity"),
    ("behavioral_accuracy", "behavioral accuracy"),
    ("online_share", "online share"),
    ("update_alignment", "update alignment"),
    ("step", "evolved step size"),
)
PHASE_METRICS = KEY_METRICS + (("return_final", "held-out return after lifetime"),
                               ("op_final_bits", "optimization power (bits)"))
NUM_BOOTSTRAP = 1000
ALPHA = 0.05
def mean_ci(values) -> tuple[float, float, float]:
    """Mean over seeds and its 95 % t-interval, ``(mean, lo, hi)``; non-finite values dropped."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.975, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


def _py(x):
    """JSON-ready: floats (NaN/inf -> None), ints, bools, lists."""
    a = np.asarray(x)
    if a.ndim:
        return [_py(v) for v in a]
    v = a.item()
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v


def diversity_label(d: int) -> str:
    if d == 0:
        return "targets vary (d=0: fresh draw each time)"
    if d == 1:
        return "one fixed task (d=1)"
    return f"{d} training tasks (d={d})"


def _short_div(d: int) -> str:
    return "d=0 (vary)" if d == 0 else ("d=1 (fixed)" if d == 1 else f"d={d}")


# --- from a sweep result to arrays ------------------------------------------------------------
def _scalars(arm, gen: int) -> dict:
    """{metric: [G]} of an arm at a measured generation: kernel scalars + learner describe."""
    meas = arm.measures[gen]
    out = {k: np.asarray(meas[k], np.float64) for k in SCALARS}
    for k, v in arm.describe.get(gen, {}).items():
        out[k] = np.asarray(v, np.float64)
    return out


def _by_level(grid, values: np.ndarray, div_index: int, levels: int, seeds: int) -> np.ndarray:
    """[L, S] of one diversity level from a [G] vector (grid: diversity, intensity, seed)."""
    sel = grid.div_index == div_index
    out = np.full((levels, seeds), np.nan)
    out[grid.level[sel], grid.seed[sel]] = values[sel]
    return out


def _paired(values: np.ndarray, control: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Replace non-finite entries by their partner (difference 0: no effect claimed), and
    treat differences at float-rounding size (relative 1e-5 of the metric's spread) as 0, so
    a theta that moved by rounding alone (e.g. at intensity 0) is not an effect."""
    bad = ~np.isfinite(values) | ~np.isfinite(control)
    v = np.where(np.isfinite(values), values, control)
    c = np.where(np.isfinite(control), control, v)
    v = np.where(np.isfinite(v), v, 0.0)
    c = np.where(np.isfinite(c), c, 0.0)
    both = np.concatenate([v.ravel(), c.ravel()])
    tol = 1e-5 * max(float(np.ptp(both)), float(np.abs(both).max(initial=0.0)), 1e-12)
    v = np.where(np.abs(v - c) <= tol, c, v)
    return v, c, int(bad.sum())


def _onset_batch(pressures, values, controls, key):
    """vmapped emergence_onset over a batch of [Q, L, S] values and controls."""
    fn = jax.jit(jax.vmap(lambda v, c: kernels.emergence_onset(
        pressures, v, c, key, num_bootstrap=NUM_BOOTSTRAP, alpha=ALPHA)))
    return jax.device_get(fn(jnp.asarray(values, jnp.float32), jnp.asarray(controls, jnp.float32)))


def compute_onsets(res) -> list[dict]:
    """Onsets of every scalar metric of the learner arm, per diversity level, against the
    control (``kind == "control"``), and, where the sweep has a fixed-task level (d=1), of each
    other diversity level against it (``kind == "contrast"``). One vmapped kernel call."""
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    arms = list(res.arms)
    learner = arms[0]
    final = cfg.meta.generations
    L, S = len(sw.intensities), sw.seeds
    if L < 2:
        return []
    main = _scalars(res.arms[learner], final)
    ctrl_arm = res.arms.get("amortized") if learner != "amortized" else None
    ctrl = _scalars(ctrl_arm, final) if ctrl_arm is not None else None
    init = _scalars(res.arms[learner], 0)
    jobs, vals, ctls = [], [], []
    for di, d in enumerate(sw.diversities):
        for metric in main:
            v = _by_level(grid, main[metric], di, L, S)
            if ctrl is not None and metric in ctrl:
                c, against = _by_level(grid, ctrl[metric], di, L, S), "amortized"
            elif metric in SCALARS:
                c, against = np.repeat(v[:1], L, axis=0), "lowest pressure"
            else:  # a learner parameter: against its meta-init value (generation 0)
                c, against = _by_level(grid, init[metric], di, L, S), "meta-init"
            v, c, bad = _paired(v, c)
            jobs.append((learner, metric, int(d), against, bad))
            vals.append(v)
            ctls.append(c)
    # The diversity contrast: the learner arm where tasks vary against the same arm, seed and
    # level with one fixed task (paired: both start from the seed's meta-init).
    if 1 in sw.diversities:
        fixed = list(sw.diversities).index(1)
        for di, d in enumerate(sw.diversities):
            if di == fixed:
                continue
            for metric in main:
                v, c, bad = _paired(_by_level(grid, main[metric], di, L, S),
                                    _by_level(grid, main[metric], fixed, L, S))
                jobs.append((learner, metric, int(d), "d=1 (same arm)", bad))
                vals.append(v)
                ctls.append(c)
    key = jax.random.PRNGKey(cfg.seed + 7)
    r = _onset_batch(jnp.asarray(sw.intensities, jnp.float32), np.stack(vals), np.stack(ctls),
                     key)
    out = []
    for q, (arm, metric, d, against, bad) in enumerate(jobs):
        found = bool(r.found[q])
        item = {
            "arm": arm, "metric": metric, "diversity": d, "control": against,
            "found": found,
            "onset": _py(r.onset[q]) if found else None,
            "onset_ci": _py(r.onset_ci[q]),
            "onset_prob": _py(r.onset_prob[q]),
            "midpoint": _py(r.midpoint[q]),
            "midpoint_ci": _py(r.midpoint_ci[q]),
            "fit": {"lo": _py(r.fit.lo[q]), "hi": _py(r.fit.hi[q]), "mid": _py(r.fit.mid[q]),
                    "scale": _py(r.fit.scale[q])},
            "difference": _py(r.difference[q]),
            "lower_bound": _py(r.lower_bound[q]),
            "significant": _py(r.significant[q]),
            "nonfinite_replaced": bad,
        }
        item["kind"] = "contrast" if against == "d=1 (same arm)" else "control"
        item["summary"] = onset_text(item)
        out.append(item)
    return out


def onset_text(o: dict) -> str:
    if not o["found"]:
        return "none in range"
    lo, hi = o["onset_ci"]
    ci = f" (95% CI {lo:.2f} to {hi:.2f})" if lo is not None and hi is not None else ""
    return f"onset at i = {o['onset']:.2f}{ci}, P(onset) {o['onset_prob']:.2f}"


def _level_table(res) -> list[dict]:
    """Mean and 95 % t-interval over seeds per arm, diversity, intensity and metric (final)."""
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    L, S = len(sw.intensities), sw.seeds
    rows = []
    for arm_name, arm in res.arms.items():
        vals = _scalars(arm, cfg.meta.generations)
        vals["final_fitness"] = np.asarray(arm.history["fitness_mean"][:, -1], np.float64)
        for di, d in enumerate(sw.diversities):
            for li, i in enumerate(sw.intensities):
                row = {"arm": arm_name, "diversity": int(d), "intensity": float(i),
                       "pressure": _py(grid.pressure[grid.level == li][0])}
                for metric, v in vals.items():
                    m, lo, hi = mean_ci(_by_level(grid, v, di, L, S)[li])
                    row[metric] = {"mean": _py(m), "ci": [_py(lo), _py(hi)]}
                rows.append(row)
    return rows


def _points(res) -> list[dict]:
    cfg, grid = res.cfg, res.grid
    final = cfg.meta.generations
    points = []
    for arm_name, arm in res.arms.items():
        gens = sorted(arm.measures)
        per_gen = {g: _scalars(arm, g) for g in gens}
        for g_i in range(grid.size):
            p = {
                "arm": arm_name, "learner": arm.learner,
                "intensity": float(grid.intensity[g_i]), "pressure": _py(grid.pressure[g_i]),
                "seed": int(grid.seed[g_i]), "diversity": int(grid.diversity[g_i]),
                "final_fitness": _py(arm.history["fitness_mean"][g_i, -1]),
                "best_fitness": _py(arm.history["fitness_best"][g_i].max()),
                "metrics": {k: _py(v[g_i]) for k, v in per_gen[final].items()},
                "by_generation": {str(g): {k: _py(v[g_i]) for k, v in per_gen[g].items()}
                                  for g in gens},
                "curve": _py(arm.measures[final]["curve"][g_i]),
                "curve_initial": _py(arm.measures[0]["curve"][g_i]),
                "fitness_history": _py(arm.history["fitness_mean"][g_i]),
            }
            if "mean_step" in arm.history:
                p["step_history"] = _py(arm.history["mean_step"][g_i])
            points.append(p)
    return points


def _strongest(res) -> dict:
    """The learner-arm grid point with the highest final objective sensitivity, its
    cross-task matrix, and the control arm's matrix at the same point."""
    cfg, grid = res.cfg, res.grid
    final = cfg.meta.generations
    name = next(iter(res.arms))
    meas = res.arms[name].measures[final]
    s = np.where(np.isfinite(meas["objective_sensitivity"]), meas["objective_sensitivity"],
                 -np.inf)
    g = int(np.argmax(s))
    n = cfg.measure.heldout_tasks
    cols = [f"task {b}" for b in range(n)]
    cols += ["proxy"] * (meas["matrix"].shape[-1] - n)
    from meta_evo.tasks import FAMILIES
    proxies = FAMILIES[cfg.task.family].proxy_names
    cols = cols[:n] + [f"proxy: {p}" for p in proxies][: meas["matrix"].shape[-1] - n]
    out = {"arm": name, "index": g, "intensity": float(grid.intensity[g]),
           "seed": int(grid.seed[g]), "diversity": int(grid.diversity[g]),
           "columns": cols, "matrix": _py(meas["matrix"][g]),
           "predicted": _py(meas["predicted"][g]),
           "objective_sensitivity": _py(meas["objective_sensitivity"][g]),
           "behavioral_accuracy": _py(meas["behavioral_accuracy"][g])}
    if "amortized" in res.arms and name != "amortized":
        cm = res.arms["amortized"].measures[final]
        out["control_matrix"] = _py(cm["matrix"][g])
        out["control_predicted"] = _py(cm["predicted"][g])
    return out


def build_report(res) -> dict:
    """The JSON-ready report of a :class:`~meta_evo.sweep.SweepResult`."""
    from meta_evo.runs import platform_info, versions

    cfg, grid = res.cfg, res.grid
    sw, m = cfg.sweep, cfg.meta
    timings = {name: {"wall_s": round(a.wall_s, 2),
                      "first_chunk_s_incl_compile": round(a.first_chunk_s, 2),
                      "measure_s_incl_compile": round(a.measure_s, 2),
                      "env_steps": a.env_steps, "group_size": a.group_size,
                      "groups": a.groups, "chunk": a.chunk, "traces": a.traces,
                      "shared_measure": a.shared_measure}
               for name, a in res.arms.items()}
    raw = {float(i): _py(grid.pressure[grid.level == li][0])
           for li, i in enumerate(sw.intensities)}
    onsets = compute_onsets(res)
    rep = {
        "kind": "meta-evo sweep report",
        "family": cfg.task.family, "backend": cfg.task.backend, "agent": cfg.agent.kind,
        "arms": list(res.arms), "control": "amortized" if "amortized" in res.arms else None,
        "axes": {
            "intensities": [float(i) for i in sw.intensities],
            "raw_pressures": [raw[float(i)] for i in sw.intensities],
            "selection": m.selection, "population": m.population,
            "seeds": sw.seeds, "diversities": [int(d) for d in sw.diversities],
        },
        "generations": m.generations,
        "measure_generations": sorted(next(iter(res.arms.values())).measures),
        "chance_accuracy": 1.0 / cfg.measure.heldout_tasks,
        "onsets": [o for o in onsets if o["kind"] == "control"],
        "contrasts": [o for o in onsets if o["kind"] == "contrast"],
        "levels": _level_table(res),
        "strongest": _strongest(res),
        "points": _points(res),
        "env_steps": int(res.env_steps),
        "wall_s": round(res.wall_s, 2),
        "timings": timings,
        "versions": versions(),
        "platform": platform_info(),
        "config": cfg.to_dict(),
    }
    return rep


# --- files ---------------------------------------------------------------------------------------
def write_report(out_dir: str | Path, report: dict) -> list[Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots; return the paths written."""
    from meta_evo.report_plots import plot_all
    from meta_evo.runs import write_json

    out = Path(out_dir)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    return [out / "report.json", out / "report.md", *plot_all(report, out)]


def _fmt(cell: dict | None, digits: int = 3) -> str:
    if not cell or cell.get("mean") is None:
        return "—"
    m, (lo, hi) = cell["mean"], cell["ci"]
    if lo is None or hi is None or lo == hi:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def markdown(rep: dict) -> str:
    """The human summary: setup, per-metric tables (mean ± 95 % CI over seeds), onsets."""
    ax = rep["axes"]
    cfg = rep["config"]
    arms, divs = rep["arms"], ax["diversities"]
    learner = arms[0]
    lines = [f"# Sweep report: {rep['family']} ({rep['backend']}), {rep['agent']} agent", ""]
    lines += [
        f"Learner arm `{learner}`" + (f", control arm `{rep['control']}`" if rep["control"]
                                       else ", no control arm (onsets against the lowest "
                                       "pressure)") + ".",
        f"Grid: {len(ax['intensities'])} selection intensities x {ax['seeds']} seeds x "
        f"{len(divs)} diversity levels ({', '.join(_short_div(d) for d in divs)}); "
        f"{rep['generations']} meta-generations of {ax['population']} members "
        f"({ax['selection']} selection), lifetimes of {cfg['learner']['lifetime']} x "
        f"{cfg['learner']['candidates']}, episodes of {cfg['task']['episode_length']} steps.",
        f"Measured on {cfg['measure']['heldout_tasks']} held-out tasks (chance accuracy "
        f"{rep['chance_accuracy']:.2f}) at generations {rep['measure_generations']}.",
        f"Env steps: {rep['env_steps']:,}; wall time {rep['wall_s']:.0f} s "
        f"({rep['platform']['backend']}, {rep['platform']['device']}).",
        "",
        "Selection intensity i and the raw pressure it maps to "
        f"({'elite fraction' if ax['selection'] == 'truncation' else 'Boltzmann beta'}):",
        "",
        "| i | " + " | ".join(f"{i:.2f}" for i in ax["intensities"]) + " |",
        "|---|" + "---|" * len(ax["intensities"]),
        "| raw | " + " | ".join(f"{p:.3f}" for p in ax["raw_pressures"]) + " |",
        "",
        "## Onsets",
        "",
        f"Smallest intensity from which `{learner}` exceeds its control at every higher level "
        "(one-sided paired bootstrap over seeds, alpha 0.05, fixed-sequence from the top), with "
        "a 95 % bootstrap interval; logistic midpoint of the level means with its interval "
        "(meaningful only where the metric clearly rises).",
        "",
        "| metric | diversity | control | onset | logistic midpoint |",
        "|---|---|---|---|---|",
    ]
    label = dict(PHASE_METRICS)
    for o in rep["onsets"]:
        if o["metric"] not in label:
            continue
        mid = "—"
        if o["found"] and o["midpoint"] is not None:
            lo, hi = o["midpoint_ci"]
            mid = f"{o['midpoint']:.2f}" + (f" ({lo:.2f} to {hi:.2f})" if lo is not None
                                             else "")
        lines.append(f"| {label[o['metric']]} | {_short_div(o['diversity'])} | {o['control']} "
                     f"| {o['summary']} | {mid} |")
    others = [o for o in rep["onsets"] if o["metric"] not in label and o["found"]]
    if others:
        lines += ["", "Other metrics with an onset: " + "; ".join(
            f"{o['metric']} ({_short_div(o['diversity'])}): {o['summary']}" for o in others)]
    if rep.get("contrasts"):
        lines += ["", "### Diversity contrast", "",
                  f"Smallest intensity from which `{learner}` with varying tasks exceeds "
                  f"`{learner}` with one fixed task (same seed and level), the same test: where "
                  "online optimization pays more when tasks vary than when they can be "
                  "memorized.", "",
                  "| metric | diversity vs d=1 | onset | mean difference per level |",
                  "|---|---|---|---|"]
        for o in rep["contrasts"]:
            if o["metric"] not in label:
                continue
            diff = ", ".join("—" if x is None else f"{x:+.2f}" for x in o["difference"])
            lines.append(f"| {label[o['metric']]} | {_short_div(o['diversity'])} | "
                         f"{o['summary']} | {diff} |")
    lines += ["", "## Metrics per level (mean ± 95 % t-interval half-width over seeds, final "
              "generation)", ""]
    table = {(r["arm"], r["diversity"], r["intensity"]): r for r in rep["levels"]}
    for key, name in KEY_METRICS + (("final_fitness", "final training fitness"),):
        head = ["i"] + [f"{a} {_short_div(d)}" for d in divs for a in arms]
        lines += [f"### {name}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for i in ax["intensities"]:
            cells = [f"{i:.2f}"]
            for d in divs:
                for a in arms:
                    r = table.get((a, d, float(i)))
                    cells.append(_fmt(r.get(key) if r else None))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    s = rep["strongest"]
    lines += ["## Strongest grid point", "",
              f"`{s['arm']}` at i = {s['intensity']:.2f}, seed {s['seed']}, "
              f"{_short_div(s['diversity'])}: objective sensitivity "
              f"{s['objective_sensitivity']:.3f}, behavioral accuracy "
              f"{s['behavioral_accuracy']:.2f} (cross_task_matrix.png).", ""]
    lines += ["## Plots", "",
              "- `phase_diagram.png`: each metric against selection intensity; dots are seeds, "
              "lines the mean with its 95 % interval, dashed the control arm; a vertical line "
              "marks the onset, its band the onset interval.",
              "- `lifetime_curves.png`: held-out return along the lifetime, per intensity.",
              "- `evolution.png`: the evolved step size and the training fitness per "
              "meta-generation.",
              "- `cross_task_matrix.png`: the cross-task matrix of the strongest point and of "
              "the control at the same point.", ""]
    t = rep["timings"]
    lines += ["## Cost", "", "| arm | wall s | first chunk s (with compile) | measure s (with "
              "compile) | env steps | compiles (chunk, measure) |", "|---|---|---|---|---|---|"]
    for a, v in t.items():
        meas = "shared" if v.get("shared_measure") else v["traces"]["measure"]
        lines.append(f"| {a} | {v['wall_s']} | {v['first_chunk_s_incl_compile']} | "
                     f"{v['measure_s_incl_compile']} | {v['env_steps']:,} | "
                     f"{v['traces']['chunk']}, {meas} |")
    if "cpu_s" in rep:
        lines += ["", f"Process CPU time {rep['cpu_s']:.0f} s."]
    vers = rep["versions"]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), ""]
    return "\n".join(lines)
