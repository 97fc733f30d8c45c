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

TELL_SIGN = {"Open_ES": -1.0, "SimpleES": 1.0, "SNES": 1.0, "CMA_ES": 1.0, "Sep_CMA_ES": 1.0}


def make_strategy(name: str, population: int, theta_size: int, sigma: float,
                  antithetic: bool = True):
    """An evosax strategy with identity fitness shaping and its params, search scale ``sigma``.

    Open_ES samples mirrored pairs when ``antithetic``; its realized response to selection is
    then larger than ``sigma * i`` (the best of a mirrored pair is ``|z|``: 0.798, not 0.564).
    """
    sol = jnp.zeros(theta_size)
    ident = identity_fitness_shaping_fn
    if name == "Open_ES":
        es = ea.Open_ES(population, sol, use_antithetic_sampling=antithetic,
                        optimizer=optax.sgd(population * sigma**2),
                        std_schedule=optax.constant_schedule(sigma), fitness_shaping_fn=ident)
        return es, es.default_params
    if name == "SimpleES":
        es = ea.SimpleES(population, sol, optimizer=optax.sgd(1.0), fitness_shaping_fn=ident)
        return es, es.default_params.replace(std_init=sigma)
    if name in ("SNES", "CMA_ES", "Sep_CMA_ES"):
        es = getattr(ea, name)(population, sol, fitness_shaping_fn=ident)
        return es, es.default_params.replace(std_init=jnp.asarray(sigma, jnp.float32))
    raise ValueError(f"meta.strategy: unknown strategy {name!r}")
