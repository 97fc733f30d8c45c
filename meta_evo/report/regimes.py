"""The report's ``regimes`` section: memorization, identification or general learning over the
number of training tasks (Kirsch et al. 2022), per arm, intensity and diversity level, as
shares over seeds of the per-seed regimes of :mod:`meta_evo.report.classify`.

- :func:`regimes_section`: the section dict (rows with shares, Wilson intervals, accuracy and
  sensitivity on pool and held-out tasks, the primary metric; the thresholds; sentences);
- :func:`regime_sentence`: which regimes appear, in which order, at which task counts, and
  whether the learner is separated from its control there;
- :func:`regime_markdown`: the section's tables and sentences in ``report.md``.
"""

from __future__ import annotations

import numpy as np

from meta_evo.kernels.regime import REGIME_NAMES
from meta_evo.report.classify import (
    REGIME_KEYS,
    REGIME_LABELS,
    REGIME_SHORT,
    accurate_text,
    classify_regimes,
    has_regime_inputs,
    regime_thresholds,
    share_text,
    shares_over_seeds,
)
from meta_evo.report.common import (
    cell_text,
    consecutive_runs,
    diversity_label,
    join_and,
    py,
    rows_at,
    task_count,
)
from meta_evo.report.result_arrays import grid_levels, select
from meta_evo.report.stats import ci_cell

METHOD = ("kernels.regime.classify_regime per seed on the final generation: a set of "
          "tasks is fit when chance-corrected accuracy > margin or the rows right are "
          "above chance by a one-sided exact binomial test at fit_alpha, and objective "
          "sensitivity > sensitivity_threshold; general learning = held-out fit (the "
          "pool too, up to measurement noise), identification = pool fit only, "
          "memorization = neither with "
          "near-identical rows (row spread <= spread_threshold), otherwise none; shares "
          "over seeds with Wilson intervals at level; confidence = share of the modal "
          "regime")
KIRSCH_ORDER = "memorization -> identification -> general learning"


# --- the section ---------------------------------------------------------------------------------
def regime_cell(meas: dict) -> dict:
    """One row of the regimes section: S seeds of one arm at one (intensity, diversity)."""
    c = classify_regimes(meas)
    r = c["result"]
    size = int(c["pool_size"][0])
    return {
        "pool_size": size, "pool_chance": py(c["chance_pool"][0]),
        "heldout_chance": py(c["chance_heldout"]),
        "pool_accuracy": ci_cell(meas["pool_behavioral_accuracy"]),
        "heldout_accuracy": ci_cell(meas["behavioral_accuracy"]),
        "pool_sensitivity": ci_cell(meas["pool_objective_sensitivity"]),
        "heldout_sensitivity": ci_cell(meas["objective_sensitivity"]),
        "row_spread": ci_cell(c["spread"]),
        **shares_over_seeds(REGIME_NAMES, r.counts, r.shares, r.share_interval, r.modal,
                            r.confidence, r.confidence_interval, r.regime),
        "thresholds": regime_thresholds(r),
    }


def _primary_cell(primary: str, values, idx) -> dict:
    if values is None:
        return {"metric": primary, "mean": None, "ci": [None, None]}
    return {"metric": primary, **ci_cell(np.asarray(values)[idx])}


def _rows(arms: dict, names: list[str], labels: dict, grid, intensities, diversities,
          primary: str, primary_values: dict | None) -> tuple[list[dict], dict | None]:
    """Every (arm, diversity, intensity) row and the kernels' thresholds."""
    rows, thresholds = [], None
    for a in names:
        for _li, i, _di, d, idx in grid_levels(grid, intensities, diversities):
            cell = regime_cell(select(arms[a], idx, REGIME_KEYS + ("pool_size",)))
            thresholds = cell.pop("thresholds")
            row = {"arm": a, "label": labels.get(a, a), "intensity": i, "diversity": d,
                   "task_count": diversity_label(d, "count"), **cell}
            row["primary"] = _primary_cell(primary, (primary_values or {}).get(a), idx)
            rows.append(row)
    return rows, thresholds


def _sentences(rows: list[dict], names: list[str], control: str | None,
               intensities) -> list[dict]:
    """One sentence per arm and intensity (the learner's judged against the control's rows)."""
    def at(arm, i):
        return [r for r in rows if r["arm"] == arm and r["intensity"] == float(i)]

    return [{"arm": a, "intensity": float(i),
             "text": regime_sentence(at(a, i), at(control, i) if a != control else None)}
            for a in names for i in intensities]


def regimes_section(arms: dict, labels: dict, grid, intensities, diversities, *,
                    primary: str, primary_values: dict | None = None,
                    pool_tasks: int | None = None) -> dict | None:
    """The report's ``regimes`` section: per arm, intensity and diversity level.

    Args:
      arms: ``{arm: {key: [G, ...]}}`` final measurement outputs per arm (learner first).
      labels: ``{arm: label}``.
      grid: the sweep grid (``level``, ``div_index``, ``seed`` ``[G]``).
      intensities, diversities: the sweep axes.
      primary: the primary metric's name; ``primary_values`` ``{arm: [G]}`` its values.

    Returns None when no arm has the pool measurement.
    """
    names = [a for a in arms if has_regime_inputs(arms[a])]
    if not names:
        return None
    rows, thresholds = _rows(arms, names, labels, grid, intensities, diversities, primary,
                             primary_values)
    learner = names[0]
    control = names[1] if len(names) > 1 else None
    sentences = _sentences(rows, names, control, intensities)
    top = [s for s in sentences if s["arm"] == learner][-1]["text"]
    order = sorted(range(len(diversities)), key=lambda k: task_count(diversities[k]))
    return {
        "method": METHOD,
        "names": list(REGIME_NAMES), "thresholds": thresholds,
        "arms": names, "learner": learner, "control": control,
        "pool_tasks": pool_tasks, "task_counts": [int(diversities[k]) for k in order],
        "rows": rows, "sentences": sentences, "summary": top,
    }


# --- the sentence --------------------------------------------------------------------------------
def _d_list(ds) -> str:
    return join_and(diversity_label(d, "sentence") for d in ds)


def _separated(row: dict, control_rows: list[dict] | None) -> bool:
    """Whether the learner's share of its modal regime is above the control's share of that
    regime at the same level: the lower end of the learner's Wilson interval above it."""
    ctrl = next((c for c in control_rows or [] if c["diversity"] == row["diversity"]), None)
    if ctrl is None:
        return False
    lo = (row["share_ci"].get(row["modal"]) or [None])[0]
    return lo is not None and lo > (ctrl["shares"].get(row["modal"]) or 0.0)


def _order_verdict(runs: list[tuple]) -> str:
    """What the sequence of modal regimes (by task count) says about Kirsch et al.'s order."""
    seen = [REGIME_NAMES.index(n) for n, _ in runs if n != "none"]
    distinct = sorted(set(seen))
    increasing = all(b > a for a, b in zip(seen, seen[1:], strict=False))
    kirsch = [REGIME_NAMES[k] for k in range(3)]
    missing = [REGIME_LABELS[n] for n in kirsch if REGIME_NAMES.index(n) not in distinct]
    if len(runs) == 1:
        return f"one regime at every task count ({REGIME_LABELS[runs[0][0]]}); no transition"
    if not seen:
        return "no regime is modal at any task count"
    if increasing and not missing:
        return ("all three regimes appear in the order Kirsch et al. (2022) report, "
                f"{KIRSCH_ORDER} as the task count grows")
    if increasing:
        return (f"the order agrees with Kirsch et al. (2022) ({KIRSCH_ORDER}), but "
                f"{' and '.join(missing)} {'does' if len(missing) == 1 else 'do'} not appear "
                "as the modal regime")
    return f"the order is not the one Kirsch et al. (2022) report ({KIRSCH_ORDER})"


def regime_sentence(rows: list[dict], control_rows: list[dict] | None = None) -> str:
    """Which regimes appear (modal over seeds), in which order and at which task counts, for
    the rows of one arm and intensity (any order; sorted here by task count, d = 0 last). A
    claim about the order needs, at every task count with a regime, the learner's Wilson
    interval of its modal regime above the control's share (``control_rows``, the same
    intensity); otherwise the sentence says it is descriptive."""
    if not rows:
        return ""
    rows = sorted(rows, key=lambda r: task_count(r["diversity"]))
    label, i = rows[0]["label"], rows[0]["intensity"]
    runs = consecutive_runs((r["modal"], r) for r in rows)
    parts = []
    for name, rs in runs:
        seeds = ", ".join(f"{r['counts'][name]}/{sum(r['counts'].values())}" for r in rs)
        parts.append(f"{REGIME_LABELS[name]} at {_d_list(r['diversity'] for r in rs)} "
                     f"({seeds} seeds)")
    verdict = _order_verdict(runs)
    shown = [r for r in rows if r["modal"] != "none"]
    loose = [r["diversity"] for r in shown if not _separated(r, control_rows)]
    if control_rows is None:
        verdict = f"descriptive (no control to compare with): {verdict}"
    elif loose:
        verdict = (f"descriptive only, since at {_d_list(loose)} the learner's share of its "
                   f"modal regime is not above the control's (Wilson interval): {verdict}")
    return (f"At i = {i:g}, `{label}` is (modal regime over seeds, by number of training "
            f"tasks) {'; then '.join(parts)}: {verdict}.")


# --- markdown ------------------------------------------------------------------------------------
def _intro(sec: dict) -> list[str]:
    th = sec["thresholds"]
    return ["## Task count: memorization, identification, general learning", "",
            "Each evolved learner is measured on the training-pool tasks it was trained on "
            f"(the first min(d, {sec.get('pool_tasks') or 'n_p'}) of the pool; all of them "
            "for d = 0) and on held-out tasks, and classified per seed (kernels.regime): "
            "general learning = accurate and sensitive on held-out tasks (and so, up to "
            "noise, on the pool), identification = on the pool "
            "only, memorization = on neither with near-identical rows (one stored solution), "
            f"none = anything else. Fit: {accurate_text(th)} and objective sensitivity > "
            f"{th['sensitivity_threshold']:g}; near-identical rows: "
            f"row spread <= {th['spread_threshold']:g}. Accuracy: mean over seeds "
            f"[{th['level']:.0%} t-interval] (chance in parentheses); regime counts over "
            "seeds, the modal regime in bold (its share is the confidence; Wilson "
            "intervals in report.json). d = 0 draws a fresh task every time: infinitely many "
            "training tasks.", ""]


def _table(sec: dict, i: float) -> list[str]:
    """The rows of one intensity: per task count, each arm."""
    lines = [f"### i = {i:g}", "",
             "| training tasks | arm | pool accuracy (chance) | held-out accuracy "
             "(chance) | pool S | held-out S | regimes |", "|---|---|---|---|---|---|---|"]
    for d, r in rows_at(sec, i):
        lines.append(
            f"| {diversity_label(d, 'count')} | {r['label']} | "
            f"{cell_text(r['pool_accuracy'])} ({r['pool_chance']:.2f}) | "
            f"{cell_text(r['heldout_accuracy'])} ({r['heldout_chance']:.2f}) | "
            f"{cell_text(r['pool_sensitivity'])} | {cell_text(r['heldout_sensitivity'])} | "
            f"{share_text(r['counts'], REGIME_SHORT, r['modal'])} |")
    return lines + [""]


def regime_markdown(sec: dict) -> list[str]:
    """The per-level tables (one per intensity) and the sentences."""
    lines = _intro(sec)
    ints = sorted({r["intensity"] for r in sec["rows"]})
    for i in ints:
        lines += _table(sec, i)
    lines += [s["text"] for s in sec["sentences"] if s["arm"] == sec["learner"]]
    lines.append("")
    ctrl = [s["text"] for s in sec["sentences"] if s["arm"] == sec.get("control")]
    if ctrl:
        lines += ["Control: " + " ".join(ctrl), ""]
    lines += ["`task_count.png`: accuracy and sensitivity on pool and held-out tasks against "
              "the number of training tasks (log axis; d = 0 at the right as inf), with chance "
              "lines, and the regime shares per level, learner and control."]
    if len(ints) > 1 and len(sec["task_counts"]) > 1:
        lines += ["`phase_2d.png`: intensity x task count, the modal regime by colour and the "
                  "primary metric by shade and number."]
    return lines + [""]
