"""Locomotion families: ``halfcheetah_vel``, ``hopper_vel`` (target forward velocity) and
``ant_dir`` (target direction in the plane), the classic meta-RL settings.

Velocities come from the torso's displacement over one env step, as Brax computes them; the
observations are Brax's own, which hold no task information (positions in the plane excluded).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import BraxFamily


class _Locomotion(BraxFamily):
    healthy_reward: float = 0.0
    healthy_z: tuple[float, float] | None = None

    def observe(self, ps):
        return self.env._get_obs(ps)

    def torso_velocity(self, ps0, ps1):
        return (ps1.x.pos[0] - ps0.x.pos[0]) / self.env.dt

    def healthy(self, ps):
        if self.healthy_z is None:
            return jnp.ones(())
        z = ps.x.pos[0, 2]
        lo, hi = self.healthy_z
        return jnp.where((z >= lo) & (z <= hi), 1.0, 0.0)

    def ctrl(self, action):
        return self.ctrl_weight * jnp.sum(jnp.square(action))


class HalfCheetahVel(_Locomotion):
    """Reward = -task_weight * |v_x - tau| - ctrl; tau in [0, 3] m/s."""

    name = "halfcheetah_vel"
    env_name = "halfcheetah"
    task_dim = 1
    proxy_names = ("fast",)
    max_velocity = 3.0

    def sample_task(self, key):
        return jax.random.uniform(key, (1,), minval=0.0, maxval=self.max_velocity)

    def proxy_tasks(self):
        return jnp.full((1, 1), self.max_velocity)

    def reward(self, ps0, ps1, action, tau):
        vx = self.torso_velocity(ps0, ps1)[0]
        return -self.task_weight * jnp.abs(vx - tau[0]) - self.ctrl(action)


class HopperVel(_Locomotion):
    """Reward = -task_weight * |v_x - tau| + 1 (alive) - ctrl; tau in [0, 2] m/s."""

    name = "hopper_vel"
    env_name = "hopper"
    task_dim = 1
    proxy_names = ("fast",)
    healthy_z = (0.7, float("inf"))
    max_velocity = 2.0

    def sample_task(self, key):
        return jax.random.uniform(key, (1,), minval=0.0, maxval=self.max_velocity)

    def proxy_tasks(self):
        return jnp.full((1, 1), self.max_velocity)

    def reward(self, ps0, ps1, action, tau):
        vx = self.torso_velocity(ps0, ps1)[0]
        return -self.task_weight * jnp.abs(vx - tau[0]) + 1.0 - self.ctrl(action)


class AntDir(_Locomotion):
    """Reward = task_weight * v . (cos tau, sin tau) + 1 (alive) - ctrl; tau in [0, 2 pi)."""

    name = "ant_dir"
    env_name = "ant"
    task_dim = 1
    proxy_names = ("forward",)
    healthy_z = (0.2, 1.0)

    def sample_task(self, key):
        return jax.random.uniform(key, (1,), minval=0.0, maxval=2.0 * jnp.pi)

    def proxy_tasks(self):
        return jnp.zeros((1, 1))  # always run along +x

    def reward(self, ps0, ps1, action, tau):
        v = self.torso_velocity(ps0, ps1)[:2]
        d = jnp.stack([jnp.cos(tau[0]), jnp.sin(tau[0])])
        return self.task_weight * jnp.dot(v, d) + 1.0 - self.ctrl(action)
