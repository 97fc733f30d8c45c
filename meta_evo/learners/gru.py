"""``gru``: a black-box learned optimizer over the agent's ``phi`` (a mesa-optimizer candidate).

A recurrent cell (flax ``GRUCell``) is run once per lifetime step. It sees what happened at the
previous step and proposes what to evaluate next:

    h_0 = 0
    candidates_k = B + W h_k                                   # [P, D_phi], phi_k = candidates_k[0]
    h_{k+1} = GRU(h_k, [candidates_k, feedback(returns_k), k / K])

The input holds, for each of the P candidates, its parameters and two views of its return
(a z-score against the running mean and spread of every return seen so far in this lifetime,
0 before two returns were seen, and ``symlog(r) = sign(r) log(1 + |r|)``), plus the lifetime
fraction ``k / K``. The proposal ``phi_k`` (the learner's behaviour at step k, which the lifetime
curve scores) is the first candidate; with ``P > 1`` the others are extra queries it may use.

``theta`` is the flat vector of the network's weights (``jax.flatten_util.ravel_pytree``): the
GRU, the output layer ``W [H, P*D_phi]`` and its bias ``B`` (which holds phi_0). No gradient
estimator, ranking or step rule lives inside: whatever optimization it does was evolved. At
meta-init ``W = 0``, so every proposal is ``B`` whatever the returns: the learner starts as the
``amortized`` control and any online optimization found later was selected for.

The reward channel (``given | shuffled | blind``, see :func:`meta_evo.learners.base.make_lifetime`)
decides which returns reach the cell; its weights and layout are the same in every channel.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree

from .base import Learner


class _Cell(nn.Module):
    """One step of the black-box optimizer: ``(h [H], x [I]) -> (h' [H], out [P*D])``."""

    hidden: int
    out_size: int

    @nn.compact
    def __call__(self, h, x):
        h, _ = nn.GRUCell(features=self.hidden, name="gru")(h, x)
        out = nn.Dense(self.out_size, kernel_init=nn.initializers.zeros,
                       bias_init=nn.initializers.zeros, name="out")(h)
        return h, out


@struct.dataclass
class GRUState:
    phi: jax.Array  # [D_phi] the current proposal (candidates[0])
    cands: jax.Array  # [P, D_phi] what the cell proposes to evaluate next
    h: jax.Array  # [H] hidden state
    count: jax.Array  # [] returns seen so far in this lifetime
    mean: jax.Array  # [] their running mean
    m2: jax.Array  # [] their running sum of squared deviations (Welford)


def symlog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


class GRULearner(Learner):
    name = "gru"

    def __init__(self, agent, lifetime: int, candidates: int = 1, hidden: int = 16,
                 phi_init=None):
        super().__init__(agent, lifetime)
        if candidates < 1:
            raise ValueError(f"learner.candidates: the gru learner needs >= 1, got {candidates}")
        self.num_candidates = int(candidates)
        self.hidden = int(hidden)
        self._phi_init = phi_init
        p, d = self.num_candidates, self.phi_size
        self.in_size = p * (d + 2) + 1
        self.net = _Cell(self.hidden, p * d)
        params = self.net.init(jax.random.PRNGKey(0), jnp.zeros(self.hidden),
                               jnp.zeros(self.in_size))
        flat, self._unravel = ravel_pytree(params)
        self.theta_size = int(flat.shape[0])

    # --- theta -------------------------------------------------------------------------------
    def init_theta(self, key):
        k_net, k_phi = jax.random.split(key)
        params = self.net.init(k_net, jnp.zeros(self.hidden), jnp.zeros(self.in_size))
        phi0 = self._phi_init(k_phi) if self._phi_init is not None else self.agent.init(k_phi)
        params = jax.tree.map(lambda x: x, params)
        params["params"]["out"]["bias"] = jnp.tile(phi0, self.num_candidates)
        return ravel_pytree(params)[0]

    def _step(self, theta, h, x):
        h, out = self.net.apply(self._unravel(theta), h, x)
        return h, out.reshape(self.num_candidates, self.phi_size)

    # --- the lifetime ------------------------------------------------------------------------
    def init(self, theta):
        h = jnp.zeros(self.hidden)
        bias = self._unravel(theta)["params"]["out"]["bias"]
        cands = bias.reshape(self.num_candidates, self.phi_size)  # W h_0 = 0
        z = jnp.zeros(())
        return GRUState(phi=cands[0], cands=cands, h=h, count=z, mean=z, m2=z)

    def ask(self, theta, lstate, key):
        return lstate.cands

    def tell(self, theta, lstate, candidates, returns, key, k):
        ok = jnp.isfinite(returns)
        r = jnp.where(ok, returns, 0.0)
        # running statistics of every finite return seen in this lifetime (Welford, batched)
        n_new = jnp.sum(ok)
        count = lstate.count + n_new
        batch_mean = jnp.sum(r) / jnp.maximum(n_new, 1)
        delta = batch_mean - lstate.mean
        mean = lstate.mean + delta * n_new / jnp.maximum(count, 1)
        m2 = (lstate.m2 + jnp.sum(jnp.where(ok, jnp.square(r - batch_mean), 0.0))
              + jnp.square(delta) * lstate.count * n_new / jnp.maximum(count, 1))
        std = jnp.sqrt(m2 / jnp.maximum(count - 1, 1))
        z = jnp.where(count >= 2, (r - mean) / (std + 1e-8), 0.0)
        z = jnp.where(ok, jnp.clip(z, -5.0, 5.0), -5.0)  # a failed candidate reads as the worst
        s = jnp.where(ok, symlog(r), -10.0)
        frac = jnp.asarray(k, jnp.float32) / max(self.lifetime, 1)
        x = jnp.concatenate([candidates.reshape(-1), z, s, frac[None]])
        h, cands = self._step(theta, lstate.h, x)
        return GRUState(phi=cands[0], cands=cands, h=h, count=count, mean=mean, m2=m2)

    def control_embedding(self, control):
        """The amortized control (theta = phi_0) is this network with a zero output layer and
        ``B = phi_0`` (every candidate at phi_0): its proposals never move."""
        if getattr(control, "name", "") != "amortized" or control.theta_size != self.phi_size:
            return None
        zeros = self._unravel(jnp.zeros(self.theta_size))

        def one(phi0):
            params = jax.tree.map(lambda x: x, zeros)
            params["params"]["out"]["bias"] = jnp.tile(phi0, self.num_candidates)
            return ravel_pytree(params)[0]

        def embed(thetas):
            return jax.vmap(one)(jnp.asarray(thetas, jnp.float32))
        return embed

    def describe(self, theta):
        w = self._unravel(theta)["params"]["out"]["kernel"]
        return {"out_norm": jnp.linalg.norm(w)}
