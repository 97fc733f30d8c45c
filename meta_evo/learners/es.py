"""``es``: a hand-designed inner evolution strategy whose settings are meta-parameters.

theta = [phi_0 (D_phi), step, log_noise]. Each update draws P antithetic candidates
``phi + noise * eps_i``, ranks their returns (centered ranks, NaN worst) and moves

    phi <- phi + step * (1 / (P * noise)) * sum_i rank_i * (noise * eps_i)

i.e. OpenAI-ES's gradient estimate times a plain, signed step size. At meta-init step = 0:
no learning. A negative step (descending the given reward) is a legitimate evolved outcome.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from .base import Learner, antithetic_noise, centered_ranks

STEP_CLIP = 10.0


@struct.dataclass
class ESState:
    phi: jax.Array  # [D_phi]
    eps: jax.Array  # [P, D_phi] the noise of the last ask


class InnerES(Learner):
    name = "es"

    def __init__(self, agent, lifetime: int, candidates: int, init_noise: float = 0.1,
                 phi_init=None):
        super().__init__(agent, lifetime)
        self.num_candidates = int(candidates)
        self.init_noise = float(init_noise)
        self.theta_size = self.phi_size + 2
        self._phi_init = phi_init

    def split(self, theta):
        """``(phi_0 [D], step [], noise [])`` from ``theta``."""
        d = self.phi_size
        step = jnp.clip(theta[d], -STEP_CLIP, STEP_CLIP)
        return theta[:d], step, jnp.exp(jnp.clip(theta[d + 1], -10.0, 3.0))

    def init_theta(self, key):
        phi0 = self._phi_init(key) if self._phi_init is not None else self.agent.init(key)
        return jnp.concatenate([phi0, jnp.array([0.0, jnp.log(self.init_noise)])])

    def init(self, theta):
        phi0, _, _ = self.split(theta)
        return ESState(phi=phi0, eps=jnp.zeros((self.num_candidates, self.phi_size)))

    def ask(self, theta, lstate, key):
        _, _, noise = self.split(theta)
        eps = antithetic_noise(key, self.num_candidates, self.phi_size)
        return lstate.phi + noise * eps

    def tell(self, theta, lstate, candidates, returns, key, k):
        _, step, noise = self.split(theta)
        eps = (candidates - lstate.phi) / noise
        grad = centered_ranks(returns) @ eps / (self.num_candidates * noise)
        return ESState(phi=lstate.phi + step * grad, eps=eps)

    def control_embedding(self, control):
        """The amortized control (theta = phi_0) is this ES with step 0: ``[phi_0, 0, log
        noise]`` keeps ``phi_k = phi_0`` exactly."""
        if getattr(control, "name", "") != "amortized" or control.theta_size != self.phi_size:
            return None
        extra = jnp.array([0.0, jnp.log(self.init_noise)], jnp.float32)

        def embed(thetas):
            thetas = jnp.asarray(thetas, jnp.float32)
            return jnp.concatenate([thetas, jnp.broadcast_to(extra, (thetas.shape[0], 2))],
                                   axis=1)
        return embed

    def describe(self, theta):
        _, step, noise = self.split(theta)
        return {"step": step, "noise": noise}
