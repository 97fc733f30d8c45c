"""``build_report(result)``: a :class:`meta_evo.sweep.SweepResult` as a JSON-ready dict.

- ``points``: per grid point and arm: learner, selection intensity, raw pressure, seed,
  diversity, every scalar kernel metric at the end and at each measured generation, the
  learner's readable parameters (e.g. the evolved step size), final fitness, fitness history;
- ``levels``: per arm, diversity, intensity and metric: mean over seeds with a 95 % t-interval;
- ``onsets``: per tested metric (the primary metric and ``common.TESTED_METRICS``) and
  diversity, the onset of the learner arm (the first arm) against the control arm (the second,
  paired by level and seed) or, without one, against the lowest pressure (a learner parameter:
  against its meta-init value); ``contrasts``: each diversity level against the fixed task
  (d=1), same arm. Each with its test role (primary or exploratory), level, p-values, onset or
  "none in range" or "too few seeds", the per-level differences with t-intervals
  (``levels``), unconditional onset interval, trend test and logistic midpoint
  (:mod:`meta_evo.report.onsets`, on :mod:`meta_evo.report.stats`); ``tests``: the two
  families, their sizes and levels;
- ``not_tested``: the diversity levels where the learner and its control are the same by
  construction (d=1 against a ``shuffled`` control), whose tests are not run;
- ``findings``: per diversity, the three findings (in-context adaptation, general learning,
  optimizer-like updates) and the claim they support (:mod:`meta_evo.report.findings`);
- ``selection``: per intensity, the effective number of parents of the rank weights, the
  realized search scale where the strategy adapts it, and the drift expected on noise alone
  (:mod:`meta_evo.report.selection`);
- ``regimes`` (with two or more diversity levels): per arm, intensity and level, the regime
  shares over seeds (memorization, identification, general learning; ``kernels.regime``),
  pool and held-out accuracy and sensitivity (:mod:`meta_evo.report.regimes`);
- ``which_objective`` (with a training region): per intensity and level, the verdict (no
  optimization, pseudo-aligned, objective undetermined, goal generalizes, capability only)
  from tests against the control and the reference arm, with the excess proxy pull and margin
  (:mod:`meta_evo.report.which_objective`), and the per-seed outcome labels as a description
  (``kernels.generalization``, :mod:`meta_evo.report.outcomes`); ``reference_tests``: the
  tests against the reference arm;
- ``algorithm`` (two or more diversity levels, a family whose answer is a task): per arm,
  intensity and level, the distance of the final answer to pool-Bayes and prior-Bayes, and a
  Holm-adjusted sign-flip test of "nearer prior-Bayes" (:mod:`meta_evo.report.algorithm`);
- env steps, wall time, compile evidence (trace counts), versions and platform.

This module reads the sweep result (through :mod:`meta_evo.report.result_arrays`) and hands
plain arrays to the section modules, which know nothing of a sweep.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from meta_evo.report.common import ALPHA, CI_LEVEL, NUM_BOOTSTRAP, py
from meta_evo.report.findings import findings_section
from meta_evo.report.onsets import compute_onsets, not_tested
from meta_evo.report.result_arrays import (
    arm_labels,
    by_level,
    final_measures,
    learner_and_control,
    primary_metric,
    scalars,
)
from meta_evo.report.selection import selection_summary
from meta_evo.report.stats import ci_cell


# --- per level and per point ---------------------------------------------------------------------
def _level_table(res) -> list[dict]:
    """Mean and 95 % t-interval over seeds per arm, diversity, intensity and metric (final)."""
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    L, S = len(sw.intensities), sw.seeds
    rows = []
    for arm_name, arm in res.arms.items():
        vals = scalars(arm, cfg.meta.generations)
        vals["final_fitness"] = np.asarray(arm.history["fitness_mean"][:, -1], np.float64)
        for di, d in enumerate(sw.diversities):
            for li, i in enumerate(sw.intensities):
                row = {"arm": arm_name, "diversity": int(d), "intensity": float(i),
                       "pressure": py(grid.pressure[grid.level == li][0])}
                for metric, v in vals.items():
                    row[metric] = ci_cell(by_level(grid, v, di, L, S)[li])
                rows.append(row)
    return rows


def _points(res) -> list[dict]:
    """Every grid point of every arm: its coordinates, metrics (final and per measured
    generation), lifetime curves and histories."""
    cfg, grid = res.cfg, res.grid
    final = cfg.meta.generations
    points = []
    for arm_name, arm in res.arms.items():
        gens = sorted(arm.measures)
        per_gen = {g: scalars(arm, g) for g in gens}
        for g_i in range(grid.size):
            p = {
                "arm": arm_name, "learner": arm.learner,
                "intensity": float(grid.intensity[g_i]), "pressure": py(grid.pressure[g_i]),
                "seed": int(grid.seed[g_i]), "diversity": int(grid.diversity[g_i]),
                "final_fitness": py(arm.history["fitness_mean"][g_i, -1]),
                "best_fitness": py(arm.history["fitness_best"][g_i].max()),
                "metrics": {k: py(v[g_i]) for k, v in per_gen[final].items()},
                "by_generation": {str(g): {k: py(v[g_i]) for k, v in per_gen[g].items()}
                                  for g in gens},
                "curve": py(arm.measures[final]["curve"][g_i]),
                "curve_initial": py(arm.measures[0]["curve"][g_i]),
                "fitness_history": py(arm.history["fitness_mean"][g_i]),
            }
            if "mean_step" in arm.history:
                p["step_history"] = py(arm.history["mean_step"][g_i])
            if "sigma" in arm.history:
                p["sigma_history"] = py(arm.history["sigma"][g_i])
            points.append(p)
    return points


def matrix_proxy_names(cfg, extra: int) -> list[str]:
    """Names of the ``extra`` proxy columns of the cross-task matrix (the family's own, then
    the region's); generic names where the family cannot say."""
    names: list[str] = []
    try:
        from meta_evo.tasks import make_family
        names = list(make_family(cfg.task).matrix_proxy_names(cfg.task.train_region,
                                                              cfg.measure.proxies))
    except Exception:  # noqa: BLE001 - labels only: fall back to generic names
        names = []
    names = names[:extra]
    return names + [f"proxy {k}" for k in range(len(names), extra)]


# --- the sections, from arrays -------------------------------------------------------------------
def regimes_report(res) -> dict | None:
    """The ``regimes`` section (two or more diversity levels), else None."""
    from meta_evo.report.regimes import regimes_section

    cfg = res.cfg
    sw = cfg.sweep
    if len(sw.diversities) < 2:
        return None
    primary = primary_metric(cfg)
    final = cfg.meta.generations
    pv = {a: scalars(arm, final).get(primary) for a, arm in res.arms.items()}
    return regimes_section(final_measures(res), arm_labels(res), res.grid,
                           sw.intensities, sw.diversities, primary=primary,
                           primary_values={a: v for a, v in pv.items() if v is not None},
                           pool_tasks=cfg.measure.pool_tasks)


def objective_report(res, tests: list[dict]) -> dict | None:
    """The ``which_objective`` section (a training region is set), else None: the verdict from
    the family's ``tests`` (:mod:`meta_evo.report.which_objective`) and the per-seed
    description (:mod:`meta_evo.report.outcomes`)."""
    from meta_evo.report.outcomes import outcomes_section
    from meta_evo.report.which_objective import SHOWN, verdict_section

    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    region = cfg.task.train_region
    if region == "none":
        return None
    meas = final_measures(res)
    first = next(iter(meas.values()))
    if "ood_matrix" not in first:
        return None
    labels = arm_labels(res)
    L, S = len(sw.intensities), sw.seeds
    values = {}
    for name, arm in res.arms.items():
        sc = scalars(arm, cfg.meta.generations)
        values[name] = {m: np.stack([by_level(grid, sc[m], di, L, S)
                                     for di in range(len(sw.diversities))])
                        for m in SHOWN if m in sc}
    extra = first["matrix"].shape[-1] - cfg.measure.heldout_tasks
    per_seed = outcomes_section(
        {k: v for k, v in meas.items() if k != "reference"}, labels, grid, sw.intensities,
        sw.diversities, train_region=region, proxy_names=matrix_proxy_names(cfg, extra))
    return verdict_section(values, tests, sw.intensities, sw.diversities, train_region=region,
                           labels=labels, per_seed=per_seed)


def algorithm_report(res) -> dict | None:
    """The ``algorithm`` section (two or more task counts and a family whose answer is a
    task), else None."""
    from meta_evo.report.algorithm import TEST_SEED, algorithm_section

    cfg = res.cfg
    sw = cfg.sweep
    if len(sw.diversities) < 2:
        return None
    meas = {a: m for a, m in final_measures(res).items() if a != "reference"}
    return algorithm_section(meas, arm_labels(res), res.grid, sw.intensities, sw.diversities,
                             key=jax.random.PRNGKey(cfg.seed + TEST_SEED))


def _strongest(res) -> dict:
    """The learner-arm grid point with the highest final objective sensitivity, its
    cross-task matrix, and the control arm's matrix at the same point."""
    cfg, grid = res.cfg, res.grid
    final = cfg.meta.generations
    name, control = learner_and_control(res)
    meas = res.arms[name].measures[final]
    s = np.where(np.isfinite(meas["objective_sensitivity"]), meas["objective_sensitivity"],
                 -np.inf)
    g = int(np.argmax(s))
    n = cfg.measure.heldout_tasks
    extra = meas["matrix"].shape[-1] - n
    cols = [f"task {b}" for b in range(n)]
    cols += [f"proxy: {p}" for p in matrix_proxy_names(cfg, extra)]
    out = {"arm": name, "index": g, "intensity": float(grid.intensity[g]),
           "seed": int(grid.seed[g]), "diversity": int(grid.diversity[g]),
           "columns": cols, "matrix": py(meas["matrix"][g]),
           "predicted": py(meas["predicted"][g]),
           "objective_sensitivity": py(meas["objective_sensitivity"][g]),
           "behavioral_accuracy": py(meas["behavioral_accuracy"][g])}
    if control is not None:
        cm = res.arms[control].measures[final]
        out["control_matrix"] = py(cm["matrix"][g])
        out["control_predicted"] = py(cm["predicted"][g])
    return out


TEST_METHOD = ("exact paired sign-flip test per level over seeds (Monte Carlo above 16 "
               "seeds), one-sided; fixed-sequence from the top level; the primary "
               "metric's tests (one per diversity level) one family and every other "
               "test (metrics, contrasts, the which-objective tests) another, each "
               "Holm (graphical, fixed sequence inside each test) at alpha")
CONDITIONAL_ON = ("the held-out task set (measure.seed, the same for every seed "
                  "and arm): p-values and intervals describe the seeds' variation "
                  "on these tasks, not over redraws of them")


# --- the report ----------------------------------------------------------------------------------
def _axes(res) -> dict:
    """The sweep's axes: intensities with their raw pressures, selection, seeds, diversities."""
    sw, m, grid = res.cfg.sweep, res.cfg.meta, res.grid
    raw = {float(i): py(grid.pressure[grid.level == li][0])
           for li, i in enumerate(sw.intensities)}
    return {
        "intensities": [float(i) for i in sw.intensities],
        "raw_pressures": [raw[float(i)] for i in sw.intensities],
        "selection": m.selection, "population": m.population,
        "seeds": sw.seeds, "diversities": [int(d) for d in sw.diversities],
    }


def _tests(cfg, onsets: list[dict]) -> dict:
    """The two families of tests: their sizes, levels and method."""
    explore = [o for o in onsets if o["role"] == "exploratory"]
    primary_items = [o for o in onsets if o["role"] == "primary"]
    return {
        "alpha": ALPHA, "ci_level": CI_LEVEL, "num_bootstrap": NUM_BOOTSTRAP,
        "primary_metric": primary_metric(cfg),
        "primary_tests": len(primary_items),
        "primary_alpha": primary_items[0]["alpha"] if primary_items else None,
        "exploratory_tests": len(explore),
        "exploratory_alpha": explore[0]["alpha"] if explore else None,
        "min_p": onsets[0]["min_p"] if onsets else None,
        "exact": onsets[0]["exact"] if onsets else None,
        "method": TEST_METHOD,
        "conditional_on": CONDITIONAL_ON,
    }


def _timings(res) -> dict:
    """Per arm: wall time, compile times, env steps, groups and traces."""
    return {name: {"wall_s": round(a.wall_s, 2),
                   "first_chunk_s_incl_compile": round(a.first_chunk_s, 2),
                   "measure_s_incl_compile": round(a.measure_s, 2),
                   "env_steps": a.env_steps, "group_size": a.group_size,
                   "groups": a.groups, "chunk": a.chunk, "traces": a.traces,
                   "shared_measure": a.shared_measure}
            for name, a in res.arms.items()}


def build_report(res) -> dict:
    """The JSON-ready report of a :class:`~meta_evo.sweep.SweepResult`."""
    from meta_evo.provenance import platform_info, provenance, versions

    cfg = res.cfg
    sw, m = cfg.sweep, cfg.meta
    learner, control = learner_and_control(res)
    timings = _timings(res)
    axes = _axes(res)
    onsets = compute_onsets(res)
    return {
        "kind": "meta-evo sweep report",
        "family": cfg.task.family, "backend": cfg.task.backend, "agent": cfg.agent.kind,
        "arms": list(res.arms), "learner": learner, "control": control,
        "arm_labels": arm_labels(res),
        "axes": axes,
        "generations": m.generations,
        "measure_generations": sorted(next(iter(res.arms.values())).measures),
        "chance_accuracy": 1.0 / cfg.measure.heldout_tasks,
        "tests": _tests(cfg, onsets),
        "onsets": [o for o in onsets if o["kind"] == "control"],
        "contrasts": [o for o in onsets if o["kind"] == "contrast"],
        "reference_tests": [o for o in onsets if o["kind"] == "reference"],
        "not_tested": not_tested(res),
        "findings": findings_section(onsets, sw.diversities, sw.intensities),
        "selection": selection_summary(res),
        "levels": _level_table(res),
        "strongest": _strongest(res),
        "regimes": regimes_report(res),
        "which_objective": objective_report(res, onsets),
        "algorithm": algorithm_report(res),  # issue 18: pool-Bayes or prior-Bayes
        "points": _points(res),
        "env_steps": int(res.env_steps),
        "wall_s": round(res.wall_s, 2),
        "resumed": bool(res.resumed),
        "timings": timings,
        "versions": versions(),
        "platform": platform_info(),
        "provenance": provenance(),
        "config": cfg.to_dict(),
    }


# --- files ---------------------------------------------------------------------------------------
def write_report(out_dir: str | Path, report: dict) -> list[Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots; return the paths written."""
    from meta_evo.report.markdown import markdown
    from meta_evo.report.plots import plot_all
    from meta_evo.rundir.io import write_json

    out = Path(out_dir)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    return [out / "report.json", out / "report.md", *plot_all(report, out)]
