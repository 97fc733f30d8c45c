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
from .rl2 import RL2

LEARNERS = {"amortized": Amortized, "es": InnerES, "learned_es": LearnedES, "gru": GRULearner,
            "rl2": RL2}


def default_phi_init(agent_cfg, agent):
    """Meta-init of phi_0: PD agents start at the zero angle (arm straight), others draw from
    the agent's initializer."""
    if agent_cfg.kind == "pd":
        return lambda key: jnp.zeros(agent.num_params)
    return agent.init


def make_learner(learner_cfg, agent, agent_cfg=None, *, family=None,
                 episode_length: int | None = None) -> Learner:
    """Build the learner named by ``learner_cfg.kind`` (a LearnerConfig) for ``agent``, with
    the reward channel ``learner_cfg.reward``.

    ``rl2`` acts in the env itself (it has no ``phi`` and ignores ``agent``): it needs the task
    ``family`` (a Brax family) and the episode length ``T`` (``task.episode_length``); its
    lifetime is ``learner.lifetime`` episodes and its GRU has ``learner.hidden`` units.
    """
    kind = learner_cfg.kind
    reward = getattr(learner_cfg, "reward", "given")
    if kind == "rl2":
        if family is None or episode_length is None:
            raise ValueError("learner.kind: rl2 needs the task family and task.episode_length "
                             "(make_learner(..., family=, episode_length=))")
        # RL2 checks the family (Brax only) and the reward channel, naming the key
        return RL2(family, lifetime=learner_cfg.lifetime, episode_length=episode_length,
                   hidden=learner_cfg.hidden, reward=reward)
    phi_init = default_phi_init(agent_cfg, agent) if agent_cfg is not None else None
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
    if reward not in REWARD_CHANNELS:
        raise ValueError(f"learner.reward: unknown reward channel {reward!r}")
    learner.reward = reward
    return learner


__all__ = ["LEARNERS", "REWARD_CHANNELS", "Learner", "Amortized", "InnerES", "LearnedES",
           "GRULearner", "RL2", "make_learner", "make_lifetime", "centered_ranks",
           "antithetic_noise"]
