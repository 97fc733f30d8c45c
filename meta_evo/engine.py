"""The engine: one compiled program over a group of grid points, sharded over every device of
the job.

Words: a **chunk** is the generations one compiled call advances; a **group** is the grid
points one compiled call holds. A sweep is a grid of (pressure, diversity, seed) points; a
single run is a grid of one point.

- **Mesh**: :func:`make_mesh` builds a ``(grid, pop)`` :class:`jax.sharding.Mesh` over every
  device of the job (with ``jax.distributed``, the devices of all processes; trivial on one
  device). :func:`make_grid_chunk` and :func:`make_grid_measure` return programs that place
  their inputs with the grid axis sharded over ``grid`` (and, for a meta built by
  :func:`population_sharded`, the meta-population over ``pop``) before every call,
  so the first call, later chunks and a resume from host arrays all see one signature: one
  trace and one compile per program. Sharded and single-device runs give the same numbers up
  to float reassociation (the PRNG is partitionable).
- **Memory**: :func:`point_bytes` estimates the device bytes one grid point needs (evolution
  and measurement); :func:`group_size` turns ``sweep.memory_budget_mb`` into the points of a
  group, a multiple of the grid devices; :func:`groups` gives the index arrays of the groups,
  the last one padded with its last real point (one shape, one compile), and
  :func:`run_in_groups` runs a grid program group by group, keeping results on the host.
- **Multi-host**: :mod:`meta_evo.distributed` starts ``jax.distributed`` when configured (the
  command line does so before any other JAX work). The mesh then spans the devices of every
  process: each group's grid axis is sharded over all of them, every process calls the program
  with the same host values and computes its own devices' share, and the outputs are gathered
  back to every process (:class:`GridProgram`). A single run stays on one host
  (:func:`run_mesh`: this process's local devices).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from meta_evo.measure import make_measure

GRID, POP = "grid", "pop"  # mesh axis names

# The memory estimate: bytes of one env state times the rollouts alive at once, times this
# allowance for the scan carry, temporaries and XLA's buffers (measured loosely on CPU).
_STATE_OVERHEAD = 16
_MIN_STATE_BYTES = 256

# --- meshes and placement ------------------------------------------------------------------------
def make_mesh(grid: int | None = None, pop: int = 1, devices=None) -> Mesh:
    """A 2-D mesh ``(grid, pop)`` over ``devices`` (default: every device of the job, which is
    this process's local devices unless ``jax.distributed`` runs several processes).

    ``grid`` defaults to ``len(devices) // pop``; ``grid * pop`` must equal the device count.
    """
    devs = list(jax.devices() if devices is None else devices)
    if grid is None:
        grid = len(devs) // pop
    if grid * pop != len(devs) or grid < 1 or pop < 1:
        raise ValueError(f"mesh {grid} x {pop} does not match {len(devs)} devices")
    return Mesh(np.array(devs).reshape(grid, pop), (GRID, POP))


def grid_devices(mesh: Mesh) -> int:
    """Devices along the grid axis: a group's size must be a multiple of this."""
    return int(mesh.shape[GRID])


def shard_grid(tree, mesh: Mesh):
    """Place a grid-batched pytree (leading axis = grid points) across ``mesh``'s grid axis."""
    return jax.device_put(tree, NamedSharding(mesh, P(GRID)))


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
    """A new ``Meta`` like ``meta`` whose meta-population axis is sharded over ``mesh``'s
    ``pop`` axis: its ``fitness`` constrains the members ``thetas [M, D]`` to ``P(pop)``, so each
    device runs the lifetimes of ``M / pop`` members; ask, rank weights and tell stay whole
    (they are tiny). Under ``vmap(..., spmd_axis_name=GRID)`` the constraint becomes
    ``P(grid, pop)``. ``meta`` itself is untouched."""
    npop = mesh.shape[POP]
    if meta.population % npop:
        raise ValueError(f"meta.population {meta.population} is not a multiple of the {npop} "
                         "devices of the pop mesh axis")
    return meta.rebuild(member_sharding=NamedSharding(mesh, P(POP)))


# --- the compiled programs -----------------------------------------------------------------------
def _count(traces: dict | None, what: str, fn):
    """``fn`` that adds 1 to ``traces[what]`` each time jax traces it (a trace precedes every
    compile, so a count of 1 after a sweep means its program compiled once)."""
    if traces is None:
        return fn

    def traced(*args):
        traces[what] = traces.get(what, 0) + 1
        return fn(*args)
    return traced


class GridProgram:
    """A jitted program over a group of grid points on ``mesh``.

    ``layout`` says, per positional argument, ``"grid"`` (leading axis sharded over the grid
    devices), ``"whole"`` (replicated) or ``"static"`` (a Python value, passed as is). Every
    call first places its arguments so (a no-op for arrays already there), so fresh host
    arrays, the previous call's outputs and restored checkpoints share one jit signature.
    Outputs keep the grid axis sharded. A group's size must be a multiple of
    :func:`grid_devices`.

    On a mesh that spans several processes (multi-host, :mod:`meta_evo.distributed`) every
    process calls the program with the same host values: each builds the global arrays from its
    own shards (``jax.make_array_from_callback``), computes its devices' share of the group, and
    gets the whole outputs back as host arrays (``process_allgather``).
    """

    def __init__(self, fn: Callable, mesh: Mesh, layout: tuple[str, ...], donate=()):
        self.mesh = mesh
        self.layout = layout
        here = jax.process_index()
        self.multi_process = any(d.process_index != here for d in mesh.devices.flat)
        self._grid = NamedSharding(mesh, P(GRID))
        self._whole = NamedSharding(mesh, P())
        static = tuple(i for i, w in enumerate(layout) if w == "static")
        self.jitted = jax.jit(fn, static_argnums=static, donate_argnums=donate,
                              out_shardings=self._grid)

    def place(self, *args):
        out = []
        for a, where in zip(args, self.layout, strict=True):
            if where == "grid":
                n = grid_size(a)
                if n % grid_devices(self.mesh):
                    raise ValueError(f"a group of {n} grid points does not divide over "
                                     f"{grid_devices(self.mesh)} devices (pad it: engine.groups)")
                a = self._put(a, self._grid)
            elif where == "whole":
                a = self._put(a, self._whole)
            out.append(a)
        return out

    def _put(self, tree, sharding):
        if not self.multi_process:
            return jax.device_put(tree, sharding)

        def glob(x):
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
        return jax.tree.map(glob, tree)

    def __call__(self, *args):
        out = self.jitted(*self.place(*args))
        if self.multi_process:
            from jax.experimental import multihost_utils

            return multihost_utils.process_allgather(out, tiled=True)
        return out

    def lower(self, *args):
        return self.jitted.lower(*self.place(*args))

    def _cache_size(self) -> int:
        return self.jitted._cache_size()


def make_grid_chunk(meta, traces: dict | None = None, mesh: Mesh | None = None) -> GridProgram:
    """``fn(states [B], pressures [B], diversities [B], n) -> (states, metrics [B, n])``:
    ``vmap(meta.run_chunk)`` over the group, ``n`` static, the grid axis sharded over
    ``mesh`` (default: :func:`make_mesh`, every device of the job) and, when the mesh has a
    ``pop`` axis of more than one device, the meta-population too. The one evolution program of
    an arm."""
    mesh = make_mesh() if mesh is None else mesh
    m = population_sharded(meta, mesh) if mesh.shape[POP] > 1 else meta
    spmd = GRID if mesh.shape[POP] > 1 else None

    def chunk(states, pressures, diversities, n):
        return jax.vmap(m.run_chunk, in_axes=(0, 0, 0, None), spmd_axis_name=spmd)(
            states, jnp.asarray(pressures, jnp.float32), jnp.asarray(diversities, jnp.int32), n)

    donate = (0,) if jax.default_backend() != "cpu" else ()
    return GridProgram(_count(traces, "chunk", chunk), mesh, ("grid", "grid", "grid", "static"),
                       donate)


def make_grid_measure(meta, traces: dict | None = None, mesh: Mesh | None = None) -> GridProgram:
    """``fn(thetas [B, D_theta], key, diversities [B]) -> dict of [B, ...]``:
    ``vmap(make_measure(meta))``, the kernels on every theta of the group in one compiled
    program, the grid axis sharded over ``mesh`` (default: every device of the job). The
    diversity of each point says which pool tasks it was trained on (the pool matrix) and sets
    its mean-training-task proxy."""
    mesh = make_mesh() if mesh is None else mesh
    one = make_measure(meta)

    def grid_measure(thetas, key, diversities):
        return jax.vmap(one, in_axes=(0, None, 0))(thetas, key, diversities)
    return GridProgram(_count(traces, "measure", grid_measure), mesh, ("grid", "whole", "grid"))


def run_mesh(meta, devices=None) -> Mesh:
    """The mesh of a single run, a grid of one point: every local device on the ``pop`` axis
    when the meta-population divides over them (each device runs ``M / devices`` members'
    lifetimes), else the first device alone. (A multi-host job runs sweeps: see
    :func:`meta_evo.single_run.run`.)"""
    devs = list(jax.local_devices() if devices is None else devices)
    if len(devs) > 1 and meta.population % len(devs) == 0:
        return make_mesh(grid=1, pop=len(devs), devices=devs)
    return make_mesh(grid=1, pop=1, devices=devs[:1])


def make_run_chunk(meta, traces: dict | None = None, mesh: Mesh | None = None) -> GridProgram:
    """The chunk program of a single run: :func:`make_grid_chunk` on :func:`run_mesh` (a group
    of one grid point; states carry a leading axis of 1, :func:`as_group`)."""
    return make_grid_chunk(meta, traces, run_mesh(meta) if mesh is None else mesh)


def as_group(state):
    """One state as a group of one grid point (leading axis 1)."""
    return jax.tree.map(lambda x: jnp.asarray(x)[None], state)


def point_of(states, i: int = 0):
    """Grid point ``i`` of a group's states, as fresh arrays on the default device (not on the
    program's mesh): what a run's checkpoint and result hold, so a checkpoint records one
    device, whatever mesh wrote it."""
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x[i])), states)


def initial_states(meta, cfg, seeds: np.ndarray):
    """Stacked initial states ``[len(seeds)]``: one per seed index, shared across levels
    (``meta.init(fold_in(PRNGKey(cfg.seed), s))``: common random numbers)."""
    base = jax.random.PRNGKey(cfg.seed)
    keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))
    return jax.vmap(meta.init)(keys)


# --- memory and groups ---------------------------------------------------------------------------
def _tree_bytes(tree) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def point_bytes(meta) -> int:
    """A loose estimate of the device memory one grid point needs (bytes): one rollout (an env
    state, and whatever the learner's lifetime records with it: ``learner.rollout_bytes``)
    times the rollouts alive at once (evolution or measurement, the larger:
    ``learner.rollouts_alive``) times an allowance."""
    fam = meta.family
    if hasattr(fam, "env"):
        ps = jax.eval_shape(lambda k: fam.env.reset(k).pipeline_state, jax.random.PRNGKey(0))
        state = _tree_bytes(ps)
    else:
        state = 4 * fam.task_dim
    state = max(state, _MIN_STATE_BYTES)
    lr = meta.learner
    return int(lr.rollout_bytes(state) * lr.rollouts_alive(meta.cfg) * _STATE_OVERHEAD)


def fit_group(n_points: int, bytes_per_point: int, budget_bytes: int, multiple: int = 1) -> int:
    """Grid points per group: as many as fit ``budget_bytes`` (at least ``multiple``), rounded
    down to a multiple of ``multiple`` (the grid devices), at most ``n_points`` rounded up to
    that multiple."""
    fit = max(1, int(budget_bytes // max(1, bytes_per_point)))
    c = max(multiple, (fit // multiple) * multiple)
    cap = -(-n_points // multiple) * multiple
    return min(c, cap)


def group_size(meta, n_points: int, devices: int = 1) -> int:
    """Grid points per group of ``meta`` under ``sweep.memory_budget_mb``: a multiple of
    ``devices`` (at least one point a device), at most the grid padded to the devices."""
    budget = meta.cfg.sweep.memory_budget_mb * 2**20
    return fit_group(n_points, point_bytes(meta), budget, devices)


def groups(n_points: int, size: int) -> list[np.ndarray]:
    """Index arrays of the groups, each of length ``size``; the last padded with its last
    real index (padded results are dropped)."""
    out = []
    for start in range(0, n_points, size):
        idx = np.arange(start, min(start + size, n_points))
        if idx.shape[0] < size:
            idx = np.concatenate([idx, np.full(size - idx.shape[0], idx[-1])])
        out.append(idx)
    return out


def run_in_groups(fn: Callable, args: tuple, size: int, on_group: Callable | None = None):
    """Run ``fn(*group_args)`` over the leading grid axis of ``args`` in groups of ``size``
    (:func:`groups`: the last one padded, so ``fn`` sees one shape) and return the concatenated
    pytree ``[G, ...]`` in host memory (NumPy), padding dropped; device memory holds one group
    at a time. ``on_group(start, stop)`` is called after each group (progress, logging)."""
    g = grid_size(args)
    outs = []
    for idx in groups(g, size):
        start, stop = int(idx[0]), int(idx[-1]) + 1
        out = fn(*jax.tree.map(lambda x, i=idx: x[i], args))
        outs.append(jax.tree.map(lambda x, k=stop - start: np.asarray(x)[:k], out))
        if on_group is not None:
            on_group(start, stop)
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
