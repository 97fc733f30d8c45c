"""The report's statistics on plain arrays: per-test onsets ([L, S] metric and control per
test), the multiplicity rule across tests (and plain Holm for a family of single p-values),
and t-intervals (with :func:`ci_cell`, the JSON cell every section shows them in). Nothing here
reads a report section, so the calibration tests run exactly this code on synthetic sweeps.

The tests of one report (``onset_tests``):

- each test is ``kernels.emergence_onset``: an exact paired sign-flip test per level over
  seeds, fixed-sequence from the highest level down (the onset is the lowest level from
  which every level passes), a trend test and an unconditional onset interval;
- the **primary** tests (the primary metric against the control, one per diversity level)
  form one family, held at ``alpha`` by the rule below (with one diversity level: that test
  at ``alpha``);
- every other test is **exploratory**, and they form one family whose family-wise error is
  held at ``alpha`` by Holm's procedure in its graphical form with the fixed sequence inside
  each test (Bretz et al. 2009): every test starts with ``alpha / m``; a test passes its
  levels from the top down at its current level; when a test has passed at every level, its
  share goes in equal parts to the tests that have not. With equal shares every unfinished
  test ends at the same local level ``alpha / (m - finished)``, and each test's onset is the
  lowest level whose sequence p (the largest per-level p from there up) is within it. The
  adjusted p of a test (``p_adjusted``) is the smallest family level at which it claims an
  onset; it passes iff ``p_adjusted <= alpha``. (Plain Holm on one p per test would not hold
  the family-wise error over the level hypotheses: a test whose onset claim is right can
  still free alpha for others. Here alpha moves only once a test can make no more errors.)
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from meta_evo import kernels
from meta_evo.report.common import py


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over seeds and its t-interval, ``(mean, lo, hi)``; non-finite values dropped."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    from scipy.stats import t as student_t

    q = float(student_t.ppf(0.5 + level / 2, v.size - 1))
    half = q * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


def ci_cell(values, level: float = 0.95) -> dict:
    """:func:`mean_ci` as a JSON-ready cell of the report: ``{"mean": m, "ci": [lo, hi]}``."""
    m, lo, hi = mean_ci(values, level)
    return {"mean": py(m), "ci": [py(lo), py(hi)]}


def paired(values: np.ndarray, control: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Replace non-finite entries by their partner (difference 0: no effect claimed), and
    treat differences at float-rounding size (relative 1e-5 of the metric's spread) as 0, so
    a theta that moved by rounding alone (e.g. at intensity 0) is not an effect."""
    bad = ~np.isfinite(values) | ~np.isfinite(control)
    v = np.where(np.isfinite(values), values, control)
    c = np.where(np.isfinite(control), control, v)
    v = np.where(np.isfinite(v), v, 0.0)
    c = np.where(np.isfinite(c), c, 0.0)
    both = np.concatenate([v.ravel(), c.ravel()])
    tol = 1e-5 * max(float(np.ptp(both)), float(np.abs(both).max(initial=0.0)), 1e-12)
    v = np.where(np.abs(v - c) <= tol, c, v)
    return v, c, int(bad.sum())


@functools.partial(jax.jit, static_argnames=("num_bootstrap",))
def _onsets(pressures, values, controls, alphas, key, ci_level, num_bootstrap):
    def one(v, c, a):
        return kernels.emergence_onset(pressures, v, c, key, num_bootstrap, a,
                                       ci_level=ci_level)
    return jax.vmap(one)(values, controls, alphas)


@jax.jit
def _pvalues(values, controls, key):
    return jax.vmap(lambda v, c: kernels.level_pvalues(v, c, key))(values, controls)


def onset_batch(pressures, values, controls, alphas, key, *, ci_level: float = 0.95,
                num_bootstrap: int = 1000):
    """``emergence_onset`` of Q tests at once (one compile per shape): values and controls
    ``[Q, L, S]``, ``alphas [Q]`` (each test's level). Returns the result as numpy."""
    out = _onsets(jnp.asarray(pressures, jnp.float32), jnp.asarray(values, jnp.float32),
                  jnp.asarray(controls, jnp.float32), jnp.asarray(alphas, jnp.float32), key,
                  jnp.asarray(ci_level, jnp.float32), num_bootstrap)
    return jax.tree.map(np.asarray, jax.device_get(out))


def level_pvalue_batch(values, controls, key):
    """Per-level and sequence p-values of Q tests ``[Q, L]`` each, and min p ``[Q]``."""
    p, seq, min_p = _pvalues(jnp.asarray(values, jnp.float32),
                             jnp.asarray(controls, jnp.float32), key)
    return np.asarray(p, np.float64), np.asarray(seq, np.float64), np.asarray(min_p, np.float64)


def _unfinished(bottom: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Tests not yet passed at every level, ``[C]``, at each family level in ``levels [C]``.
    A test is finished when its bottom sequence p is within its share alpha / unfinished;
    finishing raises the others' share, so iterate to the fixed point (at most m rounds)."""
    m = bottom.shape[0]
    done = np.zeros((levels.shape[0], m), bool)
    for _ in range(m + 1):
        share = levels / np.maximum(m - done.sum(1), 1)
        new = bottom[None, :] <= share[:, None] * (1 + 1e-9)
        if np.array_equal(new, done):
            break
        done = new
    return np.maximum(m - done.sum(1), 1)


def holm_fixed_sequence(p_sequence, alpha: float) -> tuple[float, np.ndarray]:
    """Holm across tests with the fixed sequence inside each (the graphical form above).

    Args:
      p_sequence: [m, L] sequence p-values of the m tests of the family (lowest level first;
        the last column is the top level, where each sequence starts).
      alpha: the family-wise level.

    Returns:
      ``(local_alpha, p_adjusted [m])``: the level every test of the family is tested at,
      ``alpha / (m - finished)``, and each test's adjusted p (the smallest family level at
      which it claims an onset, capped at 1).
    """
    q = np.asarray(p_sequence, np.float64)
    m = q.shape[0]
    if m == 0:
        return float(alpha), np.zeros(0)
    top, bottom = q[:, -1], q[:, 0]
    local = float(alpha) / float(_unfinished(bottom, np.array([alpha], np.float64))[0])
    # the smallest family level at which top_t <= level / unfinished(level) is either on a
    # flat piece of unfinished() (level = top_t * k) or where it steps down because another
    # test finishes (level = bottom_s * k): those are the candidates
    ks = np.arange(1, m + 1)
    cand = np.concatenate([(top[:, None] * ks).ravel(), (bottom[:, None] * ks).ravel()])
    cand = np.unique(np.minimum(cand, 1.0))
    share = cand / _unfinished(bottom, cand)
    ok = top[None, :] <= share[:, None] * (1 + 1e-9)  # [C, m]
    p_adj = np.where(ok.any(0), cand[np.argmax(ok, axis=0)], 1.0)
    return local, p_adj


def holm(p: np.ndarray) -> np.ndarray:
    """Plain Holm-adjusted p-values of one family ``[m]`` (one p per test, no sequence inside):
    ``max_{j <= i} min(1, (m - j) p_(j))`` over the sorted p (0-based j); NaN stays NaN and
    does not count in m."""
    p = np.asarray(p, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def onset_tests(pressures, values, controls, primary, key, *, alpha: float = 0.05,
                ci_level: float = 0.95, num_bootstrap: int = 1000) -> dict:
    """Every onset test of a report, with the multiplicity rule (module docstring).

    Args:
      pressures: [L] ascending sweep values.
      values, controls: [Q, L, S] metric and its control per test (paired by seed).
      primary: [Q] bool, the tests at ``alpha`` on their own; the others form the
        exploratory family.
      key: PRNG key (bootstrap; Monte Carlo patterns above 16 seeds), shared by the tests.

    Returns:
      a dict of numpy arrays: ``result`` (the batched ``EmergenceResult``, each test at its
      own level), ``alpha [Q]`` (that level), ``p_adjusted [Q]`` (Holm-adjusted within its
      family), ``family_size`` (m, exploratory), ``primary_family_size``.
    """
    values = np.asarray(values, np.float64)
    controls = np.asarray(controls, np.float64)
    primary = np.asarray(primary, bool)
    _, seq, _ = level_pvalue_batch(values, controls, key)
    alphas = np.full(primary.shape, float(alpha))
    p_adj = np.ones(primary.shape)
    # two families, each held at alpha by the same rule: the primary tests (one per diversity
    # level) and the exploratory ones
    for fam in (primary, ~primary):
        if fam.any():
            local, adj = holm_fixed_sequence(seq[fam], alpha)
            alphas[fam] = local
            p_adj[fam] = adj
    explore = ~primary
    result = onset_batch(pressures, values, controls, alphas, key, ci_level=ci_level,
                         num_bootstrap=num_bootstrap)
    return {"result": result, "alpha": alphas, "p_adjusted": p_adj,
            "family_size": int(explore.sum()), "primary_family_size": int(primary.sum())}


def family_decisions(values, controls, key, *, alpha: float = 0.05) -> dict:
    """The decisions of one exploratory family without intervals (what :func:`onset_tests`
    decides for its exploratory tests, at a fraction of its cost: no bootstrap).

    Args:
      values, controls: [Q, L, S] per test (paired by seed), every test in one Holm family.

    Returns:
      numpy arrays: ``p_level [Q, L]``, ``p_sequence [Q, L]``, ``alpha`` (the local level of
      the family), ``p_adjusted [Q]``, ``found [Q]``, ``onset_index [Q]`` (-1 when none).
    """
    p, seq, _ = level_pvalue_batch(values, controls, key)
    local, adj = holm_fixed_sequence(seq, alpha)
    passes = seq <= local * (1 + 1e-9)
    found = passes[:, -1]
    onset = np.where(found, np.argmax(passes, axis=1), -1)
    return {"p_level": p, "p_sequence": seq, "alpha": local, "p_adjusted": adj,
            "found": found, "onset_index": onset}
