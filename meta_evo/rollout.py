"""One lifetime of one evolved learner on one task, step by step: what a notebook inspects first.

``rollout(meta, theta, task, key)`` returns a :class:`Rollout`: the learner's proposals, the
returns it was shown, its hidden state at every step and the own-task return of each proposal.
It runs the learner's own lifetime function (its ``trace_program``: ``make_lifetime(...,
trace=True)``, or ``RL2.trace``), with the same keys and float operations as the lifetime
meta-fitness and the measurement run, so the last proposal is the ``phi_K`` they score.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class Rollout:
    """What a learner did during one lifetime on ``task``.

    Learners over ``phi`` (gru, es, learned_es, amortized), K updates and P candidates:
    ``proposals [K+1, D_phi]`` (phi_0..phi_K), ``returns [K+1]`` (the own-task return of each
    proposal, mean over ``task.eval_episodes`` rollouts), ``candidates [K, P, D_phi]`` and
    ``shown [K, P]`` (what it evaluated and the returns it was told, after its reward channel),
    ``hidden [K+1, H]`` (None for a learner without one) and ``states`` (every leaf of the
    learner state, ``[K+1, ...]``).

    ``rl2`` (K episodes of T steps): ``proposals`` its actions ``[K, T, A]``, ``returns [K]`` the
    episode returns, ``shown [K, T]`` the reward fed back after each step, ``hidden [K, T, H]``;
    ``candidates`` None, ``states`` empty.
    """

    learner: str
    task: np.ndarray
    proposals: np.ndarray
    returns: np.ndarray
    shown: np.ndarray
    hidden: np.ndarray | None
    candidates: np.ndarray | None = None
    states: dict = dataclasses.field(default_factory=dict)


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _program(meta):
    """The jitted ``fn(theta, task, key, tau_fb) -> dict`` of ``meta`` (built once per Meta):
    the learner's ``trace_program``, keyed by the fields of :class:`Rollout`."""
    if meta in _PROGRAMS:
        return _PROGRAMS[meta]
    fn = jax.jit(meta.learner.trace_program(meta.evaluate, meta.cfg.task.eval_episodes))
    _PROGRAMS[meta] = fn
    return fn


def _as_key(key) -> jax.Array:
    return jax.random.PRNGKey(key) if isinstance(key, int | np.integer) else jnp.asarray(key)


def rollout(meta, theta, task, key=0, tau_fb=None) -> Rollout:
    """One lifetime of ``theta`` (a learner of ``meta``, a :class:`meta_evo.meta.Meta`) on
    ``task`` (a task vector of ``meta.family``), with ``key`` (an int seed or a PRNG key).
    ``tau_fb`` is the task whose returns a ``shuffled`` learner is told (None: ``task``). The
    reward channel is the learner's (``Meta(cfg, reward=...)`` chooses it)."""
    theta = jnp.asarray(theta, jnp.float32)
    if theta.shape != (meta.theta_size,):
        raise ValueError(f"rollout: theta has shape {tuple(theta.shape)}, the "
                         f"{meta.learner.name} learner needs ({meta.theta_size},)")
    task = jnp.asarray(task, jnp.float32)
    fb = task if tau_fb is None else jnp.asarray(tau_fb, jnp.float32)
    out = jax.device_get(_program(meta)(theta, task, _as_key(key), fb))
    states = out.pop("states")  # the learner state (a dataclass), or {} (rl2 has none)
    fields = ({f.name: np.asarray(getattr(states, f.name)) for f in dataclasses.fields(states)}
              if dataclasses.is_dataclass(states) else {})
    return Rollout(learner=meta.learner.name, task=np.asarray(task), states=fields, **out)
