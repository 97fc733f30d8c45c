"""The report's two "which objective" sections, from plain arrays: regimes over the task count
(Kirsch et al. 2022; ``kernels.regime``) and the outcome of the distribution-shift experiment
(``kernels.generalization``), with their markdown tables and the sentences that state the
finding. ``meta_evo.analysis`` uses the same functions on the checkpoints of a single run.

- :func:`classify_regimes` / :func:`classify_outcomes`: the kernels on the measurement
  outputs of S evolved learners (``[S, ...]`` arrays keyed as ``meta_evo.measure`` names them);
- :func:`regimes_section` / :func:`objective_section`: per arm, intensity and diversity level of
  a sweep, the shares over seeds with Wilson intervals and the thresholds the kernels used;
- :func:`regime_sentence` / :func:`objective_sentence`: the finding in one sentence, computed
  from the rows (which regimes appear, in which order, at which task counts; which outcome
  dominates out of distribution at which intensity);
- :func:`regime_markdown` / :func:`objective_markdown`: the report's tables;
  :func:`checkpoint_markdown`: the same tables for the checkpoints of one run.

A single run has no seeds: there each checkpoint is classified on its own (the kernels'
per-seed output with S = 1 per checkpoint); shares over seeds exist only in a sweep.
"""

from __future__ import annotations

import math

import numpy as np

from meta_evo import kernels
from meta_evo.kernels import regime as _regime
from meta_evo.kernels.generalization import OUTCOME_NAMES
from meta_evo.kernels.regime import REGIME_NAMES
from meta_evo.report.common import py
from meta_evo.report.stats import mean_ci

REGIME_LABELS = {"memorization": "memorization", "identification": "identification",
                 "general_learning": "general learning", "none": "no regime"}
REGIME_SHORT = {"memorization": "mem", "identification": "ident",
                "general_learning": "general", "none": "none"}
OUTCOME_LABELS = {"goal_generalizes": "goal generalizes", "pseudo_aligned": "pseudo-aligned",
                  "capability_only": "capability only", "no_optimization": "no optimization"}
OUTCOME_SHORT = {"goal_generalizes": "goal", "pseudo_aligned": "pseudo",
                 "capability_only": "capability", "no_optimization": "none"}
REGIME_KEYS = ("pool_behavioral_accuracy", "pool_objective_sensitivity", "behavioral_accuracy",
               "objective_sensitivity", "pool_matrix", "matrix")
OBJECTIVE_KEYS = ("lifetime_gain", "matrix", "ood_lifetime_gain", "ood_matrix")


# --- task counts --------------------------------------------------------------------------------
def task_count(d: int) -> float:
    """The number of distinct training tasks of diversity ``d``: ``d``, or infinity for 0."""
    return math.inf if int(d) == 0 else float(d)


def task_count_text(d: int) -> str:
    return "inf (d=0)" if int(d) == 0 else str(int(d))


def _d_list(ds) -> str:
    ds = [int(d) for d in ds]
    txt = [f"d = {d}" if d else "d = 0 (a fresh task each draw)" for d in ds]
    return txt[0] if len(txt) == 1 else ", ".join(txt[:-1]) + " and " + txt[-1]


def _ci(values) -> dict:
    m, lo, hi = mean_ci(values)
    return {"mean": py(m), "ci": [py(lo), py(hi)]}


def _np(x) -> np.ndarray:
    return np.asarray(x)


# --- the kernels on arrays ----------------------------------------------------------------------
def has_regime_inputs(meas: dict) -> bool:
    return all(k in meas for k in REGIME_KEYS)


def has_objective_inputs(meas: dict) -> bool:
    return all(k in meas for k in OBJECTIVE_KEYS)


def classify_regimes(meas: dict) -> dict:
    """``kernels.regime.classify_regime`` on S measured learners.

    Args:
      meas: ``[S, ...]`` arrays: ``pool_behavioral_accuracy``, ``pool_objective_sensitivity``
        (over the block of pool tasks each was trained on), ``behavioral_accuracy``,
        ``objective_sensitivity`` (held-out tasks), ``pool_matrix [S, n_p, n_p]``, ``matrix
        [S, n, m]`` and ``pool_size [S]`` (the block; ``n_p`` when absent).

    Returns:
      ``{"result": RegimeResult as numpy, "pool_size": [S], "chance_pool": [S],
      "chance_heldout": float, "spread": [S]}``. The pool chance is ``1 / pool_size`` (1 when
      the learner saw one task: one task can only be memorized); the spread is the larger
      ``row_spread`` of the trained pool block and the held-out task columns.
    """
    pm = _np(meas["pool_matrix"]).astype(np.float32)
    mat = _np(meas["matrix"]).astype(np.float32)
    s, n_p = pm.shape[0], pm.shape[1]
    size = _np(meas.get("pool_size", np.full(s, n_p))).astype(np.int64).reshape(s)
    size = np.clip(size, 1, n_p)
    spread_pool = np.zeros(s, np.float32)
    for b in np.unique(size):
        idx = np.nonzero(size == b)[0]
        spread_pool[idx] = np.asarray(kernels.row_spread(pm[idx][:, :b, :b]))
    spread = np.maximum(spread_pool, np.asarray(kernels.row_spread(mat)))
    chance_pool = np.where(size >= 2, 1.0 / size, 1.0).astype(np.float32)
    chance_held = 1.0 / mat.shape[1]
    r = kernels.classify_regime(
        _np(meas["pool_behavioral_accuracy"]).astype(np.float32),
        _np(meas["pool_objective_sensitivity"]).astype(np.float32),
        _np(meas["behavioral_accuracy"]).astype(np.float32),
        _np(meas["objective_sensitivity"]).astype(np.float32),
        spread, chance_pool, np.float32(chance_held))
    r = type(r)(*(np.asarray(x) for x in r))
    return {"result": r, "pool_size": size, "chance_pool": chance_pool,
            "chance_heldout": chance_held, "spread": spread}


def classify_outcomes(meas: dict):
    """``kernels.generalization.generalization_outcome`` on S measured learners: in
    distribution from ``lifetime_gain`` and ``matrix`` (held-out tasks inside the training
    region), out of distribution from ``ood_lifetime_gain`` and ``ood_matrix``. Returns the
    GeneralizationResult as numpy."""
    r = kernels.generalization_outcome(
        _np(meas["lifetime_gain"]).astype(np.float32), _np(meas["matrix"]).astype(np.float32),
        _np(meas["ood_lifetime_gain"]).astype(np.float32),
        _np(meas["ood_matrix"]).astype(np.float32))
    as_np = lambda o: type(o)(*(np.asarray(x) for x in o))  # noqa: E731
    return type(r)(as_np(r.in_dist), as_np(r.out_dist), np.asarray(r.shifted))


def _shares(names, counts, shares, intervals, modal, confidence, conf_int, codes) -> dict:
    return {
        "counts": {n: int(c) for n, c in zip(names, counts, strict=True)},
        "shares": {n: py(v) for n, v in zip(names, shares, strict=True)},
        "share_ci": {n: py(v) for n, v in zip(names, intervals, strict=True)},
        "modal": names[int(modal)], "confidence": py(confidence),
        "confidence_ci": py(conf_int), "per_seed": [names[int(c)] for c in codes],
    }


def _fit_alpha(r):
    """The level of the kernels' binomial above-chance test (their default where the result
    does not carry it)."""
    return py(getattr(r, "fit_alpha", getattr(_regime, "DEFAULT_FIT_ALPHA", None)))


def regime_thresholds(r) -> dict:
    return {"margin": py(r.margin), "fit_alpha": _fit_alpha(r),
            "sensitivity_threshold": py(r.sensitivity_threshold),
            "spread_threshold": py(r.spread_threshold), "level": py(r.level)}


def outcome_thresholds(o) -> dict:
    return {"margin": py(o.margin), "fit_alpha": _fit_alpha(o),
            "sensitivity_threshold": py(o.sensitivity_threshold),
            "gain_threshold": py(o.gain_threshold), "proxy_threshold": py(o.proxy_threshold),
            "level": py(o.level)}


def accurate_text(th: dict) -> str:
    """What "accurate" means under these thresholds, in words."""
    txt = f"accuracy high: chance-corrected accuracy > {th['margin']:g}"
    if th.get("fit_alpha") is not None:
        txt += (f", or above chance by a one-sided exact binomial test over the rows at "
                f"{th['fit_alpha']:g}")
    return txt


def regime_cell(meas: dict) -> dict:
    """One row of the regimes section: S seeds of one arm at one (intensity, diversity)."""
    c = classify_regimes(meas)
    r = c["result"]
    size = int(c["pool_size"][0])
    return {
        "pool_size": size, "pool_chance": py(c["chance_pool"][0]),
        "heldout_chance": py(c["chance_heldout"]),
        "pool_accuracy": _ci(meas["pool_behavioral_accuracy"]),
        "heldout_accuracy": _ci(meas["behavioral_accuracy"]),
        "pool_sensitivity": _ci(meas["pool_objective_sensitivity"]),
        "heldout_sensitivity": _ci(meas["objective_sensitivity"]),
        "row_spread": _ci(c["spread"]),
        **_shares(REGIME_NAMES, r.counts, r.shares, r.share_interval, r.modal, r.confidence,
                  r.confidence_interval, r.regime),
        "thresholds": regime_thresholds(r),
    }


def _outcome_part(o, proxy_names: list[str]) -> dict:
    def pname(i):
        i = int(i)
        if i < 0:
            return None
        return proxy_names[i] if i < len(proxy_names) else f"proxy {i}"
    out = _shares(OUTCOME_NAMES, o.counts, o.shares, o.share_interval, o.modal, o.confidence,
                  o.confidence_interval, o.outcome)
    out["proxy_counts"] = {pname(i): int(c) for i, c in enumerate(o.proxy_counts)}
    out["modal_proxy"] = pname(o.modal_proxy)
    out["proxy_per_seed"] = [pname(p) for p in o.proxy]
    out["accuracy"] = _ci(o.task_accuracy)
    out["sensitivity"] = _ci(o.sensitivity)
    out["gain"] = _ci(o.gain)
    out["proxy_share"] = _ci(o.proxy_share)
    return out


def objective_cell(meas: dict, proxy_names: list[str]) -> dict:
    """One row of the which-objective section: S seeds of one arm at one grid level."""
    g = classify_outcomes(meas)
    return {
        "heldout_chance": py(1.0 / _np(meas["matrix"]).shape[1]),
        "in_dist": _outcome_part(g.in_dist, proxy_names),
        "out_dist": _outcome_part(g.out_dist, proxy_names),
        "shifted_share": py(np.mean(g.shifted)),
        "thresholds": outcome_thresholds(g.out_dist),
    }


# --- sweep sections -----------------------------------------------------------------------------
def _select(meas: dict, idx: np.ndarray, keys) -> dict:
    return {k: _np(meas[k])[idx] for k in keys if k in meas}


def _levels(grid, intensities, diversities):
    """(li, intensity, di, diversity, grid indices ordered by seed) of every level."""
    for di, d in enumerate(diversities):
        for li, i in enumerate(intensities):
            idx = np.nonzero((grid.level == li) & (grid.div_index == di))[0]
            idx = idx[np.argsort(grid.seed[idx])]
            yield li, float(i), di, int(d), idx


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
    rows, thresholds = [], None
    for a in names:
        meas = arms[a]
        for _li, i, _di, d, idx in _levels(grid, intensities, diversities):
            cell = regime_cell(_select(meas, idx, REGIME_KEYS + ("pool_size",)))
            thresholds = cell.pop("thresholds")
            row = {"arm": a, "label": labels.get(a, a), "intensity": i, "diversity": d,
                   "task_count": task_count_text(d), **cell}
            pv = (primary_values or {}).get(a)
            row["primary"] = {"metric": primary,
                              **(_ci(_np(pv)[idx]) if pv is not None else {"mean": None,
                                                                            "ci": [None, None]})}
            rows.append(row)
    learner = names[0]
    control = names[1] if len(names) > 1 else None
    sentences = [{"arm": a, "intensity": float(i),
                  "text": regime_sentence(
                      [r for r in rows if r["arm"] == a and r["intensity"] == float(i)],
                      [r for r in rows if r["arm"] == control and r["intensity"] == float(i)]
                      if a != control else None)}
                 for a in names for i in intensities]
    top = [s for s in sentences if s["arm"] == learner][-1]["text"]
    order = sorted(range(len(diversities)), key=lambda k: task_count(diversities[k]))
    return {
        "method": "kernels.regime.classify_regime per seed on the final generation: a set of "
                  "tasks is fit when chance-corrected accuracy > margin or the rows right are "
                  "above chance by a one-sided exact binomial test at fit_alpha, and objective "
                  "sensitivity > sensitivity_threshold; general learning = held-out fit (the "
                  "pool too, up to measurement noise), identification = pool fit only, "
                  "memorization = neither with "
                  "near-identical rows (row spread <= spread_threshold), otherwise none; shares "
                  "over seeds with Wilson intervals at level; confidence = share of the modal "
                  "regime",
        "names": list(REGIME_NAMES), "thresholds": thresholds,
        "arms": names, "learner": learner, "control": names[1] if len(names) > 1 else None,
        "pool_tasks": pool_tasks, "task_counts": [int(diversities[k]) for k in order],
        "rows": rows, "sentences": sentences, "summary": top,
    }


def objective_section(arms: dict, labels: dict, grid, intensities, diversities, *,
                      train_region: str, proxy_names: list[str]) -> dict | None:
    """The report's ``which_objective`` section: per arm, intensity and diversity level, the
    outcome shares in and out of distribution (``kernels.generalization``) and which proxy.
    Returns None when no arm has out-of-distribution measurements."""
    names = [a for a in arms if has_objective_inputs(arms[a])]
    if not names:
        return None
    rows, thresholds = [], None
    for a in names:
        meas = arms[a]
        for _li, i, _di, d, idx in _levels(grid, intensities, diversities):
            cell = objective_cell(_select(meas, idx, OBJECTIVE_KEYS), proxy_names)
            thresholds = cell.pop("thresholds")
            rows.append({"arm": a, "label": labels.get(a, a), "intensity": i, "diversity": d,
                         **cell})
    learner = names[0]
    control = names[1] if len(names) > 1 else None
    sentences = [{"diversity": int(d), "text": objective_sentence(
        [r for r in rows if r["diversity"] == int(d)], learner, control)}
        for d in diversities]
    return {
        "method": "kernels.generalization.generalization_outcome per seed on the final "
                  "generation, in distribution (held-out tasks inside the training region) and "
                  "out of distribution (outside it): no optimization = lifetime gain <= "
                  "gain_threshold or no task dependence (sensitivity <= sensitivity_threshold "
                  "and accuracy not above chance); pseudo-aligned = more than "
                  "proxy_threshold of the rows serve "
                  "a proxy column best; goal generalizes = chance-corrected task accuracy > "
                  "margin or above chance by a one-sided exact binomial test at fit_alpha, and "
                  "sensitivity > sensitivity_threshold; otherwise capability only; "
                  "shares over seeds with Wilson intervals at level",
        "train_region": train_region, "proxy_names": list(proxy_names),
        "names": list(OUTCOME_NAMES), "thresholds": thresholds,
        "arms": names, "learner": learner, "control": control,
        "rows": rows, "sentences": sentences,
        "summary": " ".join(s["text"] for s in sentences),
    }


# --- sentences ----------------------------------------------------------------------------------
def _runs(seq):
    """Consecutive runs of equal keys: [(key, [items])]."""
    out = []
    for key, item in seq:
        if out and out[-1][0] == key:
            out[-1][1].append(item)
        else:
            out.append((key, [item]))
    return out


def _separated(row: dict, control_rows: list[dict] | None) -> bool:
    """Whether the learner's share of its modal regime is above the control's share of that
    regime at the same level: the lower end of the learner's Wilson interval above it."""
    ctrl = next((c for c in control_rows or [] if c["diversity"] == row["diversity"]), None)
    if ctrl is None:
        return False
    lo = (row["share_ci"].get(row["modal"]) or [None])[0]
    return lo is not None and lo > (ctrl["shares"].get(row["modal"]) or 0.0)


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
    runs = _runs((r["modal"], r) for r in rows)
    parts = []
    for name, rs in runs:
        seeds = ", ".join(f"{r['counts'][name]}/{sum(r['counts'].values())}" for r in rs)
        parts.append(f"{REGIME_LABELS[name]} at {_d_list(r['diversity'] for r in rs)} "
                     f"({seeds} seeds)")
    seen = [REGIME_NAMES.index(n) for n, _ in runs if n != "none"]
    distinct = sorted(set(seen))
    increasing = all(b > a for a, b in zip(seen, seen[1:], strict=False))
    kirsch = [REGIME_NAMES[k] for k in range(3)]
    missing = [REGIME_LABELS[n] for n in kirsch if REGIME_NAMES.index(n) not in distinct]
    if len(runs) == 1:
        verdict = (f"one regime at every task count ({REGIME_LABELS[runs[0][0]]}); no "
                   "transition")
    elif not seen:
        verdict = "no regime is modal at any task count"
    elif increasing and not missing:
        verdict = ("all three regimes appear in the order Kirsch et al. (2022) report, "
                   "memorization -> identification -> general learning as the task count grows")
    elif increasing:
        verdict = (f"the order agrees with Kirsch et al. (2022) (memorization -> identification "
                   f"-> general learning), but {' and '.join(missing)} "
                   f"{'does' if len(missing) == 1 else 'do'} not appear as the modal regime")
    else:
        verdict = ("the order is not the one Kirsch et al. (2022) report (memorization -> "
                   "identification -> general learning)")
    shown = [r for r in rows if r["modal"] != "none"]
    loose = [r["diversity"] for r in shown if not _separated(r, control_rows)]
    if control_rows is None:
        verdict = f"descriptive (no control to compare with): {verdict}"
    elif loose:
        verdict = (f"descriptive only, since at {_d_list(loose)} the learner's share of its "
                   f"modal regime is not above the control's (Wilson interval): {verdict}")
    return (f"At i = {i:g}, `{label}` is (modal regime over seeds, by number of training "
            f"tasks) {'; then '.join(parts)}: {verdict}.")


def objective_sentence(rows: list[dict], learner: str, control: str | None) -> str:
    """The which-objective finding for the rows of one diversity level: out of distribution,
    per intensity, the share of the learner's seeds whose goal generalizes against those that
    are pseudo-aligned (and to which proxy), the modal outcome, and the control's."""
    if not rows:
        return ""
    mine = sorted((r for r in rows if r["arm"] == learner), key=lambda r: r["intensity"])
    label = mine[0]["label"]

    def frac(r, name, part="out_dist"):
        c = r[part]["counts"]
        return f"{c[name]}/{sum(c.values())}"

    def at(rs):
        return "i = " + ", ".join(f"{r['intensity']:g}" for r in rs)

    def runs_text(rs, part):
        out = []
        for name, group in _runs((r[part]["modal"], r) for r in rs):
            t = f"{OUTCOME_LABELS[name]} at {at(group)}"
            if name == "pseudo_aligned":
                which = sorted({r[part]["modal_proxy"] for r in group if r[part]["modal_proxy"]})
                t += f" (proxy: {', '.join(which)})" if which else ""
            out.append(t)
        return "; ".join(out)

    goal = ", ".join(f"i = {r['intensity']:g}: {frac(r, 'goal_generalizes')}" for r in mine)
    pseudo = ", ".join(frac(r, "pseudo_aligned") for r in mine)
    text = (f"Out of the training region, the share of `{label}` seeds whose goal generalizes "
            f"is {goal}; pseudo-aligned {pseudo} (same intensities). Modal outcome out of "
            f"distribution: {runs_text(mine, 'out_dist')}; in distribution: "
            f"{runs_text(mine, 'in_dist')}.")
    if control is not None:
        theirs = sorted((r for r in rows if r["arm"] == control), key=lambda r: r["intensity"])
        if theirs:
            text += (f" The control `{theirs[0]['label']}` out of distribution: "
                     f"{runs_text(theirs, 'out_dist')}.")
    return text


# --- markdown -----------------------------------------------------------------------------------
def _f(cell: dict | None, digits: int = 2) -> str:
    if not cell or cell.get("mean") is None:
        return "—"
    m, (lo, hi) = cell["mean"], cell["ci"]
    if lo is None or hi is None or lo == hi:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def share_text(counts: dict, short: dict, modal: str | None = None) -> str:
    """``mem 2/8, ident 6/8`` (non-zero classes; the modal one in bold)."""
    n = sum(counts.values())
    parts = []
    for k, c in counts.items():
        if c:
            t = f"{short[k]} {c}/{n}"
            parts.append(f"**{t}**" if k == modal else t)
    return ", ".join(parts) or "—"


def regime_markdown(sec: dict) -> list[str]:
    """The per-level tables (one per intensity) and the sentences."""
    th = sec["thresholds"]
    lines = ["## Task count: memorization, identification, general learning", "",
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
    ints = sorted({r["intensity"] for r in sec["rows"]})
    order = sec["task_counts"]
    for i in ints:
        lines += [f"### i = {i:g}", "",
                  "| training tasks | arm | pool accuracy (chance) | held-out accuracy "
                  "(chance) | pool S | held-out S | regimes |", "|---|---|---|---|---|---|---|"]
        for d in order:
            for a in sec["arms"]:
                r = next((x for x in sec["rows"] if x["arm"] == a and x["intensity"] == i
                          and x["diversity"] == d), None)
                if r is None:
                    continue
                lines.append(
                    f"| {task_count_text(d)} | {r['label']} | {_f(r['pool_accuracy'])} "
                    f"({r['pool_chance']:.2f}) | {_f(r['heldout_accuracy'])} "
                    f"({r['heldout_chance']:.2f}) | {_f(r['pool_sensitivity'])} | "
                    f"{_f(r['heldout_sensitivity'])} | "
                    f"{share_text(r['counts'], REGIME_SHORT, r['modal'])} |")
        lines.append("")
    lines += [s["text"] for s in sec["sentences"] if s["arm"] == sec["learner"]]
    lines.append("")
    ctrl = [s["text"] for s in sec["sentences"] if s["arm"] == sec.get("control")]
    if ctrl:
        lines += ["Control: " + " ".join(ctrl), ""]
    lines += ["`task_count.png`: accuracy and sensitivity on pool and held-out tasks against "
              "the number of training tasks (log axis; d = 0 at the right as inf), with chance "
              "lines, and the regime shares per level, learner and control."]
    if len(ints) > 1 and len(order) > 1:
        lines += ["`phase_2d.png`: intensity x task count, the modal regime by colour and the "
                  "primary metric by shade and number."]
    return lines + [""]


def objective_markdown(sec: dict) -> list[str]:
    """The "Which objective" table (per intensity: learner and control) and the finding."""
    th = sec["thresholds"]
    proxies = ", ".join(f"`{p}`" for p in sec["proxy_names"]) or "none"
    lines = ["### Per-seed description (not the verdict)", "",
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
    divs = sorted({r["diversity"] for r in sec["rows"]}, key=task_count)
    for d in divs:
        if len(divs) > 1:
            lines += [f"#### {task_count_text(d)} training tasks", ""]
        lines += ["| i | arm | ID outcomes | OOD outcomes | OOD proxy share | which proxy "
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
                    f"{_f(o['proxy_share'])} | {which} | {_f(o['accuracy'])} "
                    f"({r['heldout_chance']:.2f}) | {_f(o['sensitivity'])} | {_f(o['gain'])} |")
        lines.append("")
        lines += [s["text"] for s in sec["sentences"] if s["diversity"] == d] + [""]
    return lines


# --- a single run's checkpoints ----------------------------------------------------------------
def checkpoint_regimes(gens: list[int], meas: dict) -> list[dict]:
    """Per checkpoint (the kernels' per-seed output, S = 1 per checkpoint): the regime and
    what decided it. ``meas``: ``[N, ...]`` arrays, one row per checkpoint."""
    c = classify_regimes(meas)
    r = c["result"]
    th = regime_thresholds(r)
    return [{"generation": int(g), "regime": REGIME_NAMES[int(r.regime[k])],
             "pool_size": int(c["pool_size"][k]), "pool_chance": py(c["chance_pool"][k]),
             "heldout_chance": py(c["chance_heldout"]),
             "pool_accuracy": py(meas["pool_behavioral_accuracy"][k]),
             "heldout_accuracy": py(meas["behavioral_accuracy"][k]),
             "pool_sensitivity": py(meas["pool_objective_sensitivity"][k]),
             "heldout_sensitivity": py(meas["objective_sensitivity"][k]),
             "pool_skill": py(r.pool_skill[k]), "heldout_skill": py(r.heldout_skill[k]),
             "row_spread": py(c["spread"][k]), "thresholds": th}
            for k, g in enumerate(gens)]


def checkpoint_outcomes(gens: list[int], meas: dict, proxy_names: list[str]) -> list[dict]:
    """Per checkpoint (S = 1 per checkpoint): the outcome in and out of distribution."""
    g = classify_outcomes(meas)
    th = outcome_thresholds(g.out_dist)

    def part(o, k):
        p = int(o.proxy[k])
        return {"outcome": OUTCOME_NAMES[int(o.outcome[k])],
                "proxy": (proxy_names[p] if 0 <= p < len(proxy_names) else
                          (None if p < 0 else f"proxy {p}")),
                "proxy_share": py(o.proxy_share[k]), "accuracy": py(o.task_accuracy[k]),
                "sensitivity": py(o.sensitivity[k]), "gain": py(o.gain[k])}
    return [{"generation": int(gen), "in_dist": part(g.in_dist, k),
             "out_dist": part(g.out_dist, k), "thresholds": th} for k, gen in enumerate(gens)]


def _v(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def checkpoint_markdown(regimes: list[dict] | None, outcomes: list[dict] | None,
                        title: str = "") -> str:
    """The regime and which-objective tables for the checkpoints of one run."""
    lines = [f"# Checkpoint analysis{': ' + title if title else ''}", "",
             "One run is one grid point: there are no seeds to take shares over, so each "
             "checkpoint is classified on its own (the kernels' per-seed output, S = 1).", ""]
    if outcomes:
        th = outcomes[0]["thresholds"]
        lines += ["## Which objective", "",
                  f"Goal generalizes = task-column {accurate_text(th)} and sensitivity > "
                  f"{th['sensitivity_threshold']:g}; no optimization = gain <= "
                  f"{th['gain_threshold']:g}; pseudo-aligned = proxy share > "
                  f"{th['proxy_threshold']:g}.", "",
                  "| generation | ID outcome | OOD outcome | OOD proxy share | which proxy | OOD "
                  "accuracy | OOD S | OOD gain | ID accuracy | ID S |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in outcomes:
            i, o = r["in_dist"], r["out_dist"]
            lines.append(f"| {r['generation']} | {OUTCOME_LABELS[i['outcome']]} | "
                         f"{OUTCOME_LABELS[o['outcome']]} | {_v(o['proxy_share'])} | "
                         f"{o['proxy'] or '—'} | {_v(o['accuracy'])} | {_v(o['sensitivity'])} | "
                         f"{_v(o['gain'], 3)} | {_v(i['accuracy'])} | {_v(i['sensitivity'])} |")
        lines.append("")
    if regimes:
        th = regimes[0]["thresholds"]
        lines += ["## Regime", "",
                  f"Fit: {accurate_text(th)} and sensitivity > "
                  f"{th['sensitivity_threshold']:g}; near-identical rows: row spread <= "
                  f"{th['spread_threshold']:g}; pool block of {regimes[0]['pool_size']} "
                  "training tasks.", "",
                  "| generation | pool accuracy (chance) | held-out accuracy (chance) | pool S | "
                  "held-out S | row spread | regime |", "|---|---|---|---|---|---|---|"]
        for r in regimes:
            lines.append(f"| {r['generation']} | {_v(r['pool_accuracy'])} "
                         f"({_v(r['pool_chance'])}) | {_v(r['heldout_accuracy'])} "
                         f"({_v(r['heldout_chance'])}) | {_v(r['pool_sensitivity'])} | "
                         f"{_v(r['heldout_sensitivity'])} | {_v(r['row_spread'])} | "
                         f"{REGIME_LABELS[r['regime']]} |")
        lines.append("")
    return "\n".join(lines)
