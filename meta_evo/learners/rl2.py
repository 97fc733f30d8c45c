"""``rl2``: in-context RL (Duan et al. 2016, "RL^2"; Wang et al. 2016, "Learning to
reinforcement learn").

A recurrent policy acts in the task family's Brax env. At each step it sees

    x_t = [obs_t, a_{t-1}, r_{t-1}, start_t]

(the task-free observation, its previous action, the reward fed back for the previous step,
and 1.0 on the first step of each episode), updates its hidden state with a GRU (flax
``GRUCell``) and acts ``a_t = tanh(W h_t + b)``. A lifetime is K episodes of T steps on one task:
the env is reset between episodes (a new start state from ``fold_in(key, k)``), the hidden
state, previous action and previous reward are NOT. Whatever it learns about its task within a
lifetime lives in the hidden state: there is no ``phi``, the learner is measured through
behaviour (the K episode returns, and the last episode's trajectory scored under other tasks).

``theta`` is the flat vector of the network's weights (``jax.flatten_util.ravel_pytree``). At
meta-init the output layer ``(W, b)`` is zero, so every action is 0 whatever happened: nothing
is learned by construction, and any in-context adaptation found later was selected for.

The reward channel (static, the same weights, keys and compute in every channel) decides what
``r_{t-1}`` is:

- ``given``: the reward of the transition under the own task ``tau``;
- ``shuffled``: the reward the same transition (states before/after, action) earns under
  ``tau_fb``, an independent task from the same distribution that the caller draws (in every
  channel, so both arms consume the same keys): the same statistics, no information about tau;
- ``blind``: 0.

The fed reward is multiplied by the alive mask (0 after ``healthy`` first failed), as the return
counts it. The returns reported are always those under the own task ``tau``.

Memory: ``final`` keeps the link transforms of the T+1 states, the actions and the alive mask,
``4 * (T+1) * 7 * n_links + 4 * T * (A+1)`` bytes (about 0.1 KB a step on reacher, 0.3 KB on
ant); only the last episode is kept (one buffer, overwritten each episode). Inputs are not
normalized: the raw observation and per-step reward (reacher: about -0.4..0 a step).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree

from ..tasks.base import BraxFamily, Trajectory
from .base import REWARD_CHANNELS


class _Policy(nn.Module):
    """One step: ``(h [H], x [I]) -> (h' [H], action [A])``; the output layer starts at zero."""

    hidden: int
    action_size: int

    @nn.compact
    def __call__(self, h, x):
        h, _ = nn.GRUCell(features=self.hidden, name="gru")(h, x)
        out = nn.Dense(self.action_size, kernel_init=nn.initializers.zeros,
                       bias_init=nn.initializers.zeros, name="out")(h)
        return h, jnp.tanh(out)


@struct.dataclass
class PolicyCarry:
    h: jax.Array  # [H] hidden state, carried across the episodes of a lifetime
    action: jax.Array  # [A] previous action
    reward: jax.Array  # [] previous fed-back reward (after the reward channel)
    start: jax.Array  # [] 1.0 before the first step of an episode, else 0.0


class RL2:
    """In-context RL learner on a Brax family.

    ``RL2(family, lifetime=K, episode_length=T, hidden=H, reward="given")``:

    - ``theta_size``; ``init_theta(key) -> theta [theta_size]`` (output layer zero);
    - ``lifetime(theta, tau, key, tau_fb=None) -> dict(returns [K], final, nan [])``:
      ``returns``
      the own-task returns of the K episodes (the lifetime curve), ``final`` the
      :class:`~meta_evo.tasks.base.Trajectory` of episode K (score it under any task with
      ``family.score(final, tau_b)``; ``family.score(final, tau) == returns[-1]``), ``nan`` the
      number of non-finite episode returns. ``tau_fb`` is read only by ``shuffled`` (None:
      ``tau``). The argument order is ``make_lifetime``'s. Pure, jittable and vmappable over
      every argument; fixed-length scans only.
    - ``lifetime_returns(theta, tau, key, tau_fb=None) -> dict(returns [K], nan)``: the same
      without ``final`` (nothing recorded; the meta-fitness path).
    - ``K``, ``T`` (static ints), ``reward`` (the channel), ``describe(theta)``.

    It answers what the engine asks of every learner (``learners.base.Learner``) its own way:
    the meta-fitness lifetime is ``lifetime_returns``, scored by its last episode; a lifetime
    is K episodes of T steps, with no separate evaluation; a rollout alive carries the recorded
    last episode; it is measured from behaviour (``measurement = "behaviour"``:
    ``meta_evo.measure.make_measure_rl2``) against random policies of the same network
    (``random_theta``).
    """

    name = "rl2"
    num_candidates = 0  # it never evaluates a parameter vector: it acts
    phi_size = 0  # no phi (memory estimates that size phi batches read this)
    measurement = "behaviour"  # no phi: measured from its episodes (meta_evo.measure)

    def __init__(self, family: BraxFamily, lifetime: int, episode_length: int, hidden: int = 32,
                 reward: str = "given"):
        if not isinstance(family, BraxFamily):
            raise ValueError(f"learner.kind: rl2 needs a Brax task family, got {family.name!r}")
        if reward not in REWARD_CHANNELS:
            raise ValueError(f"learner.reward: unknown reward channel {reward!r} "
                             f"(known: {', '.join(REWARD_CHANNELS)})")
        if lifetime < 1 or episode_length < 1:
            raise ValueError("rl2: lifetime and episode_length must be >= 1, got "
                             f"{lifetime} and {episode_length}")
        self.family = family
        self.K = int(lifetime)
        self.episode_length = self.T = int(episode_length)
        self.hidden = int(hidden)
        self.reward = reward
        self.action_size = family.action_size
        self.in_size = family.obs_size + family.action_size + 2
        self.net = _Policy(self.hidden, self.action_size)
        flat, self._unravel = ravel_pytree(self._init_params(jax.random.PRNGKey(0)))
        self.theta_size = int(flat.shape[0])
        # shape of one state record, for the zero trajectory the episode scan starts from
        self._record_shape = jax.eval_shape(
            lambda k: family.record(family.env.reset(k).pipeline_state), jax.random.PRNGKey(0))

    # --- theta ---------------------------------------------------------------------------------
    def _init_params(self, key):
        return self.net.init(key, jnp.zeros(self.hidden), jnp.zeros(self.in_size))

    def init_theta(self, key: jax.Array) -> jax.Array:
        """GRU weights from flax's initializers, zero output layer: ``[theta_size]``."""
        return ravel_pytree(self._init_params(key))[0]

    def unravel(self, theta: jax.Array):
        """The flax parameter tree of a flat ``theta``."""
        return self._unravel(theta)

    def describe(self, theta: jax.Array) -> dict:
        """Norm of the output layer (0 at meta-init: the policy does nothing)."""
        out = self._unravel(theta)["params"]["out"]
        norm = jnp.sqrt(jnp.sum(jnp.square(out["kernel"])) + jnp.sum(jnp.square(out["bias"])))
        return {"out_norm": norm}

    def random_theta(self, key: jax.Array) -> jax.Array:
        """A random policy of the same network (the measurement's reference policies): GRU
        weights drawn as ``init_theta`` draws them, the output layer (zero at meta-init, so
        every action would be 0) drawn lecun-normal as flax's Dense initializer does, bias 0."""
        k_net, k_out = jax.random.split(key)
        params = self.unravel(self.init_theta(k_net))
        out = params["params"]["out"]
        kernel = nn.initializers.lecun_normal()(k_out, out["kernel"].shape, out["kernel"].dtype)
        params = {**params, "params": {**params["params"], "out": {**out, "kernel": kernel}}}
        return ravel_pytree(params)[0]

    def init_carry(self) -> PolicyCarry:
        return PolicyCarry(h=jnp.zeros(self.hidden), action=jnp.zeros(self.action_size),
                           reward=jnp.zeros(()), start=jnp.ones(()))

    # --- the lifetime --------------------------------------------------------------------------
    def lifetime(self, theta: jax.Array, tau: jax.Array, key: jax.Array,
                 tau_fb: jax.Array | None = None):
        """K episodes on task ``tau`` with the hidden state carried across them; see the class."""
        return self._run(theta, tau, key, tau_fb, record=True)

    def lifetime_returns(self, theta: jax.Array, tau: jax.Array, key: jax.Array,
                         tau_fb: jax.Array | None = None):
        """``lifetime`` without the recorded trajectory: ``dict(returns [K], nan [])``, the same
        returns from the same float operations. What meta-fitness needs: storing the T+1 state
        records of every step cost a quarter of the throughput on CPU (reacher, 512 lifetimes:
        169k against 225k env steps/s)."""
        return self._run(theta, tau, key, tau_fb, record=False)

    # --- what the engine asks of every learner (learners.base.Learner) -------------------------
    def fitness_lifetime(self, evaluate=None, record_curve: bool = False):
        """The meta-fitness lifetime: :meth:`lifetime_returns` (it acts: no ``evaluate``)."""
        return self.lifetime_returns

    def fitness_score(self, lifetime, evaluate, theta, tau, key, tau_fb, *, eval_episodes=None,
                      last_half: bool = False):
        """The own-task return of the lifetime's last episode (``returns[-1]``; no rerun,
        ``eval_episodes`` is not used) and its non-finite episodes: ``(R [], nan [])``."""
        out = lifetime(theta, tau, key, tau_fb)
        return out["returns"][-1], out["nan"]

    def lifetime_env_steps(self, eval_episodes: int, episode_steps: int) -> int:
        """K episodes of T steps a lifetime, no separate evaluation rollouts."""
        return self.K * self.T

    def rollout_bytes(self, state_bytes: int) -> int:
        """One env state plus the recorded last episode it carries: (T+1) light state records,
        the actions and the alive mask."""
        rec = sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize
                  for x in jax.tree.leaves(self._record_shape))
        return state_bytes + (self.T + 1) * rec + 4 * self.T * (self.action_size + 1)

    def rollouts_alive(self, cfg) -> int:
        """One env a lifetime: a member's training tasks, or a measurement's n held-out
        lifetimes with R reference policies each and the pool rows (the larger)."""
        ms = cfg.measure
        evo = cfg.meta.population * cfg.task.tasks_per_member
        meas = ms.heldout_tasks * (1 + ms.reference_samples) + ms.pool_tasks
        return max(evo, meas)

    def trace_program(self, evaluate=None, eval_episodes=None):
        """:meth:`trace` keyed by :class:`~meta_evo.rollout.Rollout`'s fields: ``proposals``
        its actions ``[K, T, A]``, ``returns [K]``, ``shown [K, T]`` (the fed rewards),
        ``hidden [K, T, H]``; no candidates, no learner state."""
        def fn(theta, task, key, tau_fb):
            out = self.trace(theta, task, key, tau_fb)
            return {"proposals": out["actions"], "returns": out["returns"], "shown": out["fed"],
                    "hidden": out["hidden"], "candidates": None, "states": {}}

        return fn

    def trace(self, theta: jax.Array, tau: jax.Array, key: jax.Array,
              tau_fb: jax.Array | None = None):
        """``lifetime`` step by step, for inspection (:mod:`meta_evo.rollout`): ``dict(returns
        [K], hidden [K, T, H]`` (after each step's update), ``actions [K, T, A]``, ``fed [K, T]``
        (the reward it was told after each step, after its channel), ``nan [])``; the same keys
        and float operations as ``lifetime``, so the same returns."""
        act, feed = self._policy(theta, tau, tau_fb)

        def episode(pc, k):
            pc = pc.replace(start=jnp.ones(()))
            pc, ret, traj, (h, fed) = self.family.rollout_record(
                act, pc, tau, jax.random.fold_in(key, k), self.T, feed,
                probe=lambda c: (c.h, c.reward))
            return pc, {"returns": ret, "hidden": h, "actions": traj.actions, "fed": fed}

        _, out = jax.lax.scan(episode, self.init_carry(), jnp.arange(self.K))
        out["nan"] = jnp.sum(~jnp.isfinite(out["returns"])).astype(jnp.int32)
        return out

    def _policy(self, theta, tau, tau_fb):
        """``act(carry, obs)`` and ``feed(carry, transition)`` of one theta on task ``tau``."""
        fam, params, channel = self.family, self._unravel(theta), self.reward
        tau_fb = tau if tau_fb is None else tau_fb

        def act(c: PolicyCarry, obs):
            x = jnp.concatenate([obs, c.action, c.reward[None], c.start[None]])
            h, a = self.net.apply(params, c.h, x)
            return c.replace(h=h, action=a, start=jnp.zeros(())), a

        def feed(c: PolicyCarry, tr):
            if channel == "given":
                r = tr["alive"] * tr["reward"]
            elif channel == "shuffled":
                r = tr["alive"] * fam.reward(tr["rec0"], tr["rec1"], tr["action"], tau_fb)
            else:
                r = jnp.zeros(())
            return c.replace(reward=r)

        return act, feed

    def _run(self, theta, tau, key, tau_fb, record: bool):
        fam = self.family
        act, feed = self._policy(theta, tau, tau_fb)
        if not record:
            def play(pc, k):
                pc = pc.replace(start=jnp.ones(()))
                pc, ret, _ = fam.rollout_record(act, pc, tau, jax.random.fold_in(key, k),
                                                self.T, feed, keep=False)
                return pc, ret

            _, returns = jax.lax.scan(play, self.init_carry(), jnp.arange(self.K))
            return {"returns": returns, "nan": jnp.sum(~jnp.isfinite(returns)).astype(jnp.int32)}

        def episode(carry, k):
            pc, _ = carry
            pc = pc.replace(start=jnp.ones(()))
            pc, ret, traj = fam.rollout_record(act, pc, tau, jax.random.fold_in(key, k),
                                               self.T, feed)
            return (pc, traj), ret

        T = self.T
        zeros = Trajectory(
            states=jax.tree.map(lambda s: jnp.zeros((T + 1, *s.shape), s.dtype),
                                self._record_shape),
            actions=jnp.zeros((T, self.action_size)), alive=jnp.zeros(T))
        # the trajectory buffer is overwritten each episode: it holds episode K at the end, and
        # one episode body is compiled (not a separate recorded last episode)
        (_, final), returns = jax.lax.scan(episode, (self.init_carry(), zeros),
                                           jnp.arange(self.K))
        nan = jnp.sum(~jnp.isfinite(returns)).astype(jnp.int32)
        return {"returns": returns, "final": final, "nan": nan}
