"""Optimization power in bits (Yudkowsky) and the share of it done during the lifetime.

``OP = -log2 P_ref[R >= score]``: how improbable a score at least this good is among
reference policies (draws from the agent's initializer).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

_LN2 = math.log(2.0)


@jax.jit
def optimization_power_bits(
    score: jax.Array, reference_scores: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Optimization power of a score against a reference sample, in bits.

    Inside the sample, ``P = (count(ref >= score) + 1) / (n + 1)`` (+1 smoothing), so a
    score at or below every reference gives 0 bits and the sample maximum gives
    ``log2((n + 1) / 2)``. Beyond the sample (count == 0) the probability is extrapolated
    with a Gaussian fitted to the reference (sample mean, std with ddof=1), computed in log
    space so it stays finite far into the tail: ``-log_ndtr(-(score - mean) / std) / ln 2``.
    That extrapolation is floored at ``log2(n + 1)`` (the count estimate with count 0), so
    bits never decrease as the score grows. A reference with zero spread gives +inf bits
    for any score above it (such a score has probability 0 under the reference).

    Args:
      score: scalar (or any shape; each entry is scored against the same reference).
      reference_scores: [n] scores of the reference policies (n static).

    Returns:
      ``(bits, used_tail)``: float32 bits >= 0 and a bool that is True where the Gaussian
      tail fit was used, both of ``score``'s shape. A NaN score gives NaN bits.
    """
    ref = jnp.asarray(reference_scores)
    if ref.ndim != 1 or ref.shape[0] < 1:
        raise ValueError(f"reference_scores must have shape [n], n >= 1; got {ref.shape}")
    dtype = jnp.promote_types(ref.dtype, jnp.float32)
    ref = ref.astype(dtype)
    score = jnp.asarray(score, dtype)
    n = ref.shape[0]

    count = jnp.sum(ref >= score[..., None], axis=-1)
    bits_inside = -jnp.log2((count + 1).astype(dtype) / (n + 1.0))
    # Exactly 0 when every reference is at least as good (XLA turns the division into a
    # multiplication by a rounded reciprocal, which would leave a few 1e-8 bits).
    bits_inside = jnp.where(count >= n, 0.0, jnp.maximum(bits_inside, 0.0))

    mean = jnp.mean(ref)
    std = jnp.std(ref, ddof=1 if n > 1 else 0)
    safe_std = jnp.where(std > 0, std, 1.0)
    z = jnp.where(std > 0, (score - mean) / safe_std, jnp.where(score > mean, jnp.inf, 0.0))
    bits_tail = -log_ndtr(-z) / _LN2
    bits_tail = jnp.maximum(bits_tail, math.log2(n + 1.0))

    used_tail = count == 0
    bits = jnp.where(used_tail, bits_tail, bits_inside)
    bits = jnp.where(jnp.isnan(score), jnp.nan, bits)
    return bits.astype(dtype), used_tail


@functools.partial(jax.jit, static_argnames="eps")
def online_share(op_final: jax.Array, op_initial: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Share of the optimization power done during the lifetime, not stored in phi_0.

    ``(OP(phi_K) - OP(phi_0)) / OP(phi_K)``, computed as ``1 - OP(phi_0) / OP(phi_K)``.

    Not clipped. With bits >= 0 (as ``optimization_power_bits`` returns) it is at most 1
    (1 = all of it was found online, 0 = the lifetime added nothing). It is negative when
    the lifetime lost power (phi_K scores worse than phi_0), down to -inf in principle.
    Defined as 0 where ``OP(phi_K) <= eps`` (no power to share out). ``OP(phi_K) = inf``
    with a finite ``OP(phi_0)`` gives 1; both infinite gives NaN.

    Args:
      op_final: [...] OP(phi_K) in bits.
      op_initial: [...] OP(phi_0) in bits (broadcasts with op_final).

    Returns:
      [...] float share.
    """
    op_final = jnp.asarray(op_final)
    op_initial = jnp.asarray(op_initial)
    dtype = jnp.promote_types(jnp.result_type(op_final, op_initial), jnp.float32)
    op_final = op_final.astype(dtype)
    op_initial = op_initial.astype(dtype)
    positive = op_final > eps
    safe = jnp.where(positive, op_final, 1.0)
    return jnp.where(positive, 1.0 - op_initial / safe, jnp.zeros((), dtype))
