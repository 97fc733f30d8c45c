"""Scale: bounded memory for sweeps, sharding over local devices, multi-host start-up.

A sweep is ``vmap(meta.run_chunk)`` over a leading **grid** axis of states, pressures and
diversities. Three tools keep it inside the hardware:

- **Chunks**: :func:`point_bytes` estimates the device bytes one grid point needs (from the
  compiled program's ``memory_analysis()`` where the backend gives one, else from the shapes of
  the state and the env batch); :func:`chunk_size` turns a memory budget into the number of grid
  points per chunk; :func:`run_in_chunks` runs the grid chunk by chunk, padding the last chunk
  so every chunk has the same shape (one compile for the whole sweep).
- **Sharding**: :func:`make_mesh` builds a ``(grid, pop)`` :class:`jax.sharding.Mesh` over the
  local (or, after :func:`maybe_initialize_distributed`, global) devices;
  :func:`sharded_sweep` returns the jitted, vmapped chunk with the grid axis sharded over
  ``grid`` and, through :func:`population_sharded`, the meta-population axis over ``pop``.
  Sharded and single-device runs give the same numbers (the PRNG is partitionable).
- **Multi-host**: :func:`maybe_initialize_distributed` calls ``jax.distributed.initialize``
  when the environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
  ``JAX_PROCESS_ID``, optional ``JAX_LOCAL_DEVICE_IDS``; or ``META_EVO_DISTRIBUTED=1`` for
  cluster auto-detection) or a settings mapping asks for it. Call it before any other JAX work.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

GRID, POP = "grid", "pop"  # mesh axis names
SHAPE_FACTOR = 4  # shape-based estimate: live copies of the env batch state (scan carry, step)

_distributed = False


# --- multi-host ----------------------------------------------------------------------------------
def _settings_get(settings, key):
    if settings is None:
        return None
    if isinstance(settings, Mapping):
        return settings.get(key)
    return getattr(settings, key, None)


def maybe_initialize_distributed(settings=None, env: Mapping[str, str] | None = None) -> bool:
    """Start multi-host JAX when asked; return whether this process runs distributed.

    Asked by ``settings`` (a mapping or object with ``coordinator_address``, ``num_processes``,
    ``process_id`` and optionally ``local_device_ids``; ``enabled=True`` alone means cluster
    auto-detection), else by the environment: ``JAX_COORDINATOR_ADDRESS`` (with
    ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``, ``JAX_LOCAL_DEVICE_IDS`` as comma-separated ints),
    or ``META_EVO_DISTRIBUTED=1`` for auto-detection (SLURM, Open MPI, cloud TPU). Nothing asked:
    returns False and touches nothing. Idempotent. Must run before any other JAX computation.
    """
    global _distributed
    if _distributed or jax.distributed.is_initialized():
        _distributed = True
        return True
    env = os.environ if env is None else env
    kw: dict = {}
    addr = _settings_get(settings, "coordinator_address") or env.get("JAX_COORDINATOR_ADDRESS")
    enabled = bool(_settings_get(settings, "enabled")) or env.get(
        "META_EVO_DISTRIBUTED", "").lower() in ("1", "true", "yes")
    if not addr and not enabled:
        return False
    if addr:
        kw["coordinator_address"] = addr
        n = _settings_get(settings, "num_processes") or env.get("JAX_NUM_PROCESSES")
        pid = _settings_get(settings, "process_id")
        pid = env.get("JAX_PROCESS_ID") if pid is None else pid
        if n is not None:
            kw["num_processes"] = int(n)
        if pid is not None:
            kw["process_id"] = int(pid)
    ids = _settings_get(settings, "local_device_ids") or env.get("JAX_LOCAL_DEVICE_IDS")
    if ids:
        kw["local_device_ids"] = ([int(i) for i in ids.split(",")] if isinstance(ids, str)
                                  else list(ids))
    jax.distributed.initialize(**kw)
    _distributed = True
    return True


# --- meshes and placement ------------------------------------------------------------------------
def make_mesh(grid: int | None = None, pop: int = 1, devices=None) -> Mesh:
    """A 2-D mesh ``(grid, pop)`` over ``devices`` (default: all devices, every host).

    ``grid`` defaults to ``len(devices) // pop``; ``grid * pop`` must equal the device count.
    """
    devs = list(jax.devices() if devices is None else devices)
    if grid is None:
        grid = len(devs) // pop
    if grid * pop != len(devs) or grid < 1 or pop < 1:
        raise ValueError(f"mesh {grid} x {pop} does not match {len(devs)} devices")
    return Mesh(np.array(devs).reshape(grid, pop), (GRID, POP))


def grid_spec(tree):
    """PartitionSpecs sharding each leaf's leading (grid) axis over ``grid``."""
    return jax.tree.map(lambda _: P(GRID), tree)


def shard_grid(tree, mesh: Mesh):
    """Place a grid-batched pytree (leading axis = grid points) across ``mesh``'s grid axis."""
    return jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, P(GRID))), tree)


def pad_grid(tree, size: int):
    """Pad the leading axis of every leaf to ``size`` by repeating the last grid point."""
    def pad(x):
        x = jnp.asarray(x)
        n = x.shape[0]
        if n == size:
            return x
        if n > size:
            raise ValueError(f"cannot pad {n} grid points down to {size}")
        return jnp.concatenate([x, jnp.repeat(x[-1:], size - n, axis=0)])
    return jax.tree.map(pad, tree)


def grid_size(tree) -> int:
    return int(jax.tree.leaves(tree)[0].shape[0])


def population_sharded(meta, mesh: Mesh):
    """A shallow copy of ``meta`` whose meta-population axis is sharded over ``mesh``'s ``pop``.

    Its ``fitness`` constrains the members ``thetas [M, D]`` to ``P(pop)``, so each device runs
    the lifetimes of ``M / pop`` members; ask, rank weights and tell stay whole (they are tiny).
    Under ``vmap(..., spmd_axis_name=GRID)`` the constraint becomes ``P(grid, pop)``.
    ``meta`` itself is untouched.
    """
    npop = mesh.shape[POP]
    if meta.population % npop:
        raise ValueError(f"meta.population {meta.population} is not a multiple of the {npop} "
                         "devices of the pop mesh axis")
    m = copy.copy(meta)
    m.__dict__.pop("jit_chunk", None)  # a cached jit of the unsharded instance
    base = meta.fitness
    spec = NamedSharding(mesh, P(POP))

    def fitness(thetas, key, diversity):
        return base(jax.lax.with_sharding_constraint(thetas, spec), key, diversity)

    m.fitness = fitness
    return m


def sharded_sweep(meta, n: int, mesh: Mesh) -> Callable:
    """Jitted ``fn(states, pressures, diversities) -> (states, metrics)``: ``n`` generations of
    every grid point, the grid axis sharded over ``mesh``'s ``grid`` axis and the population
    over its ``pop`` axis (when it has more than one device).

    Inputs have a leading grid axis whose size is a multiple of ``mesh.shape['grid']``
    (see :func:`pad_grid`); outputs keep that axis (metrics: ``[G, n]`` per key), sharded.
    """
    m = population_sharded(meta, mesh) if mesh.shape[POP] > 1 else meta

    def chunk(states, pressures, diversities):
        return jax.vmap(m.run_chunk, in_axes=(0, 0, 0, None), spmd_axis_name=GRID)(
            states, pressures, diversities, n)

    s = NamedSharding(mesh, P(GRID))
    return jax.jit(chunk, in_shardings=s, out_shardings=s, donate_argnums=0)


def vmapped_sweep(meta, n: int) -> Callable:
    """Jitted ``fn(states, pressures, diversities)`` for one device: ``vmap`` of ``run_chunk``."""
    def chunk(states, pressures, diversities):
        return jax.vmap(meta.run_chunk, in_axes=(0, 0, 0, None))(states, pressures,
                                                                 diversities, n)
    return jax.jit(chunk)


# --- memory budget -------------------------------------------------------------------------------
def tree_bytes(tree) -> int:
    """Bytes of a pytree of arrays or ShapeDtypeStructs."""
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def shape_point_bytes(meta) -> int:
    """Shape-based bytes of one grid point: the meta state twice (in and out) plus the largest
    batch of live env states (``M * tasks * P`` rollouts at once) times :data:`SHAPE_FACTOR`."""
    state = jax.eval_shape(meta.init, jax.random.PRNGKey(0))
    t = meta.cfg.task
    batch = meta.population * t.tasks_per_member * max(meta.learner.num_candidates,
                                                       t.eval_episodes)
    env = getattr(meta.family, "env", None)
    if env is not None:
        ps = jax.eval_shape(lambda k: env.reset(k).pipeline_state, jax.random.PRNGKey(0))
        per_env = tree_bytes(ps)
    else:
        per_env = 4 * (meta.learner.phi_size + meta.family.task_dim)
    return 2 * tree_bytes(state) + SHAPE_FACTOR * batch * per_env


def point_bytes(meta, n: int, method: str = "auto") -> tuple[int, str]:
    """Device bytes one grid point of an ``n``-generation chunk needs: ``(bytes, source)``.

    ``method="compiled"`` (or ``"auto"`` where the backend reports it) compiles the one-point
    vmapped chunk and reads ``memory_analysis()``: temp + argument + output bytes (an upper
    bound: the program's fixed part, e.g. the task pool, is counted per point). ``"shapes"``
    (or the fallback) uses :func:`shape_point_bytes`.
    """
    if method in ("auto", "compiled"):
        try:
            states = jax.eval_shape(jax.vmap(meta.init), jax.random.split(jax.random.PRNGKey(0), 1))
            p = jax.ShapeDtypeStruct((1,), jnp.float32)
            d = jax.ShapeDtypeStruct((1,), jnp.int32)
            ma = vmapped_sweep(meta, n).lower(states, p, d).compile().memory_analysis()
            if ma is not None:
                b = ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes
                if b > 0:
                    return int(b), "compiled"
        except Exception:  # noqa: BLE001 - any backend without an analysis falls back
            if method == "compiled":
                raise
    return shape_point_bytes(meta), "shapes"


def chunk_size(n_points: int, bytes_per_point: int, budget_bytes: int, multiple: int = 1) -> int:
    """Grid points per chunk: as many as fit ``budget_bytes`` (at least ``multiple``), rounded
    down to a multiple of ``multiple`` (the devices of the grid axis), at most ``n_points``
    rounded up to that multiple."""
    fit = max(1, int(budget_bytes // max(1, bytes_per_point)))
    c = max(multiple, (fit // multiple) * multiple)
    cap = -(-n_points // multiple) * multiple
    return min(c, cap)


def run_in_chunks(fn: Callable, args: tuple, chunk: int, on_chunk: Callable | None = None):
    """Run ``fn(*chunk_args)`` over the leading grid axis of ``args`` in chunks of ``chunk``.

    The last chunk is padded (see :func:`pad_grid`) so ``fn`` sees one shape, and the padding is
    dropped from the result. Results are moved to host memory (NumPy) chunk by chunk so device
    memory holds one chunk at a time; returns the concatenated pytree ``[G, ...]``.
    ``on_chunk(start, stop)`` is called after each chunk (progress, logging).
    """
    g = grid_size(args)
    outs = []
    for start in range(0, g, chunk):
        stop = min(g, start + chunk)
        part = jax.tree.map(lambda x, a=start, b=stop: x[a:b], args)
        part = pad_grid(part, chunk)
        out = fn(*part)
        outs.append(jax.tree.map(lambda x, k=stop - start: np.asarray(x)[:k], out))
        if on_chunk is not None:
            on_chunk(start, stop)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
