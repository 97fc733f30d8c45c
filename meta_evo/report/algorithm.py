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
  levels of that intensity. A learner that never moves answers the prior mean, which is what
  prior-Bayes says of an unexplored history: against 0 it would "pass", against its control
  it cannot;
- :func:`algorithm_report`: the same from a sweep result; :func:`algorithm_markdown` the tables
  and the sentences; :func:`plot_algorithm` the figure ``algorithm.png``.

The sentences say which levels pass and which mean distance is smaller; nothing else.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np

from meta_evo import kernels
from meta_evo.measure import ALGORITHM_SCALARS
from meta_evo.report.common import ALPHA, CI_LEVEL, py
from meta_evo.report.stats import mean_ci, paired

CELLS = {"dist_task": "to task", "dist_pool_bayes": "to pool-Bayes",
         "dist_prior_bayes": "to prior-Bayes", "bayes_pool_gap": "gap (pool - prior)",
         "dist_bayes_refs": "pool-Bayes to prior-Bayes"}
ARM_STYLE = ({"ls": "-", "marker": "o", "mfc": None},
             {"ls": "--", "marker": "s", "mfc": "white"})
REF_COLORS = {"dist_pool_bayes": "#ff7f0e", "dist_prior_bayes": "#2ca02c",
              "dist_task": "#7f7f7f"}
TEST_SEED = 18  # the key of the Monte Carlo sign patterns (only above 16 seeds)


def _task_count(d: int) -> float:
    return math.inf if int(d) == 0 else float(d)


def _count_text(d: int) -> str:
    return "inf (d=0)" if int(d) == 0 else str(int(d))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of one family ``[m]``: ``max_{j <= i} min(1, (m - j) p_(j))``
    over the sorted p (0-based j); NaN stays NaN and does not count in m."""
    p = np.asarray(p, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def _cell(v: np.ndarray) -> dict:
    mu, lo, hi = mean_ci(v, CI_LEVEL)
    return {"mean": py(mu), "ci": [py(lo), py(hi)]}


def has_algorithm_inputs(meas: dict) -> bool:
    return all(k in meas for k in ALGORITHM_SCALARS)


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
    level, div_index, seed = (np.asarray(grid.level), np.asarray(grid.div_index),
                              np.asarray(grid.seed))
    seeds = int(seed.max()) + 1
    order = sorted(range(len(diversities)), key=lambda k: _task_count(diversities[k]))
    rows, tests, gaps = [], [], {}
    for a in names:
        vals = {k: np.asarray(arms[a][k], np.float64) for k in ALGORITHM_SCALARS}
        for li, i in enumerate(intensities):
            g = np.full((len(order), seeds), np.nan)
            for q, di in enumerate(order):
                sel = (level == li) & (div_index == di)
                rows.append({"arm": a, "label": labels.get(a, a), "intensity": float(i),
                             "diversity": int(diversities[di]),
                             "task_count": _count_text(diversities[di]),
                             **{k: _cell(v[sel]) for k, v in vals.items()}})
                g[q, seed[sel]] = vals["bayes_pool_gap"][sel]
            gaps[a, li] = g
    # the learner's gap against its control's, paired by seed (a learner that does not move
    # sits at the prior mean, which is prior-Bayes for an unexplored history: only what the
    # learner does beyond its control is a finding), per level; Holm over the d levels of one
    # intensity. Without a control arm: against 0.
    learner, control = names[0], (names[1] if len(names) > 1 else None)
    min_p = 1.0
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
    min_p = float(min_p)
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
        "method": "per grid point, the mean over held-out tasks of the Euclidean distance of "
                  "the final answer phi_K to the task, to pool-Bayes (posterior mean over the "
                  "first d training-pool tasks, uniform prior; the whole pool when d = 0) and to "
                  "prior-Bayes (posterior mean under the full task prior), both from the "
                  "lifetime's own queries and returns under a Gaussian likelihood "
                  "(meta_evo.measure, kernels.identification); mean over seeds with a "
                  f"{CI_LEVEL:.0%} t-interval; per intensity and d an exact one-sided paired "
                  "sign-flip test over seeds of the learner's gap = dist_pool_bayes - "
                  "dist_prior_bayes above its control's (Monte Carlo above 16 seeds), "
                  "Holm-adjusted over the d levels of that intensity",
        "alpha": alpha, "ci_level": CI_LEVEL, "seeds": seeds, "min_p": py(min_p),
        "testable": bool(min_p <= alpha / max(len(order), 1)),
        "family": "the task-count levels of one intensity (the learner against its control)",
        "arms": names, "learner": names[0], "control": names[1] if len(names) > 1 else None,
        "labels": {a: labels.get(a, a) for a in names},
        "task_counts": [int(diversities[k]) for k in order],
        "rows": rows, "tests": tests, "sentences": sentences,
    }


def _levels_text(ds: list[int]) -> str:
    txt = [_count_text(d) for d in ds]
    return txt[0] if len(txt) == 1 else ", ".join(txt[:-1]) + " and " + txt[-1]


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


def algorithm_report(res) -> dict | None:
    """The ``algorithm`` section of a :class:`~meta_evo.sweep.SweepResult` (two or more task
    counts and a family whose answer is a task), else None."""
    cfg = res.cfg
    sw = cfg.sweep
    if len(sw.diversities) < 2:
        return None
    final = cfg.meta.generations
    meas = {a: arm.measures[final] for a, arm in res.arms.items() if a != "reference"}
    labels = {a: getattr(arm, "label", None) or a for a, arm in res.arms.items()}
    return algorithm_section(meas, labels, res.grid, sw.intensities, sw.diversities,
                             key=jax.random.PRNGKey(cfg.seed + TEST_SEED))


# --- markdown ------------------------------------------------------------------------------------
def _f(cell: dict | None, digits: int = 2) -> str:
    if not cell or cell.get("mean") is None:
        return "—"
    lo, hi = cell["ci"]
    if lo is None or hi is None:
        return f"{cell['mean']:.{digits}f}"
    return f"{cell['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _p(x) -> str:
    return "—" if x is None else f"{x:.2g}"


def algorithm_markdown(sec: dict) -> list[str]:
    """The per-intensity tables (learner and control per task count) and the sentences."""
    lines = ["## Which algorithm: pool-Bayes or prior-Bayes", "",
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
    ints = sorted({r["intensity"] for r in sec["rows"]})
    for i in ints:
        lines += [f"### i = {i:g}", "",
                  "| training tasks | arm | to task | to pool-Bayes | to prior-Bayes | gap | "
                  "pool- to prior-Bayes | p | p (Holm) |", "|---|---|---|---|---|---|---|---|---|"]
        for d in sec["task_counts"]:
            for a in sec["arms"]:
                r = next((x for x in sec["rows"] if x["arm"] == a and x["intensity"] == i
                          and x["diversity"] == d), None)
                if r is None:
                    continue
                t = r["test"]
                tested = (f"{_p(t['p'])} | {_p(t['p_holm'])}{' *' if t['passes'] else ''}"
                          if t else "baseline | —")
                lines.append(f"| {r['task_count']} | {r['label']} | {_f(r['dist_task'])} | "
                             f"{_f(r['dist_pool_bayes'])} | {_f(r['dist_prior_bayes'])} | "
                             f"{_f(r['bayes_pool_gap'])} | {_f(r['dist_bayes_refs'])} | "
                             f"{tested} |")
        lines.append("")
    lines += ["\\* passes at alpha after Holm.", ""]
    lines += [s["text"] for s in sec["sentences"] if s["arm"] == sec["learner"]]
    ctrl = [s["text"] for s in sec["sentences"] if s["arm"] == sec.get("control")]
    if ctrl:
        lines += ["", "Control: " + " ".join(ctrl)]
    lines += ["", "`algorithm.png`: distance to pool-Bayes and to prior-Bayes against the "
              "number of training tasks, learner and control, with 95 % intervals.", ""]
    return lines


# --- figure --------------------------------------------------------------------------------------
def plot_algorithm(rep: dict, out: Path) -> list[Path]:
    """``algorithm.png`` where the report has the section, else nothing."""
    if not rep.get("algorithm"):
        return []
    algorithm_figure(rep, Path(out) / "algorithm.png")
    return [Path(out) / "algorithm.png"]


def algorithm_figure(rep: dict, path: Path | None = None, *, axes=None):
    """Per intensity: the distances to pool-Bayes and prior-Bayes (left) and their gap (right)
    against the number of training tasks (a figure function of :mod:`meta_evo.report.figure`)."""
    from meta_evo.report.figure import finish, panels

    sec = rep["algorithm"]
    ds = sec["task_counts"]
    finite = [d for d in ds if d > 0]
    top = max(finite) if finite else 1
    pos = {d: float(d) if d > 0 else float(top) * 4.0 for d in ds}
    x = np.array([pos[d] for d in ds])
    ints = sorted({r["intensity"] for r in sec["rows"]})
    fig, axes = panels(len(ints), 2, (11, 3.6 * len(ints) + 0.6), axes)

    def series(arm, i, key):
        m, lo, hi = [], [], []
        for d in ds:
            r = next((x for x in sec["rows"] if x["arm"] == arm and x["intensity"] == i
                      and x["diversity"] == d), None)
            c = r[key] if r else None
            ok = c and c["mean"] is not None
            m.append(c["mean"] if ok else np.nan)
            lo.append(c["ci"][0] if ok and c["ci"][0] is not None else np.nan)
            hi.append(c["ci"][1] if ok and c["ci"][1] is not None else np.nan)
        return np.array(m, float), np.array(lo, float), np.array(hi, float)

    def draw(a, xs, m, lo, hi, color, st, k, label):
        ok = np.isfinite(lo) & np.isfinite(hi)
        yerr = np.where(ok, [m - lo, hi - m], 0.0)
        a.errorbar(xs, m, yerr=yerr, color=color, ls=st["ls"], marker=st["marker"],
                   mfc=st["mfc"] or color, ms=4, capsize=2, lw=1.4 if k == 0 else 1.0,
                   alpha=1.0 if k == 0 else 0.75, label=label)

    for row, i in enumerate(ints):
        a_dist, a_gap = axes[row]
        for k, arm in enumerate(sec["arms"][:2]):
            st = ARM_STYLE[min(k, 1)]
            nudge = 1.0 + 0.04 * k
            for key, name in (("dist_pool_bayes", "to pool-Bayes"),
                              ("dist_prior_bayes", "to prior-Bayes"), ("dist_task", "to task")):
                draw(a_dist, x * nudge, *series(arm, i, key), REF_COLORS[key], st, k,
                     f"{name}, {sec['labels'][arm]}")
            m, lo, hi = series(arm, i, "bayes_pool_gap")
            draw(a_gap, x * nudge, m, lo, hi, "#1f77b4" if k == 0 else "0.45", st, k,
                 sec["labels"][arm])
            passes = [next((t["passes"] for t in sec["tests"] if t["arm"] == arm
                            and t["intensity"] == i and t["diversity"] == d), False) for d in ds]
            sel = np.array(passes, bool)
            if sel.any():
                a_gap.scatter(x[sel] * nudge, m[sel], marker="*", s=90, zorder=5,
                              color="#1f77b4" if k == 0 else "0.45", edgecolor="k", lw=0.5)
        a_gap.axhline(0.0, color="k", lw=0.8)
        a_dist.set_ylabel(f"i = {i:g}\nmean distance of phi_K", fontsize=9)
        a_gap.set_ylabel("gap: to pool-Bayes - to prior-Bayes", fontsize=9)
        for a in (a_dist, a_gap):
            a.set_xscale("log")
            a.set_xticks(x)
            a.set_xticklabels([_count_text(d).replace(" (d=0)", "\n(d=0)") for d in ds],
                              fontsize=8)
            a.minorticks_off()
            a.set_xlim(min(x) / 1.6, max(x) * 1.6)
            a.grid(alpha=0.25)
            if row == len(ints) - 1:
                a.set_xlabel("number of distinct training tasks d (log)", fontsize=9)
        if row == 0:
            a_dist.legend(fontsize=7, loc="best")
            a_gap.legend(fontsize=7, loc="best")
            a_gap.set_title("positive: nearer prior-Bayes; star: passes after Holm",
                            fontsize=9)
    fig.suptitle(f"Which algorithm: distance of the final answer to pool-Bayes and prior-Bayes "
                 f"({rep.get('family', '')}, {sec['seeds']} seeds, mean with 95% t-interval; "
                 "control dashed)", fontsize=10)
    fig.tight_layout()
    return finish(fig, path)
