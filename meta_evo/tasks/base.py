"""The task-family protocol and the shared Brax rollout.

A task ``tau`` is a small vector; the agent never observes it, it only receives reward.
A family knows how to draw tasks (a fixed training pool whose size is the *diversity*, and a
held-out distribution), and how to score a policy parameter vector ``phi`` on a task.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints "Failed to import warp"
    import brax.envs
import jax
import jax.numpy as jnp

# fn(phi [D_phi], tau [D_tau], key) -> return (scalar float32)
Evaluator = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

POOL_SIZE = 4096  # the training pool is this large; diversity d draws from its first d tasks


class TaskFamily:
    """Base class. Subclasses set ``name``, ``task_dim``, ``obs_size``, ``action_size``."""

    name: str = ""
    task_dim: int = 0
    obs_size: int = 0
    action_size: int = 0
    proxy_names: tuple[str, ...] = ()

    def sample_task(self, key: jax.Array) -> jax.Array:
        """One task from the full (held-out) distribution: ``[task_dim]``."""
        raise NotImplementedError

    def train_pool(self, task_seed: int) -> jax.Array:
        """The fixed pool of training tasks ``[POOL_SIZE, task_dim]``, from ``task_seed``."""
        keys = jax.random.split(jax.random.PRNGKey(task_seed), POOL_SIZE)
        return jax.vmap(self.sample_task)(keys)

    def sample_train(self, key: jax.Array, pool: jax.Array, diversity: jax.Array) -> jax.Array:
        """A training task: uniform over the first ``diversity`` pool entries (traced);
        ``diversity == 0`` means a fresh draw from the full distribution."""
        d = jnp.asarray(diversity, jnp.int32)
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (), 0, jnp.maximum(d, 1))
        fresh = self.sample_task(k2)
        return jnp.where(d > 0, pool[idx], fresh)

    def proxy_tasks(self) -> jax.Array:
        """Proxy objectives as task vectors ``[n_proxy, task_dim]`` (extra matrix columns)."""
        return jnp.zeros((0, self.task_dim))

    def make_evaluator(self, agent, episode_length: int) -> Evaluator:
        raise NotImplementedError


class BraxFamily(TaskFamily):
    """A family over a Brax env. Subclasses implement ``observe`` and ``reward``.

    The rollout is a fixed-length ``lax.scan`` with an ``alive`` mask (no early exit);
    the env's own reward and observation are never used.
    """

    env_name: str = ""

    def __init__(self, backend: str = "spring", task_weight: float = 1.0,
                 ctrl_weight: float = 0.01, **env_kwargs):
        self.backend = backend
        self.task_weight = float(task_weight)
        self.ctrl_weight = float(ctrl_weight)
        self.env = brax.envs.get_environment(self.env_name, backend=backend, **env_kwargs)
        self.action_size = self.env.action_size
        ps = jax.eval_shape(lambda k: self.env.reset(k).pipeline_state, jax.random.PRNGKey(0))
        self.obs_size = jax.eval_shape(self.observe, ps).shape[-1]

    # --- what subclasses define -------------------------------------------------------------
    def observe(self, ps) -> jax.Array:
        """Observation from the physics state alone (never from the task)."""
        raise NotImplementedError

    def reward(self, ps0, ps1, action: jax.Array, tau: jax.Array) -> jax.Array:
        """Reward of the transition ``ps0 -> ps1`` under ``action`` for task ``tau``."""
        raise NotImplementedError

    def healthy(self, ps) -> jax.Array:
        """1.0 while the episode may go on; locomotion families override."""
        return jnp.ones(())

    # --- the rollout ---------------------------------------------------------------------------
    def rollout(self, act: Callable, phi: jax.Array, tau: jax.Array, key: jax.Array,
                episode_length: int) -> jax.Array:
        """Return of one episode of ``act(phi, obs)`` on task ``tau``; NaN if physics blew up."""
        ps = self.env.reset(key).pipeline_state

        def body(carry, _):
            ps, alive, ret = carry
            action = act(phi, self.observe(ps))
            ps1 = self.env.pipeline_step(ps, action)
            r = self.reward(ps, ps1, action, tau)
            ret = ret + alive * r
            alive = alive * self.healthy(ps1)
            return (ps1, alive, ret), None

        init = (ps, jnp.ones(()), jnp.zeros(()))
        (_, _, ret), _ = jax.lax.scan(body, init, None, length=episode_length)
        return ret

    def make_evaluator(self, agent, episode_length: int) -> Evaluator:
        def evaluate(phi, tau, key):
            return self.rollout(agent.act, phi, tau, key, episode_length)
        return evaluate
