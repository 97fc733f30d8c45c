"""Emergence onset: where along a sweep axis a metric first exceeds its control.

Given a metric measured at L pressure levels over S seeds and a control paired by seed (a
control arm at each level, or a baseline such as the lowest pressure), this finds

- per level, an **exact paired sign-flip test** over seeds, one-sided (H1: metric - control
  > 0). Under H0 each seed's difference is as likely to be positive as negative (learner and
  control are exchangeable within a seed), so the 2^S sign patterns of the S differences are
  equally likely. The p-value is the share of patterns whose summed difference reaches the
  observed one. All patterns are enumerated up to S = 16; above that ``num_mc`` random
  patterns give a Monte Carlo p, ``(1 + count) / (num_mc + 1)``, with its standard error. The
  smallest achievable p is 2^-S (1 / (num_mc + 1) for Monte Carlo): with 3 seeds it is
  0.125, so no level can pass at alpha 0.05 and ``testable`` is False;
- the **onset** by fixed-sequence testing from the highest level down: the smallest level
  such that it and every higher level pass. The sequence p-value of level l is the largest
  per-level p from l up; the onset is the smallest l whose sequence p is <= alpha, and its
  sequence p (``p_onset``) is the p-value of the onset claim as a whole;
- a **trend test**: the within-seed Spearman correlation of (metric - control) with pressure,
  averaged over seeds, with the sign-flip p-value of flipping each seed's whole difference
  vector (which negates that seed's correlation);
- an **unconditional onset interval**: the whole procedure rerun on ``num_bootstrap``
  resamples of the seeds; "no onset" is one of the outcomes (counted as above the range), so
  the interval's upper end is "none" (+inf) when more than (1 - ci_level) / 2 of the
  resamples find nothing; ``onset_prob`` is the share of resamples that find an onset;
- a **logistic fit** ``y = lo + (hi - lo) sigmoid((p - mid) / scale)`` of the metric's level
  means against pressure, whose midpoint gets a bootstrap interval on the same resamples.

"No onset in range" (``found == False``) is a valid answer. Seeds are resampled as units: one
draw of S seed indices (with replacement) is applied to every level and to the control, so
pairs and any dependence across levels (shared seeds) are kept.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

CORRECTIONS = ("sequential", "none")
MAX_EXACT_SEEDS = 16  # the point test enumerates all 2^S sign patterns up to here
RESAMPLE_EXACT_SEEDS = 10  # the resamples of the interval enumerate up to here, then use MC

# The fit works with pressure rescaled to [0, 1] over the swept range. The midpoint stays
# inside that range and the width below half of it: a transition that is not inside the
# range cannot be located by it, and letting either go would let lo and hi run off to
# extrapolated values hundreds of times the data's spread.
_MID_BOUNDS = (0.0, 1.0)
_LOG_SCALE_BOUNDS = (math.log(0.002), math.log(0.5))
_GRID = (41, 12)  # coarse grid: midpoints x log-widths over the bounds
_LOCAL = 5  # each zoom evaluates a _LOCAL x _LOCAL grid around the best point so far
_ZOOM_STEPS = 10


class LogisticFit(NamedTuple):
    """Least-squares logistic fit of a metric against pressure (all scalars)."""

    lo: jax.Array  # [] metric level below the transition
    hi: jax.Array  # [] metric level above the transition (hi < lo for a falling metric)
    mid: jax.Array  # [] pressure at the midpoint of the transition
    scale: jax.Array  # [] width of the transition, pressure units, > 0


class EmergenceResult(NamedTuple):
    """Output of ``emergence_onset``; L = number of pressure levels."""

    found: jax.Array  # [] bool, an onset exists in the swept range (at alpha)
    onset: jax.Array  # [] float, pressure of the onset, NaN when not found
    onset_index: jax.Array  # [] int32, level index of the onset, -1 when not found
    testable: jax.Array  # [] bool, min_p <= alpha (else no level can ever pass)
    min_p: jax.Array  # [] smallest achievable p: 2^-S (exact) or 1 / (num_mc + 1)
    exact: jax.Array  # [] bool, p-values from all 2^S sign patterns (else Monte Carlo)
    p_level: jax.Array  # [L] one-sided sign-flip p per level
    p_level_se: jax.Array  # [L] Monte Carlo standard error of p_level (0 when exact)
    p_sequence: jax.Array  # [L] fixed-sequence p: max(p_level[l:]) (the level-l claim)
    p_onset: jax.Array  # [] p of the onset claim: p_sequence at the onset, at the top if none
    significant: jax.Array  # [L] bool, p_level <= alpha (before the sequential rule)
    trend_rho: jax.Array  # [] mean over seeds of the within-seed Spearman rho
    trend_p: jax.Array  # [] one-sided sign-flip p of trend_rho > 0
    trend_p_se: jax.Array  # [] its Monte Carlo standard error (0 when exact)
    onset_ci: jax.Array  # [2] unconditional interval of the onset, +inf = "none"
    onset_ci_index: jax.Array  # [2] int32 level indices of onset_ci, L = "none"
    onset_prob: jax.Array  # [] fraction of bootstrap resamples that find an onset
    midpoint: jax.Array  # [] logistic midpoint (== fit.mid)
    midpoint_ci: jax.Array  # [2] bootstrap interval of the midpoint
    fit: LogisticFit  # the logistic fit on all seeds
    difference: jax.Array  # [L] mean(values[l]) - mean(control[l])


def _projected(x: jax.Array, y: jax.Array, mid: jax.Array, log_scale: jax.Array):
    """Best lo, hi for a given (mid, log_scale) and the residual sum of squares.

    The model is linear in lo and hi, so they have a closed form (a regression of y on the
    sigmoid); a sigmoid that is constant over the data gets lo = hi = mean(y).

    Sums of products are written as dot products on purpose: jaxlib 0.10.2's XLA:CPU
    miscompiles a broadcast-multiply-reduce of this shape once vmapped over a few thousand
    candidates (its YNNPACK reduce fusion returns wrong rows; jax-ml/jax#39103), while dots
    take another code path.
    """
    num = x.shape[0]
    s = jax.nn.sigmoid((x - mid) / jnp.exp(log_scale))
    sc = s - jnp.sum(s) / num
    var = jnp.dot(sc, sc) / num
    ok = var > 1e-10
    b = jnp.where(ok, (jnp.dot(sc, y) / num) / jnp.where(ok, var, 1.0), 0.0)
    a = jnp.sum(y) / num - b * (jnp.sum(s) / num)
    r = y - a - b * s
    return a, a + b, jnp.dot(r, r)


def _fit_normalized(x: jax.Array, y: jax.Array) -> jax.Array:
    """Least-squares logistic fit on x in [0, 1], y standardized: [lo, hi, mid, log_scale].

    lo and hi are solved exactly for each (mid, width) (variable projection); (mid, width)
    is found by a grid over the whole bounded domain followed by a fixed number of
    zoomed grids around the best point (each ``_ZOOM`` times finer). This is global on the
    grid, has no step size or damping to tune, and compiles quickly.
    """
    m_lo, m_hi = _MID_BOUNDS
    s_lo, s_hi = _LOG_SCALE_BOUNDS
    mids, log_scales = jnp.meshgrid(
        jnp.linspace(m_lo, m_hi, _GRID[0], dtype=x.dtype),
        jnp.linspace(s_lo, s_hi, _GRID[1], dtype=x.dtype),
    )
    mids, log_scales = mids.ravel(), log_scales.ravel()
    evaluate = jax.vmap(_projected, in_axes=(None, None, 0, 0))
    sse = evaluate(x, y, mids, log_scales)[2]
    best = jnp.argmin(sse)
    offsets = jnp.linspace(-1.0, 1.0, _LOCAL, dtype=x.dtype)
    d_mid, d_log = jnp.meshgrid(offsets, offsets)
    d_mid, d_log = d_mid.ravel(), d_log.ravel()

    def zoom(carry, _):
        mid, log_scale, half_mid, half_log = carry
        cand_mid = jnp.clip(mid + half_mid * d_mid, m_lo, m_hi)
        cand_log = jnp.clip(log_scale + half_log * d_log, s_lo, s_hi)
        i = jnp.argmin(evaluate(x, y, cand_mid, cand_log)[2])
        shrink = 2.0 / ((_LOCAL - 1) * 1.0)
        return (cand_mid[i], cand_log[i], half_mid * shrink, half_log * shrink), None

    start = (
        mids[best],
        log_scales[best],
        jnp.asarray((m_hi - m_lo) / (_GRID[0] - 1), x.dtype),
        jnp.asarray((s_hi - s_lo) / (_GRID[1] - 1), x.dtype),
    )
    (mid, log_scale, _, _), _ = jax.lax.scan(zoom, start, None, length=_ZOOM_STEPS)
    lo, hi, _ = _projected(x, y, mid, log_scale)
    return jnp.stack([lo, hi, mid, log_scale])


def _fit_logistic(pressures: jax.Array, level_means: jax.Array) -> LogisticFit:
    """Fit ``lo + (hi - lo) sigmoid((p - mid) / scale)`` to [L] level means, in p units."""
    p0 = pressures[0]
    span = pressures[-1] - pressures[0]
    span = jnp.where(span > 0, span, 1.0)
    y_mean = jnp.mean(level_means)
    y_std = jnp.std(level_means)
    y_std = jnp.where(y_std > 0, y_std, 1.0)
    params = _fit_normalized((pressures - p0) / span, (level_means - y_mean) / y_std)
    return LogisticFit(
        lo=y_mean + y_std * params[0],
        hi=y_mean + y_std * params[1],
        mid=p0 + span * params[2],
        scale=span * jnp.exp(params[3]),
    )


@functools.cache
def _all_sign_patterns(num_seeds: int) -> np.ndarray:
    """[2^S, S] every +-1 pattern (row 0 is all +1: the observed one). Read-only."""
    bits = (np.arange(2**num_seeds)[:, None] >> np.arange(num_seeds)[None, :]) & 1
    out = (1.0 - 2.0 * bits).astype(np.float32)
    out.setflags(write=False)
    return out


def sign_patterns(num_seeds: int, key: jax.Array, num_mc: int, max_exact: int = MAX_EXACT_SEEDS):
    """Sign patterns of a sign-flip test: ``(signs [P, S] float32, exact: bool)``.

    All 2^S patterns when ``S <= max_exact``, else ``num_mc`` independent random patterns
    drawn from ``key``. ``num_seeds``, ``num_mc`` and ``max_exact`` are static.
    """
    if num_seeds <= max_exact:
        return jnp.asarray(_all_sign_patterns(num_seeds)), True
    flips = jax.random.bernoulli(key, 0.5, (num_mc, num_seeds))
    return jnp.where(flips, -1.0, 1.0).astype(jnp.float32), False


def sign_flip_pvalues(diff: jax.Array, signs: jax.Array, exact: bool):
    """One-sided paired sign-flip p-values of ``sum(diff[n]) > 0``, per row.

    Args:
      diff: [N, S] paired differences (rows are independent tests over the same S seeds).
      signs: [P, S] sign patterns from ``sign_patterns``.
      exact: whether ``signs`` holds every pattern (static).

    Returns:
      ``(p [N], se [N])``. Exact: the share of patterns whose signed sum reaches the observed
      sum (ties count as reaching it, so an all-zero row gets p = 1). Monte Carlo:
      ``(1 + count) / (P + 1)`` with standard error ``sqrt(p (1 - p) / P)``.
    """
    diff = diff.astype(signs.dtype) if diff.dtype != signs.dtype else diff
    observed = jnp.sum(diff, axis=-1)  # [N]
    null = jnp.dot(diff, signs.T)  # [N, P]
    # a relative tolerance: patterns that reach the observed sum up to float rounding count
    tol = 1e-6 * jnp.sum(jnp.abs(diff), axis=-1) + 1e-30
    count = jnp.sum((null >= (observed - tol)[:, None]).astype(diff.dtype), axis=-1)
    num = signs.shape[0]
    if exact:
        return count / num, jnp.zeros_like(count)
    p = (1.0 + count) / (num + 1.0)
    return p, jnp.sqrt(p * (1.0 - p) / num)


def _average_ranks(x: jax.Array) -> jax.Array:
    """1-based ranks along the last axis, ties get their average rank. [..., L] -> [..., L]."""
    less = jnp.sum((x[..., None, :] < x[..., :, None]).astype(x.dtype), axis=-1)
    equal = jnp.sum((x[..., None, :] == x[..., :, None]).astype(x.dtype), axis=-1)
    return less + (equal + 1.0) / 2.0


def within_seed_spearman(diff: jax.Array, pressures: jax.Array) -> jax.Array:
    """Spearman rho of each seed's differences with pressure. [L, S], [L] -> [S].

    Average ranks for ties; a seed whose differences are all equal gets rho = 0. Negating a
    seed's differences negates its rho exactly (the ranks reverse).
    """
    num_levels = diff.shape[0]
    ranks = _average_ranks(diff.T)  # [S, L]
    ranks = ranks - (num_levels + 1) / 2.0
    ref = _average_ranks(pressures)
    ref = ref - jnp.mean(ref)
    num = jnp.dot(ranks, ref)  # [S]
    den = jnp.sqrt(jnp.sum(ranks * ranks, axis=-1) * jnp.dot(ref, ref))
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)


def _sequence(p: jax.Array, correction: str) -> jax.Array:
    """p of the claim "level l and every level above pass": the running max from the top."""
    if correction == "sequential":
        return jnp.flip(jax.lax.cummax(jnp.flip(p)))
    return p


def _onset_index(p_seq: jax.Array, alpha: jax.Array) -> jax.Array:
    """Lowest level whose (sequence) p is <= alpha, -1 if none. [L] -> [] int32."""
    passes = p_seq <= alpha
    return jnp.where(jnp.any(passes), jnp.argmax(passes), -1).astype(jnp.int32)


def _map_batch(n: int, cap: int) -> int:
    """A lax.map batch size <= cap; a divisor of n where one is close (no remainder batch
    to compile), else cap itself."""
    cap = max(1, min(n, cap))
    divisor = max(d for d in range(1, cap + 1) if n % d == 0)
    return divisor if 2 * divisor >= cap else cap


@functools.partial(
    jax.jit, static_argnames=("num_bootstrap", "num_mc", "num_resample_patterns", "correction")
)
def _emergence(pressures, values, control, key, alpha, ci_level, num_bootstrap, num_mc,
               num_resample_patterns, correction):
    num_levels, num_seeds = values.shape
    dtype = values.dtype
    diff = values - control
    k_mc, k_boot, k_resample = jax.random.split(key, 3)

    signs, exact = sign_patterns(num_seeds, k_mc, num_mc)
    min_p = (2.0**-num_seeds) if exact else 1.0 / (num_mc + 1.0)
    testable = jnp.asarray(min_p, dtype) <= alpha
    p_level, p_level_se = sign_flip_pvalues(diff, signs, exact)
    p_sequence = _sequence(p_level, correction)
    onset_index = _onset_index(p_sequence, alpha)
    found = onset_index >= 0
    onset = jnp.where(found, pressures[jnp.maximum(onset_index, 0)], jnp.nan)
    p_onset = jnp.where(found, p_sequence[jnp.maximum(onset_index, 0)], p_sequence[-1])

    rho = within_seed_spearman(diff, pressures)  # [S]
    trend_p, trend_se = sign_flip_pvalues(rho[None, :], signs, exact)
    fit = _fit_logistic(pressures, jnp.mean(values, axis=-1))

    # The interval: rerun the procedure on resamples of the seeds (the same rule at the same
    # alpha), with exact patterns up to RESAMPLE_EXACT_SEEDS seeds and a fixed Monte Carlo
    # set of patterns above.
    r_signs, r_exact = sign_patterns(num_seeds, k_resample, num_resample_patterns,
                                     max_exact=RESAMPLE_EXACT_SEEDS)
    draws = jax.random.randint(k_boot, (num_bootstrap, num_seeds), 0, num_seeds)

    def resample(idx):
        p, _ = sign_flip_pvalues(diff[:, idx], r_signs, r_exact)
        index = _onset_index(_sequence(p, correction), alpha)
        mid = _fit_logistic(pressures, jnp.mean(values[:, idx], axis=-1)).mid
        return index, mid

    per_item = r_signs.shape[0] * num_levels + _GRID[0] * _GRID[1] * num_levels
    batch = _map_batch(num_bootstrap, (1 << 19) // per_item)
    boot_index, boot_mid = jax.lax.map(resample, draws, batch_size=batch)
    boot_index = jnp.where(testable, boot_index, -1)  # never claimed where the point test can't
    boot_found = boot_index >= 0
    outcome = jnp.where(boot_found, boot_index, num_levels)  # "none" sits above the range
    tail = (1.0 - ci_level) / 2.0
    ci_index = jnp.stack([
        jnp.quantile(outcome, tail, method="lower"),
        jnp.quantile(outcome, 1.0 - tail, method="higher"),
    ]).astype(jnp.int32)
    onset_ci = jnp.where(ci_index < num_levels,
                         pressures[jnp.minimum(ci_index, num_levels - 1)], jnp.inf)
    midpoint_ci = jnp.stack([jnp.quantile(boot_mid, tail), jnp.quantile(boot_mid, 1.0 - tail)])
    return EmergenceResult(
        found=found,
        onset=onset,
        onset_index=onset_index,
        testable=testable,
        min_p=jnp.asarray(min_p, dtype),
        exact=jnp.asarray(exact),
        p_level=p_level,
        p_level_se=p_level_se,
        p_sequence=p_sequence,
        p_onset=p_onset,
        significant=p_level <= alpha,
        trend_rho=jnp.mean(rho),
        trend_p=trend_p[0],
        trend_p_se=trend_se[0],
        onset_ci=onset_ci,
        onset_ci_index=ci_index,
        onset_prob=jnp.mean(boot_found.astype(dtype)),
        midpoint=fit.mid,
        midpoint_ci=midpoint_ci,
        fit=fit,
        difference=jnp.mean(diff, axis=-1),
    )


def emergence_onset(
    pressures: jax.Array,
    values: jax.Array,
    control: jax.Array,
    key: jax.Array,
    num_bootstrap: int = 1000,
    alpha: float = 0.05,
    *,
    ci_level: float = 0.95,
    num_mc: int = 9999,
    num_resample_patterns: int = 1024,
    correction: str = "sequential",
) -> EmergenceResult:
    """Onset of a metric above its control along a sweep axis: exact sign-flip tests.

    At each level l the paired differences ``values[l] - control[l]`` (one per seed) are
    tested one-sided with a sign-flip (randomization) test: p = the share of the 2^S sign
    patterns whose summed difference is at least the observed sum (all patterns up to
    S = 16 seeds, else ``num_mc`` random ones; ``p_level_se`` is then the Monte Carlo
    standard error). The smallest possible p is 2^-S; when it exceeds ``alpha`` nothing can
    pass (``testable`` False, ``found`` False: "too few seeds to test at alpha"). How the
    per-level tests become an onset is ``correction``:

    - ``"sequential"`` (default): fixed-sequence testing from the highest pressure down; the
      onset is the lowest level such that it and every higher level pass. A false onset then
      needs the highest level to pass, so its chance is at most alpha whatever L is (the
      tests are exact), at the price of assuming that an effect, once present, persists at
      higher pressure: a metric that rises and falls again inside the range is reported as
      no onset. ``p_onset``, the largest per-level p from the onset up, is the p-value of the
      onset claim (the smallest alpha at which this onset would be claimed).
    - ``"none"``: the first level that passes (no multiplicity control: with L levels and no
      effect, a false onset is up to about L times as likely).

    The trend test: per seed, the Spearman correlation of its differences with pressure;
    ``trend_rho`` is their mean, ``trend_p`` the one-sided sign-flip p of flipping each
    seed's whole difference vector (exact up to 16 seeds).

    The onset interval is unconditional: the whole procedure (at the same alpha) reruns on
    each of ``num_bootstrap`` resamples of the seeds (sign patterns enumerated up to 10
    seeds, else a fixed set of ``num_resample_patterns`` random ones), "no onset" counting as
    an outcome above the range. ``onset_ci`` holds the (1 - ci_level)/2 and (1 + ci_level)/2
    quantiles of the outcomes as pressures (rounded outward to levels); +inf means "none",
    so ``[x, inf]`` reads "from x, or none in range" and ``[inf, inf]`` "none". ``onset_prob``
    is the share of resamples that find an onset. The logistic fit is of the level means of
    ``values`` by least squares (lo and hi exact, midpoint and width by a grid then zoomed
    grids, fixed counts); the midpoint is kept inside the swept range and the width between
    0.002 and 0.5 of it, so a sharp step gives a midpoint between the two levels around it.
    ``midpoint_ci`` is the percentile interval of the midpoint refitted on the same
    resamples. The midpoint means something only when ``hi - lo`` clearly exceeds the noise.

    Args:
      pressures: [L] sweep values, sorted ascending, L >= 2.
      values: [L, S] metric per level and seed.
      control: [L, S] a control arm (paired by seed index), [S] a per-seed baseline
        (e.g. ``values[0]``, the lowest pressure), or a scalar.
      key: PRNG key (bootstrap resamples and, above 16 seeds, the Monte Carlo patterns).
      num_bootstrap: resamples of the seeds for the intervals (static).
      alpha: one-sided test level (may be traced, e.g. vmapped per test).
      ci_level: two-sided level of the intervals (may be traced).
      num_mc: Monte Carlo sign patterns of the point tests above 16 seeds (static).
      num_resample_patterns: Monte Carlo patterns of each resample above 10 seeds (static).
      correction: ``"sequential"`` or ``"none"`` (static).

    Returns:
      ``EmergenceResult`` (a NamedTuple of arrays, jit/vmap-friendly).
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}; got {correction!r}")
    if num_bootstrap < 1 or num_mc < 1 or num_resample_patterns < 1:
        raise ValueError("num_bootstrap, num_mc and num_resample_patterns must be >= 1")
    values = jnp.asarray(values)
    dtype = jnp.promote_types(values.dtype, jnp.float32)
    values = values.astype(dtype)
    if values.ndim != 2 or values.shape[0] < 2 or values.shape[1] < 1:
        raise ValueError(f"values must have shape [L, S] with L >= 2; got {values.shape}")
    num_levels, num_seeds = values.shape
    pressures = jnp.asarray(pressures, dtype)
    if pressures.shape != (num_levels,):
        raise ValueError(f"pressures must have shape [{num_levels}]; got {pressures.shape}")
    control = jnp.asarray(control, dtype)
    if control.ndim == 1 and control.shape != (num_seeds,):
        raise ValueError(f"a 1-D control must have shape [S={num_seeds}]; got {control.shape}")
    if control.ndim == 2 and control.shape != values.shape:
        raise ValueError(f"a 2-D control must have shape {values.shape}; got {control.shape}")
    if control.ndim > 2:
        raise ValueError(f"control must be a scalar, [S] or [L, S]; got {control.shape}")
    control = jnp.broadcast_to(control, values.shape)
    alpha = jnp.asarray(alpha, dtype)
    ci_level = jnp.asarray(ci_level, dtype)
    return _emergence(pressures, values, control, key, alpha, ci_level, num_bootstrap, num_mc,
                      num_resample_patterns, correction)


def level_pvalues(values: jax.Array, control: jax.Array, key: jax.Array, *,
                  num_mc: int = 9999, correction: str = "sequential"):
    """The per-level and sequence p-values of ``emergence_onset`` alone (no bootstrap).

    Same patterns as ``emergence_onset`` with the same key, so the p-values agree exactly.
    Returns ``(p_level [L], p_sequence [L], min_p [])``. jit/vmap-friendly.
    """
    values = jnp.asarray(values)
    dtype = jnp.promote_types(values.dtype, jnp.float32)
    diff = values.astype(dtype) - jnp.broadcast_to(jnp.asarray(control, dtype), values.shape)
    num_seeds = values.shape[-1]
    k_mc, _, _ = jax.random.split(key, 3)
    signs, exact = sign_patterns(num_seeds, k_mc, num_mc)
    p, _ = sign_flip_pvalues(diff, signs, exact)
    min_p = (2.0**-num_seeds) if exact else 1.0 / (num_mc + 1.0)
    return p, _sequence(p, correction), jnp.asarray(min_p, dtype)
