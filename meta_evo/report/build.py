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
  (:mod:`meta_evo.report.stats`); ``tests``: the two families, their sizes and levels;
- ``not_tested``: the diversity levels where the learner and its control are the same by
  construction (d=1 against a ``shuffled`` control), whose tests are not run;
- ``findings``: per diversity, the three findings (in-context adaptation, general learning,
  optimizer-like updates) and the claim they support (:mod:`meta_evo.report.findings`);
- ``selection``: per intensity, the effective number of parents of the rank weights, the
  realized search scale where the strategy adapts it, and the drift expected on noise alone;
- ``regimes`` (with two or more diversity levels): per arm, intensity and level, the regime
  shares over seeds (memorization, identification, general learning; ``kernels.regime``),
  pool and held-out accuracy and sensitivity (:mod:`meta_evo.report.objective`);
- ``which_objective`` (with a training region): per intensity and level, the verdict (no
  optimization, pseudo-aligned, objective undetermined, goal generalizes, capability only)
  from tests against the control and the reference arm, with the excess proxy pull and margin
  (:mod:`meta_evo.report.which_objective`), and the per-seed outcome labels as a description
  (``kernels.generalization``); ``reference_tests``: the tests against the reference arm;
- ``algorithm`` (two or more diversity levels, a family whose answer is a task): per arm,
  intensity and level, the distance of the final answer to pool-Bayes and prior-Bayes, and a
  Holm-adjusted sign-flip test of "nearer prior-Bayes" (:mod:`meta_evo.report.algorithm`);
- env steps, wall time, compile evidence (trace counts), versions and platform.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np

from meta_evo import kernels
from meta_evo.measure import ANSWER_SCALARS, OOD_SCALARS, SCALARS
from meta_evo.report.common import (
    ALPHA,
    CI_LEVEL,
    DEFAULT_PRIMARY,
    NUM_BOOTSTRAP,
    REFERENCE_METRICS,
    TESTED_METRICS,
    interval_text,
    onset_text,
    py,
)
from meta_evo.report.findings import findings_section
from meta_evo.report.stats import mean_ci, onset_tests, paired


# --- arms ---------------------------------------------------------------------------------------
def arm_label(name: str, arm) -> str:
    """How the report names an arm: its ``label`` if it has one, else its key."""
    return getattr(arm, "label", None) or name


def learner_and_control(res) -> tuple[str, str | None]:
    """The learner arm is the first entry of ``res.arms``, the control (if any) the second."""
    names = list(res.arms)
    return names[0], (names[1] if len(names) > 1 else None)


def primary_metric(cfg) -> str:
    return getattr(cfg.sweep, "primary_metric", DEFAULT_PRIMARY)


# --- from a sweep result to arrays ---------------------------------------------------------------
def _scalars(arm, gen: int) -> dict:
    """{metric: [G]} of an arm at a measured generation: kernel scalars (held-out, pool and,
    with a training region, out of distribution) + learner describe."""
    meas = arm.measures[gen]
    out = {k: np.asarray(meas[k], np.float64) for k in SCALARS + OOD_SCALARS + ANSWER_SCALARS
           if k in meas}
    for k, v in arm.describe.get(gen, {}).items():
        out[k] = np.asarray(v, np.float64)
    return out


def _by_level(grid, values: np.ndarray, div_index: int, levels: int, seeds: int) -> np.ndarray:
    """[L, S] of one diversity level from a [G] vector (grid: diversity, intensity, seed)."""
    sel = grid.div_index == div_index
    out = np.full((levels, seeds), np.nan)
    out[grid.level[sel], grid.seed[sel]] = values[sel]
    return out


def compute_onsets(res) -> list[dict]:
    """Onsets of every scalar metric of the learner arm, per diversity level, against the
    control (``kind == "control"``), and, where the sweep has a fixed-task level (d=1), of each
    other diversity level against it (``kind == "contrast"``). Two vmapped kernel calls."""
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    learner, control = learner_and_control(res)
    final = cfg.meta.generations
    L, S = len(sw.intensities), sw.seeds
    if L < 2:
        return []
    main = _scalars(res.arms[learner], final)
    ctrl = _scalars(res.arms[control], final) if control is not None else None
    ctrl_label = arm_label(control, res.arms[control]) if control is not None else None
    init = _scalars(res.arms[learner], 0)
    primary = primary_metric(cfg)
    tested = [m for m in main if m == primary or m in TESTED_METRICS]
    jobs, vals, ctls = [], [], []
    for di, d in enumerate(sw.diversities):
        if identical_arms(res, int(d)):
            continue  # not a finding: the arms are the same by construction (not_tested)
        for metric in tested:
            v = _by_level(grid, main[metric], di, L, S)
            if ctrl is not None and metric in ctrl:
                c, against = _by_level(grid, ctrl[metric], di, L, S), ctrl_label
            elif metric in SCALARS:
                c, against = np.repeat(v[:1], L, axis=0), "lowest pressure"
            else:  # a learner parameter: against its meta-init value (generation 0)
                c, against = _by_level(grid, init[metric], di, L, S), "meta-init"
            v, c, bad = paired(v, c)
            jobs.append((learner, metric, int(d), against, bad, "control"))
            vals.append(v)
            ctls.append(c)
    # Which objective (a training region): the learner's proxy pull and margin against the
    # reference arm (the same learner evolved without the region), same level and seed.
    if "reference" in res.arms:
        ref = _scalars(res.arms["reference"], final)
        ref_label = arm_label("reference", res.arms["reference"])
        for di, d in enumerate(sw.diversities):
            # the pull where the answer lies in task space, else the margin: one test
            tested_ref = next((m for m in REFERENCE_METRICS if m in main and m in ref
                               and np.isfinite(main[m]).any()), None)
            for metric in [tested_ref] if tested_ref else []:
                v, c, bad = paired(_by_level(grid, main[metric], di, L, S),
                                   _by_level(grid, ref[metric], di, L, S))
                jobs.append((learner, metric, int(d), ref_label, bad, "reference"))
                vals.append(v)
                ctls.append(c)
    # The diversity contrast: the learner arm where tasks vary against the same arm, seed and
    # level with one fixed task (paired: both start from the seed's meta-init).
    if 1 in sw.diversities:
        fixed = list(sw.diversities).index(1)
        for di, d in enumerate(sw.diversities):
            if di == fixed:
                continue
            for metric in [primary] if primary in main else []:
                v, c, bad = paired(_by_level(grid, main[metric], di, L, S),
                                   _by_level(grid, main[metric], fixed, L, S))
                jobs.append((learner, metric, int(d), "d=1 (same arm)", bad, "contrast"))
                vals.append(v)
                ctls.append(c)
    if not jobs:
        return []
    is_primary = np.array([m == primary and kind == "control"
                           for (_, m, _, _, _, kind) in jobs])
    key = jax.random.PRNGKey(cfg.seed + 7)
    # the kernel tests learner minus control against 0 (the same sign-flip p-values as the
    # pair), so its logistic fit describes the difference, not the learner's own level means
    diffs = np.stack(vals) - np.stack(ctls)
    t = onset_tests(np.asarray(sw.intensities, np.float64), diffs, np.zeros_like(diffs),
                    is_primary, key, alpha=ALPHA, ci_level=CI_LEVEL,
                    num_bootstrap=NUM_BOOTSTRAP)
    r = t["result"]
    out = []
    for q, (arm, metric, d, against, bad, kind) in enumerate(jobs):
        found = bool(r.found[q])
        ci = [None if not math.isfinite(x) else py(x) for x in r.onset_ci[q]]
        item = {
            "arm": arm, "metric": metric, "diversity": d, "control": against, "kind": kind,
            "role": "primary" if is_primary[q] else "exploratory",
            "alpha": py(t["alpha"][q]),
            "family_size": t["primary_family_size"] if is_primary[q] else t["family_size"],
            "seeds": S, "testable": bool(r.testable[q]), "min_p": py(r.min_p[q]),
            "exact": bool(r.exact[q]),
            "found": found,
            "onset": py(r.onset[q]) if found else None,
            "onset_index": int(r.onset_index[q]),
            "p": py(r.p_onset[q]), "p_adjusted": py(t["p_adjusted"][q]),
            "p_level": py(r.p_level[q]), "p_level_se": py(r.p_level_se[q]),
            "p_sequence": py(r.p_sequence[q]),
            "onset_ci": ["none" if x is None else x for x in ci],
            "onset_prob": py(r.onset_prob[q]),
            "trend": {"rho": py(r.trend_rho[q]), "p": py(r.trend_p[q]),
                      "p_se": py(r.trend_p_se[q])},
            "midpoint": py(r.midpoint[q]),
            "midpoint_ci": py(r.midpoint_ci[q]),
            "fit": {"lo": py(r.fit.lo[q]), "hi": py(r.fit.hi[q]), "mid": py(r.fit.mid[q]),
                    "scale": py(r.fit.scale[q])},
            "difference": py(r.difference[q]),
            "significant": py(r.significant[q]),
            "nonfinite_replaced": bad,
            "levels": level_differences(sw.intensities, diffs[q], r.p_level[q]),
        }
        # the Monte Carlo error of p (0 when exact): that of the level that sets it
        top = int(r.onset_index[q]) if found else L - 1
        worst = top + int(np.argmax(r.p_level[q][top:]))
        item["p_se"] = py(r.p_level_se[q][worst])
        item["summary"] = onset_text(item)
        item["interval"] = interval_text(item)
        out.append(item)
    return out


def identical_arms(res, d: int) -> bool:
    """Whether the learner and control arms are the same by construction at diversity ``d``:
    with one fixed task a ``shuffled`` control is told the returns of that same task, so both
    arms evolve alike and a test between them is not a finding."""
    learner, control = learner_and_control(res)
    if control is None or d != 1:
        return False
    a, c = res.arms[learner], res.arms[control]
    return getattr(c, "reward", None) == "shuffled" and a.learner == c.learner


def not_tested(res) -> list[dict]:
    """The diversity levels whose learner-versus-control tests are not run, and why."""
    return [{"diversity": int(d), "reason": "with one fixed task the shuffled control is told "
             "the returns of that task, so both arms are the same by construction"}
            for d in res.cfg.sweep.diversities if identical_arms(res, int(d))]


def level_differences(intensities, diff: np.ndarray, p_level) -> list[dict]:
    """Per level: the mean paired difference (learner minus control) over seeds with its 95 %
    t-interval, and the level's one-sided sign-flip p (before the sequence and Holm)."""
    out = []
    for li, i in enumerate(intensities):
        mu, lo, hi = mean_ci(diff[li], CI_LEVEL)
        out.append({"intensity": float(i), "difference": py(mu), "ci": [py(lo), py(hi)],
                    "p": py(p_level[li])})
    return out


def selection_summary(res) -> dict:
    """What selection did per intensity: the effective number of parents ``1 / sum w^2`` of
    the rank weights at the grid's raw pressure, the realized search scale (``sigma`` history,
    where the strategy records it), and the drift of the mean on noise alone."""
    from meta_evo.meta import rank_weights

    cfg, grid = res.cfg, res.grid
    m, sw = cfg.meta, cfg.sweep
    learner, _ = learner_and_control(res)
    sigma_hist = res.arms[learner].history.get("sigma")
    sigma_hist = None if sigma_hist is None else np.asarray(sigma_hist, np.float64)
    gens = m.generations
    levels = []
    for li, i in enumerate(sw.intensities):
        raw = float(grid.pressure[grid.level == li][0])
        w = rank_weights(m.selection, m.population, raw)
        n_eff = float(kernels.effective_population_size(w))
        row = {"intensity": float(i), "raw_pressure": py(raw), "n_eff": py(n_eff),
               "intensity_of_weights": py(kernels.selection_intensity(w))}
        if sigma_hist is not None and sigma_hist.ndim == 2:
            s = sigma_hist[grid.level == li]  # [points, generations]
            row["sigma_final"] = py(np.nanmean(s[:, -1]))
            row["sigma_mean"] = py(np.nanmean(s))
            drift = np.sqrt(np.nansum(s**2, axis=1) / n_eff)
            row["neutral_drift"] = py(np.nanmean(drift))
        else:
            row["neutral_drift"] = py(m.sigma * math.sqrt(gens / n_eff))
        levels.append(row)
    mirrored = m.strategy == "Open_ES" and m.antithetic
    return {
        "strategy": m.strategy, "selection": m.selection, "population": m.population,
        "generations": gens, "sigma": m.sigma, "antithetic": m.antithetic,
        "sigma_recorded": sigma_hist is not None,
        "drift_i0_iid": py(m.sigma * math.sqrt(gens / m.population)),
        "mirrored_cancel_at_i0": mirrored,
        "levels": levels,
    }


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
                       "pressure": py(grid.pressure[grid.level == li][0])}
                for metric, v in vals.items():
                    mu, lo, hi = mean_ci(_by_level(grid, v, di, L, S)[li])
                    row[metric] = {"mean": py(mu), "ci": [py(lo), py(hi)]}
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


def _final_measures(res) -> dict:
    """{arm: final measurement outputs [G, ...]}."""
    return {a: arm.measures[res.cfg.meta.generations] for a, arm in res.arms.items()}


def regimes_report(res) -> dict | None:
    """The ``regimes`` section (two or more diversity levels), else None."""
    from meta_evo.report.objective import regimes_section

    cfg = res.cfg
    sw = cfg.sweep
    if len(sw.diversities) < 2:
        return None
    primary = primary_metric(cfg)
    final = cfg.meta.generations
    pv = {a: _scalars(arm, final).get(primary) for a, arm in res.arms.items()}
    return regimes_section(_final_measures(res),
                           {k: arm_label(k, a) for k, a in res.arms.items()}, res.grid,
                           sw.intensities, sw.diversities, primary=primary,
                           primary_values={a: v for a, v in pv.items() if v is not None},
                           pool_tasks=getattr(cfg.measure, "pool_tasks", None))


def objective_report(res, tests: list[dict]) -> dict | None:
    """The ``which_objective`` section (a training region is set), else None: the verdict from
    the family's ``tests`` (:mod:`meta_evo.report.which_objective`) and the per-seed
    description."""
    from meta_evo.report.objective import objective_section
    from meta_evo.report.which_objective import SHOWN, verdict_section

    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    region = cfg.task.train_region
    if region == "none":
        return None
    meas = _final_measures(res)
    first = next(iter(meas.values()))
    if "ood_matrix" not in first:
        return None
    labels = {k: arm_label(k, a) for k, a in res.arms.items()}
    L, S = len(sw.intensities), sw.seeds
    values = {}
    for name, arm in res.arms.items():
        sc = _scalars(arm, cfg.meta.generations)
        values[name] = {m: np.stack([_by_level(grid, sc[m], di, L, S)
                                     for di in range(len(sw.diversities))])
                        for m in SHOWN if m in sc}
    extra = first["matrix"].shape[-1] - cfg.measure.heldout_tasks
    per_seed = objective_section(
        {k: v for k, v in meas.items() if k != "reference"}, labels, grid, sw.intensities,
        sw.diversities, train_region=region, proxy_names=matrix_proxy_names(cfg, extra))
    return verdict_section(values, tests, sw.intensities, sw.diversities, train_region=region,
                           labels=labels, per_seed=per_seed)


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


def build_report(res) -> dict:
    """The JSON-ready report of a :class:`~meta_evo.sweep.SweepResult`."""
    from meta_evo.report.algorithm import algorithm_report
    from meta_evo.runs import platform_info, provenance, versions

    cfg, grid = res.cfg, res.grid
    sw, m = cfg.sweep, cfg.meta
    learner, control = learner_and_control(res)
    timings = {name: {"wall_s": round(a.wall_s, 2),
                      "first_chunk_s_incl_compile": round(a.first_chunk_s, 2),
                      "measure_s_incl_compile": round(a.measure_s, 2),
                      "env_steps": a.env_steps, "group_size": a.group_size,
                      "groups": a.groups, "chunk": a.chunk, "traces": a.traces,
                      "shared_measure": a.shared_measure}
               for name, a in res.arms.items()}
    raw = {float(i): py(grid.pressure[grid.level == li][0])
           for li, i in enumerate(sw.intensities)}
    onsets = compute_onsets(res)
    explore = [o for o in onsets if o["role"] == "exploratory"]
    primary_items = [o for o in onsets if o["role"] == "primary"]
    rep = {
        "kind": "meta-evo sweep report",
        "family": cfg.task.family, "backend": cfg.task.backend, "agent": cfg.agent.kind,
        "arms": list(res.arms), "learner": learner, "control": control,
        "arm_labels": {k: arm_label(k, a) for k, a in res.arms.items()},
        "axes": {
            "intensities": [float(i) for i in sw.intensities],
            "raw_pressures": [raw[float(i)] for i in sw.intensities],
            "selection": m.selection, "population": m.population,
            "seeds": sw.seeds, "diversities": [int(d) for d in sw.diversities],
        },
        "generations": m.generations,
        "measure_generations": sorted(next(iter(res.arms.values())).measures),
        "chance_accuracy": 1.0 / cfg.measure.heldout_tasks,
        "tests": {
            "alpha": ALPHA, "ci_level": CI_LEVEL, "num_bootstrap": NUM_BOOTSTRAP,
            "primary_metric": primary_metric(cfg),
            "primary_tests": len(primary_items),
            "primary_alpha": primary_items[0]["alpha"] if primary_items else None,
            "exploratory_tests": len(explore),
            "exploratory_alpha": explore[0]["alpha"] if explore else None,
            "min_p": onsets[0]["min_p"] if onsets else None,
            "exact": onsets[0]["exact"] if onsets else None,
            "method": "exact paired sign-flip test per level over seeds (Monte Carlo above 16 "
                      "seeds), one-sided; fixed-sequence from the top level; the primary "
                      "metric's tests (one per diversity level) one family and every other "
                      "test (metrics, contrasts, the which-objective tests) another, each "
                      "Holm (graphical, fixed sequence inside each test) at alpha",
            "conditional_on": "the held-out task set (measure.seed, the same for every seed "
                              "and arm): p-values and intervals describe the seeds' variation "
                              "on these tasks, not over redraws of them",
        },
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
        "resumed": bool(getattr(res, "resumed", False)),
        "timings": timings,
        "versions": versions(),
        "platform": platform_info(),
        "provenance": provenance(),
        "config": cfg.to_dict(),
    }
    return rep


# --- files ---------------------------------------------------------------------------------------
def write_report(out_dir: str | Path, report: dict) -> list[Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots; return the paths written."""
    from meta_evo.report.markdown import markdown
    from meta_evo.report.plots import plot_all
    from meta_evo.runs import write_json

    out = Path(out_dir)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report))
    return [out / "report.json", out / "report.md", *plot_all(report, out)]
