"""Per-seed classes from measured arrays: the regime of each evolved learner over the task count
(Kirsch et al. 2022; ``kernels.regime``) and its outcome under a distribution shift
(``kernels.generalization``), with the thresholds the kernels used and the class names.

- :func:`classify_regimes` / :func:`classify_outcomes`: the kernels on the measurement outputs
  of S evolved learners (``[S, ...]`` arrays keyed as ``meta_evo.measure`` names them);
- :func:`regime_thresholds` / :func:`outcome_thresholds` and :func:`accurate_text`: what the
  kernels decided with, as JSON and in words;
- :func:`shares_over_seeds` / :func:`share_text`: the classes of S seeds as counts and shares
  with intervals, and in a table cell.

The sections built on these are :mod:`meta_evo.report.regimes`,
:mod:`meta_evo.report.outcomes` and, for the checkpoints of one run,
:mod:`meta_evo.report.checkpoints`.
"""

from __future__ import annotations

import numpy as np

from meta_evo import kernels
from meta_evo.kernels import regime as _regime
from meta_evo.report.common import py

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


def _f32(x) -> np.ndarray:
    return np.asarray(x).astype(np.float32)


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
    pm = _f32(meas["pool_matrix"])
    mat = _f32(meas["matrix"])
    s, n_p = pm.shape[0], pm.shape[1]
    size = np.asarray(meas.get("pool_size", np.full(s, n_p))).astype(np.int64).reshape(s)
    size = np.clip(size, 1, n_p)
    spread_pool = np.zeros(s, np.float32)
    for b in np.unique(size):
        idx = np.nonzero(size == b)[0]
        spread_pool[idx] = np.asarray(kernels.row_spread(pm[idx][:, :b, :b]))
    spread = np.maximum(spread_pool, np.asarray(kernels.row_spread(mat)))
    chance_pool = np.where(size >= 2, 1.0 / size, 1.0).astype(np.float32)
    chance_held = 1.0 / mat.shape[1]
    r = kernels.classify_regime(
        _f32(meas["pool_behavioral_accuracy"]), _f32(meas["pool_objective_sensitivity"]),
        _f32(meas["behavioral_accuracy"]), _f32(meas["objective_sensitivity"]),
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
        _f32(meas["lifetime_gain"]), _f32(meas["matrix"]), _f32(meas["ood_lifetime_gain"]),
        _f32(meas["ood_matrix"]))
    as_np = lambda o: type(o)(*(np.asarray(x) for x in o))  # noqa: E731
    return type(r)(as_np(r.in_dist), as_np(r.out_dist), np.asarray(r.shifted))


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


def shares_over_seeds(names, counts, shares, intervals, modal, confidence, conf_int,
                      codes) -> dict:
    """The classes of S seeds (``codes [S]``, indices into ``names``) with the kernels' counts,
    shares and Wilson intervals, the modal class and its share (the confidence)."""
    return {
        "counts": {n: int(c) for n, c in zip(names, counts, strict=True)},
        "shares": {n: py(v) for n, v in zip(names, shares, strict=True)},
        "share_ci": {n: py(v) for n, v in zip(names, intervals, strict=True)},
        "modal": names[int(modal)], "confidence": py(confidence),
        "confidence_ci": py(conf_int), "per_seed": [names[int(c)] for c in codes],
    }


def proxy_name(proxy_names: list[str], i) -> str | None:
    """The name of proxy column ``i`` (None for no proxy, ``i < 0``; a generic name past the
    names known)."""
    i = int(i)
    if i < 0:
        return None
    return proxy_names[i] if i < len(proxy_names) else f"proxy {i}"


def share_text(counts: dict, short: dict, modal: str | None = None) -> str:
    """``mem 2/8, ident 6/8`` (non-zero classes; the modal one in bold)."""
    n = sum(counts.values())
    parts = []
    for k, c in counts.items():
        if c:
            t = f"{short[k]} {c}/{n}"
            parts.append(f"**{t}**" if k == modal else t)
    return ", ".join(parts) or "—"
