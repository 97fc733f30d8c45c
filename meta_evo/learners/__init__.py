"""Learners (base optimizers) and their registry."""

from __future__ import annotations

from meta_evo.registry import Registry
from meta_evo.tasks import FAMILIES, BraxFamily

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

LEARNERS = Registry("learner.kind", "learner")
"""``build(learner_cfg, agent, *, phi_init, family, episode_length) -> Learner`` (the reward
channel is set by :func:`make_learner`). Each learner owns its ``theta`` layout, including how a
control learner's ``theta`` embeds in it (``Learner.control_embedding``)."""


def _updates(cfg):
    if cfg.learner.lifetime < 1:
        yield "learner.lifetime: must be >= 1 for a learner that updates"


def _antithetic_candidates(cfg):
    yield from _updates(cfg)
    p = cfg.learner.candidates
    if p < 2:
        yield f"learner.candidates: must be >= 2, got {p}"
    elif p % 2:
        yield f"learner.candidates: must be even for antithetic sampling, got {p}"


def _amortized_check(cfg):
    control = cfg.sweep.control
    if control in ("shuffled", "blind"):
        yield (f"sweep.control: the amortized learner has no reward channel to {control}; "
               "use amortized or none")


def _gru_check(cfg):
    yield from _updates(cfg)
    if cfg.learner.candidates < 1:
        yield ("learner.candidates: the gru learner needs >= 1 candidate, got "
               f"{cfg.learner.candidates}")


def _rl2_check(cfg):
    yield from _updates(cfg)
    family = FAMILIES.get(cfg.task.family)
    if family is not None and not issubclass(family.extra["cls"], BraxFamily):
        yield (f"learner.kind: rl2 acts in a Brax env; the {cfg.task.family} family has none "
               "(use gru)")
    if cfg.learner.fitness != "final":
        yield ("learner.fitness: rl2 is scored on its final episode; last_half is for learners "
               "with proposals")


def _rl2(c, agent, *, phi_init, family, episode_length):
    if family is None or episode_length is None:
        raise ValueError("learner.kind: rl2 needs the task family and task.episode_length "
                         "(make_learner(..., family=, episode_length=))")
    # RL2 checks the family (Brax only) and the reward channel, naming the key
    return RL2(family, lifetime=c.lifetime, episode_length=episode_length, hidden=c.hidden,
               reward=c.reward)


LEARNERS.register(
    "amortized", lambda c, agent, *, phi_init, **_: Amortized(agent, c.lifetime, phi_init=phi_init),
    schema=("learner.lifetime",), check=_amortized_check)
LEARNERS.register(
    "es", lambda c, agent, *, phi_init, **_: InnerES(agent, c.lifetime, c.candidates, c.init_noise,
                                                     phi_init=phi_init),
    schema=("learner.lifetime", "learner.candidates", "learner.init_noise", "learner.reward"),
    check=_antithetic_candidates)
LEARNERS.register(
    "learned_es", lambda c, agent, *, phi_init, **_: LearnedES(
        agent, c.lifetime, c.candidates, c.init_noise, c.hidden, phi_init=phi_init),
    schema=("learner.lifetime", "learner.candidates", "learner.init_noise", "learner.hidden",
            "learner.reward"),
    check=_antithetic_candidates)
LEARNERS.register(
    "gru", lambda c, agent, *, phi_init, **_: GRULearner(agent, c.lifetime, c.candidates,
                                                         c.hidden, phi_init=phi_init),
    schema=("learner.lifetime", "learner.candidates", "learner.hidden", "learner.reward"),
    check=_gru_check)
LEARNERS.register(
    "rl2", _rl2,
    schema=("learner.lifetime", "learner.hidden", "learner.reward", "task.episode_length"),
    check=_rl2_check)


def default_phi_init(agent):
    """Meta-init of phi_0: the agent's ``meta_init`` where it has one (PD: the zero angle),
    else a draw from its initializer."""
    return getattr(agent, "meta_init", agent.init)


def make_learner(learner_cfg, agent, agent_cfg=None, *, family=None,
                 episode_length: int | None = None) -> Learner:
    """Build the learner named by ``learner_cfg.kind`` (a LearnerConfig) for ``agent``, with
    the reward channel ``learner_cfg.reward``.

    ``rl2`` acts in the env itself (it has no ``phi`` and ignores ``agent``): it needs the task
    ``family`` (a Brax family) and the episode length ``T`` (``task.episode_length``); its
    lifetime is ``learner.lifetime`` episodes and its GRU has ``learner.hidden`` units.
    """
    entry = LEARNERS.entry(learner_cfg.kind)
    reward = learner_cfg.reward
    if reward not in REWARD_CHANNELS:
        raise ValueError(f"learner.reward: unknown reward channel {reward!r}")
    phi_init = default_phi_init(agent) if agent_cfg is not None else None
    learner = entry.build(learner_cfg, agent, phi_init=phi_init, family=family,
                          episode_length=episode_length)
    learner.reward = reward
    return learner


__all__ = ["LEARNERS", "REWARD_CHANNELS", "Learner", "Amortized", "InnerES", "LearnedES",
           "GRULearner", "RL2", "make_learner", "make_lifetime", "centered_ranks",
           "antithetic_noise"]
