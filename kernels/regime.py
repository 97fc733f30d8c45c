"""Learning regime of a grid point: memorization, task identification, general learning.

Kirsch et al. 2022 see three regimes as the number d of distinct training tasks grows. They
are told apart by measuring the same evolved learner on tasks from its training pool and on
held-out tasks:

- **memorization**: at chance on both, with near-identical rows (one stored solution, the
  reward is ignored);
- **identification**: accurate on pool tasks, at chance on held-out ones (the learner finds
  which training task it is on and pursues that one: the nearest training task is its proxy);
- **general learning**: accurate on held-out tasks (and so on pool tasks, up to noise);
- **none**: anything else (no fit: at chance on both although the rows differ).

A seed that is accurate on held-out tasks is a general learner whatever its pool test says: a
learner cannot serve new tasks better than the tasks it was selected on except through
measurement noise (with d = 0 or d >= n the pool is as random a draw as the held-out set), so
the pool test only separates identification from memorization.

Per seed, a set of n tasks is *fit* when the objective sensitivity exceeds
``sensitivity_threshold`` and the accuracy is *high* by either reading:

- a large effect: the chance-corrected accuracy ``skill = (accuracy - chance) / (1 - chance)``
  exceeds ``margin`` (0 = chance, 1 = every row serves its own task best; a kappa-style score
  whose meaning does not depend on n), or
- a detectable one: the number of rows that serve their own task best is above chance by a
  one-sided binomial test at ``fit_alpha`` (n = 1 / chance rows, each right with probability
  ``chance`` under the null of a learner that ignores its task).

The first reading alone calls a learner right on 30 % of 16 held-out tasks (chance 6 %, p =
0.01) "at chance"; the second alone can never pass with 2 or 3 tasks (a pool of d = 2 training
tasks), where being right on both is all a task identifier can show.

Rows are *near-identical* when ``row_spread <= spread_threshold`` (see ``row_spread``).
NaN inputs fail every comparison, so a diverged seed lands in ``none``.

Defaults and why:

- ``margin = 0.5`` (halfway from chance to perfect) and ``fit_alpha = 0.05``. With n = 6 tasks
  either needs 4 of 6 rows right (P = 0.009 under the null); with n = 16 the test needs 4 of 16
  (P = 0.011). With n = 2 only both right passes, which a learner at chance does with
  probability 1/4: per-seed calls on tiny pools are noisy, and the control arm's shares show
  how noisy. For d = 1 the caller passes ``chance = 1``: skill is then 0 and the test cannot
  pass, so a single training task can only be memorized.
- ``sensitivity_threshold = 0.1``: S > 0 means results favour their own task; 0.1 keeps
  floating-point noise and near-ties out. A hand-built optimizer on ``analytic`` scores
  S of about 1.4-1.9 and a memorizer exactly 0. A task identifier scores S of 0.4-0.9 on
  held-out tasks too (its output still moves with the task): accuracy, not sensitivity, is
  what separates identification from general learning.
- ``spread_threshold = 0.2``: differences between rows explain at most 4 % of the variance
  of the matrix (``row_spread`` is a ratio of standard deviations). A memorizer scores
  exactly 0.

Over seeds: the share of seeds in each regime with a Wilson score interval at ``level``
(two-sided), the modal regime (ties go to the lower code) and its share, the *confidence*.

Pure and jittable; inputs are per-seed arrays ``[S]``; vmap over grid points outside.
Imports jax only (and ``kernels.objective``), never ``meta_evo``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

from .objective import objective_sensitivity

REGIME_NAMES = ("memorization", "identification", "general_learning", "none")
MEMORIZATION, IDENTIFICATION, GENERAL_LEARNING, NO_REGIME = 0, 1, 2, 3

DEFAULT_MARGIN = 0.5
DEFAULT_FIT_ALPHA = 0.05
DEFAULT_SENSITIVITY_THRESHOLD = 0.1
DEFAULT_SPREAD_THRESHOLD = 0.2
DEFAULT_LEVEL = 0.95


class RegimeResult(NamedTuple):
    """Regime per seed and over seeds, with the thresholds that decided it.

    Per seed ``[S]``: ``regime`` (int32 code into ``REGIME_NAMES``), ``pool_skill`` and
    ``heldout_skill`` (chance-corrected accuracy), ``pool_fit`` and ``heldout_fit`` (bool),
    ``identical_rows`` (bool, ``row_spread <= spread_threshold``).
    Over seeds: ``counts [4]`` int32 and ``shares [4]`` per regime, ``share_interval [4, 2]``
    (Wilson, at ``level``), ``modal`` (int32 scalar), ``confidence`` (share of seeds in the
    modal regime) and ``confidence_interval [2]``.
    Thresholds (float scalars): ``margin``, ``sensitivity_threshold``, ``spread_threshold``,
    ``level``.
    """

    regime: jax.Array
    pool_skill: jax.Array
    heldout_skill: jax.Array
    pool_fit: jax.Array
    heldout_fit: jax.Array
    identical_rows: jax.Array
    counts: jax.Array
    shares: jax.Array
    share_interval: jax.Array
    modal: jax.Array
    confidence: jax.Array
    confidence_interval: jax.Array
    margin: jax.Array
    sensitivity_threshold: jax.Array
    spread_threshold: jax.Array
    level: jax.Array


def _as_float(x) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


@jax.jit
def wilson_interval(successes: jax.Array, trials: jax.Array,
                    level: float = DEFAULT_LEVEL) -> jax.Array:
    """Wilson score interval for a binomial share.

    Args:
      successes: [...] counts k.
      trials: [...] counts n (broadcasts); n = 0 gives [0, 1].
      level: two-sided coverage, e.g. 0.95 (z = 1.96).

    Returns:
      [..., 2] (lower, upper), clipped to [0, 1]. For k = n: lower = n / (n + z^2).
    """
    k = _as_float(successes)
    n = _as_float(trials)
    z = ndtri(0.5 + 0.5 * _as_float(level))
    z2 = z * z
    safe_n = jnp.where(n > 0, n, 1.0)
    centre = (k + 0.5 * z2) / (n + z2)
    half = z * jnp.sqrt(jnp.maximum(k * (n - k) / safe_n, 0.0) + 0.25 * z2) / (n + z2)
    lo = jnp.where(n > 0, jnp.clip(centre - half, 0.0, 1.0), 0.0)
    hi = jnp.where(n > 0, jnp.clip(centre + half, 0.0, 1.0), 1.0)
    # k = 0 and k = n are exact bounds; keep them free of rounding.
    lo = jnp.where((n > 0) & (k <= 0), 0.0, lo)
    hi = jnp.where((n > 0) & (k >= n), 1.0, hi)
    return jnp.stack([lo, hi], axis=-1)


def share_summary(codes: jax.Array, n_classes: int, level) -> tuple:
    """Counts, shares, Wilson intervals and the modal class of int codes ``[S]``.

    Returns ``(counts [C], shares [C], intervals [C, 2], modal, confidence, interval [2])``;
    ties for the mode go to the lower code.
    """
    s = codes.shape[-1]
    counts = jnp.sum(codes[..., None] == jnp.arange(n_classes), axis=-2).astype(jnp.int32)
    shares = counts / jnp.float32(max(s, 1))
    intervals = wilson_interval(counts, jnp.full_like(counts, s), level)
    modal = jnp.argmax(counts, axis=-1).astype(jnp.int32)
    return counts, shares, intervals, modal, shares[modal], intervals[modal]


def binomial_above_chance(accuracy: jax.Array, chance: jax.Array,
                          alpha: float = DEFAULT_FIT_ALPHA) -> jax.Array:
    """Whether ``accuracy`` over ``n = 1 / chance`` rows is above chance by a one-sided exact
    binomial test at ``alpha``: ``P[Bin(n, chance) >= round(accuracy * n)] <= alpha``.
    False where chance >= 1 (one task: nothing to tell apart)."""
    accuracy = _as_float(accuracy)
    chance = _as_float(chance)
    ok = chance < 1.0
    p0 = jnp.where(ok, chance, 0.5)
    n = jnp.round(1.0 / p0)
    hits = jnp.round(accuracy * n)
    # P[X >= k] = I_p(k, n - k + 1) for 1 <= k <= n (regularized incomplete beta)
    k = jnp.clip(hits, 1.0, n)
    tail = jax.scipy.special.betainc(k, n - k + 1.0, p0)
    tail = jnp.where(hits < 1, 1.0, tail)
    return ok & (tail <= alpha)


def chance_skill(accuracy: jax.Array, chance: jax.Array) -> jax.Array:
    """Chance-corrected accuracy ``(accuracy - chance) / (1 - chance)``; 0 where chance >= 1."""
    accuracy = _as_float(accuracy)
    chance = _as_float(chance)
    ok = chance < 1.0
    return jnp.where(ok, (accuracy - chance) / jnp.where(ok, 1.0 - chance, 1.0), 0.0)


@jax.jit
def task_accuracy(matrix: jax.Array) -> jax.Array:
    """Accuracy over the task columns only: share of rows a with ``argmax_{b<n} M[a, b] == a``.

    Args:
      matrix: [..., n, m] cross-task matrices (columns n..m-1 are proxies and ignored).

    Returns:
      [...] accuracy (chance = 1/n). NaN ranks worst, ties go to the lowest column.
    """
    matrix = _as_float(matrix)
    n = matrix.shape[-2]
    tasks = matrix[..., :n]
    best = jnp.argmax(jnp.where(jnp.isnan(tasks), -jnp.inf, tasks), axis=-1)
    return jnp.mean((best == jnp.arange(n)).astype(matrix.dtype), axis=-1)


@jax.jit
def row_spread(matrix: jax.Array) -> jax.Array:
    """How much the rows (lifetimes) differ: ``sqrt(mean_b var_a T[a, b]) / (std(T) + 1e-8)``.

    ``T = M[..., :, :n]`` (task columns). The ratio of the within-column to the total standard
    deviation, in [0, 1]: 0 = identical rows (one stored solution whatever the reward; computed
    after subtracting the first row, so identical rows give exactly 0), 1 = the columns have
    equal means and all the variation is between rows.

    Args:
      matrix: [..., n, m] cross-task matrices.

    Returns:
      [...] spread.
    """
    matrix = _as_float(matrix)
    n = matrix.shape[-2]
    tasks = matrix[..., :n]
    centered = tasks - tasks[..., :1, :]
    within = jnp.mean(jnp.var(centered, axis=-2), axis=-1)
    total = jnp.std(tasks, axis=(-2, -1))
    return jnp.sqrt(within) / (total + 1e-8)


@jax.jit
def classify_regime(pool_accuracy: jax.Array, pool_sensitivity: jax.Array,
                    heldout_accuracy: jax.Array, heldout_sensitivity: jax.Array,
                    spread: jax.Array, chance_pool: jax.Array, chance_heldout: jax.Array,
                    margin: float = DEFAULT_MARGIN,
                    sensitivity_threshold: float = DEFAULT_SENSITIVITY_THRESHOLD,
                    spread_threshold: float = DEFAULT_SPREAD_THRESHOLD,
                    level: float = DEFAULT_LEVEL,
                    fit_alpha: float = DEFAULT_FIT_ALPHA) -> RegimeResult:
    """Regime per seed and over seeds.

    Args:
      pool_accuracy: [S] task-column accuracy on pool (training) tasks, per seed.
      pool_sensitivity: [S] objective sensitivity on pool tasks.
      heldout_accuracy: [S] task-column accuracy on held-out tasks.
      heldout_sensitivity: [S] objective sensitivity on held-out tasks.
      spread: [S] ``row_spread`` of the learner's final behaviour (pool or held-out matrix;
        ``regime_from_matrices`` uses the larger of the two).
      chance_pool: scalar or [S], 1 / (number of pool rows); pass 1.0 when d = 1.
      chance_heldout: scalar or [S], 1 / (number of held-out rows).
      margin, sensitivity_threshold, spread_threshold: see the module docstring.
      level: coverage of the Wilson intervals.

    Returns:
      RegimeResult.
    """
    pool_skill = chance_skill(pool_accuracy, chance_pool)
    held_skill = chance_skill(heldout_accuracy, chance_heldout)
    pool_high = (pool_skill > margin) | binomial_above_chance(pool_accuracy, chance_pool,
                                                                fit_alpha)
    held_high = (held_skill > margin) | binomial_above_chance(heldout_accuracy, chance_heldout,
                                                                fit_alpha)
    pool_fit = pool_high & (_as_float(pool_sensitivity) > sensitivity_threshold)
    held_fit = held_high & (_as_float(heldout_sensitivity) > sensitivity_threshold)
    identical = _as_float(spread) <= spread_threshold
    finite = (jnp.isfinite(_as_float(pool_accuracy)) & jnp.isfinite(_as_float(pool_sensitivity))
              & jnp.isfinite(_as_float(spread)))  # a diverged seed is none, whatever else
    regime = jnp.where(
        held_fit & finite, GENERAL_LEARNING,
        jnp.where(pool_fit, IDENTIFICATION,
                  jnp.where(~held_fit & identical, MEMORIZATION, NO_REGIME))).astype(jnp.int32)
    counts, shares, intervals, modal, conf, conf_int = share_summary(
        regime, len(REGIME_NAMES), level)
    f = jnp.float32
    return RegimeResult(regime, pool_skill, held_skill, pool_fit, held_fit, identical, counts,
                        shares, intervals, modal, conf, conf_int, f(margin),
                        f(sensitivity_threshold), f(spread_threshold), f(level))


@jax.jit
def regime_from_matrices(pool_matrix: jax.Array, heldout_matrix: jax.Array,
                         margin: float = DEFAULT_MARGIN,
                         sensitivity_threshold: float = DEFAULT_SENSITIVITY_THRESHOLD,
                         spread_threshold: float = DEFAULT_SPREAD_THRESHOLD,
                         level: float = DEFAULT_LEVEL) -> RegimeResult:
    """``classify_regime`` from cross-task matrices, one per seed.

    Args:
      pool_matrix: [S, n_pool, m_pool] rows = pool tasks (n_pool >= 2; for d = 1 call
        ``classify_regime`` with ``chance_pool = 1``), columns = the same tasks (+ proxies,
        ignored here).
      heldout_matrix: [S, n_heldout, m_heldout] the same for held-out tasks.

    Chance levels are 1/n_pool and 1/n_heldout; the spread is the larger of the two matrices'
    ``row_spread`` (a memorizer's rows are identical on both).
    """
    n_pool, n_held = pool_matrix.shape[-2], heldout_matrix.shape[-2]
    sens = jax.vmap(objective_sensitivity)
    spread = jnp.maximum(row_spread(pool_matrix), row_spread(heldout_matrix))
    return classify_regime(task_accuracy(pool_matrix), sens(pool_matrix),
                           task_accuracy(heldout_matrix), sens(heldout_matrix), spread,
                           1.0 / n_pool, 1.0 / n_held, margin, sensitivity_threshold,
                           spread_threshold, level)
