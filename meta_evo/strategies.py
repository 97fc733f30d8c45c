"""The meta-strategies: evosax distribution-based strategies with identity fitness shaping.

Sign convention at the ``tell`` boundary (evosax minimizes): strategies that recombine with
``fitness`` as weights (SimpleES, SNES, CMA_ES, Sep_CMA_ES) receive ``+w``; Open_ES, whose
update is a gradient step on ``fitness``, receives ``-w`` and an SGD rate ``M * sigma**2`` that
makes its step exactly the weighted recombination (:data:`TELL_SIGN`).
"""

from __future__ import annotations

import evosax.algorithms as ea
import jax.numpy as jnp
import optax
from evosax.core.fitness_shaping import identity_fitness_shaping_fn

from meta_evo.registry import Registry

STRATEGIES = Registry("meta.strategy", "strategy")
"""``build(population, theta_size, sigma, antithetic) -> (strategy, params)``; each entry's
``tell_sign`` is the sign of the fitness at ``tell`` (see the module docstring)."""


def _open_es(population, theta_size, sigma, antithetic):
    es = ea.Open_ES(population, jnp.zeros(theta_size), use_antithetic_sampling=antithetic,
                    optimizer=optax.sgd(population * sigma**2),
                    std_schedule=optax.constant_schedule(sigma),
                    fitness_shaping_fn=identity_fitness_shaping_fn)
    return es, es.default_params


def _open_es_check(cfg):
    m = cfg.meta
    if m.antithetic and m.population % 2:
        yield f"meta.population: must be even for antithetic sampling, got {m.population}"


def _simple_es(population, theta_size, sigma, antithetic):
    es = ea.SimpleES(population, jnp.zeros(theta_size), optimizer=optax.sgd(1.0),
                     fitness_shaping_fn=identity_fitness_shaping_fn)
    return es, es.default_params.replace(std_init=sigma)


def _std_init(name):
    def build(population, theta_size, sigma, antithetic):
        es = getattr(ea, name)(population, jnp.zeros(theta_size),
                               fitness_shaping_fn=identity_fitness_shaping_fn)
        return es, es.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))
    return build


_SCHEMA = ("meta.population", "meta.sigma")
STRATEGIES.register("Open_ES", _open_es, schema=(*_SCHEMA, "meta.antithetic"),
                    check=_open_es_check, tell_sign=-1.0)
STRATEGIES.register("SimpleES", _simple_es, schema=_SCHEMA, tell_sign=1.0)
for _name in ("SNES", "CMA_ES", "Sep_CMA_ES"):
    STRATEGIES.register(_name, _std_init(_name), schema=_SCHEMA, tell_sign=1.0)

TELL_SIGN = STRATEGIES.view("tell_sign")  # name -> sign, read live from the registry


def make_strategy(name: str, population: int, theta_size: int, sigma: float,
                  antithetic: bool = True):
    """An evosax strategy with identity fitness shaping and its params, search scale ``sigma``.

    Open_ES samples mirrored pairs when ``antithetic``; its realized response to selection is
    then larger than ``sigma * i`` (the best of a mirrored pair is ``|z|``: 0.798, not 0.564).
    """
    return STRATEGIES.build(name, population, theta_size, sigma, antithetic)
