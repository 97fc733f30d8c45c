"""``learned_es``: an update rule with a small network, in the spirit of LES (Lange et al.,
ICLR 2023).

For each of P antithetic candidates a shared MLP maps fitness features
``[centered rank, z-score of return, lifetime fraction k/K]`` to two outputs ``(u_i, v_i)``:
a recombination weight (which carries the step size: it is not normalized) and a log noise
update. Then

    phi       <- phi + noise * sum_i u_i * eps_i / P
    log noise <- log noise + sum_i v_i * (eps_i^2 - 1) / P     (per dimension, mean over dims)

theta = [phi_0 (D_phi), log_noise_0, network weights]. The output layer starts at zero, so at
meta-init u = v = 0: no learning.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from .base import Learner, antithetic_noise, centered_ranks

NUM_FEATURES = 3


@struct.dataclass
class LESState:
    phi: jax.Array  # [D_phi]
    log_noise: jax.Array  # []


class LearnedES(Learner):
    name = "learned_es"

    def __init__(self, agent, lifetime: int, candidates: int, init_noise: float = 0.1,
                 hidden: int = 8, phi_init=None):
        super().__init__(agent, lifetime)
        self.num_candidates = int(candidates)
        self.init_noise = float(init_noise)
        self.hidden = int(hidden)
        h = self.hidden
        self.net_shapes = [(NUM_FEATURES, h), (h,), (h, 2), (2,)]
        self.net_size = sum(int(jnp.prod(jnp.array(s))) for s in self.net_shapes)
        self.theta_size = self.phi_size + 1 + self.net_size
        self._phi_init = phi_init

    def unpack(self, theta):
        d = self.phi_size
        phi0, log_noise = theta[:d], theta[d]
        flat, out, i = theta[d + 1:], [], 0
        for s in self.net_shapes:
            n = 1
            for x in s:
                n *= x
            out.append(flat[i:i + n].reshape(s))
            i += n
        return phi0, log_noise, out

    def init_theta(self, key):
        k1, k2 = jax.random.split(key)
        phi0 = self._phi_init(k1) if self._phi_init is not None else self.agent.init(k1)
        h = self.hidden
        w1 = jax.random.normal(k2, (NUM_FEATURES * h,)) / jnp.sqrt(NUM_FEATURES)
        zeros = jnp.zeros(h + h * 2 + 2)  # b1, w2 (zero: learning off), b2
        return jnp.concatenate([phi0, jnp.array([jnp.log(self.init_noise)]), w1, zeros])

    def init(self, theta):
        phi0, log_noise, _ = self.unpack(theta)
        return LESState(phi=phi0, log_noise=jnp.clip(log_noise, -10.0, 3.0))

    def ask(self, theta, lstate, key):
        eps = antithetic_noise(key, self.num_candidates, self.phi_size)
        return lstate.phi + jnp.exp(lstate.log_noise) * eps

    def outputs(self, theta, returns, k):
        """Per-candidate network outputs ``[P, 2]`` from the fitness features."""
        _, _, (w1, b1, w2, b2) = self.unpack(theta)
        safe = jnp.where(jnp.isfinite(returns), returns, jnp.nan)
        mu, sd = jnp.nanmean(safe), jnp.nanstd(safe)
        z = jnp.where(jnp.isfinite(safe), (safe - mu) / (sd + 1e-8), -3.0)
        frac = jnp.full_like(z, k / jnp.maximum(self.lifetime, 1))
        feats = jnp.stack([centered_ranks(returns), jnp.clip(z, -3.0, 3.0), frac], -1)
        return jnp.tanh(feats @ w1 + b1) @ w2 + b2

    def tell(self, theta, lstate, candidates, returns, key, k):
        noise = jnp.exp(lstate.log_noise)
        eps = (candidates - lstate.phi) / noise
        out = self.outputs(theta, returns, k)
        u, v = out[:, 0], out[:, 1]
        phi = lstate.phi + noise * (u @ eps) / self.num_candidates
        dlog = jnp.mean(v @ (jnp.square(eps) - 1.0)) / self.num_candidates
        return LESState(phi=phi, log_noise=jnp.clip(lstate.log_noise + dlog, -10.0, 3.0))

    def describe(self, theta):
        _, log_noise, _ = self.unpack(theta)
        return {"noise": jnp.exp(log_noise)}
