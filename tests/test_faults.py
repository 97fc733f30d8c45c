"""Physics faults: NaN / inf returns in a fraction of episodes are counted per generation in
``metrics.jsonl``, ranked worst, and never reach the meta-ES state; the run finishes, checkpoints
and resumes as usual.

Faults are injected by building ``Meta`` with a wrapped evaluator (``Meta(cfg, evaluate=...)``;
it is used in ``score`` and by the lifetime built on it). Whether an episode fails is a
deterministic function of ``(phi, tau)``, so it hits some members and some inner candidates on
some tasks, not whole generations.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo import single_run
from meta_evo.config import load_config
from meta_evo.meta import Meta
from meta_evo.run_reader import load_run

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=2",
            "learner.lifetime=2", "learner.candidates=4", "meta.population=8",
            "meta.generations=6", "meta.chunk=2", "checkpoint.every=2", "log.progress=false"]
REACHER_TINY = ["task.family=reacher_goal", "task.backend=spring", "task.episode_length=10",
                "task.tasks_per_member=1", "agent.kind=pd", "learner.lifetime=2",
                "learner.candidates=2", "meta.population=4", "meta.generations=4",
                "meta.chunk=2", "checkpoint.every=2", "log.progress=false"]


def faulty(phi, tau, rate: float):
    """Deterministic pseudo-random fault flag of an episode, ``P ~ rate``."""
    u = jnp.abs(jnp.sin(1e3 * jnp.sum(phi) + 1e2 * jnp.sum(tau) + 0.5))
    return u < jnp.sin(rate * jnp.pi / 2)


def inject(meta: Meta, wrap) -> Meta:
    """A new ``Meta`` whose evaluator is ``wrap(meta.evaluate)`` (its lifetime is built on it):
    an explicit construction argument, before anything is jitted."""
    return meta.rebuild(evaluate=wrap(meta.evaluate))


def finite_tree(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree)
               if jnp.issubdtype(x.dtype, jnp.floating))


def check_survived(res, run_dir):
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == res.summary["generations"]
    members = [r["nan_members"] for r in rows]
    inner = [r["nan_inner"] for r in rows]
    pop = res.meta.population
    assert sum(members) > 0 and sum(inner) > 0, (members, inner)  # the faults were counted
    assert sum(members) < pop * len(rows), members  # ...and only a fraction failed
    assert all(r["es_state_finite"] for r in rows)
    assert all(r["fitness_best"] is not None for r in rows)  # a finite best every generation
    es = res.state.es_state
    assert finite_tree((es.mean, es.std)) and finite_tree(res.state.best_theta)
    assert np.isfinite(float(res.state.best_fitness))
    assert np.all(np.isfinite(res.mean_theta)) and res.summary["best_fitness"] is not None
    # the checkpointed state is the same finite state
    st = load_run(run_dir).restore()
    assert finite_tree((st.es_state.mean, st.es_state.std, st.best_theta))
    return rows


def test_nan_and_inf_rewards_are_counted_and_ranked_worst(tmp_path):
    cfg = load_config(None, ANALYTIC)

    def wrap(evaluate):
        def bad(phi, tau, key):
            r = evaluate(phi, tau, key)
            r = jnp.where(faulty(phi, tau, 0.15), jnp.nan, r)
            return jnp.where(faulty(phi + 1.0, tau, 0.1), jnp.inf, r)  # +inf: never "best"
        return bad

    meta = inject(Meta(cfg), wrap)
    init_mean = np.asarray(meta.init(jax.random.PRNGKey(cfg.seed)).es_state.mean)
    res = single_run.run(cfg, tmp_path / "run", meta=meta)
    rows = check_survived(res, tmp_path / "run")
    assert all(r["fitness_best"] < 0 for r in rows)  # -|phi - tau|^2: +inf was not taken
    assert not np.array_equal(res.mean_theta, init_mean)  # selection still moved the mean


def test_physics_blowup_in_brax_is_counted_and_ranked_worst(tmp_path):
    """NaN torques for some episodes on reacher: the spring physics state itself goes NaN."""
    cfg = load_config(None, REACHER_TINY)

    def wrap(evaluate):
        def bad(phi, tau, key):
            phi = jnp.where(faulty(phi, tau, 0.15), phi * jnp.nan, phi)
            return evaluate(phi, tau, key)
        return bad

    meta = inject(Meta(cfg), wrap)
    # the fault really is a physics blow-up: a NaN PD target gives a NaN episode return
    tau = meta.pool[0]
    ret = jax.jit(meta.evaluate)(jnp.full(meta.agent.num_params, jnp.nan), tau,
                                 jax.random.PRNGKey(0))
    assert np.isnan(float(ret))
    res = single_run.run(cfg, tmp_path / "run", meta=meta)
    check_survived(res, tmp_path / "run")


@pytest.mark.parametrize("value", [jnp.nan, jnp.inf, -jnp.inf])
def test_every_member_failing_keeps_state_finite(tmp_path, value):
    """A generation where every episode fails: the ES state stays finite and is logged."""
    cfg = load_config(None, [*ANALYTIC, "meta.generations=2"])
    meta = inject(Meta(cfg), lambda ev: lambda phi, tau, key: ev(phi, tau, key) * 0 + value)
    res = single_run.run(cfg, tmp_path / "run", meta=meta)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["nan_members"] for r in rows] == [8, 8]
    assert all(r["fitness_best"] is None and r["fitness_mean"] is None for r in rows)
    assert all(r["es_state_finite"] for r in rows)
    assert finite_tree((res.state.es_state.mean, res.state.es_state.std))
    assert float(res.state.best_fitness) == -np.inf  # nothing finite was ever seen
