"""The onset tests of a sweep: which paired comparisons the report tests, run at once through
:func:`meta_evo.report.stats.onset_tests`, and each test as a JSON-ready item.

Three kinds of test, all of the learner arm (the first arm), per diversity level:

- ``control``: each tested metric (the primary metric and ``common.TESTED_METRICS``) against
  the control arm (the second arm, paired by level and seed) or, without one, against the
  lowest pressure (a learner parameter: against its meta-init value); not run where the two
  arms are the same by construction (:func:`identical_arms`);
- ``reference``: the proxy pull (else the margin) against the reference arm, where there is one;
- ``contrast``: the primary metric of each diversity level against the fixed task (d=1), same
  arm, seed and level.

The primary metric against the control is the primary family; every other test one
exploratory family (module docstring of :mod:`meta_evo.report.stats`).
"""

from __future__ import annotations

import math

import jax
import numpy as np

from meta_evo.measure import SCALARS
from meta_evo.report.common import (
    ALPHA,
    CI_LEVEL,
    NUM_BOOTSTRAP,
    REFERENCE_METRICS,
    TESTED_METRICS,
    interval_text,
    onset_text,
    py,
)
from meta_evo.report.result_arrays import (
    arm_label,
    by_level,
    learner_and_control,
    primary_metric,
    scalars,
)
from meta_evo.report.stats import mean_ci, onset_tests, paired


def identical_arms(res, d: int) -> bool:
    """Whether the learner and control arms are the same by construction at diversity ``d``:
    with one fixed task a ``shuffled`` control is told the returns of that same task, so both
    arms evolve alike and a test between them is not a finding."""
    learner, control = learner_and_control(res)
    if control is None or d != 1:
        return False
    a, c = res.arms[learner], res.arms[control]
    return c.reward == "shuffled" and a.learner == c.learner


def not_tested(res) -> list[dict]:
    """The diversity levels whose learner-versus-control tests are not run, and why."""
    return [{"diversity": int(d), "reason": "with one fixed task the shuffled control is told "
             "the returns of that task, so both arms are the same by construction"}
            for d in res.cfg.sweep.diversities if identical_arms(res, int(d))]


def level_differences(intensities, diff: np.ndarray, p_level) -> list[dict]:
    """Per level: the mean paired difference (learner minus control) over seeds with its 95 %
    t-interval, and the level's one-sided sign-flip p (before the sequence and Holm)."""
    out = []
    for li, i in enumerate(intensities):
        mu, lo, hi = mean_ci(diff[li], CI_LEVEL)
        out.append({"intensity": float(i), "difference": py(mu), "ci": [py(lo), py(hi)],
                    "p": py(p_level[li])})
    return out


# --- which tests ---------------------------------------------------------------------------------
# A job is ((arm, metric, diversity, against, non-finite replaced, kind), values, control),
# values and control [L, S] paired by level and seed.
def _control_jobs(res, main: dict, tested: list[str]):
    """Each tested metric of the learner against the control arm (or the lowest pressure, or
    for a learner parameter its meta-init value), per diversity level."""
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    L, S = len(sw.intensities), sw.seeds
    learner, control = learner_and_control(res)
    ctrl = scalars(res.arms[control], cfg.meta.generations) if control is not None else None
    ctrl_label = arm_label(control, res.arms[control]) if control is not None else None
    init = scalars(res.arms[learner], 0)
    for di, d in enumerate(sw.diversities):
        if identical_arms(res, int(d)):
            continue  # not a finding: the arms are the same by construction (not_tested)
        for metric in tested:
            v = by_level(grid, main[metric], di, L, S)
            if ctrl is not None and metric in ctrl:
                c, against = by_level(grid, ctrl[metric], di, L, S), ctrl_label
            elif metric in SCALARS:
                c, against = np.repeat(v[:1], L, axis=0), "lowest pressure"
            else:  # a learner parameter: against its meta-init value (generation 0)
                c, against = by_level(grid, init[metric], di, L, S), "meta-init"
            v, c, bad = paired(v, c)
            yield (learner, metric, int(d), against, bad, "control"), v, c


def _reference_jobs(res, main: dict):
    """Which objective (a training region): the learner's proxy pull and margin against the
    reference arm (the same learner evolved without the region), same level and seed."""
    if "reference" not in res.arms:
        return
    cfg, grid = res.cfg, res.grid
    sw = cfg.sweep
    L, S = len(sw.intensities), sw.seeds
    learner, _ = learner_and_control(res)
    ref = scalars(res.arms["reference"], cfg.meta.generations)
    ref_label = arm_label("reference", res.arms["reference"])
    for di, d in enumerate(sw.diversities):
        # the pull where the answer lies in task space, else the margin: one test
        tested_ref = next((m for m in REFERENCE_METRICS if m in main and m in ref
                           and np.isfinite(main[m]).any()), None)
        for metric in [tested_ref] if tested_ref else []:
            v, c, bad = paired(by_level(grid, main[metric], di, L, S),
                               by_level(grid, ref[metric], di, L, S))
            yield (learner, metric, int(d), ref_label, bad, "reference"), v, c


def _contrast_jobs(res, main: dict, primary: str):
    """The diversity contrast: the learner arm where tasks vary against the same arm, seed and
    level with one fixed task (paired: both start from the seed's meta-init)."""
    grid, sw = res.grid, res.cfg.sweep
    if 1 not in sw.diversities:
        return
    L, S = len(sw.intensities), sw.seeds
    learner, _ = learner_and_control(res)
    fixed = list(sw.diversities).index(1)
    for di, d in enumerate(sw.diversities):
        if di == fixed:
            continue
        for metric in [primary] if primary in main else []:
            v, c, bad = paired(by_level(grid, main[metric], di, L, S),
                               by_level(grid, main[metric], fixed, L, S))
            yield (learner, metric, int(d), "d=1 (same arm)", bad, "contrast"), v, c


# --- the items -----------------------------------------------------------------------------------
def _item(t: dict, q: int, job: tuple, is_primary: bool, diff: np.ndarray, intensities,
          seeds: int) -> dict:
    """Test ``q`` of the batch ``t`` (:func:`~meta_evo.report.stats.onset_tests`) as a
    JSON-ready item."""
    arm, metric, d, against, bad, kind = job
    r = t["result"]
    found = bool(r.found[q])
    ci = [None if not math.isfinite(x) else py(x) for x in r.onset_ci[q]]
    item = {
        "arm": arm, "metric": metric, "diversity": d, "control": against, "kind": kind,
        "role": "primary" if is_primary else "exploratory",
        "alpha": py(t["alpha"][q]),
        "family_size": t["primary_family_size"] if is_primary else t["family_size"],
        "seeds": seeds, "testable": bool(r.testable[q]), "min_p": py(r.min_p[q]),
        "exact": bool(r.exact[q]),
        "found": found,
        "onset": py(r.onset[q]) if found else None,
        "onset_index": int(r.onset_index[q]),
        "p": py(r.p_onset[q]), "p_adjusted": py(t["p_adjusted"][q]),
        "p_level": py(r.p_level[q]), "p_level_se": py(r.p_level_se[q]),
        "p_sequence": py(r.p_sequence[q]),
        "onset_ci": ["none" if x is None else x for x in ci],
        "onset_prob": py(r.onset_prob[q]),
        "trend": {"rho": py(r.trend_rho[q]), "p": py(r.trend_p[q]),
                  "p_se": py(r.trend_p_se[q])},
        "midpoint": py(r.midpoint[q]),
        "midpoint_ci": py(r.midpoint_ci[q]),
        "fit": {"lo": py(r.fit.lo[q]), "hi": py(r.fit.hi[q]), "mid": py(r.fit.mid[q]),
                "scale": py(r.fit.scale[q])},
        "difference": py(r.difference[q]),
        "significant": py(r.significant[q]),
        "nonfinite_replaced": bad,
        "levels": level_differences(intensities, diff, r.p_level[q]),
    }
    # the Monte Carlo error of p (0 when exact): that of the level that sets it
    top = int(r.onset_index[q]) if found else len(intensities) - 1
    worst = top + int(np.argmax(r.p_level[q][top:]))
    item["p_se"] = py(r.p_level_se[q][worst])
    item["summary"] = onset_text(item)
    item["interval"] = interval_text(item)
    return item


def compute_onsets(res) -> list[dict]:
    """Onsets of every scalar metric of the learner arm, per diversity level, against the
    control (``kind == "control"``), the reference (``kind == "reference"``) and, where the
    sweep has a fixed-task level (d=1), of each other diversity level against it
    (``kind == "contrast"``). Two vmapped kernel calls."""
    cfg = res.cfg
    sw = cfg.sweep
    learner, _ = learner_and_control(res)
    if len(sw.intensities) < 2:
        return []
    main = scalars(res.arms[learner], cfg.meta.generations)
    primary = primary_metric(cfg)
    tested = [m for m in main if m == primary or m in TESTED_METRICS]
    jobs = [*_control_jobs(res, main, tested), *_reference_jobs(res, main),
            *_contrast_jobs(res, main, primary)]
    if not jobs:
        return []
    is_primary = np.array([m == primary and kind == "control"
                           for (_, m, _, _, _, kind), _, _ in jobs])
    key = jax.random.PRNGKey(cfg.seed + 7)
    # the kernel tests learner minus control against 0 (the same sign-flip p-values as the
    # pair), so its logistic fit describes the difference, not the learner's own level means
    diffs = np.stack([v for _, v, _ in jobs]) - np.stack([c for _, _, c in jobs])
    t = onset_tests(np.asarray(sw.intensities, np.float64), diffs, np.zeros_like(diffs),
                    is_primary, key, alpha=ALPHA, ci_level=CI_LEVEL,
                    num_bootstrap=NUM_BOOTSTRAP)
    return [_item(t, q, job, bool(is_primary[q]), diffs[q], sw.intensities, sw.seeds)
            for q, (job, _, _) in enumerate(jobs)]
