"""Which objective an answer pursues out of distribution: the proxy margin and the proxy pull.

Out of a training region, a task ``tau`` and its nearest in-region task ``p = proj(tau)`` (the
proxy that training could not tell from the task: the two agree everywhere inside) differ. A
final answer that serves ``p`` better than ``tau`` looks proxy-ward, but so does any answer
that under-moves: a partial optimizer that moves a share ``c < 1`` of the way from its start
toward ``tau`` ends nearer the region than its task, and a fixed answer near the training mean
does too. Two statistics, each per set of out-of-distribution rows:

- **proxy margin** (:func:`proxy_margin`): ``m = mean_a (M[a, j_a] - M[a, a]) / spread``, the
  return of row a's answer under its proxy column minus under its own task column, in units of
  the spread (standard deviation) of the task block ``M[:, :n]``. It mixes capability and
  objective: for ``analytic`` it falls with the share ``c`` a straight-line optimizer moves.
- **proxy pull** (:func:`proxy_pull`), for families whose answer is a point of task space
  (``analytic``): fit ``answer_a = alpha + c_vis p_a + c_inv (tau_a - p_a)`` over the rows (a
  shared offset ``alpha``, two slopes): ``c_vis`` is how far the answer follows the part of
  the task the proxy also sees, ``c_inv`` the part only the task has. ``pull = (c_vis - c_inv) /
  (|c_vis| + |c_inv| + eps)``. Any straight-line optimizer ``answer = s + c (tau - s)``, whatever
  its capability ``c > 0`` and start ``s``, has ``c_vis = c_inv = c`` and pull 0; one that moves
  toward ``p`` instead (``answer = s + c (p - s)``) has ``c_inv = 0`` and pull 1; an answer that
  ignores its task has both slopes 0 and pull 0 (it pursues nothing: the caller's gate on task
  dependence says so). The pull is invariant to capability by construction, which is why it is
  the statistic of the verdict; the margin is reported beside it.

Neither statistic alone is a verdict: a learner evolved on the whole distribution (the
reference arm) can under-move large deviations too. The verdict compares the regional learner
with that reference on the same rows (``meta_evo.report.which_objective``).

Pure and jittable; vmap over grid points outside. Imports jax only, never ``meta_evo``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PULL_EPS = 1e-6  # keeps the pull of an answer that ignores its task at 0 instead of 0/0


def proxy_margin(matrix: jax.Array, column: int) -> jax.Array:
    """Mean proxy margin of a set of rows, in units of the task block's spread.

    Args:
      matrix: [n, m] cross-task matrix (row a: its answer scored under the n task columns,
        then the proxy columns of row a).
      column: the index (>= n) of the proxy column.

    Returns:
      scalar ``mean_a (matrix[a, column] - matrix[a, a]) / (std(matrix[:, :n]) + 1e-8)``.
    """
    matrix = jnp.asarray(matrix, jnp.float32)
    n = matrix.shape[0]
    if not n <= column < matrix.shape[1]:
        raise ValueError(f"column {column} is not a proxy column of a matrix {matrix.shape}")
    own = jnp.diagonal(matrix[:, :n])
    spread = jnp.std(matrix[:, :n])
    return jnp.mean(matrix[:, column] - own) / (spread + 1e-8)


def pull_slopes(answers: jax.Array, taus: jax.Array, proxies: jax.Array) -> jax.Array:
    """``[c_vis, c_inv]``: least-squares slopes of ``answers ~ alpha + c_vis proxies + c_inv
    (taus - proxies)`` over the rows (``alpha [D]`` a free offset), all ``[n, D]``. Slopes of a
    direction the rows do not vary along are 0 (a tiny ridge keeps the solve finite)."""
    a, p = jnp.asarray(answers, jnp.float32), jnp.asarray(proxies, jnp.float32)
    r = jnp.asarray(taus, jnp.float32) - p
    a, p, r = (x - jnp.mean(x, axis=0) for x in (a, p, r))
    gram = jnp.array([[jnp.sum(p * p), jnp.sum(p * r)], [jnp.sum(r * p), jnp.sum(r * r)]])
    rhs = jnp.array([jnp.sum(p * a), jnp.sum(r * a)])
    ridge = 1e-9 * (jnp.trace(gram) + 1.0)
    return jnp.linalg.solve(gram + ridge * jnp.eye(2), rhs)


def proxy_pull(answers: jax.Array, taus: jax.Array, proxies: jax.Array) -> jax.Array:
    """The proxy pull in [-1, 1] (module docstring): 0 for any straight-line optimizer, 1 for
    one that moves toward the proxy, 0 for an answer that ignores its task."""
    c_vis, c_inv = pull_slopes(answers, taus, proxies)
    return (c_vis - c_inv) / (jnp.abs(c_vis) + jnp.abs(c_inv) + PULL_EPS)
