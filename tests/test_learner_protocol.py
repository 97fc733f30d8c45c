"""What the engine asks of a learner is a protocol, not a special case (issue 20).

Every learner answers the same questions (``learners.base.Learner``; ``RL2`` its own way): its
meta-fitness lifetime and score, the env steps of a lifetime, the device bytes of a rollout and
how many are alive at once, its measurement (a key of ``measure.MEASUREMENTS``, which also
counts the measurement's env steps) and its inspection program. Nothing outside
``meta_evo/learners`` branches on a learner's name. Cheap: Brax envs are built and their state
shapes traced, nothing is compiled.
"""

import re
from pathlib import Path

import jax
import pytest

from meta_evo import engine
from meta_evo.agents import make_agent
from meta_evo.config import AgentConfig, LearnerConfig, TaskConfig, config_from_dict
from meta_evo.learners import LEARNERS, RL2, make_learner
from meta_evo.measure import (
    MEASUREMENTS,
    _given_reward,
    make_measure_phi,
    make_measure_rl2,
    measure_env_steps,
)
from meta_evo.meta import Meta
from meta_evo.sweep import measure_env_steps as sweep_measure_env_steps
from meta_evo.tasks import make_family

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = ("fitness_lifetime", "fitness_score", "lifetime_env_steps", "rollout_bytes",
            "rollouts_alive", "trace_program")
K, T, M, TASKS = 2, 10, 4, 2
RL2_CFG = {
    "task": {"family": "reacher_goal", "episode_length": T, "tasks_per_member": TASKS},
    "agent": {"kind": "pd"},
    "learner": {"kind": "rl2", "lifetime": K, "hidden": 8},
    "meta": {"population": M},
    "measure": {"heldout_tasks": 3, "reference_samples": 4, "pool_tasks": 2},
    "log": {"progress": False},
}


@pytest.mark.parametrize("name", list(LEARNERS))
def test_every_learner_answers_the_protocol(name):
    family = "reacher_goal" if name == "rl2" else "analytic"
    fam = make_family(TaskConfig(family=family))
    agent_cfg = AgentConfig(kind="pd" if name == "rl2" else "direct")
    agent = make_agent(agent_cfg, fam)
    lcfg = LearnerConfig(kind=name, lifetime=2, candidates=2, hidden=4)
    lrn = make_learner(lcfg, agent, agent_cfg, family=fam, episode_length=5)
    assert lrn.measurement in MEASUREMENTS
    for method in PROTOCOL:
        assert callable(getattr(lrn, method)), (name, method)


def test_meta_has_no_rl2_flag():
    meta = Meta(config_from_dict(RL2_CFG))
    assert not hasattr(meta, "rl2")
    assert meta.learner.measurement == "behaviour"
    assert meta.lifetime == meta.learner.lifetime_returns  # the meta-fitness path


def test_rl2_counts_through_the_protocol():
    cfg = config_from_dict(RL2_CFG)
    meta = Meta(cfg)
    lr, ms = meta.learner, cfg.measure
    assert meta.env_steps_per_generation == M * TASKS * K * T
    rows = ms.heldout_tasks * (1 + ms.reference_samples) + ms.pool_tasks
    assert measure_env_steps(meta) == sweep_measure_env_steps(meta) == rows * K * T
    region = Meta(config_from_dict({**RL2_CFG, "task": {**RL2_CFG["task"],
                                                         "train_region": "half_disc"}}))
    assert measure_env_steps(region) == (rows + ms.heldout_tasks) * K * T
    # the engine's estimate: (env state + the recorded last episode) x rollouts alive x 16
    fam = meta.family
    ps = jax.eval_shape(lambda k: fam.env.reset(k).pipeline_state, jax.random.PRNGKey(0))
    rec = jax.eval_shape(lambda k: fam.record(fam.env.reset(k).pipeline_state),
                         jax.random.PRNGKey(0))
    state = max(engine._tree_bytes(ps), engine._MIN_STATE_BYTES)
    traj = (T + 1) * engine._tree_bytes(rec) + 4 * T * (lr.action_size + 1)
    alive = max(M * TASKS, rows)
    assert lr.rollouts_alive(cfg) == alive
    assert engine.point_bytes(meta) == (state + traj) * alive * engine._STATE_OVERHEAD


def test_phi_learner_counts_through_the_protocol():
    cfg = config_from_dict({"task": {"family": "analytic", "tasks_per_member": 3,
                                     "eval_episodes": 2},
                            "agent": {"kind": "direct"},
                            "learner": {"kind": "es", "lifetime": 5, "candidates": 4},
                            "meta": {"population": 6}})
    meta = Meta(cfg)
    assert meta.learner.measurement == "phi"
    assert meta.env_steps_per_generation == 6 * 3 * (5 * 4 + 2)  # analytic: one step a rollout
    ms = cfg.measure
    n_cols = ms.heldout_tasks + (int(meta.family.proxy_tasks().shape[0]) if ms.proxies else 0)
    per_task = 5 * 4 + 6 * 2 + n_cols * 2 + ms.reference_samples * 2 + 5 * ms.alignment_samples
    assert measure_env_steps(meta) == sweep_measure_env_steps(meta) == ms.heldout_tasks * per_task
    state = max(4 * meta.family.task_dim, engine._MIN_STATE_BYTES)
    evo = 6 * 3 * max(4, 2)
    meas = ms.heldout_tasks * max(4, 5 * ms.alignment_samples, ms.reference_samples,
                                  ms.heldout_tasks + (1 if ms.proxies else 0), 6)
    assert engine.point_bytes(meta) == state * max(evo, meas) * engine._STATE_OVERHEAD


def test_measurement_dispatches_through_the_learner():
    assert MEASUREMENTS["phi"].build is make_measure_phi
    assert MEASUREMENTS["behaviour"].build is make_measure_rl2


def test_rl2_is_measured_with_the_given_reward_from_the_factory():
    cfg = config_from_dict(RL2_CFG)
    given = Meta(cfg)
    assert _given_reward(given) is given.learner  # no rebuild
    shuffled = Meta(cfg, reward="shuffled")
    lr = _given_reward(shuffled)
    assert isinstance(lr, RL2) and lr is not shuffled.learner and lr.reward == "given"
    assert (lr.K, lr.T, lr.hidden, lr.theta_size) == (K, T, 8, shuffled.theta_size)
    theta = shuffled.learner.init_theta(jax.random.PRNGKey(0))
    assert lr.unravel(theta)["params"].keys() == shuffled.learner.unravel(theta)["params"].keys()


def test_rl2_random_theta_draws_a_nonzero_output_layer():
    lr = Meta(config_from_dict(RL2_CFG)).learner
    theta = lr.random_theta(jax.random.PRNGKey(1))
    assert theta.shape == (lr.theta_size,)
    out = lr.unravel(theta)["params"]["out"]
    assert float(abs(out["kernel"]).sum()) > 0 and float(abs(out["bias"]).sum()) == 0


def test_no_module_outside_the_learners_branches_on_rl2():
    """The engine, measurement, sweep, plan and rollout ask the learner: they never test for
    rl2 (``meta.rl2``, ``name == "rl2"``) nor hide a config key behind a ``getattr`` default."""
    branch = re.compile(r"(?<![\w.])\w+\.rl2\b(?!\.py)|==\s*[\"']rl2[\"']|"
                        r"getattr\([^)]*[\"'](rl2|pool_tasks|train_region|reward)[\"']")
    for f in ("meta.py", "measure.py", "engine.py", "sweep.py", "plan.py", "rollout.py"):
        found = branch.search((ROOT / "meta_evo" / f).read_text())
        assert found is None, (f, found and found.group(0))
