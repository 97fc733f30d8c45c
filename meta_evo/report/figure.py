"""How every report figure is drawn, for files and for notebooks.

A figure function is ``f(rep, path=None, *, axes=None) -> Figure``: it draws from the report
dict alone, into new axes or into the ``axes`` given (as many as the figure has panels, in
row order: a notebook lays figures out itself), saves to ``path`` when one is given (and then
closes the figure: the report writer makes many) and returns the ``Figure``. No backend is
chosen here: the CLI uses Agg, a notebook its own.

Besides the conventions (:func:`panels`, :func:`finish`), the pieces several figures draw
alike: the log axis over the number of training tasks (d = 0, infinitely many, at the right)
and the learner's and control's error bars over it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from meta_evo.report.common import diversity_label

DPI = 110
# the learner (first) and every other arm (the control) over the task count
ARM_STYLE = ({"ls": "-", "marker": "o", "mfc": None}, {"ls": "--", "marker": "s", "mfc": "white"})


def panels(rows: int, cols: int, figsize, axes=None, **subplots):
    """``(figure, axes [rows, cols])``: new, or the given ``axes`` (ValueError, one line, when
    their number is not ``rows * cols``)."""
    if axes is None:
        return plt.subplots(rows, cols, figsize=figsize, squeeze=False, **subplots)
    grid = np.asarray(axes, dtype=object)
    if grid.size != rows * cols:
        raise ValueError(f"axes: this figure has {rows} x {cols} panels, got {grid.size} axes")
    grid = grid.reshape(rows, cols)
    return grid.flat[0].figure, grid


def finish(fig, path=None, dpi: int = DPI):
    """Save ``fig`` to ``path`` (then close it) when a path is given; return ``fig``."""
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig


# --- over the number of training tasks -----------------------------------------------------------
def task_count_positions(task_counts: list[int]) -> dict[int, float]:
    """x position of each diversity on a log axis: d itself, d = 0 four times right of the
    largest finite count."""
    finite = [d for d in task_counts if d > 0]
    top = max(finite) if finite else 1
    return {d: float(d) if d > 0 else float(top) * 4.0 for d in task_counts}


def task_count_axis(a, pos: dict[int, float], ds: list[int]) -> None:
    """A log x axis with one tick per task count (``inf`` for d = 0) and a light grid."""
    a.set_xscale("log")
    xs = [pos[d] for d in ds]
    a.set_xticks(xs)
    a.set_xticklabels([diversity_label(d, "count").replace(" (d=0)", "\n(d=0)") for d in ds],
                      fontsize=8)
    a.minorticks_off()
    a.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    a.grid(alpha=0.25)


def cell_series(rows: list[dict], arm: str, intensity: float, key: str, ds: list[int]):
    """Means and interval bounds ``[d]`` of the cell ``key`` of one arm and intensity over the
    task counts ``ds`` (NaN where absent), from a section's rows."""
    m, lo, hi = [], [], []
    for d in ds:
        r = next((x for x in rows if x["arm"] == arm and x["intensity"] == intensity
                  and x["diversity"] == d), None)
        c = r.get(key) if r else None
        vals = [np.nan, np.nan, np.nan] if not c or c.get("mean") is None else \
            [c["mean"], *(np.nan if v is None else v for v in c["ci"])]
        m.append(vals[0])
        lo.append(vals[1])
        hi.append(vals[2])
    return np.array(m, float), np.array(lo, float), np.array(hi, float)


def arm_errorbar(a, x, m, lo, hi, color, k: int, label: str | None = None) -> None:
    """Means with interval bars (none where a bound is missing) in the style of arm ``k``
    (0: the learner, solid; else dashed, hollow, lighter)."""
    st = ARM_STYLE[min(k, 1)]
    ok = np.isfinite(lo) & np.isfinite(hi)
    yerr = np.where(ok, [m - lo, hi - m], 0.0)
    a.errorbar(x, m, yerr=yerr, color=color, ls=st["ls"], marker=st["marker"],
               mfc=st["mfc"] or color, ms=4, capsize=2, lw=1.4 if k == 0 else 1.0,
               alpha=1.0 if k == 0 else 0.75, label=label)
