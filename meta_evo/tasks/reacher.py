"""``reacher_goal``: reach a hidden target position with the Brax reacher arm.

Task ``tau`` = target (x, y) in a disc of radius 0.2 (as Brax draws its own target).
Reward = -task_weight * |tip - tau| - ctrl_weight * |a|^2: the distance term dominates (Brax's
own control cost, up to 2 a step, would drown the task). The observation keeps only the arm:
``[cos q0, cos q1, sin q0, sin q1, qd0, qd1]``; Brax's target coordinates and tip-to-target
vector are removed.

Training region (API in ``tasks.base``): ``"half_disc"``, targets with ``x >= 0`` (the half
disc in front of the arm's base, ``|tau| <= 0.2``). Draws reflect ``x`` (``|x|`` inside,
``-|x|`` outside: the exact conditionals, the target distribution being symmetric in x).
Projection: ``(x, y) -> (0, clip(y, -0.2, 0.2))`` for ``x < 0`` (radial clip onto the disc
otherwise), the nearest in-region target. The training mean is about ``(0.2 / pi, 0)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from brax import base

from .base import BraxFamily

TIP_OFFSET = 0.11  # the fingertip sits 0.11 along body 1's x axis (as in brax/envs/reacher.py)
TARGET_RADIUS = 0.2


def fingertip(ps) -> jax.Array:
    """World (x, y) of the fingertip from a pipeline state: ``[2]``."""
    tip = ps.x.take(1).do(base.Transform.create(pos=jnp.array([TIP_OFFSET, 0.0, 0.0])))
    return tip.pos[:2]


class ReacherGoal(BraxFamily):
    name = "reacher_goal"
    env_name = "reacher"
    task_dim = 2
    proxy_names = ("center",)

    def sample_task(self, key):
        k1, k2 = jax.random.split(key)
        dist = TARGET_RADIUS * jax.random.uniform(k1)
        ang = 2.0 * jnp.pi * jax.random.uniform(k2)
        return jnp.stack([dist * jnp.cos(ang), dist * jnp.sin(ang)])

    def proxy_tasks(self):
        # a fixed objective whatever tau is: reach the centre of the target disc
        return jnp.zeros((1, 2))

    def observe(self, ps):
        q = ps.q[:2]
        return jnp.concatenate([jnp.cos(q), jnp.sin(q), ps.qd[:2]])

    def reward(self, ps0, ps1, action, tau):
        dist = jnp.sqrt(jnp.sum(jnp.square(fingertip(ps1) - tau)) + 1e-12)
        return -self.task_weight * dist - self.ctrl_weight * jnp.sum(jnp.square(action))

    # --- training region -----------------------------------------------------------------------
    regions = ("none", "half_disc")

    def _in_region(self, tau, name, params):
        r = jnp.sqrt(jnp.sum(jnp.square(tau)))
        return (tau[0] >= 0) & (r <= TARGET_RADIUS * (1 + 1e-6))

    def _project(self, tau, name, params):
        r = jnp.sqrt(jnp.sum(jnp.square(tau)))
        onto_disc = tau * jnp.minimum(1.0, TARGET_RADIUS / jnp.where(r > 0, r, 1.0))
        edge = jnp.stack([jnp.zeros_like(tau[0]), jnp.clip(tau[1], -TARGET_RADIUS,
                                                             TARGET_RADIUS)])
        return jnp.where(tau[0] < 0, edge, onto_disc)

    def _sample_region(self, key, name, params, inside):
        tau = self.sample_task(key)
        x = jnp.abs(tau[0]) if inside else -jnp.maximum(jnp.abs(tau[0]), 1e-20)
        return tau.at[0].set(x)

    @staticmethod
    def joint_angles(obs):
        """(q, qd) of the two arm joints from an observation: ``[2], [2]``."""
        return jnp.arctan2(obs[2:4], obs[0:2]), obs[4:6]
