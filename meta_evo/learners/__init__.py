"""Learners (base optimizers) and their registry."""

from __future__ import annotations

import jax.numpy as jnp

from .amortized import Amortized
from .base import Learner, antithetic_noise, centered_ranks, make_lifetime
from .es import InnerES
from .learned_es import LearnedES

LEARNERS = {"amortized": Amortized, "es": InnerES, "learned_es": LearnedES}


def default_phi_init(agent_cfg, agent):
    """Meta-init of phi_0: PD agents start at the zero angle (arm straight), others draw from
    the agent's initializer."""
    if agent_cfg.kind == "pd":
        return lambda key: jnp.zeros(agent.num_params)
    return agent.init


def make_learner(learner_cfg, agent, agent_cfg=None) -> Learner:
    """Build the learner named by ``learner_cfg.kind`` (a LearnerConfig) for ``agent``."""
    phi_init = default_phi_init(agent_cfg, agent) if agent_cfg is not None else None
    kind = learner_cfg.kind
    if kind == "amortized":
        return Amortized(agent, learner_cfg.lifetime, phi_init=phi_init)
    if kind == "es":
        return InnerES(agent, learner_cfg.lifetime, learner_cfg.candidates,
                       learner_cfg.init_noise, phi_init=phi_init)
    if kind == "learned_es":
        return LearnedES(agent, learner_cfg.lifetime, learner_cfg.candidates,
                         learner_cfg.init_noise, learner_cfg.hidden, phi_init=phi_init)
    raise ValueError(f"learner.kind: unknown learner {kind!r}")


__all__ = ["LEARNERS", "Learner", "Amortized", "InnerES", "LearnedES", "make_learner",
           "make_lifetime", "centered_ranks", "antithetic_noise"]
