"""Task families: the observation hides the task, the reward matches a hand computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo.agents import PDAgent
from meta_evo.tasks import Analytic, ReacherGoal
from meta_evo.tasks.base import POOL_SIZE


@pytest.fixture(scope="module")
def reacher():
    return ReacherGoal("spring", task_weight=1.0, ctrl_weight=0.01)


@pytest.fixture(scope="module")
def reacher_states(reacher):
    reset = jax.jit(reacher.env.reset)
    step = jax.jit(reacher.env.pipeline_step)
    ps0 = reset(jax.random.PRNGKey(0)).pipeline_state
    a = jnp.array([0.7, -0.3])
    return ps0, step(ps0, a), a


def test_observation_is_task_free(reacher, reacher_states):
    ps0, _, _ = reacher_states
    obs = reacher.observe(ps0)
    assert obs.shape == (6,)
    # move Brax's own target (q[2:4], x.pos[2]) far away: the observation must not change
    moved = ps0.replace(q=ps0.q.at[2:].set(jnp.array([0.15, -0.1])),
                        x=ps0.x.replace(pos=ps0.x.pos.at[2].set(jnp.array([0.15, -0.1, 0.01]))))
    np.testing.assert_array_equal(np.asarray(reacher.observe(moved)), np.asarray(obs))
    # the observation is exactly (cos q, sin q, qd) of the two arm joints
    q, qd = ps0.q[:2], ps0.qd[:2]
    np.testing.assert_allclose(obs, np.concatenate([np.cos(q), np.sin(q), qd]), rtol=1e-6)


def test_observations_identical_under_two_tasks(reacher):
    agent = PDAgent(reacher.joint_angles)
    phi = jnp.array([0.5, -0.8])

    def obs_trace(tau):
        ps = reacher.env.reset(jax.random.PRNGKey(1)).pipeline_state

        def body(ps, _):
            o = reacher.observe(ps)
            return reacher.env.pipeline_step(ps, agent.act(phi, o)), (o, reacher.reward(
                ps, ps, jnp.zeros(2), tau))
        _, (obs, rew) = jax.lax.scan(body, ps, None, length=5)
        return obs, rew

    f = jax.jit(obs_trace)
    o1, r1 = f(jnp.array([0.1, 0.1]))
    o2, r2 = f(jnp.array([-0.15, 0.05]))
    np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))
    assert not np.allclose(np.asarray(r1), np.asarray(r2))  # only the reward sees the task


def test_reward_matches_hand_computation(reacher, reacher_states):
    _, ps1, a = reacher_states
    # fingertip by hand: body 1's origin plus 0.11 along its x axis, rotated by its yaw
    # (a rotation about z: quaternion (w, 0, 0, z) -> yaw = 2 atan2(z, w))
    w, _, _, z = (float(v) for v in ps1.x.rot[1])
    yaw = 2.0 * np.arctan2(z, w)
    tip = np.asarray(ps1.x.pos[1, :2]) + 0.11 * np.array([np.cos(yaw), np.sin(yaw)])
    tau = np.array([0.05, -0.12])
    expected = -np.linalg.norm(tip - tau) - 0.01 * float(np.sum(np.square(a)))
    got = float(reacher.reward(None, ps1, a, jnp.asarray(tau)))
    assert got == pytest.approx(expected, abs=1e-6)
    # and it agrees with planar forward kinematics of the joint angles (links 0.1 and 0.11);
    # the spring backend's joints are soft constraints, so only to about 1e-3
    q0, q1 = float(ps1.q[0]), float(ps1.q[1])
    fk = np.array([0.1 * np.cos(q0) + 0.11 * np.cos(q0 + q1),
                   0.1 * np.sin(q0) + 0.11 * np.sin(q0 + q1)])
    np.testing.assert_allclose(tip, fk, atol=1e-3)


def test_training_pool_and_diversity(reacher):
    pool = reacher.train_pool(7)
    assert pool.shape == (POOL_SIZE, 2)
    assert float(jnp.max(jnp.linalg.norm(pool, axis=1))) <= 0.2 + 1e-6
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    one = jax.vmap(reacher.sample_train, (0, None, None))(keys, pool, 1)
    np.testing.assert_array_equal(np.asarray(one), np.broadcast_to(np.asarray(pool[0]), (64, 2)))
    three = jax.vmap(reacher.sample_train, (0, None, None))(keys, pool, 3)
    assert {tuple(np.round(np.asarray(t), 6)) for t in three} == {
        tuple(np.round(np.asarray(t), 6)) for t in pool[:3]}
    free = jax.vmap(reacher.sample_train, (0, None, None))(keys, pool, 0)
    assert len({tuple(np.round(np.asarray(t), 6)) for t in free}) == 64


def test_analytic_known_answer():
    fam = Analytic(dim=3)
    ev = fam.make_evaluator(None, 1)
    tau = jnp.array([1.0, -2.0, 0.5])
    assert float(ev(tau, tau, None)) == 0.0
    assert float(ev(jnp.zeros(3), tau, None)) == pytest.approx(-(1 + 4 + 0.25))
