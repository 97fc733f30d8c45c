"""Learners (base optimizers) and their registry."""

from __future__ import annotations

import jax.numpy as jnp

from .amortized import Amortized
from .base import (
    REWARD_CHANNELS,
    Learner,
    antithetic_noise,
    centered_ranks,
    make_lifetime,
)
from .es import InnerES
from .gru import GRULearner
from .learned_es import LearnedES

LEARNERS = {"amortized": Amortized, "es": InnerES, "learned_es": LearnedES, "gru": GRULearner}


def default_phi_init(agent_cfg, agent):
    """Meta-init of phi_0: PD agents start at the zero angle (arm straight), others draw from
    the agent's initializer."""
    if agent_cfg.kind == "pd":
        return lambda key: jnp.zeros(agent.num_params)
    return agent.init


def make_learner(learner_cfg, agent, agent_cfg=None) -> Learner:
    """Build the learner named by ``learner_cfg.kind`` (a LearnerConfig) for ``agent``, with
    the reward channel ``learner_cfg.reward``."""
    phi_init = default_phi_init(agent_cfg, agent) if agent_cfg is not None else None
    kind = learner_cfg.kind
    if kind == "amortized":
        learner = Amortized(agent, learner_cfg.lifetime, phi_init=phi_init)
    elif kind == "es":
        learner = InnerES(agent, learner_cfg.lifetime, learner_cfg.candidates,
                          learner_cfg.init_noise, phi_init=phi_init)
    elif kind == "learned_es":
        learner = LearnedES(agent, learner_cfg.lifetime, learner_cfg.candidates,
                            learner_cfg.init_noise, learner_cfg.hidden, phi_init=phi_init)
    elif kind == "gru":
        learner = GRULearner(agent, learner_cfg.lifetime, learner_cfg.candidates,
                             learner_cfg.hidden, phi_init=phi_init)
    else:
        raise ValueError(f"learner.kind: unknown learner {kind!r}")
    reward = getattr(learner_cfg, "reward", "given")
    if reward not in REWARD_CHANNELS:
        raise ValueError(f"learner.reward: unknown reward channel {reward!r}")
    learner.reward = reward
    return learner


__all__ = ["LEARNERS", "REWARD_CHANNELS", "Learner", "Amortized", "InnerES", "LearnedES",
           "GRULearner", "make_learner", "make_lifetime", "centered_ranks", "antithetic_noise"]
