"""The figures of the ``regimes`` section (:mod:`meta_evo.report.regimes`), drawn from the report
dict alone (figure functions of :mod:`meta_evo.report.figure`):

- ``task_count.png``: one row per intensity; the number of training tasks on a log axis
  (d = 0, a fresh task every draw, at the right as "inf"); pool and held-out accuracy with
  95 % intervals and their chance levels, pool and held-out objective sensitivity, and the
  regime shares per level as stacked bars (learner solid, control hatched); the control's
  lines dashed.
- ``phase_2d.png`` (two or more intensities and task counts): intensity x task count; the
  modal regime by colour, the primary metric's mean by shade (and printed), the confidence
  (share of seeds in the modal regime) printed; learner and control.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from meta_evo.report.classify import REGIME_LABELS
from meta_evo.report.common import diversity_label
from meta_evo.report.figure import (
    arm_errorbar,
    cell_series,
    finish,
    panels,
    task_count_axis,
    task_count_positions,
)

REGIME_COLORS = {"memorization": "#8c8c8c", "identification": "#ff7f0e",
                 "general_learning": "#2ca02c", "none": "#f0f0f0"}
POOL, HELDOUT = "#1f77b4", "#d62728"


def _row(sec, arm, i, d):
    return next((r for r in sec["rows"] if r["arm"] == arm and r["intensity"] == i
                 and r["diversity"] == d), None)


# --- task_count.png ------------------------------------------------------------------------------
def _accuracy_panel(a, sec: dict, i: float, x: np.ndarray, labels: dict) -> None:
    """Pool and held-out accuracy of each arm, and the two chance lines."""
    ds = sec["task_counts"]
    for k, arm in enumerate(sec["arms"]):
        for key, color, name in (("pool_accuracy", POOL, "pool"),
                                 ("heldout_accuracy", HELDOUT, "held-out")):
            arm_errorbar(a, x * (1.0 + 0.04 * k), *cell_series(sec["rows"], arm, i, key, ds),
                         color, k, f"{name}, {labels[arm]}")
    # chance: the pool's depends on the block trained on (1 / min(d, n_p)), the held-out
    # one is 1 / n
    pool_ch = [(_row(sec, sec["arms"][0], i, d) or {}).get("pool_chance") for d in ds]
    held_ch = next(r["heldout_chance"] for r in sec["rows"])
    a.plot(x, [np.nan if c is None else c for c in pool_ch], color=POOL, lw=0.9,
           ls=":", marker="_", ms=12, label="pool chance (1 / tasks in the block)")
    a.axhline(held_ch, color=HELDOUT, lw=0.9, ls=":", label="held-out chance")
    a.set_ylim(-0.05, 1.08)
    a.set_ylabel(f"i = {i:g}\naccuracy", fontsize=9)


def _sensitivity_panel(a, sec: dict, i: float, x: np.ndarray) -> None:
    """Pool and held-out objective sensitivity of each arm, and the kernels' threshold."""
    for k, arm in enumerate(sec["arms"]):
        for key, color in (("pool_sensitivity", POOL), ("heldout_sensitivity", HELDOUT)):
            arm_errorbar(a, x * (1.0 + 0.04 * k),
                         *cell_series(sec["rows"], arm, i, key, sec["task_counts"]), color, k)
    th = sec["thresholds"]["sensitivity_threshold"]
    a.axhline(0.0, color="0.5", lw=0.8)
    a.axhline(th, color="0.5", lw=0.8, ls=":", label=f"threshold {th:g}")
    a.set_ylabel("objective sensitivity", fontsize=9)


def _regime_panel(a, sec: dict, i: float, x: np.ndarray) -> None:
    """Regime shares as stacked bars: the learner left of each position, the control right."""
    ds = sec["task_counts"]
    for k, arm in enumerate(sec["arms"][:2]):
        bottom = np.zeros(len(ds))
        lo = x / 1.22 if k == 0 else x
        hi = x if k == 0 else x * 1.22
        for name in sec["names"]:
            h = np.array([((_row(sec, arm, i, d) or {}).get("shares") or {}).get(name) or 0.0
                          for d in ds])
            a.bar(lo, h, width=hi - lo, bottom=bottom, align="edge",
                  color=REGIME_COLORS[name], edgecolor="k", lw=0.4, hatch="//" if k else None)
            bottom += h
    a.set_ylim(0, 1.05)
    a.set_ylabel("share of seeds", fontsize=9)


def _task_count_legend(sec: dict, labels: dict) -> list:
    """The regimes by colour, the learner solid, the control dashed."""
    arms = sec["arms"]
    handles = [Patch(facecolor=REGIME_COLORS[n], edgecolor="k", label=REGIME_LABELS[n])
               for n in sec["names"]]
    handles += [Line2D([], [], color="k", ls="-", marker="o", label=labels[arms[0]])]
    if len(arms) > 1:
        handles.append(Line2D([], [], color="k", ls="--", marker="s", mfc="white",
                              label=f"control: {labels[arms[1]]}"))
    return handles


def task_count_figure(rep: dict, path: Path | None = None, *, axes=None):
    sec = rep["regimes"]
    ds = sec["task_counts"]
    pos = task_count_positions(ds)
    ints = sorted({r["intensity"] for r in sec["rows"]})
    labels = {r["arm"]: r["label"] for r in sec["rows"]}
    height = 3.6 * len(ints) + 1.1
    fig, axes = panels(len(ints), 3, (15, height), axes)
    x = np.array([pos[d] for d in ds])
    for row, i in enumerate(ints):
        a_acc, a_sens, a_reg = axes[row]
        _accuracy_panel(a_acc, sec, i, x, labels)
        _sensitivity_panel(a_sens, sec, i, x)
        _regime_panel(a_reg, sec, i, x)
        for a in (a_acc, a_sens, a_reg):
            task_count_axis(a, pos, ds)
        if row == 0:
            a_acc.set_title("accuracy on pool (blue) and held-out (red) tasks", fontsize=10)
            a_sens.set_title("objective sensitivity", fontsize=10)
            a_reg.set_title("regime per seed (left: learner, right hatched: control)",
                            fontsize=10)
            a_acc.legend(fontsize=7, loc="best")
            a_sens.legend(fontsize=7, loc="best")
        if row == len(ints) - 1:
            for a in (a_acc, a_sens, a_reg):
                a.set_xlabel("number of distinct training tasks d (log)", fontsize=9)
    handles = _task_count_legend(sec, labels)
    fig.suptitle(f"Regimes against the number of training tasks: {rep['family']}, "
                 f"{rep['axes']['seeds']} seeds, mean with 95% t-interval",
                 y=1 - 0.12 / height, va="top", fontsize=11)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.45 / height))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.95 / height))
    return finish(fig, path)


# --- phase_2d.png --------------------------------------------------------------------------------
def phase_2d(rep: dict, path: Path | None = None, *, axes=None):
    sec = rep["regimes"]
    ds = sec["task_counts"]
    ints = sorted({r["intensity"] for r in sec["rows"]})
    arms = sec["arms"][:2]
    prim = [r["primary"]["mean"] for r in sec["rows"] if r["primary"]["mean"] is not None]
    lo, hi = (min(prim), max(prim)) if prim else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    metric = sec["rows"][0]["primary"]["metric"]
    fig, axes = panels(1, len(arms), (1.4 * len(ds) * len(arms) + 2.5, 0.75 * len(ints) + 2.2),
                       axes)
    for a, arm in zip(axes[0], arms, strict=True):
        for yi, i in enumerate(ints):
            for xi, d in enumerate(ds):
                r = _row(sec, arm, i, d)
                if r is None:
                    continue
                v = r["primary"]["mean"]
                shade = 0.25 + 0.75 * ((v - lo) / span if v is not None else 0.0)
                a.add_patch(Rectangle((xi - 0.5, yi - 0.5), 1, 1,
                                      color=REGIME_COLORS[r["modal"]], alpha=shade, lw=0))
                txt = f"{r['confidence']:.2f}\n" + ("—" if v is None else f"{v:.2f}")
                a.text(xi, yi, txt, ha="center", va="center", fontsize=7)
        a.set_xlim(-0.5, len(ds) - 0.5)
        a.set_ylim(-0.5, len(ints) - 0.5)
        a.set_xticks(range(len(ds)))
        a.set_xticklabels([diversity_label(d, "count").replace(" (d=0)", "") for d in ds],
                          fontsize=8)
        a.set_yticks(range(len(ints)))
        a.set_yticklabels([f"{i:g}" for i in ints], fontsize=8)
        a.set_xlabel("number of training tasks d (inf: d = 0)", fontsize=9)
        a.set_ylabel("selection intensity i", fontsize=9)
        a.set_title(next(r["label"] for r in sec["rows"] if r["arm"] == arm), fontsize=10)
    handles = [Patch(color=REGIME_COLORS[n], label=REGIME_LABELS[n]) for n in sec["names"]]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"Modal regime (colour); {metric} (shade: darker = higher; lower number); "
                 "upper number: share of seeds in the modal regime", fontsize=9, y=0.9)
    fig.tight_layout(rect=(0, 0, 1, 0.84))
    return finish(fig, path)


def plot_regimes(rep: dict, out: Path) -> list[Path]:
    """``task_count.png`` (and ``phase_2d.png`` with two or more intensities and task counts)
    where the report has the section, else nothing."""
    sec = rep.get("regimes")
    if not sec:
        return []
    out = Path(out)
    todo = [(task_count_figure, "task_count.png")]
    if len({r["intensity"] for r in sec["rows"]}) >= 2 and len(sec["task_counts"]) >= 2:
        todo.append((phase_2d, "phase_2d.png"))
    for fn, name in todo:
        fn(rep, out / name)
    return [out / name for _, name in todo]
