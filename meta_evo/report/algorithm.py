"""The report's "which algorithm" section (issue 18, after Raventós et al. 2023): is an evolved
learner's answer nearer the Bayes estimator with its training pool as prior (pool-Bayes, the
dMMSE: task identification) or the one with the full task prior (prior-Bayes: general
learning), across the number of training tasks d?

Input: the measurement's ``ALGORITHM_SCALARS`` (``meta_evo.measure``; only where the family's
answer is a point of task space, the ``analytic`` family), one value per grid point and arm,
each already a mean over the held-out tasks of one measurement.

- :func:`algorithm_section`: per arm, intensity and d, the mean over seeds of the distances of
  the final answer to the task, to pool-Bayes and to prior-Bayes, of the gap ``dist_pool_bayes
  - dist_prior_bayes`` and of the distance between the two references, each with a 95 %
  t-interval; and per intensity, one exact paired sign-flip test per d of "closer to
  prior-Bayes than to pool-Bayes, more than the control" (the learner's gap above its
  control's, same seed; one-sided: ``kernels.level_pvalues``), Holm-adjusted over the d
  levels of that intensity (``stats.holm``). A learner that never moves answers the prior
  mean, which is what prior-Bayes says of an unexplored history: against 0 it would "pass",
  against its control it cannot;
- :func:`algorithm_sentence` and :func:`algorithm_markdown`: the sentences and the tables.

The sentences say which levels pass and which mean distance is smaller; nothing else. The
section of a sweep result is ``meta_evo.report.build.algorithm_report``; its figure
``algorithm.png`` is drawn by :mod:`meta_evo.report.algorithm_plots`.
"""

from __future__ import annotations

import jax
import numpy as np

from meta_evo import kernels
from meta_evo.measure import ALGORITHM_SCALARS
from meta_evo.report.common import (
    ALPHA,
    CI_LEVEL,
    cell_text,
    diversity_label,
    join_and,
    p_text,
    py,
    rows_at,
    task_count,
)
from meta_evo.report.stats import ci_cell, holm, paired

CELLS = {"dist_task": "to task", "dist_pool_bayes": "to pool-Bayes",
         "dist_prior_bayes": "to prior-Bayes", "bayes_pool_gap": "gap (pool - prior)",
         "dist_bayes_refs": "pool-Bayes to prior-Bayes"}
TEST_SEED = 18  # the key of the Monte Carlo sign patterns (only above 16 seeds)
METHOD = ("per grid point, the mean over held-out tasks of the Euclidean distance of "
          "the final answer phi_K to the task, to pool-Bayes (posterior mean over the "
          "first d training-pool tasks, uniform prior; the whole pool when d = 0) and to "
          "prior-Bayes (posterior mean under the full task prior), both from the "
          "lifetime's own queries and returns under a Gaussian likelihood "
          "(meta_evo.measure, kernels.identification); mean over seeds with a "
          f"{CI_LEVEL:.0%} t-interval; per intensity and d an exact one-sided paired "
          "sign-flip test over seeds of the learner's gap = dist_pool_bayes - "
          "dist_prior_bayes above its control's (Monte Carlo above 16 seeds), "
          "Holm-adjusted over the d levels of that intensity")


def has_algorithm_inputs(meas: dict) -> bool:
    return all(k in meas for k in ALGORITHM_SCALARS)


# --- the section ---------------------------------------------------------------------------------
def _rows(arms: dict, names: list[str], labels: dict, grid, intensities, diversities,
          order: list[int], seeds: int) -> tuple[list[dict], dict]:
    """Every (arm, intensity, task count) row, and each arm's gaps ``[d, S]`` per intensity
    level (d in task-count order, for the test)."""
    level, div_index, seed = (np.asarray(grid.level), np.asarray(grid.div_index),
                              np.asarray(grid.seed))
    rows, gaps = [], {}
    for a in names:
        vals = {k: np.asarray(arms[a][k], np.float64) for k in ALGORITHM_SCALARS}
        for li, i in enumerate(intensities):
            g = np.full((len(order), seeds), np.nan)
            for q, di in enumerate(order):
                sel = (level == li) & (div_index == di)
                rows.append({"arm": a, "label": labels.get(a, a), "intensity": float(i),
                             "diversity": int(diversities[di]),
                             "task_count": diversity_label(diversities[di], "count"),
                             **{k: ci_cell(v[sel], CI_LEVEL) for k, v in vals.items()}})
                g[q, seed[sel]] = vals["bayes_pool_gap"][sel]
            gaps[a, li] = g
    return rows, gaps


def _tests(gaps: dict, learner: str, control: str | None, intensities, diversities,
           order: list[int], alpha: float, key) -> tuple[list[dict], float]:
    """Per intensity, the learner's gap against its control's, paired by seed (a learner that
    does not move sits at the prior mean, which is prior-Bayes for an unexplored history: only
    what the learner does beyond its control is a finding), per level; Holm over the d levels
    of one intensity. Without a control arm: against 0. Returns the tests and the smallest
    achievable p."""
    tests, min_p = [], 1.0
    for li, i in enumerate(intensities):
        base = gaps[control, li] if control is not None else np.zeros_like(gaps[learner, li])
        g, c, bad = paired(gaps[learner, li], base)
        p, _, min_p = kernels.level_pvalues(g, c, key, correction="none")
        p = np.asarray(p, np.float64)
        p_holm = holm(p)
        for q, di in enumerate(order):
            tests.append({"arm": learner, "intensity": float(i),
                          "diversity": int(diversities[di]), "p": py(p[q]),
                          "p_holm": py(p_holm[q]), "passes": bool(p_holm[q] <= alpha),
                          "nonfinite_in_family": int(bad)})
    return tests, float(min_p)


def algorithm_section(arms: dict, labels: dict, grid, intensities, diversities, *,
                      alpha: float = ALPHA, key=None) -> dict | None:
    """The report's ``algorithm`` section.

    Args:
      arms: ``{arm: {key: [G]}}`` final measurement outputs (learner first, then control).
      labels: ``{arm: label}``.
      grid: the sweep grid (``level``, ``div_index``, ``seed`` ``[G]``).
      intensities, diversities: the sweep axes.
      alpha: the family-wise level of each Holm family.
      key: PRNG key of the sign patterns (used above 16 seeds only).

    Returns None when no arm has the scalars.
    """
    names = [a for a in arms if has_algorithm_inputs(arms[a])]
    if not names:
        return None
    key = jax.random.PRNGKey(TEST_SEED) if key is None else key
    seeds = int(np.asarray(grid.seed).max()) + 1
    order = sorted(range(len(diversities)), key=lambda k: task_count(diversities[k]))
    rows, gaps = _rows(arms, names, labels, grid, intensities, diversities, order, seeds)
    learner, control = names[0], (names[1] if len(names) > 1 else None)
    tests, min_p = _tests(gaps, learner, control, intensities, diversities, order, alpha, key)
    for r in rows:  # the control's rows are the baseline of the learner's test
        t = next((t for t in tests if t["arm"] == r["arm"] and t["intensity"] == r["intensity"]
                  and t["diversity"] == r["diversity"]), None)
        r["test"] = {k: t[k] for k in ("p", "p_holm", "passes")} if t else None
    sentences = [{"arm": a, "intensity": float(i),
                  "text": algorithm_sentence([r for r in rows if r["arm"] == a
                                              and r["intensity"] == float(i)],
                                             labels.get(a, a), float(i), min_p, alpha,
                                             " beyond its control" if control else "")}
                 for a in names for i in intensities]
    return {
        "method": METHOD,
        "alpha": alpha, "ci_level": CI_LEVEL, "seeds": seeds, "min_p": py(min_p),
        "testable": bool(min_p <= alpha / max(len(order), 1)),
        "family": "the task-count levels of one intensity (the learner against its control)",
        "arms": names, "learner": names[0], "control": names[1] if len(names) > 1 else None,
        "labels": {a: labels.get(a, a) for a in names},
        "task_counts": [int(diversities[k]) for k in order],
        "rows": rows, "tests": tests, "sentences": sentences,
    }


# --- the sentence --------------------------------------------------------------------------------
def _levels_text(ds: list[int]) -> str:
    return join_and(diversity_label(d, "count") for d in ds)


def algorithm_sentence(rows: list[dict], label: str, intensity: float, min_p: float,
                       alpha: float, beyond: str = "") -> str:
    """One arm at one intensity: at which task counts the answer is nearer prior-Bayes than
    pool-Bayes by the Holm-adjusted test, and where the mean distances order the other way."""
    head = f"`{label}`, i = {intensity:g}:"
    if not rows:
        return f"{head} no data."
    if min_p > alpha / len(rows):
        return (f"{head} the smallest achievable p ({min_p:.2g}) is above the first Holm "
                f"level (alpha / {len(rows)} = {alpha / len(rows):.2g}): no level can pass; "
                "more seeds are needed.")
    if rows[0]["test"] is None:  # the control: the baseline of the learner's test
        nearer = [r["diversity"] for r in rows if (r["bayes_pool_gap"]["mean"] or 0.0) < 0]
        return (f"{head} the baseline of the learner's test (not tested itself); its mean "
                "distance to pool-Bayes is the smaller one at "
                + (f"d = {_levels_text(nearer)}." if nearer else "no task count."))
    passing = [r["diversity"] for r in rows if r["test"]["passes"]]
    nearer_pool = [r["diversity"] for r in rows
                   if r["bayes_pool_gap"]["mean"] is not None and r["bayes_pool_gap"]["mean"] < 0]
    parts = []
    if passing:
        parts.append(f"nearer prior-Bayes than pool-Bayes{beyond} at d = "
                     f"{_levels_text(passing)} (Holm-adjusted p <= {alpha:g})")
    else:
        parts.append(f"nearer prior-Bayes than pool-Bayes{beyond} at no task count (Holm, "
                     f"alpha {alpha:g})")
    if nearer_pool:
        parts.append(f"the mean distance to pool-Bayes is the smaller one at d = "
                     f"{_levels_text(nearer_pool)} (not tested)")
    return f"{head} " + "; ".join(parts) + "."


# --- markdown ------------------------------------------------------------------------------------
def _f(cell: dict | None) -> str:
    return cell_text(cell, collapse=False)


def _intro(sec: dict) -> list[str]:
    return ["## Which algorithm: pool-Bayes or prior-Bayes", "",
            "From each held-out lifetime's own queries and the returns it was shown, two Bayes "
            "estimates of the task (Raventós et al. 2023): **pool-Bayes**, the posterior mean "
            "over the d training tasks the learner was evolved on (uniform prior; the whole "
            "training pool for d = 0), which a task identifier answers, and **prior-Bayes**, "
            "the posterior mean under the full task prior, which a general learner answers. "
            "Columns: mean Euclidean distance of the final answer phi_K to the task and to "
            "each estimate, the gap (distance to pool-Bayes minus distance to prior-Bayes; "
            "positive = nearer prior-Bayes) and the distance between the two estimates (where "
            "it is small, the two cannot be told apart); mean over seeds "
            f"[{sec['ci_level']:.0%} t-interval]. Test: per task count, an exact one-sided "
            "paired sign-flip test over the "
            f"{sec['seeds']} seeds of the learner's gap above its control's (a learner that "
            "never moves answers the prior mean, which is prior-Bayes for an unexplored "
            "history, so only the difference to the control is a finding), Holm-adjusted over "
            f"the {len(sec['task_counts'])} task counts of one intensity (the family: "
            f"{sec['family']}; alpha {sec['alpha']:g}; smallest achievable p "
            f"{sec['min_p']:.2g}).", ""]


def _table(sec: dict, i: float) -> list[str]:
    """The rows of one intensity: per task count, each arm."""
    lines = [f"### i = {i:g}", "",
             "| training tasks | arm | to task | to pool-Bayes | to prior-Bayes | gap | "
             "pool- to prior-Bayes | p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in rows_at(sec, i):
        t = r["test"]
        tested = (f"{p_text(t['p'])} | {p_text(t['p_holm'])}{' *' if t['passes'] else ''}"
                  if t else "baseline | —")
        lines.append(f"| {r['task_count']} | {r['label']} | {_f(r['dist_task'])} | "
                     f"{_f(r['dist_pool_bayes'])} | {_f(r['dist_prior_bayes'])} | "
                     f"{_f(r['bayes_pool_gap'])} | {_f(r['dist_bayes_refs'])} | "
                     f"{tested} |")
    return lines + [""]


def algorithm_markdown(sec: dict) -> list[str]:
    """The per-intensity tables (learner and control per task count) and the sentences."""
    lines = _intro(sec)
    for i in sorted({r["intensity"] for r in sec["rows"]}):
        lines += _table(sec, i)
    lines += ["\\* passes at alpha after Holm.", ""]
    lines += [s["text"] for s in sec["sentences"] if s["arm"] == sec["learner"]]
    ctrl = [s["text"] for s in sec["sentences"] if s["arm"] == sec.get("control")]
    if ctrl:
        lines += ["", "Control: " + " ".join(ctrl)]
    lines += ["", "`algorithm.png`: distance to pool-Bayes and to prior-Bayes against the "
              "number of training tasks, learner and control, with 95 % intervals.", ""]
    return lines
