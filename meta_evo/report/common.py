"""What the report's modules share: metric names and labels, test settings, the names of
diversity levels, JSON-ready values and the small text formats of tables and sentences."""

from __future__ import annotations

import math

import numpy as np

# Metrics of the tables and the phase diagram: (key, label). Kernel scalars, and readable
# learner parameters from describe(theta) ("step": the inner ES step size). A learner may
# lack some of them (the gru learner has no step): rows and panels without data are skipped.
KEY_METRICS = (
    ("lifetime_gain", "lifetime gain"),
    ("objective_sensitivity", "objective sensitivity"),
    ("behavioral_accuracy", "behavioral accuracy"),
    ("online_share", "online share"),
    ("update_alignment", "update alignment"),
    ("step", "evolved step size"),
)
PHASE_METRICS = KEY_METRICS + (("return_final", "held-out return after lifetime"),
                               ("op_final_bits", "optimization power (bits)"))
# The metrics whose onsets are tested (besides sweep.primary_metric, always tested): a small
# exploratory family on purpose. Holm over k tests starts at alpha / k, and an exact sign-flip
# test over S seeds cannot go below 2^-S: with 8 seeds and the ~40 tests that "every metric,
# every contrast" makes, no exploratory test could ever pass. Diversity contrasts (varying
# against fixed tasks, same arm) are tested for the primary metric only.
TESTED_METRICS = ("objective_sensitivity", "behavioral_accuracy", "lifetime_gain",
                  "pool_behavioral_accuracy",
                  "update_alignment",  # optimizer-like updates (report.findings)
                  # out of a training region (the which-objective gate and accuracy)
                  "ood_objective_sensitivity", "ood_behavioral_accuracy")
# Tested against the reference arm (the same learner evolved without the training region),
# one of them: the proxy pull where the family's answer lies in task space, else the proxy
# margin (which falls with capability: the pull does not; kernels.pursuit).
REFERENCE_METRICS = ("ood_proxy_pull", "ood_proxy_margin")
ALPHA = 0.05  # the family-wise level: of the primary test, and of the exploratory family
CI_LEVEL = 0.95  # the intervals
NUM_BOOTSTRAP = 1000
DEFAULT_PRIMARY = "objective_sensitivity"


def py(x):
    """JSON-ready: floats (7 significant digits, so small p-values survive; NaN/inf -> None),
    ints, bools, lists."""
    a = np.asarray(x)
    if a.ndim:
        return [py(v) for v in a]
    v = a.item()
    if isinstance(v, float):
        return float(f"{v:.7g}") if math.isfinite(v) else None
    return v


def task_count(d: int) -> float:
    """The number of distinct training tasks of diversity ``d``: ``d``, or infinity for 0."""
    return math.inf if int(d) == 0 else float(d)


# How the report names a diversity level d: (d = 0, d = 1, any other d as a format string).
DIVERSITY_FORMS = {
    "short": ("d=0 (vary)", "d=1 (fixed)", "d={d}"),  # markdown tables and headings
    "legend": ("targets vary (d=0)", "one fixed task (d=1)", "{d} training tasks"),  # figures
    "count": ("inf (d=0)", "1", "{d}"),  # the number of training tasks (task-count axes)
    "sentence": ("d = 0 (a fresh task each draw)", "d = 1", "d = {d}"),  # in running text
}


def diversity_label(d: int, form: str = "short") -> str:
    """The name of diversity level ``d`` in one of :data:`DIVERSITY_FORMS`."""
    zero, one, other = DIVERSITY_FORMS[form]
    d = int(d)
    return zero if d == 0 else one if d == 1 else other.format(d=d)


def join_and(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def consecutive_runs(seq) -> list[tuple]:
    """Consecutive runs of equal keys of ``(key, item)`` pairs: ``[(key, [items])]``."""
    out = []
    for key, item in seq:
        if out and out[-1][0] == key:
            out[-1][1].append(item)
        else:
            out.append((key, [item]))
    return out


def cell_text(cell: dict | None, digits: int = 2, *, signed: bool = False,
              collapse: bool = True) -> str:
    """``m [lo, hi]`` of a mean-and-interval cell (``+m [+lo, +hi]`` when ``signed``); the
    mean alone where a bound is missing or, with ``collapse``, where the bounds coincide; an
    em dash when the cell is empty."""
    if not cell or cell.get("mean") is None:
        return "—"
    fmt = f"{'+' if signed else ''}.{digits}f"
    m, (lo, hi) = cell["mean"], cell["ci"]
    if lo is None or hi is None or (collapse and lo == hi):
        return f"{m:{fmt}}"
    return f"{m:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def p_text(x, se=None) -> str:
    """A p-value in two significant digits (``± se`` when a Monte Carlo error is given)."""
    if x is None:
        return "—"
    return f"{x:.2g}" + (f" ± {se:.1g}" if se else "")


def _fmt_i(x) -> str:
    return "none" if x is None else f"{x:.2f}"


def interval_text(o: dict) -> str:
    """The onset's resampling stability (where the onset falls when the whole procedure reruns
    on resampled seeds; "none": no onset found) and P(onset) in words."""
    lo, hi = o["onset_ci"]
    if lo == "none":
        span = "none"
    elif hi == "none":
        span = f"{_fmt_i(lo)} to none"
    elif lo == hi:
        span = _fmt_i(lo)
    else:
        span = f"{_fmt_i(lo)} to {_fmt_i(hi)}"
    return f"{span}, P(onset) {o['onset_prob']:.2f}"


def onset_text(o: dict) -> str:
    """One line: the onset, "none in range", or "too few seeds to test at alpha"."""
    if not o["testable"]:
        return (f"too few seeds to test at alpha {o['alpha']:.2g} (smallest p with "
                f"{o['seeds']} seeds: {o['min_p']:.2g})")
    if not o["found"]:
        return "none in range"
    return f"onset at i = {o['onset']:.2f} (p {o['p']:.2g}; stability {interval_text(o)})"


def rows_at(sec: dict, i: float):
    """``(task count, row)`` of a per-level section at intensity ``i``: per task count, each
    arm in order; a missing row is skipped."""
    for d in sec["task_counts"]:
        for a in sec["arms"]:
            r = next((x for x in sec["rows"] if x["arm"] == a and x["intensity"] == i
                      and x["diversity"] == d), None)
            if r is not None:
                yield d, r
