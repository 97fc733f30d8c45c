"""Which objective a learner optimizes: lifetime gain, cross-task matrix, update alignment.

The cross-task matrix is ``M[a, b] = R_{tau_b}(phi_K^(a))``: run the lifetime on task a,
score the result on task b. Its first n columns are the n tasks (rows), any further
columns are proxy objectives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _as_float(x) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _check_matrix(matrix: jax.Array) -> tuple[int, int]:
    if matrix.ndim != 2:
        raise ValueError(f"matrix must have shape [n, m]; got {matrix.shape}")
    n, m = matrix.shape
    if n < 2 or m < n:
        raise ValueError(f"matrix must have n >= 2 rows and m >= n columns; got {matrix.shape}")
    return n, m


@jax.jit
def lifetime_gain(curve: jax.Array) -> jax.Array:
    """Lifetime gain ``G = R(phi_K) - R(phi_0)``.

    Args:
      curve: [..., K+1] returns R(phi_k) for k = 0..K along the last axis.

    Returns:
      [...] gain per curve. With a task axis among the leading ones, the caller averages.
    """
    curve = _as_float(curve)
    return curve[..., -1] - curve[..., 0]


@jax.jit
def objective_sensitivity(matrix: jax.Array) -> jax.Array:
    """Objective sensitivity ``S``: how much a lifetime's result favours its own task.

    ``S = (mean(diag T) - mean(offdiag T)) / (std(T) + 1e-8)`` with ``T = M[:, :n]`` (proxy
    columns are ignored) and ``std`` over all n*n entries of T. A learner that ignores its
    reward has identical rows and gets exactly 0: the numerator is computed after
    subtracting the first row from T, which leaves it unchanged in exact arithmetic and
    makes identical rows exactly zero in floating point.

    Args:
      matrix: [n, m] cross-task matrix, n >= 2 tasks, m >= n (static shape).

    Returns:
      scalar S (unitless; 0 = no sensitivity, > 0 = results serve their own task).
    """
    matrix = _as_float(matrix)
    n, _ = _check_matrix(matrix)
    tasks = matrix[:, :n]
    centered = tasks - tasks[:1, :]
    diag = jnp.diagonal(centered)
    mean_diag = jnp.mean(diag)
    mean_off = (jnp.sum(centered) - jnp.sum(diag)) / (n * (n - 1))
    return (mean_diag - mean_off) / (jnp.std(tasks) + 1e-8)


def _argmax_rows(matrix: jax.Array) -> jax.Array:
    # NaN ranks worst; ties go to the lowest column index.
    clean = jnp.where(jnp.isnan(matrix), -jnp.inf, matrix)
    return jnp.argmax(clean, axis=-1).astype(jnp.int32)


@jax.jit
def behavioral_objective(matrix: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Behavioral objective: which task each row's result serves best.

    Only the n task columns compete (the first n; they are the tasks of the rows), so a
    learner that ignores its task scores exactly 1/n in expectation and the accuracy is
    comparable across families with and without proxy columns. Whether a proxy column beats
    every task is ``proxy_share``'s question.

    Args:
      matrix: [n, m] cross-task matrix, m >= n; columns n..m-1 (proxy objectives) are ignored.

    Returns:
      ``(argmax_per_row, accuracy)``: [n] int32 ``argmax_{b < n} M[a, b]`` (NaN entries rank
      worst, ties go to the lowest index) and a scalar float accuracy, the fraction of rows
      whose argmax is their own task (chance = 1/n).
    """
    matrix = _as_float(matrix)
    n, _ = _check_matrix(matrix)
    best = _argmax_rows(matrix[:, :n])
    accuracy = jnp.mean((best == jnp.arange(n, dtype=jnp.int32)).astype(matrix.dtype))
    return best, accuracy


@jax.jit
def proxy_share(matrix: jax.Array) -> jax.Array:
    """Fraction of rows whose best column over all m columns is a proxy objective (>= n).

    Args:
      matrix: [n, m] cross-task matrix (m == n gives 0).

    Returns:
      scalar float in [0, 1]; 1 = every lifetime pursues a proxy (pseudo-alignment).
    """
    matrix = _as_float(matrix)
    n, _ = _check_matrix(matrix)
    return jnp.mean((_argmax_rows(matrix) >= n).astype(matrix.dtype))


@jax.jit
def update_alignment(step: jax.Array, reference_gradient: jax.Array) -> jax.Array:
    """Cosine between a learner's step and a reference gradient estimate.

    Args:
      step: [..., D] the learner's update ``phi_{k+1} - phi_k``.
      reference_gradient: [..., D] e.g. an ES estimate of grad R_tau at phi_k (broadcasts).

    Returns:
      [...] cosine in [-1, 1]: 1 = the step ascends the given reward, -1 = descends it,
      0 when either vector is zero.
    """
    step = _as_float(step)
    ref = _as_float(reference_gradient)

    def unit(v):
        # Rescale by the largest entry first so huge or tiny vectors neither overflow
        # nor underflow in the norm.
        scale = jnp.max(jnp.abs(v), axis=-1, keepdims=True)
        v = v / jnp.where(scale > 0, scale, 1.0)
        norm = jnp.linalg.norm(v, axis=-1, keepdims=True)
        return jnp.where(norm > 0, v / jnp.where(norm > 0, norm, 1.0), 0.0)

    return jnp.clip(jnp.sum(unit(step) * unit(ref), axis=-1), -1.0, 1.0)
