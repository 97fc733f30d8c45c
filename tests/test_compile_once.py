"""One compile per sweep shape: a single run's chunk program (the engine's program on a group of
one point, :func:`meta_evo.engine.make_run_chunk`) compiles once across chunks and across a
resume from host arrays; the engine's grid chunk program
(:func:`meta_evo.engine.make_grid_chunk`) once across the groups of a grid, the last padded.

Counted two ways: the engine's trace counter (one increment per trace) and the jit's own cache
(``_cache_size()``: one entry per compiled signature)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo import engine
from meta_evo.config import load_config
from meta_evo.meta import Meta

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=1",
            "learner.lifetime=2", "learner.candidates=2", "meta.population=4",
            "log.progress=false"]
REACHER = ["task.family=reacher_goal", "task.backend=spring", "task.episode_length=5",
           "task.tasks_per_member=1", "agent.kind=pd", "learner.lifetime=1",
           "learner.candidates=2", "meta.population=4", "log.progress=false"]


def chunks_compile_once(overrides, chunks=3):
    meta = Meta(load_config(None, overrides))
    traces: dict = {}
    fn = engine.make_run_chunk(meta, traces)
    pressure, diversity = np.float32([0.5]), np.int32([1])
    state = engine.as_group(meta.init(jax.random.PRNGKey(0)))
    for _ in range(chunks):
        state, metrics = fn(state, pressure, diversity, 2)
    jax.block_until_ready(state)
    assert int(state.generation[0]) == 2 * chunks
    # a resume restores the state from host arrays (checkpoint): still the same program
    restored = engine.as_group(jax.tree.map(lambda x: jnp.asarray(np.asarray(x)),
                                            engine.point_of(state)))
    state, _ = fn(restored, pressure, diversity, 2)
    # and a fresh init of another seed
    fn(engine.as_group(meta.init(jax.random.PRNGKey(1))), np.float32([0.9]), np.int32([0]), 2)
    assert traces == {"chunk": 1}
    assert fn._cache_size() == 1
    return meta


def test_init_state_has_no_weak_types():
    meta = Meta(load_config(None, ANALYTIC))
    state = meta.init(jax.random.PRNGKey(0))
    weak = [p for p, x in jax.tree_util.tree_leaves_with_path(state)
            if getattr(x, "weak_type", False)]
    assert not weak, f"weak-typed leaves after init: {weak}"


def test_analytic_chunks_compile_once():
    chunks_compile_once(ANALYTIC)


def test_grid_chunk_compiles_once_across_groups():
    meta = Meta(load_config(None, ANALYTIC))
    traces: dict = {}
    fn = engine.make_grid_chunk(meta, traces)
    g = 5
    states = jax.vmap(meta.init)(jax.random.split(jax.random.PRNGKey(0), g))
    pressures = jnp.linspace(0.25, 1.0, g)
    diversities = jnp.array([1, 0, 1, 0, 1], jnp.int32)
    size = engine.grid_devices(fn.mesh) * 2
    done = []
    out_states, metrics = engine.run_in_groups(
        lambda s, p, d: fn(s, p, d, 2), (states, pressures, diversities), size,
        on_group=lambda a, b: done.append((a, b)))
    assert done[-1][1] == g  # several groups on one device, the last one padded
    assert out_states.generation.shape == (g,)
    assert np.all(out_states.generation == 2)
    assert metrics["fitness_mean"].shape == (g, 2)
    # a group's outputs fed back (the next chunk) and host arrays (a resume): same program
    again, _ = fn(*jax.tree.map(lambda x: x[:size], (states, pressures, diversities)), 2)
    fn(again, np.asarray(pressures[:size]), np.asarray(diversities[:size]), 2)
    fn(jax.tree.map(np.asarray, again), np.asarray(pressures[:size]),
       np.asarray(diversities[:size]), 2)
    assert traces == {"chunk": 1}
    assert fn._cache_size() == 1


@pytest.mark.skipif(os.environ.get("META_EVO_SLOW_TESTS") != "1",
                    reason="a Brax compile (60-80 s on 2 cores); META_EVO_SLOW_TESTS=1 runs it")
def test_reacher_chunks_compile_once():
    """The same check on Brax physics (the state pytree does not depend on the family, so the
    analytic tests above already cover the mechanism; this one guards the physics program)."""
    chunks_compile_once(REACHER, chunks=2)
