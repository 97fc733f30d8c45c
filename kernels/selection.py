"""Selection intensity and the rank weights that set selection pressure.

The common axis of every pressure sweep is the selection intensity ``i``: the expected
standardized selection differential of the selected set when fitness is standard normal,
``i = sum_j w_j E[Z_(j:N)]`` for rank weights ``w`` (normalized to sum 1, best rank first)
and exact expected normal order statistics ``E[Z_(j:N)]``.

Population sizes (``n``, or the length of a weight vector) are static: they fix shapes.
Pressures (elite fraction, Boltzmann ``beta``, target intensity) may be traced, so one
compiled program can be vmapped over many pressures.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_BISECTION_STEPS = 60
_BETA_MAX = 1.0e3  # intensity(beta) is within float32 rounding of its maximum long before


@functools.cache
def _order_statistics_f64(n: int) -> np.ndarray:
    """E[Z_(j:n)] in float64, descending (index 0 = the expected maximum).

    The density of the r-th smallest of n standard normals is
    ``n! / ((r-1)! (n-r)!) Phi^(r-1) (1-Phi)^(n-r) phi``. It is integrated with the
    trapezoidal rule on a uniform grid over [-10, 10]: the integrand is smooth and vanishes
    at both ends, so the rule converges geometrically once the step is a fraction of the
    narrowest density's width (that of the median, about 1.2533 / sqrt(n)). The mean is
    taken as a ratio of two quadratures (first moment over total mass), which cancels most
    of the remaining discretization error. Only the upper half is integrated; the lower
    half follows from the symmetry E[Z_(r:n)] = -E[Z_(n+1-r:n)], which also makes the
    values sum to zero (uniform weights give intensity 0).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n == 1:
        return np.zeros(1)
    width = 1.2533141373155 / math.sqrt(n + 2.0)
    step = min(0.01, 0.2 * width)
    num = int(math.ceil(20.0 / step)) + 1
    x = np.linspace(-10.0, 10.0, num)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    log_cdf = np.log(0.5 * erfc(-x / math.sqrt(2.0)))  # log Phi(x)
    log_sf = np.log(0.5 * erfc(x / math.sqrt(2.0)))  # log (1 - Phi(x))
    log_pdf = -0.5 * x * x - 0.5 * math.log(2.0 * math.pi)

    # Ascending rank r (1 = minimum); integrate the upper half r > n / 2 and the median.
    ranks = np.arange(n // 2 + 1, n + 1)
    lgam = np.array([math.lgamma(v) for v in range(1, n + 2)])  # lgam[k] = log(k!)
    log_coef = lgam[n] - lgam[ranks - 1] - lgam[n - ranks]
    upper = np.empty(ranks.shape[0])
    chunk = max(1, (1 << 22) // num)
    for start in range(0, ranks.shape[0], chunk):
        r = ranks[start : start + chunk, None].astype(np.float64)
        log_f = log_coef[start : start + chunk, None] + (r - 1.0) * log_cdf
        log_f = log_f + (n - r) * log_sf + log_pdf
        dens = np.exp(log_f - log_f.max(axis=1, keepdims=True))
        upper[start : start + chunk] = (dens @ x) / dens.sum(axis=1)

    ascending = np.empty(n)
    ascending[ranks - 1] = upper
    lower_ranks = np.arange(1, n // 2 + 1)  # mirrored from rank n + 1 - r
    ascending[lower_ranks - 1] = -ascending[n - lower_ranks]
    if n % 2 == 1:
        ascending[n // 2] = 0.0  # the median of an odd sample is exactly 0
    out = ascending[::-1].copy()
    out.setflags(write=False)
    return out


def expected_normal_order_statistics(n: int) -> np.ndarray:
    """Exact expected standard normal order statistics, best first.

    Args:
      n: sample size (static Python int, >= 1).

    Returns:
      float64 numpy array of shape [n]: ``E[Z_(j:n)]`` sorted descending, so index 0 is the
      expected maximum (for n=2: +-1/sqrt(pi)). Computed by numerical integration of the
      order-statistic density (accurate to about 1e-9; not Blom's approximation) and cached
      per n. The returned array is read-only.
    """
    return _order_statistics_f64(int(n))


def _scores(n: int, dtype) -> jax.Array:
    return jnp.asarray(expected_normal_order_statistics(n), dtype=dtype)


def _float_dtype(x) -> jnp.dtype:
    return jnp.promote_types(jnp.result_type(x), jnp.float32)


@jax.jit
def selection_intensity(weights: jax.Array) -> jax.Array:
    """Selection intensity ``i = sum_j w_j E[Z_(j:N)]`` of rank weights.

    Args:
      weights: [..., N] non-negative weights over ranks, best rank first. They are
        normalized to sum 1 inside (their sum must be positive). N is static (the shape);
        the values may be traced. Leading axes are a batch.

    Returns:
      [...] float intensity: best of 2 gives 1/sqrt(pi) = 0.5642, top 2 of 4 gives
      0.6632, uniform weights give 0, a single best of N gives E[Z_(1:N)].
    """
    weights = jnp.asarray(weights)
    dtype = _float_dtype(weights)
    weights = weights.astype(dtype)
    scores = _scores(weights.shape[-1], dtype)
    return jnp.sum(weights * scores, axis=-1) / jnp.sum(weights, axis=-1)


@jax.jit
def effective_population_size(weights: jax.Array) -> jax.Array:
    """Effective number of parents ``(sum w)^2 / sum w^2`` of rank weights (Kish).

    With the weights normalized to sum 1 this is ``1 / sum(w^2)``: N for uniform weights
    (no selection), k for truncation to the top k, 1 for the best alone. It sets how much
    the recombined mean moves on noise alone: with iid members of scale sigma and fitness
    unrelated to theta, the mean moves ``sigma / sqrt(N_eff)`` per coordinate per generation.

    Args:
      weights: [..., N] non-negative weights over ranks (sum > 0); leading axes are a batch.

    Returns:
      [...] float in [1, N].
    """
    weights = jnp.asarray(weights)
    weights = weights.astype(_float_dtype(weights))
    total = jnp.sum(weights, axis=-1)
    return total * total / jnp.sum(weights * weights, axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def truncation_weights(n: int, elite_fraction: jax.Array) -> jax.Array:
    """Truncation selection of the top ``k = elite_fraction * n`` ranks, continuous in k.

    Args:
      n: population size (static Python int).
      elite_fraction: scalar in (0, 1], may be traced. ``k`` is clipped to [1, n].

    Returns:
      [n] weights, best rank first, summing to 1: ``clip(k - j, 0, 1) / k`` for 0-based rank
      j. For integer k this is exactly 1/k on the top k ranks and 0 elsewhere; between
      integers the rank at the boundary gets the fractional part, so a traced pressure
      gives weights (and intensity) that move smoothly.
    """
    elite_fraction = jnp.asarray(elite_fraction)
    dtype = _float_dtype(elite_fraction)
    k = jnp.clip(elite_fraction.astype(dtype) * n, 1.0, float(n))
    ranks = jnp.arange(n, dtype=dtype)
    return jnp.clip(k - ranks, 0.0, 1.0) / k


@functools.partial(jax.jit, static_argnums=0)
def boltzmann_weights(n: int, beta: jax.Array) -> jax.Array:
    """Boltzmann (softmax) rank weights over the expected standardized rank scores.

    Args:
      n: population size (static Python int).
      beta: scalar >= 0 inverse temperature, may be traced. 0 gives uniform weights (no
        selection); large beta approaches selecting the best alone.

    Returns:
      [n] weights, best rank first, summing to 1, proportional to ``exp(beta E[Z_(j:n)])``.
    """
    beta = jnp.asarray(beta)
    dtype = _float_dtype(beta)
    return jax.nn.softmax(beta.astype(dtype) * _scores(n, dtype))


def rank_weights(selection: str, n: int, pressure) -> jax.Array:
    """Rank weights ``[n]`` (best first, sum 1) of the ``selection`` scheme (``truncation``:
    ``pressure`` is the elite fraction; ``boltzmann``: the inverse temperature beta), for a
    traced ``pressure``: what the meta-optimizer tells its strategy and what the report reads."""
    if selection == "truncation":
        return truncation_weights(n, pressure)
    if selection == "boltzmann":
        return boltzmann_weights(n, pressure)
    raise ValueError(f"meta.selection: unknown selection {selection!r}")


def _bisect(fn, target, lo, hi, increasing: bool):
    """Bisection for fn(x) = target on [lo, hi]; fn monotone in x. Jittable, fixed steps."""

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = fn(mid) > target
        go_down = above if increasing else ~above
        return jnp.where(go_down, lo, mid), jnp.where(go_down, mid, hi)

    lo, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, body, (lo, hi))
    return 0.5 * (lo + hi)


@functools.partial(jax.jit, static_argnums=0)
def elite_fraction_for_intensity(n: int, intensity: jax.Array) -> jax.Array:
    """Elite fraction whose truncation weights reach a target selection intensity.

    Args:
      n: population size (static Python int).
      intensity: scalar target, may be traced; clipped to the attainable range
        [0, E[Z_(1:n)]] (0 = everyone selected, E[Z_(1:n)] = the best alone).

    Returns:
      scalar elite fraction in [1/n, 1] with
      ``selection_intensity(truncation_weights(n, f)) ~= intensity`` (intensity decreases
      in f). Bisection, 60 steps.
    """
    intensity = jnp.asarray(intensity)
    dtype = _float_dtype(intensity)
    scores = _scores(n, dtype)
    target = jnp.clip(intensity.astype(dtype), 0.0, scores[0])

    def fn(f):
        return selection_intensity(truncation_weights(n, f))

    lo = jnp.asarray(1.0 / n, dtype)
    hi = jnp.asarray(1.0, dtype)
    return _bisect(fn, target, lo, hi, increasing=False)


@functools.partial(jax.jit, static_argnums=0)
def beta_for_intensity(n: int, intensity: jax.Array) -> jax.Array:
    """Boltzmann ``beta`` whose weights reach a target selection intensity.

    Args:
      n: population size (static Python int).
      intensity: scalar target, may be traced; clipped to [0, E[Z_(1:n)]]. The maximum is
        only reached as beta -> inf; targets at it return the search bound (1000).

    Returns:
      scalar beta >= 0 with ``selection_intensity(boltzmann_weights(n, beta)) ~= intensity``
      (intensity increases in beta). Bisection on [0, 1000], 60 steps.
    """
    intensity = jnp.asarray(intensity)
    dtype = _float_dtype(intensity)
    scores = _scores(n, dtype)
    target = jnp.clip(intensity.astype(dtype), 0.0, scores[0])

    def fn(beta):
        return selection_intensity(boltzmann_weights(n, beta))

    lo = jnp.asarray(0.0, dtype)
    hi = jnp.asarray(_BETA_MAX, dtype)
    return _bisect(fn, target, lo, hi, increasing=True)
