"""Agents: deterministic policies over flat parameter vectors ``phi``.

Every agent has ``num_params``, ``init(key) -> phi [num_params]`` (the initializer, also the
reference distribution for optimization power) and ``act(phi, obs [obs_size]) -> action``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from meta_evo.registry import Registry


class MLPAgent:
    """tanh MLP ``obs -> hidden... -> action`` with tanh-squashed actions in [-1, 1]."""

    kind = "mlp"

    def __init__(self, obs_size: int, action_size: int, hidden: tuple[int, ...] = (16,)):
        self.sizes = (obs_size, *hidden, action_size)
        self.shapes = [(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True)]
        self.num_params = sum(a * b + b for a, b in self.shapes)

    def unflatten(self, phi):
        params, i = [], 0
        for a, b in self.shapes:
            w = phi[i:i + a * b].reshape(a, b)
            i += a * b
            params.append((w, phi[i:i + b]))
            i += b
        return params

    def init(self, key):
        """LeCun-normal weights, zero biases: ``[num_params]``."""
        parts = []
        for k, (a, b) in zip(jax.random.split(key, len(self.shapes)), self.shapes, strict=True):
            parts += [jax.random.normal(k, (a * b,)) / math.sqrt(a), jnp.zeros(b)]
        return jnp.concatenate(parts)

    def act(self, phi, obs):
        h = obs
        layers = self.unflatten(phi)
        for w, b in layers[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = layers[-1]
        return jnp.tanh(h @ w + b)


class PDAgent:
    """PD controller toward target joint angles ``phi`` (reacher: ``phi`` of size 2).

    action = clip(kp * wrap(phi - q) - kd * qd, -1, 1). A low-dimensional agent that makes the
    whole effect visible on a CPU in minutes.
    """

    kind = "pd"

    def __init__(self, joint_angles, num_joints: int = 2, kp: float = 1.0, kd: float = 0.1):
        self.joint_angles = joint_angles  # obs -> (q [J], qd [J])
        self.num_params = num_joints
        self.kp, self.kd = float(kp), float(kd)

    def init(self, key):
        """Uniform target angles in [-pi, pi): ``[num_params]``."""
        return jax.random.uniform(key, (self.num_params,), minval=-jnp.pi, maxval=jnp.pi)

    def meta_init(self, key):
        """The learners' meta-init of phi_0: the zero angle (arm straight). Agents without
        ``meta_init`` start from a draw of ``init``."""
        return jnp.zeros(self.num_params)

    def act(self, phi, obs):
        q, qd = self.joint_angles(obs)
        err = jnp.arctan2(jnp.sin(phi - q), jnp.cos(phi - q))
        return jnp.clip(self.kp * err - self.kd * qd, -1.0, 1.0)


class DirectAgent:
    """``phi`` is the solution itself (the analytic family): no observation, no action."""

    kind = "direct"

    def __init__(self, dim: int):
        self.num_params = dim

    def init(self, key):
        """Standard normal draws: ``[num_params]``."""
        return jax.random.normal(key, (self.num_params,))

    def act(self, phi, obs):
        return phi


AGENTS = Registry("agent.kind", "agent")
"""``build(agent_cfg, family) -> agent``."""


def _pd_check(cfg):
    if cfg.task.family != "reacher_goal":
        yield "agent.kind: the pd agent exists for reacher_goal only"


def _direct_check(cfg):
    if cfg.task.family != "analytic":
        yield "agent.kind: the analytic family takes agent.kind=direct, and only it does"


AGENTS.register("mlp", lambda c, family: MLPAgent(family.obs_size, family.action_size,
                                                   tuple(c.hidden)),
                schema=("agent.hidden",))
AGENTS.register("pd", lambda c, family: PDAgent(family.joint_angles, 2, c.kp, c.kd),
                schema=("agent.kp", "agent.kd"), check=_pd_check)
AGENTS.register("direct", lambda c, family: DirectAgent(family.task_dim), check=_direct_check)


def make_agent(agent_cfg, family):
    """Build the agent named by ``agent_cfg.kind`` for ``family``."""
    return AGENTS.build(agent_cfg.kind, agent_cfg, family)
