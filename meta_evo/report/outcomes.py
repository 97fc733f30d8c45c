"""The per-seed outcomes of the distribution-shift experiment (``kernels.generalization``): per
arm, intensity and diversity level, the shares over seeds of goal generalizes, pseudo-aligned,
capability only and no optimization, in and out of the training region, and which proxy. The
report keeps them as a description under its verdict (``which_objective.per_seed``,
:mod:`meta_evo.report.which_objective`); they are not the verdict.

- :func:`outcomes_section`: the section dict (rows, thresholds, sentences);
- :func:`outcome_sentence`: per diversity level, which outcome dominates at which intensity;
- :func:`outcomes_markdown`: the section's tables and sentences in ``report.md``.
"""

from __future__ import annotations

import numpy as np

from meta_evo.kernels.generalization import OUTCOME_NAMES
from meta_evo.report.classify import (
    OBJECTIVE_KEYS,
    OUTCOME_LABELS,
    OUTCOME_SHORT,
    accurate_text,
    classify_outcomes,
    has_objective_inputs,
    outcome_thresholds,
    proxy_name,
    share_text,
    shares_over_seeds,
)
from meta_evo.report.common import cell_text, consecutive_runs, diversity_label, py, task_count
from meta_evo.report.result_arrays import grid_levels, select
from meta_evo.report.stats import ci_cell

METHOD = ("kernels.generalization.generalization_outcome per seed on the final "
          "generation, in distribution (held-out tasks inside the training region) and "
          "out of distribution (outside it): no optimization = lifetime gain <= "
          "gain_threshold or no task dependence (sensitivity <= sensitivity_threshold "
          "and accuracy not above chance); pseudo-aligned = more than "
          "proxy_threshold of the rows serve "
          "a proxy column best; goal generalizes = chance-corrected task accuracy > "
          "margin or above chance by a one-sided exact binomial test at fit_alpha, and "
          "sensitivity > sensitivity_threshold; otherwise capability only; "
          "shares over seeds with Wilson intervals at level")


# --- the section ---------------------------------------------------------------------------------
def _outcome_part(o, proxy_names: list[str]) -> dict:
    """The shares of one side of the shift (in or out of distribution) and which proxy."""
    out = shares_over_seeds(OUTCOME_NAMES, o.counts, o.shares, o.share_interval, o.modal,
                            o.confidence, o.confidence_interval, o.outcome)
    out["proxy_counts"] = {proxy_name(proxy_names, i): int(c)
                           for i, c in enumerate(o.proxy_counts)}
    out["modal_proxy"] = proxy_name(proxy_names, o.modal_proxy)
    out["proxy_per_seed"] = [proxy_name(proxy_names, p) for p in o.proxy]
    out["accuracy"] = ci_cell(o.task_accuracy)
    out["sensitivity"] = ci_cell(o.sensitivity)
    out["gain"] = ci_cell(o.gain)
    out["proxy_share"] = ci_cell(o.proxy_share)
    return out


def outcome_cell(meas: dict, proxy_names: list[str]) -> dict:
    """One row of the section: S seeds of one arm at one grid level."""
    g = classify_outcomes(meas)
    return {
        "heldout_chance": py(1.0 / np.asarray(meas["matrix"]).shape[1]),
        "in_dist": _outcome_part(g.in_dist, proxy_names),
        "out_dist": _outcome_part(g.out_dist, proxy_names),
        "shifted_share": py(np.mean(g.shifted)),
        "thresholds": outcome_thresholds(g.out_dist),
    }


def outcomes_section(arms: dict, labels: dict, grid, intensities, diversities, *,
                     train_region: str, proxy_names: list[str]) -> dict | None:
    """Per arm, intensity and diversity level, the outcome shares in and out of distribution
    and which proxy. Returns None when no arm has out-of-distribution measurements."""
    names = [a for a in arms if has_objective_inputs(arms[a])]
    if not names:
        return None
    rows, thresholds = [], None
    for a in names:
        for _li, i, _di, d, idx in grid_levels(grid, intensities, diversities):
            cell = outcome_cell(select(arms[a], idx, OBJECTIVE_KEYS), proxy_names)
            thresholds = cell.pop("thresholds")
            rows.append({"arm": a, "label": labels.get(a, a), "intensity": i, "diversity": d,
                         **cell})
    learner = names[0]
    control = names[1] if len(names) > 1 else None
    sentences = [{"diversity": int(d), "text": outcome_sentence(
        [r for r in rows if r["diversity"] == int(d)], learner, control)}
        for d in diversities]
    return {
        "method": METHOD,
        "train_region": train_region, "proxy_names": list(proxy_names),
        "names": list(OUTCOME_NAMES), "thresholds": thresholds,
        "arms": names, "learner": learner, "control": control,
        "rows": rows, "sentences": sentences,
        "summary": " ".join(s["text"] for s in sentences),
    }


# --- the sentence --------------------------------------------------------------------------------
def _fraction(r: dict, name: str, part: str = "out_dist") -> str:
    c = r[part]["counts"]
    return f"{c[name]}/{sum(c.values())}"


def _modal_runs_text(rs: list[dict], part: str) -> str:
    """The modal outcome of ``part`` over the intensities of ``rs``, run by run (and, where
    pseudo-aligned, toward which proxies)."""
    out = []
    for name, group in consecutive_runs((r[part]["modal"], r) for r in rs):
        t = f"{OUTCOME_LABELS[name]} at i = " + ", ".join(f"{r['intensity']:g}" for r in group)
        if name == "pseudo_aligned":
            which = sorted({r[part]["modal_proxy"] for r in group if r[part]["modal_proxy"]})
            t += f" (proxy: {', '.join(which)})" if which else ""
        out.append(t)
    return "; ".join(out)


def outcome_sentence(rows: list[dict], learner: str, control: str | None) -> str:
    """The finding for the rows of one diversity level: out of distribution, per intensity,
    the share of the learner's seeds whose goal generalizes against those that are
    pseudo-aligned (and to which proxy), the modal outcome, and the control's."""
    if not rows:
        return ""
    mine = sorted((r for r in rows if r["arm"] == learner), key=lambda r: r["intensity"])
    label = mine[0]["label"]
    goal = ", ".join(f"i = {r['intensity']:g}: {_fraction(r, 'goal_generalizes')}"
                     for r in mine)
    pseudo = ", ".join(_fraction(r, "pseudo_aligned") for r in mine)
    text = (f"Out of the training region, the share of `{label}` seeds whose goal generalizes "
            f"is {goal}; pseudo-aligned {pseudo} (same intensities). Modal outcome out of "
            f"distribution: {_modal_runs_text(mine, 'out_dist')}; in distribution: "
            f"{_modal_runs_text(mine, 'in_dist')}.")
    if control is not None:
        theirs = sorted((r for r in rows if r["arm"] == control), key=lambda r: r["intensity"])
        if theirs:
            text += (f" The control `{theirs[0]['label']}` out of distribution: "
                     f"{_modal_runs_text(theirs, 'out_dist')}.")
    return text


# --- markdown ------------------------------------------------------------------------------------
def _intro(sec: dict) -> list[str]:
    th = sec["thresholds"]
    proxies = ", ".join(f"`{p}`" for p in sec["proxy_names"]) or "none"
    return ["### Per-seed description (not the verdict)", "",
            "These labels read each seed's final answers alone, so a weak optimizer or a "
            "fixed search path toward the training mean can read pseudo-aligned here; the "
            "verdict above compares the learner with the reference and the control instead.",
            "",
            f"Trained on the region `{sec['train_region']}`; measured on held-out tasks "
            "inside it (in distribution, ID) and outside it (out of distribution, OOD), with "
            f"proxy columns {proxies}. Each seed is classified (kernels.generalization): no "
            f"optimization = lifetime gain <= {th['gain_threshold']:g}, or a result that does "
            f"not depend on the task (sensitivity <= {th['sensitivity_threshold']:g} and "
            "accuracy not above chance); pseudo-aligned = more "
            f"than {th['proxy_threshold']:g} of the rows serve a proxy best; goal generalizes "
            f"= task-column {accurate_text(th)} and sensitivity > "
            f"{th['sensitivity_threshold']:g}; capability only = otherwise. Counts over seeds "
            "(modal in bold); OOD accuracy, sensitivity and proxy share: mean "
            f"[{th['level']:.0%} t-interval]. Inside the region a proxy ties with the task "
            "column, so a pseudo-aligned learner reads \"goal\" ID: only OOD tells them apart.",
            ""]


def _table(sec: dict, d: int) -> list[str]:
    """The rows of one diversity level: per intensity, each arm."""
    lines = ["| i | arm | ID outcomes | OOD outcomes | OOD proxy share | which proxy "
             "(pseudo-aligned seeds) | OOD accuracy (chance) | OOD S | OOD gain |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i in sorted({r["intensity"] for r in sec["rows"]}):
        for a in sec["arms"]:
            r = next((x for x in sec["rows"] if x["arm"] == a and x["intensity"] == i
                      and x["diversity"] == d), None)
            if r is None:
                continue
            o, n = r["out_dist"], r["in_dist"]
            which = ", ".join(f"{k} {c}" for k, c in o["proxy_counts"].items() if c) or "—"
            lines.append(
                f"| {i:g} | {r['label']} | {share_text(n['counts'], OUTCOME_SHORT, n['modal'])}"
                f" | {share_text(o['counts'], OUTCOME_SHORT, o['modal'])} | "
                f"{cell_text(o['proxy_share'])} | {which} | {cell_text(o['accuracy'])} "
                f"({r['heldout_chance']:.2f}) | {cell_text(o['sensitivity'])} | "
                f"{cell_text(o['gain'])} |")
    return lines + [""]


def outcomes_markdown(sec: dict) -> list[str]:
    """The per-seed table (per intensity: learner and control) and the finding."""
    lines = _intro(sec)
    divs = sorted({r["diversity"] for r in sec["rows"]}, key=task_count)
    for d in divs:
        if len(divs) > 1:
            lines += [f"#### {diversity_label(d, 'count')} training tasks", ""]
        lines += _table(sec, d)
        lines += [s["text"] for s in sec["sentences"] if s["diversity"] == d] + [""]
    return lines
