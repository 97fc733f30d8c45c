"""The figures of the which-objective verdict (:mod:`meta_evo.report.which_objective`), drawn
from a report dict alone (figure functions of :mod:`meta_evo.report.figure`):

- ``which_objective.png``: per diversity, the proxy pull and the proxy margin of the learner,
  the reference and the control against intensity, with the verdict of each level;
- ``coverage.png``: from a coverage sweep's parent report (``meta_evo.child_sweeps``), the excess
  proxy pull and margin against the share of training tasks drawn outside the region.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D

from meta_evo.report.figure import finish, panels
from meta_evo.report.which_objective import MARGIN, PULL, VERDICT_LABELS

ARM_LINES = {"learner": ("C3", "o", "-"), "reference": ("C0", "s", "--"),
             "control": ("0.5", "^", ":")}
VERDICT_COLORS = {"pseudo_aligned": "C3", "undetermined": "C4", "goal_generalizes": "C2",
                  "capability_only": "C1", "no_optimization": "0.6", None: "k"}


def _has_mean(cells: list) -> bool:
    return any(c and c.get("mean") is not None for c in cells)


def _cell_arrays(cells: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Means and interval bounds of mean-and-interval cells (NaN where empty)."""
    m = np.array([np.nan if not c or c["mean"] is None else c["mean"] for c in cells], float)
    lo = np.array([np.nan if not c or c["ci"][0] is None else c["ci"][0] for c in cells], float)
    hi = np.array([np.nan if not c or c["ci"][1] is None else c["ci"][1] for c in cells], float)
    return m, lo, hi


# --- which_objective.png -------------------------------------------------------------------------
def _arm_lines(a, rows: list[dict], arms: list[str], metric: str, labels: dict) -> None:
    """``metric`` of each arm against intensity: means with their 95 % band."""
    xs = np.array([r["intensity"] for r in rows])
    for arm in arms:
        cells = [(r.get(arm) or {}).get(metric) for r in rows]
        if not _has_mean(cells):
            continue
        m, lo, hi = _cell_arrays(cells)
        color, marker, ls = ARM_LINES[arm]
        a.plot(xs, m, color=color, marker=marker, ls=ls, label=labels.get(arm, arm))
        a.fill_between(xs, lo, hi, color=color, alpha=0.15)


def which_objective_figure(rep: dict, path: Path | None = None, *, axes=None):
    """Per diversity: the proxy pull (left) and the proxy margin (right) of each arm against
    intensity, means with 95 % intervals, and the verdict of each level above the left panel."""
    sec = rep["which_objective"]
    divs = sorted({r["diversity"] for r in sec["rows"]})
    arms = [a for a in ("learner", "reference", "control") if a in sec["rows"][0]]
    fig, axes = panels(len(divs), 2, (10.0, 3.8 * len(divs)), axes)
    for row_axes, d in zip(axes, divs, strict=True):
        rows = sorted((r for r in sec["rows"] if r["diversity"] == d),
                      key=lambda r: r["intensity"])
        for a, metric, name in ((row_axes[0], PULL, "proxy pull"),
                                (row_axes[1], MARGIN, "proxy margin (spread units)")):
            _arm_lines(a, rows, arms, metric, sec["labels"])
            a.axhline(0.0, color="k", lw=0.6)
            a.set_xlabel("selection intensity i")
            a.set_ylabel(name)
            a.grid(alpha=0.25)
        for r in rows:
            label = VERDICT_LABELS.get(r["verdict"], "no verdict")
            row_axes[0].annotate(label, xy=(r["intensity"], 1.0),
                                 xycoords=("data", "axes fraction"), xytext=(0, 4),
                                 textcoords="offset points", ha="center", fontsize=7,
                                 rotation=20)
        row_axes[1].set_title(f"trained on {sec['train_region']}, d = {d}", fontsize=9)
    axes[0][1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return finish(fig, path)


def plot_verdict(rep: dict, out: Path) -> list[Path]:
    """``which_objective.png`` where the report has the section, else nothing."""
    if not rep.get("which_objective"):
        return []
    which_objective_figure(rep, Path(out) / "which_objective.png")
    return [Path(out) / "which_objective.png"]


# --- coverage.png --------------------------------------------------------------------------------
def _excess_lines(a, rows: list[dict], qs: list[float], metric: str) -> None:
    """One line per (diversity, intensity) against the evenly spaced shares q, each point in
    the colour of its verdict."""
    pos = {q: k for k, q in enumerate(qs)}
    for d, i in sorted({(r["diversity"], r["intensity"]) for r in rows}):
        sel = sorted((r for r in rows if (r["diversity"], r["intensity"]) == (d, i)),
                     key=lambda r: r["q"])
        cells = [r[metric] for r in sel]
        if not _has_mean(cells):
            continue
        x = np.array([pos[r["q"]] for r in sel], float)
        m, lo, hi = _cell_arrays(cells)
        a.plot(x, m, color="k", lw=0.8, label=f"d = {d}, i = {i:g}")
        a.fill_between(x, lo, hi, color="k", alpha=0.1)
        for xx, mm, r in zip(x, m, sel, strict=True):
            a.plot(xx, mm, "o", color=VERDICT_COLORS.get(r["verdict"], "k"), ms=6)


def coverage_figure(rep: dict, path: Path | None = None, *, axes=None):
    """The coverage sweep: excess proxy pull (left) and margin (right), learner minus
    reference with 95 % intervals, against the share q of training tasks drawn outside the
    region (evenly spaced ticks), one line per diversity and intensity above 0; each point's
    verdict is marked by its colour (red: pseudo-aligned)."""
    rows = [r for r in rep["rows"] if r["intensity"] > 0]
    qs = sorted({r["q"] for r in rep["rows"]})
    fig, axes = panels(1, 2, (10.0, 3.8), axes)
    axes = axes[0]
    for a, metric, name in ((axes[0], "excess_proxy_pull", "excess proxy pull"),
                            (axes[1], "excess_proxy_margin", "excess proxy margin")):
        _excess_lines(a, rows, qs, metric)
        a.axhline(0.0, color="k", lw=0.6)
        a.set_xticks(range(len(qs)))
        a.set_xticklabels([f"{q:g}" for q in qs])
        a.set_xlabel("share q of training tasks drawn outside the region")
        a.set_ylabel(name + " (learner - reference)")
        a.grid(alpha=0.25)
    handles = [Line2D([], [], marker="o", ls="", color=c, label=VERDICT_LABELS[v])
               for v, c in VERDICT_COLORS.items() if v is not None]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"coverage: trained on {rep['train_region']}", fontsize=10)
    fig.tight_layout()
    return finish(fig, path)
