"""Figures of the report's "which objective" sections, drawn from the report dict alone (figure
functions of :mod:`meta_evo.report.figure`).

- ``task_count.png`` (``regimes``): one row per intensity; the number of training tasks on a
  log axis (d = 0, a fresh task every draw, at the right as "inf"); pool and held-out accuracy
  with 95 % intervals and their chance levels, pool and held-out objective sensitivity, and
  the regime shares per level as stacked bars (learner solid, control hatched); the control's
  lines dashed.
- ``phase_2d.png`` (``regimes``, two or more intensities and task counts): intensity x task
  count; the modal regime by colour, the primary metric's mean by shade (and printed), the
  confidence (share of seeds in the modal regime) printed; learner and control.
- ``which_objective.png`` (``which_objective``): the proxy pull and the proxy margin of the
  learner, the reference and the control against intensity, with the verdict of each level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from meta_evo.report.figure import finish, panels
from meta_evo.report.objective import (
    REGIME_LABELS,
    task_count_text,
)

DPI = 110
REGIME_COLORS = {"memorization": "#8c8c8c", "identification": "#ff7f0e",
                 "general_learning": "#2ca02c", "none": "#f0f0f0"}
ARM_STYLE = ({"ls": "-", "marker": "o", "mfc": None}, {"ls": "--", "marker": "s", "mfc": "white"})


def _positions(task_counts: list[int]) -> dict[int, float]:
    """x position of each diversity on a log axis: d itself, d = 0 four times right of the
    largest finite count."""
    finite = [d for d in task_counts if d > 0]
    top = max(finite) if finite else 1
    return {d: float(d) if d > 0 else float(top) * 4.0 for d in task_counts}


def _row(sec, arm, i, d):
    return next((r for r in sec["rows"] if r["arm"] == arm and r["intensity"] == i
                 and r["diversity"] == d), None)


def _series(sec, arm, i, key):
    """Means and interval bounds of ``key`` over the task counts (NaN where absent)."""
    m, lo, hi = [], [], []
    for d in sec["task_counts"]:
        r = _row(sec, arm, i, d)
        c = r.get(key) if r else None
        vals = [np.nan, np.nan, np.nan] if not c or c.get("mean") is None else \
            [c["mean"], *(np.nan if v is None else v for v in c["ci"])]
        m.append(vals[0])
        lo.append(vals[1])
        hi.append(vals[2])
    return np.array(m, float), np.array(lo, float), np.array(hi, float)


def _log_axis(a, pos, ds):
    a.set_xscale("log")
    xs = [pos[d] for d in ds]
    a.set_xticks(xs)
    a.set_xticklabels([task_count_text(d).replace(" (d=0)", "\n(d=0)") for d in ds],
                      fontsize=8)
    a.minorticks_off()
    a.set_xlim(min(xs) / 1.6, max(xs) * 1.6)
    a.grid(alpha=0.25)


def task_count_figure(rep: dict, path: Path | None = None, *, axes=None):
    sec = rep["regimes"]
    ds = sec["task_counts"]
    pos = _positions(ds)
    ints = sorted({r["intensity"] for r in sec["rows"]})
    arms = sec["arms"]
    labels = {r["arm"]: r["label"] for r in sec["rows"]}
    height = 3.6 * len(ints) + 1.1
    fig, axes = panels(len(ints), 3, (15, height), axes)
    x = np.array([pos[d] for d in ds])
    for row, i in enumerate(ints):
        a_acc, a_sens, a_reg = axes[row]
        for k, arm in enumerate(arms):
            st = ARM_STYLE[min(k, 1)]
            nudge = 1.0 + 0.04 * k
            for key, color, name in (("pool_accuracy", "#1f77b4", "pool"),
                                     ("heldout_accuracy", "#d62728", "held-out")):
                m, lo, hi = _series(sec, arm, i, key)
                ok = np.isfinite(lo) & np.isfinite(hi)
                yerr = np.where(ok, [m - lo, hi - m], 0.0)
                a_acc.errorbar(x * nudge, m, yerr=yerr, color=color, ls=st["ls"],
                               marker=st["marker"], mfc=st["mfc"] or color, ms=4, capsize=2,
                               lw=1.4 if k == 0 else 1.0, alpha=1.0 if k == 0 else 0.75,
                               label=f"{name}, {labels[arm]}")
            for key, color in (("pool_sensitivity", "#1f77b4"),
                               ("heldout_sensitivity", "#d62728")):
                m, lo, hi = _series(sec, arm, i, key)
                ok = np.isfinite(lo) & np.isfinite(hi)
                yerr = np.where(ok, [m - lo, hi - m], 0.0)
                a_sens.errorbar(x * nudge, m, yerr=yerr, color=color, ls=st["ls"],
                                marker=st["marker"], mfc=st["mfc"] or color, ms=4, capsize=2,
                                lw=1.4 if k == 0 else 1.0, alpha=1.0 if k == 0 else 0.75)
        # chance: the pool's depends on the block trained on (1 / min(d, n_p)), the held-out
        # one is 1 / n
        pool_ch = [(_row(sec, arms[0], i, d) or {}).get("pool_chance") for d in ds]
        held_ch = next(r["heldout_chance"] for r in sec["rows"])
        a_acc.plot(x, [np.nan if c is None else c for c in pool_ch], color="#1f77b4", lw=0.9,
                   ls=":", marker="_", ms=12, label="pool chance (1 / tasks in the block)")
        a_acc.axhline(held_ch, color="#d62728", lw=0.9, ls=":", label="held-out chance")
        a_acc.set_ylim(-0.05, 1.08)
        a_acc.set_ylabel(f"i = {i:g}\naccuracy", fontsize=9)
        th = sec["thresholds"]["sensitivity_threshold"]
        a_sens.axhline(0.0, color="0.5", lw=0.8)
        a_sens.axhline(th, color="0.5", lw=0.8, ls=":", label=f"threshold {th:g}")
        a_sens.set_ylabel("objective sensitivity", fontsize=9)
        # regime shares: stacked bars, learner left of the position, control right
        for k, arm in enumerate(arms[:2]):
            bottom = np.zeros(len(ds))
            lo = x / 1.22 if k == 0 else x
            hi = x if k == 0 else x * 1.22
            for name in sec["names"]:
                h = np.array([((_row(sec, arm, i, d) or {}).get("shares") or {}).get(name) or 0.0
                              for d in ds])
                a_reg.bar(lo, h, width=hi - lo, bottom=bottom, align="edge",
                          color=REGIME_COLORS[name], edgecolor="k", lw=0.4,
                          hatch="//" if k else None)
                bottom += h
        a_reg.set_ylim(0, 1.05)
        a_reg.set_ylabel("share of seeds", fontsize=9)
        for a in (a_acc, a_sens, a_reg):
            _log_axis(a, pos, ds)
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
    handles = [Patch(facecolor=REGIME_COLORS[n], edgecolor="k", label=REGIME_LABELS[n])
               for n in sec["names"]]
    handles += [Line2D([], [], color="k", ls="-", marker="o", label=labels[arms[0]])]
    if len(arms) > 1:
        handles.append(Line2D([], [], color="k", ls="--", marker="s", mfc="white",
                              label=f"control: {labels[arms[1]]}"))
    fig.suptitle(f"Regimes against the number of training tasks: {rep['family']}, "
                 f"{rep['axes']['seeds']} seeds, mean with 95% t-interval",
                 y=1 - 0.12 / height, va="top", fontsize=11)
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 1 - 0.45 / height))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.95 / height))
    return finish(fig, path, DPI)


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
        a.set_xticklabels([task_count_text(d).replace(" (d=0)", "") for d in ds], fontsize=8)
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
    return finish(fig, path, DPI)


def which_objective_figure(rep: dict, path: Path | None = None, *, axes=None):
    """Per diversity: the proxy pull (left) and the proxy margin (right) of each arm against
    intensity, means with 95 % intervals, and the verdict of each level above the left panel."""
    from meta_evo.report.which_objective import MARGIN, PULL, VERDICT_LABELS

    sec = rep["which_objective"]
    divs = sorted({r["diversity"] for r in sec["rows"]})
    arms = [a for a in ("learner", "reference", "control") if a in sec["rows"][0]]
    styles = {"learner": ("C3", "o", "-"), "reference": ("C0", "s", "--"),
              "control": ("0.5", "^", ":")}
    fig, axes = panels(len(divs), 2, (10.0, 3.8 * len(divs)), axes)
    for row_axes, d in zip(axes, divs, strict=True):
        rows = sorted((r for r in sec["rows"] if r["diversity"] == d),
                      key=lambda r: r["intensity"])
        xs = np.array([r["intensity"] for r in rows])
        for a, metric, name in ((row_axes[0], PULL, "proxy pull"),
                                (row_axes[1], MARGIN, "proxy margin (spread units)")):
            for arm in arms:
                cells = [(r.get(arm) or {}).get(metric) for r in rows]
                if not any(c and c.get("mean") is not None for c in cells):
                    continue
                m = np.array([np.nan if not c or c["mean"] is None else c["mean"]
                              for c in cells], float)
                lo = np.array([np.nan if not c or c["ci"][0] is None else c["ci"][0]
                               for c in cells], float)
                hi = np.array([np.nan if not c or c["ci"][1] is None else c["ci"][1]
                               for c in cells], float)
                color, marker, ls = styles[arm]
                a.plot(xs, m, color=color, marker=marker, ls=ls,
                       label=sec["labels"].get(arm, arm))
                a.fill_between(xs, lo, hi, color=color, alpha=0.15)
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
    return finish(fig, path, DPI)


def coverage_figure(rep: dict, path: Path | None = None, *, axes=None):
    """The coverage sweep: excess proxy pull (left) and margin (right), learner minus
    reference with 95 % intervals, against the share q of training tasks drawn outside the
    region (evenly spaced ticks), one line per diversity and intensity above 0; each point's
    verdict is marked by its colour (red: pseudo-aligned)."""
    from meta_evo.report.which_objective import VERDICT_LABELS

    rows = [r for r in rep["rows"] if r["intensity"] > 0]
    qs = sorted({r["q"] for r in rep["rows"]})
    pos = {q: k for k, q in enumerate(qs)}
    colors = {"pseudo_aligned": "C3", "undetermined": "C4", "goal_generalizes": "C2",
              "capability_only": "C1", "no_optimization": "0.6", None: "k"}
    fig, axes = panels(1, 2, (10.0, 3.8), axes)
    axes = axes[0]
    keys = sorted({(r["diversity"], r["intensity"]) for r in rows})
    for a, metric, name in ((axes[0], "excess_proxy_pull", "excess proxy pull"),
                            (axes[1], "excess_proxy_margin", "excess proxy margin")):
        for d, i in keys:
            sel = sorted((r for r in rows if (r["diversity"], r["intensity"]) == (d, i)),
                         key=lambda r: r["q"])
            cells = [r[metric] for r in sel]
            if not any(c and c.get("mean") is not None for c in cells):
                continue
            x = np.array([pos[r["q"]] for r in sel], float)
            m = np.array([np.nan if not c or c["mean"] is None else c["mean"] for c in cells])
            lo = np.array([np.nan if not c or c["ci"][0] is None else c["ci"][0] for c in cells])
            hi = np.array([np.nan if not c or c["ci"][1] is None else c["ci"][1] for c in cells])
            a.plot(x, m, color="k", lw=0.8, label=f"d = {d}, i = {i:g}")
            a.fill_between(x, lo, hi, color="k", alpha=0.1)
            for xx, mm, r in zip(x, m, sel, strict=True):
                a.plot(xx, mm, "o", color=colors.get(r["verdict"], "k"), ms=6)
        a.axhline(0.0, color="k", lw=0.6)
        a.set_xticks(range(len(qs)))
        a.set_xticklabels([f"{q:g}" for q in qs])
        a.set_xlabel("share q of training tasks drawn outside the region")
        a.set_ylabel(name + " (learner - reference)")
        a.grid(alpha=0.25)
    handles = [Line2D([], [], marker="o", ls="", color=c, label=VERDICT_LABELS[v])
               for v, c in colors.items() if v is not None]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(f"coverage: trained on {rep['train_region']}", fontsize=10)
    fig.tight_layout()
    return finish(fig, path, DPI)


def plot_objective(rep: dict, out: Path) -> list[Path]:
    """The figures whose sections the report has."""
    out = Path(out)
    todo = []
    sec = rep.get("regimes")
    if sec:
        todo.append((task_count_figure, "task_count.png"))
        if len({r["intensity"] for r in sec["rows"]}) >= 2 and len(sec["task_counts"]) >= 2:
            todo.append((phase_2d, "phase_2d.png"))
    if rep.get("which_objective"):
        todo.append((which_objective_figure, "which_objective.png"))
    for fn, name in todo:
        fn(rep, out / name)
    return [out / name for _, name in todo]
