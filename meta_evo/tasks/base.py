"""The task-family protocol and the shared Brax rollout.

A task ``tau`` is a small vector; the agent never observes it, it only receives reward.
A family knows how to draw tasks (a fixed training pool whose size is the *diversity*, and a
held-out distribution), and how to score a policy parameter vector ``phi`` on a task.

**Training regions** (the distribution-shift experiment, DESIGN "The second question"). A region
is a string, ``"name"`` or ``"name:p1:p2..."`` with the family's parameters (``regions`` lists
the names; ``"none"`` is the whole task space: today's behaviour, bit-identical). Per family
(all methods take one task ``tau [task_dim]``; vmap for batches):

- ``in_region(tau, region) -> bool[]``: closed regions (boundaries count as inside, with a
  relative tolerance of 1e-6 where a projection is computed in floating point);
- ``region_project(tau, region) -> tau'``: the nearest in-region task in the family's task
  metric (the metric its reward uses); ``tau`` itself when inside, so it is idempotent;
- ``sample_region(key, region, inside=True) -> tau``: the full task distribution conditioned on
  being inside (the training and in-distribution draw) or outside (out-of-distribution) the
  region; exact conditionals, no rejection loop;
- ``train_pool(task_seed, region="none")``, ``sample_train(key, pool, diversity, region="none")``:
  the training pool and a training draw restricted to the region (``"none"``: unchanged);
- ``heldout_tasks(key, n, region="none", inside=True) -> [n, task_dim]``: held-out tasks ID
  (``inside=True``) or OOD; for ``"none"`` the same draws as ``measure.heldout_tasks``;
- proxies as per-row task vectors: ``region_proxies(taus, region, pool, diversity) ->
  [n, n_rp, task_dim]`` named by ``region_proxy_names(region)``: ``nearest_in_region``
  (``region_project`` of the row's task; equal to the row's task inside the region, so it ties
  with the task column there and the tie goes to the task), ``mean_train_task`` (the mean of
  the first ``diversity`` pool tasks, of the whole pool when diversity is 0; ``task_mean``), and
  for locomotion ``train_forward`` (run forward at the centre of the training interval);
- ``matrix_columns(taus, region, pool, diversity, proxies=True) -> [n, n + n_proxy, task_dim]``:
  every column of each row of the cross-task matrix (the n tasks, the fixed ``proxy_tasks()``,
  then the region proxies), named by ``matrix_proxy_names(region, proxies)``;
- ``nearest_pool_task(tau, pool, diversity)``: the nearest of the first ``diversity`` training
  tasks, the proxy a task-identifying learner pursues.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

with contextlib.redirect_stdout(io.StringIO()):  # mujoco.mjx prints "Failed to import warp"
    import brax.envs
import jax
import jax.numpy as jnp
from brax import base as brax_base
from flax import struct

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
    # The agent's phi is itself a point of task space (the learner's answer is a task): the
    # measurement then compares the final phi with Bayes estimates of the task from the
    # lifetime's history (``kernels.identification``; ``measure.ALGORITHM_SCALARS``). Off for
    # families whose phi is a policy: their measurement program is unchanged.
    answer_in_task_space: bool = False

    def prior_posterior_mean(self, phis: jax.Array, returns: jax.Array, noise) -> jax.Array | None:
        """The posterior mean task ``[task_dim]`` under the full task prior (``sample_task``)
        from a history of points ``phis [K, D_phi]`` and returns ``[K]``, with the centered
        Gaussian likelihood of ``kernels.identification`` at scale ``noise``, in closed form;
        None where the family has none (the measurement then uses a large prior sample)."""
        return None

    def sample_task(self, key: jax.Array) -> jax.Array:
        """One task from the full (held-out) distribution: ``[task_dim]``."""
        raise NotImplementedError

    def train_pool(self, task_seed: int, region: str = "none",
                   outside_share: float = 0.0) -> jax.Array:
        """The fixed pool of training tasks ``[POOL_SIZE, task_dim]``, from ``task_seed``,
        drawn as :meth:`draw_train` draws (``"none"``: the full distribution, as always)."""
        keys = jax.random.split(jax.random.PRNGKey(task_seed), POOL_SIZE)
        return jax.vmap(lambda k: self.draw_train(k, region, outside_share))(keys)

    def draw_train(self, key: jax.Array, region: str = "none",
                   outside_share: float = 0.0) -> jax.Array:
        """One task of the training distribution: the full distribution for ``"none"``; else
        inside ``region``, or, with probability ``outside_share`` (the coverage of Langosco et
        al. 2022), outside it. Both sides are exact conditionals, so ``outside_share`` equal to
        the region's outside mass gives back the full distribution. With ``outside_share == 0``
        the draw is the same as before the coverage axis existed (same keys, same tasks)."""
        if region == "none":
            return self.sample_task(key)
        if outside_share <= 0.0:
            return self.sample_region(key, region)
        k_side, k_task = jax.random.split(key)
        outside = jax.random.uniform(k_side) < outside_share
        return jnp.where(outside, self.sample_region(k_task, region, False),
                         self.sample_region(k_task, region, True))

    def sample_train(self, key: jax.Array, pool: jax.Array, diversity: jax.Array,
                     region: str = "none", outside_share: float = 0.0) -> jax.Array:
        """A training task: uniform over the first ``diversity`` pool entries (traced);
        ``diversity == 0`` means a fresh :meth:`draw_train` (pass the pool built for the same
        region and outside share)."""
        d = jnp.asarray(diversity, jnp.int32)
        k1, k2 = jax.random.split(key)
        idx = jax.random.randint(k1, (), 0, jnp.maximum(d, 1))
        fresh = self.draw_train(k2, region, outside_share)
        return jnp.where(d > 0, pool[idx], fresh)

    def proxy_tasks(self) -> jax.Array:
        """Proxy objectives as task vectors ``[n_proxy, task_dim]`` (extra matrix columns)."""
        return jnp.zeros((0, self.task_dim))

    def make_evaluator(self, agent, episode_length: int) -> Evaluator:
        raise NotImplementedError

    # --- training regions (see the module docstring) ------------------------------------------
    regions: tuple[str, ...] = ("none",)
    region_extra_proxy_names: tuple[str, ...] = ()  # family-specific region proxies

    def region_defaults(self, name: str) -> tuple[float, ...]:
        """Default parameters of region ``name`` (when the string carries none)."""
        return ()

    def check_region_params(self, name: str, params: tuple[float, ...]) -> None:
        """Raise ValueError when ``params`` do not define a region ``name`` of this family."""
        if params:
            raise ValueError(f"{self.name}: region {name!r} takes no parameters; got {params}")

    def parse_region(self, region: str) -> tuple[str, tuple[float, ...]]:
        """``"name"`` or ``"name:p1:p2"`` -> ``(name, params)``, defaults filled in, checked."""
        name, _, rest = str(region).partition(":")
        if name not in self.regions:
            raise ValueError(f"{self.name}: unknown region {region!r}; choose from "
                             f"{', '.join(self.regions)}")
        try:
            params = tuple(float(x) for x in rest.split(":")) if rest else None
        except ValueError as e:
            raise ValueError(f"{self.name}: region {region!r}: parameters must be numbers") from e
        if params is None:
            params = self.region_defaults(name)
        self.check_region_params(name, params)
        return name, params

    def _in_region(self, tau, name, params) -> jax.Array:
        raise NotImplementedError

    def _project(self, tau, name, params) -> jax.Array:
        raise NotImplementedError

    def _sample_region(self, key, name, params, inside: bool) -> jax.Array:
        raise NotImplementedError

    def in_region(self, tau: jax.Array, region: str) -> jax.Array:
        """Whether task ``tau [task_dim]`` lies in the (closed) region: bool scalar."""
        name, params = self.parse_region(region)
        if name == "none":
            return jnp.ones((), bool)
        return self._in_region(tau, name, params)

    def region_project(self, tau: jax.Array, region: str) -> jax.Array:
        """The nearest in-region task to ``tau``; ``tau`` itself when inside (idempotent)."""
        name, params = self.parse_region(region)
        if name == "none":
            return tau
        return jnp.where(self._in_region(tau, name, params), tau,
                         self._project(tau, name, params).astype(tau.dtype))

    def sample_region(self, key: jax.Array, region: str, inside: bool = True) -> jax.Array:
        """One task from the full distribution conditioned on lying inside (or outside) the
        region. ``"none"`` with ``inside`` is ``sample_task(key)``; it has no outside."""
        name, params = self.parse_region(region)
        if name == "none":
            if not inside:
                raise ValueError(f"{self.name}: region 'none' has no outside")
            return self.sample_task(key)
        return self._sample_region(key, name, params, bool(inside))

    def heldout_tasks(self, key: jax.Array, n: int, region: str = "none",
                      inside: bool = True) -> jax.Array:
        """``n`` held-out tasks ``[n, task_dim]``, in distribution (``inside``) or out of it."""
        keys = jax.random.split(key, n)
        return jax.vmap(lambda k: self.sample_region(k, region, inside))(keys)

    def task_distance(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Distance between two tasks in the metric the reward uses (Euclidean by default)."""
        return jnp.sqrt(jnp.sum(jnp.square(a - b)))

    def task_mean(self, tasks: jax.Array, weights: jax.Array) -> jax.Array:
        """Weighted mean task of ``tasks [P, task_dim]`` with ``weights [P]`` (not all zero)."""
        w = weights.astype(tasks.dtype)
        return jnp.sum(tasks * w[:, None], axis=0) / jnp.sum(w)

    def _pool_weights(self, pool: jax.Array, diversity) -> jax.Array:
        d = jnp.asarray(diversity, jnp.int32)
        idx = jnp.arange(pool.shape[0])
        return jnp.where(d > 0, idx < d, True)

    def mean_train_task(self, pool: jax.Array, diversity) -> jax.Array:
        """The mean training task: of the first ``diversity`` pool tasks (traced ok); of the
        whole pool (an estimate of the training distribution's mean) when diversity is 0."""
        return self.task_mean(pool, self._pool_weights(pool, diversity))

    def nearest_pool_task(self, tau: jax.Array, pool: jax.Array, diversity) -> jax.Array:
        """The training task nearest to ``tau`` among the first ``diversity`` pool tasks
        (the whole pool when 0): the task an identifying learner pursues."""
        dist = jax.vmap(lambda p: self.task_distance(p, tau))(pool)
        dist = jnp.where(self._pool_weights(pool, diversity), dist, jnp.inf)
        return pool[jnp.argmin(dist)]

    def region_proxy_names(self, region: str) -> tuple[str, ...]:
        """Names of the per-row region proxies; ``()`` for ``"none"``."""
        name, _ = self.parse_region(region)
        if name == "none":
            return ()
        return ("nearest_in_region", "mean_train_task") + self.region_extra_proxy_names

    def _extra_region_proxies(self, taus, name, params) -> jax.Array:
        return jnp.zeros((taus.shape[0], 0, self.task_dim), taus.dtype)

    def region_proxies(self, taus: jax.Array, region: str, pool: jax.Array,
                       diversity) -> jax.Array:
        """Per-row proxy tasks ``[n, n_rp, task_dim]`` for the rows' tasks ``taus [n, D]``,
        in the order of ``region_proxy_names``; ``n_rp = 0`` for ``"none"``."""
        name, params = self.parse_region(region)
        n = taus.shape[0]
        if name == "none":
            return jnp.zeros((n, 0, self.task_dim), taus.dtype)
        nearest = jax.vmap(lambda t: self.region_project(t, region))(taus)
        mean = jnp.broadcast_to(self.mean_train_task(pool, diversity).astype(taus.dtype),
                                taus.shape)
        extra = self._extra_region_proxies(taus, name, params).astype(taus.dtype)
        return jnp.concatenate([nearest[:, None], mean[:, None], extra], axis=1)

    def matrix_proxy_names(self, region: str = "none", proxies: bool = True) -> tuple[str, ...]:
        """Names of the proxy columns of ``matrix_columns`` (after the n task columns)."""
        if not proxies:
            return ()
        return tuple(self.proxy_names) + self.region_proxy_names(region)

    def matrix_columns(self, taus: jax.Array, region: str = "none", pool: jax.Array | None = None,
                       diversity=0, proxies: bool = True) -> jax.Array:
        """Every column task of each row of the cross-task matrix: ``[n, n + n_proxy, D]``.

        Row a scores its result on ``columns[a, b]``: the n tasks ``taus``, then the family's
        fixed ``proxy_tasks()``, then the per-row ``region_proxies`` (a ``pool`` is needed
        unless region is ``"none"``). With ``proxies=False`` only the n tasks.
        """
        n = taus.shape[0]
        cols = [jnp.broadcast_to(taus[None], (n,) + taus.shape)]
        if proxies:
            fixed = self.proxy_tasks().astype(taus.dtype)
            cols.append(jnp.broadcast_to(fixed[None], (n,) + fixed.shape))
            if self.parse_region(region)[0] != "none":
                if pool is None:
                    raise ValueError("matrix_columns: a region needs the training pool")
                cols.append(self.region_proxies(taus, region, pool, diversity))
        return jnp.concatenate(cols, axis=1)


@struct.dataclass
class Trajectory:
    """One recorded episode of ``T`` steps, enough to score it under any task (``score``).

    ``states`` holds the light records (``BraxFamily.record``) of the physics states
    ``s_0..s_T`` (leading axis ``T+1``; for the built-in families only the link transforms
    ``x``), ``actions [T, A]`` the actions, ``alive [T]`` the weight each step's reward had in
    the return (1 until ``healthy`` first failed, then 0; it does not depend on the task).
    """

    states: brax_base.State
    actions: jax.Array
    alive: jax.Array


class BraxFamily(TaskFamily):
    """A family over a Brax env. Subclasses implement ``observe`` and ``reward``.

    The rollout is a fixed-length ``lax.scan`` with an ``alive`` mask (no early exit);
    the env's own reward and observation are never used.
    """

    env_name: str = ""
    # the pipeline-state fields that ``reward`` and ``healthy`` read: a recorded trajectory keeps
    # only these (the built-in families read the link transforms ``x`` alone); a family whose
    # reward reads more must list it, or ``score`` fails when traced (the field is None)
    record_fields: tuple[str, ...] = ("x",)

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

    def record(self, ps) -> brax_base.State:
        """The light part of a physics state that ``reward`` and ``healthy`` read: a
        ``brax.base.State`` holding the ``record_fields``, the other fields None."""
        fields = ("q", "qd", "x", "xd", "contact")
        return brax_base.State(**{f: getattr(ps, f) if f in self.record_fields else None
                                  for f in fields})

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

    def rollout_record(self, act: Callable, carry, tau: jax.Array, key: jax.Array,
                       episode_length: int, feed: Callable | None = None, keep: bool = True,
                       probe: Callable | None = None):
        """One recorded episode of a stateful policy on task ``tau``.

        ``act(carry, obs) -> (carry, action)``; after each step ``feed(carry, tr) -> carry``
        (optional) sees the transition ``tr = dict(rec0, rec1, action, reward, alive)``: the
        records before and after the step, the reward under ``tau`` and the weight ``alive`` it
        has in the return. Returns ``(carry, ret, traj)``: the policy's final carry, the return
        under ``tau`` (the same float ops as ``rollout``, NaN if the physics blew up) and the
        :class:`Trajectory`, with ``score(traj, tau) == ret`` exactly. ``keep=False`` stores
        nothing per step (the trajectory is None; the same float operations, so the same return):
        what meta-fitness runs. ``probe(carry) -> pytree`` (inspection) is read at the end of every
        step and returned, stacked over the steps, as a fourth element.
        """
        ps = self.env.reset(key).pipeline_state

        def body(c, _):
            ps, alive, ret, carry = c
            carry, action = act(carry, self.observe(ps))
            ps1 = self.env.pipeline_step(ps, action)
            rec0, rec1 = self.record(ps), self.record(ps1)
            r = self.reward(rec0, rec1, action, tau)
            ret = ret + alive * r
            if feed is not None:
                carry = feed(carry, dict(rec0=rec0, rec1=rec1, action=action, reward=r,
                                         alive=alive))
            out = (rec1, action, alive) if keep else None
            if probe is not None:
                out = (out, probe(carry))
            alive = alive * self.healthy(rec1)
            return (ps1, alive, ret, carry), out

        init = (ps, jnp.ones(()), jnp.zeros(()), carry)
        (_, _, ret, carry), outs = jax.lax.scan(body, init, None, length=episode_length)
        probes = None
        if probe is not None:
            outs, probes = outs
        traj = None
        if keep:
            recs, actions, alive = outs
            states = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), self.record(ps),
                                  recs)
            traj = Trajectory(states=states, actions=actions, alive=alive)
        return (carry, ret, traj) if probe is None else (carry, ret, traj, probes)

    def score(self, traj: Trajectory, tau: jax.Array) -> jax.Array:
        """Return of a recorded episode under task ``tau`` (any task, not only the one it was
        played on): the rollout's own accumulation, step by step, so scoring under the task it
        was played on reproduces ``rollout_record``'s return. Vmappable over ``traj``/``tau``."""
        s0 = jax.tree.map(lambda a: a[:-1], traj.states)
        s1 = jax.tree.map(lambda a: a[1:], traj.states)

        def body(ret, xs):
            rec0, rec1, action, alive = xs
            return ret + alive * self.reward(rec0, rec1, action, tau), None

        ret, _ = jax.lax.scan(body, jnp.zeros(()), (s0, s1, traj.actions, traj.alive))
        return ret

    def make_evaluator(self, agent, episode_length: int) -> Evaluator:
        def evaluate(phi, tau, key):
            return self.rollout(agent.act, phi, tau, key, episode_length)
        return evaluate
