"""``rl2`` (in-context RL) and the recorded-trajectory scoring it relies on.

Reacher (spring) with K = 3 episodes of T = 20 steps: each distinct lifetime program compiles in
about 10 s on a CPU, so the tests share a few module-scoped programs (given, shuffled, blind,
a fixed-start family for the hidden-state test, one replay program).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from meta_evo.agents import MLPAgent
from meta_evo.learners.rl2 import RL2
from meta_evo.tasks import AntDir, HopperVel, ReacherGoal
from meta_evo.tasks.base import Trajectory

K, T, H = 3, 20, 16


@pytest.fixture(scope="module")
def fam():
    return ReacherGoal(backend="spring")


@pytest.fixture(scope="module")
def setup(fam):
    """Rows: meta-init theta, a theta with a nonzero output layer on tau_a and on tau_b, a NaN
    theta. tau_fb is an independent task per row."""
    rl = RL2(fam, lifetime=K, episode_length=T, hidden=H, reward="given")
    th0 = rl.init_theta(jax.random.PRNGKey(0))
    th1 = th0 + 0.3 * jax.random.normal(jax.random.PRNGKey(1), th0.shape)
    thetas = jnp.stack([th0, th1, th1, jnp.full_like(th0, jnp.nan)])
    t = jax.vmap(fam.sample_task)(jax.random.split(jax.random.PRNGKey(2), 3))
    taus = jnp.stack([t[0], t[0], t[1], t[0]])
    tau_fb = jnp.stack([t[2], t[2], t[2], t[2]])
    keys = jnp.stack([jax.random.PRNGKey(5)] * 4)
    return rl, thetas, taus, tau_fb, keys


def counted(fn):
    def wrapper(*args):
        wrapper.traces += 1
        return fn(*args)
    wrapper.traces = 0
    return wrapper


@pytest.fixture(scope="module")
def given(setup):
    rl, thetas, taus, tau_fb, keys = setup
    life = counted(rl.lifetime)
    run = jax.jit(jax.vmap(life))
    out = run(thetas, taus, keys, tau_fb)
    # new values, same shapes: no second trace
    run(thetas[::-1], taus[::-1], jax.random.split(jax.random.PRNGKey(9), 4), tau_fb)
    assert life.traces == 1
    return jax.device_get(out)


def channel_run(setup, reward, tau_fb=None):
    rl, thetas, taus, fb, keys = setup
    other = RL2(rl.family, lifetime=K, episode_length=T, hidden=H, reward=reward)
    assert other.theta_size == rl.theta_size  # one theta layout in every channel
    fb = taus if tau_fb is None else tau_fb
    return jax.device_get(jax.jit(jax.vmap(other.lifetime))(thetas, taus, keys, fb))


def test_shapes_and_meta_init(setup, given):
    rl, thetas, *_ = setup
    assert given["returns"].shape == (4, K)
    final = given["final"]
    assert isinstance(final, Trajectory)
    assert final.actions.shape == (4, T, rl.action_size) and final.alive.shape == (4, T)
    assert final.states.x.pos.shape[:2] == (4, T + 1) and final.states.q is None
    # meta-init: zero output layer, so every action is exactly 0
    assert float(rl.describe(thetas[0])["out_norm"]) == 0.0
    np.testing.assert_array_equal(final.actions[0], 0.0)
    assert np.abs(final.actions[1]).max() > 0.05
    assert np.isfinite(given["returns"][:3]).all() and (given["nan"][:3] == 0).all()


def test_nan_theta_gives_nan_returns(given):
    assert np.isnan(given["returns"][3]).all() and int(given["nan"][3]) == K


def test_score_reproduces_return_and_separates_tasks(fam, setup, given):
    _, _, taus, tau_fb, _ = setup
    score = jax.jit(jax.vmap(fam.score))
    final = given["final"]
    own = np.asarray(score(final, taus))
    np.testing.assert_array_equal(own[:3], given["returns"][:3, -1])  # bit-exact
    other = np.asarray(score(final, tau_fb))
    assert (np.abs(other[:3] - own[:3]) > 1e-3).all()


def test_replay_of_final_episode(fam, setup, given):
    """Open-loop replay of episode K's actions from the same reset key reproduces its states and
    its return; under another task, the replay's return is the recorded trajectory's score. The
    same program checks that ``rollout_record`` returns what ``rollout`` returns."""
    _, _, taus, tau_fb, keys = setup
    agent = MLPAgent(fam.obs_size, fam.action_size, (8,))
    phi = agent.init(jax.random.PRNGKey(3))

    @jax.jit
    def check(actions, tau, tau_b, key, final):
        k_last = jax.random.fold_in(key, K - 1)

        def replay(c, obs):
            return (c[0] + 1, c[1]), actions[c[0]]

        def feed(c, tr):  # the return under tau_b, accumulated as the rollout does
            r_b = fam.reward(tr["rec0"], tr["rec1"], tr["action"], tau_b)
            return c[0], c[1] + tr["alive"] * r_b
        (_, ret_b), ret, traj = fam.rollout_record(replay, (0, jnp.zeros(())), tau, k_last, T,
                                                   feed)
        plain = fam.rollout(agent.act, phi, tau, key, T)
        _, rec, _ = fam.rollout_record(lambda c, o: (c, agent.act(phi, o)), (), tau, key, T)
        return ret, ret_b, traj, fam.score(final, tau_b), plain, rec

    for i in (0, 1):
        row = jax.tree.map(lambda a, i=i: a[i], given["final"])
        ret, ret_b, traj, score_b, plain, rec = check(
            row.actions, taus[i], tau_fb[i], keys[i], row)
        np.testing.assert_array_equal(traj.states.x.pos, row.states.x.pos)
        assert float(ret) == float(given["returns"][i, -1])
        assert float(ret_b) == float(score_b)
        assert float(plain) == float(rec)


def test_shuffled_with_own_task_is_given(setup, given):
    out = channel_run(setup, "shuffled")  # tau_fb = tau
    np.testing.assert_array_equal(out["returns"][:3], given["returns"][:3])
    np.testing.assert_array_equal(out["final"].actions, given["final"].actions)


def test_lifetime_returns_without_recording(setup, given):
    """``lifetime_returns`` (the meta-fitness path: nothing recorded) gives the returns and NaN
    count of ``lifetime`` under the same keys; shuffled too (its fed reward reads the records
    of each step, which are computed but not stored)."""
    rl, thetas, taus, tau_fb, keys = setup
    out = jax.device_get(jax.jit(jax.vmap(rl.lifetime_returns))(thetas, taus, keys, tau_fb))
    assert set(out) == {"returns", "nan"}
    np.testing.assert_allclose(out["returns"][:3], given["returns"][:3], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["nan"], given["nan"])
    sh = RL2(rl.family, lifetime=K, episode_length=T, hidden=H, reward="shuffled")
    a = jax.device_get(jax.jit(jax.vmap(sh.lifetime_returns))(thetas[:3], taus[:3], keys[:3],
                                                               tau_fb[:3]))
    b = jax.device_get(jax.jit(jax.vmap(sh.lifetime))(thetas[:3], taus[:3], keys[:3],
                                                      tau_fb[:3]))
    np.testing.assert_allclose(a["returns"], b["returns"], rtol=1e-6, atol=1e-6)
    assert np.abs(a["returns"][1:] - given["returns"][1:3]).max() > 1e-4  # the channel acts


def test_blind_differs_once_output_is_nonzero(setup, given):
    out = channel_run(setup, "blind")
    # meta-init acts 0 whatever it is fed: blind and given coincide
    np.testing.assert_array_equal(out["returns"][0], given["returns"][0])
    assert (np.abs(out["returns"][1:3] - given["returns"][1:3]) > 1e-4).any()
    assert np.abs(out["final"].actions[1] - given["final"].actions[1]).max() > 1e-4


class _FixedStart(ReacherGoal):
    """Every reset gives the same start state whatever the key."""

    def __init__(self):
        super().__init__(backend="spring")
        env, key0 = self.env, jax.random.PRNGKey(0)

        class Env:
            def reset(self, key):
                return env.reset(key0)

            def __getattr__(self, name):
                return getattr(env, name)
        self.env = Env()


def test_hidden_state_is_carried_across_episodes(setup):
    """With identical start states, a policy whose memory were reset would play K identical
    episodes; the meta-init policy (actions 0) does, a nonzero one does not."""
    _, thetas, taus, tau_fb, keys = setup
    rl = RL2(_FixedStart(), lifetime=K, episode_length=T, hidden=H)
    rets = np.asarray(jax.jit(jax.vmap(rl.lifetime))(thetas[:2], taus[:2], keys[:2],
                                                      tau_fb[:2])["returns"])
    assert (rets[0] == rets[0, 0]).all()
    assert np.abs(np.diff(rets[1])).min() > 1e-5


@pytest.mark.parametrize("cls", [HopperVel, AntDir])
def test_locomotion_score_reads_only_records(cls):
    """Traced only (no compile): a locomotion trajectory's records hold what reward and healthy
    read, and score has the rollout's return shape."""
    fam = cls(backend="spring")
    zero = jnp.zeros(fam.action_size)
    _, ret, traj = jax.eval_shape(
        lambda k, tau: fam.rollout_record(lambda c, o: (c, zero), (), tau, k, 4),
        jax.random.PRNGKey(0), jnp.zeros(fam.task_dim))
    assert traj.states.x.pos.shape == (5, *traj.states.x.pos.shape[1:])
    s = jax.eval_shape(fam.score, traj, jnp.zeros(fam.task_dim))
    assert s.shape == ret.shape == ()


def test_bad_reward_channel(fam):
    with pytest.raises(ValueError, match="learner.reward"):
        RL2(fam, lifetime=2, episode_length=3, reward="noisy")
