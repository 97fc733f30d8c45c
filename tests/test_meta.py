"""The meta-loop: sign conventions, response to selection (breeder's equation), NaN never
reaching the ES state, no second compile, determinism, and improvement on real physics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ANALYTIC, REACHER_TINY, cfg
from meta_evo.kernels.selection import rank_weights

from meta_evo import kernels, single_run
from meta_evo.meta import Meta, member_weights
from meta_evo.strategies import TELL_SIGN, make_strategy

STRATEGIES = sorted(TELL_SIGN)


def test_member_weights_rank_nan_worst():
    fit = jnp.array([1.0, jnp.nan, 3.0, 2.0])
    w = jnp.array([0.5, 0.3, 0.2, 0.0])  # best first
    np.testing.assert_allclose(np.asarray(member_weights(fit, w)), [0.2, 0.0, 0.5, 0.3])


def _generation(es, params, sign, state, key, pressure, fitness_fn, n):
    k_ask, k_tell = jax.random.split(key)
    x, state = es.ask(k_ask, state, params)
    w = member_weights(fitness_fn(x), rank_weights("truncation", n, pressure))
    state, _ = es.tell(k_tell, x, sign * w, state, params)
    return state


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_climbs_a_linear_fitness(name):
    n, d = 8, 3
    es, params = make_strategy(name, n, d, 0.1)
    state = es.init(jax.random.PRNGKey(0), jnp.zeros(d), params)
    step = jax.jit(lambda s, k: _generation(es, params, TELL_SIGN[name], s, k, 0.25,
                                            lambda x: x[:, 0], n))
    for k in jax.random.split(jax.random.PRNGKey(1), 10):
        state = step(state, k)
    assert float(state.mean[0]) > 0.3  # up the gradient, whatever the strategy's convention


@pytest.mark.parametrize("name, antithetic", [("SimpleES", True), ("Open_ES", False)])
def test_response_to_selection_is_sigma_times_intensity(name, antithetic):
    """On a linear fitness the mean moves sigma * i per generation (breeder's equation)."""
    n, d, sigma, gens = 16, 2, 0.1, 3000
    es, params = make_strategy(name, n, d, sigma, antithetic=antithetic)
    if name == "SimpleES":
        params = params.replace(c_std=0.0)  # hold sigma fixed
    for pressure in (0.25, 0.5):
        state = es.init(jax.random.PRNGKey(0), jnp.zeros(d), params)

        def body(s, k, pressure=pressure):
            s = _generation(es, params, TELL_SIGN[name], s, k, pressure, lambda x: x[:, 0], n)
            return s, None
        state, _ = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(
            jax.random.PRNGKey(2), gens)))(state)
        i = float(kernels.selection_intensity(rank_weights("truncation", n, pressure)))
        shift = float(state.mean[0]) / gens
        assert shift == pytest.approx(sigma * i, rel=0.05), (pressure, shift, sigma * i)
        assert abs(float(state.mean[1])) / gens < 0.01 * sigma  # no drift off the gradient


@pytest.mark.parametrize("name", STRATEGIES)
def test_nan_fitness_never_reaches_es_state(name):
    c = cfg(ANALYTIC, f"meta.strategy={name}")
    meta = Meta(c)
    evaluate = meta.evaluate

    def poisoned(phi, tau, key):  # a blow-up whenever the first coordinate is positive
        r = evaluate(phi, tau, key)
        return jnp.where(phi[0] > 0, jnp.nan, r)

    meta = meta.rebuild(evaluate=poisoned)  # the lifetime is built on the poisoned evaluator
    state = meta.init(jax.random.PRNGKey(0))
    state, metrics = jax.jit(meta.run_chunk, static_argnums=3)(state, 0.5, 1, 4)
    assert int(np.sum(metrics["nan_members"])) > 0
    for leaf in jax.tree.leaves(state.es_state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf))), name
    assert bool(jnp.all(jnp.isfinite(state.best_theta)))


def test_chunk_compiles_once_across_chunks():
    meta = Meta(cfg(ANALYTIC))
    traces = []

    def counted(state, p, d, n):
        traces.append(1)
        return meta.run_chunk(state, p, d, n)
    f = jax.jit(counted, static_argnums=3)
    s = meta.init(jax.random.PRNGKey(0))
    for _ in range(3):  # the fresh state (weak types normalized) and later ones share a program
        s, _ = f(s, np.float32(0.5), np.int32(1), 2)
    assert len(traces) == 1


def test_run_is_deterministic_and_writes_files(tmp_path):
    c = cfg(ANALYTIC)
    r1 = single_run.run(c, tmp_path / "a", progress=False)
    r2 = single_run.run(c, tmp_path / "b", progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_s", "steps_per_s")}
                          for r in rows]
    assert strip(r1.metrics) == strip(r2.metrics)
    np.testing.assert_array_equal(r1.mean_theta, r2.mean_theta)
    for name in ("config.yaml", "metrics.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).is_file()
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == c.meta.generations
    row = r1.metrics[-1]
    for key in ("generation", "fitness_mean", "fitness_best", "env_steps", "wall_s"):
        assert key in row
    assert row["env_steps"] == c.meta.generations * r1.meta.env_steps_per_generation
    s = r1.summary
    assert {"jax", "evosax", "brax"} <= set(s["versions"]) and "platform" in s


def test_meta_evolution_improves_on_analytic():
    c = cfg(ANALYTIC, "meta.generations=30", "meta.chunk=10", "task.diversity=1")
    res = single_run.run(c, None, progress=False)
    f = [r["fitness_mean"] for r in res.metrics]
    assert np.mean(f[-5:]) > np.mean(f[:5])


def test_reacher_run_end_to_end_on_physics(tmp_path):
    c = cfg(REACHER_TINY, "meta.generations=6", "meta.chunk=3", "log.tensorboard=true")
    res = single_run.run(c, tmp_path / "r", progress=False)
    assert len(res.metrics) == 6
    assert all(np.isfinite(r["fitness_mean"]) for r in res.metrics)
    assert res.metrics[-1]["env_steps"] == 6 * 4 * 1 * (2 * 2 + 1) * 10
    assert any((tmp_path / "r" / "tb").iterdir())  # TensorBoard event file
