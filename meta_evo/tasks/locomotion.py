"""Locomotion families: ``halfcheetah_vel``, ``hopper_vel`` (target forward velocity) and
``ant_dir`` (target direction in the plane), the classic meta-RL settings.

Velocities come from the torso's displacement over one env step, as Brax computes them; the
observations are Brax's own, which hold no task information (positions in the plane excluded).

Training region (API in ``tasks.base``): ``"interval"`` or ``"interval:lo:hi"``.

- ``halfcheetah_vel`` / ``hopper_vel``: target velocities ``lo <= tau <= hi`` inside
  ``[0, max_velocity]`` (default the slower half: ``[0, 1.5]`` and ``[0, 1]``; OOD = faster).
  Draws are uniform on the interval or on its complement in ``[0, max_velocity]`` (exact
  conditionals); projection clips.
- ``ant_dir``: directions on the arc from ``lo`` to ``hi`` radians, counter-clockwise
  (``0 < hi - lo < 2 pi``; default ``[-pi/2, pi/2]``, the forward half-plane; OOD = running
  backwards). Angles wrap; draws are uniform on the arc or on the complementary arc (kept
  1e-5 rad from its ends); projection goes to the nearer end, in angle; the mean of directions
  is circular (``task_mean``) and ``task_distance`` is the angle between directions.

Region proxies add ``train_forward``: run forward at the centre of the training interval (the
mid training speed; for ``ant_dir`` the mid training direction). For a uniform region it
coincides with ``mean_train_task`` in expectation; they differ with few training tasks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

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

    # --- training region: a velocity interval ------------------------------------------------
    regions = ("none", "interval")
    region_extra_proxy_names = ("train_forward",)
    max_velocity: float = 0.0

    def region_defaults(self, name):
        return (0.0, 0.5 * self.max_velocity)

    def check_region_params(self, name, params):
        top = self.max_velocity
        if (len(params) != 2 or not 0.0 <= params[0] < params[1] <= top
                or (params[0] == 0.0 and params[1] == top)):
            raise ValueError(f"{self.name}: region 'interval:lo:hi' needs 0 <= lo < hi <= {top} "
                             f"and leaves part of [0, {top}] outside; got {params}")

    def _in_region(self, tau, name, params):
        lo, hi = params
        return (tau[0] >= lo) & (tau[0] <= hi)

    def _project(self, tau, name, params):
        return jnp.clip(tau, *params)

    def _sample_region(self, key, name, params, inside):
        lo, hi = params
        if inside:
            return jax.random.uniform(key, (1,), minval=lo, maxval=hi)
        u = jax.random.uniform(key, (1,), minval=0.0, maxval=lo + self.max_velocity - hi)
        # [0, lo) stays, [lo, lo + top - hi) maps onto (hi, top]
        return jnp.where(u < lo, u, self.max_velocity - (u - lo))

    def _extra_region_proxies(self, taus, name, params):
        centre = jnp.full((taus.shape[0], 1, 1), 0.5 * (params[0] + params[1]), taus.dtype)
        return centre


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

    # --- training region: an arc of directions ----------------------------------------------
    def region_defaults(self, name):
        return (-0.5 * np.pi, 0.5 * np.pi)

    def check_region_params(self, name, params):
        if len(params) != 2 or not 0.0 < params[1] - params[0] < 2 * np.pi:
            raise ValueError(f"ant_dir: region 'interval:lo:hi' (radians) needs "
                             f"0 < hi - lo < 2 pi; got {params}")

    def _in_region(self, tau, name, params):
        lo, hi = params
        d = jnp.mod(tau[0] - lo, _TWO_PI)
        return (d <= (hi - lo) + _ARC_TOL) | (d >= _TWO_PI - _ARC_TOL)

    def _project(self, tau, name, params):
        lo, hi = params
        to_lo = jnp.abs(_wrap(tau[0] - lo))
        to_hi = jnp.abs(_wrap(tau[0] - hi))
        end = jnp.where(to_lo <= to_hi, lo, hi)
        return jnp.reshape(jnp.mod(end, _TWO_PI), (1,)).astype(tau.dtype)

    def _sample_region(self, key, name, params, inside):
        lo, hi = params
        w = hi - lo
        if inside:
            ang = lo + w * jax.random.uniform(key, (1,))
        else:
            m = _ARC_MARGIN
            ang = hi + jax.random.uniform(key, (1,), minval=m, maxval=_TWO_PI - w - m)
        return jnp.mod(ang, _TWO_PI)

    def _extra_region_proxies(self, taus, name, params):
        centre = np.mod(0.5 * (params[0] + params[1]), 2 * np.pi)
        return jnp.full((taus.shape[0], 1, 1), centre, taus.dtype)

    def task_distance(self, a, b):
        return jnp.abs(_wrap(a[0] - b[0]))

    def task_mean(self, tasks, weights):
        w = weights.astype(tasks.dtype)
        ang = jnp.arctan2(jnp.sum(w * jnp.sin(tasks[:, 0])), jnp.sum(w * jnp.cos(tasks[:, 0])))
        return jnp.reshape(jnp.mod(ang, _TWO_PI), (1,))

    def reward(self, ps0, ps1, action, tau):
        v = self.torso_velocity(ps0, ps1)[:2]
        d = jnp.stack([jnp.cos(tau[0]), jnp.sin(tau[0])])
        return self.task_weight * jnp.dot(v, d) + 1.0 - self.ctrl(action)


_TWO_PI = 2.0 * np.pi
_ARC_TOL = 1e-6  # in_region tolerance of the arc's ends (rad): wrapping rounds
_ARC_MARGIN = 1e-5  # an outside draw keeps this far from the arc's ends (rad)


def _wrap(a):
    """Angle difference into [-pi, pi)."""
    return jnp.mod(a + np.pi, _TWO_PI) - np.pi
