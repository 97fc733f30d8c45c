"""``analytic``: a pure-JAX quadratic whose optimum is the task vector.

R_tau(phi) = -|phi - tau|^2 with phi, tau in R^dim and tau ~ N(0, scale^2 I). No physics: it
serves kernel tests, where every number can be derived by hand. The proxy objective is the mean
task (tau = 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import TaskFamily


class Analytic(TaskFamily):
    name = "analytic"
    proxy_names = ("mean_task",)

    def __init__(self, dim: int = 4, scale: float = 1.0, **_):
        self.task_dim = dim
        self.obs_size = 0
        self.action_size = dim
        self.scale = float(scale)

    def sample_task(self, key):
        return self.scale * jax.random.normal(key, (self.task_dim,))

    def proxy_tasks(self):
        return jnp.zeros((1, self.task_dim))

    def make_evaluator(self, agent, episode_length: int):
        def evaluate(phi, tau, key):
            del key
            return -jnp.sum(jnp.square(phi - tau))
        return evaluate
