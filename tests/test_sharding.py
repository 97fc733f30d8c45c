"""Sharding and bounded memory (meta_evo.sharding).

The sharded sweep runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(the flag must be set before JAX starts) and must equal the single-device vmapped sweep: the grid
axis over 4 devices (3 grid points padded to 4), and grid x population over 2 x 2."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo import sharding

SCRIPT = textwrap.dedent("""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from meta_evo import sharding as sh
    from meta_evo.config import load_config
    from meta_evo.meta import Meta

    assert jax.device_count() == 4, jax.devices()
    cfg = load_config(None, ["task.family=analytic", "agent.kind=direct",
                             "task.tasks_per_member=1", "learner.lifetime=2",
                             "learner.candidates=2", "meta.population=4",
                             "meta.strategy=SimpleES", "log.progress=false"])
    meta = Meta(cfg)
    g, n = 3, 2
    states = jax.vmap(meta.init)(jax.random.split(jax.random.PRNGKey(0), g))
    pr = jnp.linspace(0.2, 1.0, g)
    dv = jnp.array([0, 1, 2], jnp.int32)
    ref = jax.tree.map(np.asarray, sh.vmapped_sweep(meta, n)(states, pr, dv))
    out = {}
    for grid, pop in [(4, 1), (2, 2)]:
        mesh = sh.make_mesh(grid, pop)
        size = -(-g // grid) * grid
        args = sh.shard_grid(sh.pad_grid((states, pr, dv), size), mesh)
        res = sh.sharded_sweep(meta, n, mesh)(*args)
        devices = len(res[0].es_state.mean.sharding.device_set)
        res = jax.tree.map(lambda x: np.asarray(x)[:g], res)
        diff = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
                   for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(res)))
        exact = all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ref),
                                                          jax.tree.leaves(res)))
        out[f"{grid}x{pop}"] = {"diff": diff, "devices": devices, "exact": exact,
                               "generation": res[0].generation.tolist()}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def sharded_run():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layout", ["4x1", "2x2"])
def test_sharded_sweep_equals_single_device(sharded_run, layout):
    r = sharded_run[layout]
    assert r["devices"] == 4
    assert r["generation"] == [2] * 3
    # same program, same keys: equal up to float reassociation across devices
    assert r["diff"] < 1e-4, r


def test_point_bytes_estimates():
    from meta_evo.config import load_config
    from meta_evo.meta import Meta
    meta = Meta(load_config(None, ["task.family=analytic", "agent.kind=direct",
                                   "task.tasks_per_member=1", "learner.lifetime=1",
                                   "learner.candidates=2", "meta.population=4",
                                   "log.progress=false"]))
    shapes = sharding.shape_point_bytes(meta)
    state = jax.eval_shape(meta.init, jax.random.PRNGKey(0))
    assert shapes >= 2 * sharding.tree_bytes(state) > 0
    assert sharding.point_bytes(meta, 1, "shapes") == (shapes, "shapes")
    compiled, source = sharding.point_bytes(meta, 1)
    assert source in ("compiled", "shapes") and compiled > 0
    if source == "compiled":  # the program holds at least its state argument and output
        assert compiled >= 2 * sharding.tree_bytes(state)


def test_chunk_size_fits_budget():
    assert sharding.chunk_size(100, 10, 45) == 4
    assert sharding.chunk_size(3, 10, 1000) == 3  # never more than the grid
    assert sharding.chunk_size(100, 10, 5) == 1  # at least one point
    assert sharding.chunk_size(100, 10, 45, multiple=4) == 4
    assert sharding.chunk_size(100, 10, 75, multiple=4) == 4  # rounded down to the devices
    assert sharding.chunk_size(100, 10, 5, multiple=4) == 4  # at least one per device
    assert sharding.chunk_size(6, 1, 1000, multiple=4) == 8  # the grid padded to the devices


def test_pad_grid_and_run_in_chunks():
    x = jnp.arange(5.0)
    assert sharding.pad_grid(x, 8).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    with pytest.raises(ValueError):
        sharding.pad_grid(x, 3)
    calls = []

    @jax.jit
    def f(a, b):
        calls.append(a.shape)  # runs at trace time only
        return {"s": a + b, "p": a * b}

    out = sharding.run_in_chunks(f, (x, 2 * x), 2)
    np.testing.assert_allclose(out["s"], 3 * np.arange(5.0))
    np.testing.assert_allclose(out["p"], 2 * np.arange(5.0) ** 2)
    assert calls == [(2,)]  # one shape, one trace, for three chunks


def test_make_mesh_shapes():
    mesh = sharding.make_mesh()
    assert mesh.axis_names == (sharding.GRID, sharding.POP)
    assert mesh.shape[sharding.GRID] * mesh.shape[sharding.POP] == jax.device_count()
    with pytest.raises(ValueError):
        sharding.make_mesh(jax.device_count() + 1, 1)


def test_maybe_initialize_distributed(monkeypatch):
    seen = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.append(kw))
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(sharding, "_distributed", False)
    assert sharding.maybe_initialize_distributed(env={}) is False
    assert seen == []
    env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "2",
           "JAX_PROCESS_ID": "1", "JAX_LOCAL_DEVICE_IDS": "0,1"}
    assert sharding.maybe_initialize_distributed(env=env) is True
    assert seen == [{"coordinator_address": "10.0.0.1:1234", "num_processes": 2,
                     "process_id": 1, "local_device_ids": [0, 1]}]
    assert sharding.maybe_initialize_distributed(env=env) is True  # idempotent
    assert len(seen) == 1
    monkeypatch.setattr(sharding, "_distributed", False)
    settings = {"coordinator_address": "h:1", "num_processes": 4, "process_id": 0}
    assert sharding.maybe_initialize_distributed(settings, env={}) is True
    assert seen[-1] == {"coordinator_address": "h:1", "num_processes": 4, "process_id": 0}
    monkeypatch.setattr(sharding, "_distributed", False)
    assert sharding.maybe_initialize_distributed(env={"META_EVO_DISTRIBUTED": "1"}) is True
    assert seen[-1] == {}  # cluster auto-detection
