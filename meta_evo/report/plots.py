"""The sweep report's figures of every sweep, drawn from the report dict alone (figure functions of
:mod:`meta_evo.report.figure`: each returns its Figure, takes ``axes`` and saves when given a
path).

- ``phase_diagram.png``: one panel per metric against selection intensity; one colour per
  diversity level; dots are seeds, the solid line the learner arm's mean with a 95 % band,
  the dashed line with hollow squares the control arm (offset a little to the right); an
  onset that passes its test after adjustment is a vertical line (its resampling stability a
  band) in the diversity's colour; each tested metric prints the learner-minus-control
  difference at the top intensity with its 95 % interval. Metrics without data (e.g. no step
  for the gru learner) get no panel.
- ``lifetime_curves.png``: held-out return along the lifetime (update k = 0..K), one panel
  per intensity; thin lines seeds, thick the mean, dashed the control.
- ``evolution.png``: training fitness (and the evolved step size and the realized search
  scale sigma, where recorded) per meta-generation.
- ``cross_task_matrix.png``: ``M[a, b]`` of the strongest grid point and of the control arm at
  the same point; the best column of each row is boxed;
- :func:`plot_all` draws these and, where the report has those sections, ``task_count.png``
  and ``phase_2d.png`` (:mod:`meta_evo.report.regime_plots`), ``which_objective.png``
  (:mod:`meta_evo.report.verdict_plots`) and ``algorithm.png``
  (:mod:`meta_evo.report.algorithm_plots`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from meta_evo.report.common import PHASE_METRICS, diversity_label
from meta_evo.report.figure import finish, panels
from meta_evo.report.stats import mean_ci

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _label(rep, arm: str | None) -> str | None:
    if arm is None:
        return None
    return rep.get("arm_labels", {}).get(arm, arm)


def _metrics_with_data(rep) -> list[tuple[str, str]]:
    """The PHASE_METRICS the learner arm has finite values of."""
    learner = rep["arms"][0]
    have = set()
    for p in rep["points"]:
        if p["arm"] == learner:
            have.update(k for k, v in p["metrics"].items() if v is not None)
    return [(k, label) for k, label in PHASE_METRICS if k in have]


def _values(rep, arm: str, div: int, metric: str) -> np.ndarray:
    """[L, S] final values of ``metric`` for one arm and diversity (NaN where absent)."""
    ax = rep["axes"]
    ints = ax["intensities"]
    out = np.full((len(ints), ax["seeds"]), np.nan)
    for p in rep["points"]:
        if p["arm"] == arm and p["diversity"] == div:
            v = p["metrics"].get(metric)
            out[ints.index(p["intensity"]), p["seed"]] = np.nan if v is None else v
    return out


def _onset(rep, metric: str, div: int) -> dict | None:
    """The learner-vs-control test of ``metric`` at ``div`` if it passes (after adjustment)."""
    for o in rep["onsets"]:
        if o["metric"] == metric and o["diversity"] == div and o["found"]:
            return o
    return None


def _top_difference(rep, metric: str, div: int) -> str | None:
    """The learner-minus-control difference at the top intensity with its 95 % interval, from
    the metric's test at ``div`` (passing or not), as a short label; None when untested."""
    o = next((o for o in rep["onsets"] if o["metric"] == metric and o["diversity"] == div
              and o.get("levels")), None)
    if o is None:
        return None
    top = o["levels"][-1]
    lo, hi = top["ci"]
    if top["difference"] is None or lo is None or hi is None:
        return None
    return (f"L - C at i = {top['intensity']:g}: {top['difference']:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}]")


def _tick_labels(ints: np.ndarray, raw: list, with_raw: bool) -> list[str]:
    """Intensity, and under it the raw pressure; a raw label too close to its left neighbour
    drops one more line, so crowded low levels stay readable."""
    if not with_raw:
        return [f"{i:g}" for i in ints]
    span = float(ints[-1] - ints[0]) or 1.0
    out, low = [], False
    for k, (i, r) in enumerate(zip(ints, raw, strict=True)):
        low = k > 0 and (i - ints[k - 1]) < 0.09 * span and not low
        out.append(f"{i:g}\n" + ("\n" if low else "") + f"({r:.2f})")
    return out


def _draw_learner(a, x, v: np.ndarray, c: str, jit: np.ndarray) -> np.ndarray:
    """The learner's seeds (dots), mean (line) and 95 % band at one diversity; its means."""
    stats = np.array([mean_ci(r) for r in v])
    a.scatter((x[:, None] + jit).ravel(), v.ravel(), s=12, color=c, alpha=0.55,
              linewidths=0, zorder=3)
    a.plot(x, stats[:, 0], "-o", color=c, ms=4, lw=1.8, zorder=4)
    a.fill_between(x, stats[:, 1], stats[:, 2], color=c, alpha=0.10, lw=0, zorder=2)
    return stats[:, 0]


def _draw_control(a, x, cv: np.ndarray, c: str, off: float, metric: str) -> list[np.ndarray]:
    """The control's mean ± 95 % (dashed, hollow, beside the learner) where it has the
    metric; for the step without a control value, the line at 0. Returns its means."""
    if np.isfinite(cv).any():
        cs = np.array([mean_ci(r) for r in cv])
        xc = x + 1.2 * off
        a.errorbar(xc, cs[:, 0], yerr=[cs[:, 0] - cs[:, 1], cs[:, 2] - cs[:, 0]],
                   fmt="--s", color=c, mfc="white", ms=4, lw=1.0, capsize=2,
                   alpha=0.8, zorder=3)
        return [cs[:, 0]]
    if metric == "step":
        a.axhline(0.0, color="0.6", lw=0.8, ls="--", zorder=1)
    return []


def _draw_onset(a, o: dict, shift: float, ints: np.ndarray, off: float, c: str, j: int):
    """A passing onset: a dotted vertical line, its resampling stability as a band."""
    lo, hi = o["onset_ci"]
    if isinstance(lo, (int, float)):
        top = hi if isinstance(hi, (int, float)) else ints[-1] + 4 * off
        if top > lo:
            a.axvspan(lo, top, color=c, alpha=0.07, zorder=0)
    a.axvline(o["onset"] + shift, color=c, ls=":", lw=1.6, zorder=1)
    tag = "onset" if o.get("role") == "primary" else "onset (expl.)"
    a.annotate(tag, xy=(o["onset"] + shift, 1.0), xycoords=("data", "axes fraction"),
               xytext=(2, -10 - 10 * j), textcoords="offset points", color=c, fontsize=8)


def _fit_y(a, rep: dict, metric: str, seen: list[np.ndarray], ints: np.ndarray) -> None:
    """The y range follows the data (seeds and means), not the 95 % bands: with 3 seeds a
    t-interval is 4.3 standard errors wide and would flatten everything else. Accuracy gets
    its chance line."""
    if metric == "behavioral_accuracy":
        seen.append(np.array([rep["chance_accuracy"]]))
    ys = np.concatenate(seen) if seen else np.array([])
    ys = ys[np.isfinite(ys)]
    if ys.size:
        lo, hi = float(ys.min()), float(ys.max())
        pad = 0.12 * (hi - lo) if hi > lo else max(0.1 * abs(hi), 0.05)
        a.set_ylim(lo - pad, hi + 1.6 * pad)
    if metric == "behavioral_accuracy":
        a.axhline(rep["chance_accuracy"], color="0.4", lw=0.8, ls="-.", zorder=1)
        a.annotate("chance", xy=(ints[-1], rep["chance_accuracy"]), xytext=(-30, 3),
                   textcoords="offset points", fontsize=8, color="0.4")


def _phase_panel(a, rep: dict, metric: str, ints: np.ndarray, off: float, rng) -> None:
    """One metric against intensity: per diversity level, the learner, the control, a passing
    onset and the learner-minus-control difference at the top intensity."""
    divs = rep["axes"]["diversities"]
    learner, control = rep["arms"][0], rep.get("control")
    seen: list[np.ndarray] = []  # what the y range must show: seeds and means
    for j, d in enumerate(divs):
        c = COLORS[j % len(COLORS)]
        shift = (j - (len(divs) - 1) / 2) * 2.5 * off
        v = _values(rep, learner, d, metric)
        x = ints + shift
        jit = rng.uniform(-off, off, v.shape)
        seen.append(v.ravel())
        seen.append(_draw_learner(a, x, v, c, jit))
        if control:
            seen += _draw_control(a, x, _values(rep, control, d, metric), c, off, metric)
        o = _onset(rep, metric, d)
        if o:
            _draw_onset(a, o, shift, ints, off, c, j)
        diff = _top_difference(rep, metric, d)
        if diff:
            a.annotate(diff, xy=(0.02, 0.03 + 0.08 * j), xycoords="axes fraction",
                       color=c, fontsize=7)
    _fit_y(a, rep, metric, seen, ints)


def _phase_legend(fig, rep: dict) -> None:
    learner, control = rep["arms"][0], rep.get("control")
    handles = [Patch(color=COLORS[j % len(COLORS)], label=diversity_label(d, "legend"))
               for j, d in enumerate(rep["axes"]["diversities"])]
    handles += [Line2D([], [], color="k", marker="o", ms=4,
                       label=f"{_label(rep, learner)}: mean, 95% t-band (clipped to the data "
                             "range)"),
                Line2D([], [], color="k", marker="o", ls="", ms=3, alpha=0.5, label="seeds")]
    if control:
        handles.append(Line2D([], [], color="k", ls="--", marker="s", mfc="white", ms=4,
                              label=f"control ({_label(rep, control)}), mean ± 95%"))
    handles.append(Line2D([], [], color="k", ls=":",
                          label="onset passing its test (band: resampling stability)"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 1.0))


def phase_diagram(rep: dict, path: Path | None = None, *, axes=None):
    ax_ = rep["axes"]
    ints = np.asarray(ax_["intensities"], float)
    span = float(ints[-1] - ints[0]) if len(ints) > 1 else 1.0
    off = 0.012 * span  # control arm drawn beside, and the diversity levels apart
    metrics = _metrics_with_data(rep)
    n = max(len(metrics), 1)
    raw_name = "elite fraction" if ax_["selection"] == "truncation" else "Boltzmann beta"
    cols = 4
    rows = -(-n // cols)
    fig, axes = panels(rows, cols, (4.3 * cols, 3.5 * rows + 0.9), axes)
    rng = np.random.default_rng(0)
    for k, (metric, label) in enumerate(metrics):
        a = axes[k // cols][k % cols]
        _phase_panel(a, rep, metric, ints, off, rng)
        a.set_title(label, fontsize=11)
        a.set_xticks(ints)
        bottom = k // cols == rows - 1 or k + cols >= n
        a.set_xticklabels(_tick_labels(ints, ax_["raw_pressures"], bottom), fontsize=8)
        a.tick_params(axis="y", labelsize=8)
        a.grid(alpha=0.25)
        if bottom:
            a.set_xlabel(f"selection intensity i  (raw: {raw_name})", fontsize=9)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    _phase_legend(fig, rep)
    fig.suptitle(f"Learner against its control by selection intensity: {rep['family']}, "
                 f"{rep['agent']} agent, "
                 f"{ax_['seeds']} seeds, {rep['generations']} meta-generations of "
                 f"{ax_['population']}", y=0.962, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.945))
    return finish(fig, path)


def lifetime_curves(rep: dict, path: Path | None = None, *, axes=None):
    ax_ = rep["axes"]
    ints, divs = ax_["intensities"], ax_["diversities"]
    learner, control = rep["arms"][0], rep.get("control")
    fig, axes = panels(1, len(ints), (3.2 * len(ints) + 0.5, 3.4), axes, sharey=True)
    for li, i in enumerate(ints):
        a = axes[0][li]
        for j, d in enumerate(divs):
            c = COLORS[j % len(COLORS)]
            pts = [p for p in rep["points"] if p["arm"] == learner and p["diversity"] == d
                   and p["intensity"] == i]
            curves = np.array([[np.nan if v is None else v for v in p["curve"]] for p in pts])
            if curves.size == 0:
                continue
            k = np.arange(curves.shape[1])
            for cv in curves:
                a.plot(k, cv, color=c, alpha=0.3, lw=0.8)
            a.plot(k, np.nanmean(curves, 0), color=c, lw=2.0)
            if control:
                cp = [p for p in rep["points"] if p["arm"] == control and p["diversity"] == d
                      and p["intensity"] == i]
                cc = np.array([[np.nan if v is None else v for v in p["curve"]] for p in cp])
                if cc.size:
                    a.plot(k, np.nanmean(cc, 0), color=c, lw=1.2, ls="--")
        a.set_title(f"i = {i:g}", fontsize=10)
        a.set_xlabel("update k", fontsize=9)
        a.grid(alpha=0.25)
    axes[0][0].set_ylabel("held-out return of phi_k", fontsize=9)
    handles = [Patch(color=COLORS[j % len(COLORS)], label=diversity_label(d, "legend"))
               for j, d in enumerate(divs)]
    handles += [Line2D([], [], color="k", lw=2,
                       label=f"{_label(rep, learner)} mean (thin: seeds)")]
    if control:
        handles.append(Line2D([], [], color="k", ls="--",
                              label=f"{_label(rep, control)} (control)"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    return finish(fig, path)


_EVOLUTION_LABELS = {"fitness_history": "training fitness (mean of population)",
                     "step_history": "evolved step size (mean theta)",
                     "sigma_history": "realized search scale sigma"}


def evolution(rep: dict, path: Path | None = None, *, axes=None):
    ax_ = rep["axes"]
    ints, divs = ax_["intensities"], ax_["diversities"]
    learner, control = rep["arms"][0], rep.get("control")
    mine = [p for p in rep["points"] if p["arm"] == learner]
    rows = ["fitness_history"] + [k for k in ("step_history", "sigma_history")
                                  if any(k in p for p in mine)]
    fig, axes = panels(len(rows), len(divs), (5.2 * len(divs), 3.1 * len(rows)), axes,
                       sharex=True)
    cmap = plt.get_cmap("viridis")
    for j, d in enumerate(divs):
        for r, key in enumerate(rows):
            a = axes[r][j]
            for li, i in enumerate(ints):
                c = cmap(li / max(len(ints) - 1, 1))
                pts = [p for p in rep["points"] if p["arm"] == learner
                       and p["diversity"] == d and p["intensity"] == i and key in p]
                h = np.array([[np.nan if v is None else v for v in p[key]] for p in pts])
                if h.size:
                    g = np.arange(1, h.shape[1] + 1)
                    a.plot(g, np.nanmean(h, 0), color=c, lw=1.6, label=f"i = {i:g}")
                if key == "fitness_history" and control:
                    cp = [p for p in rep["points"] if p["arm"] == control
                          and p["diversity"] == d and p["intensity"] == i]
                    ch = np.array([[np.nan if v is None else v for v in p[key]] for p in cp])
                    if ch.size:
                        a.plot(np.arange(1, ch.shape[1] + 1), np.nanmean(ch, 0), color=c,
                               lw=0.9, ls="--")
            a.grid(alpha=0.25)
            if r == 0:
                a.set_title(diversity_label(d, "legend"), fontsize=10)
            if j == 0:
                a.set_ylabel(_EVOLUTION_LABELS[key], fontsize=9)
            if r == len(rows) - 1:
                a.set_xlabel("meta-generation", fontsize=9)
    axes[0][-1].legend(fontsize=8, loc="lower right", title="dashed: control", title_fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def cross_task_matrix(rep: dict, path: Path | None = None, *, axes=None):
    s = rep["strongest"]
    mats = [(f"{s['arm']} (i = {s['intensity']:g}, seed {s['seed']}, "
             f"{diversity_label(s['diversity'], 'legend')})", s["matrix"], s["predicted"])]
    if "control_matrix" in s:
        mats.append((f"control {_label(rep, rep.get('control'))} at the same point",
                     s["control_matrix"],
                     s["control_predicted"]))
    fig, axes = panels(1, len(mats), (5.6 * len(mats), 4.8), axes)
    for a, (title, mat, pred) in zip(axes[0], mats, strict=True):
        m = np.array([[np.nan if v is None else v for v in row] for row in mat])
        im = a.imshow(m, cmap="viridis", aspect="auto")
        n = m.shape[0]
        for r in range(n):
            for c in range(m.shape[1]):
                a.text(c, r, f"{m[r, c]:.1f}", ha="center", va="center", fontsize=7,
                       color="w" if m[r, c] < np.nanmean(m) else "k")
            if pred is not None and pred[r] is not None:
                a.add_patch(Rectangle((pred[r] - 0.5, r - 0.5), 1, 1, fill=False, ec="red",
                                      lw=1.8))
        a.set_xticks(range(m.shape[1]))
        a.set_xticklabels(s["columns"], rotation=40, ha="right", fontsize=8)
        a.set_yticks(range(n))
        a.set_yticklabels([f"lifetime on task {r}" for r in range(n)], fontsize=8)
        a.set_title(title, fontsize=9)
        a.set_xlabel("scored on (red box: best column of the row)", fontsize=8)
        fig.colorbar(im, ax=a, fraction=0.046)
    fig.suptitle(f"Cross-task matrix M[a, b] = return on b after a lifetime on a; objective "
                 f"sensitivity {s['objective_sensitivity']:.2f}, accuracy "
                 f"{s['behavioral_accuracy']:.2f}", fontsize=10)
    fig.tight_layout()
    return finish(fig, path)


def plot_all(rep: dict, out: Path) -> list[Path]:
    """Draw every plot into ``out``; returns the paths."""
    from meta_evo.report.algorithm_plots import plot_algorithm
    from meta_evo.report.regime_plots import plot_regimes
    from meta_evo.report.verdict_plots import plot_verdict

    out = Path(out)
    paths = []
    for fn, name in ((phase_diagram, "phase_diagram.png"), (lifetime_curves, "lifetime_curves.png"),
                     (evolution, "evolution.png"), (cross_task_matrix, "cross_task_matrix.png")):
        fn(rep, out / name)
        paths.append(out / name)
    return paths + plot_regimes(rep, out) + plot_verdict(rep, out) + plot_algorithm(rep, out)
