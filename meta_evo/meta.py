"""The meta-optimizer: an evosax strategy over ``theta``, with selection pressure as a traced leaf.

One meta-generation: ask the strategy for M members ``theta``; run each member's lifetime on
``tasks_per_member`` training tasks (the same tasks and reset keys for every member of the
generation: common random numbers); fitness = mean return of ``phi_K`` (higher is better);
turn fitness into rank weights ``w(pressure)`` (best first, sum 1, NaN ranks worst); tell the
strategy those weights with identity shaping. On plain recombination strategies the mean moves
by ``sum_j w_j (x_(j) - mean)``, so on a linear fitness it moves ``sigma * i`` along the
gradient per generation, with ``i = kernels.selection_intensity(w)`` (breeder's equation).

The strategies and their ``tell`` signs: :mod:`meta_evo.strategies`.
"""

from __future__ import annotations

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
from flax import struct

from meta_evo.agents import make_agent
from meta_evo.kernels.selection import (
    beta_for_intensity,
    elite_fraction_for_intensity,
    rank_weights,
)
from meta_evo.learners import make_learner
from meta_evo.strategies import TELL_SIGN, make_strategy
from meta_evo.tasks import make_family


@struct.dataclass
class MetaState:
    es_state: object  # the evosax strategy state (mean [D_theta], ...)
    key: jax.Array  # [2] uint32, the PRNG key of the next generation
    generation: jax.Array  # [] int32
    best_theta: jax.Array  # [D_theta] best member seen so far
    best_fitness: jax.Array  # [] float32 its fitness (-inf before the first generation)


def pressure_for_intensity(selection: str, n: int, intensity) -> jax.Array:
    """The raw pressure parameter (elite fraction or beta) giving selection ``intensity``."""
    if selection == "truncation":
        return elite_fraction_for_intensity(n, intensity)
    return beta_for_intensity(n, intensity)


def member_weights(fitness: jax.Array, weights: jax.Array) -> jax.Array:
    """Weight of each member ``[M]``: ``weights[rank]`` with rank 0 the best; NaN ranks worst."""
    safe = jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)
    order = jnp.argsort(-safe, stable=True)  # best first
    ranks = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0]))
    return weights[ranks]


def _strong(x):
    """Drop weak types so a state after ``init`` has the dtypes it has after ``tell``."""
    x = jnp.asarray(x)
    return jax.lax.convert_element_type(x, x.dtype)


class Meta:
    """Everything static about one meta-evolution: family, agent, learner, strategy, shapes.

    ``init(key) -> MetaState``; ``step(state, pressure, diversity) -> (state, metrics)``;
    ``run_chunk(state, pressure, diversity, n)`` scans ``n`` generations. These are pure
    functions of their arguments; the caller jits (the engine: :mod:`meta_evo.engine`).
    ``pressure`` (the raw elite fraction or beta) and ``diversity`` are traced, so one compiled
    program serves a whole grid of them under ``vmap``.

    The parts are built from ``cfg``; keyword arguments replace them explicitly (never patch an
    instance): ``evaluate`` (``(phi, tau, key) -> R``, e.g. a wrapped evaluator that injects
    faults; the lifetime is rebuilt on it), ``lifetime`` (the learner's lifetime function) and
    ``member_sharding`` (a sharding the members ``thetas [M, D]`` are constrained to inside
    ``fitness``: :func:`meta_evo.engine.population_sharded`). :meth:`rebuild` makes a new
    ``Meta`` with some of them changed.
    """

    def __init__(self, cfg, learner_kind: str | None = None, reward: str | None = None, *,
                 evaluate=None, lifetime=None, member_sharding=None):
        self.cfg = cfg
        self.parts = {"evaluate": evaluate, "lifetime": lifetime,
                      "member_sharding": member_sharding}
        self.member_sharding = member_sharding
        t, m = cfg.task, cfg.meta
        self.family = make_family(t)
        self.agent = make_agent(cfg.agent, self.family)
        lcfg = cfg.learner
        if learner_kind is not None:
            lcfg = dataclasses.replace(lcfg, kind=learner_kind)
        if reward is not None:
            lcfg = dataclasses.replace(lcfg, reward=reward)
        self.learner_cfg = lcfg
        self.learner = make_learner(lcfg, self.agent, cfg.agent, family=self.family,
                                    episode_length=t.episode_length)
        self.evaluate = (self.family.make_evaluator(self.agent, t.episode_length)
                         if evaluate is None else evaluate)
        self.last_half = lcfg.fitness == "last_half" and self.learner.num_candidates > 0
        # the learner builds its meta-fitness lifetime and scores it (learners.base.Learner)
        self.lifetime = (self.learner.fitness_lifetime(self.evaluate, record_curve=self.last_half)
                         if lifetime is None else lifetime)
        self.pool = self.family.train_pool(t.task_seed, t.train_region, t.outside_share)
        self.theta_size = self.learner.theta_size
        self.population = m.population
        self.strategy, self.es_params = make_strategy(m.strategy, m.population,
                                                      self.theta_size, m.sigma, m.antithetic)
        self.sign = TELL_SIGN[m.strategy]
        steps = t.episode_length if self.family.name != "analytic" else 1
        self.env_steps_per_generation = m.population * t.tasks_per_member * (
            self.learner.lifetime_env_steps(t.eval_episodes, steps))

    def rebuild(self, **parts) -> Meta:
        """A new ``Meta`` of the same config, arm and parts, with ``parts`` replaced."""
        return Meta(self.cfg, self.learner_cfg.kind, self.learner_cfg.reward,
                    **{**self.parts, **parts})

    # --- one member, one generation -------------------------------------------------------------
    def score(self, theta, tau, key, tau_fb=None):
        """Fitness of one lifetime on ``tau`` (``tau_fb``: the task whose returns a
        ``shuffled`` learner is told): ``(R [], inner_nan [])``, scored by the learner
        (``learner.fitness_score``). ``R`` is the return of ``phi_K`` (``learner.fitness:
        final``) or the mean return of the proposals ``phi_k, k >= K // 2`` (``last_half``),
        each over ``task.eval_episodes`` rollouts. For ``rl2`` it is the own-task return of the
        lifetime's last episode (``returns[-1]``; no rerun, ``eval_episodes`` is not used) and
        ``inner_nan`` its non-finite episodes."""
        return self.learner.fitness_score(self.lifetime, self.evaluate, theta, tau, key, tau_fb,
                                          eval_episodes=self.cfg.task.eval_episodes,
                                          last_half=self.last_half)

    def fitness(self, thetas, key, diversity):
        """Fitness ``[M]`` (mean over training tasks) and the inner NaN count ``[]``.

        Every member of a generation sees the same training tasks and reset keys (common random
        numbers). The feedback tasks ``tau_fb`` (independent draws from the same training
        distribution) are drawn in every reward channel, so a learner and its ``shuffled``
        control consume the same keys and differ only in what their learner is told."""
        if self.member_sharding is not None:
            thetas = jax.lax.with_sharding_constraint(thetas, self.member_sharding)
        n = self.cfg.task.tasks_per_member
        k_task, k_run, k_fb = jax.random.split(key, 3)
        t = self.cfg.task
        sample = jax.vmap(functools.partial(self.family.sample_train, region=t.train_region,
                                            outside_share=t.outside_share), (0, None, None))
        taus = sample(jax.random.split(k_task, n), self.pool, diversity)
        taus_fb = sample(jax.random.split(k_fb, n), self.pool, diversity)
        run_keys = jax.random.split(k_run, n)
        per_task = jax.vmap(self.score, (None, 0, 0, 0))  # over tasks
        rets, nans = jax.vmap(per_task, (0, None, None, None))(thetas, taus, run_keys, taus_fb)
        return jnp.mean(rets, axis=1), jnp.sum(nans)

    # --- the meta-generation --------------------------------------------------------------------
    def init(self, key, theta_mean=None) -> MetaState:
        k_theta, k_es, k_next = jax.random.split(key, 3)
        mean = self.learner.init_theta(k_theta) if theta_mean is None else theta_mean
        es_state = self.strategy.init(k_es, mean, self.es_params)
        # evosax starts its archive at (NaN, +inf); the engine keeps its own best and checks the
        # ES state for non-finite values, so start the archive finite
        es_state = es_state.replace(
            best_solution=jnp.array(mean, jnp.float32, copy=True),
            best_fitness=jnp.asarray(jnp.finfo(jnp.float32).max, jnp.float32))
        es_state = jax.tree.map(_strong, es_state)
        return MetaState(es_state=es_state, key=k_next, generation=jnp.zeros((), jnp.int32),
                         best_theta=jnp.array(mean, jnp.float32, copy=True),
                         best_fitness=jnp.full((), -jnp.inf, jnp.float32))

    def step(self, state: MetaState, pressure, diversity):
        key, k_ask, k_fit, k_tell = jax.random.split(state.key, 4)
        thetas, es_state = self.strategy.ask(k_ask, state.es_state, self.es_params)
        chex.assert_shape(thetas, (self.population, self.theta_size))
        fit, inner_nan = self.fitness(thetas, k_fit, diversity)
        bad = ~jnp.isfinite(fit)
        fit = jnp.where(bad, jnp.nan, fit)
        w = member_weights(fit, rank_weights(self.cfg.meta.selection, self.population, pressure))
        new_es, _ = self.strategy.tell(k_tell, thetas, self.sign * w, es_state, self.es_params)
        new_es = jax.tree.map(_strong, new_es)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(new_es)
                                    if jnp.issubdtype(x.dtype, jnp.floating)]))
        # a generation where every member failed carries no information: keep the state
        keep = finite & jnp.any(~bad)
        new_es = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new_es, es_state)
        safe = jnp.where(bad, -jnp.inf, fit)
        i_best = jnp.argmax(safe)
        improved = safe[i_best] > state.best_fitness
        best_theta = jnp.where(improved, thetas[i_best], state.best_theta)
        best_fitness = jnp.where(improved, safe[i_best], state.best_fitness)
        mean = new_es.mean
        metrics = {
            "fitness_mean": jnp.nanmean(fit),
            "fitness_best": jnp.max(safe),
            "fitness_std": jnp.nanstd(fit),
            "nan_members": jnp.sum(bad).astype(jnp.int32),
            "nan_inner": inner_nan,
            "es_state_finite": finite,
            "theta_norm": jnp.linalg.norm(mean),
            "sigma": jnp.mean(getattr(new_es, "std", jnp.asarray(self.cfg.meta.sigma))),
            **{f"mean_{k}": v for k, v in self.learner.describe(mean).items()},
        }
        new = MetaState(es_state=new_es, key=key, generation=state.generation + 1,
                        best_theta=best_theta, best_fitness=best_fitness)
        return new, metrics

    def run_chunk(self, state: MetaState, pressure, diversity, n: int):
        """``n`` generations in one ``lax.scan``: ``(state, metrics with leading axis [n])``."""
        def body(s, _):
            return self.step(s, pressure, diversity)
        return jax.lax.scan(body, state, None, length=n)

    def mean_theta(self, state: MetaState) -> jax.Array:
        return state.es_state.mean
