"""``analytic``: a pure-JAX quadratic whose optimum is the task vector.

R_tau(phi) = -|phi - tau|^2 with phi, tau in R^dim and tau ~ N(0, scale^2 I). No physics: it
serves kernel tests, where every number can be derived by hand. The proxy objective is the mean
task (tau = 0).

Training regions (API in ``tasks.base``):

- ``"halfspace"``: ``tau[0] >= 0``. Inside draws reflect the first coordinate (``|tau_0|``, the
  exact conditional of the Gaussian), outside draws take ``-|tau_0|``. Projection:
  ``tau_0 -> max(tau_0, 0)``. The training mean is about ``(scale * sqrt(2/pi), 0, ...)``.
- ``"shell"`` or ``"shell:r_lo:r_hi"``: ``r_lo <= |tau| <= r_hi`` (relative tolerance 1e-6);
  default ``[0.75, 1.25] * scale * sqrt(dim)`` (about half the mass inside for dim 4; OOD
  tasks lie both nearer the origin and farther out). Draws: a uniform direction and the radius
  from the exact conditional of ``scale * chi_dim`` (inverse CDF by bisection). Projection:
  scale ``tau`` radially into ``[r_lo, r_hi]``. The training mean is about 0 (outside the
  shell: the mean task is then a proxy no training task equals).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from meta_evo import kernels

from .base import TaskFamily


class Analytic(TaskFamily):
    name = "analytic"
    proxy_names = ("mean_task",)
    answer_in_task_space = True  # phi is a point of task space: the optimum phi = tau

    def __init__(self, dim: int = 4, scale: float = 1.0, **_):
        self.task_dim = dim
        self.obs_size = 0
        self.action_size = dim
        self.scale = float(scale)

    def sample_task(self, key):
        return self.scale * jax.random.normal(key, (self.task_dim,))

    def proxy_tasks(self):
        return jnp.zeros((1, self.task_dim))

    def prior_posterior_mean(self, phis, returns, noise):
        """Prior-Bayes in closed form: the ridge regression of
        ``kernels.analytic_posterior_mean`` (prior ``N(0, scale^2 I)``)."""
        return kernels.analytic_posterior_mean(phis, returns, self.scale, noise)

    def make_evaluator(self, agent, episode_length: int):
        def evaluate(phi, tau, key):
            del key
            return -jnp.sum(jnp.square(phi - tau))
        return evaluate

    # --- training regions ----------------------------------------------------------------------
    regions = ("none", "halfspace", "shell")

    def region_defaults(self, name):
        if name == "shell":
            r = self.scale * float(np.sqrt(self.task_dim))
            return (0.75 * r, 1.25 * r)
        return ()

    def check_region_params(self, name, params):
        if name != "shell":
            return super().check_region_params(name, params)
        if len(params) != 2 or not 0.0 <= params[0] < params[1]:
            raise ValueError(f"analytic: region 'shell:r_lo:r_hi' needs 0 <= r_lo < r_hi; "
                             f"got {params}")

    def _in_region(self, tau, name, params):
        if name == "halfspace":
            return tau[0] >= 0
        lo, hi = params
        r = jnp.sqrt(jnp.sum(jnp.square(tau)))
        return (r >= lo * (1 - _TOL)) & (r <= hi * (1 + _TOL))

    def _project(self, tau, name, params):
        if name == "halfspace":
            return tau.at[0].set(jnp.maximum(tau[0], 0))
        lo, hi = params
        r = jnp.sqrt(jnp.sum(jnp.square(tau)))
        e0 = jnp.zeros_like(tau).at[0].set(1)
        direction = jnp.where(r > 0, tau / jnp.where(r > 0, r, 1), e0)
        return direction * jnp.clip(r, lo, hi)

    def _sample_region(self, key, name, params, inside):
        if name == "halfspace":
            tau = self.sample_task(key)
            t0 = jnp.abs(tau[0]) if inside else -jnp.maximum(jnp.abs(tau[0]), _TINY)
            return tau.at[0].set(t0)
        lo, hi = params
        k1, k2 = jax.random.split(key)
        g = jax.random.normal(k1, (self.task_dim,))
        norm = jnp.sqrt(jnp.sum(jnp.square(g)))
        e0 = jnp.zeros_like(g).at[0].set(1)
        direction = jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1), e0)
        a = 0.5 * self.task_dim
        s2 = 2.0 * self.scale ** 2
        # radius CDF F(r) = P(a, r^2 / (2 s^2)) (regularized lower incomplete gamma)
        q_lo = jax.scipy.special.gammainc(a, lo ** 2 / s2)
        q_hi = jax.scipy.special.gammainc(a, hi ** 2 / s2)
        u = jax.random.uniform(k2)
        if inside:
            q = q_lo + u * (q_hi - q_lo)
        else:
            v = u * (q_lo + 1.0 - q_hi)
            q = jnp.where(v < q_lo, v, q_hi + (v - q_lo))
        x = _gamma_quantile(a, q)
        r = self.scale * jnp.sqrt(2.0 * x)
        if inside:
            r = jnp.clip(r, lo, hi)
        else:
            r = jnp.where(v < q_lo, jnp.minimum(r, lo * (1 - 10 * _TOL)),
                          jnp.maximum(r, hi * (1 + 10 * _TOL)))
        return direction * r


_TOL = 1e-6  # relative tolerance of the shell's bounds (projection rounding)
_TINY = 1e-20  # an outside draw of the halfspace keeps tau_0 strictly negative


def _gamma_quantile(a: float, q: jax.Array, iters: int = 64) -> jax.Array:
    """x with P(a, x) = q (regularized lower incomplete gamma), by bisection."""
    hi0 = a + 40.0 * np.sqrt(a) + 40.0

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = jax.scipy.special.gammainc(a, mid) < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.zeros_like(q), jnp.full_like(q, hi0)))
    return 0.5 * (lo + hi)
