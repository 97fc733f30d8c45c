"""``algorithm.png``: the "which algorithm" section (:mod:`meta_evo.report.algorithm`) drawn from
the report dict, a figure function of :mod:`meta_evo.report.figure`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meta_evo.report.figure import (
    arm_errorbar,
    cell_series,
    finish,
    panels,
    task_count_axis,
    task_count_positions,
)

REF_COLORS = {"dist_pool_bayes": "#ff7f0e", "dist_prior_bayes": "#2ca02c",
              "dist_task": "#7f7f7f"}
DISTANCES = (("dist_pool_bayes", "to pool-Bayes"), ("dist_prior_bayes", "to prior-Bayes"),
             ("dist_task", "to task"))


def plot_algorithm(rep: dict, out: Path) -> list[Path]:
    """``algorithm.png`` where the report has the section, else nothing."""
    if not rep.get("algorithm"):
        return []
    algorithm_figure(rep, Path(out) / "algorithm.png")
    return [Path(out) / "algorithm.png"]


def _draw_intensity(a_dist, a_gap, sec: dict, i: float, x: np.ndarray) -> None:
    """One intensity: each arm's distances (left) and gap with the passing levels (right)."""
    ds = sec["task_counts"]
    for k, arm in enumerate(sec["arms"][:2]):
        nudge = 1.0 + 0.04 * k
        for key, name in DISTANCES:
            arm_errorbar(a_dist, x * nudge, *cell_series(sec["rows"], arm, i, key, ds),
                         REF_COLORS[key], k, f"{name}, {sec['labels'][arm]}")
        m, lo, hi = cell_series(sec["rows"], arm, i, "bayes_pool_gap", ds)
        color = "#1f77b4" if k == 0 else "0.45"
        arm_errorbar(a_gap, x * nudge, m, lo, hi, color, k, sec["labels"][arm])
        passes = [next((t["passes"] for t in sec["tests"] if t["arm"] == arm
                        and t["intensity"] == i and t["diversity"] == d), False) for d in ds]
        sel = np.array(passes, bool)
        if sel.any():
            a_gap.scatter(x[sel] * nudge, m[sel], marker="*", s=90, zorder=5, color=color,
                          edgecolor="k", lw=0.5)
    a_gap.axhline(0.0, color="k", lw=0.8)


def algorithm_figure(rep: dict, path: Path | None = None, *, axes=None):
    """Per intensity: the distances to pool-Bayes and prior-Bayes (left) and their gap (right)
    against the number of training tasks (a figure function of :mod:`meta_evo.report.figure`)."""
    sec = rep["algorithm"]
    ds = sec["task_counts"]
    pos = task_count_positions(ds)
    x = np.array([pos[d] for d in ds])
    ints = sorted({r["intensity"] for r in sec["rows"]})
    fig, axes = panels(len(ints), 2, (11, 3.6 * len(ints) + 0.6), axes)
    for row, i in enumerate(ints):
        a_dist, a_gap = axes[row]
        _draw_intensity(a_dist, a_gap, sec, i, x)
        a_dist.set_ylabel(f"i = {i:g}\nmean distance of phi_K", fontsize=9)
        a_gap.set_ylabel("gap: to pool-Bayes - to prior-Bayes", fontsize=9)
        for a in (a_dist, a_gap):
            task_count_axis(a, pos, ds)
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
