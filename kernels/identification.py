"""Which algorithm a learner runs: its answer against Bayes estimators of its task
(Raventós et al. 2023).

A learner's lifetime is a history of queries ``phis [K, D]`` and the returns it was shown
``returns [K]``. Two Bayes estimators read the same history:

- **pool-Bayes** (the dMMSE of Raventós et al.): the posterior mean over the tasks the learner
  was trained on (candidates ``cands [C, D_tau]``, uniform prior weights over the first d pool
  tasks). A task identifier that has learned its training pool answers this.
- **prior-Bayes**: the posterior mean under the family's full task prior (a large prior sample
  as candidates, or a closed form where the family has one: :func:`analytic_posterior_mean`).
  A general learner answers this.

**Likelihood.** The returns are modelled as the candidate's predicted returns ``pred [C, K]``
(the caller computes them with the family's reward) plus independent Gaussian noise of scale
``noise``:

    log L_c = -sum_k (returns_k - pred[c, k])^2 / (2 noise^2)        (centered=False)

With ``centered=True`` the level of the returns carries no information: the model has an extra
additive offset common to all K returns with a flat prior, and integrating it out leaves the
residuals centered over k,

    log L_c = -sum_k (u_ck - mean_j u_cj)^2 / (2 noise^2),   u_ck = returns_k - pred[c, k],

which is exactly the likelihood of the K-1 contrasts ``returns_k - returns_0`` with their exact
covariance ``noise^2 (I + 1 1^T)`` (the shared ``returns_0`` correlates them). This is the
likelihood under which the analytic closed form below is the exact posterior mean.

``noise`` is a modelling scale, not a property of the data (the ``analytic`` returns are exact):
as ``noise -> 0`` the posterior concentrates on the best-fitting candidate (pool-Bayes becomes
the maximum-likelihood pool task) and the analytic closed form becomes least squares.

Everything here is pure, jittable and vmappable (over rows, thetas, or noise scales).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp


def log_likelihood(returns: jax.Array, pred: jax.Array, noise, centered: bool = False
                   ) -> jax.Array:
    """Gaussian log-likelihood (up to a constant) of the observed returns under each candidate.

    Args:
      returns: [K] the returns the learner was shown.
      pred: [C, K] each candidate's predicted return of each evaluated point.
      noise: [] observation-noise scale, > 0.
      centered: (static) the offset-invariant likelihood of the module docstring (residuals
        centered over k; the likelihood of the K-1 contrasts with their exact covariance).

    Returns:
      [C] ``-sum_k r_ck^2 / (2 noise^2)`` with ``r_ck`` the (centered) residuals.
    """
    returns = jnp.asarray(returns)
    pred = jnp.asarray(pred)
    dtype = jnp.promote_types(jnp.result_type(returns, pred), jnp.float32)
    resid = returns.astype(dtype)[None, :] - pred.astype(dtype)  # [C, K]
    if centered:
        resid = resid - jnp.mean(resid, axis=-1, keepdims=True)
    noise = jnp.asarray(noise, dtype)
    return -jnp.sum(jnp.square(resid), axis=-1) / (2.0 * jnp.square(noise))


def posterior_weights(weights: jax.Array, pred: jax.Array, returns: jax.Array, noise,
                      centered: bool = False) -> jax.Array:
    """Posterior probabilities of the candidates, ``[C]``, summing to 1.

    ``p_c ∝ w_c L_c``, normalized with logsumexp (stable for log-likelihoods of any size).
    Candidates with ``w_c <= 0`` get probability 0 (a mask: the pool tasks the learner was not
    trained on). All weights 0 gives NaN. Ties in likelihood share the mass by prior weight.

    Args:
      weights: [C] prior weights, >= 0 (need not sum to 1).
      pred: [C, K] predicted returns; returns: [K]; noise, centered: as
        :func:`log_likelihood`.
    """
    ll = log_likelihood(returns, pred, noise, centered)
    w = jnp.asarray(weights, ll.dtype)
    pos = w > 0
    logp = jnp.where(pos, ll + jnp.log(jnp.where(pos, w, 1.0)), -jnp.inf)
    norm = logsumexp(logp)
    return jnp.where(jnp.isfinite(norm), jnp.exp(logp - norm), jnp.nan)


def posterior_mean(cands: jax.Array, weights: jax.Array, pred: jax.Array, returns: jax.Array,
                   noise, centered: bool = False) -> jax.Array:
    """Posterior mean task over a finite candidate set: ``sum_c p_c cands[c]``, ``[D_tau]``.

    With two candidates a, b of equal weight and log-likelihoods la, lb this is
    ``(a e^la + b e^lb) / (e^la + e^lb)``.

    Args:
      cands: [C, D_tau] candidate tasks (the training pool, or a sample of the prior).
      weights: [C] prior weights >= 0 (0 masks a candidate out).
      pred: [C, K] the predicted return of each evaluated point under each candidate.
      returns: [K] the returns the learner was shown.
      noise: [] observation-noise scale, > 0.
      centered: (static) see :func:`log_likelihood`.

    Returns:
      [D_tau]; NaN when no candidate has a positive weight.
    """
    p = posterior_weights(weights, pred, returns, noise, centered)
    cands = jnp.asarray(cands)
    return jnp.einsum("c,cd->d", p, cands.astype(p.dtype))


def analytic_posterior_mean(phis: jax.Array, returns: jax.Array, scale, noise) -> jax.Array:
    """Prior-Bayes posterior mean on the ``analytic`` family, in closed form: ``[D]``.

    ``R_tau(phi) = -|phi - tau|^2`` with ``tau ~ N(0, scale^2 I)``. Differences of returns are
    linear in tau: ``R_k - R_0 + |phi_k|^2 - |phi_0|^2 = 2 (phi_k - phi_0) . tau`` (the
    ``|tau|^2`` term cancels). The K-1 differences share ``R_0``, so their noise covariance is
    ``noise^2 (I + 1 1^T)``; that generalized least squares is the same as regressing the
    centered values ``y_k = (R_k + |phi_k|^2) - mean_j (R_j + |phi_j|^2)`` on the centered rows
    ``x_k = 2 (phi_k - mean_j phi_j)`` with independent noise ``noise^2``. With the Gaussian
    prior the posterior is Gaussian, with mean (a ridge regression)

        (X^T X + (noise^2 / scale^2) I)^{-1} X^T y.

    This is the exact posterior mean of :func:`posterior_mean` with ``centered=True`` (the
    likelihood of the contrasts; the level of the returns, which would inform ``|tau|^2`` alone,
    is not used) and an infinite sample of the prior. As ``noise -> 0`` it tends to the least
    squares solution where the K points span the task space (K - 1 >= D independent steps),
    and to the minimum-norm one in the span of the steps otherwise (the prior mean, 0, in the
    directions never explored).

    Args:
      phis: [K, D] the evaluated points (K >= 1; K = 1 gives the prior mean 0).
      returns: [K] their returns.
      scale: [] prior standard deviation of each task coordinate, > 0.
      noise: [] observation-noise scale, > 0.

    Returns:
      [D] the posterior mean task.
    """
    phis = jnp.asarray(phis)
    returns = jnp.asarray(returns)
    dtype = jnp.promote_types(jnp.result_type(phis, returns), jnp.float32)
    phis, returns = phis.astype(dtype), returns.astype(dtype)
    y = returns + jnp.sum(jnp.square(phis), axis=-1)
    y = y - jnp.mean(y)
    x = 2.0 * (phis - jnp.mean(phis, axis=0))
    ratio = jnp.square(jnp.asarray(noise, dtype) / jnp.asarray(scale, dtype))
    gram = x.T @ x + ratio * jnp.eye(phis.shape[-1], dtype=dtype)
    return jnp.linalg.solve(gram, x.T @ y)


def analytic_predictions(phis: jax.Array, cands: jax.Array) -> jax.Array:
    """``pred [C, K]`` of the ``analytic`` family: ``-|phi_k - cands_c|^2`` (a convenience for
    tests and callers without the family's evaluator)."""
    phis, cands = jnp.asarray(phis), jnp.asarray(cands)
    return -jnp.sum(jnp.square(phis[None, :, :] - cands[:, None, :]), axis=-1)
